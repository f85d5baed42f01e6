"""The MLflow client of a sweep: ``MlflowClient`` calls with explicit run ids, redaction and
fail-fast HTTP settings.

No fluent ``mlflow.start_run`` state: the driver and every trial address runs by id, which is
thread-safe and lets a trial reopen the run it started in an earlier attempt. Names of tags,
params and metrics come from ``tuner.tracking.schema``. Every param and tag bound for MLflow
passes ``outgoing`` here, the one place redaction is applied: no credential reaches the tracking
store (nor the trial journal, which queues these same writes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunTag

from tuner.tracking import schema as tr
from tuner.tracking.redact import redact_mapping
from tuner.tracking.schema import KIND_MODEL_TRAINING, TAG_EXPERIMENT_KIND
from tuner.tracking.target import TrackingTarget  # noqa: F401  (the runs' address)

MAX_BATCH_METRICS = 1000  # MLflow's log_batch limits
MAX_BATCH_PARAMS = 100


def outgoing(values: Mapping[str, Any]) -> dict[str, str]:
    """Params or tags as they may leave the process: text, credentials redacted."""
    return redact_mapping(values)


FAIL_FAST_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
"""MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) hold a call for ~4 minutes on a
refused connection; the trial's tracker retries on its own, so one request may fail fast."""


def fail_fast_http() -> None:
    """Make this process's MLflow HTTP requests give up within seconds (unless the user set
    these variables). Call it in trial processes and the replay tool, not in the driver."""
    for key, value in FAIL_FAST_HTTP.items():
        os.environ.setdefault(key, value)


@contextmanager
def fail_fast_http_scope() -> Iterator[None]:
    """:func:`fail_fast_http` for the duration of a block (MLflow reads these variables at every
    request). For the driver's per-trial calls, which have a later retry: a stalled call would
    hold Tune's whole event loop."""
    added = [key for key in FAIL_FAST_HTTP if key not in os.environ]
    fail_fast_http()
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def normalize_uri(uri: str | None, cwd: Path | None = None) -> str:
    """An absolute tracking URI: trials run in their own folders, so relative paths would scatter.

    ``None`` → ``sqlite:///<cwd>/mlflow.db``; a relative ``sqlite:///x.db`` or a bare path is
    made absolute against ``cwd``; http(s) and other schemes pass through.
    """
    cwd = (cwd or Path.cwd()).resolve()
    if not uri:
        return f"sqlite:///{cwd / 'mlflow.db'}"
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        return f"sqlite:///{path if path.is_absolute() else (cwd / path).resolve()}"
    if urlparse(uri).scheme in ("", "file"):
        path = Path(urlparse(uri).path if uri.startswith("file:") else uri)
        return f"file://{path if path.is_absolute() else (cwd / path).resolve()}"
    return uri


def artifact_root(uri: str) -> str | None:
    """Artifacts of a sqlite store go next to its .db file; servers choose their own."""
    if uri.startswith("sqlite:///"):
        return str(Path(uri[len("sqlite:///"):]).parent / tr.ARTIFACT_DIR_NAME)
    return None


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The id of experiment ``name``, created (with an absolute artifact location) if missing.

    Called in the driver before any trial starts: two trials initialising a fresh sqlite store
    at once race on its schema migration.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        if TAG_EXPERIMENT_KIND not in found.tags:  # made before the kind was set: UI opens on runs
            client.set_experiment_tag(found.experiment_id, TAG_EXPERIMENT_KIND,
                                      KIND_MODEL_TRAINING)
        return found.experiment_id
    root = artifact_root(uri)
    location = None if root is None else str(Path(root) / name)
    # A model-training experiment: MLflow 3's UI opens it on its runs, not on GenAI traces.
    return client.create_experiment(name, artifact_location=location,
                                    tags={TAG_EXPERIMENT_KIND: KIND_MODEL_TRAINING})


def iter_runs(client: MlflowClient, experiment_id: str, filter_string: str) -> Iterator[Run]:
    """All runs matching ``filter_string``, page by page."""
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000,
                                  page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def start_parent(
    client: MlflowClient, experiment_id: str, sweep_name: str, tags: Mapping[str, str],
    params: Mapping[str, str],
) -> str:
    """Create the sweep's parent run; returns its id."""
    run = client.create_run(
        experiment_id, run_name=sweep_name,
        tags=outgoing({**tags, tr.TAG_ROLE: tr.ROLE_PARENT, tr.TAG_SWEEP: sweep_name}),
    )
    log_params(client, run.info.run_id, params)
    return run.info.run_id


def reopen(client: MlflowClient, run_id: str) -> None:
    """Mark a run RUNNING again (a resumed sweep or a retried trial continues it)."""
    client.update_run(run_id, status=tr.RUNNING)


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, str]) -> None:
    items = [Param(k, v) for k, v in outgoing(params).items()]
    for i in range(0, len(items), MAX_BATCH_PARAMS):
        client.log_batch(run_id, params=items[i:i + MAX_BATCH_PARAMS], synchronous=True)


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int,
                timestamp_ms: int | None = None) -> None:
    """One ``log_batch`` per call (not one request per key); ``timestamp_ms`` defaults to now
    (a buffered delivery passes the time the values were measured)."""
    now = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for i in range(0, len(items), MAX_BATCH_METRICS):
        client.log_batch(run_id, metrics=items[i:i + MAX_BATCH_METRICS], synchronous=True)


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in outgoing(tags).items()],
                     synchronous=True)


