"""The report's "Shortcut cue" section (``analysis.shortcut``) from runs in a real sqlite MLflow
store written through MlflowClient (``analysis_store``'s helpers): one row per shortcut
probability × λ with mean and standard deviation over seeds, in every format; no section when
the runs carry no shortcut metrics."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pytest
from analysis_store import BASE, add_parent, add_trial, new_experiment
from mlflow import MlflowClient

from analysis import render, report
from analysis.runs import load_runs
from analysis.shortcut import COLUMNS, main, shortcut_table
from fer_core import metric_names as mn

SEEDS = (0, 1, 2)
CUED, PLAIN = "cued", "plain"
SPACE = dict(augment=False, shortcut_images=48, layers="5")
# (shortcut p, λ) → short name → values for seeds 0, 1, 2
ARMS = {
    (1.0, 0.0): {"acc_in_place": [99.0, 97.0, 98.0], "acc_removed": [40.0, 42.0, 41.0],
                 "follows": [80.0, 70.0, 75.0], "reliance": [0.5, 0.6, 0.4]},
    (1.0, 4.0): {"acc_in_place": [95.0, 90.0, 85.0], "acc_removed": [70.0, 72.0, 71.0],
                 "follows": [30.0, 20.0, 10.0], "reliance": [0.2, 0.1, 0.3]},
    (0.0, 0.0): {"acc_in_place": [60.0, 61.0, 62.0], "acc_removed": [60.0, 61.0, 62.0],
                 "follows": [1.0, 2.0, 3.0], "reliance": [0.0, 0.01, -0.01]},
    (0.0, 4.0): {"acc_in_place": [65.0, 66.0, 67.0], "acc_removed": [65.0, 66.0, 66.0],
                 "follows": [2.0, 2.0, 2.0], "reliance": [0.0, 0.0, 0.0]},
}
ATTRIBUTION = {"cam_mass_ratio": [3.0, 2.0, 1.0], "cam_pointing": [0.5, 0.25, 0.75],
               "att_l5_mass_ratio": [1.5, 1.25, 1.0], "rho": [0.4, 0.3, 0.2]}


class Cells(HTMLParser):
    """The texts of an HTML page's table cells."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cells, self._in = [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self._in = self._in or tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in = self._in and tag not in ("td", "th")

    def handle_data(self, data):
        if self._in and data.strip():
            self.cells.append(data.strip())


def fill(uri: str, root, repeat_seed: bool = False) -> None:
    client = MlflowClient(uri)
    exp = new_experiment(client, CUED, root)
    parent = add_parent(client, exp, "shortcut")
    for (p, lam), arm in ARMS.items():
        for i, seed in enumerate(SEEDS):
            values = {mn.shortcut_key(k): v[i] for k, v in {**arm, **ATTRIBUTION}.items()}
            values |= {"test_cl": 90.0, "best_val_cl": 90.0}
            flat = BASE | SPACE | {"shortcut": p, "lambda_au": lam, "seed": seed}
            add_trial(client, exp, parent, "shortcut", flat, values)
    exp = new_experiment(client, PLAIN, root)
    parent = add_parent(client, exp, "lambda")
    for lam in (0.0, 4.0):
        add_trial(client, exp, parent, "lambda", BASE | {"lambda_au": lam, "layers": "5"},
                  {"test_cl": 80.0, "best_val_cl": 80.0})


def expected(values: list[float], decimals: int) -> str:
    sd = float(np.std(values, ddof=1))  # computed here, not by analysis.shortcut
    return f"{np.mean(values):.{decimals}f} ± {sd:.{decimals}f} (n={len(values)})"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("shortcut-store")
    uri = f"sqlite:///{root}/mlflow.db"
    fill(uri, root)
    return uri


def test_report_has_a_shortcut_row_per_probability_and_lambda(store, tmp_path):
    md_path, html_path = report.write_report(CUED, store, tmp_path / "report", figures=[])
    md, page = md_path.read_text(), html_path.read_text()
    assert "## Shortcut cue" in md and "<h2>Shortcut cue</h2>" in page
    guided = ARMS[(1.0, 4.0)]
    row = ("| p = 1, λ = 4 | " + " | ".join([
        expected(guided["acc_in_place"], 1), expected(guided["acc_removed"], 1),
        expected(guided["follows"], 1), expected(guided["reliance"], 3),
        expected(ATTRIBUTION["cam_mass_ratio"], 2), expected(ATTRIBUTION["cam_pointing"], 2),
        expected(ATTRIBUTION["att_l5_mass_ratio"], 2), expected(ATTRIBUTION["rho"], 2)]) + " |")
    assert row in md
    for label in ("p = 0, λ = 0", "p = 0, λ = 4", "p = 1, λ = 0", "p = 1, λ = 4"):
        assert md.count(f"| {label} |") == 1
    cells = Cells(page).cells
    at = cells.index("p = 1, λ = 0")
    assert cells[at + 1] == expected(ARMS[(1.0, 0.0)]["acc_in_place"], 1)
    assert cells[at + 3] == expected(ARMS[(1.0, 0.0)]["follows"], 1)
    assert all(c.header in cells for c in COLUMNS)


def test_the_section_table_writes_as_latex_and_csv(store):
    table = shortcut_table(load_runs(CUED, store), CUED)
    assert table is not None and table.run_count == 12
    latex = render.latex(table)
    assert r"p = 0, $\lambda$ = 4" in latex and r"& $\rho$ \\" in latex
    assert expected(ARMS[(0.0, 4.0)]["acc_removed"], 1).replace("±", r"$\pm$") in latex
    csv = render.as_csv(table)
    assert "test_shortcut_att_l5_mass_ratio" not in csv  # the column names its pattern
    assert csv.count("\n") == 1 + 4 * len(COLUMNS)


def test_no_section_without_shortcut_metrics(store, tmp_path):
    assert shortcut_table(load_runs(PLAIN, store), PLAIN) is None
    md_path, html_path = report.write_report(PLAIN, store, tmp_path / "report", figures=[])
    assert "Shortcut cue" not in md_path.read_text()
    assert "Shortcut cue" not in html_path.read_text()


def test_a_row_that_mixes_runs_is_named_not_averaged(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    fill(uri, tmp_path)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(CUED).experiment_id
    parent = add_parent(client, exp, "shortcut")  # a second sweep repeats seed 0 of one arm
    add_trial(client, exp, parent, "shortcut",
              BASE | SPACE | {"shortcut": 1.0, "lambda_au": 4.0, "seed": 0},
              {mn.shortcut_key("reliance"): 0.9}, sweep="shortcut-2")
    (section,) = report.build_sections(load_runs(CUED, uri), CUED)
    assert section.table is None
    assert "'p = 1, λ = 4'" in section.reason and "seed 0" in section.reason
    assert "shortcut-2" in section.reason and "--where" in section.reason


def test_the_command_writes_the_table_alone_and_says_when_runs_lack_it(store, capsys):
    assert main(["--experiment", CUED, "--mlflow-uri", store, "--format", "latex",
                 "--where", "shortcut=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(r"\begin{table}") and out.count(r"p = 1, $\lambda$") == 2
    assert "p = 0," not in out  # --where kept the cued arms only
    assert main(["--experiment", PLAIN, "--mlflow-uri", store]) == 2
    err = capsys.readouterr().err
    assert f"no selected run of {PLAIN!r} has test_shortcut_reliance" in err
