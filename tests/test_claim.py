"""The closing summary's claim (``tuner.claim`` through ``tuner.summary``) and the report command
a sweep prints (``tuner.next_steps``), on trials read back from a real sqlite MLflow store.
"""

from __future__ import annotations

import shlex

import analysis_store as st
import pytest
from mlflow import MlflowClient

from analysis import report
from fer_core.objective import Objective
from tuner.results.claim import claim, gap
from tuner.results.next_steps import report_command
from tuner.results.summary import SUMMARIES, TrialRow
from tuner.tracking import schema as tr
from tuner.tracking.client import TrackingTarget

OBJECTIVE = Objective("val_att_cos", "max")
SWEEP = "lambda_layers-1"
# (λ, layers, val_att_cos, {seed: (test_cl, test_att_cos)})
ONE_SEED = (
    (0.0, "5", 0.45, {0: (84.0, 0.477)}),
    (4.0, "5", 0.60, {0: (83.0, 0.612)}),
    (7.5, "5+4", 0.66, {0: (81.0, 0.643)}),
)
THREE_SEEDS = (
    (0.0, "5", 0.45, {0: (84.0, 0.47), 1: (85.0, 0.48), 2: (83.0, 0.49)}),
    (4.0, "5", 0.60, {0: (83.5, 0.61), 1: (85.5, 0.63), 2: (83.5, 0.62)}),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("claim-store")
    return MlflowClient(f"sqlite:///{root}/mlflow.db"), root


def trials_in(client, name: str, spec) -> tuple[list[TrialRow], str]:
    """Log ``spec`` as a sweep's trials into experiment ``name``; read them back as TrialRows."""
    mlflow, root = client
    exp_id = st.new_experiment(mlflow, name, root)
    parent = st.add_parent(mlflow, exp_id, "lambda_layers")
    for lam, layers, val_att, by_seed in spec:
        for seed, (cl, att) in by_seed.items():
            st.add_trial(mlflow, exp_id, parent, "lambda_layers",
                         st.BASE | {"lambda_au": lam, "layers": layers, "seed": seed},
                         {"val_att_cos": val_att, "test_cl": cl, "test_att_cos": att,
                          "best_val_cl": cl}, sweep=SWEEP)
    found = mlflow.search_runs([exp_id], tr.tag_filter({tr.TAG_ROLE: tr.ROLE_TRIAL}))
    return [TrialRow.from_run(r) for r in found], exp_id


def test_one_seed_states_both_halves_and_that_noise_is_unmeasured(client):
    trials, _ = trials_in(client, "one-seed", ONE_SEED)
    summary = SUMMARIES.get("best_per_arm")(trials, OBJECTIVE)
    text = summary.markdown()
    assert ("- paper's setting, λ = 4 at layer 5 (1 seed): accuracy test CL 83.00 % vs 84.00 % "
            "= -1.00 points; interpretability test ATT-COS 0.612 vs 0.477 = +0.135") in text
    assert ("- best AU-guided trial by val_att_cos, λ = 7.5 at layers 5+4 (1 seed): accuracy "
            "test CL 81.00 % vs 84.00 % = -3.00 points; interpretability test ATT-COS 0.643 vs "
            "0.477 = +0.166") in text
    assert "With one seed in an arm, these differences cannot be told apart" in text
    facts = summary.as_dict()["claim"]
    assert facts["paper's setting, λ = 4 at layer 5"]["test_cl"]["band"] is None


def test_several_seeds_compare_the_difference_with_the_seed_spread(client):
    trials, _ = trials_in(client, "three-seeds", THREE_SEEDS)
    lines, facts = claim(trials, OBJECTIVE)
    cl = gap([t for t in trials if t.params["lambda_au"] == "4.0"],
             [t for t in trials if t.params["lambda_au"] == "0.0"], "test_cl")
    # paired on seeds: differences -0.5, +0.5, +0.5 → mean +0.167, SD 0.577, 2 SE = 0.667
    assert cl.difference == pytest.approx(1 / 6)
    assert cl.band == pytest.approx(2 * 0.57735 / 3 ** 0.5, rel=1e-4)
    assert cl.within_noise
    line = next(x for x in lines if x.startswith("- paper's setting"))
    assert "(3 seeds)" in line and "= +0.17 points, within seed noise (±0.67 points)" in line
    # ATT-COS: differences 0.14, 0.15, 0.13 → SD 0.01, 2 SE = 0.012: beyond seed noise
    assert "= +0.140, beyond seed noise (±0.012)" in line
    assert lines[-1].startswith("Seed noise: ± 2 standard errors")
    assert len([x for x in lines if x.startswith("- ")]) == 1  # the paper's setting is also best
    att = facts["claim"]["paper's setting, λ = 4 at layer 5"]["test_att_cos"]
    assert att["difference"] == pytest.approx(0.14)
    assert att["band"] == pytest.approx(0.02 / 3 ** 0.5)


def test_without_a_baseline_the_claim_says_it_is_not_measured(client):
    trials, _ = trials_in(client, "no-baseline", ONE_SEED[1:])
    lines, facts = claim(trials, OBJECTIVE)
    assert lines == ["Claim (accuracy kept, interpretability gained): not measured, no complete "
                     "λ = 0 baseline trial."] and facts == {}


def test_the_printed_report_command_makes_the_report_of_that_sweep(client, tmp_path,
                                                                   monkeypatch):
    mlflow, _ = client
    _, exp_id = trials_in(client, "au guided", ONE_SEED)  # a name that needs quoting
    target = TrackingTarget(mlflow.tracking_uri, exp_id, "p" * 32, SWEEP, "lambda_layers")
    command = report_command(mlflow, target)
    assert command == (f"python -m analysis.report --experiment 'au guided' --mlflow-uri "
                       f"{mlflow.tracking_uri} --where sweep={SWEEP} -o report/{SWEEP}")
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command)[3:] + ["--figure", "lambda", "--no-progress"]
    assert report.main(argv) == 0
    md = (tmp_path / "report" / SWEEP / "index.md").read_text()
    assert "Selection:** --where sweep=lambda_layers-1" in md
    assert "| CAM | 84.00 | 83.00 |" in md  # Table 1: λ = 0 against the paper's setting


