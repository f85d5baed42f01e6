"""The paper's figures from the MLflow runs of a sweep, as PNG and PDF.

    python -m analysis.figures --experiment NAME [--mlflow-uri URI] [--where KEY=VALUE ...] \\
        [--figure lambda|matrices|maps|pareto|all] [--format png,pdf] -o DIR

A figure is data (:class:`~analysis.figure_spec.FigureSpec` in ``FIGURES``, with the runs it is
given: ``analysis.figure_spec``) and a builder (``analysis.figure_builders``); this module writes
them and is the command line.

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
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.figure_builders import (  # noqa: F401  (registers the figures; their builders)
    lambda_figure,
    maps_figure,
    matrices_figure,
    pareto_figure,
    pareto_mask,
    regions_figure,
)
from analysis.figure_spec import (  # noqa: F401  (what a caller of the figures reads)
    FIGURES,
    FORMATS,
    FigureOptions,
    FigureSource,
    MissingRuns,
    load_selection,
)
from analysis.runs import add_source_args
from analysis.source import check_store
from fer_core.cli import UserError, cli_main, exit_with

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
