"""Searchers and schedulers a space can name, each built from the sweep's ``SearchPlan``.

``SEARCHERS`` / ``SCHEDULERS`` are registries: a space says ``searcher="optuna"`` and this
module turns that into Ray Tune objects (with the wrappers of ``tuner.search.wrappers``). The
registries' names are read when a sweep is resolved; Ray and Optuna are imported only when a
searcher or scheduler is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from fer_core.cli import UserError
from fer_core.objective import Objective
from fer_core.registry import Registry
from search_spaces.base import SweepSpace
from search_spaces.params import sampled_fields, to_tune
from tuner.tracking import schema as tr

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler
    from ray.tune.search import SearchAlgorithm, Searcher

class SearchPlan(Protocol):
    """What the searchers and schedulers read of a sweep: ``tuner.spec.spec.SweepSpec`` is one
    (a protocol, so this module needs nothing of the spec's package)."""

    @property
    def space(self) -> SweepSpace: ...
    @property
    def params(self) -> Mapping[str, Any]:
        """The space's params minus the fields the user pinned with ``--set``."""
    @property
    def reference_points(self) -> tuple[Mapping[str, Any], ...]: ...
    @property
    def seeds(self) -> tuple[int, ...]: ...
    @property
    def num_configs(self) -> int:
        """Configurations to try, reference points included (grids expand themselves)."""
    @property
    def objective(self) -> Objective: ...
    @property
    def epochs(self) -> int: ...
    @property
    def sweep_name(self) -> str: ...
    @property
    def optuna_storage(self) -> str | None: ...


@dataclass(frozen=True)
class SearchSetup:
    """What ``Tuner`` needs from the searcher side."""

    search_alg: SearchAlgorithm | Searcher
    param_space: dict[str, Any]
    num_samples: int


SEARCHERS: Registry[Callable[[SearchPlan], SearchSetup]] = Registry("searcher")
SCHEDULERS: Registry[Callable[[SearchPlan], TrialScheduler]] = Registry("scheduler")


def _optuna(plan: SearchPlan, **kwargs: Any) -> SearchSetup:
    from ray.tune.search.optuna import OptunaSearch

    from tuner.search.wrappers import SweepSearcher, split_references

    if not sampled_fields(plan.params):
        raise UserError(
            f"space {plan.space.name!r}: every searched field is pinned by --set; "
            f"nothing is left for Optuna to search"
        )
    # Points inside the domain are Optuna's first trials (it learns from them); the others
    # run before them, outside the study.
    inside, outside = split_references(plan.reference_points, plan.params)
    metric, mode = plan.objective.for_tune()
    inner = OptunaSearch(metric=metric, mode=mode, seed=plan.seeds[0],
                         points_to_evaluate=inside or None, **kwargs)
    searcher = SweepSearcher(inner, plan.seeds, outside)
    return SearchSetup(searcher, to_tune(plan.params), plan.num_configs * len(plan.seeds))


@SEARCHERS.register("optuna")
def optuna_tpe(plan: SearchPlan) -> SearchSetup:
    """Optuna TPE (single objective); the study lives in memory and in Tune's checkpoints, or
    in ``--optuna-storage`` when given (``optuna-dashboard <storage>`` shows it)."""
    if plan.optuna_storage is None:
        return _optuna(plan)
    from tuner.search.study_storage import StudyStorage

    return _optuna(plan, storage=StudyStorage(url=plan.optuna_storage),
                   study_name=plan.sweep_name)


@SEARCHERS.register("optuna_pareto")
def optuna_pareto(plan: SearchPlan) -> SearchSetup:
    """Multi-objective Optuna stored in an RDB (``optuna-dashboard <storage>`` shows it)."""
    from tuner.search.study_storage import StudyStorage

    if plan.optuna_storage is None:
        raise UserError(f"space {plan.space.name!r} needs an Optuna storage URL")
    return _optuna(plan, storage=StudyStorage(url=plan.optuna_storage),
                   study_name=plan.sweep_name)


@SEARCHERS.register("grid")
def grid(plan: SearchPlan) -> SearchSetup:
    """Tune's grid/variant generator; seeds are one more grid axis, references run first."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from tuner.search.wrappers import SEED_KEY

    params = to_tune(plan.params)
    params[SEED_KEY] = tune.grid_search(list(plan.seeds))
    # Each reference point replaces one sample (and is expanded over the seeds); one more
    # sample runs the grid itself. Tune refuses preset keys outside the param space: a field
    # pinned with --set has left it (the trial gets the pinned value from the sweep's base).
    points = [{k: v for k, v in p.items() if k in params} for p in plan.reference_points]
    search = BasicVariantGenerator(points_to_evaluate=points)
    return SearchSetup(search, params, 1 + len(plan.reference_points))


# ---------------------------------------------------------------- schedulers
@SCHEDULERS.register("asha")
def asha(plan: SearchPlan) -> TrialScheduler:
    """ASHA on the space's (first) metric, one rung per ``grace_period × rf^k`` epochs."""
    from tuner.search.wrappers import ReferenceASHA

    space = plan.space
    return ReferenceASHA(
        plan.reference_points, time_attr=tr.KEY_EPOCH, metric=plan.objective.primary_metric,
        mode=plan.objective.primary_mode, max_t=plan.epochs,
        grace_period=min(space.grace_period, plan.epochs), reduction_factor=space.reduction_factor,
    )


@SCHEDULERS.register("fifo")
def fifo(plan: SearchPlan) -> TrialScheduler:
    """No early stopping: every trial runs all its epochs."""
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()
