"""The report's default selection on a real sqlite MLflow store shaped like the default sweep
(``lambda_layers``: the λ = 0 baseline and the paper's λ = 4 at layer 5 first, then searched λ ×
layer sets, one of them stopped early by ASHA): ``python -m analysis.report --experiment NAME``
makes Tables 1–3 and Fig. 5 without ``--where``, names its choice in each caption, and refuses
only when an arm has no run at all, naming the sweep that makes it.
"""

from __future__ import annotations

import time

import analysis_store as st
import pytest
from mlflow import MlflowClient

from analysis import defaults, report
from analysis.figures import FigureOptions
from analysis.runs import load_runs
from tuner.tracking import schema as tr

CPU = FigureOptions(device="cpu", progress=False)
BASE = st.BASE | {"method": "cam"}
# (λ, layers, best_val_cl, test_cl, test_att_cos, early stopped) of a default sweep's trials
DEFAULT_SWEEP = (
    (0.0, "5", 80.0, 84.0, 0.48, False),
    (4.0, "5", 79.0, 83.0, 0.61, False),
    (7.5, "5+4", 82.0, 82.5, 0.64, False),
    (0.3, "4", 81.0, 84.5, 0.52, False),
    (2.2, "5", 78.0, 81.0, 0.58, False),
    (15.0, "3", 40.0, 41.0, 0.40, True),  # stopped by ASHA: never in a table
)


def tables_1_to_3(md: str) -> str:
    """The page up to Table 4 (its XAI metrics are not among these runs' metrics)."""
    return md.split("**Table 4.**")[0]


def fill(uri: str, root, name: str, trials, seeds=(0,), sweep: str = "lambda_layers-1") -> None:
    client = MlflowClient(uri)
    exp_id = st.new_experiment(client, name, root)
    parent = st.add_parent(client, exp_id, "lambda_layers")
    for lam, layers, val_cl, cl, att, early in trials:
        for seed in seeds:
            run_id = st.add_trial(
                client, exp_id, parent, "lambda_layers",
                BASE | {"lambda_au": lam, "layers": layers, "seed": seed},
                {"best_val_cl": val_cl + seed, "test_cl": cl + seed, "test_att_cos": att,
                 "test_cam_cos": att - 0.1}, sweep=sweep)
            if early:
                client.set_tag(run_id, tr.TAG_EARLY_STOPPED, "true")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("defaults-store")
    uri = f"sqlite:///{root}/mlflow.db"
    fill(uri, root, "default", DEFAULT_SWEEP)
    fill(uri, root, "no-paper", [t for t in DEFAULT_SWEEP if t[0] != 4.0])
    fill(uri, root, "seeds", DEFAULT_SWEEP, seeds=(0, 1, 2))
    fill(uri, root, "baseline-only", DEFAULT_SWEEP[:1])
    return uri


def test_report_after_the_default_sweep_makes_tables_1_to_3_and_fig_5(store, tmp_path):
    out = tmp_path / "report"
    began = time.perf_counter()
    assert report.main(["--experiment", "default", "--mlflow-uri", store, "-o", str(out),
                        "--figure", "lambda", "--no-progress"]) == 0
    elapsed = time.perf_counter() - began
    md = (out / "index.md").read_text()
    assert "not made" not in tables_1_to_3(md) and "against λ**: not made" not in md
    assert (out / "figures" / "lambda.png").stat().st_size > 1000
    # Tables 1–2: λ = 0 against the paper's setting, which the caption names
    assert "(w/ AU = cam: λ = 4 at layer 5, the paper's setting)" in md
    assert "| CAM | 84.00 | 83.00 |" in md  # test CL of the λ = 0 and the λ = 4 @ 5 trials
    assert "| CAM | 0.48 | 0.61 |" in md  # Table 2's ATT-COS
    # Table 3: one row per layer set, its λ named, and the sweep that holds λ fixed
    assert ("λ per layer set (4: 0.3, 5: 4, 5+4: 7.5; λ = 4 where it ran, else the best "
            "validation CL); rows differ in λ too: python -m tuner.sweep --space layers") in md
    assert "| 3 |" not in md  # the early-stopped trial's layer set has no finished run
    print(f"report (tables + Fig. 5) on the test store: {elapsed:.1f} s")


def test_without_the_paper_setting_the_best_validated_one_is_named(store, tmp_path):
    runs = load_runs("no-paper", store)
    chosen, note = defaults.method_tables(runs)
    assert note == "w/ AU = cam: λ = 7.5 at layers 5+4, the best validation CL of 3 settings"
    assert sorted(chosen["lambda_au"]) == [0.0, 7.5]
    md_path, _ = report.write_report("no-paper", store, tmp_path / "r", figures=["lambda"],
                                     options=CPU)
    md = md_path.read_text()
    assert "| CAM | 84.00 | 82.50 |" in md and "not made" not in tables_1_to_3(md)


def test_fig5_keeps_layer_5_and_the_baseline(store):
    runs = load_runs("default", store)
    kept, note = defaults.lambda_curve(runs)
    assert sorted(kept["lambda_au"]) == [0.0, 2.2, 4.0] and note == "layer 5"
    single = runs[runs["lambda_au"].isin([0.0, 7.5, 0.3])]
    kept, note = defaults.lambda_curve(single)  # no layer 5 among the AU-guided runs
    assert note == "layer 4; one λ: python -m tuner.sweep --space lambda draws the curve"
    assert sorted(kept["lambda_au"]) == [0.0, 0.3]


def test_several_seeds_give_intervals_and_a_narrowed_selection_is_kept(store, tmp_path):
    md_path, _ = report.write_report("seeds", store, tmp_path / "r", figures=["lambda"],
                                     options=CPU)
    md = md_path.read_text()
    assert "not made" not in tables_1_to_3(md) and "(n=3)" in md and "the paper's setting" in md
    runs = load_runs("seeds", store)
    one = runs[runs["lambda_au"].isin([0.0, 7.5])]  # already one AU-guided setting
    chosen, note = defaults.method_tables(one)
    assert note == "" and len(chosen) == len(one) == 6


def test_missing_arm_refuses_and_names_the_sweep(store, tmp_path):
    md_path, _ = report.write_report("baseline-only", store, tmp_path / "r", options=CPU)
    md = md_path.read_text()
    assert ("not made (Tables 1–2 compares against the w/ AU (λ > 0) runs and the selection "
            "has none; python -m tuner.sweep --space methods makes them)") in md
    assert "Table 3 compares against the w/ AU (λ > 0) runs" in md
    assert "--space layers makes them" in md
    assert "python -m tuner.sweep --space lambda makes them" in md  # Fig. 5


def test_the_tables_command_uses_the_same_default_selection(store, capsys):
    from analysis import tables

    assert tables.main(["--experiment", "default", "--mlflow-uri", store, "--table", "1"]) == 0
    out = capsys.readouterr().out
    assert "(w/ AU = cam: λ = 4 at layer 5, the paper's setting)" in out
    assert "| CAM | 84.00 | 83.00 |" in out
    # An absent arm is a usage error (exit 2) with the same reason as the report's.
    assert tables.main(["--experiment", "baseline-only", "--mlflow-uri", store, "--table",
                        "1"]) == 2
    assert "python -m tuner.sweep --space methods makes them" in capsys.readouterr().err
