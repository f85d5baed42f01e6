"""The layer sets at a fixed λ, plus the λ = 0 baseline (the paper's Table 3)."""

from __future__ import annotations

from fer_core import metric_names as mn
from search_spaces.base import SweepSpace, arm_by, register
from search_spaces.params import grid
from search_spaces.sizes import BASELINE, LAPTOP, LAYER_SETS

LAMBDA_FIXED = 4.0  # override with --set lambda_au=...

SPACE = register(
    SweepSpace(
        name="layers",
        description="layer sets {5}…{5,4,3,2,1} at λ=4, plus the λ=0 baseline",
        reproduces="Table 3",
        params={"layers": grid(LAYER_SETS), "lambda_au": LAMBDA_FIXED},
        metric=mn.VAL_CL,
        mode="max",
        searcher="grid",
        scheduler="fifo",
        reference_points=(BASELINE,),
        overrides=LAPTOP,
        arm=arm_by("layers", "lambda_au"),
    )
)
