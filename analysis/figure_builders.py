"""The figures' builders (what each shows: ``analysis.figures``), registered by name in
``analysis.figure_spec.FIGURES``. Matplotlib's object API only (no pyplot); matplotlib, MLflow
and torch are imported by the builder that draws."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.defaults import lambda_curve
from analysis.figure_spec import (
    SPACE,
    FigureSource,
    MissingRuns,
    best_runs,
    check_one_setting,
    describe,
    register,
)
from analysis.stats import CONFIDENCE, estimate
from fer_core import metric_names as mn
from tuner.tracking import schema as tr

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from mlflow import MlflowClient

LAMBDA_PANELS = ((mn.TEST_CL, "CL (%)"), (mn.TEST_CAM_COS, "CAM-COS"),
                 (mn.TEST_ATT_COS, "ATT-COS"))
PARETO_AXES = ((mn.TEST_ATT_COS, "ATT-COS (test)"), (mn.TEST_CL, "CL (%, test)"))
"""(x, y) of the Pareto figure; both maximised."""


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
