"""The Ray Tune function trainable: a thin adapter from a Tune trial to ``fer_core``'s Trainer.

Per epoch it queues the schema's metrics for the trial's MLflow run (``step`` = epoch), writes a
checkpoint and reports both to Tune. A retried or resumed trial loads ``tune.get_checkpoint()``
and continues the same MLflow run. Tracking goes through a ``TrialTracker`` (background
delivery, journaled in the trial's folder): an unreachable tracking server never stops or slows
training, and what it missed is delivered when it returns (``tuner.tracking.tracker``).

The last epoch is reported together with the test metrics (one result): ASHA stops a trial as
soon as it reports its last epoch (``max_t``), which would otherwise cut off the test
evaluation of every trial that ran to the end. The selected weights are kept once, as the run's
MLflow model; that final checkpoint holds the test result instead, and a trial restored from
it reports that result again without testing or logging anything twice.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import tune

from fer_core import export
from fer_core.engine import Callback, Trainer
from search_spaces import SPACES
from tuner.checks.signals import stopped_at_exit
from tuner.results import artifacts
from tuner.search import dedup
from tuner.spec.context import SweepContext
from tuner.tracking import outputs, ui
from tuner.tracking import schema as tr
from tuner.tracking.client import fail_fast_http
from tuner.tracking.tracker import TrialTracker

SYSTEM_METRICS_INTERVAL_S = 5.0  # MLflow's default (10 s) leaves a short trial two samples


class TuneReporter(Callback):
    """Engine callback: MLflow metrics + Tune report with a checkpoint, every epoch."""

    def __init__(self, tracker: TrialTracker) -> None:
        self.tracker = tracker
        self.last_epoch: dict[str, float] = {}
        self.final_reported = False
        """Tune has the test result: the trial is complete even if Tune stops it now."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        self.tracker.log_metrics(tr.metric_values(metrics), step=epoch)
        if epoch < trainer.cfg.train.epochs:
            report(trainer, metrics, self.tracker)
        else:
            self.last_epoch = dict(metrics)

    def on_fit_end(self, trainer: Trainer, final: dict[str, float]) -> None:
        self.tracker.log_metrics(tr.metric_values(final), step=trainer.epoch)
        # Staged in the trial's folder, not a temp dir: they wait there if the server is down.
        staged = self.tracker.staging_dir()
        files = {tr.ARTIFACT_MATRICES: artifacts.write_matrices(
            trainer.final_matrices, staged / tr.ARTIFACT_MATRICES)}
        self.tracker.log_artifacts(files, staged=staged)
        # The MLflow model is the trial's one copy of its selected weights: the final
        # checkpoint holds the test result instead (``report``).
        log_selected_model(trainer, self.tracker)
        self.report_final(trainer, final)

    def report_final(self, trainer: Trainer, final: Mapping[str, float]) -> None:
        """The last epoch's metrics with the test result, as the trial's final Tune result."""
        # A trial restored from its final checkpoint trains no epoch: fall back to history.
        last = self.last_epoch or (trainer.history[-1] if trainer.history else {})
        self.final_reported = True  # set first: Tune may stop the trial inside this report
        report(trainer, {**last, **final, tr.KEY_IS_FINAL: 1.0}, self.tracker)


def log_selected_model(trainer: Trainer, tracker: TrialTracker) -> None:
    """The selected model as an MLflow PyTorch model (``runs:/<run id>/model``), once per trial.

    Written to the trial's staging folder here (no server needed), uploaded by the tracker;
    the seconds it took are tagged ``model.save_s``.
    """
    if trainer.best_state is None:
        return
    began = time.monotonic()
    method = copy.deepcopy(trainer.model)
    method.load_state_dict(trainer.best_state)
    staged = tracker.staging_dir()
    folder = export.save_mlflow_model(method, trainer.cfg.to_flat(), trainer.cfg.data.img_size,
                                      staged / outputs.MODEL_NAME)
    tracker.log_model(folder, step=trainer.epoch, staged=staged)
    tracker.set_tags({tr.TAG_MODEL_SAVE_S: f"{time.monotonic() - began:.2f}"})


def data_inputs(trainer: Trainer, context: SweepContext) -> list[dict[str, str]]:
    """The trial's splits as MLflow dataset inputs (name, fingerprint as digest, sizes)."""
    data = trainer.cfg.data
    sizes = {split: len(loader.dataset) for split, loader in trainer.loaders.items()}
    return outputs.dataset_inputs(data.dataset, context.data_fingerprint, sizes,
                                  source=data.data_root or context.cache_dir)


def start_system_metrics(context: SweepContext, tracker: TrialTracker) -> Any:
    """MLflow's system metrics monitor on the trial's run (``--system-metrics``), or None."""
    if not (context.settings and context.settings.system_metrics):
        return None
    tracker.flush()  # the run id comes with the attach's delivery
    run_id = tracker.run_ref().get(tr.KEY_RUN_ID)
    if run_id is None:  # tracking server unreachable now: training goes on without them
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, sampling_interval=SYSTEM_METRICS_INTERVAL_S,
                                   resume_logging=True, tracking_uri=context.target.uri)
    monitor.start()
    return monitor


