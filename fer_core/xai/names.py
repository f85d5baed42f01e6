"""Names and directions of the interpretability metrics (torch-free: analysis reads it).

The names themselves live in :mod:`fer_core.metric_names` (the one home of metric names); this
module gives the xai package its short spellings. Every metric is logged as ``test_xai_<name>``
(the mean over the evaluated images), the same metric of each control map as
``test_xai_<name>_<control>`` (``random``, ``centre``, ``au``), and the randomisation test's
steps as ``test_xai_mprt_<step>``.
"""

from __future__ import annotations

from fer_core.metric_names import XAI_CONTROLS as CONTROLS
from fer_core.metric_names import XAI_METRICS as METRICS
from fer_core.metric_names import XAI_PREFIX as PREFIX
from fer_core.metric_names import XaiMetric

RANDOM_SUFFIX = "_random"

BY_NAME: dict[str, XaiMetric] = {m.name: m for m in METRICS}

__all__ = ["BY_NAME", "CONTROLS", "METRICS", "PREFIX", "RANDOM_SUFFIX", "XaiMetric"]
