"""One page with every table and figure of an experiment: ``index.md`` and ``index.html``.

    python -m analysis.report --experiment NAME [--mlflow-uri URI] [--where KEY=VALUE ...] \\
        -o report/

Tables 1–4 come from ``analysis.tables`` (Markdown and HTML through ``analysis.render``), the
sections of ``analysis.sections`` (e.g. "Shortcut cue", present when the runs carry its
metrics) follow them, figures from ``analysis.figures`` into ``report/figures/`` as PNG and
PDF. A table or figure that cannot be made is listed with the reason instead of stopping the
report. The HTML is self-contained (figures embedded as PNG data, no external assets); it also
links the figure files. Provenance: experiment, tracking URI, run count, the runs' git commits,
the sweeps, the report's own commit and the generation time.
"""

from __future__ import annotations

import argparse
import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import analysis.shortcut  # noqa: F401  (registers the "Shortcut cue" section)
from analysis import render
from analysis.figures import FIGURES, FigureOptions, FigureSource, Outcome, load_selection
from analysis.figures import make_figures as _make_figures
from analysis.runs import add_source_args
from analysis.sections import SECTIONS
from analysis.source import check_store
from analysis.tables import TABLES, Table, default_table
from fer_core.cli import UserError, cli_main, exit_with
from tuner.tracking.provenance import git_commit
from tuner.tracking.redact import redact

if TYPE_CHECKING:
    import pandas as pd

FIGURE_DIR = "figures"
FIGURE_FORMATS = ("png", "pdf")


@dataclass(frozen=True)
class TableResult:
    """Table ``number``: built, or the reason it is absent."""

    number: int
    title: str
    table: Table | None = None
    reason: str = ""


@dataclass(frozen=True)
class Provenance:
    experiment: str
    tracking_uri: str
    runs: int
    commits: tuple[str, ...]
    sweeps: tuple[str, ...]
    where: tuple[str, ...]
    generated: str
    code: str

    def lines(self) -> list[tuple[str, str]]:
        return [("Experiment", self.experiment), ("Tracking URI", redact(self.tracking_uri)),
                ("Finished trials", str(self.runs)),
                ("Sweeps", ", ".join(self.sweeps) or "none"),
                ("Selection", " ".join(f"--where {w}" for w in self.where) or "all runs"),
                ("Runs' git commits", ", ".join(c[:12] for c in self.commits) or "not recorded"),
                ("Report code", self.code), ("Generated", self.generated)]


def build_tables(runs: pd.DataFrame, experiment: str) -> list[TableResult]:
    """Every table in ``analysis.tables.TABLES`` over its default selection
    (``analysis.tables.default_table``); a table that cannot be made says why."""
    results = []
    for number, spec in TABLES.items():
        if runs.empty:
            results.append(TableResult(number, spec.title, reason="no finished trials"))
            continue
        try:
            results.append(TableResult(number, spec.title, default_table(runs, number,
                                                                         experiment)))
        except UserError as err:  # an arm is absent, or a cell would mix models: names the fix
            results.append(TableResult(number, spec.title, reason=str(err)))
    return results


@dataclass(frozen=True)
class SectionResult:
    """A section whose runs are present: its table, or the reason it could not be made."""

    title: str
    table: Table | None = None
    reason: str = ""


def build_sections(runs: pd.DataFrame, experiment: str) -> list[SectionResult]:
    """Every registered section the runs carry metrics for (``analysis.sections``)."""
    results = []
    for name in SECTIONS:
        section = SECTIONS.get(name)
        try:
            table = section.build(runs, experiment)
        except UserError as err:  # its runs would mix models: names the fix
            results.append(SectionResult(section.title, reason=str(err)))
            continue
        if table is not None:
            results.append(SectionResult(section.title, table))
    return results


def _relative(path: Path, out: Path) -> str:
    return path.relative_to(out).as_posix()


