"""What a finished sweep prints last: where its results are and the commands to look at them
(the MLflow UI, the report, a resume, the Optuna dashboard), credentials redacted."""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

from tuner.spec.context import StoragePath, SweepContext
from tuner.tracking import passwords, ui
from tuner.tracking.redact import REDACTED, redact
from tuner.tracking.target import TrackingTarget

if TYPE_CHECKING:
    from mlflow import MlflowClient

REPORT_FOLDER = "report"


def report_command(client: MlflowClient, target: TrackingTarget) -> str:
    """Tables and figures of this sweep's trials alone (``--where sweep=NAME``) in
    ``report/<sweep>/``, read from the store the sweep wrote (credentials redacted). Called
    once the store has answered (the closing summary), as the experiment's name is looked up."""
    experiment = client.get_experiment(target.experiment_id).name
    sweep = shlex.quote(target.sweep_name)
    return (f"python -m analysis.report --experiment {shlex.quote(experiment)} --mlflow-uri "
            f"{shlex.quote(redact(target.uri))} --where sweep={sweep} -o {REPORT_FOLDER}/{sweep}")


def ui_hint(uri: str) -> str:
    """How to open the MLflow UI for ``uri``: a server is the UI; a local store needs one."""
    if uri.startswith(("http://", "https://")):
        return redact(uri)
    return f"mlflow ui --backend-store-uri {redact(uri)}   (then http://127.0.0.1:5000)"


def trials_link(ctx: SweepContext) -> str:
    """The UI page of this sweep's trials sorted by its (primary) objective."""
    target, objective = ctx.target, ctx.settings.objective
    return ui.trials_link(ui.ui_base(redact(target.uri)), target.experiment_id,
                          target.sweep_name, objective.primary_metric, objective.primary_mode)


def how_to_look(ctx: SweepContext, storage: StoragePath | os.PathLike[str]) -> str:
    """Where the results are and the commands to look at or resume them (no credentials)."""
    target = ctx.target
    base = ui.ui_base(redact(target.uri))
    lines = [
        f"MLflow: experiment id {target.experiment_id}, parent run {target.parent_run_id} "
        f"({target.sweep_name}), one child run per trial, in {redact(target.uri)}",
        f"Open the UI:   {ui_hint(target.uri)}",
        f"Experiment:    {ui.experiment_link(base, target.experiment_id)}",
        f"This sweep:    {trials_link(ctx)}",
        f"Resume:        python -m tuner.sweep --resume --name {target.sweep_name} "
        f"--storage-path {redact(str(storage))}",
    ]
    storage_url = ctx.settings.optuna_storage
    if storage_url:
        # A database URI keeps its user: with the password in PGPASSWORD or ~/.pgpass (or
        # the MySQL equivalents) the command runs as printed.
        shown = passwords.at_rest(storage_url)
        lines.append(f"Optuna study:  optuna-dashboard {shown}   (study {target.sweep_name})")
        if shown != storage_url and REDACTED not in shown:
            lines.append("               (the password: from PGPASSWORD or ~/.pgpass)")
    return "\n".join(lines)
