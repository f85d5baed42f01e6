"""Pinned sizes shared by the spaces: what a laptop CPU affords, and the tiniest real run.

Measured on 2 CPU cores (shared/ENV.md): resnet18 from scratch at 64 px, output stride 16
(4×4 maps at layer 5), ~1400 synthetic images, 1 CPU per trial, 2 trials at once, finish a
6–8 trial sweep in about ten minutes and already show the AU alignment effect after 3 epochs.
GPU users override these with ``--set`` (e.g. ``--set img_size=224 --set backbone=resnet50``).
"""

from __future__ import annotations

from typing import Any

LAPTOP: dict[str, Any] = {
    "dataset": "synthetic",
    "backbone": "resnet18",
    "img_size": 64,
    "output_stride": 16,
    "synthetic_n": 1400,
    "epochs": 4,
    "batch_size": 32,
}

TINY: dict[str, Any] = {
    "dataset": "synthetic",
    "backbone": "resnet18",
    "img_size": 32,
    "output_stride": 16,
    "synthetic_n": 70,
    "epochs": 2,
    "batch_size": 16,
    "max_train_batches": 2,
}
"""For ``smoke`` and ``--smoke-test``: every code path, seconds per trial."""

LAYER_SETS: tuple[str, ...] = ("5", "4", "3", "2", "1", "5+4", "5+4+3", "5+4+3+2", "5+4+3+2+1")
"""The layer sets of the paper's Table 3 (PROTOCOL §5 numbering)."""

BASELINE: dict[str, Any] = {"lambda_au": 0.0, "layers": "5"}
"""The vanilla model: same everything, no AU term."""
