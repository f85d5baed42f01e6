"""The command a finished sweep prints to make its report (``python -m analysis.report``)."""

from __future__ import annotations

import shlex

from mlflow import MlflowClient

from tuner.tracking.client import TrackingTarget
from tuner.tracking.redact import redact

REPORT_FOLDER = "report"


def report_command(client: MlflowClient, target: TrackingTarget) -> str:
    """Tables and figures of this sweep's trials alone (``--where sweep=NAME``) in
    ``report/<sweep>/``, read from the store the sweep wrote (credentials redacted). Called
    once the store has answered (the closing summary), as the experiment's name is looked up."""
    experiment = client.get_experiment(target.experiment_id).name
    sweep = shlex.quote(target.sweep_name)
    return (f"python -m analysis.report --experiment {shlex.quote(experiment)} --mlflow-uri "
            f"{shlex.quote(redact(target.uri))} --where sweep={sweep} -o {REPORT_FOLDER}/{sweep}")
