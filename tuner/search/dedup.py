"""Which trial configurations are already done: the identity of a trial and its MLflow lookup.

A trial is *already done* when a child run of the same MLflow experiment has

- the same resolved config: the full flat ``ExperimentConfig`` of the trial, seed included
  (``config_hash``; recorded on child runs as the ``config.hash`` tag),
- the same code version (``mlflow.source.git.commit``: a dirty tree hashes its diff, see
  ``tuner.tracking.provenance.git_commit``) and the same data (``data.fingerprint``),
- status FINISHED, not stopped early by ASHA, with its test metrics.

Runs written before the ``config.hash`` tag existed are matched by hashing their params (the
full flat config as text, ``tuner.tracking.schema.param_values``), parsed back into a config first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from mlflow.entities import Run

from fer_core.config import ExperimentConfig, field_owners
from fer_core.metric_names import TEST_CL
from tuner.spec.context import SweepContext
from tuner.tracking import client as runs
from tuner.tracking import schema as tr

UNKNOWN = "unknown"


def config_hash(cfg: ExperimentConfig) -> str:
    """16 hex digits identifying a resolved config: equal configs, equal hashes.

    Hashes the canonical flat form (``to_flat``: typed values, layers as ``5+4``), so a value
    given as ``4``, ``4.0`` or ``"4"`` hashes the same.
    """
    text = json.dumps(cfg.to_flat(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_config_hash(run: Run) -> str | None:
    """The ``config.hash`` of a child run: its tag, else its params hashed; None if unreadable."""
    tagged = run.data.tags.get(tr.TAG_CONFIG_HASH)
    if tagged:
        return tagged
    owners = field_owners()
    params = {k: v for k, v in run.data.params.items() if k in owners}
    if set(params) != set(owners):  # an older schema: not the same config as today's
        return None
    try:
        return config_hash(ExperimentConfig.from_flat(params))
    except (ValueError, TypeError):
        return None


def is_reusable(run: Run) -> bool:
    """FINISHED, not early-stopped, with its final test metrics."""
    return (run.info.status == tr.FINISHED
            and run.data.tags.get(tr.TAG_EARLY_STOPPED) != "true"
            and tr.finite(run.data.metrics.get(TEST_CL)))


@dataclass(frozen=True)
class DoneRun:
    """An earlier child run a duplicate configuration reuses."""

    run_id: str
    sweep: str
    trial_name: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    """The run's latest metric values: the last epoch's ``val_*`` and the final ``test_*``."""


def done_runs(ctx: SweepContext) -> dict[str, DoneRun]:
    """``config hash → DoneRun`` of every reusable run with this sweep's code and data.

    Empty when the code version is unknown (no git checkout): the same config under unknown
    code is not the same experiment.
    """
    if ctx.git_commit == UNKNOWN or ctx.data_fingerprint == UNKNOWN:
        return {}
    target = ctx.target
    where = tr.tag_filter({tr.TAG_ROLE: tr.ROLE_TRIAL, tr.TAG_GIT_COMMIT: ctx.git_commit,
                           tr.TAG_DATA_FINGERPRINT: ctx.data_fingerprint})
    found: dict[str, DoneRun] = {}
    for run in runs.iter_runs(target.client(), target.experiment_id,
                              f"{where} and attributes.status = '{tr.FINISHED}'"):
        if not is_reusable(run):
            continue
        key = run_config_hash(run)
        if key is None or key in found:  # several: the first found (newest) stands for all
            continue
        found[key] = DoneRun(run.info.run_id, run.data.tags.get(tr.TAG_SWEEP, ""),
                             run.data.tags.get(tr.TAG_TRIAL_NAME, run.info.run_name or ""),
                             dict(run.data.metrics))
    return found
