"""The paper's Tables 1–3 from the MLflow runs of a sweep, in Markdown, LaTeX, HTML or CSV.

    python -m analysis.tables --experiment NAME [--mlflow-uri URI] --table 1|2|3 \\
        --format md|latex|html|csv [-o FILE] [--where KEY=VALUE ...]

A table is data (:class:`TableSpec`): which run column names a row, and which metric of which arm
(w/o AU: λ = 0; w/ AU: λ > 0) each column shows. A cell is the mean over the seeds of its runs:
one seed prints the plain value like the paper; several print ``mean ± 95 % CI (n=K)``, and a
w/ AU cell carries ``*`` (p < 0.05) or ``**`` (p < 0.01) from a paired t-test against its w/o AU
reference on matching seeds, with every p-value in a footnote. The best mean per column is bold;
a cell without runs prints ``--``. A cell whose runs mix λ values or layer sets, or repeat a seed,
is an error (narrow the runs with ``--where``) rather than a silent average of different models.
Where a sweep ran several AU-guided settings, each table shows the default one of
``analysis.defaults`` (the paper's λ = 4 at layer 5 when it ran), named in its title, exactly as
``analysis.report`` does.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from analysis import render
from analysis.defaults import TABLE_DEFAULTS
from analysis.runs import RUN_COLUMNS, add_source_args, load_runs
from analysis.source import check_store, why_empty
from analysis.stats import estimate, paired_test
from analysis.table_spec import (  # noqa: F401  (TABLES, Table, method_rows: read from here)
    BASELINE_LABEL,
    FINISHERS,
    TABLES,
    Cell,
    Column,
    Table,
    TableSpec,
    arm_with_au,
    method_rows,
)
from fer_core.cli import UserError, cli_main, exit_with

if TYPE_CHECKING:  # pandas is imported where frames are built, so --help answers at once
    import pandas as pd

NOT_CONFIG = frozenset(RUN_COLUMNS) - {"seed"}
AU_KNOBS = ("lambda_au", "layers")
"""Config fields that must be single-valued within a cell (layers only matter when λ > 0)."""


def check_cell(runs: pd.DataFrame, where: str, with_au: bool, row_param: str) -> None:
    knobs = [k for k in AU_KNOBS if k != row_param and k in runs and (with_au or k == "lambda_au")]
    for knob in knobs:
        values = sorted(runs[knob].dropna().astype(str).unique())
        if len(values) > 1:
            raise UserError(f"{where} mixes {knob} = {values}; choose one with "
                             f"--where {knob}=VALUE")
    repeated = runs["seed"][runs["seed"].duplicated()]
    if len(repeated):
        seed = int(repeated.iloc[0])
        twins = runs[runs["seed"] == seed]
        def differing(columns: Sequence[str]) -> list[str]:
            return [f"{c} = {sorted(twins[c].astype(str).unique())}" for c in columns
                    if twins[c].astype(str).nunique() > 1]

        differ = differing([c for c in twins.columns if c not in NOT_CONFIG
                            and not c.startswith(("test_", "best_"))])
        # Same config twice (a --rerun, or two sweeps): name the sweeps to choose between.
        differ = differ or differing(["sweep", "space"])
        raise UserError(f"{where} has {len(twins)} runs with seed {seed}, differing in "
                         f"{'; '.join(differ[:3]) or 'nothing but their run'}; narrow the runs "
                         f"with --where KEY=VALUE")


def _arm(runs: pd.DataFrame, spec: TableSpec, row: str, with_au: bool) -> pd.DataFrame:
    chosen = runs["with_au"] == with_au
    if not (spec.baseline_row and row == BASELINE_LABEL):
        chosen &= runs[spec.row_param].astype(str) == row
    return runs[chosen]


def _mark_best(cells: dict[tuple[str, str], Cell], columns: Sequence[Column]) -> None:
    # Higher is better for every metric shown (accuracy, cosines); bold only a real comparison.
    for column in columns:
        keys = [k for k in cells if k[1] == column.header and cells[k].estimate.n > 0]
        if len(keys) < 2:
            continue
        # Compared as printed: two cells that both read 0.67 are both best.
        shown = {k: round(cells[k].estimate.mean, column.decimals) for k in keys}
        top = max(shown.values())
        for k in keys:
            if shown[k] == top:
                cells[k] = replace(cells[k], best=True)


def build_table(runs: pd.DataFrame, spec: TableSpec, experiment: str) -> Table:
    """Cells, tests and provenance of ``spec`` over ``runs`` (a :func:`load_runs` frame)."""
    import pandas as pd

    # Table 3's layer sets are those of the w/ AU runs: at λ = 0 the layers are not used.
    source = runs[runs["with_au"].astype(bool)] if spec.baseline_row else runs
    present = source[spec.row_param].dropna().astype(str) if spec.row_param in runs else []
    rows = ([BASELINE_LABEL] if spec.baseline_row else []) + spec.order(present)
    cells: dict[tuple[str, str], Cell] = {}
    used: set[str] = set()
    for row in rows:
        for column in spec.columns:
            with_au = arm_with_au(spec, row, column)
            members = _arm(runs, spec, row, with_au)
            check_cell(members, f"{spec.row_header} {row!r}, {column.header}", with_au,
                        spec.row_param)
            used |= set(members["run_id"])
            values = members.get(column.metric, pd.Series(math.nan, index=members.index))
            by_seed = {int(s): float(v) for s, v in zip(members["seed"], values, strict=True)}
            cells[(row, column.header)] = Cell(by_seed, estimate(by_seed.values()))
    for (row, header), cell in list(cells.items()):
        reference = _reference(spec, row, header)
        if reference is not None and reference in cells:
            cells[(row, header)] = replace(cell, test=paired_test(cells[reference].by_seed,
                                                                  cell.by_seed))
    _mark_best(cells, spec.columns)
    commits = sorted({c for c in runs.loc[runs["run_id"].isin(used), "git_commit"] if c})
    table = Table(spec, rows, cells, experiment, len(used), commits)
    finish = FINISHERS.get(spec.number)
    return table if finish is None else finish(runs, table)


def _reference(spec: TableSpec, row: str, header: str) -> tuple[str, str] | None:
    """The cell a w/ AU cell is tested against, or ``None`` for a reference cell."""
    column = next(c for c in spec.columns if c.header == header)
    if spec.baseline_row:
        return None if row == BASELINE_LABEL else (BASELINE_LABEL, header)
    if not column.with_au:
        return None
    twin = next((c for c in spec.columns if c.metric == column.metric and not c.with_au), None)
    return None if twin is None else (row, twin.header)


def select(runs: pd.DataFrame, where: Sequence[str]) -> pd.DataFrame:
    """Runs whose config matches every ``KEY=VALUE`` (numbers compared as numbers)."""
    import pandas as pd

    for clause in where:
        key, sep, value = clause.partition("=")
        if not sep or key not in runs:
            raise UserError(f"--where {clause!r}: expected KEY=VALUE with KEY one of "
                             f"{sorted(runs.columns)}")
        column = runs[key]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            runs = runs[column.astype(float) == float(value)]
        else:
            runs = runs[column.astype(str) == value]
    return runs


def default_table(runs: pd.DataFrame, number: int, experiment: str) -> Table:
    """Table ``number`` over its default selection (``analysis.defaults``: which AU-guided
    setting the w/ AU cells show when the runs hold several, named in the title).

    Raises :class:`~fer_core.cli.UserError` with the reason and the fix when an arm has no
    run, a cell would mix models, or no selected run has the table's metrics.
    """
    spec = TABLES[number]
    chosen, note = TABLE_DEFAULTS.get(number, lambda r: (r, ""))(runs)
    table = build_table(chosen, spec, experiment)
    if note:  # the caption says which AU-guided setting the w/ AU cells show
        table = replace(table, spec=replace(table.spec, title=f"{table.spec.title} ({note})"))
    if not any(cell.estimate.n for cell in table.cells.values()):
        wanted = sorted({c.metric for c in spec.columns})
        names = ", ".join(wanted[:3]) + (" …" if len(wanted) > 3 else "")
        raise UserError(f"none of the selected runs has {names}")
    return table


import analysis.table4  # noqa: E402,F401  registers Table 4; needs the names above


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.tables", description=__doc__
                                     .split("\n")[0])
    add_source_args(parser)
    parser.add_argument("--table", type=int, choices=sorted(TABLES), required=True)
    parser.add_argument("--format", choices=sorted(render.FORMATS), default="md")
    parser.add_argument("-o", "--output", default=None, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    check_store(args.mlflow_uri)
    runs = select(load_runs(args.experiment, args.mlflow_uri), args.where)
    if runs.empty:
        raise why_empty(args.experiment, args.mlflow_uri, args.where)
    text = render.FORMATS[args.format](default_table(runs, args.table, args.experiment))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    # Under ``python -m`` this file is __main__, and Table 4 registers into the imported
    # analysis.tables: run that module's main so the registry is the one filled.
    from analysis.tables import main as _main

    exit_with(_main())
