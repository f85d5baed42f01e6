"""The two wrappers that carry the sweep's research design into Ray Tune's searcher and scheduler.

- ``SweepSearcher`` runs the reference points (e.g. the λ = 0 baseline) first, outside the
  searched domain, repeats every configuration over the same seeds (paired arms), and tells
  Optuna about ASHA-stopped trials as *pruned* instead of as complete with a truncated value.
- ``ReferenceASHA`` is ASHA that never stops a reference trial: every arm is compared with it.

They subclass Tune's classes, so this module imports Ray; ``tuner.search.searchers`` imports it
only when a sweep builds its searcher.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

from search_spaces.params import sampled_fields
from tuner.tracking import schema as tr

SEED_KEY = "seed"


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


def split_references(points: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
                     ) -> tuple[list[dict], list[dict]]:
    """(points inside the searched domain, points outside it, e.g. λ = 0 below a log range)."""
    domains = sampled_fields(params)
    inside, outside = [], []
    for point in points:
        fits = set(point) == set(domains) and all(domains[k].is_valid(v) for k, v in point.items())
        (inside if fits else outside).append(dict(point))
    return inside, outside
