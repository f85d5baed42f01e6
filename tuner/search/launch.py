"""The Ray runtime and the Tune ``Tuner`` of a sweep: searcher, gate and scheduler put together.

Every trial the searcher proposes passes the launch gate (``tuner.search.gate``): duplicates are
skipped, the budget ends the search, and it holds ``max_concurrent``. Ray and Tune are imported
here, where the sweep starts, not where its command line is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from search_spaces.params import derived_fields
from tuner.checks import guard
from tuner.checks.space import CHECKPOINTS_KEPT
from tuner.search.gate import GATE_FILE, GateRules, SweepGate
from tuner.search.searchers import SCHEDULERS, SEARCHERS
from tuner.spec.context import SweepContext
from tuner.spec.spec import SweepPlace, SweepSpec

if TYPE_CHECKING:
    from ray import tune

PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"
"""Ray Tune's own knob, read by its controller from the environment only (Ray 2.60 has no
argument for it), so it stays an environment variable; ``pending_trials`` sets it around fit()."""
MAX_FAILURES = 2  # retries per trial, each from the trial's last checkpoint


def init_ray(place: SweepPlace) -> bool:
    """Connect to the sweep's Ray address or start a local runtime; True if this call started
    Ray (a runtime already up in this process is used as it is)."""
    import ray

    from tuner.checks.signals import sigterm_kept

    if ray.is_initialized():
        return False
    with sigterm_kept():  # SIGTERM stays the sweep's ordinary stop, not Ray's crash dump
        if place.address:
            ray.init(address=place.address)
        else:
            ray.init(num_cpus=place.num_cpus, include_dashboard=False)
    return True


def make_trainable(ctx: SweepContext, resources: dict[str, float]) -> Any:
    """The trial function with the sweep context bound once and its resources declared."""
    from ray import tune

    from tuner.trainable import train_trial

    return tune.with_resources(tune.with_parameters(train_trial, context=ctx), resources)


def build_tuner(spec: SweepSpec, ctx: SweepContext, cluster_note: str | None = None) -> tune.Tuner:
    """A fresh Tuner writing to the sweep's storage (a folder or a URI), ``sweep.json`` first."""
    from ray import tune

    from tuner.tracking.closer import CloseTrialRuns

    folder = spec.folder
    ctx.save(folder)
    settings = spec.settings
    watch = guard.pending_watch(spec.place, settings.resources, folder, cluster_note)
    setup = SEARCHERS.get(settings.searcher)(spec.plan)
    # Every trial passes the gate: duplicates are skipped, the budget ends the search, and it
    # holds max_concurrent (grids included, which Tune's own limit would not wrap).
    gate = SweepGate(setup.search_alg, GateRules(
        ctx, settings.budget, settings.max_concurrent, dedup=settings.dedup,
        record_path=str(folder / GATE_FILE), derived=derived_fields(spec.params)))
    return tune.Tuner(
        make_trainable(ctx, settings.resources),
        param_space=setup.param_space,
        tune_config=tune.TuneConfig(
            search_alg=gate, scheduler=SCHEDULERS.get(settings.scheduler)(spec.plan),
            num_samples=setup.num_samples,
            reuse_actors=True,  # no new worker process (torch, timm imports) per trial
        ),
        run_config=tune.RunConfig(
            name=spec.name, storage_path=str(spec.place.storage),
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT),
            callbacks=[CloseTrialRuns(ctx.target), *([watch] if watch else [])],
            stop=watch.stopper() if watch else None,
        ),
    )


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
