"""Tables 1–3 from a real sqlite MLflow store filled through MlflowClient with known values.

Expected means and intervals are computed here with numpy and the tabulated t quantile
(t_{0.975, 2} = 4.302652729911275), independently of ``analysis.stats``.
"""

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
from analysis.tables import TABLES, Table, build_table, main, method_rows, select
from tuner.tracking import schema as tr

EXPERIMENT = "paper-tables"
T975_DF2 = 4.302652729911275
COMMIT_CAM, COMMIT_GPP = "a" * 40, "b" * 40
SEEDS = (0, 1, 2)

# (method, lambda_au, layers) -> metric -> values for seeds 0, 1, 2
ARMS = {
    ("cam", 0.0, "5"): {"test_cl": [80.0, 81.0, 82.5], "test_cam_cos": [0.50, 0.52, 0.55],
                        "test_att_cos": [0.40, 0.45, 0.41]},
    # CL gains 5.0/5.1/4.9 (p < 0.01), CAM-COS 0.10/0.20/0.15 (p ≈ 0.035), ATT-COS not significant
    ("cam", 4.0, "5"): {"test_cl": [85.0, 86.1, 87.4], "test_cam_cos": [0.60, 0.72, 0.70],
                        "test_att_cos": [0.70, 0.25, 0.51]},
    ("cam", 4.0, "5+4"): {"test_cl": [83.0, 84.0, 84.2], "test_cam_cos": [0.65, 0.66, 0.69],
                          "test_att_cos": [0.60, 0.62, 0.64]},
    # GradCAM++ has no w/ AU arm: its cells must print "--"
    ("gradcampp", 0.0, "5"): {"test_cl": [84.0, 84.5, 83.0], "test_cam_cos": [0.58, 0.60, 0.61],
                              "test_att_cos": [0.50, 0.52, 0.49]},
}


def _child(client, exp_id, parent_id, method, lam, layers, seed, metrics, *, status="FINISHED",
           early=False, backbone="resnet18"):
    commit = COMMIT_CAM if method == "cam" else COMMIT_GPP
    tags = {tr.TAG_PARENT: parent_id, tr.TAG_ROLE: tr.ROLE_TRIAL, tr.TAG_SWEEP: "s1",
            tr.TAG_ARM: f"method={method}, lambda_au={lam}", tr.TAG_GIT_COMMIT: commit,
            tr.TAG_EARLY_STOPPED: str(early).lower(), tr.TAG_TUNE_STATUS: "TERMINATED"}
    run = client.create_run(exp_id, tags=tags)
    flat = {"method": method, "backbone": backbone, "lambda_au": lam, "layers": layers,
            "seed": seed, "amp": True, "pretrained": None, "lr": 0.002}
    # one batch per run keeps the fixture fast on a loaded machine
    client.log_batch(
        run.info.run_id,
        params=[Param(k, v) for k, v in tr.param_values(flat).items()],
        metrics=[Metric("val_cl", 50.0, 0, 0)] + [Metric(k, v, 0, 2) for k, v in metrics.items()],
    )
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(EXPERIMENT)
    parent = client.create_run(exp_id, tags={tr.TAG_ROLE: tr.ROLE_PARENT, tr.TAG_SWEEP: "s1"})
    for (method, lam, layers), metrics in ARMS.items():
        for i, seed in enumerate(SEEDS):
            _child(client, exp_id, parent.info.run_id, method, lam, layers, seed,
                   {k: v[i] for k, v in metrics.items()} | {"best_val_cl": 60.0})
    ids = {
        # a failed trial with a far-off value: including it would move the CAM w/ AU mean
        "failed": _child(client, exp_id, parent.info.run_id, "cam", 4.0, "5", 3,
                         {"test_cl": 10.0}, status="FAILED"),
        # ASHA stopped it: FINISHED, tagged early_stopped, no test metrics
        "early": _child(client, exp_id, parent.info.run_id, "cam", 4.0, "5", 4, {},
                        early=True),
    }
    client.set_terminated(parent.info.run_id)
    return uri, ids


