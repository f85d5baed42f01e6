"""Tracking through a tracking-server outage: real ``mlflow server`` processes on 127.0.0.1,
stopped and restarted on the same port and sqlite backend while a trial logs."""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port, metric_history, metric_steps, sweep_runs, sweep_target
from mlflow import MlflowClient
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial

from tuner.tracking import client as runs
from tuner.tracking import replay
from tuner.tracking import schema as tr
from tuner.tracking import server as ms
from tuner.tracking.client import FAIL_FAST_HTTP
from tuner.tracking.closer import CloseTrialRuns
from tuner.tracking.journal import JOURNAL_FILE, Journal
from tuner.tracking.tracker import TrialTracker


class Server:
    """One tracking server that a test can take down and bring back (same port, same db)."""

    def __init__(self, folder: Path) -> None:
        self.config = ms.resolve_config(f"sqlite:///{folder}/mlflow.db",
                                        str(folder / "artifacts"), port=free_port())
        self.log = (folder / "server.log").open("ab")
        self.proc: ms.MlflowServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return self.config.url

    def up(self) -> None:
        self.proc = ms.start(self.config, log=self.log)

    def down(self) -> None:
        assert self.proc is not None
        self.proc.stop()
        self.proc = None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("server"))
    yield srv
    if srv.proc is not None:
        srv.proc.stop()


@pytest.fixture()
def fail_fast(monkeypatch):
    """What a trial process sets (``fail_fast_http``), undone after the test."""
    for key, value in FAIL_FAST_HTTP.items():
        monkeypatch.setenv(key, value)


def trial_runs(target: runs.TrackingTarget) -> list:
    return runs.sweep_trial_runs(MlflowClient(tracking_uri=target.uri), target)


