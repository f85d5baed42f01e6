"""The method's claim in a sweep's closing summary: AU guidance keeps accuracy (test CL) and gains
interpretability (test ATT-COS) against the λ = 0 baseline, each with its difference and whether
the sweep's seeds can tell that difference from seed-to-seed noise.

Compared with the baseline: the paper's setting (λ = 4 at layer 5) when it completed, and the
best AU-guided trial by the sweep's objective when that is another setting. A setting's value is
its mean over seeds (trials of one λ and layer set; a seed run twice counts once, averaged).

Noise: with two or more seeds in both arms, a difference is *within seed noise* when it is no
larger than twice its standard error (about a 95 % band): from the per-seed differences when the
seeds match, else from each arm's seed-to-seed standard deviation. With one seed in an arm there
is no spread to compare with, and the summary says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fer_core import metric_names as mn
from fer_core.objective import Objective
from search_spaces.sizes import PAPER_POINT
from tuner.results.trials import TrialRow

PAPER = (float(PAPER_POINT["lambda_au"]), str(PAPER_POINT["layers"]))
NOISE_SE = 2.0
"""A difference within this many standard errors is called within seed noise."""


@dataclass(frozen=True)
class Gap:
    """One metric of a setting against the baseline."""

    metric: str
    setting: float
    baseline: float
    difference: float
    band: float | None
    """``NOISE_SE`` standard errors of the difference; ``None`` with one seed in an arm."""

    @property
    def within_noise(self) -> bool | None:
        return None if self.band is None else abs(self.difference) <= self.band


def _setting(trial: TrialRow) -> tuple[float, str]:
    return float(trial.params.get("lambda_au", 0.0)), trial.params.get("layers", "")


def _by_seed(trials: Sequence[TrialRow], metric: str) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for t in trials:
        value = t.metrics.get(metric, math.nan)
        if math.isfinite(value):
            values.setdefault(t.params.get("seed", "?"), []).append(value)
    return {seed: statistics.fmean(v) for seed, v in values.items()}


def gap(setting: Sequence[TrialRow], baseline: Sequence[TrialRow], metric: str) -> Gap | None:
    """``metric`` of ``setting`` minus the baseline's, with its noise band; None if absent."""
    a, b = _by_seed(setting, metric), _by_seed(baseline, metric)
    if not a or not b:
        return None
    mean_a, mean_b = statistics.fmean(a.values()), statistics.fmean(b.values())
    band = None
    if set(a) == set(b) and len(a) >= 2:  # matching seeds: the spread of the paired differences
        diffs = [a[s] - b[s] for s in a]
        band = NOISE_SE * statistics.stdev(diffs) / math.sqrt(len(diffs))
    elif len(a) >= 2 and len(b) >= 2:
        band = NOISE_SE * math.sqrt(statistics.variance(a.values()) / len(a)
                                    + statistics.variance(b.values()) / len(b))
    return Gap(metric, mean_a, mean_b, mean_a - mean_b, band)


def _label(setting: tuple[float, str]) -> str:
    lam, layers = setting
    return f"λ = {lam:g} at layer{'s' if '+' in layers else ''} {layers}"


def _noise(g: Gap, unit: str, decimals: int) -> str:
    if g.band is None:
        return ""
    where = "within" if g.within_noise else "beyond"
    return f", {where} seed noise (±{g.band:.{decimals}f}{unit})"


FAITHFULNESS = tuple((name, mn.XAI_PREFIX + name) for name in ("deletion", "insertion"))
"""Whether the maps explain the decision (fer_core.xai; lower deletion, higher insertion is
better), shown next to ATT-COS when the trials logged them (``xai_images`` > 0)."""


def _resolution(trials: Sequence[TrialRow], metric: str) -> float:
    """The arm's image-bootstrap half-width of its mean (``<metric>_ci95`` over √trials; NaN if
    not logged): docs/method.md §7.1."""
    widths = [w for t in trials if math.isfinite(w := t.metrics.get(metric + "_ci95", math.nan))]
    return sum(widths) / len(widths) / math.sqrt(len(widths)) if widths else math.nan