# ---------------------------------------------------------------- expected values, by numpy
def mean_ci(values):
    a = np.asarray(values)
    return a.mean(), T975_DF2 * a.std(ddof=1) / math.sqrt(a.size)


def p_paired(before, after):
    d = np.asarray(after) - np.asarray(before)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    return 2 * sps.t.sf(abs(t), d.size - 1)


def text(values, decimals=2, pm="±"):
    m, h = mean_ci(values)
    return f"{m:.{decimals}f} {pm} {h:.{decimals}f} (n={len(values)})"


def mark_for(p):
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


W0, W4, W54, G0 = (ARMS[k] for k in ARMS)


# ---------------------------------------------------------------- runs
def test_load_runs_schema_and_exclusions(store):
    uri, ids = store
    runs = load_runs(EXPERIMENT, uri)
    assert len(runs) == 12  # 4 arms × 3 seeds, no parent, no failed, no early-stopped
    assert not {ids["failed"], ids["early"]} & set(runs["run_id"])
    assert list(runs.columns[:9]) == ["run_id", "status", "early_stopped", "arm", "sweep",
                                      "space", "git_commit", "seed", "with_au"]
    assert runs["seed"].dtype.kind == "i" and runs["lambda_au"].dtype.kind == "f"
    assert runs["amp"].map(type).eq(bool).all() and runs["pretrained"].isna().all()
    assert set(runs["layers"]) == {"5", "5+4"}  # layer sets stay labels
    assert runs["with_au"].sum() == 6
    assert {"test_cl", "test_cam_cos", "test_att_cos", "best_val_cl"} <= set(runs.columns)
    assert "val_cl" not in runs.columns

    everything = load_runs(EXPERIMENT, uri, include_failed=True, include_early_stopped=True)
    assert len(everything) == 14
    assert set(everything.loc[everything["run_id"] == ids["failed"], "status"]) == {"FAILED"}
    early = everything[everything["run_id"] == ids["early"]]
    assert early["early_stopped"].item() and math.isnan(early["test_cl"].item())
    assert len(load_runs(EXPERIMENT, uri, include_failed=True)) == 13


def test_unknown_experiment_names_the_existing_ones(store):
    with pytest.raises(ValueError, match=EXPERIMENT):
        load_runs("nope", store[0])


# ---------------------------------------------------------------- Table 1
def _table(store, number, where):
    runs = select(load_runs(EXPERIMENT, store[0]), where)
    return build_table(runs, TABLES[number], EXPERIMENT)


def test_cells_mixing_layer_sets_are_an_error_not_an_average(store):
    with pytest.raises(ValueError, match="layers"):
        _table(store, 1, [])
    # Table 3's w/o AU row would pool both methods' baselines: named, not averaged
    with pytest.raises(ValueError, match=r"method = \['cam', 'gradcampp'\]"):
        _table(store, 3, [])


def test_table1_markdown(store):
    md = render.markdown(_table(store, 1, ["layers=5"]))
    lines = md.splitlines()
    p_cl = p_paired(W0["test_cl"], W4["test_cl"])
    p_cos = p_paired(W0["test_cam_cos"], W4["test_cam_cos"])
    assert mark_for(p_cl) == "**" and mark_for(p_cos) == "*"
    cam = (f"| CAM | {text(W0['test_cl'])} | {text(W4['test_cl'])}\\*\\* | "
           f"{text(W0['test_cam_cos'])} | {text(W4['test_cam_cos'])}\\* |")
    # GradCAM++ w/o AU has the higher CL and CAM-COS (bold); its w/ AU arm is missing
    gpp = (f"| GradCAM++ | **{text(G0['test_cl'])}** | -- | **{text(G0['test_cam_cos'])}** "
           f"| -- |")
    assert lines[0].startswith("**Table 1.**")
    assert lines[2] == "| Method | CL w/o AU | CL w/ AU | CAM-COS w/o AU | CAM-COS w/ AU |"
    assert lines[4:6] == [cam, gpp]  # paper order: CAM before GradCAM++
    assert f"CAM CL w/ AU: p = {p_cl:.3g} (n=3)" in md
    assert f"CAM CAM-COS w/ AU: p = {p_cos:.3g} (n=3)" in md
    assert (f"Source: MLflow experiment '{EXPERIMENT}', 9 runs, git commit(s): "
            f"{COMMIT_CAM[:12]}, {COMMIT_GPP[:12]}.") in md


