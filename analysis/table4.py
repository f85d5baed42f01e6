"""Table 4: interpretability beyond CAM-COS, per method, without and with AU guidance.

Every metric of ``fer_core.xai`` (localisation against the AU map, faithfulness, the
parameter-randomisation sanity check), logged by each trial as ``test_xai_<metric>``, in a
w/o AU and a w/ AU column; cells, intervals and paired tests as in Tables 1–2
(:func:`analysis.tables.build_table`). Two things differ:

- a last row, *Random map*, shows what chance scores: each trial also logs every metric of
  uniform random maps on the same images (``test_xai_<metric>_random``); a cell holds, per seed,
  the mean of that over the row's arm's methods, so it reads as the floor of the column;
- bold marks the best method per column in the metric's own direction (lower is better for
  deletion, Average Drop, ROAD MoRF and the randomisation correlation).

Registered as ``analysis.tables --table 4`` (``TABLES[4]`` plus its finisher).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from analysis.stats import estimate
from analysis.table_spec import (
    FINISHERS,
    TABLES,
    Cell,
    Column,
    Table,
    TableSpec,
    method_labels,
    method_rows,
)
from fer_core.xai.names import BY_NAME, METRICS

if TYPE_CHECKING:
    import pandas as pd

RANDOM_ROW = "random"
RANDOM_LABEL = "Random map (chance)"
PERCENT_METRICS = frozenset({"average_drop", "increase_confidence"})


def columns() -> tuple[Column, ...]:
    """Two columns (w/o AU, w/ AU) per metric of :data:`fer_core.xai.names.METRICS`."""
    out = []
    for metric in METRICS:
        decimals = 1 if metric.name in PERCENT_METRICS else 3
        out += [Column(f"{metric.label} w/o AU", metric.key, False, decimals),
                Column(f"{metric.label} w/ AU", metric.key, True, decimals)]
    return tuple(out)


def row_labels() -> dict[str, str]:
    """The methods' labels (Table 1's) and the random-map row's."""
    return {**method_labels(), RANDOM_ROW: RANDOM_LABEL}


SPEC = TableSpec(
    4, "Localisation against the AU map, faithfulness and sanity without and with AU guidance "
       "(bold: best method in the metric's direction; last row: random maps)",
    "method", "Method", method_rows, columns(),
    row_labels=row_labels,
)


def _metric_of(column: Column):
    return BY_NAME[column.metric.removeprefix("test_xai_")]


def random_cells(runs: pd.DataFrame, spec: TableSpec) -> dict[tuple[str, str], Cell]:
    """The random-map row: per column, per seed, the mean ``_random`` value over the arm's runs."""
    import pandas as pd

    cells = {}
    for column in spec.columns:
        arm = runs[runs["with_au"] == column.with_au]
        key = _metric_of(column).random_key
        values = arm[key] if key in arm else pd.Series(float("nan"), index=arm.index)
        by_seed = {int(s): float(v) for s, v in values.groupby(arm["seed"]).mean().items()}
        cells[(RANDOM_ROW, column.header)] = Cell(by_seed, estimate(by_seed.values()))
    return cells


def _mark_best(cells: dict[tuple[str, str], Cell], rows: list[str],
               spec: TableSpec) -> dict[tuple[str, str], Cell]:
    out = {k: replace(c, best=False) for k, c in cells.items()}
    for column in spec.columns:
        keys = [(r, column.header) for r in rows if out[(r, column.header)].estimate.n > 0]
        if len(keys) < 2:
            continue
        shown = {k: round(out[k].estimate.mean, column.decimals) for k in keys}
        pick = max if _metric_of(column).higher_is_better else min
        top = pick(shown.values())
        for k in keys:
            if shown[k] == top:
                out[k] = replace(out[k], best=True)
    return out


def finish(runs: pd.DataFrame, table: Table) -> Table:
    """Table 4 from the generic build: direction-aware bold, then the random-map row."""
    methods = list(table.rows)
    cells = _mark_best(table.cells, methods, table.spec)
    cells.update(random_cells(runs, table.spec) if len(runs) else {})
    rows = methods + [RANDOM_ROW] if len(runs) else methods
    return replace(table, rows=rows, cells=cells)


TABLES[SPEC.number] = SPEC
FINISHERS[SPEC.number] = finish
