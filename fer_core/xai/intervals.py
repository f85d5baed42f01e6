"""Intervals of a metric's mean over images, and whether two of them tell arms apart.

numpy only: the evaluation (:mod:`fer_core.xai.evaluate`) and the reliability checks
(:mod:`fer_core.xai.reliability`) both read them.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP = 2000
"""Resamples of the bootstrap (the interval's ends move by < 0.01 of its width beyond this)."""


def bootstrap_interval(values, resamples: int = BOOTSTRAP, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN dropped); (nan, nan) if
    none is left."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(resamples, v.size))].mean(axis=1)
    tail = (1.0 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def separates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals ``(low, high)`` are disjoint (NaN never separates)."""
    if any(np.isnan(v) for v in (*a, *b)):
        return False
    return a[1] < b[0] or b[1] < a[0]
