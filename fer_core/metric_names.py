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
    ``test_shortcut``  final: ``test_shortcut_<name>``, the shortcut cue's reliance and
                  attribution (:func:`shortcut_keys`, docs/method.md §7.2)

Accuracies (``*_cl``) are percentages (0-100); cosines are in [0, 1] for CNN layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRAIN, VAL, TEST = "train", "val", "test"
CL, ATT_COS, CAM_COS, N_INVALID, LOSS = "cl", "att_cos", "cam_cos", "n_invalid", "loss"

EPOCH = "epoch"
"""The epoch of a result: the MLflow ``step`` and Tune's time attribute, not a run metric."""
LR, EPOCH_TIME, BEST_VAL_CL, BEST_EPOCH = "lr", "epoch_time_s", "best_val_cl", "best_epoch"
XAI_PREFIX = "test_xai_"
SHORTCUT_PREFIX = "test_shortcut_"


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
    "test_shortcut": re.compile(rf"{SHORTCUT_PREFIX}{_TERM}"),
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
FINAL_FAMILIES = ("test", "test_xai", "test_shortcut")
"""The families measured once, on the selected model: a trial's results, not its curves."""


def is_final(name: str) -> bool:
    """Whether ``name`` is a final metric (``test_*``, ``test_xai_*``, ``test_shortcut_*``)."""
    return family(name) in FINAL_FAMILIES


# --- interpretability (``test_xai`` family): every name, defined here once -------------------


@dataclass(frozen=True)
class XaiMetric:
    """One interpretability metric: its logged name, group, label and better direction."""

    name: str
    group: str
    label: str
    higher_is_better: bool

    @property
    def key(self) -> str:
        return XAI_PREFIX + self.name

    def control_key(self, control: str) -> str:
        """The same metric of a control map, e.g. ``test_xai_deletion_random``."""
        return f"{XAI_PREFIX}{self.name}_{control}"

    @property
    def random_key(self) -> str:
        return self.control_key("random")

    @property
    def interval_key(self) -> str:
        """Half-width of the 95 % bootstrap interval of the mean over the evaluated images."""
        return XAI_PREFIX + self.name + XAI_INTERVAL_SUFFIX


XAI_METRICS: tuple[XaiMetric, ...] = (
    XaiMetric("pointing_game", "localisation", "Pointing game", True),
    XaiMetric("relevance_mass", "localisation", "Relevance mass", True),
    XaiMetric("relevance_rank", "localisation", "Relevance rank", True),
    XaiMetric("au_auc", "localisation", "AU AUC", True),
    XaiMetric("topk_iou", "localisation", "Top-k IoU", True),
    XaiMetric("deletion", "faithfulness", "Deletion AUC", False),
    XaiMetric("insertion", "faithfulness", "Insertion AUC", True),
    XaiMetric("average_drop", "faithfulness", "Average Drop (%)", False),
    XaiMetric("increase_confidence", "faithfulness", "Increase in Conf. (%)", True),
    XaiMetric("road", "faithfulness", "ROAD", True),
    XaiMetric("road_morf", "faithfulness", "ROAD MoRF", False),
    XaiMetric("road_lerf", "faithfulness", "ROAD LeRF", True),
    XaiMetric("mprt", "sanity", "Randomisation ρ", False),
)
"""In table order (docs/method.md §7.1). ``mprt`` is the mean Spearman correlation over the
randomisation cascade's steps (lower: the map depends more on the learned parameters)."""

XAI_CONTROLS: dict[str, str] = {
    "random": "Random map (chance)",
    "centre": "Centred Gaussian (centre bias)",
    "au": "AU map (the prior's ceiling)",
}
"""Control maps scored with every metric on the same images, ``test_xai_<metric>_<control>``
(docs/method.md §7.1): what chance, "look at the middle" and the AU prior itself score."""

XAI_LAYER_METRICS = ("pointing_game", "relevance_mass", "relevance_rank", "au_auc", "topk_iou")
"""Scored for each reported layer's attention too: ``test_xai_<metric>_att_l<k>``."""

XAI_INTERVAL_SUFFIX = "_ci95"
"""``test_xai_<metric>_ci95``: the metric's resolution at the evaluated image count (the
half-width of the 95 % bootstrap interval of its mean over the images; model's map only)."""

XAI_RUN = ("n_images", "time_s")
"""``test_xai_n_images`` (images scored), ``test_xai_time_s`` (seconds the metrics took)."""


def xai_keys(layers: tuple[int, ...] = (), cascade: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every ``test_xai_*`` key a trial logs with these reported ``layers`` and randomisation
    ``cascade`` step names (``test_xai_mprt_<step>``; the steps depend on the network)."""
    keys = [XAI_PREFIX + n for n in XAI_RUN]
    for metric in XAI_METRICS:
        keys += [metric.key, metric.interval_key]
        keys += [metric.control_key(c) for c in XAI_CONTROLS]
    keys += [f"{XAI_PREFIX}{n}_att_l{k}" for k in layers for n in XAI_LAYER_METRICS]
    keys += [f"{XAI_PREFIX}mprt_{step}" for step in cascade]
    return tuple(keys)


# --- the shortcut cue (``test_shortcut`` family, fer_core.xai.shortcut) -----------------------

SHORTCUT_CONDITIONS = ("in_place", "removed", "moved", "swapped")
"""How the class square is shown to the model (docs/method.md §7.2): in its place, removed,
moved to another class's spot, swapped for another class's square."""
SHORTCUT_CUE_SCORES = ("mass", "mass_ratio", "pointing")
"""Attribution to the square, of the CAM (``cam_<score>``) and of each layer's attention
(``att_l<k>_<score>``)."""
SHORTCUT_N_IMAGES = "n_images"
"""``test_shortcut_n_images``: the images scored (fewer when the split has fewer usable)."""


def shortcut_names(layers: tuple[int, ...] = ()) -> tuple[str, ...]:
    """The short names :func:`fer_core.xai.shortcut.measure` returns for these attention
    ``layers``: ``acc_<condition>``, ``p_true_<condition>``, ``follows``, ``cam_<score>``,
    ``att_l<k>_<score>``, ``reliance``, ``rho``."""
    names = [f"{kind}_{c}" for c in SHORTCUT_CONDITIONS for kind in ("acc", "p_true")]
    names += ["follows", *(f"cam_{s}" for s in SHORTCUT_CUE_SCORES)]
    names += [f"att_l{k}_{s}" for k in layers for s in SHORTCUT_CUE_SCORES]
    return (*names, "reliance", "rho")


def shortcut_key(name: str) -> str:
    """The logged name of a shortcut number, e.g. ``test_shortcut_reliance``."""
    return SHORTCUT_PREFIX + name


def shortcut_keys(layers: tuple[int, ...] = ()) -> tuple[str, ...]:
    """Every ``test_shortcut_*`` key a trial with ``shortcut_images`` > 0 logs, its attention
    measured at ``layers`` (the aligned layers and the headline layer)."""
    return tuple(shortcut_key(n) for n in (SHORTCUT_N_IMAGES, *shortcut_names(layers)))
