"""Sweeps on real multi-node Ray clusters on this machine: node loss, driver loss, autoscaling.

Each test runs the public sweep CLI against a cluster it started (``--address``) and checks both
records of the sweep: the MLflow runs in a real sqlite store (one child run per trial, none left
RUNNING, none duplicated) and Ray Tune's experiment state (every trial concluded, none ERROR).
Measured timings are attached to the test report (``record_property``) and printed (``-s``).
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import ray
from helpers import metric_steps, sweep_runs
from mlflow import MlflowClient
from mlflow.entities import Run
from ray.tune import ExperimentAnalysis
from ray_clusters import fake_autoscaling_cluster, local_cluster, node_running_pid, wait_for

from search_spaces import SPACES
from tuner.sweep import main
from tuner.tracking import schema as tr

PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"
START_TIMEOUT = 300  # a sweep driver imports torch, timm, Ray, MLflow: slow on a busy machine


# ---------------------------------------------------------------- helpers
def store_args(tmp_path: Path) -> list[str]:
    return ["--storage-path", str(tmp_path / "rr"),
            "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db"]


def uri_of(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


def last_result(trial_dir: str) -> dict[str, Any] | None:
    """The newest line of a trial's ``result.json`` (Tune writes one per report), if any yet."""
    try:
        lines = Path(trial_dir, "result.json").read_text().splitlines()
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):  # not there yet, or a line being written right now
        return None


def only_trial_result(folder: Path) -> tuple[str, dict[str, Any]] | None:
    """(folder, newest result) of a one-trial sweep's trial, once it reported."""
    for trial_dir in glob.glob(f"{folder}/train_trial_*"):
        if result := last_result(trial_dir):
            return trial_dir, result
    return None


def tune_trials(folder: Path) -> list[Any]:
    """Tune's own record of the sweep's trials (its experiment state), read without Ray."""
    return ExperimentAnalysis(str(folder)).trials


def assert_one_finished_parent(parents: list[Run]) -> None:
    assert len(parents) == 1, [p.info.run_id for p in parents]
    assert parents[0].info.status == "FINISHED"


def assert_one_finished_run_per_trial(children: list[Run], trials: list[Any]) -> None:
    """MLflow and Tune agree: each Tune trial has exactly one child run, and it is FINISHED."""
    assert Counter(r.data.tags[tr.TAG_TRIAL_ID] for r in children) == Counter(
        t.trial_id for t in trials)
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {t.status for t in trials} == {"TERMINATED"}  # no ERROR, none left PENDING/RUNNING


@contextmanager
def sweep_driver(argv: list[str], cwd: Path) -> Iterator[subprocess.Popen]:
    """``python -m tuner.sweep ...`` as its own process (group); killed if still alive after."""
    log = open(cwd / "driver.log", "w")  # noqa: SIM115  # closed below, after the process
    env = {k: v for k, v in os.environ.items() if k != PENDING_ENV}  # as from a fresh shell
    proc = subprocess.Popen([sys.executable, "-m", "tuner.sweep", *argv], cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        log.close()


def driver_tail(cwd: Path) -> str:
    return (cwd / "driver.log").read_text()[-3000:]


FAST_NODE_DEATH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 5}
"""The GCS declares a silent node dead after ~5 s instead of ~15 s (3 s × 5 by default); a
lost trial's resources (its placement group) are released only then."""


@pytest.fixture()
def cluster(no_ray):
    """Head (0 CPUs) + 2 worker nodes with 1 CPU each; shut down even when the test fails."""
    with local_cluster(workers=2, system_config=FAST_NODE_DEATH) as c:
        yield c


# ---------------------------------------------------------------- 1. a worker node dies
NODE_LOSS_EPOCHS = 12  # ~0.6 s each at the tiny sizes: long enough to kill it mid-way


