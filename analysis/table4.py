"""Table 4: interpretability beyond CAM-COS, per method, without and with AU guidance.

Every metric of ``fer_core.xai`` (localisation against the AU map, faithfulness, the
parameter-randomisation sanity check), logged by each trial as ``test_xai_<metric>``. The table
is laid out long and narrow so that it fits a page (1400 px, a LaTeX column pair) whatever the
number of metrics: **one row per method and metric** (grouped by method, metrics in their
table order, the better direction as an arrow), and five columns:

- *w/o AU*, *w/ AU*: cells, intervals and paired tests as in Tables 1–2 (the generic build of
  :func:`analysis.tables.build_table`, then transposed here); bold marks the better arm in the
  metric's own direction;
- *Random map*, *Centred Gaussian*, *AU map*: the control maps every trial also scores on the
  same images (``test_xai_<metric>_<control>``, docs/method.md §7.1): chance, centre bias and the
  prior's ceiling. A control cell holds, per seed, the mean over the method's runs of both arms.

A row whose label ends in † cannot separate the arms at the evaluated image count: the
difference between the arms is within the metric's resolution, the two arms' 95 % image-bootstrap
half-widths (``test_xai_<metric>_ci95``, each averaged over seeds and divided by √seeds)
combined as √(h₀² + h₁²). Registered as ``analysis.tables --table 4`` (``TABLES[4]`` plus its
finisher).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from analysis.stats import estimate
from analysis.table_spec import (
    Cell,
    Column,
    Table,
    TableSpec,
    method_labels,
    method_rows,
    register_table,
)
from fer_core.metric_names import XAI_CONTROLS
from fer_core.xai.names import BY_NAME, METRICS, XaiMetric

if TYPE_CHECKING:  # pandas is imported where frames are read, so the CLIs answer at once
    import pandas as pd

PERCENT_METRICS = frozenset({"average_drop", "increase_confidence"})
ROW_SEP = "/"
UNRESOLVED = "†"
UNRESOLVED_NOTE = (f"{UNRESOLVED}: cannot separate the arms at this image count (the difference "
                   "is within the two arms' 95 % image-bootstrap half-widths combined).")
CONTROL_HEADERS = {"random": "Random map", "centre": "Centred Gaussian", "au": "AU map"}
"""Short headers of the control columns (their long names: fer_core.metric_names)."""
RANDOM_LABEL = CONTROL_HEADERS["random"]


def _decimals(metric: XaiMetric) -> int:
    return 1 if metric.name in PERCENT_METRICS else 3


def columns() -> tuple[Column, ...]:
    """Two columns (w/o AU, w/ AU) per metric: what the generic build fills before the
    transposition."""
    out = []
    for metric in METRICS:
        out += [Column(f"{metric.label} w/o AU", metric.key, False, _decimals(metric)),
                Column(f"{metric.label} w/ AU", metric.key, True, _decimals(metric))]
    return tuple(out)


LAYOUT = (Column("w/o AU", "", False, 3), Column("w/ AU", "", True, 3),
          *(Column(CONTROL_HEADERS[c], "", False, 3) for c in XAI_CONTROLS))
"""The printed columns: the two arms, then the controls."""


SPEC = TableSpec(
    4, "Localisation against the AU map, faithfulness and sanity without and with AU guidance, "
       "beside control maps (↑/↓: better direction; bold: the better arm)",
    "method", "Method · metric", method_rows, columns(),
    row_labels=method_labels,
)


def row_key(method: str, metric: str) -> str:
    return f"{method}{ROW_SEP}{metric}"


def control_cells(runs: pd.DataFrame, method: str, metric: XaiMetric) -> dict[str, Cell]:
    """Per control header: per seed, the mean of the control's value over the method's runs."""
    import pandas as pd

    mine = runs[runs["method"].astype(str) == method]
    out = {}
    for control, header in CONTROL_HEADERS.items():
        key = metric.control_key(control)
        values = mine[key] if key in mine else pd.Series(math.nan, index=mine.index)
        by_seed = {int(s): float(v) for s, v in values.groupby(mine["seed"]).mean().items()
                   if not math.isnan(v)}
        out[header] = Cell(by_seed, estimate(by_seed.values()), decimals=_decimals(metric))
    return out


def resolution(runs: pd.DataFrame, method: str, metric: XaiMetric, with_au: bool) -> float:
    """The arm's image-bootstrap half-width of its seed mean (NaN if not logged)."""
    arm = runs[(runs["method"].astype(str) == method) & (runs["with_au"] == with_au)]
    if metric.interval_key not in arm or arm[metric.interval_key].isna().all():
        return math.nan
    widths = arm[metric.interval_key].dropna()
    return float(widths.mean()) / math.sqrt(len(widths))


def separates(runs: pd.DataFrame, method: str, metric: XaiMetric, before: Cell,
              after: Cell) -> bool | None:
    """Whether the arms differ by more than the metric's resolution (None: not known)."""
    h0 = resolution(runs, method, metric, False)
    h1 = resolution(runs, method, metric, True)
    if before.estimate.n == 0 or after.estimate.n == 0 or math.isnan(h0) or math.isnan(h1):
        return None
    return abs(after.estimate.mean - before.estimate.mean) > math.hypot(h0, h1)


def _better(before: Cell, after: Cell, metric: XaiMetric) -> tuple[Cell, Cell]:
    if before.estimate.n == 0 or after.estimate.n == 0:
        return before, after
    d = _decimals(metric)
    a, b = round(before.estimate.mean, d), round(after.estimate.mean, d)
    if a == b:
        return replace(before, best=True), replace(after, best=True)
    first = (a > b) == metric.higher_is_better
    return replace(before, best=first), replace(after, best=not first)


def finish(runs: pd.DataFrame, table: Table) -> Table:
    """The generic build (method rows × metric/arm columns) turned into method · metric rows
    × arm and control columns, with the controls and the resolution marks."""
    methods = list(table.rows)
    labels = method_labels()
    rows, cells, names = [], {}, {}
    for method in methods:
        for metric in METRICS:
            key = row_key(method, metric.name)
            before = table.cells[(method, f"{metric.label} w/o AU")]
            after = table.cells[(method, f"{metric.label} w/ AU")]
            before, after = _better(replace(before, best=False, decimals=_decimals(metric)),
                                    replace(after, best=False, decimals=_decimals(metric)),
                                    metric)
            cells[(key, "w/o AU")], cells[(key, "w/ AU")] = before, after
            for header, cell in (control_cells(runs, method, metric).items() if len(runs)
                                 else ()):
                cells[(key, header)] = cell
            arrow = "↑" if metric.higher_is_better else "↓"
            mark = "" if separates(runs, method, metric, before, after) is not False \
                else f" {UNRESOLVED}"
            names[key] = f"{labels.get(method, method)} · {metric.label} {arrow}{mark}"
            rows.append(key)
    for key in rows:  # a control nobody logged prints "--"
        for column in LAYOUT:
            cells.setdefault((key, column.header), Cell({}, estimate([])))
    spec = replace(table.spec, columns=LAYOUT, row_labels=lambda: names,
                   notes=(UNRESOLVED_NOTE,))
    return replace(table, spec=spec, rows=rows, cells=cells)


def unresolved(table: Table) -> list[str]:
    """Names (``test_xai_<metric>``) of the metrics marked † for some method of a built Table 4."""
    marked = {key.split(ROW_SEP, 1)[1] for key in table.rows
              if table.label(key).endswith(UNRESOLVED)}
    return [BY_NAME[name].key for name in marked]


register_table(SPEC, finish)
