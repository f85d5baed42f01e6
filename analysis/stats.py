"""Statistics over seeds: mean with a Student-t confidence interval, and a paired t-test.

The t quantile and the test come from ``scipy.stats`` (scipy is installed with ``mlflow``, which
requires it). Seeds are the pairing unit: a sweep run with ``--seeds K`` gives every arm the same
K seeds, so w/ AU and w/o AU can be compared seed by seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """Mean over ``n`` values and the half-width of its confidence interval (NaN when n < 2)."""

    mean: float
    half_width: float
    n: int


@dataclass(frozen=True)
class PairedTest:
    """A paired t-test of ``treated`` against ``reference`` on ``n`` matching seeds."""

    p_value: float
    mean_difference: float
    n: int


def _finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray([float(v) for v in values], dtype=float)
    return array[np.isfinite(array)]


def estimate(values: Iterable[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean and Student-t interval of the finite ``values`` (NaN = a run without this metric)."""
    from scipy import stats

    data = _finite(values)
    n = int(data.size)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    mean = float(data.mean())
    if n < 2:
        return Estimate(mean, math.nan, 1)
    sem = float(data.std(ddof=1)) / math.sqrt(n)
    quantile = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    return Estimate(mean, quantile * sem, n)


def paired_test(reference: Mapping[int, float], treated: Mapping[int, float]) -> PairedTest | None:
    """Paired t-test on the seeds present (and finite) in both; ``None`` under two pairs.

    The p-value is two-sided and NaN when every difference is the same (no variance to test).
    """
    from scipy import stats

    seeds = sorted(s for s in reference.keys() & treated.keys()
                   if math.isfinite(reference[s]) and math.isfinite(treated[s]))
    if len(seeds) < 2:
        return None
    before = np.array([reference[s] for s in seeds], dtype=float)
    after = np.array([treated[s] for s in seeds], dtype=float)
    difference = after - before
    if np.allclose(difference, difference[0]):
        p_value = math.nan
    else:
        p_value = float(stats.ttest_rel(after, before).pvalue)
    return PairedTest(p_value, float(difference.mean()), len(seeds))


def significance_mark(p_value: float) -> str:
    """``**`` for p < 0.01, ``*`` for p < 0.05, else ``""``."""
    if not math.isfinite(p_value):
        return ""
    return "**" if p_value < 0.01 else "*" if p_value < 0.05 else ""