@pytest.mark.slow(reason="a multi-node Ray cluster and a sweep through a node kill")
def test_trial_resumes_on_another_node_when_its_node_dies(cluster, tmp_path, record_property):
    uri = uri_of(tmp_path)
    folder = tmp_path / "rr" / "node"
    argv = ["--space", "smoke", "--trials", "1", "--scheduler", "fifo", "--name", "node",
            "--set", f"epochs={NODE_LOSS_EPOCHS}", "--address", cluster.address,
            *store_args(tmp_path)]
    with sweep_driver(argv, tmp_path) as driver:
        def first_epoch() -> Run | None:
            assert driver.poll() is None, driver_tail(tmp_path)
            children = sweep_runs(uri)[1]
            return next((r for r in children if metric_steps(uri, r.info.run_id)), None)

        run = wait_for(first_epoch, START_TIMEOUT, "the trial's first epoch in MLflow")
        trial_dir, first = wait_for(lambda: only_trial_result(folder), 60,
                                    "the trial's first result in Tune's result.json")
        old_pid = first["pid"]
        node = node_running_pid(cluster, old_pid)
        cluster.remove_node(node, allow_graceful=False)  # SIGKILL: raylet, workers, the trial
        removed = time.monotonic()
        logged_at_kill = metric_steps(uri, run.info.run_id)
        assert max(logged_at_kill) < NODE_LOSS_EPOCHS, "the trial ended before its node died"

        def second_attempt() -> bool:
            assert driver.poll() is None, driver_tail(tmp_path)
            tags = MlflowClient(tracking_uri=uri).get_run(run.info.run_id).data.tags
            return tags[tr.TAG_ATTEMPTS] == "2"

        wait_for(second_attempt, 180, "the retried trial to reopen its MLflow run")
        reattached_s = time.monotonic() - removed
        new = wait_for(lambda: (r := last_result(trial_dir)) and r["pid"] != old_pid and r,
                       180, "a result from the retried trial")
        resumed_s = time.monotonic() - removed
        # The retry runs on the surviving worker node (the removed one is no longer listed).
        assert node_running_pid(cluster, new["pid"]) is not node
        assert driver.wait(timeout=300) == 0, driver_tail(tmp_path)

    record_property("node_loss_to_reattached_run_s", round(reattached_s, 1))
    record_property("node_loss_to_first_new_result_s", round(resumed_s, 1))
    print(f"\nnode loss → run reopened {reattached_s:.1f} s, → first new result {resumed_s:.1f} s"
          f" (epochs logged at the kill: {logged_at_kill})")

    parents, children = sweep_runs(uri)
    trials = tune_trials(folder)
    assert_one_finished_parent(parents)
    assert_one_finished_run_per_trial(children, trials)
    assert len(children) == 1
    child = children[0]
    assert child.info.run_id == run.info.run_id  # the same run continued
    assert child.data.tags[tr.TAG_ATTEMPTS] == "2"
    assert child.data.tags[tr.TAG_EARLY_STOPPED] == "false"
    assert "test_cl" in child.data.metrics
    # Every epoch is logged, and only the epoch in flight at the kill may be logged again.
    # A trial's metrics reach MLflow (or its journal) before the checkpoint of their epoch
    # reaches Tune, and Tune's synchronous reporting keeps a trial at most one epoch ahead of
    # its last registered checkpoint: so the retry replays at most that one epoch, and logs it
    # again at the same step (at-least-once; a journaled operation the dead attempt delivered
    # but had not yet acknowledged is resent too). A repeat of an earlier step would mean the
    # retry started before its last checkpoint; a missing step, that progress was lost.
    counts = Counter(metric_steps(uri, child.info.run_id))
    assert sorted(counts) == list(range(1, NODE_LOSS_EPOCHS + 1))
    repeated = [step for step, n in counts.items() if n > 1]
    assert len(repeated) <= 1, counts
    assert all(step >= max(logged_at_kill) for step in repeated), (counts, logged_at_kill)
    trial = trials[0]
    assert trial.run_metadata.num_failures == 1  # the node loss, retried (max_failures=2)
    assert trial.last_result["training_iteration"] == NODE_LOSS_EPOCHS


# ---------------------------------------------------------------- 2. the driver dies
@pytest.mark.slow(reason="a multi-node Ray cluster, a sweep driver killed and resumed")
def test_killed_driver_on_a_cluster_resumes_with_exactly_the_planned_trials(
        cluster, tmp_path, monkeypatch, record_property):
    monkeypatch.chdir(tmp_path)
    uri = uri_of(tmp_path)
    folder = tmp_path / "rr" / "k"
    planned = SPACES.get("smoke").num_samples
    common = ["--name", "k", "--address", cluster.address, *store_args(tmp_path)]
    with sweep_driver(["--space", "smoke", "--set", "epochs=4", *common], tmp_path) as driver:
        def mid_sweep() -> bool:
            assert driver.poll() is None, "the sweep ended before it could be killed"
            return bool(glob.glob(f"{folder}/*/checkpoint_0*")  # one kept: any index
                        and glob.glob(f"{folder}/experiment_state-*.json"))

        wait_for(mid_sweep, START_TIMEOUT, "a first checkpoint and Tune's experiment state")
        driver.send_signal(signal.SIGKILL)  # the driver alone; the cluster lives on
        driver.wait(timeout=60)
    _, before = sweep_runs(uri)
    assert any(r.info.status == "RUNNING" for r in before)  # it really died mid-sweep

    began = time.monotonic()
    assert main(["--resume", *common]) == 0  # in this process, on the same cluster
    record_property("resume_to_completion_s", round(time.monotonic() - began, 1))
    assert not ray.is_initialized()  # main connected, so main disconnected

    parents, children = sweep_runs(uri)
    trials = tune_trials(folder)
    assert_one_finished_parent(parents)
    assert len(trials) == planned and len(children) == planned
    assert_one_finished_run_per_trial(children, trials)
    assert len(list(folder.glob("train_trial_*"))) == planned
    # The trials in flight at the kill continued their runs rather than opening new ones.
    assert any(int(r.data.tags[tr.TAG_ATTEMPTS]) > 1 for r in children)
    assert {r.data.tags[tr.TAG_TUNE_STATUS] for r in children} == {"TERMINATED"}


