"""The MLflow schema of a sweep: experiment, run names, tags, params, metric keys, artifacts.

This module is the one home of the tracking names; ``tuner`` writes through it and ``analysis``
reads through it. Everything a table or figure needs is in the runs, so a sweep can be analysed
later from the tracking store alone.

Schema
======

Experiment
    ``--experiment`` (default ``au-guided-fer``). For a ``sqlite:///`` store, artifacts live in
    ``<folder of the .db>/mlruns/<experiment name>/<run id>/artifacts/`` (an absolute location
    fixed when the driver creates the experiment: every trial has its own cwd); a tracking
    server stores them where its ``--artifacts-destination`` says.

Parent run (one per sweep; its run name is the sweep name)
    tags    ``sweep.role=parent``, ``sweep.name``, ``sweep.space``, ``sweep.path`` (the Ray Tune
            experiment folder, what ``--resume`` restores), ``mlflow.source.git.commit``,
            ``data.fingerprint``
    params  ``sweep.space``, ``sweep.metric``, ``sweep.mode``, ``sweep.searcher``,
            ``sweep.scheduler``, ``sweep.num_configs``, ``sweep.seeds`` (K),
            ``sweep.max_concurrent``, ``sweep.resources_cpu``, ``sweep.resources_gpu``,
            ``sweep.dedup`` (false with ``--rerun``), ``sweep.budget_hours``, plus every config
            field the sweep pins (the space's sizes and the user's ``--set`` values)
    metrics ``sweep.trials``, ``sweep.trials_finished``, ``sweep.trials_early_stopped``,
            ``sweep.trials_failed``, ``sweep.wall_s``, and from the launch gate
            ``sweep.trials_skipped`` (already done in an earlier run), ``sweep.trials_not_launched``
            (left by the budget), ``sweep.trial_hours``, ``sweep.budget_reached`` (0/1)
            ``best.test_cl``, ``best.test_att_cos``, ... (the best trial's headline metrics;
            tags ``best.run_id``, ``best.run_name``: ``tuner.tracking.ui``)
    artifacts ``summary.md`` (the table printed at the end), ``summary.json`` (with a ``gate``
            entry: skipped trials and the runs they reuse, budget use, what was not launched)

Child run (exactly one per Tune trial, resumed and retried attempts continue it; its run name
says what it is, ``cam λ=4 L5 s0``: ``tuner.tracking.ui.run_label``)
    tags    ``mlflow.parentRunId`` (the parent run), ``sweep.role=trial``, ``sweep.name``,
            ``sweep.space``, ``tune.trial_id``, ``tune.trial_name``, ``arm``,
            ``mlflow.source.git.commit``, ``data.fingerprint``, ``config.hash`` (the resolved
            config's identity, ``tuner.search.dedup.config_hash``), ``tune.attempts`` (starts of the
            trial: 1 unless it was retried or resumed), ``early_stopped`` (``true`` when ASHA
            stopped the trial before its last epoch; such a trial has no ``test_*`` metrics),
            ``tune.status`` (how Tune left the trial: TERMINATED, ERROR, or INTERRUPTED when the
            sweep was stopped first)
    params  the full resolved flat config (``ExperimentConfig.to_flat()``), e.g. ``method``,
            ``backbone``, ``dataset``, ``lambda_au``, ``layers`` (``5+4``), ``seed``
    metrics every key of an engine result that belongs to a family of ``fer_core.metric_names``
            (matched by pattern, so a method's own ``train_loss_<term>`` is logged too):
            per epoch, ``step`` = epoch: ``train_loss``, ``train_loss_ce``,
            ``train_loss_align``, ``train_loss_<term>``, ``train_cl``, ``val_cl``,
            ``val_att_cos`` (headline layer), ``val_att_cos_l<k>`` (each evaluated layer),
            ``val_cam_cos`` (NaN for a method without CAM), ``lr``, ``epoch_time_s``,
            ``best_val_cl``, ``best_epoch``
            final, ``step`` = last epoch, for the model selected on validation CL: ``test_cl``,
            ``test_att_cos``, ``test_att_cos_l<k>``, ``test_cam_cos``, ``test_n_invalid``,
            ``best_epoch``, ``test_xai_<name>``
            Accuracies are percentages (0–100); cosines are in [0, 1].
    artifacts ``matrices/confusion.json|png`` (7×7, rows = true class, row-normalised, class
            order ``fer_core.CLASSES``), ``matrices/cos_matrix.json|png`` (rows = the six
            expression classes + ``average``, columns = ``layer<k>`` … + ``cam``); runs
            of earlier versions also have ``model/selected.pt`` (state dict + flat config)
    outputs the LoggedModel ``model`` (MLflow PyTorch flavour, ``runs:/<run id>/model``): the
            trial's one copy of its selected weights; inputs: the splits as datasets
            (``tuner.tracking.outputs``)
    status  FINISHED (also for early-stopped trials), FAILED (errored after its retries) or
            KILLED (interrupted: ``--resume`` reopens it); never left RUNNING once the driver ends
            (a driver killed with SIGKILL leaves its open runs RUNNING until ``--resume``).
            The parent ends FINISHED, or KILLED if some trial was interrupted, or FAILED.

Secrets
    Every param and tag goes through ``tuner.tracking.client.outgoing`` (the one place that
    applies ``tuner.tracking.redact``) before it is logged or journaled: credentials in
    URLs (``postgresql://user:pw@host`` → ``postgresql://***@host``, secret query values) and
    the values of secret-named keys (``*password*``, ``*token*``, ``*secret*``, ``*_key``, …)
    become ``***``. So e.g. ``sweep.optuna_storage`` and ``sweep.path`` never carry a password.

Delivery
    Trials queue their operations on a ``tuner.tracking.tracker.TrialTracker``: a tracking
    server outage delays them (the trial keeps training) but loses none; what a trial could not
    deliver by its end waits in its journal ``<trial folder>/mlflow_journal.jsonl``
    (``tuner.tracking.journal``) for ``python -m tuner.mlflow_replay``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fer_core import metric_names as mn
from fer_core.cli import UserError

DEFAULT_EXPERIMENT = "au-guided-fer"
ARTIFACT_DIR_NAME = "mlruns"  # next to a sqlite store

# ---------------------------------------------------------------- tags
TAG_PARENT = "mlflow.parentRunId"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_ROLE = "sweep.role"
TAG_SWEEP = "sweep.name"
TAG_SPACE = "sweep.space"
TAG_SWEEP_PATH = "sweep.path"
TAG_DATA_FINGERPRINT = "data.fingerprint"
TAG_TRIAL_ID = "tune.trial_id"
TAG_TRIAL_NAME = "tune.trial_name"
TAG_ATTEMPTS = "tune.attempts"
TAG_TUNE_STATUS = "tune.status"
TAG_ARM = "arm"
TAG_EARLY_STOPPED = "early_stopped"
TAG_CONFIG_HASH = "config.hash"

ROLE_PARENT = "parent"
ROLE_TRIAL = "trial"

# ---------------------------------------------------------------- params
SWEEP_PARAM_PREFIX = "sweep."

# ---------------------------------------------------------------- metrics
# Their names live in fer_core.metric_names (the engine emits them); these are the same objects.
EPOCH_METRICS, FINAL_METRICS = mn.EPOCH_METRICS, mn.FINAL_METRICS
ACCURACY_METRICS = mn.ACCURACY_METRICS

KEY_EPOCH = mn.EPOCH
KEY_IS_FINAL = "is_final"
"""Reported to Tune (not MLflow): 1.0 on the result carrying the test metrics. A trial whose
last result lacks it was stopped early by the scheduler."""
KEY_RUN_ID = "mlflow_run_id"
"""Reported to Tune (not MLflow) once the trial's run exists: the driver then ends the run of a
trial stopped early without searching for it."""

GATE_METRICS = ("sweep.trials_skipped", "sweep.trials_not_launched", "sweep.trial_hours",
                "sweep.budget_reached")
SWEEP_TRIALS, SWEEP_FINISHED, SWEEP_EARLY_STOPPED, SWEEP_FAILED, SWEEP_WALL_S = (
    "sweep.trials", "sweep.trials_finished", "sweep.trials_early_stopped", "sweep.trials_failed",
    "sweep.wall_s")
SWEEP_METRICS = (SWEEP_TRIALS, SWEEP_FINISHED, SWEEP_EARLY_STOPPED, SWEEP_FAILED, SWEEP_WALL_S,
                 *GATE_METRICS)

# ---------------------------------------------------------------- artifacts
ARTIFACT_MATRICES = "matrices"
ARTIFACT_MODEL = "model"
MODEL_FILE = "selected.pt"
"""``model/selected.pt``: where runs of earlier versions logged the selected weights (trials
now log them once, as the LoggedModel ``model``); ``fer_core.inference`` still reads it."""
SUMMARY_FILES = ("summary.md", "summary.json")

# ---------------------------------------------------------------- statuses
FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"
TUNE_TO_MLFLOW_STATUS = {"TERMINATED": FINISHED, "ERROR": FAILED}
"""Tune's final trial status → MLflow run status; anything else (PENDING, PAUSED, RUNNING when
the sweep stops) means the trial never completed: KILLED."""


def mlflow_status(tune_status: str) -> str:
    """The MLflow status a run gets when its trial ends with ``tune_status``."""
    return TUNE_TO_MLFLOW_STATUS.get(tune_status, KILLED)


def end_tags(status: str) -> dict[str, str]:
    """The tags a trial sets when it ends its own run with MLflow ``status``: FINISHED means it
    reported its test result (Tune concludes it TERMINATED), FAILED that its code raised."""
    if status == FINISHED:
        return {TAG_TUNE_STATUS: "TERMINATED", TAG_EARLY_STOPPED: "false"}
    if status == FAILED:
        return {TAG_TUNE_STATUS: "ERROR"}
    return {}


def is_trial_metric(key: str) -> bool:
    """Whether ``key`` belongs in a child run's metrics: it matches a metric family."""
    return mn.family(key) is not None


