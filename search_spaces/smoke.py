"""The smallest real sweep: Optuna + ASHA + the baseline on tiny data (tests, CI)."""

from __future__ import annotations

from fer_core import metric_names as mn
from search_spaces.base import SweepSpace, arm_au, register
from search_spaces.params import choice, loguniform
from search_spaces.sizes import BASELINE, TINY

SPACE = register(
    SweepSpace(
        name="smoke",
        description="3 tiny trials (baseline + 2 Optuna samples), 2 epochs, 32 px: tests and CI",
        reproduces="nothing (plumbing)",
        params={
            "lambda_au": loguniform(0.5, 8.0),
            "layers": choice(["5", "5+4"]),
        },
        metric=mn.VAL_ATT_COS,
        mode="max",
        searcher="optuna",
        scheduler="asha",
        num_samples=3,
        reference_points=(BASELINE,),
        overrides=TINY,
        profile="smoke",
        grace_period=1,
        max_concurrent=2,
        arm=arm_au,
    )
)