def test_table1_latex_and_csv(store):
    table = _table(store, 1, ["layers=5"])
    tex = render.latex(table)
    pm = r"$\pm$"
    assert (f"CAM & {text(W0['test_cl'], pm=pm)} & "
            f"{text(W4['test_cl'], pm=pm)}$^{{**}}$ & ") in tex
    assert f"GradCAM++ & \\textbf{{{text(G0['test_cl'], pm=pm)}}} & -- & " in tex
    assert r"\caption{" in tex and "9 runs" in tex

    rows = {(r["row"], r["column"]): r for r in csv.DictReader(io.StringIO(render.as_csv(table)))}
    cell = rows[("CAM", "CAM-COS w/ AU")]
    m, h = mean_ci(W4["test_cam_cos"])
    assert math.isclose(float(cell["mean"]), m) and math.isclose(float(cell["ci95_half_width"]), h)
    assert math.isclose(float(cell["p_value"]), p_paired(W0["test_cam_cos"], W4["test_cam_cos"]))
    assert cell["mark"] == "*" and cell["n"] == "3" and cell["with_au"] == "True"
    missing = rows[("GradCAM++", "CL w/ AU")]
    assert missing["mean"] == "" and missing["n"] == "0"
    assert rows[("GradCAM++", "CL w/o AU")]["best"] == "True"


def test_single_seed_prints_plain_values_without_tests(store):
    md = render.markdown(_table(store, 1, ["layers=5", "seed=0"]))
    assert (f"| CAM | {W0['test_cl'][0]:.2f} | {W4['test_cl'][0]:.2f} | "
            f"{W0['test_cam_cos'][0]:.2f} | {W4['test_cam_cos'][0]:.2f} |") in md
    assert "±" not in md and "p-values" not in md


# ---------------------------------------------------------------- Tables 2 and 3
def test_table2_att_cos_not_significant(store):
    md = render.markdown(_table(store, 2, ["layers=5"]))
    p = p_paired(W0["test_att_cos"], W4["test_att_cos"])
    assert p > 0.05
    best_wo = max(np.mean(W0["test_att_cos"]), np.mean(G0["test_att_cos"]))
    assert math.isclose(best_wo, np.mean(G0["test_att_cos"]))
    assert f"| CAM | {text(W0['test_att_cos'])} | {text(W4['test_att_cos'])} |" in md
    assert f"| GradCAM++ | **{text(G0['test_att_cos'])}** | -- |" in md


def test_table3_layer_sets_against_the_baseline_row(store):
    table = _table(store, 3, ["method=cam"])
    md = render.markdown(table)
    lines = md.splitlines()
    assert lines[2] == "| Layers | CL | CAM-COS |"
    p = {k: p_paired(W0["test_cl"], v["test_cl"]) for k, v in (("5", W4), ("5+4", W54))}
    q = {k: p_paired(W0["test_cam_cos"], v["test_cam_cos"]) for k, v in (("5", W4), ("5+4", W54))}
    def shown(arm, metric):
        return round(float(np.mean(arm[metric])), 2)

    # best as printed (2 decimals): both layer sets read 0.67 CAM-COS, so both are bold
    best = {m: max(shown(a, m) for a in (W0, W4, W54)) for m in ("test_cl", "test_cam_cos")}
    assert shown(W4, "test_cam_cos") == shown(W54, "test_cam_cos") == best["test_cam_cos"]

    def cell(key, arm, metric, marks):
        body = text(arm[metric])
        bold = shown(arm, metric) == best[metric]
        return (f"**{body}**" if bold else body) + mark_for(marks[key]).replace("*", "\\*")

    assert lines[4] == f"| w/o AU | {text(W0['test_cl'])} | {text(W0['test_cam_cos'])} |"
    assert lines[5] == (f"| 5 | {cell('5', W4, 'test_cl', p)} | "
                        f"{cell('5', W4, 'test_cam_cos', q)} |")
    assert lines[6] == (f"| 5+4 | {cell('5+4', W54, 'test_cl', p)} | "
                        f"{cell('5+4', W54, 'test_cam_cos', q)} |")
    assert f"git commit(s): {COMMIT_CAM[:12]}." in md and "9 runs" in md
    tex = render.latex(table)
    assert r"5+4 & " in tex and r"w/o AU & " in tex


