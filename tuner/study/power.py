"""Whether a study's seeds resolve its claims, and how many seeds the observed spread asks for.

Two claims, each on the paired seeds of the baseline (λ = 0) and the paper's point (λ = 4 at
layer 5), docs/method.md §7 ("Seeds and power"):

- *interpretability gained*: ATT-COS with AU above without. Resolved when a one-sided paired
  t-test gives p < α. Seeds needed: the smallest n whose paired t-test reaches power 1 − β
  against the observed mean difference at the observed spread (noncentral t).
- *accuracy kept*: test CL with AU no worse than without by more than ``CL_MARGIN`` points.
  Resolved when the one-sided (1 − α) lower confidence bound of the paired difference lies above
  −margin. Seeds needed: the smallest n whose paired t-test against −margin has power 1 − β.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
CL_MARGIN = 1.0
"""CL points of loss that still count as accuracy kept."""
MAX_SEEDS = 1000


@dataclass(frozen=True)
class Claim:
    name: str
    metric: str
    seeds: int
    mean_difference: float
    sd: float
    resolved: bool
    seeds_needed: int | None
    """None: no number of seeds resolves it at the observed mean (the claim looks wrong)."""

    def line(self) -> str:
        if self.seeds < 2:
            return f"- {self.name} ({self.metric}): {self.seeds} paired seed(s): cannot say"
        verdict = "resolved" if self.resolved else "NOT resolved"
        need = ("no seed count would (the observed difference goes the other way)"
                if self.seeds_needed is None else f"{self.seeds_needed} seeds would resolve "
                f"it at {POWER:.0%} power")
        return (f"- {self.name} ({self.metric}, w/ AU − w/o AU = {self.mean_difference:+.3f} "
                f"± sd {self.sd:.3f} over {self.seeds} seeds): {verdict} with {self.seeds} "
                f"seeds; {need}")


def seeds_for(shift: float, sd: float) -> int | None:
    """Smallest n at which a one-sided paired t-test at ``ALPHA`` has ``POWER`` to detect a
    mean difference ``shift`` (> 0) given the differences' ``sd``."""
    if shift <= 0:
        return None
    if sd <= 0:
        return 2
    effect = shift / sd
    for n in range(2, MAX_SEEDS + 1):
        critical = stats.t.ppf(1 - ALPHA, n - 1)
        if stats.nct.sf(critical, n - 1, effect * math.sqrt(n)) >= POWER:
            return n
    return None


def paired(before: Mapping[int, float], after: Mapping[int, float]) -> np.ndarray:
    seeds = sorted(s for s in before.keys() & after.keys()
                   if math.isfinite(before[s]) and math.isfinite(after[s]))
    return np.array([after[s] - before[s] for s in seeds], dtype=float)


def paired_claim(name: str, metric: str, before: Mapping[int, float],
                 after: Mapping[int, float],
                 judge: Callable[[np.ndarray, float, float], tuple[bool, int | None]]) -> Claim:
    """A claim on the paired differences ``after − before``: ``judge(d, mean, sd)`` says
    whether they resolve it and how many seeds would, once there are two pairs."""
    d = paired(before, after)
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return Claim(name, metric, n, mean, sd, False, None)
    resolved, needed = judge(d, mean, sd)
    return Claim(name, metric, n, mean, sd, bool(resolved), needed)


def gained(name: str, metric: str, before: Mapping[int, float],
           after: Mapping[int, float]) -> Claim:
    def judge(d: np.ndarray, mean: float, sd: float) -> tuple[bool, int | None]:
        resolved = mean > 0 and (sd == 0 or stats.ttest_1samp(d, 0.0, alternative="greater")
                                 .pvalue < ALPHA)
        return resolved, seeds_for(mean, sd)

    return paired_claim(name, metric, before, after, judge)


def kept(name: str, metric: str, before: Mapping[int, float], after: Mapping[int, float],
         margin: float = CL_MARGIN) -> Claim:
    def judge(d: np.ndarray, mean: float, sd: float) -> tuple[bool, int | None]:
        low = mean - stats.t.ppf(1 - ALPHA, d.size - 1) * sd / math.sqrt(d.size)
        return low > -margin, seeds_for(mean + margin, sd)

    return paired_claim(name, metric, before, after, judge)