def metric_values(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The schema's metrics out of an engine result, as floats (NaN kept: "no value")."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if is_trial_metric(key) and isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def param_values(flat_config: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params of a child run: every config field as text (``None`` → ``"None"``).
    The client redacts credentials when it writes them."""
    return {key: str(value) for key, value in flat_config.items()}


def sweep_params(settings: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params of the parent run describing the sweep itself (``sweep.<setting>``)."""
    return {f"{SWEEP_PARAM_PREFIX}{key}": str(value) for key, value in settings.items()}


def tag_filter(tags: Mapping[str, str]) -> str:
    """An MLflow ``filter_string`` matching all ``tags`` exactly."""
    clauses = []
    for key, value in tags.items():
        if "'" in value:
            raise UserError(f"tag value {value!r} for {key} contains a quote")
        clauses.append(f"tags.`{key}` = '{value}'")
    return " and ".join(clauses)


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def is_final(result: Mapping[str, Any] | None) -> bool:
    """Whether a trial's last result carries its test metrics (it ran to the end)."""
    return bool(result) and bool(result.get(KEY_IS_FINAL))


JOURNAL_FILE = "mlflow_journal.jsonl"
"""A trial's journal of MLflow writes not yet delivered (``tuner.tracking.journal``), in its
trial folder; ``python -m tuner.mlflow_replay`` finds journals by this name."""


# ---------------------------------------------------------------- what the MLflow UI reads
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
KIND_MODEL_TRAINING = "custom_model_development"
"""The value MLflow 3's UI gives an experiment whose runs train models (it then opens on them)."""
SOURCE_TAGS = {"mlflow.source.name": "python -m tuner.sweep", "mlflow.source.type": "LOCAL"}
"""What the UI's Source column shows for a sweep's runs (next to the git commit)."""
BEST_PREFIX = "best."
"""The parent run's copies of its best trial's headline metrics (``best.test_cl``, ...)."""
TAG_BEST_RUN_ID, TAG_BEST_RUN_NAME = "best.run_id", "best.run_name"
TAG_MODEL_SAVE_S = "model.save_s"
"""Seconds a trial spent logging its selected model (``tuner.trainable``)."""
