"""The end-of-sweep summary, read back from MLflow (the record, not the driver's memory).

``SUMMARIES`` holds one function per kind a space can name: ``best_per_arm`` (the best trial of
each arm by the sweep's metric, with the arm's size and its mean test metrics) and
``pareto_front`` (the non-dominated trials of a multi-objective sweep). Both end with the
method's claim against the λ = 0 baseline (``tuner.results.claim``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fer_core import metric_names as mn
from fer_core.objective import Objective, dominates
from fer_core.registry import Registry
from tuner.results.claim import claim
from tuner.results.trials import TrialRow
from tuner.tracking import schema as tr

SHOWN_PARAMS = ("method", "lambda_au", "layers", "seed")
SHOWN_METRICS = (mn.VAL_CL, mn.VAL_ATT_COS, mn.TEST_CL, mn.TEST_ATT_COS, mn.TEST_CAM_COS)


@dataclass(frozen=True)
class Summary:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    """More structured facts for ``summary.json`` (skips, budget)."""

    def with_facts(self, notes: Sequence[str], extra: dict[str, Any]) -> Summary:
        """The same summary with more notes and ``summary.json`` entries."""
        return replace(self, notes=[*self.notes, *notes], extra={**self.extra, **extra})

    def markdown(self) -> str:
        def cell(v: Any, column: str) -> str:
            if not isinstance(v, float):
                return str(v)
            if math.isnan(v):
                return "—"
            # accuracies (…_cl) are percentages: 2 decimals; cosines: 3
            return f"{v:.2f}" if column.endswith("_cl") else f"{v:.3f}"

        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell(v, c) for v, c in zip(row, self.columns, strict=True))
                  + " |" for row in self.rows]
        return "\n".join(lines + [""] + self.notes)

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": self.columns, "rows": self.rows,
                "notes": self.notes, **self.extra}


SUMMARIES: Registry[Callable[[Sequence[TrialRow], Objective], Summary]] = Registry("summary")
"""Each takes the sweep's trials and its objective (``SweepSettings.objective``)."""


def _param(text: str) -> str:
    """Params are stored as text; numbers get 4 significant digits (λ = 2.29, not 2.2898514…)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return f"{value:.4g}"


def _row(trial: TrialRow, lead: list[Any]) -> list[Any]:
    return [*lead, trial.name, *(_param(trial.params.get(k, "")) for k in SHOWN_PARAMS),
            *(trial.metrics.get(k, math.nan) for k in SHOWN_METRICS)]


def _columns(lead: list[str]) -> list[str]:
    return [*lead, "trial", *SHOWN_PARAMS, *SHOWN_METRICS]


def _counts(trials: Sequence[TrialRow]) -> str:
    ran = [t for t in trials if not t.reused_from]
    early = sum(t.early_stopped for t in ran)
    failed = sum(t.status == tr.FAILED for t in ran)
    reused = len(trials) - len(ran)
    return (f"{len(ran)} trials: {sum(t.complete for t in ran)} ran to the end, "
            f"{early} stopped early by ASHA, {failed} failed"
            + (f"; {reused} skipped (already done: their earlier runs are shown)." if reused
               else "."))


@SUMMARIES.register("best_per_arm")
def best_per_arm(trials: Sequence[TrialRow], objective: Objective) -> Summary:
    """Per arm: the complete trial best by the (first) objective and the arm's mean test metrics."""
    key = objective.primary_metric
    sign = 1.0 if objective.primary_mode == "max" else -1.0
    arms: dict[str, list[TrialRow]] = {}
    for t in trials:
        arms.setdefault(t.arm, []).append(t)
    rows = []
    for arm, members in sorted(arms.items()):
        done = [t for t in members if t.complete]
        if not done:
            rows.append([arm, f"0/{len(members)}", *([""] * (len(SHOWN_PARAMS) + 1)),
                         *([math.nan] * len(SHOWN_METRICS)), math.nan])
            continue
        best = max(done, key=lambda t: sign * t.metrics.get(key, -sign * math.inf))
        mean_att = sum(t.metrics.get(mn.TEST_ATT_COS, math.nan) for t in done) / len(done)
        rows.append(_row(best, [arm, f"{len(done)}/{len(members)}"]) + [mean_att])
    lines, facts = claim(trials, objective)  # both halves of the method's claim, with noise
    return Summary(
        title=f"best trial per arm (by {key}, {'max' if sign > 0 else 'min'})",
        columns=_columns(["arm", "complete"]) + ["arm mean test_att_cos"], rows=rows,
        notes=[_counts(trials), "Accuracies (cl) in percent; cosines in [0, 1].", *lines],
        extra=facts,
    )


@SUMMARIES.register("pareto_front")
def pareto_front(trials: Sequence[TrialRow], objective: Objective) -> Summary:
    """The complete trials no other complete trial beats on every objective."""
    keys, modes = objective.metrics, objective.modes
    signs = [1.0 if m == "max" else -1.0 for m in modes]
    done = [t for t in trials if t.complete and all(tr.finite(t.metrics.get(k)) for k in keys)]
    points = {t.name: [s * t.metrics[k] for k, s in zip(keys, signs, strict=True)] for t in done}
    front = [t for t in done
             if not any(dominates(points[o.name], points[t.name]) for o in done if o is not t)]
    front.sort(key=lambda t: -points[t.name][0])
    lines, facts = claim(trials, objective)
    return Summary(
        title=f"Pareto front over {', '.join(keys)} ({', '.join(modes)})",
        columns=_columns(["arm"]), rows=[_row(t, [t.arm]) for t in front],
        notes=[_counts(trials), "Accuracies (cl) in percent; cosines in [0, 1].", *lines],
        extra=facts,
    )
