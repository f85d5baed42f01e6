"""Pinned sizes shared by the spaces: what a laptop CPU affords, and the tiniest real run.

The laptop sizes are chosen so that every complete trial of the default sweep trains to a
plateau on 2 CPU cores and the whole sweep fits in about 10 minutes: resnet18 from scratch at
48 px, output stride 16 (3×3 maps at layer 5), 1,200 synthetic images whose expressions are
drawn at 0.6–1 of full strength, 10 epochs. Measured (single runs, 1 thread each, two at once):
the λ = 0 baseline's val CL over epochs 8–10 is 86.7, 90.0, 92.9 % and its test CL 94.6 %;
λ = 4 at layer 5 reaches 85 % at epoch 5 and tests at 96.3 %, with test ATT-COS 0.447 (λ = 0)
against 0.633 (λ = 4). At 64 px a step costs 1.4× as much and the baseline converges no
sooner (test CL 89.2 %). With the generator's default strengths (0.3–1), 3 epochs, or batch 16
for 7 epochs (74.6 %), the baseline stays below 80 % and any accuracy gap is undertraining.
The learning rate is 25× the paper's (0.002, for fine-tuning ImageNet weights): from scratch
0.002 barely moves the network in a few epochs. GPU users override these with ``--set`` (e.g.
``--set img_size=224 --set backbone=resnet50 --set lr=0.002 --set pretrained=...``).
"""

from __future__ import annotations

from typing import Any

LAPTOP: dict[str, Any] = {
    "dataset": "synthetic",
    "backbone": "resnet18",
    "img_size": 48,
    "output_stride": 16,
    "synthetic_n": 1200,
    "synthetic_intensity": 0.6,
    "epochs": 10,
    "batch_size": 32,
    "lr": 0.05,
    "xai_images": 12,  # bench/xai_cost.py: ~9 % of a trial at these sizes
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
    "xai_images": 2,  # every xai metric reaches the runs, at plumbing cost
}
"""For ``smoke`` and ``--smoke-test``: every code path, seconds per trial."""

LAYER_SETS: tuple[str, ...] = ("5", "4", "3", "2", "1", "5+4", "5+4+3", "5+4+3+2", "5+4+3+2+1")
"""The layer sets of the paper's Table 3 (docs/method.md §5 numbering)."""

BASELINE: dict[str, Any] = {"lambda_au": 0.0, "layers": "5"}
"""The vanilla model: same everything, no AU term."""

LAMBDA_RANGE: tuple[float, float] = (0.1, 20.0)
"""λ searched log-uniformly over this range (docs/method.md §8: below 1 to 20)."""


def lambda_x_layers() -> dict[str, Any]:
    """λ (log-uniform over ``LAMBDA_RANGE``) × the Table 3 layer sets, for the searched spaces."""
    from ray import tune  # Tune samplers are built only where a space is declared

    return {"lambda_au": tune.loguniform(*LAMBDA_RANGE), "layers": tune.choice(list(LAYER_SETS))}


PAPER_POINT: dict[str, Any] = {"lambda_au": 4.0, "layers": "5"}
"""The paper's recommended setting (Fig. 5's CL peak, Table 3's best layer)."""
