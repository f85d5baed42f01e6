"""Table 4 (analysis.table4) from a real sqlite MLflow store holding known test_xai_* values."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from scipy import stats as sps

from analysis import render
from analysis.runs import load_runs
from analysis.table4 import RANDOM_LABEL, SPEC, UNRESOLVED, UNRESOLVED_NOTE, row_key, unresolved
from analysis.tables import TABLES, build_table, main
from fer_core.xai.names import METRICS
from tuner.tracking import schema as tr

EXPERIMENT = "xai-table"
SEEDS = (0, 1, 2)
T975_DF2 = 4.302652729911275

# (method, λ) -> metric -> values for seeds 0, 1, 2; "<m>_<control>" are the control maps',
# "<m>_ci95" the image-bootstrap half-widths (the metric's resolution).
ARMS = {
    ("cam", 0.0): {"deletion": [0.30, 0.32, 0.31], "insertion": [0.50, 0.52, 0.49],
                   "au_auc": [0.60, 0.62, 0.61],
                   "deletion_random": [0.40, 0.41, 0.42], "au_auc_random": [0.50, 0.49, 0.51],
                   "au_auc_centre": [0.70, 0.70, 0.70], "au_auc_au": [1.0, 1.0, 1.0],
                   "deletion_ci95": [0.01, 0.01, 0.01], "insertion_ci95": [0.20, 0.20, 0.20]},
    # AU guidance: deletion falls by 0.05/0.06/0.04 (p ≈ 0.01), AUC rises
    ("cam", 4.0): {"deletion": [0.25, 0.26, 0.27], "insertion": [0.55, 0.50, 0.51],
                   "au_auc": [0.80, 0.79, 0.82],
                   "deletion_random": [0.42, 0.43, 0.40], "au_auc_random": [0.50, 0.50, 0.52],
                   "au_auc_centre": [0.72, 0.72, 0.72], "au_auc_au": [1.0, 1.0, 1.0],
                   "deletion_ci95": [0.01, 0.01, 0.01], "insertion_ci95": [0.20, 0.20, 0.20]},
    ("gradcam", 0.0): {"deletion": [0.20, 0.22, 0.21], "insertion": [0.45, 0.46, 0.47],
                       "au_auc": [0.55, 0.56, 0.57],
                       "deletion_random": [0.44, 0.45, 0.46],
                       "au_auc_random": [0.48, 0.50, 0.49]},
    ("gradcam", 4.0): {"deletion": [0.28, 0.27, 0.29], "insertion": [0.44, 0.45, 0.43],
                       "au_auc": [0.70, 0.71, 0.69],
                       "deletion_random": [0.38, 0.39, 0.40],
                       "au_auc_random": [0.51, 0.49, 0.50]},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(EXPERIMENT)
    parent = client.create_run(exp_id, tags={tr.TAG_ROLE: tr.ROLE_PARENT, tr.TAG_SWEEP: "s1"})
    for (method, lam), metrics in ARMS.items():
        for i, seed in enumerate(SEEDS):
            tags = {tr.TAG_PARENT: parent.info.run_id, tr.TAG_ROLE: tr.ROLE_TRIAL,
                    tr.TAG_SWEEP: "s1", tr.TAG_ARM: f"method={method}, lambda_au={lam}",
                    tr.TAG_GIT_COMMIT: "d" * 40, tr.TAG_EARLY_STOPPED: "false",
                    tr.TAG_TUNE_STATUS: "TERMINATED"}
            run = client.create_run(exp_id, tags=tags)
            flat = {"method": method, "backbone": "resnet18", "lambda_au": lam, "layers": "5",
                    "seed": seed}
            values = {f"test_xai_{k}": v[i] for k, v in metrics.items()} | {"test_cl": 70.0}
            client.log_batch(run.info.run_id,
                             params=[Param(k, v) for k, v in tr.param_values(flat).items()],
                             metrics=[Metric(k, v, 0, 2) for k, v in values.items()])
            client.set_terminated(run.info.run_id)
    client.set_terminated(parent.info.run_id)
    return uri


@pytest.fixture(scope="module")
def table(store):
    return build_table(load_runs(EXPERIMENT, store), TABLES[4], EXPERIMENT)


def test_table4_is_registered_with_every_metric_in_both_arms():
    assert TABLES[4] is SPEC
    assert [c.metric for c in SPEC.columns] == [m.key for m in METRICS for _ in (0, 1)]
    assert [c.with_au for c in SPEC.columns[:2]] == [False, True]


def test_rows_are_method_and_metric_columns_are_arms_and_controls(table):
    assert table.rows == [row_key(m, metric.name) for m in ("cam", "gradcam") for metric in METRICS]
    assert [c.header for c in table.spec.columns] == ["w/o AU", "w/ AU", "Random map",
                                                      "Centred Gaussian", "AU map"]
    key = row_key("cam", "deletion")
    assert table.label(key).startswith("CAM · Deletion AUC ↓")
    cell = table.cells[(key, "w/ AU")]
    values = np.array(ARMS[("cam", 4.0)]["deletion"])
    assert cell.estimate.mean == pytest.approx(values.mean())
    assert cell.estimate.half_width == pytest.approx(T975_DF2 * values.std(ddof=1) / math.sqrt(3))
    before = np.array(ARMS[("cam", 0.0)]["deletion"])
    assert cell.test.p_value == pytest.approx(sps.ttest_rel(values, before).pvalue)
    # Deletion: lower is better, so the AU-guided arm is bold.
    assert cell.best and not table.cells[(key, "w/o AU")].best
    # A control: per seed the mean over the method's runs of both arms.
    chance = table.cells[(key, RANDOM_LABEL)]
    per_seed = (np.array(ARMS[("cam", 0.0)]["deletion_random"])
                + np.array(ARMS[("cam", 4.0)]["deletion_random"])) / 2
    assert chance.by_seed == pytest.approx(dict(enumerate(per_seed)))
    assert chance.test is None and not chance.best
    assert table.cells[(row_key("cam", "au_auc"), "AU map")].estimate.mean == 1.0
    assert table.cells[(row_key("cam", "au_auc"), "Centred Gaussian")].estimate.mean \
        == pytest.approx(0.71)
    # A metric no run logged prints "--" (n = 0), in arm and control columns alike.
    assert table.cells[(row_key("cam", "road"), "w/ AU")].estimate.n == 0
    assert table.cells[(row_key("cam", "road"), "AU map")].estimate.n == 0


def test_rows_that_cannot_separate_the_arms_are_marked(table):
    # Deletion moves by 0.05 against a resolution of 0.01/√3 per arm: resolved.
    assert not table.label(row_key("cam", "deletion")).endswith(UNRESOLVED)
    # Insertion moves by 0.017 against 0.2/√3 per arm: within the resolution.
    assert table.label(row_key("cam", "insertion")).endswith(UNRESOLVED)
    # No resolution logged (GradCAM): no mark either way.
    assert not table.label(row_key("gradcam", "insertion")).endswith(UNRESOLVED)
    assert unresolved(table) == ["test_xai_insertion"]


def test_table4_renders_narrow_in_every_format(table):
    md = render.markdown(table)
    assert "**Table 4.**" in md and "| CAM · Deletion AUC ↓ |" in md
    assert all(line.count(" | ") == 5 for line in md.splitlines() if line.startswith("| CAM"))
    assert UNRESOLVED_NOTE in md
    latex = render.latex(table)
    assert r"\begin{tabular}{lccccc}" in latex and r"$\downarrow$" in latex
    assert "↓" not in latex and "†" not in latex
    html = render.html_table(table)
    assert "<th>CAM · AU AUC ↑</th>" in html and "<th>Centred Gaussian</th>" in html
    rows = list(csv.DictReader(io.StringIO(render.as_csv(table))))
    assert len(rows) == len(table.rows) * 5
    random_rows = [r for r in rows if r["column"] == RANDOM_LABEL]
    assert len(random_rows) == len(table.rows) and random_rows[0]["p_value"] == ""


def test_cli_writes_table4(store, tmp_path):
    out = tmp_path / "t4.md"
    assert main(["--experiment", EXPERIMENT, "--mlflow-uri", store, "--table", "4",
                 "--format", "md", "-o", str(out)]) == 0
    assert "Random map" in out.read_text()


def test_a_default_selection_note_keeps_table4_finished(store, monkeypatch):
    # The caption's note (which AU-guided setting the w/ AU cells show) is added to the spec of
    # the finished table: Table 4's own columns, not the generic metric × arm ones.
    from analysis import tables

    monkeypatch.setitem(tables.TABLE_DEFAULTS, 4, lambda runs: (runs, "λ = 4 at layer 5"))
    finished = tables.default_table(load_runs(EXPERIMENT, store), 4, EXPERIMENT)
    assert finished.spec.title.endswith("(λ = 4 at layer 5)")
    md = render.markdown(finished)
    assert "| CAM · Deletion AUC ↓" in md and "Random map" in md