def test_a_study_makes_table3_over_its_baseline_method_when_methods_bring_own_backbones(
        tmp_path):
    # A study's Tables 1–2 hold methods with their own networks (TS-CAM on a DeiT): Table 3's
    # w/o AU row would mix them over the whole experiment, so the study makes it over the
    # baseline method's runs, whichever field the refusal names first.
    from analysis.figures import load_selection
    from analysis.report import build_tables
    from tuner.study.report import narrowed_tables

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("study")
    parent = client.create_run(exp_id, tags={tr.TAG_ROLE: tr.ROLE_PARENT, tr.TAG_SWEEP: "s1"})
    for (method, lam, layers), metrics in ARMS.items():
        if method == "cam":
            for i, seed in enumerate(SEEDS):
                _child(client, exp_id, parent.info.run_id, method, lam, layers, seed,
                       {k: v[i] for k, v in metrics.items()})
    for seed in SEEDS:
        _child(client, exp_id, parent.info.run_id, "tscam", 0.0, "12", seed,
               {"test_cl": 70.0, "test_cam_cos": 0.3, "test_att_cos": 0.3},
               backbone="deit_tiny_patch16_224")
    runs = load_selection("study", uri, [])
    whole = {r.number: r for r in build_tables(runs, "study")}
    assert whole[3].table is None and "backbone" in whole[3].reason.split("method")[0]
    made = narrowed_tables(runs, "study", "cam")
    assert [t.spec.number for t in made] == [3]
    md = render.markdown(made[0])
    assert f"| w/o AU | {text(W0['test_cl'])} | {text(W0['test_cam_cos'])} |" in md


# ---------------------------------------------------------------- CLI and method order
def test_cli_writes_the_requested_format(store, tmp_path):
    out = tmp_path / "t1.csv"
    assert main(["--experiment", EXPERIMENT, "--mlflow-uri", store[0], "--table", "1",
                 "--format", "csv", "-o", str(out), "--where", "layers=5"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and rows[0]["row"] == "CAM" and rows[0]["runs"] == "9"


def test_method_rows_and_labels_come_from_the_registry():
    from fer_core.cams import METHODS

    names = METHODS.names()
    assert method_rows(["zz_unregistered", *reversed(names)]) == [*names, "zz_unregistered"]
    table = Table(TABLES[1], names, {}, "e", run_count=0, commits=[])
    assert [table.label(n) for n in names] == [METHODS.get(n).label for n in names]
    assert table.label("zz_unregistered") == "zz_unregistered"


# ---------------------------------------------------------------- statistics edge cases
def test_estimates_and_paired_tests_at_the_edges():
    from analysis.stats import estimate, paired_test, significance_mark

    assert estimate([]).n == 0 and math.isnan(estimate([math.nan]).mean)
    one = estimate([0.5, math.nan])  # a run without the metric does not count as a seed
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.half_width)
    assert paired_test({0: 1.0}, {0: 2.0}) is None  # one pair: nothing to test
    # only matching seeds are paired: seed 2 of the reference has no partner
    test = paired_test({0: 1.0, 1: 2.0, 2: 9.0}, {0: 1.5, 1: 2.7})
    assert test is not None and test.n == 2 and math.isclose(test.mean_difference, 0.6)
    same = paired_test({0: 1.0, 1: 2.0}, {0: 2.0, 1: 3.0})  # no variance in the differences
    assert math.isnan(same.p_value) and significance_mark(same.p_value) == ""
    assert [significance_mark(p) for p in (0.001, 0.03, 0.2)] == ["**", "*", ""]
