"""A sweep's time budget: ``--budget-hours`` and the clock of summed trial time it is held to.

The budget counts *trial* time, not the driver's wall clock: the sum over the sweep's trials of
their training wall time so far (setup, epochs, evaluation; replayed epochs after a retry
included), running trials included. Two trials running for an hour side by side spend two
trial-hours. ``tuner.search.gate.SweepGate`` owns one ``TrialClock`` per trial and stops launching
new trials once the sum reaches the budget; trials already running finish normally.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fer_core.cli import UserError

SECONDS_PER_HOUR = 3600.0
SINCE_RESTORE = "time_since_restore"
"""Tune's seconds since the trainable (re)started: 0 again after every retry or resume."""


@dataclass(frozen=True)
class Budget:
    """Trial-hours a sweep may spend; ``hours=None``: no limit."""

    hours: float | None = None

    def __post_init__(self) -> None:
        if self.hours is not None and not (math.isfinite(self.hours) and self.hours > 0):
            raise UserError(f"--budget-hours {self.hours}: give a finite number of trial-hours "
                             "> 0, e.g. 12 or 0.5 (fractions are fine)")

    def reached(self, used_s: float) -> bool:
        return self.hours is not None and used_s >= self.hours * SECONDS_PER_HOUR


def parse_budget_hours(text: str) -> float:
    """``argparse`` type of ``--budget-hours``: a finite float > 0, else a clear CLI error."""
    try:
        hours = float(text)
        Budget(hours)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a finite number of trial-hours > 0, e.g. 12 or 0.5 "
            "(fractions are fine)") from None
    return hours


@dataclass
class TrialClock:
    """Training seconds of one trial, summed over its attempts."""

    seconds: float = 0.0
    """Reported so far (sum of ``time_since_restore`` increments over every attempt)."""
    since_restore: float = 0.0
    live: bool = True
    """Launched and not concluded (pending or running)."""
    running_since: float | None = None
    """Wall clock (``time.time()``) from which its unreported running time counts; None while
    it waits for resources, or once it has concluded."""

    def used(self, now: float) -> float:
        running = self.live and self.running_since is not None
        return self.seconds + (max(0.0, now - self.running_since) if running else 0.0)

    def report(self, result: Mapping[str, Any] | None, now: float) -> None:
        """A result from the trial: count the time it ran since the last one."""
        value = (result or {}).get(SINCE_RESTORE)
        if isinstance(value, int | float) and math.isfinite(value):
            # A smaller value means a new attempt restarted its count from 0.
            step = value - self.since_restore if value >= self.since_restore else value
            self.seconds += step
            self.since_restore = float(value)
        self.running_since = now


@dataclass
class BudgetClock:
    """One ``TrialClock`` per trial the sweep launched (skipped duplicates cost nothing)."""

    trials: dict[str, TrialClock] = field(default_factory=dict)

    def launched(self, trial_id: str) -> None:
        """Handed to Ray: live, but it counts only once it runs (``started``)."""
        self.trials[trial_id] = TrialClock()

    def started(self, trial_id: str, when: float) -> None:
        clock = self.trials.setdefault(trial_id, TrialClock())
        if clock.live and clock.running_since is None:
            clock.running_since = when

    def reported(self, trial_id: str, result: Mapping[str, Any] | None, now: float) -> None:
        clock = self.trials.setdefault(trial_id, TrialClock())
        clock.live = True  # also a concluded trial running again (resumed after an error)
        clock.report(result, now)

    def concluded(self, trial_id: str, result: Mapping[str, Any] | None, now: float) -> None:
        clock = self.trials.setdefault(trial_id, TrialClock())
        clock.report(result, now)
        clock.live, clock.running_since = False, None

    def resumed(self, now: float) -> None:
        """A restored sweep: its live trials restart from their checkpoints now.

        Their time between the last result and the driver's end is not known (not counted);
        from now on they count as running, waiting for resources included (the gate does not
        see restored trials start): the budget errs towards stopping early.
        """
        for clock in self.trials.values():
            if clock.live:
                clock.running_since = now
                clock.since_restore = 0.0

    def used_seconds(self, now: float) -> float:
        return sum(clock.used(now) for clock in self.trials.values())

    def live(self) -> int:
        return sum(clock.live for clock in self.trials.values())
