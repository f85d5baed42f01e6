"""λ × aligned layer sets, searched by Optuna TPE with ASHA.

Two reference points run first and to the end: the λ = 0 baseline every trial is compared with,
and the paper's setting (λ = 4 at layer 5), which Optuna also learns from.
"""

from __future__ import annotations

from fer_core import metric_names as mn
from search_spaces.base import SweepSpace, arm_au, register
from search_spaces.sizes import BASELINE, LAPTOP, PAPER_POINT, lambda_x_layers

SPACE = register(
    SweepSpace(
        name="lambda_layers",
        description="λ (log-uniform 0.1–20) × layer sets {5}…{5,4,3,2,1}; λ=0 and λ=4@5 first",
        reproduces="Fig. 5 × Table 3",
        params=lambda_x_layers(),
        # The method's claim is interpretability: the searcher climbs the headline-layer
        # ATT-COS; CL of every trial is logged next to it so its cost stays visible.
        metric=mn.VAL_ATT_COS,
        mode="max",
        searcher="optuna",
        scheduler="asha",
        num_samples=6,
        reference_points=(BASELINE, PAPER_POINT),
        overrides=LAPTOP,
        grace_period=1,
        reduction_factor=2.0,
        max_concurrent=2,
        arm=arm_au,
    )
)
