"""A picture of what the model will be taught: samples with their landmarks and AU maps."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from fer_core import CLASSES
from fer_core.au import DEFAULT_VARIANT, render_au_maps
from fer_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms


def pick_indices(labels: np.ndarray | None, length: int, n: int, seed: int = 0) -> list[int]:
    """``n`` sample positions, taken from the classes in turn so every class shows up."""
    rng = np.random.default_rng(seed)
    if labels is None:
        return sorted(rng.permutation(length)[:n].tolist())
    queues = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(n, length):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(int(queue.pop()))
    return picked


def preview_figure(
    dataset,
    n: int = 16,
    size: int = 160,
    augment: bool = False,
    seed: int = 0,
    variant: str = DEFAULT_VARIANT,
) -> Figure:
    """A grid of ``n`` samples of ``dataset`` (raw samples, see ``fer_core.data.base.Sample``).

    Each cell shows the image after the evaluation transform (or a training augmentation with
    ``augment=True``), its AU map (``variant``) as a heat overlay and its 68 landmarks. The title
    gives the class and says when the AU map is invalid (Neutral, or no landmarks).
    """
    transform = build_transforms(train=augment, size=size, seed=seed)
    labels = getattr(dataset, "labels", None)
    items = [transform(dataset[i]) for i in pick_indices(labels, len(dataset), n, seed)]
    points = torch.stack([s["landmarks"] for s in items])
    classes = torch.tensor([s["label"] for s in items])
    maps, valid = render_au_maps(points, classes, size=size, variant=variant)
    cols = math.ceil(math.sqrt(len(items)))
    rows = math.ceil(len(items) / cols)
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows), layout="constrained")
    for k, axis in enumerate(fig.subplots(rows, cols, squeeze=False).ravel()):
        axis.axis("off")
        if k >= len(items):
            continue
        image = items[k]["image"].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
        axis.imshow(np.clip(image, 0, 1))
        if valid[k]:
            heat = maps[k].numpy()
            axis.imshow(heat, cmap="jet", alpha=0.5 * heat, vmin=0, vmax=1)
        xy = points[k].numpy()
        axis.scatter(xy[:, 0], xy[:, 1], s=3, c="lime", linewidths=0)
        axis.set_xlim(-0.5, size - 0.5)
        axis.set_ylim(size - 0.5, -0.5)
        note = "" if valid[k] else " (no AU map)"
        axis.set_title(f"{CLASSES[items[k]['label']]}{note}", fontsize=8)
    return fig


def save_preview(dataset, out: str | os.PathLike, **options) -> Path:
    """Write :func:`preview_figure` as a PNG; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    preview_figure(dataset, **options).savefig(out, dpi=100)
    return out
