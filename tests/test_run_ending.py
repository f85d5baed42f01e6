"""Who ends a trial's MLflow run, and what it costs: MLflow calls counted on a real sqlite store.

The trial ends its own run; the driver's callback (``tuner.tracking.closer``) calls MLflow only
for trials stopped or killed before they could. The counts below are the README's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import sweep_target
from mlflow import MlflowClient
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial

from tuner.tracking import client as runs
from tuner.tracking import schema as tr
from tuner.tracking.closer import CloseTrialRuns
from tuner.tracking.tracker import TrialTracker

CALLS: list[str] = []
"""Names of the public ``MlflowClient`` methods called (each is one request to the store)."""


class CountingClient(MlflowClient):
    """A real ``MlflowClient`` that records every public method called on it."""

    def __getattribute__(self, name: str):
        attr = super().__getattribute__(name)
        if name.startswith("_") or not callable(attr):
            return attr

        def counted(*args, **kwargs):
            CALLS.append(name)
            return attr(*args, **kwargs)

        return counted


@dataclass(frozen=True)
class CountedTarget(runs.TrackingTarget):
    def client(self) -> MlflowClient:
        return CountingClient(tracking_uri=self.uri)


@pytest.fixture()
def target(db, request) -> CountedTarget:
    return sweep_target(db, request.node.name, kind=CountedTarget)


def stub_trial(root: Path, trial_id: str, last_result: dict) -> Trial:
    """A real Tune trial object as the callback receives it, with its last reported result."""
    storage = StorageContext(storage_path=str(root), experiment_dir_name="s",
                             trial_dir_name=f"trial_{trial_id}")
    trial = Trial("train_trial", config={}, trial_id=trial_id, storage=storage, stub=True)
    trial.run_metadata.last_result = last_result
    return trial


def started(target: CountedTarget, trial_id: str, folder: Path) -> TrialTracker:
    """A trial that attached its run and logged an epoch, all delivered."""
    tracker = TrialTracker(target, trial_id, folder / trial_id)
    tracker.attach(f"trial_{trial_id}", {}, {})
    tracker.log_metrics({"val_cl": 1.0}, step=1)
    assert tracker.flush() == 0
    return tracker


def run_of(target: CountedTarget, trial_id: str):
    return runs.find_trial_run(MlflowClient(tracking_uri=target.uri), target, trial_id)


def test_a_trial_that_ran_to_its_end_ends_its_run_in_two_calls_the_driver_in_none(
        target, tmp_path):
    tracker = started(target, "t1", tmp_path)
    CALLS.clear()
    tracker.end(tr.FINISHED, tr.end_tags(tr.FINISHED))
    assert tracker.close() == 0
    assert CALLS == ["log_batch", "set_terminated"]  # tags, then status

    trial = stub_trial(tmp_path, "t1", {tr.KEY_IS_FINAL: 1.0, **tracker.run_ref()})
    CALLS.clear()
    CloseTrialRuns(target).on_trial_complete(0, [trial], trial)
    assert CALLS == []
    run = run_of(target, "t1")
    assert run.info.status == tr.FINISHED
    assert run.data.tags[tr.TAG_TUNE_STATUS] == "TERMINATED"
    assert run.data.tags[tr.TAG_EARLY_STOPPED] == "false"


def test_the_driver_ends_an_early_stopped_trial_by_its_reported_run_id(target, tmp_path):
    tracker = started(target, "t2", tmp_path)
    assert tracker.close() == 0  # stopped by ASHA inside tune.report: no end of its own
    assert tracker.run_ref() == {tr.KEY_RUN_ID: run_of(target, "t2").info.run_id}
    trial = stub_trial(tmp_path, "t2", {"epoch": 1.0, **tracker.run_ref()})
    CALLS.clear()
    CloseTrialRuns(target).on_trial_complete(0, [trial], trial)
    assert CALLS == ["log_batch", "set_terminated"]  # no search
    run = run_of(target, "t2")
    assert (run.info.status, run.data.tags[tr.TAG_EARLY_STOPPED]) == (tr.FINISHED, "true")

    # A trial whose run was not attached when it reported (server down): one search more.
    started(target, "t3", tmp_path).close()
    trial = stub_trial(tmp_path, "t3", {"epoch": 1.0})
    CALLS.clear()
    CloseTrialRuns(target).on_trial_complete(0, [trial], trial)
    assert CALLS == ["search_runs", "log_batch", "set_terminated"]
    assert run_of(target, "t3").data.tags[tr.TAG_EARLY_STOPPED] == "true"


def test_an_errored_trial_is_closed_only_if_its_process_could_not(target, tmp_path):
    raised = started(target, "t4", tmp_path)  # its code raised: it ended the run itself
    raised.end(tr.FAILED, tr.end_tags(tr.FAILED))
    raised.close()
    died = started(target, "t5", tmp_path)  # its process died: nothing ended the run
    died.close()
    callback = CloseTrialRuns(target)
    for tracker, calls in ((raised, ["get_run"]),
                           (died, ["get_run", "log_batch", "set_terminated"])):
        trial = stub_trial(tmp_path, tracker.trial_id, {"epoch": 1.0, **tracker.run_ref()})
        CALLS.clear()
        callback.on_trial_error(0, [trial], trial)
        assert CALLS == calls
        run = run_of(target, tracker.trial_id)
        assert (run.info.status, run.data.tags[tr.TAG_TUNE_STATUS]) == (tr.FAILED, "ERROR")


def test_the_end_of_a_sweep_costs_one_search_and_ends_only_open_runs(target, tmp_path):
    done = started(target, "t6", tmp_path)
    done.end(tr.FINISHED, tr.end_tags(tr.FINISHED))
    done.close()
    started(target, "t7", tmp_path).close()  # killed: still RUNNING
    trials = [stub_trial(tmp_path, "t6", {tr.KEY_IS_FINAL: 1.0}), stub_trial(tmp_path, "t7", {})]
    trials[0].status = trials[1].status = Trial.TERMINATED
    CALLS.clear()
    CloseTrialRuns(target).on_experiment_end(trials)
    assert CALLS == ["search_runs", "log_batch", "set_terminated"]
    assert run_of(target, "t6").info.status == tr.FINISHED
    killed = run_of(target, "t7")  # stopped without its test result: resumable
    assert (killed.info.status, killed.data.tags[tr.TAG_TUNE_STATUS]) == (tr.KILLED,
                                                                         "INTERRUPTED")
    CALLS.clear()
    CloseTrialRuns(target).on_experiment_end(trials)
    assert CALLS == ["search_runs"]  # nothing open is left


def test_an_early_stopped_trials_checkpoints_are_deleted_a_finished_ones_kept(target,
                                                                              tmp_path):
    """Nothing restores a trial ASHA stopped, and its running checkpoint (model + optimizer)
    is the largest file a sweep leaves; a finished trial keeps its (small) final one."""
    callback = CloseTrialRuns(target)
    for trial_id, result, kept in (("t8", {"epoch": 1.0}, False),
                                   ("t9", {tr.KEY_IS_FINAL: 1.0}, True)):
        started(target, trial_id, tmp_path).close()
        trial = stub_trial(tmp_path, trial_id, result)
        folder = Path(trial.storage.trial_fs_path)
        (folder / "checkpoint_000001").mkdir(parents=True)
        (folder / "checkpoint_000001" / "checkpoint.pt").write_bytes(b"weights")
        (folder / "result.json").write_text("{}")
        callback.on_trial_complete(0, [trial], trial)
        assert (folder / "checkpoint_000001").exists() is kept
        assert (folder / "result.json").is_file()  # Tune's own records stay
