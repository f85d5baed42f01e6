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
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from analysis.sections import Section, register
from analysis.stats import Estimate
from analysis.table_spec import Cell, Column, Table, TableSpec
from analysis.tables import TABLES
from analysis.tables import _check_cell as check_row  # the tables' rule for one cell's runs
from fer_core import metric_names as mn

if TYPE_CHECKING:
    import pandas as pd

ROW_PARAMS = ("shortcut", "lambda_au")
ATTENTION = mn.shortcut_key("att_l<k>_mass_ratio")
"""The attention column's metric: its key depends on the row's aligned layer ``k``."""
COLUMNS = (
    Column("Acc. square in place (%)", mn.shortcut_key("acc_in_place"), False, 1),
    Column("Acc. square removed (%)", mn.shortcut_key("acc_removed"), False, 1),
    Column("Follows (%)", mn.shortcut_key("follows"), False, 1),
    Column("Reliance", mn.shortcut_key("reliance"), False, 3),
    Column("CAM mass ratio", mn.shortcut_key("cam_mass_ratio"), False, 2),
    Column("CAM pointing", mn.shortcut_key("cam_pointing"), False, 2),
    Column("Aligned layer att. mass ratio", ATTENTION, False, 2),
    Column("ρ (reliance, CAM mass)", mn.shortcut_key("rho"), False, 2),
)
PRESENT = mn.shortcut_key("reliance")
"""A run carries the section's metrics when it has this one."""
NOTE = ("Mean and standard deviation over seeds, n = seeds. Shortcut p: probability of the class "
        "square in train/val images (0: the model never saw it); test images carry it. Mass "
        "ratio 1 is a uniform map; the aligned layer is the first of the run's layers.")


def attention_key(layers: str) -> str:
    """The aligned layer's attention mass ratio, e.g. ``test_shortcut_att_l5_mass_ratio``."""
    return mn.shortcut_key(f"att_l{str(layers).split('+')[0]}_mass_ratio")


def row_label(shortcut: float, lam: float) -> str:
    return f"p = {shortcut:g}, λ = {lam:g}"


def spread(values: list[float]) -> Estimate:
    """Mean and standard deviation (NaN under two values) of the finite ``values``."""
    kept = [v for v in values if math.isfinite(v)]
    if not kept:
        return Estimate(math.nan, math.nan, 0)
    mean = sum(kept) / len(kept)
    sd = (math.sqrt(sum((v - mean) ** 2 for v in kept) / (len(kept) - 1)) if len(kept) > 1
          else math.nan)
    return Estimate(mean, sd, len(kept))


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
    spec = TableSpec(max(TABLES) + 1, "Shortcut cue: reliance on the class square and "
                     "attribution to it, by shortcut probability p and λ",
                     "shortcut", "Shortcut p · λ", sorted, COLUMNS, notes=(NOTE,))
    commits = sorted({c for c in cued["git_commit"] if c})
    return Table(spec, rows, cells, experiment, len(cued), commits)


SECTION = register(Section("shortcut", "Shortcut cue", shortcut_table))
