"""How a sweep looks in the MLflow UI: the experiment's kind, run names, a link straight to the
sweep's trials sorted by its objective, and the best trial summed up on the parent run.

MLflow 3's UI opens on the GenAI traces overview unless the browser chose its "Model training"
view (``workflowType=machine_learning`` in a link does that) and the experiment is tagged as
model training (``mlflow.experimentKind``); its runs page keeps the search filter and the sort
order in the URL, so one link opens a sweep's trials already compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from mlflow.entities import Run

from fer_core import metric_names as mn
from fer_core.objective import Objective
from tuner.tracking import schema as tr
from tuner.tracking.schema import (  # noqa: F401  (the UI's tags, read here by their users)
    BEST_PREFIX,
    KIND_MODEL_TRAINING,
    SOURCE_TAGS,
    TAG_BEST_RUN_ID,
    TAG_BEST_RUN_NAME,
    TAG_EXPERIMENT_KIND,
)

WORKFLOW = "workflowType=machine_learning"
"""The UI's view switch (GenAI / Model training) as a URL parameter; without it a browser that
never chose opens on GenAI, whatever the experiment's kind (the UI then remembers the choice)."""

HEADLINE_METRICS = (mn.TEST_CL, mn.TEST_ATT_COS, mn.TEST_CAM_COS, mn.VAL_CL, mn.VAL_ATT_COS)
LOCAL_UI = "http://127.0.0.1:5000"


def _number(value: Any) -> str:
    try:
        return f"{float(value):.3g}"  # λ = 2.29, not 2.28985...
    except (TypeError, ValueError):
        return str(value)


def run_label(flat: Mapping[str, Any]) -> str:
    """A trial's run name from what it is: ``cam λ=4 L5 s0``; the λ = 0 baseline has no layer
    (``cam λ=0 s0``)."""
    lam = _number(flat.get("lambda_au", 0))
    layers = str(flat.get("layers", "")).replace("+", "+L")
    where = f" L{layers}" if lam != "0" and layers else ""
    return f"{flat.get('method', '?')} λ={lam}{where} s{flat.get('seed', '?')}"


def trials_filter(sweep_name: str) -> str:
    """The search filter of a sweep's trials (the parent run is left out)."""
    return (f"tags.`{tr.TAG_SWEEP}` = '{sweep_name}' and "
            f"tags.`{tr.TAG_ROLE}` = '{tr.ROLE_TRIAL}'")


def experiment_link(base_url: str, experiment_id: str) -> str:
    """The experiment's page in the model-training view (its runs table)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{WORKFLOW}"


def trials_link(base_url: str, experiment_id: str, sweep_name: str, metric: str,
                mode: str) -> str:
    """The runs page of ``experiment_id`` showing only this sweep's trials, best first."""
    query = (f"{WORKFLOW}&searchFilter={quote(trials_filter(sweep_name), safe='')}"
             f"&orderByKey={quote(f'metrics.`{metric}`', safe='')}"
             f"&orderByAsc={'true' if mode == 'min' else 'false'}")
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def ui_base(uri: str) -> str:
    """Where the UI of tracking ``uri`` is: the server itself, else a local ``mlflow ui``."""
    return uri if uri.startswith(("http://", "https://")) else LOCAL_UI


def best_run(runs: Sequence[Run], objective: Objective) -> Run | None:
    """The complete trial best by the objective's primary metric (None when none finished)."""
    key, sign = objective.primary_metric, 1.0 if objective.primary_mode == "max" else -1.0
    done = [r for r in runs if tr.finite(r.data.metrics.get(key))
            and tr.finite(r.data.metrics.get(mn.TEST_CL))]
    return max(done, key=lambda r: sign * r.data.metrics[key]) if done else None


def best_summary(run: Run) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, tags) the parent run carries for its best trial: ``best.<headline metric>``,
    ``best.run_id`` and ``best.run_name``."""
    metrics = {f"{BEST_PREFIX}{k}": float(run.data.metrics[k]) for k in HEADLINE_METRICS
               if k in run.data.metrics and not math.isnan(run.data.metrics[k])}
    tags = {TAG_BEST_RUN_ID: run.info.run_id, TAG_BEST_RUN_NAME: run.info.run_name or ""}
    return metrics, tags
