"""What ASHA is expected to leave of a searched trial, for the cost prediction.

Ray's asynchronous successive halving places rungs at ``grace · η^k`` epochs below the last
epoch. A trial reaching a rung is compared with the values already recorded there: it stops when
its value is below their ``1 − 1/η`` percentile (linear interpolation), and its value is recorded
either way; the first trial at a rung always goes on. Reference trials (``ReferenceASHA``) are
recorded but never stopped.

The expected cost depends on the order trials arrive in and on how many there are: with few
trials, most continue (there is little to be compared with), which the closed-form share
``1/η`` per rung misses by a wide margin (it is kept as the lower bound). So the expectation is
simulated: trials arrive in launch order (references first, as the sweep launches them), each
with a score drawn at random and kept across rungs (exchangeable trials: nothing is known
beforehand about which settings are better).
"""

from __future__ import annotations

import bisect

import numpy as np

SIMULATIONS = 4000
TRIAL_BUDGET = 40_000
"""Simulated trials at most: a large sweep gets fewer repeats (its mean varies less)."""


def rungs(epochs: int, grace: int, reduction: float) -> list[float]:
    """The milestones (epochs) where ASHA may stop a trial, lowest first."""
    milestones = [float(grace)]
    while milestones[-1] * reduction < epochs:
        milestones.append(milestones[-1] * reduction)
    return [m for m in milestones if m < epochs]


def asha_epochs(epochs: int, grace: int, reduction: float) -> float:
    """Expected epochs of a trial ASHA may stop, if a share 1/η survives each rung (rungs at
    grace·η^k epochs below the last, as Ray's ASHA places them): a lower bound of its cost."""
    milestones = [*rungs(epochs, grace, reduction), float(epochs)]
    expected = float(milestones[0])
    for k in range(1, len(milestones)):
        expected += (milestones[k] - milestones[k - 1]) / reduction ** k
    return min(expected, float(epochs))


def _percentile(ordered: list[float], q: float) -> float:
    """``np.percentile(ordered, q)`` (linear interpolation) of an already sorted list."""
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def stop_draws(epochs: int, grace: int, reduction: float, searched: int,
               references: int = 0, simulations: int | None = None,
               seed: int = 0) -> np.ndarray:
    """One row per simulated sweep (a draw of which trials ASHA stops, see the module
    docstring): the mean epochs a searched trial trained, and the share of searched trials that
    trained every epoch (only those test and save at the end). Their spread is the spread of
    the sweep's cost that comes from early stopping."""
    if searched <= 0:
        return np.array([[float(epochs), 1.0]])
    milestones = rungs(epochs, grace, reduction)
    n = references + searched
    simulations = simulations or max(20, min(SIMULATIONS, TRIAL_BUDGET // n))
    rng = np.random.default_rng(seed)
    quantile = (1 - 1 / reduction) * 100
    draws = np.empty((simulations, 2))
    for d in range(simulations):
        scores = rng.random(n).tolist()
        recorded: list[list[float]] = [[] for _ in milestones]  # kept sorted
        total = finished = 0.0
        for i, score in enumerate(scores):
            trained = float(epochs)
            for k, milestone in enumerate(milestones):
                seen = recorded[k]
                stop = bool(seen) and score < _percentile(seen, quantile)
                bisect.insort(seen, score)
                if stop and i >= references:
                    trained = milestone
                    break
            if i >= references:
                total += trained
                finished += trained == epochs
        draws[d] = total / searched, finished / searched
    return draws


def epochs_draws(epochs: int, grace: int, reduction: float, searched: int,
                 references: int = 0, simulations: int | None = None,
                 seed: int = 0) -> np.ndarray:
    """Mean epochs of a searched trial in each simulated sweep (``stop_draws``' first column);
    their mean is ``expected_epochs``."""
    return stop_draws(epochs, grace, reduction, searched, references, simulations, seed)[:, 0]


def asha_finished(epochs: int, grace: int, reduction: float) -> float:
    """The share of searched trials that train every epoch if a share 1/η survives each rung
    (``asha_epochs``' counterpart)."""
    return 1.0 / reduction ** len(rungs(epochs, grace, reduction))


def expected_epochs(epochs: int, grace: int, reduction: float, searched: int,
                    references: int = 0, simulations: int | None = None, seed: int = 0) -> float:
    """Mean epochs a searched trial trains under ASHA, over ``searched`` trials that arrive
    after ``references`` reference trials (see the module docstring)."""
    return float(epochs_draws(epochs, grace, reduction, searched, references, simulations,
                              seed).mean())


def epochs_interval(epochs: int, grace: int, reduction: float, searched: int,
                    references: int = 0, coverage: float = 0.9) -> tuple[float, float]:
    """The central ``coverage`` interval of a searched trial's mean epochs over the draws."""
    draws = epochs_draws(epochs, grace, reduction, searched, references)
    tail = (1 - coverage) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)
