"""No model in flight: a trial's selected weights wait on the sweep's storage for the server.

While the tracking server is down, a trial that ends writes its MLflow model (the selected
weights, its one copy of them) to its staging folder and journals the upload. That folder is in
the trial's own folder on the sweep's storage (shared on a cluster), not on the node: when the
trial's worker dies before the server is back, the retry (or the driver, or
``python -m tuner.mlflow_replay``) finds it there and delivers it. Here a real tracking server
(``test_mlflow_outage.Server``) is stopped while a sweep's only trial ends, the trial's worker
is killed (SIGKILL: its node is lost), the server comes back, and the run has its model.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from fault_runs import driver, last_result, sweep_argv, trial_folders, trial_workers, wait_for
from helpers import metric_steps, sweep_runs
from mlflow import MlflowClient
from test_mlflow_outage import Server

from tuner.tracking import outputs
from tuner.tracking import schema as tr
from tuner.tracking.journal import JOURNAL_FILE, STAGING_DIR


@pytest.fixture()
def server(tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    srv = Server(folder)
    yield srv
    if srv.proc is not None:
        srv.proc.stop()


def staged_model(tmp_path: Path) -> Path | None:
    """The staged MLflow model of the sweep's trial, once its upload is journaled and Tune has
    the trial's final result (and with it the final checkpoint, which a retry restores)."""
    for folder in trial_folders(tmp_path, "m"):
        journal = folder / JOURNAL_FILE
        models = list(folder.glob(f"{STAGING_DIR}/*/{outputs.MODEL_NAME}"))
        final = (last_result(folder) or {}).get(tr.KEY_IS_FINAL)
        if models and final and journal.exists() and '"op": "model"' in journal.read_text():
            return models[0]
    return None


@pytest.mark.slow(reason="a sweep through a tracking-server outage whose trial worker is killed")
def test_a_model_staged_during_an_outage_is_delivered_after_its_worker_dies(
        server, tmp_path, record_property):
    argv = sweep_argv(tmp_path, "m", "--trials", "1", "--scheduler", "fifo",
                      "--set", "epochs=3", mlflow_uri=server.url)
    with driver(argv, tmp_path) as d:
        wait_for(lambda: sweep_runs(server.url)[1], "the trial's run", d)
        server.down()  # the trial trains, tests and stages its model during the outage, then
        # waits for the server (its close grace) with the model undelivered
        model = wait_for(lambda: staged_model(tmp_path), "the model staged", d)
        assert model.is_relative_to(tmp_path / "rr" / "m")  # the sweep's storage, not the node
        (worker,) = trial_workers(d)
        worker.send_signal(signal.SIGKILL)  # the node dies with the model undelivered
        down_at = time.monotonic()
        server.up()
        client = MlflowClient(tracking_uri=server.url)

        def delivered() -> bool:
            runs = sweep_runs(server.url)[1]
            return bool(runs and outputs.run_model_id(client, runs[0].info.run_id))

        wait_for(delivered, "the model delivered", d)
        record_property("model_delivered_s", round(time.monotonic() - down_at, 1))
        assert d.wait() == 0, d.tail()
    (run,) = sweep_runs(server.url)[1]
    assert run.info.status == tr.FINISHED
    assert metric_steps(server.url, run.info.run_id) == [1, 2, 3]
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert len(models) == 1  # delivered once, not once per attempt
    assert models[0].source_run_id == run.info.run_id and models[0].status == "READY"
    assert "MLmodel" in {a.path for a in client.list_logged_model_artifacts(models[0].model_id)}
    folder = trial_folders(tmp_path, "m")[0]
    assert not (folder / JOURNAL_FILE).exists() and not list(folder.glob(f"{STAGING_DIR}/*"))