@pytest.mark.slow(reason="waits through an MLflow server outage and its close grace")
def test_outage_mid_trial_delays_nothing_and_loses_nothing(server, fail_fast, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tuner.tracking.tracker")
    target = sweep_target(server.url, "outage")
    tracker = TrialTracker(target, "t1", tmp_path / "trial", close_grace_s=90)
    tracker.attach("trial_t1", {tr.TAG_ARM: "a"}, {"lambda_au": "4.0"})
    tracker.log_metrics({"val_cl": 1.0}, step=1)
    assert tracker.flush() == 0  # server up: delivered before the "checkpoint"

    server.down()
    began = time.monotonic()
    for step in (2, 3, 4):  # epochs go on while the server is gone
        tracker.log_metrics({"val_cl": float(step)}, step=step)
        tracker.flush()
    assert time.monotonic() - began < 15  # no minutes-long blocking in MLflow's retries
    assert tracker.pending() >= 3
    journal = tmp_path / "trial" / JOURNAL_FILE
    _, ops, acks = Journal.read(journal)
    assert {op["step"] for op in ops if op["op"] == "metrics" and op["seq"] not in acks
            } >= {2, 3, 4}  # on disk: a crash now loses nothing

    server.up()
    tracker.log_metrics({"val_cl": 5.0}, step=5)
    tracker.end(tr.FINISHED)
    assert tracker.close() == 0
    (run,) = trial_runs(target)  # one run for the trial
    assert metric_history(target.uri, run.info.run_id) == [(s, float(s)) for s in range(1, 6)]
    run = MlflowClient(tracking_uri=target.uri).get_run(run.info.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["lambda_au"] == "4.0"
    assert not journal.exists()  # everything delivered: nothing to replay
    text = caplog.text
    assert "unreachable" in text and "training goes on" in text
    assert "reachable again" in text


def unreachable(target: runs.TrackingTarget) -> runs.TrackingTarget:
    """The same sweep, seen through a URL where nothing listens (a server that is down)."""
    return dataclasses.replace(target, uri=f"http://127.0.0.1:{free_port()}")


def test_overflow_and_undelivered_items_are_kept_and_replayed(server, fail_fast, tmp_path,
                                                              caplog, capsys):
    caplog.set_level(logging.WARNING, logger="tuner.tracking.tracker")
    target = sweep_target(server.url, "overflow")
    folder = tmp_path / "trial"
    tracker = TrialTracker(unreachable(target), "t2", folder, capacity=2, close_grace_s=1)
    tracker.attach("trial_t2", {}, {"seed": "0"})
    for step in range(1, 6):
        tracker.log_metrics({"val_cl": float(step)}, step=step)
    staged = tracker.staging_dir()
    (staged / "note.txt").write_text("selected model")
    tracker.log_artifacts({"model": [staged / "note.txt"]}, staged=staged)
    tracker.end(tr.FINISHED)
    assert tracker.close() == 8  # attach + 5 metrics + artifacts + status: none delivered
    assert "over its in-memory bound (2 operations)" in caplog.text
    error = [r for r in caplog.records if r.levelno == logging.ERROR][-1].getMessage()
    assert "8 MLflow operation(s) NOT delivered" in error
    assert "metrics of step(s) 1, 2, 3, 4, 5" in error and "status FINISHED" in error
    assert f"python -m tuner.mlflow_replay {folder / JOURNAL_FILE}" in error

    # Replaying to the (still) unreachable URL in the journal fails fast and keeps everything.
    began = time.monotonic()
    assert replay.main([str(tmp_path)]) == 1
    assert "8 left" in capsys.readouterr().out
    assert time.monotonic() - began < 30

    assert replay.main([str(tmp_path), "--mlflow-uri", server.url]) == 0
    assert "8 delivered" in capsys.readouterr().out
    (run,) = trial_runs(target)
    assert metric_history(target.uri, run.info.run_id) == [(s, float(s)) for s in range(1, 6)]
    client = MlflowClient(tracking_uri=target.uri)
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    assert run.data.params["seed"] == "0"
    assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == [
        "model/note.txt"]
    assert not staged.exists()  # the staged copy goes once delivered
    assert replay.main([str(folder / JOURNAL_FILE), "--mlflow-uri", server.url]) == 0
    assert "0 delivered" in capsys.readouterr().out  # nothing is sent twice
    assert len(metric_history(target.uri, run.info.run_id)) == 5


def test_a_later_attempt_sends_what_a_killed_one_left(server, fail_fast, tmp_path):
    target = sweep_target(server.url, "leftover")
    folder = tmp_path / "trial"
    first = TrialTracker(target, "t3", folder)
    first.attach("trial_t3", {}, {})
    first.log_metrics({"val_cl": 1.0}, step=1)
    assert first.flush() == 0
    first.close()
    # The next attempt of that trial lost the server after step 2 and died there.
    second = TrialTracker(unreachable(target), "t3", folder)
    second.attach("trial_t3", {}, {})
    second.log_metrics({"val_cl": 2.0}, step=2)
    second.flush()
    assert second.close(timeout=0) == 2
    with (folder / JOURNAL_FILE).open("a") as f:
        f.write('{"seq": 99, "op": "metr')  # the process died while writing a line
    third = TrialTracker(target, "t3", folder)  # a retry, the server reachable again
    third.attach("trial_t3", {}, {})
    third.log_metrics({"val_cl": 3.0}, step=3)
    third.end(tr.FINISHED)
    assert third.close() == 0
    (run,) = trial_runs(target)
    assert metric_history(target.uri, run.info.run_id) == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert run.data.tags[tr.TAG_ATTEMPTS] == "3"
    assert run.info.status == "FINISHED"


# ---------------------------------------------------------------- a real sweep through an outage
def wait_for(predicate, what: str, timeout: float = 180.0, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc is None or proc.poll() is None, f"the sweep ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow(reason="a sweep in its own process trains through an MLflow server outage")
def test_sweep_trial_keeps_training_through_a_server_outage(server, ray_runtime, tmp_path):
    experiment = "sweep-outage"
    argv = [sys.executable, "-m", "tuner.sweep", "--space", "smoke", "--trials", "1",
            "--scheduler", "fifo", "--set", "epochs=5", "--name", "o",
            "--experiment", experiment, "--mlflow-uri", server.url, "--address", ray_runtime,
            "--storage-path", str(tmp_path / "ray_results")]
    out = (tmp_path / "sweep.log").open("w")
    driver = subprocess.Popen(argv, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    client = MlflowClient(tracking_uri=server.url)
    try:
        wait_for(lambda: sweep_runs(server.url, experiment)[1], "the trial's run", proc=driver)
        server.down()  # the trial has attached its run and is about to train
        journals = f"{tmp_path}/ray_results/o/*/{JOURNAL_FILE}"
        wait_for(lambda: any('"op": "metrics"' in Path(p).read_text()
                             for p in glob.glob(journals)), "an epoch during the outage",
                 proc=driver)
        server.up()
        assert driver.wait(timeout=300) == 0
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        if server.proc is None:
            server.up()
    log = (tmp_path / "sweep.log").read_text()
    assert "MLflow tracking at" in log and "unreachable" in log  # the trial said so
    (parent,), children = sweep_runs(server.url, experiment)
    assert len(children) == 1 and parent.info.status == "FINISHED"
    run = children[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags[tr.TAG_EARLY_STOPPED] == "false"
    assert metric_steps(server.url, run.info.run_id) == [1, 2, 3, 4, 5]
    assert "test_att_cos" in run.data.metrics
    assert client.list_artifacts(run.info.run_id, "matrices")
    assert not glob.glob(journals)  # all delivered: no journal left to replay


def test_an_operation_mlflow_refuses_is_reported_and_kept_not_retried(server, fail_fast,
                                                                      tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tuner.tracking.tracker")
    target = sweep_target(server.url, "refused")
    tracker = TrialTracker(target, "t4", tmp_path / "trial")
    tracker.log_metrics({"val_cl": 1.0}, step=1)  # no run was ever attached for t4
    tracker.end(tr.FINISHED)
    began = time.monotonic()
    assert tracker.close() == 0  # nothing left to retry ...
    assert time.monotonic() - began < 20
    refused = [r.getMessage() for r in caplog.records if "for good" in r.getMessage()]
    assert len(refused) == 2 and "metrics of step(s) 1" in refused[0]
    assert "no MLflow run of trial t4" in refused[0]
    _, _, acks = Journal.read(tmp_path / "trial" / JOURNAL_FILE)  # ... and the reasons stay
    assert sorted(acks) == [1, 2] and all("no MLflow run" in why for why in acks.values())


def test_the_driver_delivers_what_a_killed_trial_left(server, fail_fast, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="tuner.tracking.closer")
    target = sweep_target(server.url, "driver-end")
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="s",
                             trial_dir_name="trial_t5")
    trial = Trial("train_trial", config={}, trial_id="t5", storage=storage, stub=True)
    tracker = TrialTracker(unreachable(target), "t5", Path(trial.path))
    tracker.attach("trial_t5", {}, {})
    tracker.log_metrics({"val_cl": 1.0}, step=1)
    tracker.end(tr.FINISHED)
    assert tracker.close(timeout=0) == 3  # its process died with the server down

    CloseTrialRuns(target).on_experiment_end([trial])
    (run,) = trial_runs(target)
    assert metric_history(target.uri, run.info.run_id) == [(1, 1.0)]
    assert run.info.status == "FINISHED"  # the trial's own word, not the driver's KILLED
    assert "delivered 3 MLflow operation(s) that trial t5 had left" in caplog.text


def test_the_driver_never_stalls_on_a_close_during_an_outage(server, tmp_path, monkeypatch,
                                                              caplog):
    # No fail_fast fixture: the driver keeps MLflow's patient defaults outside its closes.
    for key in FAIL_FAST_HTTP:
        monkeypatch.delenv(key, raising=False)
    caplog.set_level(logging.WARNING, logger="tuner.tracking.closer")
    target = sweep_target(server.url, "driver-close")
    tracker = TrialTracker(target, "t6", tmp_path / "trial")
    tracker.attach("trial_t6", {}, {})
    assert tracker.close() == 0  # stopped early by ASHA: the driver ends its run
    storage = StorageContext(storage_path=str(tmp_path), experiment_dir_name="s",
                             trial_dir_name="trial_t6")
    trial = Trial("train_trial", config={}, trial_id="t6", storage=storage, stub=True)
    trial.run_metadata.last_result = {"epoch": 1.0}

    callback = CloseTrialRuns(unreachable(target))
    began = time.monotonic()
    callback.on_trial_complete(0, [trial], trial)
    assert time.monotonic() - began < 30  # MLflow's defaults would hold it ~4 minutes
    assert callback.unclosed == {"t6": ("TERMINATED", True, None, False)}
    assert not any(key in os.environ for key in FAIL_FAST_HTTP)  # the driver's settings back
    assert "trying again when the sweep ends" in caplog.text

    callback.target = target  # the server is back by the end of the sweep
    callback.on_experiment_end([trial])
    (run,) = trial_runs(target)
    assert run.data.tags[tr.TAG_TUNE_STATUS] == "TERMINATED"
    assert run.data.tags[tr.TAG_EARLY_STOPPED] == "true" and callback.unclosed == {}