CHECKPOINT_STAGING = "checkpoint-staging"
"""In the trial's folder: where a checkpoint is written before Tune copies it into
``checkpoint_NNNNNN``. Not a system temp folder: a process killed mid-report would leave one
there for good (~100 MB at paper sizes); here the trial's next report, in this attempt or the
next, replaces it, and it lies inside the sweep's folder whatever happens."""


def report(trainer: Trainer, metrics: Mapping[str, Any], tracker: TrialTracker) -> None:
    """``tune.report`` with a checkpoint of the trainer as it is now.

    The tracker is flushed first (briefly, and not at all during an outage): what a checkpoint
    covers is in MLflow or on disk in the journal before Tune can restart from it.
    """
    tracker.flush()
    metrics = {**metrics, **tracker.run_ref()}  # the driver closes an early stop by this id
    if not trainer.checkpoint_due(trainer.epoch):  # checkpoint_every > 1: report only
        tune.report(dict(metrics))
        return
    staging = fresh_folder(trial_folder() / CHECKPOINT_STAGING)
    try:
        # Once tested, the checkpoint keeps the result, not the weights (logged to MLflow).
        trainer.save_checkpoint(str(staging), selected_weights=False)
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(str(staging)))
    finally:  # Tune copied it into the trial's checkpoint_NNNNNN (or the trial is stopping)
        shutil.rmtree(staging, ignore_errors=True)


def fresh_folder(folder: Path) -> Path:
    """``folder``, empty: what a killed attempt left there is removed first."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def trial_folder() -> Path:
    """The trial's folder in the sweep's storage (``<storage>/<sweep>/<trial>``, next to its
    checkpoints) when that is a local or shared filesystem; else its folder on this node."""
    try:  # Ray has no public accessor for it (2.60); fall back if its internals move
        from ray.train._internal.session import get_session

        storage = get_session().storage
        if storage.storage_filesystem.type_name == "local":
            return Path(storage.trial_fs_path)
    except Exception:  # noqa: BLE001 - any change in Ray's internals: use the public path
        pass
    return Path(tune.get_context().get_trial_dir())


def load_or_start_over(trainer: Trainer, folder: str, trial_name: str) -> None:
    """Continue from the checkpoint; one torn by a crash or a full disk cannot be continued
    from, so the trial trains again from its first epoch (``tuner.spec.state`` said so at the
    resume). Nothing of the torn file was applied: the trainer is still fresh."""
    from fer_core.checkpoint import UnreadableCheckpoint

    try:
        trainer.load_checkpoint(folder)
    except UnreadableCheckpoint as err:
        print(f"warning: trial {trial_name}: {err}; training it again from its first epoch",
              flush=True)


def train_trial(config: dict[str, Any], context: SweepContext) -> None:
    """Train one trial (resuming from Tune's checkpoint if there is one), tracked in MLflow.

    A worker stopped under it (SIGTERM: a node draining) stops the trial cleanly first: its
    run is left for the retry, which Tune starts from the last checkpoint (``signals``)."""
    with stopped_at_exit():
        _train_trial(config, context)


def _train_trial(config: dict[str, Any], context: SweepContext) -> None:
    cfg = context.trial_config(config)
    flat = cfg.to_flat()
    tune_ctx = tune.get_context()
    fail_fast_http()  # the tracker retries; one MLflow request must not hold it for minutes
    tracker = TrialTracker(context.target, tune_ctx.get_trial_id(), trial_folder())
    tracker.attach(tune_ctx.get_trial_name(), {
        tr.TAG_ARM: SPACES.get(context.target.space).arm(flat),
        tr.TAG_GIT_COMMIT: context.git_commit,
        tr.TAG_DATA_FINGERPRINT: context.data_fingerprint,
        tr.TAG_CONFIG_HASH: dedup.config_hash(cfg), **ui.SOURCE_TAGS,
    }, tr.param_values(flat), run_name=ui.run_label(flat))
    status: str | None = tr.KILLED
    reporter = TuneReporter(tracker)
    monitor = None
    try:
        trainer = Trainer(cfg, callbacks=[reporter], progress=False,
                          cache_dir=context.cache_dir)
        tracker.log_inputs(data_inputs(trainer, context))
        monitor = start_system_metrics(context, tracker)
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                load_or_start_over(trainer, folder, tune_ctx.get_trial_name())
        if trainer.final is not None:
            # Restored from its final checkpoint (a crash after the final report, or a resumed
            # sweep): tested and logged already, so only Tune hears the stored result again.
            reporter.report_final(trainer, trainer.final)
        else:
            trainer.fit()
        status = tr.FINISHED
    except SystemExit:
        # Tune stops a trial inside tune.report. After its test result the trial is complete;
        # before it (ASHA, or a stopped sweep: only the driver knows which) the driver ends
        # the run (tuner.tracking.closer).
        status = tr.FINISHED if reporter.final_reported else None
        raise
    except Exception:
        status = tr.FAILED
        raise
    finally:
        # The trial ends its own run (a retry reopens it): the one end in the normal case.
        if monitor is not None:
            monitor.finish()
        if status is not None:
            tracker.end(status, tr.end_tags(status))
        tracker.close()
