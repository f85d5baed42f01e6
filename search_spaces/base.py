"""What a named sweep space declares, and the registry that holds them.

A space is data: which flat config fields it searches (a Ray Tune param space over
``ExperimentConfig.to_flat()`` names), which fields it pins, which metric the searcher and the
scheduler follow, and which searcher/scheduler the tuner should build (by registry name, see
``tuner.searchers``). Nothing here imports Ray's runtime or training code; a space's param
values expand in ``search_spaces.params``. The names a space gives (searcher, scheduler, summary,
metric, config fields) are checked against their registries when a sweep is resolved
(``tuner.plan.check_space``), before anything starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fer_core.registry import Registry
from search_spaces.params import grid_size

ArmFn = Callable[[Mapping[str, Any]], str]


def arm_by(*keys: str) -> ArmFn:
    """An arm label made of config values, e.g. ``arm_by("method", "lambda_au")``."""

    def label(config: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={config.get(k)}" for k in keys)

    return label


def arm_au(config: Mapping[str, Any]) -> str:
    """Two arms: the λ = 0 baseline and every AU-guided trial."""
    return "baseline (λ=0)" if float(config.get("lambda_au", 0.0)) == 0.0 else "AU-guided (λ>0)"


MODES = ("min", "max")


@dataclass(frozen=True)
class Objective:
    """What a sweep optimises: one metric and its direction, or several (multi-objective).

    Lists (from JSON or Tune) become tuples, so the object stays frozen and comparable.
    """

    metric: str | tuple[str, ...]
    mode: str | tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("metric", "mode"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        multi = isinstance(self.metric, tuple)
        if multi != isinstance(self.mode, tuple) or (multi and len(self.metric) != len(self.mode)):
            raise ValueError(f"objective {self.metric!r} / {self.mode!r}: give one mode per metric")
        if multi and not self.metric:
            raise ValueError("objective: name at least one metric")
        for mode in self.modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")

    @property
    def multi(self) -> bool:
        return isinstance(self.metric, tuple)

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.metric if isinstance(self.metric, tuple) else (self.metric,)

    @property
    def modes(self) -> tuple[str, ...]:
        return self.mode if isinstance(self.mode, tuple) else (self.mode,)

    @property
    def primary_metric(self) -> str:
        """The metric a scheduler or a single-objective summary follows (the first one)."""
        return self.metrics[0]

    @property
    def primary_mode(self) -> str:
        return self.modes[0]

    def for_tune(self) -> tuple[str | list[str], str | list[str]]:
        """``(metric, mode)`` as Tune's searchers take them: lists for several objectives."""
        if self.multi:
            return list(self.metrics), list(self.modes)
        return self.metric, self.mode


@dataclass(frozen=True)
class SweepSpace:
    """One named sweep: searched fields, pinned fields, objective, searcher and scheduler."""

    name: str
    description: str
    params: Mapping[str, Any]
    """Tune param space over flat config fields (``tune.grid_search``, domains or constants)."""
    metric: str | tuple[str, ...]
    mode: str | tuple[str, ...]
    searcher: str
    """Name in ``tuner.searchers.SEARCHERS`` (``optuna``, ``grid``, ``optuna_pareto``)."""
    scheduler: str = "fifo"
    """Name in ``tuner.searchers.SCHEDULERS`` (``asha``, ``fifo``)."""
    num_samples: int = 1
    """Configurations the searcher proposes (reference points included); grids ignore it."""
    reference_points: tuple[Mapping[str, Any], ...] = ()
    """Configurations always run first and to completion (e.g. the λ = 0 baseline)."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Pinned config fields: the sizes that make the default run fit its time budget."""
    profile: str = "laptop"
    """The profile (``search_spaces/profiles/``) whose sizes ``overrides`` holds; ``--profile``
    puts another profile's fields in their place."""
    grace_period: int = 1
    reduction_factor: float = 2.0
    max_concurrent: int = 2
    arm: ArmFn = arm_au
    """Groups trials into arms for the end-of-sweep summary (best trial per arm)."""
    summary: str = "best_per_arm"
    """Name in ``tuner.summary.SUMMARIES``."""
    reproduces: str = ""
    """Which paper table/figure the space mirrors (shown by ``--list``)."""

    def __post_init__(self) -> None:
        try:
            Objective(self.metric, self.mode)
        except ValueError as err:
            raise ValueError(f"space {self.name!r}: {err}") from None
        if self.num_samples < 1 or self.max_concurrent < 1 or self.grace_period < 1:
            raise ValueError(f"space {self.name!r}: num_samples, max_concurrent, grace_period ≥ 1")
        if self.reduction_factor <= 1:
            raise ValueError(f"space {self.name!r}: reduction_factor must be > 1, "
                             f"not {self.reduction_factor}")
        if not callable(self.arm):
            raise ValueError(f"space {self.name!r}: arm must be a function of the trial's config, "
                             f"e.g. arm_by('lambda_au'), not {self.arm!r}")

    @property
    def objective(self) -> Objective:
        return Objective(self.metric, self.mode)

    @property
    def multi_objective(self) -> bool:
        return isinstance(self.metric, tuple)

    @property
    def default_trials(self) -> int:
        """Configurations the space runs by default: a grid's every point plus its reference
        points, else ``num_samples`` (reference points included)."""
        if self.searcher == "grid":
            return grid_size(self.params) + len(self.reference_points)
        return self.num_samples


SPACES: Registry[SweepSpace] = Registry("search space")
"""Filled as the space modules are imported: read it as ``search_spaces.SPACES``, which imports
every module of the package first."""


def register(space: SweepSpace) -> SweepSpace:
    """Add a space to ``SPACES`` under its own name (a space module's ``SPACE = register(...)``)."""
    return SPACES.register(space.name)(space)
