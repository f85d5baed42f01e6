"""Searchers and schedulers a space can name, each built from the sweep's ``SearchPlan``.

``SEARCHERS`` / ``SCHEDULERS`` are registries: a space says ``searcher="optuna"`` and this
module turns that into Ray Tune objects. Two small wrappers carry the sweep's research design:

- ``SweepSearcher`` runs the reference points (e.g. the λ = 0 baseline) first, outside the
  searched domain, repeats every configuration over the same seeds (paired arms), and tells
  Optuna about ASHA-stopped trials as *pruned* instead of as complete with a truncated value.
- ``ReferenceASHA`` is ASHA that never stops a reference trial: every arm is compared with it.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, SearchAlgorithm, Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.sample import Domain

from fer_core.objective import Objective
from fer_core.registry import Registry
from search_spaces.base import SweepSpace
from tuner.tracking import schema as tr

SEED_KEY = "seed"


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


def is_reference(config: Mapping[str, Any], points: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``config`` is one of the reference points (all of the point's keys match)."""
    return any(all(config.get(k) == v for k, v in p.items()) for p in points)


class _Group:
    """One configuration and its repeats over the sweep's seeds."""

    def __init__(self, config: Mapping[str, Any], inner_id: str | None, seeds: Sequence[int]):
        self.config = dict(config)
        self.inner_id = inner_id  # the trial id the inner searcher knows; None for references
        self.seeds = list(seeds)
        self.trials: list[str] = []
        self.outcomes: dict[str, tuple[Mapping[str, Any] | None, bool]] = {}

    def full(self) -> bool:
        return len(self.trials) == len(self.seeds)

    def add(self, trial_id: str) -> dict[str, Any]:
        seed = self.seeds[len(self.trials)]
        self.trials.append(trial_id)
        return {**self.config, SEED_KEY: seed}

    def done(self) -> bool:
        return self.full() and len(self.outcomes) == len(self.trials)


class SweepSearcher(Searcher):
    """Reference points first, K seeds per configuration, early stops told as pruned."""

    def __init__(self, inner: Searcher, seeds: Sequence[int],
                 reference_points: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner = inner
        self.seeds = list(seeds)
        self.pending_references = [dict(p) for p in reference_points]
        self.groups: dict[str, _Group] = {}
        self.current: _Group | None = None

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        ok = self.inner.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.inner.metric, self.inner.mode
        return ok

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.current is None or self.current.full():
            if self.pending_references:
                base, inner_id = self.pending_references[0], None
            else:
                base, inner_id = self.inner.suggest(trial_id), trial_id
                if base is None or base == Searcher.FINISHED:
                    return base
            if inner_id is None:
                self.pending_references.pop(0)
            self.current = _Group(base, inner_id, self.seeds)
        self.groups[trial_id] = self.current
        return self.current.add(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        group = self.groups.get(trial_id)
        if group is not None and group.inner_id == trial_id:
            self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        group = self.groups.get(trial_id)
        if group is None:
            return
        group.outcomes[trial_id] = (result, error)
        if group.inner_id is None or not group.done():
            return
        outcomes = list(group.outcomes.values())
        finals = [r for r, err in outcomes if not err and tr.is_final(r)]
        truncated = any(not err and not tr.is_final(r) for r, err in outcomes)
        if truncated:  # ASHA judged it: Optuna records PRUNED with its intermediate values
            self.inner.on_trial_complete(group.inner_id, result=None, error=False)
        elif finals:
            self.inner.on_trial_complete(group.inner_id, result=mean_metrics(finals, self.metric))
        else:
            self.inner.on_trial_complete(group.inner_id, result=None, error=True)

    def known_unlaunched(self) -> list[dict[str, Any]]:
        """Trials this searcher will propose next without asking the inner one: the remaining
        seeds of the current configuration, then the pending reference points × seeds."""
        left = []
        if self.current is not None:
            left += [{**self.current.config, SEED_KEY: s}
                     for s in self.current.seeds[len(self.current.trials):]]
        left += [{**p, SEED_KEY: s} for p in self.pending_references for s in self.seeds]
        return left

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def mean_metrics(results: Sequence[Mapping[str, Any]], metric: str | list[str]) -> dict:
    """The mean of each objective over a configuration's seeds (NaN values skipped)."""
    keys = metric if isinstance(metric, list) else [metric]
    out = {}
    for key in keys:
        values = [float(r[key]) for r in results if key in r and math.isfinite(float(r[key]))]
        out[key] = sum(values) / len(values) if values else math.nan
    return out


class ReferenceASHA(ASHAScheduler):
    """ASHA that lets reference trials (the baseline every arm is compared with) finish."""

    def __init__(self, reference_points: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reference_points = [dict(p) for p in reference_points]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if (action == TrialScheduler.STOP and is_reference(trial.config, self.reference_points)
                and result.get(self._time_attr, 0) < self._max_t):
            self._num_stopped -= 1
            return TrialScheduler.CONTINUE
        return action


# ---------------------------------------------------------------- searchers
def split_references(points: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
                     ) -> tuple[list[dict], list[dict]]:
    """(points inside the searched domain, points outside it, e.g. λ = 0 below a log range)."""
    domains = {k: v for k, v in params.items() if isinstance(v, Domain)}
    inside, outside = [], []
    for point in points:
        fits = set(point) == set(domains) and all(domains[k].is_valid(v) for k, v in point.items())
        (inside if fits else outside).append(dict(point))
    return inside, outside


def _optuna(plan: SearchPlan, **kwargs: Any) -> SearchSetup:
    if not any(isinstance(v, Domain) for v in plan.params.values()):
        raise ValueError(
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
    return SearchSetup(searcher, dict(plan.params), plan.num_configs * len(plan.seeds))


@SEARCHERS.register("optuna")
def optuna_tpe(plan: SearchPlan) -> SearchSetup:
    """Optuna TPE (single objective); the study lives in memory and in Tune's checkpoints, or
    in ``--optuna-storage`` when given (``optuna-dashboard <storage>`` shows it)."""
    if plan.optuna_storage is None:
        return _optuna(plan)
    import optuna

    storage = optuna.storages.RDBStorage(url=plan.optuna_storage)
    return _optuna(plan, storage=storage, study_name=plan.sweep_name)


@SEARCHERS.register("optuna_pareto")
def optuna_pareto(plan: SearchPlan) -> SearchSetup:
    """Multi-objective Optuna stored in an RDB (``optuna-dashboard <storage>`` shows it)."""
    import optuna

    if plan.optuna_storage is None:
        raise ValueError(f"space {plan.space.name!r} needs an Optuna storage URL")
    storage = optuna.storages.RDBStorage(url=plan.optuna_storage)
    return _optuna(plan, storage=storage, study_name=plan.sweep_name)


@SEARCHERS.register("grid")
def grid(plan: SearchPlan) -> SearchSetup:
    """Tune's grid/variant generator; seeds are one more grid axis, references run first."""
    params = dict(plan.params)
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
    space = plan.space
    return ReferenceASHA(
        plan.reference_points, time_attr=tr.KEY_EPOCH, metric=plan.objective.primary_metric,
        mode=plan.objective.primary_mode, max_t=plan.epochs,
        grace_period=min(space.grace_period, plan.epochs), reduction_factor=space.reduction_factor,
    )


@SCHEDULERS.register("fifo")
def fifo(plan: SearchPlan) -> TrialScheduler:
    """No early stopping: every trial runs all its epochs."""
    return FIFOScheduler()
