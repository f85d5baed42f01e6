"""The paper's figures from the MLflow runs of a sweep, as PNG and PDF.

    python -m analysis.figures --experiment NAME [--mlflow-uri URI] [--where KEY=VALUE ...] \\
        [--figure lambda|matrices|maps|pareto|all] [--format png,pdf] -o DIR

A figure is data (:class:`FigureSpec` in ``FIGURES``): a name and a builder that turns the
selected runs (:class:`FigureSource`) into a ``matplotlib.figure.Figure`` (object API, no pyplot).

- ``lambda`` (Fig. 5): CL, CAM-COS and ATT-COS against λ (log axis), mean ± 95 % CI over seeds,
  the λ = 0 baseline as a dashed line. Uses the trials of a ``lambda`` sweep when the selection
  has some, else every selected run, of one layer set (``analysis.defaults.lambda_curve``: 5 when
  present, named in the title); the runs may differ only in λ and seed.
- ``matrices`` (Figs. 10–11): confusion and per-class cosine matrices of the best run of each
  arm (w/ AU on top, as in the paper), read from the run's ``matrices/*.json`` artifacts.
- ``maps`` (Figs. 6–9): per-class average AU map, layer attention and CAM over the test split,
  computed from the logged ``model/selected.pt`` (``analysis.maps``).
- ``pareto``: CL against ATT-COS of every trial of a ``pareto`` sweep, non-dominated front marked.

"Best run of an arm" is the one with the highest ``--best-by`` (default ``best_val_cl``: the
validation accuracy the sweep selects on, never a test metric). A figure whose runs are missing
is skipped with a message under ``--figure all``, and is an error (exit 2) when asked by name.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.defaults import lambda_curve
from analysis.runs import RUN_COLUMNS, add_source_args, load_runs
from analysis.source import check_store
from analysis.stats import CONFIDENCE, estimate
from analysis.tables import select
from fer_core import metric_names as mn
from fer_core.cli import UserError, cli_main, exit_with
from fer_core.registry import Registry
from tuner.tracking import schema as tr

if TYPE_CHECKING:  # imported where a figure is built, so --help and usage errors answer at once
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from mlflow import MlflowClient

SPACE = "space"  # the runs' column naming each trial's sweep space
FORMATS = ("png", "pdf", "svg")
ARMS = (("w/ AU", True), ("w/o AU", False))
"""Arm label and ``with_au``; w/ AU first, the paper's top row."""
IGNORED_FIELDS = frozenset({"lambda_au", "device", "num_workers", "fail_at_epoch"})
"""Config fields a λ curve may vary (λ) or that do not change a trained model."""
AU_ONLY_FIELDS = ("layers", "layer_reduce")
"""Unused at λ = 0: a baseline's layer set does not make it a different model."""
LAMBDA_PANELS = ((mn.TEST_CL, "CL (%)"), (mn.TEST_CAM_COS, "CAM-COS"),
                 (mn.TEST_ATT_COS, "ATT-COS"))
PARETO_AXES = ((mn.TEST_ATT_COS, "ATT-COS (test)"), (mn.TEST_CL, "CL (%, test)"))
"""(x, y) of the Pareto figure; both maximised."""


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


# ---------------------------------------------------------------- runs
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


