"""The printed interval of a sweep's trial-hours: which trials ASHA stops, and the timing's error.

Two things spread a sweep's actual trial-hours around its prediction:

- **early stopping**: which searched trials ASHA stops depends on their scores, so the cost is a
  distribution over draws of which trials stop (``tuner.cost.asha.stop_draws``); a grid
  without ASHA has none of this spread;
- **the timing**: a few steps timed before the sweep on a machine whose speed drifts (this
  project's 2-core test machines run the same code up to ~30 % slower from one run to the
  next), and per-trial costs (worker start, tracking) that no timing sees.

The interval takes the central 90 % of the sweep's trial-hours over the ASHA draws, each
multiplied by an independent log-normal timing factor of median 1 and log standard deviation
``TIMING_LOG_SD``. ``bench/price_check.py`` checks the result: it runs default sweeps with
different seeds and counts how often the printed interval holds what the trials used
(``docs/benchmarks.md`` gives the figures).
"""

from __future__ import annotations

import numpy as np

TIMING_LOG_SD = 0.20
"""Log standard deviation of the timing's error. On a quiet machine ten smoke sweeps came within
−9 … +32 % of their point (bench/price_check.py); the same code ran ~30 % slower from one run
to the next on these shared machines, and e^(1.645 · 0.20) = 1.39 keeps such a drift inside."""
COVERAGE = 0.90
DRAWS = 4000


def interval(hours_draws: np.ndarray | float, coverage: float = COVERAGE,
             log_sd: float = TIMING_LOG_SD, seed: int = 0) -> tuple[float, float]:
    """The central ``coverage`` interval of trial-hours: ``hours_draws`` (one sweep total per
    ASHA draw, or one number without ASHA) times a log-normal timing factor per draw."""
    hours = np.atleast_1d(np.asarray(hours_draws, dtype=float))
    n = max(DRAWS, len(hours))
    factor = np.exp(log_sd * np.random.default_rng(seed).standard_normal(n))
    totals = np.resize(hours, n) * factor
    tail = (1 - coverage) / 2 * 100
    low, high = np.percentile(totals, [tail, 100 - tail])
    return float(low), float(high)