def _faithfulness(trials: Sequence[TrialRow], baseline: Sequence[TrialRow]) -> str:
    parts, unresolved = [], []
    for label, metric in FAITHFULNESS:
        if (g := gap(trials, baseline, metric)) is None:
            continue
        # Quote only a metric that can separate the arms at the evaluated image count.
        if abs(g.difference) <= math.hypot(_resolution(trials, metric),
                                           _resolution(baseline, metric)):
            unresolved.append(label)
            continue
        parts.append(f"{label} {g.setting:.3f} vs {g.baseline:.3f} = {g.difference:+.3f}"
                     f"{_noise(g, '', 3)}")
    text = f"; faithfulness (CAM) {', '.join(parts)}" if parts else ""
    if unresolved:
        text += f"; {' and '.join(unresolved)} cannot separate the arms at this image count"
    return text


def _line(name: str, trials: Sequence[TrialRow], baseline: Sequence[TrialRow]) -> str | None:
    cl, att = gap(trials, baseline, mn.TEST_CL), gap(trials, baseline, mn.TEST_ATT_COS)
    if cl is None or att is None:
        return None
    seeds = len(_by_seed(trials, mn.TEST_CL))
    return (f"- {name} ({seeds} seed{'s' * (seeds != 1)}): accuracy test CL {cl.setting:.2f} % "
            f"vs {cl.baseline:.2f} % = {cl.difference:+.2f} points{_noise(cl, ' points', 2)}; "
            f"interpretability test ATT-COS {att.setting:.3f} vs {att.baseline:.3f} = "
            f"{att.difference:+.3f}{_noise(att, '', 3)}{_faithfulness(trials, baseline)}")


def claim(trials: Sequence[TrialRow], objective: Objective) -> tuple[list[str], dict[str, Any]]:
    """Summary lines and ``summary.json`` facts of the claim (nothing without both arms)."""
    done = [t for t in trials if t.complete]
    baseline = [t for t in done if _setting(t)[0] == 0.0]
    guided: dict[tuple[float, str], list[TrialRow]] = {}
    for t in done:
        if _setting(t)[0] > 0.0:
            guided.setdefault(_setting(t), []).append(t)
    if not baseline or not guided:
        missing = "λ = 0 baseline" if not baseline else "AU-guided (λ > 0)"
        return [f"Claim (accuracy kept, interpretability gained): not measured, no complete "
                f"{missing} trial."], {}
    key, sign = objective.primary_metric, 1.0 if objective.primary_mode == "max" else -1.0
    ranked = [t for t in done if _setting(t)[0] > 0.0 and math.isfinite(
        t.metrics.get(key, math.nan))]
    compared = {}
    if PAPER in guided:
        compared[PAPER] = f"paper's setting, {_label(PAPER)}"
    if ranked:
        best = _setting(max(ranked, key=lambda t: sign * t.metrics[key]))
        compared.setdefault(best, f"best AU-guided trial by {key}, {_label(best)}")
    lines, facts = [], {}
    for setting, name in compared.items():
        line = _line(name, guided[setting], baseline)
        if line is not None:
            lines.append(line)
            metrics = (mn.TEST_CL, mn.TEST_ATT_COS, *(m for _, m in FAITHFULNESS))
            facts[name] = {m: asdict(g) for m in metrics
                           if (g := gap(guided[setting], baseline, m)) is not None}
    if not lines:
        return [], {}
    seeds = min(len(_by_seed(baseline, mn.TEST_CL)),
                *(len(_by_seed(guided[s], mn.TEST_CL)) for s in compared))
    head = "Claim, against the λ = 0 baseline (test split; CL in %, ATT-COS in [0, 1]):"
    tail = (["With one seed in an arm, these differences cannot be told apart from "
             "seed-to-seed noise (--seeds 3 measures the spread)."] if seeds < 2 else
            [f"Seed noise: ± {NOISE_SE:g} standard errors of the difference over the seeds."])
    return [head, *lines, *tail], {"claim": facts}
