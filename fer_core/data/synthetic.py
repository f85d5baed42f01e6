"""The ``synthetic`` dataset: procedurally rendered faces whose expression lives in AU regions.

Every test and the default demo sweep train on it, so it is built to make the method's effect
real: the seven classes differ *only* by deformations inside the AU regions of each class
(``synthetic_tables.ACTIONS``), at a random intensity so that classes overlap, while identity,
pose, scale, lighting, noise and background vary freely. Landmarks are the renderer's own control
points, hence exact.

``shortcut=p`` adds, in train and val only, a class-coloured square at a class-specific spot of the
background to a fraction ``p`` of the images: a model that learns the square instead of the face
looks good in training and fails at test.

A split is generated once into one ``.npz`` (keyed by every option and ``GENERATOR_VERSION``) and
read back by later builds, other processes and Ray workers; writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_core import NUM_CLASSES, atomic
from fer_core.cli import UserError
from fer_core.data.base import DATASETS, SPLITS, Sample
from fer_core.data.synthetic_faces import render_faces, sample_params

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2
"""Bump whenever the rendered pixels change: it is part of the cache key (not of the seed)."""

DEFAULT_N: dict[str, int] = {"train": 1400, "val": 280, "test": 280}
"""Images per split when ``n`` is not given: sized for a CPU demo (a few seconds to generate)."""

_SPLIT_IDS = {name: k for k, name in enumerate(SPLITS)}

# Class id -> RGB of the shortcut square and its centre (fractions of the image side). All spots
# are background corners/edges that the face, whatever its pose, does not reach.
SHORTCUT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240),
)  # fmt: skip
SHORTCUT_CENTRES: tuple[tuple[float, float], ...] = (
    (0.06, 0.06), (0.94, 0.06), (0.06, 0.94), (0.94, 0.94), (0.06, 0.78), (0.94, 0.78),
    (0.24, 0.95),
)  # fmt: skip
SHORTCUT_SIDE = 0.09
"""Side of the shortcut square as a fraction of the image side."""


@dataclass(frozen=True)
class SyntheticOptions:
    """Everything that determines a split's bytes (and so its cache key)."""

    size: int = 64
    n: int = 1400
    seed: int = 0
    shortcut: float = 0.0
    intensity: tuple[float, float] = (0.3, 1.0)

    def __post_init__(self) -> None:
        if not 32 <= self.size <= 512:
            raise UserError(f"size must be in [32, 512] pixels (64-224 tested), got {self.size}")
        if self.n < 1:
            raise UserError(f"n (images per split) must be >= 1, got {self.n}")
        if self.seed < 0:
            raise UserError(f"seed must be a non-negative integer, got {self.seed}")
        if not 0.0 <= self.shortcut <= 1.0:
            raise UserError(f"shortcut is a probability in [0, 1], got {self.shortcut}")
        lo, hi = self.intensity
        if not 0.0 <= lo <= hi <= 1.5:
            raise UserError(f"intensity must be (low, high) with 0 <= low <= high <= 1.5, got "
                             f"{self.intensity}")  # fmt: skip

    def cache_key(self, split: str) -> str:
        """Hash of the split, every option and the generator version."""
        spec = {"version": GENERATOR_VERSION, "split": split, **asdict(self)}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


CACHE_ENV = "FER_CACHE"
"""A user's shell setting for the cache folder of runs outside a sweep (``fer_core.train``,
notebooks); code passes its folder as ``cache_dir`` instead (a sweep: its ``--cache-dir``)."""


def default_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/synthetic``; without one ``$FER_CACHE/synthetic`` if the user set it, else
    ``~/.cache/fer_core/synthetic``."""
    base = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "fer_core") / "synthetic"


def shortcut_box(label: int, size: int) -> tuple[int, int, int, int]:
    """Pixel box ``(y0, y1, x0, x1)`` (end-exclusive) of class ``label``'s shortcut square."""
    side = max(3, round(SHORTCUT_SIDE * size))
    cx, cy = SHORTCUT_CENTRES[label]
    x0 = min(max(round(cx * size - side / 2), 0), size - side)
    y0 = min(max(round(cy * size - side / 2), 0), size - side)
    return y0, y0 + side, x0, x0 + side


