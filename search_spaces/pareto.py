"""Multi-objective Optuna over λ × layer sets: maximise CL and ATT-COS together.

The study lives in an Optuna RDB storage (a sqlite file by default), so
``optuna-dashboard sqlite:///optuna.db`` shows its Pareto front.
"""

from __future__ import annotations

from fer_core import metric_names as mn
from search_spaces.base import SweepSpace, arm_au, register
from search_spaces.sizes import BASELINE, LAPTOP, PAPER_POINT, lambda_x_layers

SPACE = register(
    SweepSpace(
        name="pareto",
        description="multi-objective Optuna (max val_cl, max val_att_cos) over λ × layer sets",
        reproduces="the CL/ATT-COS trade-off of Fig. 5",
        params=lambda_x_layers(),
        metric=(mn.VAL_CL, mn.VAL_ATT_COS),
        mode=("max", "max"),
        searcher="optuna_pareto",
        # ASHA needs one metric to rank by; a Pareto search keeps every trial to the end.
        scheduler="fifo",
        num_samples=8,
        reference_points=(BASELINE, PAPER_POINT),
        overrides=LAPTOP,
        arm=arm_au,
        summary="pareto_front",
    )
)
