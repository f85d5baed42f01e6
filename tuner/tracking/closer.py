"""Driver-side Tune callback: ends the MLflow runs of trials that could not end them.

A trial ends its own run (``tuner.trainable``): FINISHED with ``tune.status=TERMINATED`` and
``early_stopped=false`` once it reported its test result, FAILED with ``tune.status=ERROR`` when
its code raised. So the driver makes no MLflow call for a trial that ran to its end. It closes
only the runs of trials that could not:

- stopped before their last epoch (ASHA ends them inside ``tune.report``; only the driver tells
  that apart from a stopped sweep): FINISHED, ``early_stopped=true``, by the run id the trial
  reported to Tune (``schema.KEY_RUN_ID``), so without a search; their checkpoints, which
  nothing restores, are deleted;
- errored with their process gone (a node loss, an OOM kill): FAILED, only if still RUNNING;
- still RUNNING when the experiment ends (killed, interrupted): one search for the whole sweep.

The callback is pickled with the Tuner (resume), so it holds only the picklable
``TrackingTarget`` and opens clients when it needs them. A close that fails (tracking server
unreachable) is kept and tried again when the experiment ends. Also at the end, operations a
trial journaled but never delivered (its process was killed while the server was down:
``tuner.tracking.journal``) are delivered before the stragglers are ended.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow.fs as pafs
from ray import tune

from tuner.tracking import client as runs
from tuner.tracking import schema as tr
from tuner.tracking.client import TrackingTarget, fail_fast_http_scope
from tuner.tracking.journal import JOURNAL_FILE, replay_command
from tuner.tracking.replay import replay

log = logging.getLogger(__name__)


class Close(NamedTuple):
    """How the driver ends one trial's run."""

    tune_status: str
    early_stopped: bool | None
    run_id: str | None = None
    only_open: bool = False


class CloseTrialRuns(tune.Callback):
    """Ends the MLflow runs of trials that were stopped or died before ending them."""

    def __init__(self, target: TrackingTarget) -> None:
        self.target = target
        self.unclosed: dict[str, Close] = {}
        """trial id → closes that failed, retried when the experiment ends."""

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into the sweep's folder with the Tuner: no password there.
        return {**self.__dict__, "target": self.target.at_rest()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, target=state["target"].whole())

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if tr.is_final(trial.last_result):
            return  # it reported its test result and ended its own run
        self._close(trial.trial_id, Close("TERMINATED", True, _run_id(trial)))
        drop_checkpoints(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # A trial whose code raised ended its run FAILED; one whose process died could not.
        self._close(trial.trial_id, Close("ERROR", None, _run_id(trial), only_open=True))

    def _close(self, trial_id: str, close: Close) -> None:
        with fail_fast_http_scope():  # a failure is retried at the end; never stall Tune here
            self._try(trial_id, close)

    def _try(self, trial_id: str, close: Close) -> bool:
        try:
            runs.close_trial(self.target.client(), self.target, trial_id, close.tune_status,
                             close.early_stopped, close.run_id, close.only_open)
        except Exception as err:  # tracking trouble must not take the sweep down
            log.warning("could not close the MLflow run of trial %s (%s); trying again when "
                        "the sweep ends", trial_id, err)
            self.unclosed[trial_id] = close
            return False
        self.unclosed.pop(trial_id, None)
        return True

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # Runs still open here were not concluded by Tune: an interrupted sweep stops its
        # trials as TERMINATED without their test result; they stay resumable, hence KILLED.
        status = {t.trial_id: t.status if t.status != "TERMINATED" or tr.is_final(t.last_result)
                  else "INTERRUPTED" for t in trials}
        for trial in trials:
            self._deliver_leftovers(trial)
        for trial_id, close in list(self.unclosed.items()):
            if not self._try(trial_id, close):
                log.error("the MLflow run of trial %s was not closed: it lacks the tags "
                          "%s=%s and early_stopped, and keeps the status its trial gave it",
                          trial_id, tr.TAG_TUNE_STATUS, close.tune_status)
        try:
            runs.finish_stragglers(self.target.client(), self.target, status)
        except Exception as err:
            log.warning("could not end the sweep's remaining MLflow runs: %s", err)

    def _deliver_leftovers(self, trial: Any) -> None:
        """Replay the trial's journal, if its process left one with pending items."""
        try:
            if trial.storage.storage_filesystem.type_name != "local":
                return  # object storage: journals stay on the trials' nodes (mlflow_replay)
            path = Path(trial.path) / JOURNAL_FILE
            if not path.is_file():  # the usual case: all delivered
                return
            result = replay(path, self.target.uri)
        except Exception as err:  # noqa: BLE001 - reported; never fails the sweep's end
            log.warning("could not read or replay the MLflow journal of trial %s: %s",
                        trial.trial_id, err)
            return
        if result.delivered:
            log.warning("delivered %d MLflow operation(s) that trial %s had left in %s",
                        result.delivered, trial.trial_id, path)
        if result.left or result.rejected:
            log.error("trial %s: MLflow operations still not delivered (%s); they stay in %s: "
                      "%s", trial.trial_id, result.error or "; ".join(result.rejected or []),
                      path, replay_command(path))


def drop_checkpoints(trial: Any) -> None:
    """Delete an early-stopped trial's checkpoints: nothing restores a trial the scheduler
    stopped (``--resume`` reruns no TERMINATED trial), and a running checkpoint is the largest
    file a sweep leaves (model + optimizer state, ~2x the weights)."""
    try:
        fs = trial.storage.storage_filesystem
        listed = fs.get_file_info(pafs.FileSelector(trial.storage.trial_fs_path))
        for info in listed:
            if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_"):
                fs.delete_dir(info.path)
    except Exception as err:  # noqa: BLE001 - disk only; never fails the sweep
        log.warning("could not delete the checkpoints of early-stopped trial %s: %s",
                    trial.trial_id, err)


def _run_id(trial: Any) -> str | None:
    """The run id the trial reported with its results (None if its run was not attached yet,
    e.g. the server was down: the close then searches for the run)."""
    return (trial.last_result or {}).get(tr.KEY_RUN_ID) or None