def generate_split(split: str, opts: SyntheticOptions) -> dict[str, np.ndarray]:
    """Render one split in memory (no cache): images, labels, landmarks, intensity, shortcut.

    The split's generator is seeded from ``(seed, split)``, so splits differ, and every draw
    happens whatever the options: changing ``shortcut`` changes only the squares and changing
    ``size`` only the resolution (same faces), which keeps paired comparisons clean.
    """
    if split not in _SPLIT_IDS:
        raise UserError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    rng = np.random.default_rng([opts.seed, _SPLIT_IDS[split]])
    labels = rng.permutation(np.arange(opts.n) % NUM_CLASSES)  # balanced classes
    intensity = np.where(labels == 0, 0.0, rng.uniform(*opts.intensity, size=opts.n))
    cue_draw = rng.random(opts.n)
    params = sample_params(rng, opts.n)
    images, landmarks = render_faces(params, labels, intensity, opts.size, rng)
    # Never in test: the cue is a train/val-only temptation that test accuracy exposes.
    shortcut = (cue_draw < opts.shortcut) & (split != "test")
    for i in np.flatnonzero(shortcut):
        y0, y1, x0, x1 = shortcut_box(int(labels[i]), opts.size)
        images[i, y0:y1, x0:x1] = SHORTCUT_COLOURS[labels[i]]
    return {
        "images": images,
        "labels": labels.astype(np.int64),
        "landmarks": landmarks,
        "intensity": intensity.astype(np.float32),
        "shortcut": shortcut,
    }


def _write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Readers (other trials) never see half a file."""
    with atomic.replacing(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)


def load_or_generate(
    split: str, opts: SyntheticOptions, root: str | os.PathLike | None = None
) -> tuple[dict[str, np.ndarray], Path]:
    """Arrays of one split from the cache, generating and caching them on a miss."""
    folder = Path(root) if root is not None else default_root()
    path = folder / f"{split}-{opts.size}px-n{opts.n}-{opts.cache_key(split)}.npz"
    if path.exists():
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}, path
        except (OSError, ValueError, zipfile.BadZipFile) as err:  # e.g. a disk-full leftover
            log.warning("synthetic cache %s unreadable (%s); regenerating", path, err)
    arrays = generate_split(split, opts)
    _write_atomic(path, arrays)
    return arrays, path


class SyntheticFaces:
    """One split of synthetic faces; items follow the ``fer_core.data.base.Sample`` contract.

    A map-style dataset like :class:`~fer_core.data.base.FaceImages` (no torch import).

    Attributes beyond the samples: ``labels``, ``landmarks``, ``intensity`` (expression strength,
    0 for Neutral), ``shortcut`` (bool, the image carries the class square), ``path`` (cache file).
    """

    def __init__(
        self,
        split: str,
        arrays: dict[str, np.ndarray],
        path: Path | None = None,
        transform: Callable[[Sample], Any] | None = None,
    ) -> None:
        self.split = split
        self.images = arrays["images"]
        self.labels = arrays["labels"]
        self.landmarks = arrays["landmarks"]
        self.intensity = arrays["intensity"]
        self.shortcut = arrays["shortcut"]
        self.path = path
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Any:
        sample: Sample = {
            # Copies: transforms may work in place and must not corrupt the shared split.
            "image": np.array(self.images[index]),
            "label": int(self.labels[index]),
            "landmarks": np.array(self.landmarks[index], dtype=np.float32),
            "id": f"synthetic-{self.split}-{index:05d}",
        }
        return self.transform(sample) if self.transform is not None else sample


@DATASETS.register("synthetic")
def build_synthetic(
    split: str,
    root: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    size: int = 64,
    n: int | None = None,
    seed: int = 0,
    shortcut: float = 0.0,
    intensity: tuple[float, float] = (0.3, 1.0),
    transform: Callable[[Sample], Any] | None = None,
) -> SyntheticFaces:
    """Build (or load from cache) one split of the synthetic dataset.

    Args:
        split: ``train``, ``val`` or ``test`` (each drawn from its own sub-seed).
        root: the folder of the split files; default ``default_root(cache_dir)``.
        cache_dir: a data cache shared with other datasets (a sweep's ``--cache-dir``); the
            splits go to its ``synthetic/`` folder. Ignored when ``root`` is given.
        size: image side in pixels (64-224 tested; drawn at this size, not resized).
        n: images in this split; default ``DEFAULT_N[split]`` (1400 / 280 / 280).
        seed: same seed and options give byte-identical splits.
        shortcut: probability that a train/val image carries its class's coloured square
            (never in test).
        intensity: range of the per-image expression strength for non-Neutral classes.
        transform: optional callable applied to each sample dict.
    """
    if split not in _SPLIT_IDS:
        raise UserError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    opts = SyntheticOptions(
        size=int(size),
        n=int(DEFAULT_N[split] if n is None else n),
        seed=int(seed),
        shortcut=float(shortcut),
        intensity=(float(intensity[0]), float(intensity[1])),
    )
    arrays, path = load_or_generate(split, opts, root if root is not None
                                    else default_root(cache_dir))
    return SyntheticFaces(split, arrays, path, transform)
