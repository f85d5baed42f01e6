"""What a sweep optimises (one metric and its direction, or several) and Pareto dominance.

Shared by the spaces that declare an objective, the tuner that follows it and the analysis that
draws its front; it imports nothing but the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good everywhere and better somewhere (all maximised)."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True))
