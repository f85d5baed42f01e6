"""The per-AU-region figure: for each expression class, the share of the map's mass in each
AU region of the codebook (``fer_core.xai.regions``), λ = 0 beside λ > 0.

The map is the true class's CAM (the headline layer's attention for methods without a CAM),
averaged over the test split's images of each class. Registered as the report's ``regions``
figure (``analysis.figures``); the runs are the best of each arm, as for the maps figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from fer_core import CLASSES, EXPRESSION_CLASSES
from fer_core.engine import resolve_device
from fer_core.inference import explain_batch, load_model
from fer_core.loaders import build_loader, build_split
from fer_core.xai.regions import ELSEWHERE, REGIONS, region_shares

NAMES = (*REGIONS, ELSEWHERE)


def class_region_shares(run_id: str, tracking_uri: str | None, device: str = "auto",
                        batch_size: int | None = None) -> np.ndarray:
    """``(6, len(NAMES))`` mean region shares per expression class of the run's test split."""
    loaded = load_model(f"runs:/{run_id}", tracking_uri, device=resolve_device(device))
    data = loaded.cfg.data
    loader = build_loader(data, "test", batch_size or loaded.cfg.train.batch_size,
                          dataset=build_split(data, "test"))
    sums = np.zeros((len(CLASSES), len(NAMES)))
    counts = np.zeros(len(CLASSES))
    for batch in loader:
        x, labels = batch["image"], batch["label"].long()
        seen = explain_batch(loaded, x, class_idx=labels)
        maps = seen.cams if seen.cams is not None else seen.attention[max(seen.attention)]
        shares = region_shares(maps.cpu(), batch["landmarks"].float(), tuple(x.shape[-2:]))
        np.add.at(sums, labels.numpy(), shares.double().numpy())
        counts += np.bincount(labels.numpy(), minlength=len(CLASSES))
    idx = list(EXPRESSION_CLASSES)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[idx] / counts[idx, None]


def regions_figure(arms: Sequence[tuple[str, np.ndarray]], title: str = "") -> Figure:
    """One panel per expression class; per region one bar per arm."""
    fig = Figure(figsize=(12.0, 5.5), layout="constrained")
    axes = fig.subplots(2, 3, sharey=True).ravel()
    width = 0.8 / max(1, len(arms))
    positions = np.arange(len(NAMES))
    for panel, (ax, cls) in enumerate(zip(axes, EXPRESSION_CLASSES, strict=True)):
        for k, (label, shares) in enumerate(arms):
            ax.bar(positions + (k - (len(arms) - 1) / 2) * width, shares[panel], width,
                   label=label)
        ax.set_title(CLASSES[cls], fontsize=9)
        ax.set_xticks(positions, NAMES, rotation=40, ha="right", fontsize=7)
        ax.set_ylim(0.0, 1.0)
        if panel % 3 == 0:
            ax.set_ylabel("share of the map's mass", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "Where the map looks, by AU region", fontsize=10)
    return fig

