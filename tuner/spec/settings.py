"""The sweep's own settings: one frozen, validated object built once by the driver.

``tuner.spec.resolve.resolve`` builds it from the space and the command line; the driver hands it
down (the launch gate's rules, the trainable's resources, the end-of-sweep summary), saves it in
``sweep.json`` inside ``tuner.spec.context.SweepContext`` (so ``--resume`` continues with exactly
these settings) and logs it as the parent run's ``sweep.*`` params. Field names are those
params' names. Imports nothing that trains or talks to Ray or MLflow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from fer_core.cli import UserError
from search_spaces.base import Objective
from tuner.search.budget import Budget

REGISTRY_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep runs, beyond the trials' own config (``SweepContext.base``)."""

    space: str
    metric: str | tuple[str, ...]
    """The objective (``--metric`` or the space's); a tuple for a multi-objective space."""
    mode: str | tuple[str, ...]
    searcher: str
    """Name in ``tuner.search.searchers.SEARCHERS``."""
    scheduler: str
    """Name in ``tuner.search.searchers.SCHEDULERS`` (``--scheduler`` or the space's)."""
    num_configs: int
    """Configurations the searcher proposes, reference points included (grids: the grid)."""
    seeds: int
    """``--seeds``: runs per configuration."""
    max_concurrent: int
    resources_cpu: float = 1.0
    """``--cpus-per-trial``."""
    resources_gpu: float = 0.0
    """``--gpus-per-trial`` (a fraction shares a GPU)."""
    optuna_storage: str | None = None
    """Optuna RDB storage URL of a multi-objective study (None: the study lives in memory)."""
    dedup: bool = True
    """False with ``--rerun``: configurations already done are launched again."""
    budget_hours: float | None = None
    """``--budget-hours`` (None: no limit)."""
    system_metrics: bool = False
    """``--system-metrics``: each trial's run records CPU, memory (and GPU) use over time."""
    register: str | None = None
    """``--register NAME``: the best trial's model becomes a version of NAME, alias ``best``."""

    def __post_init__(self) -> None:
        # JSON gives lists back: the objective keeps tuples.
        objective = Objective(self.metric, self.mode)
        object.__setattr__(self, "metric", objective.metric)
        object.__setattr__(self, "mode", objective.mode)
        if self.num_configs < 1:
            raise UserError(f"--trials {self.num_configs}: run at least 1 configuration")
        if self.seeds < 1:
            raise UserError(f"--seeds {self.seeds}: run each configuration with at least 1 seed")
        if self.max_concurrent < 1:
            raise UserError(f"--max-concurrent {self.max_concurrent}: allow at least 1 trial")
        if self.resources_cpu <= 0 or self.resources_gpu < 0:
            raise UserError(f"--cpus-per-trial {self.resources_cpu} / --gpus-per-trial "
                             f"{self.resources_gpu}: give CPUs > 0 and GPUs ≥ 0 per trial")
        Budget(self.budget_hours)  # its message names --budget-hours
        if self.register is not None and not REGISTRY_NAME.fullmatch(self.register):
            raise UserError(f"--register {self.register!r}: a Model Registry name is letters, "
                             "digits, '_', '-' and '.' (e.g. au-guided-fer)")

    @property
    def objective(self) -> Objective:
        return Objective(self.metric, self.mode)

    @property
    def budget(self) -> Budget:
        return Budget(self.budget_hours)

    @property
    def resources(self) -> dict[str, float]:
        """Per-trial resources as ``tune.with_resources`` takes them."""
        return {"cpu": self.resources_cpu, "gpu": self.resources_gpu}

    def params(self) -> dict[str, Any]:
        """The parent run's ``sweep.*`` params: every setting that is set (None ones left out);
        several objectives as lists, as Tune's searchers got them."""
        metric, mode = self.objective.for_tune()
        values = {**asdict(self), "metric": metric, "mode": mode}
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepSettings:
        """Settings as saved in ``sweep.json`` (``asdict``); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"sweep settings: unknown keys {', '.join(unknown)}; "
                             f"valid keys: {', '.join(sorted(known))}")
        return cls(**data)