def trial_filter(target: TrackingTarget, trial_id: str | None = None) -> str:
    tags = {tr.TAG_PARENT: target.parent_run_id, tr.TAG_ROLE: tr.ROLE_TRIAL}
    if trial_id is not None:
        tags[tr.TAG_TRIAL_ID] = trial_id
    return tr.tag_filter(tags)


def find_trial_run(client: MlflowClient, target: TrackingTarget, trial_id: str) -> Run | None:
    """The child run of ``trial_id`` in this sweep, if a previous attempt created it."""
    runs = list(iter_runs(client, target.experiment_id, trial_filter(target, trial_id)))
    if len(runs) > 1:  # cannot happen through this module; say so rather than pick one
        raise RuntimeError(f"{len(runs)} MLflow runs carry {tr.TAG_TRIAL_ID}={trial_id}")
    return runs[0] if runs else None


def sweep_trial_runs(client: MlflowClient, target: TrackingTarget) -> list[Run]:
    """Every child run of the sweep."""
    return list(iter_runs(client, target.experiment_id, trial_filter(target)))


def attach_trial_run(
    client: MlflowClient, target: TrackingTarget, trial_id: str, trial_name: str,
    tags: Mapping[str, str], params: Mapping[str, str], reopen_run: bool = True,
    run_name: str | None = None,
) -> str:
    """Reopen the trial's run if an earlier attempt made one, else create it; returns its id.

    A trial has one attempt at a time, so find-then-create cannot race with itself; the
    identifying tags are given at creation, so a crash right after leaves a findable run.
    ``reopen_run=False`` (a replay after the sweep) counts the attempt but leaves the status
    alone: the driver has already ended the run. ``run_name`` (what the trial is, e.g.
    ``cam λ=4 L5 s0``) names the run; Tune's trial name stays in ``tune.trial_name``.
    """
    run = find_trial_run(client, target, trial_id)
    if run is not None:
        attempts = int(run.data.tags.get(tr.TAG_ATTEMPTS, "1")) + 1
        if reopen_run:
            reopen(client, run.info.run_id)
        set_tags(client, run.info.run_id, {tr.TAG_ATTEMPTS: str(attempts)})
        return run.info.run_id
    run = client.create_run(
        target.experiment_id, run_name=run_name or trial_name,
        tags=outgoing({
            **tags,
            tr.TAG_PARENT: target.parent_run_id, tr.TAG_ROLE: tr.ROLE_TRIAL,
            tr.TAG_SWEEP: target.sweep_name, tr.TAG_SPACE: target.space,
            tr.TAG_TRIAL_ID: trial_id, tr.TAG_TRIAL_NAME: trial_name, tr.TAG_ATTEMPTS: "1",
        }),
    )
    log_params(client, run.info.run_id, params)
    return run.info.run_id


def end_run(client: MlflowClient, run_id: str, status: str,
            tags: Mapping[str, str] | None = None) -> None:
    if tags:
        set_tags(client, run_id, tags)
    client.set_terminated(run_id, status=status)


def close_trial(
    client: MlflowClient, target: TrackingTarget, trial_id: str, tune_status: str,
    early_stopped: bool | None, run_id: str | None = None, only_open: bool = False,
) -> str | None:
    """End a trial's run for the driver, with the status its Tune trial ended in.

    ``run_id`` (the trial reports it to Tune) spares the search for the run; ``only_open``
    leaves a run alone that is no longer RUNNING (the trial ended it itself). Costs 2 calls
    (tags, status), plus 1 to find the run or check it is open. Returns the id of the run
    ended, or None.
    """
    if run_id is None:
        run = find_trial_run(client, target, trial_id)
        if run is None:
            return None  # the trial never started a run
        run_id, status = run.info.run_id, run.info.status
    else:
        status = client.get_run(run_id).info.status if only_open else tr.RUNNING
    if only_open and status != tr.RUNNING:
        return None
    tags = {tr.TAG_TUNE_STATUS: tune_status}
    if early_stopped is not None:
        tags[tr.TAG_EARLY_STOPPED] = str(early_stopped).lower()
    end_run(client, run_id, tr.mlflow_status(tune_status), tags)
    return run_id


def finish_stragglers(client: MlflowClient, target: TrackingTarget,
                      tune_status: Mapping[str, str]) -> list[str]:
    """End every child run still RUNNING with its trial's final status (KILLED if unknown).

    Run after ``fit()``: a trial killed with its process (node loss, scheduler stop) cannot end
    its own run. One search for the whole sweep; returns the ids of the runs it ended.
    """
    ended = []
    running = f"{trial_filter(target)} and attributes.status = '{tr.RUNNING}'"
    for run in iter_runs(client, target.experiment_id, running):
        trial_id = run.data.tags.get(tr.TAG_TRIAL_ID, "")
        status = tune_status.get(trial_id, "UNKNOWN")
        end_run(client, run.info.run_id, tr.mlflow_status(status), {tr.TAG_TUNE_STATUS: status})
        ended.append(run.info.run_id)
    return ended


def log_artifacts(client: MlflowClient, run_id: str, files: Mapping[str, Any]) -> None:
    """``{artifact folder: [local files]}`` → the run's artifact store."""
    for folder, paths in files.items():
        for path in paths:
            client.log_artifact(run_id, str(path), artifact_path=folder)
