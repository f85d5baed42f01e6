"""``python -m tuner.sweep`` end to end: real local Ray, real MLflow (sqlite store and server)."""

from __future__ import annotations

import dataclasses
import glob
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
import torch
from helpers import free_port, metric_steps, sweep_runs
from mlflow import MlflowClient

from fer_core.checkpoint import CHECKPOINT_FILE
from fer_core.inference import load_model
from search_spaces import SPACES
from search_spaces.sizes import TINY
from tuner.cli import parse_args
from tuner.cost.estimate import WEIGHT_COPIES_PER_FINISHED_TRIAL
from tuner.search.searchers import SEARCHERS
from tuner.spec.context import SweepContext
from tuner.spec.resolve import SweepError, resolve
from tuner.spec.settings import SweepSettings
from tuner.sweep import main
from tuner.tracking import outputs
from tuner.tracking import schema as tr
from tuner.tracking import server as ms
from tuner.tracking.client import TrackingTarget

TRIAL_PARAMS = ("method", "backbone", "dataset", "lambda_au", "layers", "seed")


def sweep_args(tmp_path: Path, uri: str | None = None) -> list[str]:
    return ["--storage-path", str(tmp_path / "ray_results"),
            "--mlflow-uri", uri or f"sqlite:///{tmp_path}/mlflow.db"]


