"""What a named sweep space declares, and the registry that holds them.

A space is data: which flat config fields it searches (a param space over
``ExperimentConfig.to_flat()`` names), which fields it pins, which metric the searcher and the
scheduler follow, and which searcher/scheduler the tuner should build (by registry name, see
``tuner.search.searchers``). Nothing here imports Ray or training code: a space's param values are
``search_spaces.params``' own types, turned into Tune's when a sweep starts. The names a space gives
(searcher, scheduler, summary, metric, config fields) are checked against their registries when a
sweep is resolved (``tuner.spec.resolve.check_space``), before anything starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fer_core.cli import UserError
from fer_core.objective import Objective
from fer_core.registry import Registry
from search_spaces.params import foreign, grid_size

DEFAULT_SPACE = "lambda_layers"
"""The space ``python -m tuner.sweep`` runs when no ``--space`` is named."""

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
    """Flat config field → a constant or a ``search_spaces.params`` value (``grid``,
    ``choice``, ``loguniform``, ``derived``)."""
    metric: str | tuple[str, ...]
    mode: str | tuple[str, ...]
    searcher: str
    """Name in ``tuner.search.searchers.SEARCHERS`` (``optuna``, ``grid``, ``optuna_pareto``)."""
    scheduler: str = "fifo"
    """Name in ``tuner.search.searchers.SCHEDULERS`` (``asha``, ``fifo``)."""
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
    """Name in ``tuner.results.summary.SUMMARIES``."""
    reproduces: str = ""
    """Which paper table/figure the space mirrors (shown by ``--list``)."""

    def __post_init__(self) -> None:
        try:
            Objective(self.metric, self.mode)
        except ValueError as err:
            raise UserError(f"space {self.name!r}: {err}") from None
        if self.num_samples < 1 or self.max_concurrent < 1 or self.grace_period < 1:
            raise UserError(f"space {self.name!r}: num_samples, max_concurrent, grace_period ≥ 1")
        if self.reduction_factor <= 1:
            raise UserError(f"space {self.name!r}: reduction_factor must be > 1, "
                             f"not {self.reduction_factor}")
        tune_made = sorted(k for k, v in self.params.items() if foreign(v))
        if tune_made:
            raise UserError(f"space {self.name!r}: params {tune_made} are Ray Tune objects; "
                            "declare them with search_spaces.params (grid, choice, loguniform, "
                            "derived), which the tuner turns into Tune's when the sweep starts")
        if not callable(self.arm):
            raise UserError(f"space {self.name!r}: arm must be a function of the trial's config, "
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


register = SPACES.add
"""Add a space to ``SPACES`` under its own name (a space module's ``SPACE = register(...)``)."""
