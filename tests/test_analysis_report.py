"""The one-page report on a real sqlite MLflow store (the figures tests' store, ``analysis_store``).

Checks that every table is in both pages, that every figure file written is linked (the HTML is
parsed, not grepped), and that what cannot be made is noted with its reason instead of failing.
"""

from __future__ import annotations

from html.parser import HTMLParser

import analysis_store as st
import pytest
from analysis_store import store_cache, store_fixture  # noqa: F401 (fixtures)

from analysis import report
from analysis.figures import FigureOptions
from analysis.runs import load_runs

CPU = FigureOptions(device="cpu", progress=False)


class Page(HTMLParser):
    """Links, embedded images, tables and their cell texts of an HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links, self.images, self.tables, self.cells = [], [], 0, []
        self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs["href"]] if tag == "a" else []
        self.images += [attrs["src"]] if tag == "img" else []
        self.tables += tag == "table"
        self._in_cell = self._in_cell or tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in_cell = self._in_cell and tag not in ("td", "th")

    def handle_data(self, data):
        if self._in_cell and data.strip():
            self.cells.append(data.strip())


@pytest.mark.slow(reason="every figure, the class maps of trained models included")
def test_report_has_every_table_and_links_every_figure_file(store, tmp_path):
    out = tmp_path / "report"
    md_path, html_path = report.write_report(st.TRAINED, store.uri, out, options=CPU)
    md, page = md_path.read_text(), html_path.read_text()
    files = sorted(p.relative_to(out).as_posix() for p in (out / "figures").iterdir())
    assert files == [f"figures/{name}.{ext}"
                     for name in ("lambda", "maps", "matrices", "regions")
                     for ext in ("pdf", "png")]
    assert all((out / f).stat().st_size > 1000 for f in files)

    parsed = Page(page)
    for f in files:
        assert f"]({f})" in md  # every file linked from the Markdown
    assert sorted(parsed.links) == files  # …and from the HTML, nothing else
    assert len(parsed.images) == 4 and all(
        src.startswith("data:image/png;base64,") for src in parsed.images)  # self-contained

    runs = load_runs(st.TRAINED, store.uri).set_index("lambda_au")
    cl = {lam: f"{runs.loc[lam, 'test_cl']:.2f}" for lam in (0.0, 4.0)}
    for number in (1, 2, 3):
        assert f"**Table {number}.**" in md
    assert f"| CAM | {cl[0.0]} | {cl[4.0]} |" in md  # Table 1's row, one seed: plain values
    assert parsed.tables == 3
    assert ["CAM", cl[0.0], cl[4.0]] == parsed.cells[5:8]  # after Table 1's 5 headers
    assert "w/o AU" in parsed.cells and "5+4" in parsed.cells  # Table 3's rows

    # pareto: this experiment has no pareto sweep, which both pages say
    assert "non-dominated front marked**: not made (no finished trial of a 'pareto'" in md
    assert "not made (no finished trial of a &#x27;pareto&#x27;" in page
    for text in (md, page):
        assert st.TRAINED in text and "cccccccccccc" in text and "Generated" in text
        assert "Finished trials:** 2" in text or "Finished trials:</strong> 2" in text


def test_report_notes_tables_it_cannot_make_and_still_shows_the_figures(store, tmp_path):
    out = tmp_path / "report"
    assert report.main(["--experiment", st.SWEEPS, "--mlflow-uri", store.uri, "-o", str(out),
                        "--no-progress", "--device", "cpu"]) == 0
    md = (out / "index.md").read_text()
    # the λ=0 trials of both sweeps share seed 0: a table cell would mix two models
    for number in (1, 2, 3):
        assert f"**Table {number}.**" in md
    # Tables 1–4 (runs mix sweeps), and the figures that need the best run of each arm:
    # matrices, maps, regions
    assert md.count(": not made (") == 4 + 3
    assert "differing in sweep = ['lambda-1', 'pareto-1']; space = ['lambda', 'pareto']" in md
    parsed = Page((out / "index.html").read_text())
    assert parsed.tables == 0 and len(parsed.images) == 2
    assert sorted(parsed.links) == ["figures/lambda.pdf", "figures/lambda.png",
                                    "figures/pareto.pdf", "figures/pareto.png"]
    narrowed = tmp_path / "narrowed"
    report.write_report(st.SWEEPS, store.uri, narrowed, where=["space=lambda"],
                        figures=["lambda"], options=CPU)
    md = (narrowed / "index.md").read_text()
    # one sweep: its λ values are no longer mixed in a cell; the default selection compares
    # λ = 0 with the paper's λ = 4 at layer 5 and says so in the captions (analysis.defaults)
    assert "(w/ AU = cam: λ = 4 at layer 5, the paper's setting)" in md
    assert "(w/ AU: λ = 4 in every row)" in md and "mixes lambda_au" not in md
    assert "Selection:** --where space=lambda" in md and "Finished trials:** 12" in md


def test_report_unknown_experiment_is_an_error(store, tmp_path, capsys):
    assert report.main(["--experiment", "nope", "--mlflow-uri", store.uri,
                        "-o", str(tmp_path)]) == 2
    assert "no MLflow experiment 'nope'" in capsys.readouterr().err
