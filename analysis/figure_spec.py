"""What a figure is and reads: its registry, its options, the runs it is given and picks from.

A figure is data (:class:`FigureSpec` in ``FIGURES``): a name and a builder that turns the
selected runs (:class:`FigureSource`) into a ``matplotlib.figure.Figure``. The builders are in
``analysis.figure_builders``; ``python -m analysis.figures`` writes them (``analysis.figures``).
"Best run of an arm" is the one with the highest ``--best-by`` (default ``best_val_cl``: the
validation accuracy the sweep selects on, never a test metric).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from analysis.runs import RUN_COLUMNS, load_runs
from analysis.tables import select
from fer_core import metric_names as mn
from fer_core.cli import UserError
from fer_core.registry import Registry

if TYPE_CHECKING:  # imported where a figure is built, so --help and usage errors answer at once
    import pandas as pd
    from matplotlib.figure import Figure

SPACE = "space"  # the runs' column naming each trial's sweep space
FORMATS = ("png", "pdf", "svg")
ARMS = (("w/ AU", True), ("w/o AU", False))
"""Arm label and ``with_au``; w/ AU first, the paper's top row."""
IGNORED_FIELDS = frozenset({"lambda_au", "device", "num_workers", "fail_at_epoch"})
"""Config fields a λ curve may vary (λ) or that do not change a trained model."""
AU_ONLY_FIELDS = ("layers", "layer_reduce")
"""Unused at λ = 0: a baseline's layer set does not make it a different model."""


class MissingRuns(UserError):
    """The selection lacks the runs (or their artifacts) a figure needs; says which."""


@dataclass(frozen=True)
class FigureOptions:
    """Choices of the figures that pick runs or read data."""

    best_by: str = mn.BEST_VAL_CL
    run_ids: tuple[str, ...] = ()
    data_root: str | None = None
    device: str = "auto"
    batch_size: int | None = None
    progress: bool = True


@dataclass(frozen=True, eq=False)
class FigureSource:
    """What a builder reads: the selected runs (``load_runs`` frame plus ``space``)."""

    experiment: str
    tracking_uri: str | None
    runs: pd.DataFrame
    options: FigureOptions = field(default_factory=FigureOptions)


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    build: Callable[[FigureSource], Figure]


FIGURES: Registry[FigureSpec] = Registry("figure")


def register(name: str, title: str) -> Callable[[Callable[[FigureSource], Figure]], Callable]:
    def add(build: Callable[[FigureSource], Figure]) -> Callable[[FigureSource], Figure]:
        FIGURES.register(name)(FigureSpec(name, title, build))
        return build

    return add


def load_selection(experiment: str, tracking_uri: str | None = None,
                   where: Sequence[str] = ()) -> pd.DataFrame:
    """Finished trials of ``experiment`` with a ``space`` column, narrowed by ``KEY=VALUE``s."""
    return select(load_runs(experiment, tracking_uri), where)


def describe(run: pd.Series) -> str:
    """A run in a few words: method, λ, layers, seed, short id."""
    return (f"{run.get('method', '?')}, λ={float(run['lambda_au']):g}, layers {run.get('layers')}"
            f", seed {run['seed']}, run {run['run_id'][:8]}")


def best_runs(runs: pd.DataFrame, best_by: str) -> list[tuple[str, pd.Series]]:
    """(arm label, best run) for w/ AU then w/o AU; raises :class:`MissingRuns` if one lacks."""
    import numpy as np

    if runs.empty:
        raise MissingRuns("no finished trial among the selected runs: both arms (w/ AU, "
                          "w/o AU) are missing")
    if best_by not in runs:
        raise MissingRuns(f"no run has the metric {best_by!r} (--best-by); metrics present: "
                          f"{sorted(c for c in runs if c.startswith(('test_', 'best_')))}")
    chosen, missing = [], []
    for label, with_au in ARMS:
        arm = runs[(runs["with_au"] == with_au) & np.isfinite(runs[best_by].astype(float))]
        if arm.empty:
            missing.append(f"{label} ({'λ > 0' if with_au else 'λ = 0'})")
            continue
        chosen.append((label, arm.sort_values([best_by, "run_id"],
                                              ascending=[False, True]).iloc[0]))
    if missing:
        raise MissingRuns(f"no finished {' and no '.join(missing)} run with {best_by} among the "
                          f"{len(runs)} selected runs")
    return chosen


def _config_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c not in RUN_COLUMNS
            and not mn.is_final(c) and c not in mn.SELECTION_METRICS]


def check_one_setting(runs: pd.DataFrame, figure: str) -> None:
    """Refuse runs that differ in more than λ and seed (a curve must show one model family)."""
    for column in _config_columns(runs):
        if column in IGNORED_FIELDS:
            continue
        values = runs.loc[runs["with_au"].astype(bool), column] if column in AU_ONLY_FIELDS \
            else runs[column]
        distinct = sorted(set(values.map(str)))
        if len(distinct) > 1:
            raise UserError(f"figure {figure!r}: the runs mix {column} = {distinct}; choose one "
                             f"with --where {column}=VALUE")
    for lam, group in runs.groupby("lambda_au"):
        repeated = group["seed"][group["seed"].duplicated()]
        if len(repeated):
            sweeps = sorted(set(group.loc[group["seed"] == repeated.iloc[0], "sweep"]))
            raise UserError(f"figure {figure!r}: λ={lam:g} has several runs with seed "
                             f"{repeated.iloc[0]} (sweeps {sweeps}); choose one with "
                             f"--where sweep=NAME")
