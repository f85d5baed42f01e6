"""Per-class average maps of a logged model over its test split (the paper's Figs. 6–9).

For one run: load ``model/selected.pt`` from MLflow (``fer_core.inference.load_model``), rebuild
the test split from the run's own params (dataset, data_root, img_size, …), and average per true
expression class: the AU map (valid maps only, the run's ``au_variant``), the layer attention of
every reported layer, and the CAM of the true class (as CAM-COS scores it). All maps are at input
size in [0, 1], so the averages are too. :func:`maps_figure` draws them, one row per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, replace

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from fer_core import CLASSES, EXPRESSION_CLASSES, NUM_CLASSES
from fer_core.au import render_au_maps
from fer_core.cli import UserError
from fer_core.config import DataConfig
from fer_core.engine import resolve_device
from fer_core.inference import LoadedModel, ModelSourceError, explain_batch, load_model
from fer_core.loaders import build_loader, build_split

CMAP = "jet"


class DataUnavailable(UserError):
    """The run's data cannot be read on this machine; the message names its data_root."""


class _ClassSums:
    """Running per-class sums of (B, S, S) maps."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.total = torch.zeros(NUM_CLASSES, *size, dtype=torch.float64)
        self.count = torch.zeros(NUM_CLASSES, dtype=torch.long)

    def add(self, maps: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor | None = None):
        if keep is not None:
            maps, labels = maps[keep], labels[keep]
        self.total.index_add_(0, labels, maps.double())
        self.count += torch.bincount(labels, minlength=NUM_CLASSES)

    def means(self) -> np.ndarray:
        """(6, S, S) means of the expression classes; NaN for a class with nothing added."""
        idx = list(EXPRESSION_CLASSES)
        count = self.count[idx].double()[:, None, None]
        mean = self.total[idx] / count.clamp_min(1)
        return torch.where(count > 0, mean, math.nan).numpy()


@dataclass
class ClassMaps:
    """Per-class averages of one run: arrays are (6, S, S), rows in ``EXPRESSION_CLASSES``."""

    label: str
    run_id: str
    counts: list[int]
    """Test images per expression class."""
    au: np.ndarray
    attention: dict[int, np.ndarray]
    cam: np.ndarray | None
    data: DataConfig
    au_variant: str


def average_maps(loaded: LoadedModel, loader: torch.utils.data.DataLoader, au_variant: str,
                 progress: bool = True, desc: str = "maps"
                 ) -> tuple[np.ndarray, dict[int, np.ndarray], np.ndarray | None, list[int]]:
    """(AU, attention per layer, CAM or None, images per class) averaged per true class."""
    size = (loaded.img_size, loaded.img_size)
    au, cam = _ClassSums(size), _ClassSums(size)
    attention = {k: _ClassSums(size) for k in loaded.layers}
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        x, labels = batch["image"], batch["label"].long()
        # The CAM of the true class: what CAM-COS scores (docs/method.md §6).
        seen = explain_batch(loaded, x, class_idx=labels)
        maps, valid = render_au_maps(batch["landmarks"].float(), labels, size=tuple(x.shape[-2:]),
                                     variant=au_variant)
        au.add(maps, labels, valid)
        for k, a in seen.attention.items():
            attention[k].add(a, labels)
        if seen.cams is not None:
            cam.add(seen.cams, labels)
    counts = [int(attention[loaded.layers[0]].count[k]) for k in EXPRESSION_CLASSES]
    has_cam = bool(cam.count.sum())
    return (au.means(), {k: s.means() for k, s in attention.items()},
            cam.means() if has_cam else None, counts)


def run_maps(run_id: str, label: str, tracking_uri: str | None, data_root: str | None = None,
             device: str = "auto", batch_size: int | None = None,
             progress: bool = True) -> ClassMaps:
    """Per-class average maps of the model logged by ``run_id`` over its test split."""
    try:
        loaded = load_model(f"runs:/{run_id}", tracking_uri, device=resolve_device(device))
    except ModelSourceError as err:  # say which arm's run lacks its model
        raise ModelSourceError(f"{label} run {run_id}: {err}") from err
    data = loaded.cfg.data if data_root is None else replace(loaded.cfg.data, data_root=data_root)
    try:
        dataset = build_split(data, "test")
    except (OSError, UserError) as err:
        raise DataUnavailable(
            f"run {run_id} was trained on dataset {data.dataset!r} with "
            f"data_root={data.data_root!r}, which cannot be read here ({err}). Run where that "
            f"folder exists, or pass --data-root PATH pointing at a copy.") from err
    loader = build_loader(data, "test", batch_size or loaded.cfg.train.batch_size,
                          dataset=dataset)
    variant = loaded.cfg.align.au_variant
    au, attention, cam, counts = average_maps(loaded, loader, variant, progress,
                                              desc=f"maps {label}")
    return ClassMaps(label, run_id, counts, au, attention, cam, data, variant)


def _columns(runs: Sequence[ClassMaps]) -> list[tuple[str, np.ndarray]]:
    """(column title, (6, S, S) maps): the AU map once, then attention per layer and CAM."""
    first = runs[0]
    for other in runs[1:]:
        if (astuple(other.data), other.au_variant) != (astuple(first.data), first.au_variant):
            raise UserError(f"runs {first.run_id} and {other.run_id} were evaluated on "
                             f"different data or AU variants ({first.data} / {first.au_variant}"
                             f" vs {other.data} / {other.au_variant}); draw them one --run-id "
                             f"at a time")
    columns = [(f"AU map ({first.au_variant})", first.au)]
    for run in runs:
        columns += [(f"{run.label}\nattention layer {k}", run.attention[k])
                    for k in sorted(run.attention, reverse=True)]
        if run.cam is not None:
            columns.append((f"{run.label}\nCAM (true class)", run.cam))
    return columns


def maps_figure(runs: Sequence[ClassMaps], title: str = "") -> Figure:
    """Rows = the six expression classes; columns = AU map, each run's attention and CAM."""
    if not runs:
        raise UserError("maps_figure needs at least one run's maps")
    columns = _columns(runs)
    rows = len(EXPRESSION_CLASSES)
    fig = Figure(figsize=(1.2 + 1.7 * len(columns), 1.0 + 1.7 * rows), layout="constrained")
    axes = fig.subplots(rows, len(columns), squeeze=False)
    image = None
    for c, (column_title, maps) in enumerate(columns):
        axes[0, c].set_title(column_title, fontsize=8)
        for r in range(rows):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            image = ax.imshow(maps[r], vmin=0.0, vmax=1.0, cmap=CMAP)
            if not np.isfinite(maps[r]).any():
                ax.text(0.5, 0.5, "no images", transform=ax.transAxes, ha="center", fontsize=7)
    for r, k in enumerate(EXPRESSION_CLASSES):
        axes[r, 0].set_ylabel(f"{CLASSES[k]}\n(n={runs[0].counts[r]})", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.5, label="per-class mean")
    fig.suptitle(title or "Per-class averages over the test split")
    return fig
