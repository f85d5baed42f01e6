"""Checks shared by the analysis commands: the tracking store answers, and an empty selection
says what it saw instead of rendering an empty table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from fer_core.cli import UserError
from tuner.tracking import schema as tr
from tuner.tracking.reach import check_mlflow_uri


def check_store(uri: str | None) -> None:
    """An unreachable MLflow server is an error within seconds (MLflow retries for minutes); a
    ``sqlite:///`` file that does not exist is an error too (reading must not create a store)."""
    check_mlflow_uri(uri)
    if uri and uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise UserError(f"--mlflow-uri {uri}: no MLflow store at {path}; pass the URI the "
                            "sweep wrote to (its summary prints it)")


def why_empty(experiment: str, uri: str | None, where: Sequence[str] = ()) -> UserError:
    """The error for a selection without any usable trial run: how many runs the experiment
    holds and why each group was left out."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=5000) if found else []
    reasons: Counter = Counter()
    for run in runs:
        tags = run.data.tags
        role = tags.get(tr.TAG_ROLE)
        if role is None:
            reasons["not a run of this project's schema (no sweep.role tag)"] += 1
        elif role != tr.ROLE_TRIAL:
            reasons[f"{role} runs (not trials)"] += 1
        elif run.info.status != "FINISHED":
            reasons[f"{run.info.status} trials"] += 1
        elif tags.get(tr.TAG_EARLY_STOPPED) == "true":
            reasons["trials stopped early by ASHA"] += 1
        else:
            reasons["finished trials left out by --where " + " ".join(where)] += 1
    seen = ", ".join(f"{n} {why}" for why, n in reasons.most_common()) or "none"
    return UserError(f"experiment {experiment!r} has no finished trial run to show: it holds "
                     f"{len(runs)} run(s): {seen}")
