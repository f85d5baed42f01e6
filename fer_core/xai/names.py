"""Names and directions of the interpretability metrics (torch-free: analysis reads it).

Every metric is logged as ``test_xai_<name>`` (the mean over the evaluated images), its chance
level as ``test_xai_<name>_random`` (the same metric of uniform random maps on the same images),
and the randomisation test's steps as ``test_xai_mprt_<step>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fer_core.metric_names import XAI_PREFIX as PREFIX  # the one home of metric names

RANDOM_SUFFIX = "_random"


@dataclass(frozen=True)
class XaiMetric:
    """One metric: its logged name, what it measures and which way is better."""

    name: str
    group: str
    label: str
    higher_is_better: bool

    @property
    def key(self) -> str:
        return PREFIX + self.name

    @property
    def random_key(self) -> str:
        return PREFIX + self.name + RANDOM_SUFFIX


METRICS: tuple[XaiMetric, ...] = (
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
"""In table order. ``mprt`` is the mean Spearman correlation over the cascade's steps (lower:
the map depends more on the learned parameters)."""

BY_NAME: dict[str, XaiMetric] = {m.name: m for m in METRICS}