# ---------------------------------------------------------------- Fig. 5: λ
def _lambda_panel(ax: Axes, groups: dict[float, pd.DataFrame], metric: str, label: str) -> None:
    import numpy as np

    def values(group: pd.DataFrame) -> list[float]:
        return list(group[metric]) if metric in group else []

    points = [(lam, estimate(values(g))) for lam, g in sorted(groups.items()) if lam > 0]
    points = [(lam, e) for lam, e in points if e.n > 0]
    if points:
        ax.errorbar(np.array([lam for lam, _ in points], dtype=float),
                    np.array([e.mean for _, e in points], dtype=float),
                    yerr=np.array([e.half_width if e.n > 1 else 0.0 for _, e in points]),
                    marker="o", capsize=3, label="w/ AU (λ > 0)")
    else:
        ax.text(0.5, 0.5, f"no {metric}", transform=ax.transAxes, ha="center")
    base = estimate(values(groups[0.0])) if 0.0 in groups else None
    if base is not None and base.n > 0:
        ax.axhline(base.mean, linestyle="--", color="gray", label=f"w/o AU (λ = 0, n={base.n})")
        if base.n > 1:
            ax.axhspan(base.mean - base.half_width, base.mean + base.half_width, color="gray",
                       alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_xlabel("λ")
    ax.set_ylabel(label)
    ax.set_title(label)
    ax.legend(fontsize=7)


@register("lambda", "Fig. 5: CL, CAM-COS and ATT-COS against λ")
def lambda_figure(source: FigureSource) -> Figure:
    from matplotlib.figure import Figure

    runs = source.runs
    if (runs[SPACE] == "lambda").any():  # the sweep made for this figure, when present
        runs = runs[runs[SPACE] == "lambda"]
    if not runs["with_au"].astype(bool).any():
        raise MissingRuns(f"no finished run with λ > 0 among the {len(runs)} selected runs of "
                          f"experiment {source.experiment!r} (python -m tuner.sweep --space "
                          f"lambda makes them)")
    runs, chosen = lambda_curve(runs)  # a searched sweep's layer sets: one curve
    check_one_setting(runs, "lambda")
    groups = {float(lam): g for lam, g in runs.groupby("lambda_au")}
    seeds = sorted({len(g) for g in groups.values()})
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    for ax, (metric, label) in zip(fig.subplots(1, len(LAMBDA_PANELS)), LAMBDA_PANELS,
                                   strict=True):
        _lambda_panel(ax, groups, metric, label)
    spread = (f"mean ± {CONFIDENCE:.0%} CI over seeds, n = {'/'.join(map(str, seeds))} per λ"
              if max(seeds) > 1 else "one seed per λ, no interval")
    fig.suptitle(f"Impact of λ ({source.experiment}; {'; '.join(filter(None, (chosen, spread)))})")
    return fig


# ---------------------------------------------------------------- Figs. 10–11: matrices
def read_matrix(client: MlflowClient, run_id: str, name: str, folder: str,
                label: str = "") -> dict:
    """A logged ``matrices/<name>`` JSON artifact of ``run_id`` (``label``: its arm)."""
    path = f"{tr.ARTIFACT_MATRICES}/{name}"
    try:
        local = client.download_artifacts(run_id, path, folder)
    except Exception as err:  # mlflow raises several types; all mean "not logged"
        raise MissingRuns(f"the {label} run {run_id} has no artifact {path} ({err})") from err
    return json.loads(Path(local).read_text())


@register("matrices", "Figs. 10–11: confusion and cosine matrices of the best run of each arm")
def matrices_figure(source: FigureSource) -> Figure:
    from matplotlib.figure import Figure
    from mlflow import MlflowClient

    from fer_core.heatmap import draw_heatmap

    chosen = best_runs(source.runs, source.options.best_by)
    client = MlflowClient(source.tracking_uri)
    with tempfile.TemporaryDirectory(prefix="fer-matrices-") as tmp:
        logged = [(read_matrix(client, run["run_id"], "confusion.json", f"{tmp}/{i}", label),
                   read_matrix(client, run["run_id"], "cos_matrix.json", f"{tmp}/{i}", label))
                  for i, (label, run) in enumerate(chosen)]
    # inches per panel follow the column counts (~0.6 in a cell + labels and colour bar), so
    # cells stay near square (4.5 in at least: the titles)
    widths = [max(0.6 * n + 2.5, 4.5) for n in (len(logged[0][0]["classes"]),
                                      max(len(cos["cols"]) for _, cos in logged))]
    fig = Figure(figsize=(sum(widths), 5.0 * len(chosen)), layout="constrained")
    axes = fig.subplots(len(chosen), 2, squeeze=False, width_ratios=widths)
    for (label, run), (conf, cos), (left, right) in zip(chosen, logged, axes, strict=True):
        draw_heatmap(left, conf["values"], conf["classes"], conf["classes"],
                     f"{label}: {describe(run)}\nconfusion (row-normalised)", aspect="auto")
        left.set_xlabel("predicted")
        left.set_ylabel("true")
        draw_heatmap(right, cos["values"], cos["rows"], cos["cols"],
                     f"{label}: cosine with the AU map", aspect="auto")
    fig.suptitle(f"Confusion and cosine matrices on the test split ({source.experiment})")
    return fig


# ---------------------------------------------------------------- Figs. 6–9: maps
@register("maps", "Figs. 6–9: per-class average AU map, layer attention and CAM")
def maps_figure(source: FigureSource) -> Figure:
    from analysis import maps  # torch and the data pipeline load only for this figure

    opts = source.options
    if opts.run_ids:
        by_id = source.runs.set_index("run_id", drop=False)
        absent = [r for r in opts.run_ids if r not in by_id.index]
        if absent:
            raise MissingRuns(f"--run-id {', '.join(absent)}: not among the "
                              f"{len(source.runs)} selected finished runs")
        chosen = [(f"run {r[:8]}", by_id.loc[r]) for r in opts.run_ids]
    else:
        chosen = best_runs(source.runs, opts.best_by)
    averages = [maps.run_maps(run["run_id"], label, source.tracking_uri, data_root=opts.data_root,
                              device=opts.device, batch_size=opts.batch_size,
                              progress=opts.progress)
                for label, run in chosen]
    return maps.maps_figure(averages, title=f"Per-class averages over the test split "
                                            f"({source.experiment})")


# ---------------------------------------------------------------- AU regions
@register("regions", "Share of the map's mass per AU region, per class, w/o AU beside w/ AU")
def regions_figure(source: FigureSource) -> Figure:
    from analysis import regions  # torch and the data pipeline load only for this figure

    opts = source.options
    arms = [(f"{label}: {describe(run)}",
             regions.class_region_shares(run["run_id"], source.tracking_uri, opts.device,
                                         opts.batch_size))
            for label, run in reversed(best_runs(source.runs, opts.best_by))]
    return regions.regions_figure(arms, title=f"Where the CAM looks, by AU region "
                                              f"({source.experiment})")


# ---------------------------------------------------------------- Pareto
def pareto_mask(points: Sequence[Sequence[float]]) -> list[bool]:
    """Whether each point (all objectives maximised) is dominated by no other point."""
    from fer_core.objective import dominates

    return [not any(dominates(other, p) for j, other in enumerate(points) if j != i)
            for i, p in enumerate(points)]


@register("pareto", "CL against ATT-COS of a pareto sweep, non-dominated front marked")
def pareto_figure(source: FigureSource) -> Figure:
    import numpy as np
    from matplotlib.figure import Figure

    (x, x_label), (y, y_label) = PARETO_AXES
    runs = source.runs[source.runs[SPACE] == "pareto"]
    if x in runs and y in runs:
        runs = runs[np.isfinite(runs[x].astype(float)) & np.isfinite(runs[y].astype(float))]
    if runs.empty or x not in runs or y not in runs:
        spaces = sorted(set(source.runs[SPACE]) - {""})
        raise MissingRuns(f"no finished trial of a 'pareto' sweep with {x} and {y} among the "
                          f"selected runs (spaces present: {spaces}); python -m tuner.sweep "
                          f"--space pareto makes them")
    points = runs[[x, y]].astype(float).to_numpy()
    front = runs[pareto_mask(points.tolist())].sort_values(x)
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(points[:, 0], points[:, 1], color="tab:blue", alpha=0.6,
               label=f"trials ({len(runs)})")
    ax.plot(front[x], front[y], "-o", color="tab:red", markerfacecolor="none", markersize=10,
            label=f"non-dominated ({len(front)})")
    for _, run in front.iterrows():
        ax.annotate(f"λ={float(run['lambda_au']):g}, L{run.get('layers')}", (run[x], run[y]),
                    textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(f"CL vs ATT-COS trade-off ({source.experiment})")
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------- writing
@dataclass(frozen=True)
class Outcome:
    """A figure written (``files``) or skipped (``reason``)."""

    name: str
    files: tuple[Path, ...] = ()
    reason: str = ""


def save(fig: Figure, out: Path, name: str, formats: Sequence[str]) -> tuple[Path, ...]:
    out.mkdir(parents=True, exist_ok=True)
    paths = tuple(out / f"{name}.{fmt}" for fmt in formats)
    for path in paths:
        fig.savefig(path, dpi=150)
    return paths


def make_figures(source: FigureSource, names: Sequence[str], out: Path,
                 formats: Sequence[str] = ("png", "pdf")) -> list[Outcome]:
    """Build and write each named figure; a figure that cannot be made says why."""
    outcomes = []
    for name in names:
        try:
            fig = FIGURES.get(name).build(source)
        except UserError as err:  # MissingRuns, mixed settings, data or model not readable
            outcomes.append(Outcome(name, reason=str(err)))
            continue
        outcomes.append(Outcome(name, save(fig, out, name, formats)))
    return outcomes


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(f"--format {text!r}: use a comma list of {FORMATS}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis.figures",
                                description=__doc__.split("\n")[0])
    add_source_args(p)
    p.add_argument("--figure", choices=[*FIGURES.names(), "all"], default="all")
    p.add_argument("--format", type=_formats, default=("png", "pdf"), help="e.g. png,pdf")
    p.add_argument("-o", "--output", required=True, type=Path, help="folder to write into")
    p.add_argument("--best-by", default="best_val_cl", help="metric that picks an arm's best run")
    p.add_argument("--run-id", action="append", default=[], help="maps: these runs (repeatable)")
    p.add_argument("--data-root", default=None, help="maps: the data's folder on this machine")
    p.add_argument("--device", default="auto", help="maps: auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--batch-size", type=int, default=None, help="maps: default the run's")
    p.add_argument("--no-progress", action="store_true")
    return p


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    check_store(args.mlflow_uri)
    options = FigureOptions(args.best_by, tuple(args.run_id), args.data_root, args.device,
                            args.batch_size, not args.no_progress)
    runs = load_selection(args.experiment, args.mlflow_uri, args.where)
    source = FigureSource(args.experiment, args.mlflow_uri, runs, options)
    names = FIGURES.names() if args.figure == "all" else [args.figure]
    outcomes = make_figures(source, names, args.output, args.format)
    for outcome in outcomes:
        if outcome.files:
            print(f"{outcome.name}: wrote {', '.join(map(str, outcome.files))}")
        elif args.figure == "all":
            print(f"skipped {outcome.name}: {outcome.reason}", file=sys.stderr)
        else:
            print(f"error: figure {outcome.name!r}: {outcome.reason}", file=sys.stderr)
    return 0 if any(o.files for o in outcomes) else 2


if __name__ == "__main__":
    exit_with(main())
