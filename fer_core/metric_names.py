"""The names of the metrics the engine emits, defined once.

``fer_core.engine`` builds its results with these names; ``tuner.tracking.schema`` logs to
MLflow every key that belongs to a family below; dedup, the sweep summaries and ``analysis`` read
the same names back. Families are patterns, not lists, so a new term reaches MLflow without an
edit here: a method's own loss (ACoL's second branch logs ``train_loss_acol_b``) or an
interpretability metric (``test_xai_<name>``, ``fer_core.xai.names``).

Families (per epoch, ``step`` = epoch, unless final)
    ``train``     ``train_loss`` (the total), ``train_loss_<term>`` (``ce``, ``align``, and each
                  term a method adds), ``train_cl``
    ``val``       ``val_cl``, ``val_att_cos`` (headline layer), ``val_att_cos_l<k>`` (each
                  evaluated layer), ``val_cam_cos``
    ``progress``  ``lr``, ``epoch_time_s``, ``best_val_cl``, ``best_epoch``
    ``test``      final, for the model selected on validation CL: ``test_cl``,
                  ``test_att_cos``, ``test_att_cos_l<k>``, ``test_cam_cos``, ``test_n_invalid``
    ``test_xai``  final: ``test_xai_<name>``

Accuracies (``*_cl``) are percentages (0-100); cosines are in [0, 1] for CNN layers.
"""

from __future__ import annotations

import re

TRAIN, VAL, TEST = "train", "val", "test"
CL, ATT_COS, CAM_COS, N_INVALID, LOSS = "cl", "att_cos", "cam_cos", "n_invalid", "loss"

EPOCH = "epoch"
"""The epoch of a result: the MLflow ``step`` and Tune's time attribute, not a run metric."""
LR, EPOCH_TIME, BEST_VAL_CL, BEST_EPOCH = "lr", "epoch_time_s", "best_val_cl", "best_epoch"
XAI_PREFIX = "test_xai_"


def key(split: str, name: str) -> str:
    """``<split>_<name>``, e.g. ``val_cl``, or ``train_loss_ce`` for the loss part ``loss_ce``."""
    return f"{split}_{name}"


def layer_key(split: str, layer: int) -> str:
    """ATT-COS of one tapped layer, e.g. ``test_att_cos_l5``."""
    return f"{split}_{ATT_COS}_l{layer}"


TRAIN_LOSS, TRAIN_CL = key(TRAIN, LOSS), key(TRAIN, CL)
VAL_CL, VAL_ATT_COS, VAL_CAM_COS = key(VAL, CL), key(VAL, ATT_COS), key(VAL, CAM_COS)
TEST_CL, TEST_ATT_COS, TEST_CAM_COS = key(TEST, CL), key(TEST, ATT_COS), key(TEST, CAM_COS)
TEST_N_INVALID = key(TEST, N_INVALID)

_TERM = r"[A-Za-z0-9][\w.\-]*"  # what MLflow accepts in a key after the prefix
FAMILIES: dict[str, re.Pattern[str]] = {
    "train": re.compile(rf"{TRAIN_LOSS}(_{_TERM})?|{TRAIN_CL}"),
    "val": re.compile(rf"{VAL}_({CL}|{ATT_COS}(_l\d+)?|{CAM_COS})"),
    "progress": re.compile("|".join(map(re.escape, (LR, EPOCH_TIME, BEST_VAL_CL, BEST_EPOCH)))),
    "test": re.compile(rf"{TEST}_({CL}|{ATT_COS}(_l\d+)?|{CAM_COS}|{N_INVALID})"),
    "test_xai": re.compile(rf"{XAI_PREFIX}{_TERM}"),
}
"""Family name → the pattern its keys match in full."""


def family(name: str) -> str | None:
    """The family ``name`` belongs to, or None (not a metric of a trial's run)."""
    return next((fam for fam, pattern in FAMILIES.items() if pattern.fullmatch(name)), None)


EPOCH_METRICS = (TRAIN_LOSS, key(TRAIN_LOSS, "ce"), key(TRAIN_LOSS, "align"), TRAIN_CL, VAL_CL,
                 VAL_ATT_COS, VAL_CAM_COS, LR, EPOCH_TIME, BEST_VAL_CL, BEST_EPOCH)
"""The per-epoch metrics every trial has (a method may add ``train_loss_<term>`` ones)."""
FINAL_METRICS = (TEST_CL, TEST_ATT_COS, TEST_CAM_COS, TEST_N_INVALID, BEST_EPOCH)
"""The final metrics every trial that ran to its end has (besides ``test_att_cos_l<k>``)."""
ACCURACY_METRICS = (TRAIN_CL, VAL_CL, BEST_VAL_CL, TEST_CL)
"""In percent (0-100)."""
SELECTION_METRICS = (BEST_VAL_CL, BEST_EPOCH)
"""Which epoch's model the final metrics describe (selected on validation CL)."""
FINAL_FAMILIES = ("test", "test_xai")
"""The families measured once, on the selected model: a trial's results, not its curves."""


def is_final(name: str) -> bool:
    """Whether ``name`` is a final metric (``test_*``, ``test_xai_*``)."""
    return family(name) in FINAL_FAMILIES
