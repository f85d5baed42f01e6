"""``--budget-hours`` and dedup of already-done trials (real local Ray, real sqlite MLflow)."""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from ray.tune.search import BasicVariantGenerator

import tuner.sweep
from fer_core.config import ExperimentConfig
from tuner.cli import parse_args
from tuner.search.budget import Budget, BudgetClock
from tuner.search.dedup import config_hash, done_runs
from tuner.search.gate import GATE_FILE, GateRules, SweepGate
from tuner.spec.context import SweepContext
from tuner.spec.resolve import resolve
from tuner.sweep import main
from tuner.tracking import schema as tr
from tuner.tracking.client import TrackingTarget
from tuner.tracking.provenance import git_commit

# One configuration (λ = 4 at layer 5), tiny data: a few seconds per trial.
ONE_CONFIG = ["--space", "lambda", "--set", "lambda_au=4", "--smoke-test"]
FIXED_COMMIT = "0" * 40 + "-test"


def sweep_args(tmp_path: Path, name: str) -> list[str]:
    return ["--name", name, "--storage-path", str(tmp_path / "ray_results"),
            "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db"]


def sweep_runs(tmp_path: Path, experiment: str = tr.DEFAULT_EXPERIMENT) -> dict[str, dict]:
    """Per sweep name: its parent run and its child runs."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    out: dict[str, dict] = {}
    for run in client.search_runs([exp.experiment_id], max_results=1000):
        entry = out.setdefault(run.data.tags[tr.TAG_SWEEP], {"parent": None, "children": []})
        if run.data.tags.get(tr.TAG_ROLE) == tr.ROLE_PARENT:
            entry["parent"] = run
        else:
            entry["children"].append(run)
    return out


def summary_json(tmp_path: Path, parent) -> dict:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    path = client.download_artifacts(parent.info.run_id, tr.SUMMARY_FILES[1], str(tmp_path))
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------- no Ray needed
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc"])
def test_bad_budget_is_a_clear_error_before_anything(tmp_path, monkeypatch, capsys, value):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--space", "smoke", "--budget-hours", value, *sweep_args(tmp_path, "x")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--budget-hours" in err and "trial-hours > 0" in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="budget-hours"):
        Budget(float(value) if value != "abc" else -1.0)


def test_budget_accepts_fractions_and_is_a_sweep_setting(tmp_path):
    settings = resolve(parse_args(["--space", "smoke", "--budget-hours", "0.01"]),
                       tmp_path).settings
    assert settings.budget_hours == 0.01 and settings.budget == Budget(0.01) and settings.dedup
    assert settings.params()["budget_hours"] == 0.01 and settings.params()["dedup"] is True
    rerun = resolve(parse_args(["--space", "smoke", "--rerun"]), tmp_path).settings
    assert not rerun.dedup and "budget_hours" not in rerun.params()  # no limit: not logged
    assert Budget(0.01).reached(36.0) and not Budget(0.01).reached(35.9)
    assert not Budget(None).reached(1e12)


def test_budget_clock_counts_running_time_and_every_attempt():
    clock = BudgetClock()
    clock.launched("a")
    clock.launched("b")
    assert clock.used_seconds(now=110.0) == 0.0 and clock.live() == 2  # waiting for workers
    clock.started("a", when=100.0)
    clock.started("b", when=104.0)
    assert clock.used_seconds(now=110.0) == 10.0 + 6.0  # running, nothing reported yet
    clock.reported("a", {"time_since_restore": 8.0}, now=110.0)
    assert clock.used_seconds(now=112.0) == 8.0 + 2.0 + 8.0
    clock.reported("a", {"time_since_restore": 3.0}, now=120.0)  # a retry restarted its count
    clock.concluded("a", {"time_since_restore": 5.0}, now=122.0)
    clock.concluded("b", {"time_since_restore": 21.0}, now=122.0)
    assert clock.live() == 0
    assert clock.used_seconds(now=500.0) == 8.0 + 3.0 + 2.0 + 21.0  # concluded: no more
    clock.reported("b", {"time_since_restore": 1.0}, now=600.0)  # an errored trial resumed
    clock.resumed(now=1000.0)  # a restored driver: live trials count from now
    assert clock.used_seconds(now=1010.0) == 8.0 + 3.0 + 2.0 + 22.0 + 10.0


def test_gate_clock_and_skips_survive_save_and_restore(tmp_path):
    ctx = SweepContext({}, TrackingTarget("sqlite:///x.db", "1", "p", "s", "smoke"))
    rules = GateRules(ctx, Budget(0.01), max_concurrent=2, dedup=False)
    gate = SweepGate(BasicVariantGenerator(), rules)
    gate.on_trial_result("t1", {"time_since_restore": 20.0})
    gate.on_trial_complete("t2", {"time_since_restore": 15.0})
    gate.record.skipped.append({"run_id": "r0"})
    gate.save_to_dir(str(tmp_path), session_str="s")
    restored = SweepGate(BasicVariantGenerator(), rules)  # as Tune rebuilds it from tuner.pkl
    assert restored.has_checkpoint(str(tmp_path))
    restored.restore_from_dir(str(tmp_path))
    assert restored.record.skipped == [{"run_id": "r0"}]
    used = restored.clock.used_seconds(time.time())
    assert 35.0 <= used < 36.0  # t1 runs on from the restore, t2 has concluded
    assert restored.clock.live() == 1 and not restored.rules.budget.reached(used)


def test_config_hash_is_canonical_and_sees_every_field():
    cfg = ExperimentConfig.from_flat({"lambda_au": 4, "layers": "5+4", "seed": 0})
    same = ExperimentConfig.from_flat({"lambda_au": "4.0", "layers": (5, 4), "seed": "0"})
    assert config_hash(cfg) == config_hash(same)
    # Parsed back from MLflow params (all text), a config hashes as before.
    params = tr.param_values(cfg.to_flat())
    assert config_hash(ExperimentConfig.from_flat(params)) == config_hash(cfg)
    for change in ({"seed": 1}, {"lambda_au": 4.5}, {"layers": "5"}, {"epochs": 3}):
        assert config_hash(cfg.replace(**change)) != config_hash(cfg), change


def test_done_runs_are_finished_complete_same_code_and_data(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("e")
    target = TrackingTarget(uri, exp, "parent", "s", "smoke")
    ctx = SweepContext({}, target, git_commit="c1", data_fingerprint="f1")
    cfg = ExperimentConfig()

    def child(name, status=tr.FINISHED, early="false", commit="c1", test_cl=50.0,
              params=True, tag_hash=None):
        tags = {tr.TAG_ROLE: tr.ROLE_TRIAL, tr.TAG_GIT_COMMIT: commit, tr.TAG_SWEEP: "old",
                tr.TAG_TRIAL_NAME: name, tr.TAG_DATA_FINGERPRINT: "f1",
                tr.TAG_EARLY_STOPPED: early, **({tr.TAG_CONFIG_HASH: tag_hash} if tag_hash else {})}
        run_id = client.create_run(exp, run_name=name, tags=tags).info.run_id
        flat = cfg.replace(seed=len(name)).to_flat()  # every name length: its own config
        client.log_batch(run_id, metrics=[Metric("test_cl", test_cl, 0, 2),
                                          Metric("val_cl", 40.0, 0, 2)],
                         params=[Param(k, v) for k, v in tr.param_values(flat).items()]
                         if params else [])
        client.set_terminated(run_id, status)
        return config_hash(ExperimentConfig.from_flat(flat)), run_id

    good_hash, good = child("a")
    child("bb", early="true")
    child("ccc", commit="c2")
    child("dddd", status=tr.FAILED)
    child("eeeee", test_cl=math.nan)
    tagged_hash, tagged = child("ffffff", params=False, tag_hash="h" * 16)
    found = done_runs(ctx)
    assert {k: v.run_id for k, v in found.items()} == {good_hash: good, "h" * 16: tagged}
    assert found[good_hash].metrics["val_cl"] == 40.0 and found[good_hash].sweep == "old"
    assert tagged_hash != "h" * 16  # the tag, once there, is what counts
    unknown = SweepContext({}, target, git_commit="unknown", data_fingerprint="f1")
    assert done_runs(unknown) == {}  # unknown code is never the same code


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_dirty_checkouts_with_different_changes_are_different_code(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    clean = git_commit(tmp_path)
    assert len(clean) == 40 and "dirty" not in clean
    (tmp_path / "a.py").write_text("x = 2\n")
    first = git_commit(tmp_path)
    assert first.startswith(f"{clean}-dirty-") and len(first) == 40 + len("-dirty-") + 8
    assert git_commit(tmp_path) == first  # the same change is the same code
    (tmp_path / "a.py").write_text("x = 3\n")
    assert git_commit(tmp_path) not in (first, clean)
    _git(tmp_path, "add", "a.py")  # staged changes count as well
    assert "-dirty-" in git_commit(tmp_path)
    assert git_commit(tmp_path / "nowhere") == "unknown"


# ---------------------------------------------------------------- real sweeps
@pytest.fixture()
def pinned_commit(monkeypatch):
    """The shared checkout changes while a test runs (other work in the tree): pin the code
    version the sweeps record, so two sweeps of one test are the same code."""
    monkeypatch.setattr(tuner.sweep, "git_commit", lambda: FIXED_COMMIT)


def trial_dirs(tmp_path: Path, name: str) -> list[Path]:
    return list((tmp_path / "ray_results" / name).glob("train_trial_*"))


@pytest.mark.slow(reason="four smoke sweeps on real Ray")
def test_done_trials_are_skipped_reused_and_rerun_on_request(
        ray_runtime, pinned_commit, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*ONE_CONFIG, *sweep_args(tmp_path, "first")]) == 0
    first = sweep_runs(tmp_path)["first"]["children"]
    assert len(first) == 1 and {r.info.status for r in first} == {tr.FINISHED}
    # Every child run carries its config's identity, equal to the hash of its logged params.
    assert first[0].data.tags[tr.TAG_CONFIG_HASH] == config_hash(
        ExperimentConfig.from_flat(first[0].data.params))
    capsys.readouterr()

    # The same sweep again: nothing is launched, the earlier results are the summary.
    assert main([*ONE_CONFIG, *sweep_args(tmp_path, "again")]) == 0
    out = capsys.readouterr().out
    again = sweep_runs(tmp_path)["again"]
    assert again["children"] == [] and trial_dirs(tmp_path, "again") == []
    for run in first:
        assert f"skipped: already done in run {run.info.run_id}" in out
        assert f"[done in run {run.info.run_id}]" in out  # its row in the summary table
    metrics = again["parent"].data.metrics
    assert metrics["sweep.trials"] == 0 and metrics["sweep.trials_skipped"] == 1
    summary = summary_json(tmp_path, again["parent"])
    assert {s["run_id"] for s in summary["gate"]["skipped"]} == {r.info.run_id for r in first}
    reused = {row[2]: row for row in summary["rows"]}  # arm, complete, trial, ...
    assert len(reused) == 1
    test_cl = summary["columns"].index("test_cl")
    by_name = {f"{r.data.tags[tr.TAG_TRIAL_NAME]} [done in run {r.info.run_id}]": r for r in first}
    for name, row in reused.items():
        assert math.isclose(row[test_cl], by_name[name].data.metrics["test_cl"])

    # Another seed is another configuration: seed 1 runs, seed 0 is still done.
    assert main([*ONE_CONFIG, "--seeds", "2", *sweep_args(tmp_path, "seeds")]) == 0
    seeds = sweep_runs(tmp_path)["seeds"]
    assert [r.data.params["seed"] for r in seeds["children"]] == ["1"]
    assert seeds["parent"].data.metrics["sweep.trials_skipped"] == 1

    # --rerun runs them again.
    assert main([*ONE_CONFIG, "--rerun", *sweep_args(tmp_path, "rerun")]) == 0
    rerun = sweep_runs(tmp_path)["rerun"]
    assert len(rerun["children"]) == 1 and {r.info.status for r in rerun["children"]} == {
        tr.FINISHED}
    assert rerun["parent"].data.metrics["sweep.trials_skipped"] == 0


@pytest.mark.slow(reason="a lambda sweep on real Ray until its budget ends it")
def test_budget_stops_launching_and_names_what_was_left(ray_runtime, tmp_path, monkeypatch,
                                                        capsys):
    monkeypatch.chdir(tmp_path)
    # 9 λ values; 0.0005 trial-hours = 1.8 s: spent before the first two trials end.
    argv = ["--space", "lambda", "--smoke-test", "--max-concurrent", "2",
            "--budget-hours", "0.0005", *sweep_args(tmp_path, "budget")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    runs = sweep_runs(tmp_path)["budget"]
    children, parent = runs["children"], runs["parent"]
    assert 1 <= len(children) < 9
    assert {r.info.status for r in children} == {tr.FINISHED}  # running trials finished
    assert all("test_cl" in r.data.metrics for r in children)
    assert parent.info.status == tr.FINISHED
    metrics = parent.data.metrics
    assert metrics["sweep.budget_reached"] == 1.0
    assert metrics["sweep.trials_not_launched"] == 9 - len(children)
    assert metrics["sweep.trial_hours"] >= 0.0005
    assert "budget reached: --budget-hours 0.0005" in out
    ran = {float(r.data.params["lambda_au"]) for r in children}
    record = json.loads((tmp_path / "ray_results" / "budget" / GATE_FILE).read_text())
    left = {c["lambda_au"] for c in record["not_launched_configs"]}
    assert left == {0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0} - ran
    for lam in left:
        assert f"- not launched: lambda_au={lam:.4g}, layers=5, seed=0" in out
    assert summary_json(tmp_path, parent)["gate"]["not_launched"] == 9 - len(children)


@pytest.mark.slow(reason="two pareto sweeps on real Ray")
def test_optuna_learns_the_results_of_skipped_trials(ray_runtime, pinned_commit, tmp_path,
                                                     monkeypatch):
    import optuna

    monkeypatch.chdir(tmp_path)
    # pareto --smoke-test: the λ = 0 baseline, then λ = 4 @ 5 as Optuna's first (enqueued) trial.
    argv = ["--space", "pareto", "--smoke-test", "--trials", "2"]
    assert main([*argv, *sweep_args(tmp_path, "p1")]) == 0
    assert main([*argv, *sweep_args(tmp_path, "p2")]) == 0
    runs = sweep_runs(tmp_path)
    assert len(runs["p1"]["children"]) == 2 and runs["p2"]["children"] == []
    done = next(r for r in runs["p1"]["children"] if r.data.params["lambda_au"] == "4.0")
    study = optuna.load_study(study_name="p2", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE"]
    assert study.trials[0].values == pytest.approx(
        [done.data.metrics["val_cl"], done.data.metrics["val_att_cos"]])


def test_the_gate_computes_the_fields_tune_leaves_as_placeholders():
    from ray.tune.experiment import Trial

    from search_spaces import SPACES
    from search_spaces.methods import OWN_NETWORK
    from search_spaces.params import derived_fields

    space = SPACES.get("methods")
    derived = derived_fields(space.params)  # the per-method network fields (tune.sample_from)
    assert set(derived) == {"backbone", "layers", "output_stride"}
    ctx = SweepContext(dict(space.overrides), TrackingTarget("sqlite:///x.db", "1", "p", "s",
                                                            "methods"))
    gate = SweepGate(BasicVariantGenerator(), GateRules(ctx, derived=derived))
    # What Tune hands a search algorithm for the TS-CAM arm: derived fields still placeholders.
    sampled = {"method": "tscam", "lambda_au": 4.0, "seed": 0,
               **{key: ("__fn_ph", f"{i:08x}") for i, key in enumerate(derived)}}
    config = gate._config(Trial("train_trial", config=sampled, trial_id="t1", stub=True))
    assert config == {"method": "tscam", "lambda_au": 4.0, "seed": 0, **OWN_NETWORK["tscam"]}
    # ... a valid trial config (placeholders made it fail), the one the trial itself will run.
    resolved = ctx.trial_config(config)
    assert (resolved.model.backbone, resolved.align.layers) == ("deit_tiny_patch16_224", (12,))


@pytest.mark.slow(reason="the methods grid: 22 trials on real Ray")
def test_the_methods_grid_runs_every_method_on_its_network_and_then_is_reused(
        ray_runtime, pinned_commit, tmp_path, monkeypatch):
    from search_spaces.methods import OWN_NETWORK

    monkeypatch.chdir(tmp_path)
    methods = ["--space", "methods", "--smoke-test"]
    assert main([*methods, *sweep_args(tmp_path, "all")]) == 0
    children = sweep_runs(tmp_path)["all"]["children"]
    assert len(children) == 22 and {r.info.status for r in children} == {tr.FINISHED}
    by_arm = {(r.data.params["method"], r.data.params["lambda_au"]): r.data.params
              for r in children}
    assert len(by_arm) == 22  # 11 methods × {λ = 0, λ = 4}, each once
    for method, network in OWN_NETWORK.items():  # Tune's sample_from fields, resolved
        params = by_arm[(method, "4.0")]
        assert {k: params[k] for k in network} == {k: str(v) for k, v in network.items()}
    assert by_arm[("gradcam", "0.0")]["backbone"] == "resnet18"

    assert main([*methods, *sweep_args(tmp_path, "again")]) == 0
    again = sweep_runs(tmp_path)["again"]
    assert again["children"] == [] and again["parent"].data.metrics["sweep.trials_skipped"] == 22
