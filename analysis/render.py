"""A built table (``analysis.tables.Table``) as Markdown, LaTeX, HTML or CSV text.

Markdown, LaTeX and HTML are for reading: a caption, the table, a footnote with the test's marks and
p-values, and a provenance line (experiment, run count, git commits). CSV is for machines: one
line per cell with full-precision numbers (mean, CI half-width, n, p-value, mark, best) and the
provenance repeated on every line, so the file stands alone.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from analysis.stats import CONFIDENCE, significance_mark

if TYPE_CHECKING:
    from analysis.table_spec import Cell, Column, Table

MISSING = "--"
TEST_NOTE = "paired t-test of w/ AU against {reference} on matching seeds"


def value_text(cell: Cell, column: Column, plus_minus: str = "±") -> str:
    """``--``, a plain value (one seed), or ``mean ± half-width (n=K)``."""
    est = cell.estimate
    d = column.decimals if cell.decimals is None else cell.decimals
    if est.n == 0:
        return MISSING
    if est.n == 1:
        return f"{est.mean:.{d}f}"
    return f"{est.mean:.{d}f} {plus_minus} {est.half_width:.{d}f} (n={est.n})"


def mark(cell: Cell) -> str:
    return significance_mark(cell.test.p_value) if cell.test is not None else ""


def _p_text(p_value: float) -> str:
    return "n/a (identical differences)" if math.isnan(p_value) else f"{p_value:.3g}"


def provenance(table: Table) -> str:
    commits = ", ".join(c[:12] for c in table.commits) or "not recorded"
    return (f"Source: MLflow experiment {table.experiment!r}, {table.run_count} runs, "
            f"git commit(s): {commits}.")


def footnotes(table: Table) -> list[str]:
    """The test legend and every p-value (empty when no cell was tested)."""
    reference = "the w/o AU row" if table.spec.baseline_row else "w/o AU"
    tested = [(row, col, c.test) for (row, col), c in table.cells.items() if c.test is not None]
    if not tested:
        return list(table.spec.notes)
    values = "; ".join(f"{table.label(row)} {col}: p = {_p_text(t.p_value)} (n={t.n})"
                       for row, col, t in tested)
    return [f"* p < 0.05, ** p < 0.01: {TEST_NOTE.format(reference=reference)}; "
            f"intervals are {CONFIDENCE:.0%} Student-t.", *table.spec.notes,
            f"p-values: {values}."]


def markdown(table: Table) -> str:
    spec = table.spec
    lines = [f"**Table {spec.number}.** {spec.title}", "",
             "| " + " | ".join([spec.row_header] + [c.header for c in spec.columns]) + " |",
             "|" + "---|" * (len(spec.columns) + 1)]
    for row in table.rows:
        cells = []
        for column in spec.columns:
            cell = table.cells[(row, column.header)]
            text = value_text(cell, column)
            text = f"**{text}**" if cell.best else text
            cells.append(text + mark(cell).replace("*", r"\*"))
        lines.append("| " + " | ".join([table.label(row)] + cells) + " |")
    notes = [n.replace("*", r"\*") for n in footnotes(table)] + [provenance(table)]
    return "\n".join(lines + [""] + notes) + "\n"


LATEX_SYMBOLS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "†": r"$^\dagger$",
                 "·": r"$\cdot$", "ρ": r"$\rho$", "λ": r"$\lambda$"}
"""Characters of table labels that pdflatex does not take as text."""


def _latex_escape(text: str) -> str:
    for char in "\\&%$#_{}":
        text = text.replace(char, "\\" + char)
    for char, command in LATEX_SYMBOLS.items():
        text = text.replace(char, command)
    return text


def latex(table: Table) -> str:
    spec = table.spec
    lines = [r"\begin{table}[t]", r"\centering",
             rf"\caption{{{_latex_escape(spec.title)}. {_latex_escape(provenance(table))}}}",
             rf"\label{{tab:table{spec.number}}}",
             r"\begin{tabular}{l" + "c" * len(spec.columns) + "}", r"\hline",
             " & ".join(_latex_escape(h) for h in [spec.row_header]
                        + [c.header for c in spec.columns]) + r" \\", r"\hline"]
    for row in table.rows:
        cells = []
        for column in spec.columns:
            cell = table.cells[(row, column.header)]
            text = value_text(cell, column, plus_minus=r"$\pm$")
            text = rf"\textbf{{{text}}}" if cell.best else text
            cells.append(text + (f"$^{{{mark(cell)}}}$" if mark(cell) else ""))
        lines.append(" & ".join([_latex_escape(table.label(row))] + cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    lines += [rf"\par\footnotesize {_latex_escape(n)}" for n in footnotes(table)]
    return "\n".join(lines + [r"\end{table}"]) + "\n"


def html_table(table: Table) -> str:
    """The table as HTML, with the cell texts, marks and notes of the Markdown rendering."""
    spec = table.spec
    head = "".join(f"<th>{html.escape(h)}</th>"
                   for h in [spec.row_header] + [c.header for c in spec.columns])
    body = []
    for row in table.rows:
        cells = [f"<th>{html.escape(table.label(row))}</th>"]
        for column in spec.columns:
            cell = table.cells[(row, column.header)]
            text = html.escape(value_text(cell, column)) + html.escape(mark(cell))
            cells.append(f"<td>{f'<strong>{text}</strong>' if cell.best else text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    notes = [*footnotes(table), provenance(table)]
    return (f"<table>\n<caption><strong>Table {spec.number}.</strong> "
            f"{html.escape(spec.title)}</caption>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
            + "\n".join(body) + "\n</tbody>\n</table>\n"
            + "".join(f'<p class="note">{html.escape(n)}</p>\n' for n in notes))


CSV_FIELDS = ("table", "row", "column", "metric", "with_au", "mean", "ci95_half_width", "n",
              "p_value", "mark", "best", "experiment", "runs", "git_commits")


def as_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        for column in table.spec.columns:
            cell = table.cells[(row, column.header)]
            est = cell.estimate
            writer.writerow({
                "table": table.spec.number, "row": table.label(row), "column": column.header,
                "metric": column.metric,
                "with_au": table.with_au(row, column),
                "mean": "" if est.n == 0 else repr(est.mean),
                "ci95_half_width": "" if est.n < 2 else repr(est.half_width), "n": est.n,
                "p_value": "" if cell.test is None else repr(cell.test.p_value),
                "mark": mark(cell), "best": cell.best, "experiment": table.experiment,
                "runs": table.run_count, "git_commits": " ".join(table.commits),
            })
    return out.getvalue()


FORMATS: dict[str, Callable[[Table], str]] = {
    "md": markdown, "latex": latex, "csv": as_csv, "html": html_table,
}