def test_faithfulness_joins_the_claim_when_trials_logged_the_xai_metrics(client):
    mlflow, root = client
    exp_id = st.new_experiment(mlflow, "xai-claim", root)
    parent = st.add_parent(mlflow, exp_id, "lambda_layers")
    # (λ, test_xai_deletion, test_xai_insertion): guidance lowers deletion, raises insertion
    for lam, deletion, insertion in ((0.0, 0.30, 0.40), (4.0, 0.22, 0.51)):
        st.add_trial(mlflow, exp_id, parent, "lambda_layers",
                     st.BASE | {"lambda_au": lam, "layers": "5", "seed": 0},
                     {"val_att_cos": 0.5 + lam / 10, "test_cl": 84.0, "test_att_cos": 0.5,
                      "best_val_cl": 84.0, "test_xai_deletion": deletion,
                      "test_xai_insertion": insertion}, sweep=SWEEP)
    found = mlflow.search_runs([exp_id], tr.tag_filter({tr.TAG_ROLE: tr.ROLE_TRIAL}))
    lines, facts = claim([TrialRow.from_run(r) for r in found], OBJECTIVE)
    paper = next(line for line in lines if line.startswith("- paper's setting"))
    assert paper.endswith("; faithfulness (CAM) deletion 0.220 vs 0.300 = -0.080, "
                          "insertion 0.510 vs 0.400 = +0.110")
    gaps = facts["claim"]["paper's setting, λ = 4 at layer 5"]
    assert gaps["test_xai_insertion"]["difference"] == pytest.approx(0.11)