# ---------------------------------------------------------------- errors before anything runs
def test_list_names_every_space(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in SPACES:
        assert f"\n{name} " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--space", "nope"], f"valid names: {', '.join(SPACES.names())}"),
        (["--space", "smoke", "--set", "lamda_au=2"], "unknown config field 'lamda_au'"),
        (["--space", "smoke", "--set", "lambda_au=-1"], "lambda_au=-1.0"),
        (["--space", "smoke", "--set", "layers=5+x"], "layers"),
        (["--space", "smoke", "--set", "method=nope"], "unknown method 'nope'"),
        (["--space", "smoke", "--set", "epochs"], "key=value"),
        (["--space", "pareto", "--metric", "val_cl"], "multi-objective"),
        (["--space", "smoke", "--metric", "test_cl"], "per-epoch metric"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_trial(tmp_path, monkeypatch, capsys, argv,
                                                     message):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, *sweep_args(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no store, no Ray results, no data cache


def test_pins_seeds_and_smoke_test_shape_the_plan(tmp_path):
    args = parse_args(["--space", "lambda_layers", "--set", "layers=5+4", "--set", "seed=5",
                       "--seeds", "3", "--smoke-test"])
    resolved = resolve(args, tmp_path)
    plan = resolved.plan
    assert "layers" not in plan.params and "lambda_au" in plan.params  # a pin is not searched
    # Pins apply to the reference points too (the baseline and the paper's λ = 4).
    assert plan.reference_points == ({"lambda_au": 0.0, "layers": "5+4"},
                                     {"lambda_au": 4.0, "layers": "5+4"})
    assert plan.seeds == (5, 6, 7)
    assert plan.num_configs == 2
    assert {k: resolved.base[k] for k in TINY} == TINY
    setup = SEARCHERS.get("optuna")(plan)
    assert setup.num_samples == 2 * 3  # every configuration once per seed


def test_grid_spaces_expand_seeds_and_run_references_first(tmp_path):
    resolved = resolve(parse_args(["--space", "layers", "--seeds", "2"]), tmp_path)
    setup = SEARCHERS.get("grid")(resolved.plan)
    assert setup.param_space["seed"] == {"grid_search": [0, 1]}
    assert setup.num_samples == 2  # the baseline point, then the grid
    assert setup.search_alg._points_to_evaluate == [{"lambda_au": 0.0, "layers": "5"}]


def test_pareto_study_lives_in_an_optuna_rdb(tmp_path):
    resolved = resolve(parse_args(["--space", "pareto", "--name", "p1"]), tmp_path)
    assert resolved.plan.optuna_storage == f"sqlite:///{tmp_path}/optuna.db"
    setup = SEARCHERS.get("optuna_pareto")(resolved.plan)
    setup.search_alg.set_search_properties(None, None, setup.param_space)
    assert setup.search_alg.suggest("t0")["lambda_au"] == 0.0  # the baseline first
    assert setup.search_alg.suggest("t1") == {"lambda_au": 4.0, "layers": "5", "seed": 0}
    assert setup.search_alg.suggest("t2")["lambda_au"] > 0
    import optuna

    study = optuna.load_study(study_name="p1", storage=resolved.plan.optuna_storage)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2


def test_a_pin_that_breaks_one_method_fails_before_the_sweep(tmp_path):
    with pytest.raises(SweepError, match="tscam"):
        resolve(parse_args(["--space", "methods", "--set", "backbone=resnet18"]), tmp_path)


def test_settings_are_built_once_typed_and_survive_sweep_json(tmp_path):
    resolved = resolve(parse_args(["--space", "pareto", "--seeds", "2", "--max-concurrent", "3",
                                   "--gpus-per-trial", "0.5", "--budget-hours", "2",
                                   "--register", "fer", "--system-metrics"]), tmp_path)
    settings = resolved.settings
    assert (settings.space, settings.seeds, settings.max_concurrent) == ("pareto", 2, 3)
    assert settings.resources == {"cpu": 1.0, "gpu": 0.5} and settings.budget.hours == 2.0
    assert settings.register == "fer" and settings.system_metrics
    assert settings.objective.metrics == ("val_cl", "val_att_cos")
    assert settings.objective.primary_metric == "val_cl"
    assert settings.optuna_storage == resolved.plan.optuna_storage  # a pareto study's RDB
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seeds = 3  # type: ignore[misc]
    # The parent run's sweep.* params keep their names; the objective as Tune's lists.
    assert settings.params()["metric"] == ["val_cl", "val_att_cos"]
    assert set(settings.params()) == {f.name for f in dataclasses.fields(SweepSettings)}
    target = TrackingTarget("sqlite:///x.db", "1", "p", "s", "pareto")
    ctx = SweepContext(resolved.base, target, cache_dir=str(tmp_path), settings=settings)
    ctx.save(tmp_path / "sweep")
    assert SweepContext.load(tmp_path / "sweep").settings == settings  # lists back to tuples
    assert resolve(parse_args(["--space", "smoke"]), tmp_path).settings.optuna_storage is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seeds": 0}, "--seeds 0"),
        ({"max_concurrent": 0}, "--max-concurrent 0"),
        ({"resources_cpu": 0.0}, "--cpus-per-trial 0.0"),
        ({"budget_hours": -1.0}, "--budget-hours"),
        ({"mode": "maximise"}, "'maximise'"),
    ],
)
def test_settings_refuse_bad_values_naming_the_flag(tmp_path, change, message):
    settings = resolve(parse_args(["--space", "smoke"]), tmp_path).settings
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(settings, **change)
    with pytest.raises(ValueError, match="unknown keys colour"):
        SweepSettings.from_dict({**dataclasses.asdict(settings), "colour": 1})


def test_the_data_cache_folder_is_passed_not_set_in_the_environment(tmp_path, monkeypatch):
    from fer_core.config import ExperimentConfig
    from tuner.checks.data import prepare_data

    monkeypatch.setenv("FER_CACHE", str(tmp_path / "users_cache"))  # a shell setting loses
    prepare_data(ExperimentConfig.from_flat(dict(TINY)), str(tmp_path / "sweep_cache"))
    files = sorted(p.name.split("-")[0] for p in (tmp_path / "sweep_cache").rglob("*.npz"))
    assert files == ["test", "train", "val"]
    assert os.environ["FER_CACHE"] == str(tmp_path / "users_cache")  # left as it was
    assert not (tmp_path / "users_cache").exists()


def test_the_gate_and_plan_path_imports_no_torch():
    # The driver process does import torch, on purpose and later: resolving a sweep builds each
    # method's network once to check its layers (tuner.spec.resolve.check_config), and the methods
    # space lists the CAM registry. What the launch gate needs to hash a trial's config, and the
    # plan, settings and searchers modules, must not pull torch in by importing.
    modules = ("tuner.search.gate", "tuner.spec.resolve", "tuner.spec.context",
               "tuner.spec.settings", "tuner.search.searchers", "tuner.search.budget",
               "search_spaces.params", "search_spaces.base")
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            "print(sorted(k for k in sys.modules if k == 'torch' or k.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- real sweeps
def xai_metric_names(layers: str) -> set[str]:
    """Every ``test_xai_*`` name a trial logs at the default evaluation (``docs/method.md`` §7,
    defined once in ``fer_core.metric_names.xai_keys``): each metric, its interval and control
    maps, and the localisation metrics of each aligned layer's attention (the randomisation
    steps depend on the network and are checked apart)."""
    from fer_core.metric_names import xai_keys

    return set(xai_keys(tuple(int(k) for k in layers.split("+"))))


@pytest.mark.slow(reason="reads the session's smoke sweep (3 trials end to end on real Ray)")
def test_smoke_sweep_end_to_end(smoke_sweep, monkeypatch):
    tmp_path, uri, out = smoke_sweep.root, smoke_sweep.uri, smoke_sweep.stdout
    monkeypatch.chdir(tmp_path)
    assert smoke_sweep.code == 0
    assert "best trial per arm" in out and f"mlflow ui --backend-store-uri {uri}" in out
    assert "Claim" in out  # tuner.claim: measured, or why not (tests/test_claim.py has values)
    command = next(line for line in out.splitlines() if line.startswith("Report:"))
    assert command.endswith(f"--mlflow-uri {uri} --where sweep=s -o report/s")
    # the printed command works as printed (Fig. 5 only: maps would re-run the models)
    from analysis.report import main as report_main

    assert report_main([*shlex.split(command)[4:], "--figure", "lambda", "--no-progress"]) == 0
    assert "Selection:** --where sweep=s" in (tmp_path / "report/s/index.md").read_text()

    parents, children = sweep_runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert parent.data.tags[tr.TAG_SPACE] == "smoke"
    assert tr.TAG_GIT_COMMIT in parent.data.tags
    assert len(children) == SPACES.get("smoke").num_samples
    assert {r.info.status for r in children} == {"FINISHED"}
    assert len({r.data.tags[tr.TAG_TRIAL_ID] for r in children}) == len(children)
    loaded = []
    for run in children:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags[tr.TAG_PARENT] == parent.info.run_id
        assert tags[tr.TAG_DATA_FINGERPRINT] == parent.data.tags[tr.TAG_DATA_FINGERPRINT]
        assert set(TRIAL_PARAMS) <= set(params)
        assert tags[tr.TAG_EARLY_STOPPED] in ("true", "false")
        if tags[tr.TAG_EARLY_STOPPED] == "true":
            assert "test_cl" not in metrics
            continue
        assert metric_steps(uri, run.info.run_id, "val_cl") == [1, 2]
        assert 0.0 <= metrics["test_cl"] <= 100.0
        for key in ("test_att_cos", "test_cam_cos", "test_att_cos_l5", "val_att_cos"):
            assert 0.0 <= metrics[key] <= 1.0
        for layer in params["layers"].split("+"):
            assert f"test_att_cos_l{layer}" in metrics
        client = MlflowClient(tracking_uri=uri)
        listed = {a.path for a in client.list_artifacts(run.info.run_id, "matrices")}
        assert {"matrices/confusion.png", "matrices/cos_matrix.json"} <= listed
        # The selected weights once: the run's logged model, nothing in its own artifacts or
        # in its final checkpoint (which holds the test result), as tuner.cost.estimate counts them.
        files = [*Path(run.info.artifact_uri.removeprefix("file://")).rglob("*"),
                 *Path(client.get_logged_model(outputs.run_model_id(client, run.info.run_id))
                       .artifact_location.removeprefix("file://")).rglob("*")]
        large = [f for f in files if f.is_file() and f.stat().st_size > 20e6]
        assert len(large) == WEIGHT_COPIES_PER_FINISHED_TRIAL, large
        assert large[0].parent.name == "data" and tr.MODEL_FILE not in {f.name for f in files}
        trial_dir = next((tmp_path / "ray_results" / "s").glob(
            f"*{run.data.tags[tr.TAG_TRIAL_ID]}*"))
        (final,) = trial_dir.glob(f"checkpoint_*/{CHECKPOINT_FILE}")  # one kept
        assert torch.load(final, weights_only=False)["final"]["test_cl"] == metrics["test_cl"]
        assert final.stat().st_size < 1e6
        missing = xai_metric_names(params["layers"]) - set(metrics)  # the smoke sizes turn
        assert not missing, sorted(missing)  # every one of them on
        assert any(m.startswith("test_xai_mprt_") and m[-1].isdigit() for m in metrics)
        loaded.append(run)
    # analysis.maps loads a trial's model by runs:/<run id> (its logged model)
    model = load_model(f"runs:/{loaded[0].info.run_id}", tracking_uri=uri)
    assert model.cfg.align.lambda_au == float(loaded[0].data.params["lambda_au"])
    baseline = [r for r in children if float(r.data.params["lambda_au"]) == 0.0]
    assert len(baseline) == 1  # the reference point ran once and ASHA let it finish
    assert baseline[0].data.tags[tr.TAG_EARLY_STOPPED] == "false"


@pytest.fixture()
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on 127.0.0.1, started as ``python -m tuner.mlflow_server`` does."""
    config = ms.resolve_config(f"sqlite:///{tmp_path}/server.db",
                               str(tmp_path / "server_artifacts"), port=free_port())
    with ms.start(config) as server:
        yield server.url


@pytest.mark.slow(reason="a sweep on real Ray, a crashed trial retried, an MLflow server")
def test_crashed_trial_is_retried_from_its_checkpoint_in_the_same_run(
        ray_runtime, mlflow_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--space", "smoke", "--trials", "1", "--experiment", "crash",
            "--set", "fail_at_epoch=2", "--set", "epochs=3", *sweep_args(tmp_path, mlflow_server)]
    assert main(argv) == 0
    parents, children = sweep_runs(mlflow_server, "crash")
    assert len(parents) == 1 and len(children) == 1
    run = children[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags[tr.TAG_ATTEMPTS] == "2"  # the retry reopened the run
    # Epoch 1 ran once: the retry started from its checkpoint, not from scratch.
    assert metric_steps(mlflow_server, run.info.run_id, "val_cl") == [1, 2, 3]
    assert "test_att_cos" in run.data.metrics
    client = MlflowClient(tracking_uri=mlflow_server)
    assert client.list_artifacts(run.info.run_id, "matrices")  # uploaded through the server


@pytest.mark.slow(reason="a sweep driver in its own process, killed, then resumed")
def test_killed_driver_resumes_with_exactly_the_requested_trials(
        ray_runtime, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    results = tmp_path / "ray_results" / "k"
    argv = ["--space", "smoke", "--name", "k", "--set", "epochs=4", *sweep_args(tmp_path, uri)]
    # A second driver on the module's Ray: killing it kills its job's trials, not the cluster.
    address = ray.get_runtime_context().gcs_address
    driver = subprocess.Popen(
        [sys.executable, "-m", "tuner.sweep", *argv, "--address", address], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (glob.glob(f"{results}/*/checkpoint_0*")  # one kept: any index
                   and glob.glob(f"{results}/experiment_state-*.json")):
            assert driver.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.2)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    _, before = sweep_runs(uri)
    assert any(r.info.status == "RUNNING" for r in before)  # killed mid-sweep

    assert main(["--resume", "--name", "k", *sweep_args(tmp_path, uri)]) == 0
    parents, children = sweep_runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    requested = SPACES.get("smoke").num_samples
    assert len(children) == requested
    assert len({r.data.tags[tr.TAG_TRIAL_ID] for r in children}) == requested
    assert {r.info.status for r in children} == {"FINISHED"}
    assert len(list(results.glob("train_trial_*"))) == requested
    # Trials in flight at the kill continued their runs (no duplicates, as counted above).
    assert any(int(r.data.tags[tr.TAG_ATTEMPTS]) > 1 for r in children)


def test_pending_trials_setting_lives_only_while_the_sweep_runs(monkeypatch):
    from tuner.search.launch import PENDING_ENV, pending_trials

    monkeypatch.delenv(PENDING_ENV, raising=False)
    with pending_trials(5):
        assert os.environ[PENDING_ENV] == "5"  # the autoscaler sees five trials' demand
    assert PENDING_ENV not in os.environ  # a second sweep in this process starts clean
    monkeypatch.setenv(PENDING_ENV, "12")
    with pending_trials(5):
        assert os.environ[PENDING_ENV] == "12"  # the user's export wins
    assert os.environ[PENDING_ENV] == "12"
