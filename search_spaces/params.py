"""A space's param values, declared without Ray: grids, sampled ranges, derived fields.

A space's ``params`` maps flat config fields to constants or to the small frozen types here:
:class:`Grid` (every value runs, ``tune.grid_search``), :class:`Choice` and :class:`LogUniform`
(sampled by the searcher, ``tune.choice`` / ``tune.loguniform``) and :class:`Derived` (computed
from the other fields, ``tune.sample_from``, e.g. the network of a method). They are plain data
so that listing the spaces, checking a command line against them and pricing a sweep import no
Ray (seconds here); :func:`to_tune` turns them into Tune's objects when the Tuner is built.

The driver needs every concrete value before anything starts (``tuner.spec.resolve`` checks each
one) and while the sweep runs (the launch gate computes derived fields itself); both read them
from here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Grid:
    """Every value is run (a grid axis)."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise ValueError("a grid needs at least one value")


@dataclass(frozen=True)
class Choice:
    """One of ``categories``, chosen by the searcher."""

    categories: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        if not self.categories:
            raise ValueError("a choice needs at least one category")

    def is_valid(self, value: Any) -> bool:
        return value in self.categories

    def ends(self) -> list[Any]:
        return list(self.categories)


@dataclass(frozen=True)
class LogUniform:
    """A float sampled log-uniformly in ``[lower, upper]``."""

    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not 0 < self.lower < self.upper or not math.isfinite(self.upper):
            raise ValueError(f"a log-uniform range needs 0 < lower < upper, "
                             f"not [{self.lower}, {self.upper}]")

    def is_valid(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.lower <= value <= self.upper

    def ends(self) -> list[Any]:
        return [self.lower, self.upper]


Sampled = (Choice, LogUniform)
"""The kinds of value a searcher samples (the others are run as given)."""


@dataclass(frozen=True)
class Derived:
    """A field computed from the trial's other fields: ``func(config) -> value``; ``func``
    must pickle (a module-level function or a ``functools.partial`` of one)."""

    func: Callable[[Mapping[str, Any]], Any]


def grid(values: Any) -> Grid:
    return Grid(tuple(values))


def choice(categories: Any) -> Choice:
    return Choice(tuple(categories))


def loguniform(lower: float, upper: float) -> LogUniform:
    return LogUniform(float(lower), float(upper))


def derived(func: Callable[[Mapping[str, Any]], Any]) -> Derived:
    return Derived(func)


def foreign(value: Any) -> bool:
    """A value written with Ray Tune's own helpers (refused: the space would import Ray)."""
    return (isinstance(value, dict) and "grid_search" in value) or (
        type(value).__module__.split(".")[0] == "ray")


def to_tune(params: Mapping[str, Any]) -> dict[str, Any]:
    """The param space as Ray Tune takes it (imports Tune: called when the Tuner is built)."""
    from ray import tune

    def convert(value: Any) -> Any:
        if isinstance(value, Grid):
            return tune.grid_search(list(value.values))
        if isinstance(value, Choice):
            return tune.choice(list(value.categories))
        if isinstance(value, LogUniform):
            return tune.loguniform(value.lower, value.upper)
        if isinstance(value, Derived):
            return tune.sample_from(value.func)
        return value

    return {key: convert(value) for key, value in params.items()}


def sampled_fields(params: Mapping[str, Any]) -> dict[str, Choice | LogUniform]:
    """The params a searcher samples (Optuna's search space)."""
    return {k: v for k, v in params.items() if isinstance(v, Sampled)}


def derived_fields(params: Mapping[str, Any]) -> dict[str, Derived]:
    """The params computed from the others, e.g. a method's backbone."""
    return {k: v for k, v in params.items() if isinstance(v, Derived)}


def with_derived(values: Mapping[str, Any], derived: Mapping[str, Derived]) -> dict[str, Any]:
    """``values`` with every derived field computed from them, as Tune computes it for a trial.

    Tune hands a search algorithm configs whose derived fields are still placeholders (it
    resolves them only when it adds the trial); the launch gate needs the real values first.
    """
    given = {k: v for k, v in values.items() if k not in derived}
    return {**given, **{k: fn.func(given) for k, fn in derived.items()}}


def fixed_values(params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every grid combination, with each categorical choice and each numeric bound.

    Sampled ranges are given at their ends, so a bad range fails before trial 17 does;
    derived fields are computed from each combination, as Tune will.
    """
    options: dict[str, list[Any]] = {}
    derived = derived_fields(params)
    for key, value in params.items():
        if key in derived:
            continue
        if isinstance(value, Grid):
            options[key] = list(value.values)
        elif isinstance(value, Sampled):
            options[key] = value.ends()
        else:
            options[key] = [value]
    keys = list(options)
    for combo in itertools.product(*(options[k] for k in keys)):
        yield with_derived(dict(zip(keys, combo, strict=True)), derived)


def grid_size(params: Mapping[str, Any]) -> int:
    """How many trials a grid over ``params`` runs (every grid combination)."""
    size = 1
    for value in params.values():
        if isinstance(value, Grid):
            size *= len(value.values)
    return size
