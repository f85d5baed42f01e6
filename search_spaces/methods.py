"""Every registered CAM method, without and with AU guidance (the paper's Tables 1–2)."""

from __future__ import annotations

from ray import tune

from fer_core.cams import METHODS
from search_spaces.base import SweepSpace, arm_by, register
from search_spaces.sizes import LAPTOP

LAMBDA_WITH_AU = 4.0  # Fig. 5's accuracy peak, PROTOCOL §8

SPACE = register(
    SweepSpace(
        name="methods",
        description="every CAM method × {without AU (λ=0), with AU (λ=4)} at layer 5",
        reproduces="Tables 1–2",
        params={
            "method": tune.grid_search(METHODS.names()),
            "lambda_au": tune.grid_search([0.0, LAMBDA_WITH_AU]),
            "layers": "5",
        },
        metric="val_cl",
        mode="max",
        searcher="grid",
        # Table cells compare fully trained models: no early stopping.
        scheduler="fifo",
        overrides=LAPTOP,
        arm=arm_by("method", "lambda_au"),
    )
)