def markdown_page(prov: Provenance, tables: Sequence[TableResult],
                  figures: Sequence[Outcome], out: Path,
                  sections: Sequence[SectionResult] = ()) -> str:
    lines = [f"# Report: {prov.experiment}", ""]
    lines += [f"- **{k}:** {v}" for k, v in prov.lines()] + ["", "## Tables", ""]
    for result in tables:
        if result.table is None:
            lines += [f"**Table {result.number}.** {result.title}: not made ({result.reason})", ""]
        else:
            lines += [render.markdown(result.table), ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += ([render.markdown(section.table), ""] if section.table is not None
                  else [f"Not made ({section.reason})", ""])
    lines += ["## Figures", ""]
    for outcome in figures:
        title = FIGURES.get(outcome.name).title
        if not outcome.files:
            lines += [f"**{title}**: not made ({outcome.reason})", ""]
            continue
        png = next((f for f in outcome.files if f.suffix == ".png"), None)
        links = " · ".join(f"[{f.suffix[1:].upper()}]({_relative(f, out)})"
                           for f in outcome.files)
        lines += [f"**{title}** ({links})", ""]
        if png is not None:
            lines += [f"![{title}]({_relative(png, out)})", ""]
    return "\n".join(lines)


STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:4px 8px}
caption{text-align:left;margin-bottom:4px}.note{font-size:85%;color:#444}
.missing{color:#a33}img{max-width:100%;border:1px solid #ddd}"""


def html_page(prov: Provenance, tables: Sequence[TableResult],
              figures: Sequence[Outcome], out: Path,
              sections: Sequence[SectionResult] = ()) -> str:
    esc = html.escape
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Report: "
             f"{esc(prov.experiment)}</title><style>{STYLE}</style></head><body>",
             f"<h1>Report: {esc(prov.experiment)}</h1>", "<ul>"]
    parts += [f"<li><strong>{esc(k)}:</strong> {esc(v)}</li>" for k, v in prov.lines()]
    parts += ["</ul>", "<h2>Tables</h2>"]
    for result in tables:
        if result.table is None:
            parts.append(f'<p class="missing"><strong>Table {result.number}.</strong> '
                         f"{esc(result.title)}: not made ({esc(result.reason)})</p>")
        else:
            parts.append(render.html_table(result.table))
    for section in sections:
        parts.append(f"<h2>{esc(section.title)}</h2>")
        parts.append(render.html_table(section.table) if section.table is not None
                     else f'<p class="missing">Not made ({esc(section.reason)})</p>')
    parts.append("<h2>Figures</h2>")
    for outcome in figures:
        title = esc(FIGURES.get(outcome.name).title)
        if not outcome.files:
            parts.append(f'<p class="missing"><strong>{title}</strong>: not made '
                         f"({esc(outcome.reason)})</p>")
            continue
        links = " · ".join(f'<a href="{esc(_relative(f, out))}">{f.suffix[1:].upper()}</a>'
                           for f in outcome.files)
        parts.append(f"<figure><figcaption><strong>{title}</strong> ({links})</figcaption>")
        png = next((f for f in outcome.files if f.suffix == ".png"), None)
        if png is not None:  # embedded: the page stands alone without the figures folder
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            parts.append(f'<img alt="{title}" src="data:image/png;base64,{data}">')
        parts.append("</figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(experiment: str, tracking_uri: str | None, out: Path,
                 where: Sequence[str] = (), figures: Sequence[str] | None = None,
                 options: FigureOptions | None = None) -> tuple[Path, Path]:
    """Build every table and figure of ``experiment`` into ``out``; (index.md, index.html)."""
    import mlflow

    runs = load_selection(experiment, tracking_uri, where)
    source = FigureSource(experiment, tracking_uri, runs, options or FigureOptions())
    names = list(figures) if figures is not None else FIGURES.names()
    out.mkdir(parents=True, exist_ok=True)
    outcomes = _make_figures(source, names, out / FIGURE_DIR, FIGURE_FORMATS)
    prov = Provenance(
        experiment, tracking_uri or mlflow.get_tracking_uri(), len(runs),
        tuple(sorted({c for c in runs["git_commit"] if c})),
        tuple(sorted({s for s in runs["sweep"] if s})), tuple(where),
        datetime.now(UTC).isoformat(timespec="seconds"), git_commit())
    tables = build_tables(runs, experiment)
    sections = build_sections(runs, experiment)
    md, page = out / "index.md", out / "index.html"
    md.write_text(markdown_page(prov, tables, outcomes, out, sections), encoding="utf-8")
    page.write_text(html_page(prov, tables, outcomes, out, sections), encoding="utf-8")
    return md, page


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.report",
                                description=__doc__.split("\n")[0])
    add_source_args(p)
    p.add_argument("--figure", action="append", choices=FIGURES.names(), default=None,
                   help="only these figures (repeatable; default: all)")
    p.add_argument("--data-root", default=None, help="maps: the data's folder on this machine")
    p.add_argument("--device", default="auto", help="maps: auto, cpu, cuda ...")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-o", "--output", type=Path, default=Path("report"))
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    check_store(args.mlflow_uri)
    options = FigureOptions(data_root=args.data_root, device=args.device,
                            progress=not args.no_progress)
    md, page = write_report(args.experiment, args.mlflow_uri, args.output, args.where,
                            args.figure, options)
    print(f"wrote {md} and {page}")
    return 0


if __name__ == "__main__":
    exit_with(main())
