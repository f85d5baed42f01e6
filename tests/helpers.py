"""Helpers shared by the test modules: free ports, a driver's MLflow setup, the runs of a sweep
and their metrics.

Test files import it as ``from helpers import ...`` (pytest puts ``tests/`` on the path for its
own modules, as for ``ray_clusters`` and ``analysis_store``). Everything here reads a real store
through ``MlflowClient``; nothing is mocked.
"""

from __future__ import annotations

import socket

from mlflow import MlflowClient
from mlflow.entities import Run

from tuner.tracking import client as runs
from tuner.tracking import schema as tr


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1 (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sweep_target(
    uri: str,
    experiment: str,
    sweep: str = "s",
    space: str = "smoke",
    params: dict[str, str] | None = None,
    kind: type[runs.TrackingTarget] = runs.TrackingTarget,
) -> runs.TrackingTarget:
    """What a sweep's driver sets up before any trial: the experiment and the parent run.

    ``kind`` lets a test hand out a subclass (e.g. one whose client counts its calls).
    """
    client = MlflowClient(tracking_uri=uri)
    exp = runs.ensure_experiment(client, experiment, uri)
    parent = runs.start_parent(client, exp, sweep, {tr.TAG_SPACE: space}, params or {})
    return kind(uri, exp, parent, sweep, space)


def sweep_runs(uri: str, experiment: str = tr.DEFAULT_EXPERIMENT) -> tuple[list[Run], list[Run]]:
    """``(parent runs, trial runs)`` of an experiment, by their role tag.

    Both lists are empty while the experiment does not exist yet (a driver that has not started),
    so polling loops can call it from the first second.
    """
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return [], []
    every = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in every if r.data.tags.get(tr.TAG_ROLE) == tr.ROLE_PARENT]
    trials = [r for r in every if r.data.tags.get(tr.TAG_ROLE) == tr.ROLE_TRIAL]
    return parents, trials


def metric_history(uri: str, run_id: str, key: str = "val_cl") -> list[tuple[int, float]]:
    """``(step, value)`` of every logged value of one metric, in logging order."""
    history = MlflowClient(tracking_uri=uri).get_metric_history(run_id, key)
    return [(m.step, m.value) for m in history]


def metric_steps(uri: str, run_id: str, key: str = "val_cl") -> list[int]:
    """The steps (epochs) at which one metric was logged."""
    return [step for step, _ in metric_history(uri, run_id, key)]
