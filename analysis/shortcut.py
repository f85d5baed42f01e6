"""The report's "Shortcut cue" section: reliance on the synthetic shortcut square against the
attribution to it, per arm (docs/method.md §7.2).

One row per (shortcut probability, λ) of the runs that logged ``test_shortcut_*`` (trials with
``shortcut_images`` > 0, e.g. the ``shortcut`` space); each cell is the mean over the row's seeds
and their standard deviation, ``(n=K)`` the seeds. Columns: accuracy with the square in place and
removed, the share of swapped-square images that follow the square, the reliance (true class's
probability with the square minus without), the CAM's mass ratio in the square and its pointing
game, the aligned layer's attention mass ratio, and Spearman's ρ between per-image reliance and
CAM mass ratio. A row whose runs mix λ values or layer sets, or repeat a seed, is not averaged:
the section then says why, as the tables do.

    python -m analysis.shortcut --experiment NAME [--mlflow-uri URI] [--where KEY=VALUE ...] \\
        --format md|latex|html|csv

writes the table alone (the report writes Markdown and HTML; LaTeX is for a paper).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from analysis import render
from analysis.runs import add_source_args, load_runs
from analysis.sections import Section, register
from analysis.source import check_store, why_empty
from analysis.stats import Estimate
from analysis.table_spec import Cell, Column, Table, TableSpec
from analysis.tables import TABLES, select
from analysis.tables import check_cell as check_row  # the tables' rule for one cell's runs
from fer_core import metric_names as mn
from fer_core.cli import UserError, cli_main, exit_with

if TYPE_CHECKING:
    import pandas as pd

ATTENTION = mn.shortcut_key("att_l<k>_mass_ratio")
"""The attention column's metric: its key depends on the row's aligned layer ``k``."""
COLUMNS = (  # short headers: nine columns must fit a page; the note says what each is
    Column("Acc. cue (%)", mn.shortcut_key("acc_in_place"), False, 1),
    Column("Acc. no cue (%)", mn.shortcut_key("acc_removed"), False, 1),
    Column("Follows (%)", mn.shortcut_key("follows"), False, 1),
    Column("Reliance", mn.shortcut_key("reliance"), False, 3),
    Column("CAM mass ratio", mn.shortcut_key("cam_mass_ratio"), False, 2),
    Column("CAM pointing", mn.shortcut_key("cam_pointing"), False, 2),
    Column("Att. mass ratio", ATTENTION, False, 2),
    Column("ρ", mn.shortcut_key("rho"), False, 2),
)
PRESENT = mn.shortcut_key("reliance")
"""A run carries the section's metrics when it has this one."""
NOTE = ("Mean and standard deviation over seeds (n seeds). p: probability of the class square in "
        "train/val images (0: the model never saw it); the test images carry it (Acc. cue) or "
        "not (Acc. no cue). Follows: images whose square was swapped for another class's that "
        "the model assigns to that class. Reliance: the true class's probability with the "
        "square minus without. Mass ratio: the map's share in the square over the square's "
        "share of the image (1: a uniform map), for the CAM and the attention of the aligned "
        "layer (the first of the run's layers); pointing: the map's maximum falls on the "
        "square. ρ: Spearman correlation over images of reliance and CAM mass ratio.")


def attention_key(layers: str) -> str:
    """The aligned layer's attention mass ratio, e.g. ``test_shortcut_att_l5_mass_ratio``."""
    return mn.shortcut_key(f"att_l{str(layers).split('+')[0]}_mass_ratio")


def row_label(shortcut: float, lam: float) -> str:
    return f"p = {shortcut:g}, λ = {lam:g}"


def spread(values: list[float]) -> Estimate:
    """Mean and standard deviation (NaN under two values) of the finite ``values``: the
    seeds' spread itself, not an interval of the mean (what the section reports)."""
    kept = [v for v in values if math.isfinite(v)]
    if not kept:
        return Estimate(math.nan, math.nan, 0)
    sd = statistics.stdev(kept) if len(kept) > 1 else math.nan
    return Estimate(statistics.fmean(kept), sd, len(kept))


def _cell(members: pd.DataFrame, key: str) -> Cell:
    values = members[key].astype(float) if key in members else [math.nan] * len(members)
    by_seed = {int(s): float(v) for s, v in zip(members["seed"], values, strict=True)}
    return Cell(by_seed, spread(list(by_seed.values())))


def shortcut_table(runs: pd.DataFrame, experiment: str) -> Table | None:
    """The section's table over ``runs`` (an ``analysis.runs.load_runs`` frame), or ``None``
    when no run logged the shortcut metrics."""
    if PRESENT not in runs or runs[PRESENT].isna().all() or "shortcut" not in runs:
        return None
    cued = runs[runs[PRESENT].notna()]
    keys = sorted({(float(s), float(lam)) for s, lam in zip(cued["shortcut"], cued["lambda_au"],
                                                            strict=True)})
    rows, cells = [], {}
    for shortcut, lam in keys:
        row = row_label(shortcut, lam)
        members = cued[(cued["shortcut"].astype(float) == shortcut)
                       & (cued["lambda_au"].astype(float) == lam)]
        check_row(members, f"shortcut cue row {row!r}", lam > 0, "shortcut")
        rows.append(row)
        for column in COLUMNS:
            key = (attention_key(members["layers"].mode().iloc[0])
                   if column.metric == ATTENTION else column.metric)
            cells[(row, column.header)] = _cell(members, key)
    # Numbered after the paper's tables, whichever of them are registered.
    spec = TableSpec(max(TABLES) + 1, "Shortcut cue: reliance on the class square and "
                     "attribution to it, by shortcut probability p and λ",
                     "shortcut", "Shortcut p · λ", sorted, COLUMNS, notes=(NOTE,))
    commits = sorted({c for c in cued["git_commit"] if c})
    return Table(spec, rows, cells, experiment, len(cued), commits)


SECTION = register(Section("shortcut", "Shortcut cue", shortcut_table))


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis.shortcut --experiment NAME --format md|latex|html|csv``: the
    section's table alone, e.g. as LaTeX for a paper (the report writes Markdown and HTML)."""
    parser = argparse.ArgumentParser(prog="python -m analysis.shortcut",
                                     description=__doc__.split("\n")[0])
    add_source_args(parser)
    parser.add_argument("--format", choices=sorted(render.FORMATS), default="md")
    args = parser.parse_args(argv)
    check_store(args.mlflow_uri)
    runs = select(load_runs(args.experiment, args.mlflow_uri), args.where)
    if runs.empty:
        raise why_empty(args.experiment, args.mlflow_uri, args.where)
    table = shortcut_table(runs, args.experiment)
    if table is None:
        raise UserError(f"no selected run of {args.experiment!r} has {PRESENT}: run the "
                        "'shortcut' space, or set shortcut_images > 0")
    sys.stdout.write(render.FORMATS[args.format](table))
    return 0


if __name__ == "__main__":
    exit_with(main())
