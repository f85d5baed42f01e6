"""Dataset registry and the sample contract shared by every dataset."""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from fer_core.registry import Registry

DATASETS: Registry = Registry("dataset")
"""Dataset factories: ``factory(split, root=None, **options) -> torch Dataset of Samples``."""

SPLITS = ("train", "val", "test")


class Sample(TypedDict):
    """One raw sample, before transforms."""

    image: np.ndarray  # H×W×3 uint8 RGB
    label: int  # canonical class id (fer_core.CLASSES order)
    landmarks: np.ndarray  # (68, 2) float32 (x, y) in the image's pixel frame; NaN when unknown
    id: str  # stable identifier (file name or generated id)


def build_dataset(name: str, split: str, root: str | None = None, **options: Any):
    """Build a registered dataset; unknown names or splits raise errors listing valid ones."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return DATASETS.get(name)(split, root=root, **options)
