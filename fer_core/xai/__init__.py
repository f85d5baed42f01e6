"""Interpretability beyond CAM-COS: localisation against the AU map, faithfulness, sanity.

Modules (one job each): ``common`` (maps, probabilities, ranks), ``localisation``,
``faithfulness`` (deletion/insertion, Average Drop / Increase in Confidence), ``baselines``
(what deletion/insertion fill removed pixels with), ``road``, ``sanity`` (model-parameter
randomisation), ``controls`` (random, centred-Gaussian and AU control maps), ``evaluate`` (the
one entry point, :func:`~fer_core.xai.evaluate.evaluate_xai`), ``names`` (metric names and
directions, torch-free; defined in :mod:`fer_core.metric_names`), ``reliability`` (bootstrap
intervals, randomisation and perturbation checks of the metrics), ``shortcut`` (ground truth
from the synthetic shortcut cue), ``regions`` (map mass per AU region) and ``demo_models``
(briefly trained models for the studies). The package imports torch only when its functions
are used, so analysis code can read :mod:`fer_core.xai.names` without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"evaluate_xai": "evaluate", "run_xai": "evaluate", "XaiConfig": "evaluate"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["XaiConfig", "evaluate_xai", "run_xai"]
