"""``python -m tuner.sweep``: a Ray Tune sweep over a named space, tracked in MLflow.

The driver checks the whole plan first (``tuner.plan``), prepares the data once, creates the
MLflow experiment and the sweep's parent run, then runs Tune; every trial the search proposes
passes ``tuner.gate`` (already-done configurations are reused, ``--budget-hours`` ends the
search) and tracks itself in its own child run (``tuner.trainable``). At the end it prints the
best trial per arm (read back from MLflow) and how to open the MLflow UI. ``--resume`` restores
a killed sweep from its folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from ray import tune

from fer_core.cli import cli_main, exit_with
from fer_core.config import ExperimentConfig
from search_spaces import SPACES
from search_spaces.params import derived_fields
from tuner import guard
from tuner.cli import DEFAULT_SPACE, parse_args
from tuner.context import StoragePath, SweepContext
from tuner.estimate import Prediction, run_estimate
from tuner.gate import GATE_FILE, GateRecord, GateRules, SweepGate
from tuner.next_steps import report_command
from tuner.plan import ResolvedSweep, SweepError, resolve
from tuner.pricing import Pricing
from tuner.provenance import git_commit, prepare_data
from tuner.resume import NothingToResume, find_sweep
from tuner.searchers import SCHEDULERS, SEARCHERS
from tuner.summary import SUMMARIES, TrialRow
from tuner.tracking import client as runs
from tuner.tracking import outputs, ui
from tuner.tracking import schema as tr
from tuner.tracking.client import TrackingTarget
from tuner.tracking.closer import CloseTrialRuns
from tuner.tracking.redact import redact
from tuner.trainable import train_trial

PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"
"""Ray Tune's own knob, read by its controller from the environment only (Ray 2.60 has no
argument for it), so it stays an environment variable; ``pending_trials`` sets it around fit()."""
MAX_FAILURES = 2  # retries per trial, each from the trial's last checkpoint
CHECKPOINTS_KEPT = 1  # the latest is all a resume needs (each holds the best weights too)


def list_spaces() -> str:
    """The ``--list`` table: every registered space and what it runs by default."""
    lines = [f"{'space':<14} {'trials':>6}  {'searcher':<14} {'scheduler':<9} {'metric':<24} "
             "reproduces / description"]
    for name in SPACES:
        space = SPACES.get(name)
        metric = ",".join(space.objective.metrics)
        lines.append(f"{name:<14} {space.default_trials:>6}  {space.searcher:<14} "
                     f"{space.scheduler:<9} {metric:<24} {space.reproduces}: {space.description}")
    lines.append("trials: configurations (× --seeds); the λ=0 baseline included where listed; "
                 f"default space: {DEFAULT_SPACE}")
    return "\n".join(lines)


def storage_root(args: argparse.Namespace) -> StoragePath:
    """``--storage-path`` as Tune gets it: a URI (``s3://``, ``gs://``, ``file://``, ...) kept
    as given, a local folder made absolute (default ``./ray_results``)."""
    return StoragePath.parse(args.storage_path or "ray_results")


def check_storage(storage: StoragePath, args: argparse.Namespace) -> None:
    """Refuse, before anything starts, a storage URI without a data cache folder."""
    if storage.is_uri and not args.cache_dir:
        raise SweepError(
            f"--storage-path {redact(str(storage))} is a URI, and the data cache cannot live "
            "in object storage (the datasets read and write plain files): pass --cache-dir, a "
            "folder on a filesystem shared by all nodes (e.g. an NFS/EFS/Filestore mount such "
            "as /mnt/fer/data_cache)")


def make_trainable(ctx: SweepContext, resources: dict[str, float]) -> Any:
    """The trial function with the sweep context bound once and its resources declared."""
    return tune.with_resources(tune.with_parameters(train_trial, context=ctx), resources)


def init_ray(args: argparse.Namespace) -> bool:
    """Connect to ``--address`` or start a local runtime; True if this call started Ray."""
    if ray.is_initialized():
        return False
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    return True


def start(resolved: ResolvedSweep,
          args: argparse.Namespace) -> tuple[tune.Tuner, SweepContext, Pricing | None]:
    """Data, MLflow parent run, sweep folder, a fresh Tuner and the price for a new sweep."""
    storage = storage_root(args)
    check_storage(storage, args)
    folder = storage / resolved.name
    if folder.exists():
        raise SweepError(f"sweep folder {redact(str(folder))} exists: use --resume --name "
                         f"{resolved.name} to continue it, or another --name")
    cache_dir = str(Path(args.cache_dir).resolve() if args.cache_dir else storage / "data_cache")
    guard.before_start(resolved.base, args, cache_dir)  # exit 2 before MLflow or Ray hold anything
    init_ray(args)
    cluster_note = guard.check_cluster(args, resolved.settings.resources)
    uri = runs.normalize_uri(args.mlflow_uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = runs.ensure_experiment(client, args.experiment or tr.DEFAULT_EXPERIMENT, uri)

    chosen = resolved.profile
    if chosen is not None:
        print(chosen.line(), flush=True)
    print(f"preparing data ({resolved.base.get('dataset')}) in {cache_dir} ...", flush=True)
    fingerprint = prepare_data(ExperimentConfig.from_flat(resolved.base), cache_dir)
    commit = git_commit()
    settings = resolved.settings
    parent = runs.start_parent(
        client, experiment_id, resolved.name,
        tags={tr.TAG_SPACE: resolved.space.name, tr.TAG_GIT_COMMIT: commit,
              tr.TAG_DATA_FINGERPRINT: fingerprint, tr.TAG_SWEEP_PATH: str(folder),
              **ui.SOURCE_TAGS,
              **({"profile": chosen.name} if chosen else {}),
              **({tr.TAG_PARENT: args.parent_run} if getattr(args, "parent_run", None) else {})},
        params={**tr.sweep_params(settings.params()), **tr.param_values(resolved.base),
                **({"profile": chosen.name} if chosen else {})},
    )
    target = TrackingTarget(uri, experiment_id, parent, resolved.name, resolved.space.name)
    ctx = SweepContext(resolved.base, target, commit, fingerprint, cache_dir, settings)
    try:
        tuner = build_tuner(resolved, ctx, args, storage, cluster_note)
        # With no node able to hold a trial yet (cluster_note), a timing task would wait as
        # the trials will; the pending watch decides then, and the sweep goes without a price.
        pricing = None if cluster_note else Pricing(resolved, cache_dir, args.address, folder)
        if pricing is not None:  # the closing summary sets it against the actual hours
            pricing.start()
        return tuner, ctx, pricing
    except BaseException:
        runs.end_run(client, parent, tr.FAILED)
        raise


def build_tuner(resolved: ResolvedSweep, ctx: SweepContext, args: argparse.Namespace,
                storage: StoragePath, cluster_note: str | None = None) -> tune.Tuner:
    """A fresh Tuner writing to ``storage`` (a folder or a URI), ``sweep.json`` saved first."""
    ctx.save(storage / resolved.name)
    init_ray(args)
    plan, settings = resolved.plan, resolved.settings
    watch = guard.pending_watch(args, settings.resources, storage / resolved.name, cluster_note)
    setup = SEARCHERS.get(settings.searcher)(plan)
    # Every trial passes the gate: duplicates are skipped, the budget ends the search, and it
    # holds max_concurrent (grids included, which Tune's own limit would not wrap).
    gate = SweepGate(setup.search_alg, GateRules(
        ctx, settings.budget, settings.max_concurrent, dedup=settings.dedup,
        record_path=str(storage / resolved.name / GATE_FILE),
        derived=derived_fields(setup.param_space)))
    return tune.Tuner(
        make_trainable(ctx, settings.resources),
        param_space=setup.param_space,
        tune_config=tune.TuneConfig(
            search_alg=gate, scheduler=SCHEDULERS.get(settings.scheduler)(plan),
            num_samples=setup.num_samples,
            reuse_actors=True,  # no new worker process (torch, timm imports) per trial
        ),
        run_config=tune.RunConfig(
            name=resolved.name, storage_path=str(storage),
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
            callbacks=[CloseTrialRuns(ctx.target), *([watch] if watch else [])],
            stop=watch.stopper() if watch else None,
        ),
    )


def restore(args: argparse.Namespace) -> tuple[tune.Tuner, SweepContext]:
    """The Tuner of a killed sweep, with the same trainable and the parent run reopened."""
    folder = find_sweep(storage_root(args), args.name, args.space)
    try:
        ctx = SweepContext.load(folder).with_secrets(args.mlflow_uri, args.optuna_storage)
    except ValueError as err:
        raise NothingToResume(f"sweep {folder.name!r}: {err}") from None
    if ctx.settings is None:
        raise NothingToResume(f"sweep {folder.name!r}: its {folder.name}/sweep.json holds no "
                              "sweep settings; start it again without --resume")
    if (args.set or args.trials or args.seeds != 1 or args.smoke_test or args.rerun
            or args.budget_hours is not None):
        print("note: --resume continues the sweep with its saved settings; --set/--trials/"
              "--seeds/--smoke-test/--budget-hours/--rerun are ignored", flush=True)
    # The saved URIs are the ones this sweep uses, whatever the resume command's defaults.
    guard.check_connections(argparse.Namespace(**{
        **vars(args), "mlflow_uri": ctx.target.uri, "optuna_storage": ctx.settings.optuna_storage}))
    runs.reopen(ctx.target.client(), ctx.target.parent_run_id)
    init_ray(args)
    print(f"resuming sweep {folder.name} from {redact(str(folder))}", flush=True)
    tuner = tune.Tuner.restore(str(folder), trainable=make_trainable(ctx, ctx.settings.resources),
                               resume_errored=True)
    return tuner, ctx


def report(ctx: SweepContext, status: str, wall_s: float, folder: StoragePath) -> str:
    """Summary from MLflow: printed, attached to the parent run, which is then ended.

    Trials the gate skipped as already done are represented by their earlier runs; the gate's
    record adds the skips and the budget. The parent ends KILLED when some trial did not
    conclude (an interrupted sweep: resumable).
    """
    target = ctx.target
    client = target.client()
    if status != tr.FINISHED:  # else the callback ended the stragglers when fit() ended
        runs.finish_stragglers(client, target, {})  # KILLED
    trial_runs = runs.sweep_trial_runs(client, target)
    trials = [TrialRow.from_run(r) for r in trial_runs]
    if status == tr.FINISHED and any(t.status == tr.KILLED for t in trials):
        status = tr.KILLED
    record = GateRecord.load(folder)  # None: a sweep started before the gate existed
    reused = reused_rows(client, record.skipped) if record else []
    space = SPACES.get(target.space)
    objective = ctx.settings.objective if ctx.settings else space.objective
    summary = SUMMARIES.get(space.summary)(trials + reused, objective)
    if record:
        summary = summary.with_facts(record.notes(), {"gate": asdict(record)})
    prediction = Prediction.load(folder)
    if prediction is not None:
        actual = trial_hours(trial_runs)
        summary = summary.with_facts([prediction.against(actual, len(trials))], {"estimate": {
            "predicted_trial_hours": prediction.trial_hours, "actual_trial_hours": actual}})
    text = summary.markdown()
    client.log_text(target.parent_run_id, text, tr.SUMMARY_FILES[0])
    client.log_dict(target.parent_run_id, summary.as_dict(), tr.SUMMARY_FILES[1])
    counts = {
        tr.SWEEP_TRIALS: len(trials),
        tr.SWEEP_FINISHED: sum(t.complete for t in trials),
        tr.SWEEP_EARLY_STOPPED: sum(t.early_stopped for t in trials),
        tr.SWEEP_FAILED: sum(t.status == tr.FAILED for t in trials),
        tr.SWEEP_WALL_S: wall_s,
        **(record.metrics() if record else {}),
    }
    best = ui.best_run(trial_runs, objective)
    if best is not None:  # the parent shows the winner in the runs table without opening it
        best_metrics, best_tags = ui.best_summary(best)
        counts.update(best_metrics)
        runs.set_tags(client, target.parent_run_id, best_tags)
        text += register(ctx, client, best)
    text += f"\nReport:        {report_command(client, target)}"
    runs.log_metrics(client, target.parent_run_id, counts, step=0)
    runs.end_run(client, target.parent_run_id, status)
    return text


def trial_hours(trial_runs: list[Any]) -> float:
    """Summed duration of the sweep's trial runs (start to end, as MLflow recorded them)."""
    ms = sum(r.info.end_time - r.info.start_time for r in trial_runs
             if r.info.end_time and r.info.start_time)
    return ms / 3.6e6


def register(ctx: SweepContext, client: MlflowClient, best: Any) -> str:
    """``--register NAME``: the best trial's model in the Model Registry; a line for the
    summary (a failure is reported there, it does not fail the finished sweep)."""
    name = ctx.settings.register if ctx.settings else None
    if not name:
        return ""
    try:
        uri = outputs.register_best(client, name, best.info.run_id)
    except MlflowException as err:
        return f"\nModel Registry: {name} NOT registered ({err.message})"
    return (f"\nModel Registry: {uri} = the model of {best.info.run_name} "
            f"(run {best.info.run_id})")


def reused_rows(client: MlflowClient, skipped: list[dict[str, Any]]) -> list[TrialRow]:
    """The earlier runs standing in for skipped trials (one deleted since is left out)."""
    rows = []
    for skip in skipped:
        try:
            rows.append(TrialRow.from_run(client.get_run(skip["run_id"]), reused=True))
        except MlflowException as err:
            print(f"note: earlier run {skip['run_id']} is gone ({err.error_code})", flush=True)
    return rows


def ui_hint(uri: str) -> str:
    """How to open the MLflow UI for ``uri``: a server is the UI; a local store needs one."""
    if uri.startswith(("http://", "https://")):
        return redact(uri)
    return f"mlflow ui --backend-store-uri {redact(uri)}   (then http://127.0.0.1:5000)"


def trials_link(ctx: SweepContext) -> str:
    """The UI page of this sweep's trials sorted by its (primary) objective."""
    target = ctx.target
    space = SPACES.get(target.space)
    objective = ctx.settings.objective if ctx.settings else space.objective
    return ui.trials_link(ui.ui_base(redact(target.uri)), target.experiment_id,
                          target.sweep_name, objective.primary_metric, objective.primary_mode)


def how_to_look(ctx: SweepContext, storage: StoragePath | Path) -> str:
    """Where the results are and the commands to look at or resume them (no credentials)."""
    target = ctx.target
    base = ui.ui_base(redact(target.uri))
    lines = [
        f"MLflow: experiment id {target.experiment_id}, parent run {target.parent_run_id} "
        f"({target.sweep_name}), one child run per trial, in {redact(target.uri)}",
        f"Open the UI:   {ui_hint(target.uri)}",
        f"Experiment:    {ui.experiment_link(base, target.experiment_id)}",
        f"This sweep:    {trials_link(ctx)}",
        f"Resume:        python -m tuner.sweep --resume --name {target.sweep_name} "
        f"--storage-path {redact(str(storage))}",
    ]
    storage_url = ctx.settings.optuna_storage if ctx.settings else None
    if storage_url:
        lines.append(f"Optuna study:  optuna-dashboard {redact(storage_url)}"
                     f"   (study {target.sweep_name})")
    return "\n".join(lines)


@contextmanager
def pending_trials(n: int) -> Iterator[None]:
    """Let Tune request ``n`` trials' resources at once while it runs, so an autoscaler sees the
    whole demand (OptunaSearch alone keeps one trial pending). A value the user exported wins;
    ours is removed afterwards (a second sweep in the same process must not inherit it)."""
    if PENDING_ENV in os.environ:
        yield
        return
    os.environ[PENDING_ENV] = str(n)
    try:
        yield
    finally:
        os.environ.pop(PENDING_ENV, None)


def run(tuner: tune.Tuner, ctx: SweepContext, args: argparse.Namespace, owns_ray: bool,
        pricing: Pricing | None = None) -> int:
    """Fit, then summarise and end the parent run whatever happened."""
    began = time.monotonic()
    status = tr.KILLED
    grid = None
    try:
        with pending_trials(ctx.settings.max_concurrent), guard.CtrlC() as ctrl_c:
            grid = tuner.fit()
        status = tr.FINISHED
    except Exception:
        status = tr.FAILED
        raise
    finally:
        if pricing is not None and status == tr.FINISHED and not ctrl_c.pressed:
            pricing.wait()  # timed beside the trials, it may still run (very short trials)
        text = report(ctx, status, time.monotonic() - began,
                      storage_root(args) / ctx.target.sweep_name)
        print("\n" + text + "\n\n" + how_to_look(ctx, storage_root(args)), flush=True)
        if owns_ray:
            ray.shutdown()
    return guard.outcome(grid, storage_root(args) / ctx.target.sweep_name, ctrl_c.pressed)


@cli_main(extra=(ConnectionError,))  # ray.init(address="auto") with no cluster running
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        print(list_spaces())
        return 0
    if args.estimate and not args.resume:
        try:
            resolved = resolve(args)
        except SweepError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        cache = str(Path(args.cache_dir).resolve()) if args.cache_dir else None
        print(run_estimate(resolved, cache, args.address), flush=True)
        return 0
    try:
        started_ray = not ray.is_initialized()
        if args.resume:
            tuner, ctx = restore(args)
            pricing = None
        else:
            tuner, ctx, pricing = start(resolve(args), args)
    except (SweepError, NothingToResume) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run(tuner, ctx, args, owns_ray=started_ray and ray.is_initialized(), pricing=pricing)


if __name__ == "__main__":
    exit_with(main())
