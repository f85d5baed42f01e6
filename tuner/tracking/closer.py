"""Driver-side Tune callback: the driver has the last word on every child run's final status.

A trial cannot always end its own run: ASHA stops it by ending its process, a node loss kills
it. So the driver ends each run when Tune concludes the trial (FINISHED, with ``early_stopped``
telling ASHA stops apart; FAILED once retries are exhausted) and, when the experiment ends,
sweeps up every run of the sweep still RUNNING. The callback is pickled with the Tuner (resume),
so it holds only the picklable ``TrackingTarget`` and opens clients when it needs them.

A close that fails (tracking server unreachable) is kept and tried again when the experiment
ends, so the ``early_stopped`` and ``tune.status`` tags are not lost to a short outage. Also at
the end, operations a trial journaled but never delivered (its process was killed while the
server was down: ``tuner.tracking.journal``) are delivered before the stragglers are ended.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray import tune

from tuner.searchers import is_final
from tuner.tracking import client as runs
from tuner.tracking.client import TrackingTarget, fail_fast_http_scope
from tuner.tracking.journal import JOURNAL_FILE, replay_command
from tuner.tracking.replay import replay

log = logging.getLogger(__name__)


class CloseTrialRuns(tune.Callback):
    """Ends each trial's MLflow run with the trial's final Tune status."""

    def __init__(self, target: TrackingTarget) -> None:
        self.target = target
        self.unclosed: dict[str, tuple[str, bool | None]] = {}
        """trial id → (Tune status, early_stopped) of closes that failed, retried at the end."""

    def _close(self, trial: Any, tune_status: str) -> None:
        early = not is_final(trial.last_result) if tune_status == "TERMINATED" else None
        with fail_fast_http_scope():  # a failure is retried at the end; never stall Tune here
            self._close_id(trial.trial_id, tune_status, early)

    def _close_id(self, trial_id: str, tune_status: str, early_stopped: bool | None) -> bool:
        try:
            runs.close_trial(self.target.client(), self.target, trial_id, tune_status,
                             early_stopped=early_stopped)
        except Exception as err:  # tracking trouble must not take the sweep down
            log.warning("could not close the MLflow run of trial %s (%s); trying again when "
                        "the sweep ends", trial_id, err)
            self.unclosed[trial_id] = (tune_status, early_stopped)
            return False
        self.unclosed.pop(trial_id, None)
        return True

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._close(trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._close(trial, "ERROR")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        # Runs still open here were not concluded by Tune: an interrupted sweep stops its
        # trials as TERMINATED without their test result; they stay resumable, hence KILLED.
        status = {t.trial_id: t.status if t.status != "TERMINATED" or is_final(t.last_result)
                  else "INTERRUPTED" for t in trials}
        for trial in trials:
            self._deliver_leftovers(trial)
        for trial_id, (tune_status, early) in list(self.unclosed.items()):
            if not self._close_id(trial_id, tune_status, early):
                log.error("the MLflow run of trial %s was not closed: it lacks the tags "
                          "%s=%s and early_stopped, and keeps the status its trial gave it",
                          trial_id, "tune.status", tune_status)
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