# ---------------------------------------------------------------- 3. autoscaling
FAKE_MAX_WORKERS = 3


@pytest.fixture()
def autoscaling_cluster(no_ray):
    """A 0-CPU head whose autoscaler adds up to 3 fake 1-CPU nodes; this process connected to
    it (to watch ``ray.nodes()``). Disconnected and stopped even when the test fails."""
    with fake_autoscaling_cluster(max_workers=FAKE_MAX_WORKERS, idle_timeout_minutes=0.1) as fc:
        ray.init(address=fc.address, log_to_driver=False)  # no autoscaler lines in pytest
        try:
            yield fc
        finally:
            ray.shutdown()


def alive_nodes() -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n["Alive"]]


def worker_count() -> int:
    """Alive nodes with CPUs (the head has none)."""
    return sum(1 for n in alive_nodes() if n["Resources"].get("CPU", 0) > 0)


def transitions(counts: list[tuple[float, int]], t0: float) -> list[tuple[float, int]]:
    """``(seconds since t0, workers)`` at every change of the worker count."""
    changes = [c for i, c in enumerate(counts) if i == 0 or c[1] != counts[i - 1][1]]
    return [(round(t - t0, 1), n) for t, n in changes]


@pytest.mark.slow(reason="a fake autoscaling cluster adding and removing nodes")
def test_autoscaler_adds_nodes_for_concurrent_trials_and_removes_them_after(
        autoscaling_cluster, tmp_path, record_property):
    uri = uri_of(tmp_path)
    folder = tmp_path / "rr" / "auto"
    argv = ["--space", "smoke", "--trials", "3", "--max-concurrent", "3", "--scheduler", "fifo",
            "--name", "auto", "--address", autoscaling_cluster.address, *store_args(tmp_path)]
    assert worker_count() == 0
    counts: list[tuple[float, int]] = []
    with sweep_driver(argv, tmp_path) as driver:
        deadline = time.monotonic() + START_TIMEOUT + 120
        while driver.poll() is None:
            assert time.monotonic() < deadline, "the sweep did not end"
            counts.append((time.monotonic(), worker_count()))
            time.sleep(0.5)
        assert driver.returncode == 0, driver_tail(tmp_path)
    ended = time.monotonic()
    wait_for(lambda: worker_count() == 0, 120, "idle fake nodes to be removed")
    scaled_down = time.monotonic()
    assert len(alive_nodes()) == 1  # the head alone

    peak = max(n for _, n in counts)
    assert 2 <= peak <= FAKE_MAX_WORKERS, counts
    sweep_json = folder / "sweep.json"  # written just before the Tuner starts
    ready = time.monotonic() - (time.time() - sweep_json.stat().st_mtime)
    first_node = next(t for t, n in counts if n > 0)
    _, children = sweep_runs(uri)
    last_trial_end = max(r.info.end_time for r in children) / 1000
    last_end_mono = time.monotonic() - (time.time() - last_trial_end)
    record_property("first_fake_node_after_tuner_start_s", round(first_node - ready, 1))
    record_property("peak_fake_workers", peak)
    record_property("fake_workers_over_time", transitions(counts, ready))
    record_property("scale_down_after_last_trial_s", round(scaled_down - last_end_mono, 1))
    print(f"\nfirst fake node {first_node - ready:.1f} s after the Tuner was built; peak {peak} "
          f"workers; all removed {scaled_down - last_end_mono:.1f} s after the last trial ended "
          f"({scaled_down - ended:.1f} s after the driver exited); workers over time "
          f"{transitions(counts, ready)}")

    parents, children = sweep_runs(uri)
    trials = tune_trials(folder)
    assert_one_finished_parent(parents)
    assert len(children) == 3
    assert_one_finished_run_per_trial(children, trials)
