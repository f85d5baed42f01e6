"""What a space's param values expand to: grid combinations, checked bounds, derived fields.

A space's ``params`` mixes four kinds of value: constants, ``tune.grid_search`` lists, sampled
domains (``tune.loguniform``, ``tune.choice``) and derived fields (``tune.sample_from``, computed
from the others, e.g. the network of a method). The driver needs every concrete value before
anything starts (``tuner.spec.resolve`` checks each one) and while the sweep runs (the launch gate
computes derived fields itself); both read them from here. Imports Tune's domain types only,
where values are expanded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Tune's types are read only when a space's values are expanded
    from ray.tune.search.sample import Function


def derived_fields(params: Mapping[str, Any]) -> dict[str, Function]:
    """The params computed from the others (``tune.sample_from``), e.g. a method's backbone."""
    from ray.tune.search.sample import Function

    return {k: v for k, v in params.items() if isinstance(v, Function)}


def with_derived(values: Mapping[str, Any], derived: Mapping[str, Function]) -> dict[str, Any]:
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
    from ray.tune.search.sample import Categorical, Domain

    options: dict[str, list[Any]] = {}
    derived = derived_fields(params)
    for key, value in params.items():
        if key in derived:
            continue
        if isinstance(value, dict) and "grid_search" in value:
            options[key] = list(value["grid_search"])
        elif isinstance(value, Categorical):
            options[key] = list(value.categories)
        elif isinstance(value, Domain):
            options[key] = [value.lower, value.upper]
        else:
            options[key] = [value]
    keys = list(options)
    for combo in itertools.product(*(options[k] for k in keys)):
        yield with_derived(dict(zip(keys, combo, strict=True)), derived)


def grid_size(params: Mapping[str, Any]) -> int:
    """How many trials a grid over ``params`` runs (every ``grid_search`` combination)."""
    size = 1
    for value in params.values():
        if isinstance(value, dict) and "grid_search" in value:
            size *= len(value["grid_search"])
    return size
