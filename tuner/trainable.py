"""The Ray Tune function trainable: a thin adapter from a Tune trial to ``fer_core``'s Trainer.

Per epoch it logs the schema's metrics to the trial's MLflow run (``step`` = epoch), writes a
checkpoint and reports both to Tune. A retried or resumed trial loads ``tune.get_checkpoint()``
and continues the same MLflow run.

The last epoch is reported together with the test metrics (one result): ASHA stops a trial as
soon as it reports its last epoch (``max_t``), which would otherwise cut off the test
evaluation of every trial that ran to the end.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from ray import tune

from fer_core.config import ExperimentConfig
from fer_core.engine import Callback, Trainer
from search_spaces import SPACES
from tuner import artifacts
from tuner import mlflow_runs as runs
from tuner import tracking as tr
from tuner.context import SweepContext
from tuner.provenance import data_cache


class TuneReporter(Callback):
    """Engine callback: MLflow metrics + Tune report with a checkpoint, every epoch."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.last_epoch: dict[str, float] = {}

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        runs.log_metrics(self.client, self.run_id, tr.metric_values(metrics), step=epoch)
        if epoch < trainer.cfg.train.epochs:
            report(trainer, metrics)
        else:
            self.last_epoch = dict(metrics)

    def on_fit_end(self, trainer: Trainer, final: dict[str, float]) -> None:
        runs.log_metrics(self.client, self.run_id, tr.metric_values(final), step=trainer.epoch)
        with tempfile.TemporaryDirectory(prefix="fer-artifacts-") as tmp:
            files = {
                tr.ARTIFACT_MATRICES: artifacts.write_matrices(
                    trainer.final_matrices, Path(tmp) / tr.ARTIFACT_MATRICES),
                tr.ARTIFACT_MODEL: artifacts.write_model(
                    trainer.best_state, trainer.cfg.to_flat(), Path(tmp) / tr.ARTIFACT_MODEL),
            }
            runs.log_artifacts(self.client, self.run_id, files)
        # A trial restored from its final checkpoint trains no epoch: fall back to history.
        last = self.last_epoch or (trainer.history[-1] if trainer.history else {})
        report(trainer, {**last, **final, tr.KEY_IS_FINAL: 1.0})


def report(trainer: Trainer, metrics: Mapping[str, Any]) -> None:
    """``tune.report`` with a checkpoint of the trainer as it is now."""
    with tempfile.TemporaryDirectory(prefix="fer-ckpt-") as tmp:
        trainer.save_checkpoint(tmp)
        tune.report(dict(metrics), checkpoint=tune.Checkpoint.from_directory(tmp))


def trial_config(config: Mapping[str, Any], context: SweepContext) -> ExperimentConfig:
    """The trial's validated config: the sweep's pinned fields, then the sampled ones."""
    return ExperimentConfig.from_flat({**context.base, **config}, strict=False)


def train_trial(config: dict[str, Any], context: SweepContext) -> None:
    """Train one trial (resuming from Tune's checkpoint if there is one), tracked in MLflow."""
    cfg = trial_config(config, context)
    flat = cfg.to_flat()
    tune_ctx = tune.get_context()
    client = context.target.client()
    tags = {
        tr.TAG_ARM: SPACES.get(context.target.space).arm(flat),
        tr.TAG_GIT_COMMIT: context.git_commit,
        tr.TAG_DATA_FINGERPRINT: context.data_fingerprint,
    }
    run_id = runs.attach_trial_run(client, context.target, tune_ctx.get_trial_id(),
                                   tune_ctx.get_trial_name(), tags, tr.param_values(flat))
    status: str | None = tr.KILLED
    try:
        with data_cache(context.cache_dir):
            trainer = Trainer(cfg, callbacks=[TuneReporter(client, run_id)], progress=False)
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                trainer.load_checkpoint(folder)
        trainer.fit()
        status = tr.FINISHED
    except SystemExit:
        # Tune stopping the trial (ASHA) exits its thread: the driver ends the run and tags
        # it early_stopped; writing KILLED here could land after that.
        status = None
        raise
    except Exception:
        status = tr.FAILED
        raise
    finally:
        # A retry reopens this run; the driver has the last word on the final status.
        if status is not None:
            runs.end_run(client, run_id, status)
