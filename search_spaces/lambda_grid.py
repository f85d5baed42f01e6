"""A λ grid at layer 5 (the paper's Fig. 5); registered as ``lambda``."""

from __future__ import annotations

from fer_core import metric_names as mn
from search_spaces.base import SweepSpace, arm_by, register
from search_spaces.params import grid
from search_spaces.sizes import LAPTOP

LAMBDAS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0)

SPACE = register(
    SweepSpace(
        name="lambda",
        description="λ ∈ {0, 0.5, 1, 2, 4, 8, 12, 16, 20} at layer 5",
        reproduces="Fig. 5",
        params={"lambda_au": grid(LAMBDAS), "layers": "5"},
        metric=mn.VAL_CL,
        mode="max",
        searcher="grid",
        scheduler="fifo",
        overrides=LAPTOP,
        arm=arm_by("lambda_au"),
    )
)
