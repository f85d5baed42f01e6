"""``python -m tuner.sweep``: a Ray Tune sweep over a named space, tracked in MLflow.

The story of one sweep: ``tuner.cli`` reads the command line and ``tuner.spec`` resolves it into
one checked ``SweepSpec`` (a mistake ends there, one ``error:`` line, before anything starts);
``tuner.checks`` makes sure Ray, MLflow and the data answer and that a trial fits; the data is
prepared once, the parent run opened and ``tuner.cost`` prices the sweep; ``tuner.search``
builds the Tuner, whose trials (``tuner.trainable``) pass the launch gate and track themselves
in child runs; ``tuner.results`` reads them back, ends the parent run and says how to look.
``--resume`` restores a killed sweep from its folder and its saved ``sweep.json``. Heavy
libraries are imported by the steps that use them: ``--help`` and usage errors answer at once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fer_core.cli import cli_main, exit_with
from tuner.checks.signals import Stop
from tuner.cli import parse_args
from tuner.spec.resolve import SweepError, resolve, resolve_resume
from tuner.spec.resume import ResumeRequest
from tuner.spec.spec import SweepPlace, SweepSpec
from tuner.tracking.provenance import git_commit

if TYPE_CHECKING:
    from ray import tune

    from tuner.cost.pricing import Pricing
    from tuner.spec.context import SweepContext


def start(spec: SweepSpec) -> tuple[tune.Tuner, SweepContext, Pricing | None]:
    """Checks, data, MLflow parent run, sweep folder, a fresh Tuner and the sweep's price."""
    from mlflow import MlflowClient

    from fer_core.config import ExperimentConfig
    from tuner.checks import guard
    from tuner.checks.data import prepare_data
    from tuner.cost.pricing import Pricing
    from tuner.search.launch import build_tuner, init_ray
    from tuner.spec.context import SweepContext
    from tuner.tracking import client as runs
    from tuner.tracking import schema as tr
    from tuner.tracking import ui
    from tuner.tracking.client import TrackingTarget
    from tuner.tracking.redact import redact

    place = spec.place
    if spec.folder.exists():
        raise SweepError(f"sweep folder {redact(str(spec.folder))} exists: use --resume --name "
                         f"{spec.name} to continue it, or another --name")
    guard.before_start(spec)  # exit 2 before MLflow or Ray hold anything
    init_ray(place)
    cluster_note = guard.check_cluster(place, spec.settings.resources)
    uri = runs.normalize_uri(place.mlflow_uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = runs.ensure_experiment(client, place.experiment or tr.DEFAULT_EXPERIMENT, uri)
    profile_tag = {"profile": spec.profile.name} if spec.profile is not None else {}
    if spec.profile is not None:
        print(spec.profile.line(), flush=True)
    print(f"preparing data ({spec.base.get('dataset')}) in {place.data_cache} ...", flush=True)
    fingerprint = prepare_data(ExperimentConfig.from_flat(spec.base), place.data_cache)
    commit = git_commit()
    parent = runs.start_parent(
        client, experiment_id, spec.name,
        tags={tr.TAG_SPACE: spec.settings.space, tr.TAG_GIT_COMMIT: commit,
              tr.TAG_DATA_FINGERPRINT: fingerprint, tr.TAG_SWEEP_PATH: str(spec.folder),
              **ui.SOURCE_TAGS, **profile_tag,
              **({tr.TAG_PARENT: place.parent_run} if place.parent_run else {})},
        params={**tr.sweep_params(spec.settings.params()), **tr.param_values(spec.base),
                **profile_tag})
    target = TrackingTarget(uri, experiment_id, parent, spec.name, spec.settings.space)
    ctx = SweepContext(spec.base, target, commit, fingerprint, place.data_cache, spec.settings)
    try:
        tuner = build_tuner(spec, ctx, cluster_note)
        # With no node able to hold a trial yet (cluster_note), a timing task would wait as
        # the trials will; the pending watch decides then, and the sweep goes without a price.
        pricing = None if cluster_note else Pricing(spec)
        if pricing is not None:  # the closing summary sets it against the actual hours
            pricing.start()
        return tuner, ctx, pricing
    except BaseException:
        runs.end_run(client, parent, tr.FAILED)
        raise


def restore(request: ResumeRequest) -> tuple[tune.Tuner, SweepContext]:
    """The Tuner of a killed sweep from its saved spec, with the parent run reopened."""
    from ray import tune

    from tuner.checks import guard
    from tuner.cost.timing import remove_stale_scratch
    from tuner.search.launch import init_ray, make_trainable
    from tuner.tracking import client as runs
    from tuner.tracking.redact import redact

    ctx, folder = request.context, request.folder
    if request.ignored:
        print("note: --resume continues the sweep with its saved settings; --set/--trials/"
              "--seeds/--smoke-test/--budget-hours/--rerun are ignored", flush=True)
    # The saved URIs are the ones this sweep uses, whatever the resume command's defaults.
    guard.check_connections(request.place.address, ctx.target.uri, ctx.settings.optuna_storage)
    runs.reopen(ctx.target.client(), ctx.target.parent_run_id)
    init_ray(request.place)
    print(f"resuming sweep {folder.name} from {redact(str(folder))}", flush=True)
    if not folder.is_uri:  # what a driver killed while timing the sweep left
        remove_stale_scratch(str(folder))
    tuner = tune.Tuner.restore(str(folder), trainable=make_trainable(ctx, ctx.settings.resources),
                               resume_errored=True)
    return tuner, ctx


def run(tuner: tune.Tuner, ctx: SweepContext, place: SweepPlace, owns_ray: bool,
        pricing: Pricing | None = None, stop: Stop | None = None) -> int:
    """Fit, then summarise and end the parent run whatever happened (Ctrl-C and SIGTERM
    included: ``stop``)."""
    import ray

    from tuner.checks import guard
    from tuner.results.closing import close_sweep
    from tuner.results.next_steps import how_to_look
    from tuner.search.launch import pending_trials
    from tuner.tracking import schema as tr

    began = time.monotonic()
    status = tr.KILLED
    grid = None
    disk_full = False
    folder = place.folder(ctx.target.sweep_name)
    stop = stop or Stop()
    try:
        with pending_trials(ctx.settings.max_concurrent), stop.fitting():
            grid = tuner.fit()
        status = tr.FAILED if guard.stopped_by_full_disk(grid) else tr.FINISHED
    except Exception:
        status = tr.FAILED
        if not guard.storage_full(folder):
            raise
        disk_full = True  # Tune failed on a file it could only half write: say why, exit 2
    finally:
        if pricing is not None and status == tr.FINISHED and not stop.stopped_fit:
            pricing.wait()  # timed beside the trials, it may still run (very short trials)
        text = close_sweep(ctx, status, time.monotonic() - began, folder)
        print("\n" + text + "\n\n" + how_to_look(ctx, place.storage), flush=True)
        if owns_ray:
            ray.shutdown()
    if disk_full:
        return guard.disk_full(folder, ctx)
    return guard.outcome(grid, folder, stop, ctx)


@cli_main(extra=(ConnectionError,))  # ray.init(address="auto") with no cluster running
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        from search_spaces import listing

        print(listing())
        return 0
    # A mistake raises a UserError (SweepError, NothingToResume, ...): cli_main prints it.
    request = resolve_resume(args) if args.resume else None
    spec = None if args.resume else resolve(args)
    if spec is not None and args.estimate:
        from tuner.cost.estimate import run_estimate

        print(run_estimate(spec), flush=True)
        return 0
    import ray

    started_ray = not ray.is_initialized()
    # From here on SIGTERM (a scheduler's stop, a preemption) is an ordinary stop, as Ctrl-C.
    with Stop() as stop:
        if request is not None:
            (tuner, ctx), pricing, place = restore(request), None, request.place
        else:
            (tuner, ctx, pricing), place = start(spec), spec.place
        return run(tuner, ctx, place, owns_ray=started_ray and ray.is_initialized(),
                   pricing=pricing, stop=stop)


if __name__ == "__main__":
    exit_with(main())
