"""What a named sweep space declares, and the registry that holds them.

A space is data: which flat config fields it searches (a Ray Tune param space over
``ExperimentConfig.to_flat()`` names), which fields it pins, which metric the searcher and the
scheduler follow, and which searcher/scheduler the tuner should build (by registry name, see
``tuner.searchers``). Nothing here imports Ray's runtime or training code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fer_core.registry import Registry

ArmFn = Callable[[Mapping[str, Any]], str]


def arm_by(*keys: str) -> ArmFn:
    """An arm label made of config values, e.g. ``arm_by("method", "lambda_au")``."""

    def label(config: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={config.get(k)}" for k in keys)

    return label


def arm_au(config: Mapping[str, Any]) -> str:
    """Two arms: the λ = 0 baseline and every AU-guided trial."""
    return "baseline (λ=0)" if float(config.get("lambda_au", 0.0)) == 0.0 else "AU-guided (λ>0)"


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
        multi = isinstance(self.metric, tuple)
        if multi != isinstance(self.mode, tuple) or (multi and len(self.metric) != len(self.mode)):
            raise ValueError(f"space {self.name!r}: give one mode per metric")
        for mode in self.mode if multi else (self.mode,):
            if mode not in ("min", "max"):
                raise ValueError(f"space {self.name!r}: mode must be 'min' or 'max', not {mode!r}")
        if self.num_samples < 1 or self.max_concurrent < 1 or self.grace_period < 1:
            raise ValueError(f"space {self.name!r}: num_samples, max_concurrent, grace_period ≥ 1")

    @property
    def multi_objective(self) -> bool:
        return isinstance(self.metric, tuple)

    @property
    def primary_metric(self) -> str:
        """The metric a scheduler or a single-objective summary follows."""
        return self.metric[0] if isinstance(self.metric, tuple) else self.metric

    @property
    def primary_mode(self) -> str:
        return self.mode[0] if isinstance(self.mode, tuple) else self.mode


SPACES: Registry[SweepSpace] = Registry("search space")


def register(space: SweepSpace) -> SweepSpace:
    """Add a space to ``SPACES`` under its own name."""
    return SPACES.register(space.name)(space)
