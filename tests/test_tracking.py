"""The MLflow schema and run lifecycle against a real sqlite store (no Ray)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import metric_history, sweep_target
from mlflow import MlflowClient

from fer_core import CLASSES
from tuner.results import artifacts
from tuner.spec.context import SweepContext
from tuner.spec.settings import SweepSettings
from tuner.tracking import client as runs
from tuner.tracking import schema as tr


def test_normalize_uri_makes_every_local_store_absolute(tmp_path):
    assert runs.normalize_uri(None, tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    assert runs.normalize_uri("sqlite:///sub/x.db", tmp_path) == f"sqlite:///{tmp_path}/sub/x.db"
    assert runs.normalize_uri("sqlite:////abs/x.db", tmp_path) == "sqlite:////abs/x.db"
    assert runs.normalize_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"
    assert runs.normalize_uri("store", tmp_path) == f"file://{tmp_path}/store"


def test_metric_values_keep_the_schema_only():
    engine = {"epoch": 2.0, "val_cl": 50.0, "val_att_cos": 0.5, "val_att_cos_l4": 0.4,
              "val_cam_cos": math.nan, "test_att_cos_l12": 0.3, "is_final": 1.0,
              "confusion": [[1.0]], "unknown": 3.0}
    out = tr.metric_values(engine)
    assert set(out) == {"val_cl", "val_att_cos", "val_att_cos_l4", "val_cam_cos",
                        "test_att_cos_l12"}
    assert math.isnan(out["val_cam_cos"])


def test_status_mapping_never_leaves_running():
    assert tr.mlflow_status("TERMINATED") == "FINISHED"
    assert tr.mlflow_status("ERROR") == "FAILED"
    for other in ("RUNNING", "PENDING", "PAUSED", "UNKNOWN"):
        assert tr.mlflow_status(other) == "KILLED"


def test_tag_filter_rejects_quotes():
    assert tr.tag_filter({"a.b": "x"}) == "tags.`a.b` = 'x'"
    with pytest.raises(ValueError):
        tr.tag_filter({"a": "it's"})


@pytest.fixture()
def store(db, request):
    """A fresh experiment (and parent run) per test in the module's store."""
    target = sweep_target(db, request.node.name, "sweep-1",
                          params=tr.sweep_params({"space": "smoke"}))
    return MlflowClient(tracking_uri=db), target


def test_experiment_is_reused_and_its_artifacts_sit_next_to_the_db(store, request):
    client, target = store
    name = request.node.name
    assert runs.ensure_experiment(client, name, target.uri) == target.experiment_id
    location = client.get_experiment(target.experiment_id).artifact_location
    db_folder = Path(target.uri.removeprefix("sqlite:///")).parent
    assert Path(location.removeprefix("file://")) == db_folder / tr.ARTIFACT_DIR_NAME / name


def test_a_retried_trial_continues_its_run(store):
    client, target = store
    params = tr.param_values({"lambda_au": 2.0, "layers": "5+4", "seed": 0})
    first = runs.attach_trial_run(client, target, "t1", "trial_t1", {tr.TAG_ARM: "a"}, params)
    runs.log_metrics(client, first, {"val_cl": 10.0}, step=1)
    runs.end_run(client, first, tr.FAILED)
    again = runs.attach_trial_run(client, target, "t1", "trial_t1", {tr.TAG_ARM: "a"}, params)
    assert again == first
    run = client.get_run(first)
    assert run.info.status == tr.RUNNING
    assert run.data.tags[tr.TAG_ATTEMPTS] == "2"
    assert run.data.tags[tr.TAG_PARENT] == target.parent_run_id
    assert run.data.params["layers"] == "5+4"
    runs.log_metrics(client, first, {"val_cl": 20.0}, step=2)
    assert metric_history(target.uri, first) == [(1, 10.0), (2, 20.0)]
    other = runs.attach_trial_run(client, target, "t2", "trial_t2", {}, params)
    assert other != first
    assert len(runs.sweep_trial_runs(client, target)) == 2


def test_driver_closes_runs_with_tune_status(store):
    client, target = store
    done = runs.attach_trial_run(client, target, "t1", "n1", {}, {})
    stopped = runs.attach_trial_run(client, target, "t2", "n2", {}, {})
    lost = runs.attach_trial_run(client, target, "t3", "n3", {}, {})
    errored = runs.attach_trial_run(client, target, "t4", "n4", {}, {})
    runs.close_trial(client, target, "t1", "TERMINATED", early_stopped=False)
    runs.close_trial(client, target, "t2", "TERMINATED", early_stopped=True)
    assert runs.close_trial(client, target, "never-started", "TERMINATED", False) is None
    ended = runs.finish_stragglers(client, target, {"t4": "ERROR"})
    assert set(ended) == {lost, errored}
    status = {r.info.run_id: r.info.status for r in runs.sweep_trial_runs(client, target)}
    assert status == {done: "FINISHED", stopped: "FINISHED", lost: "KILLED", errored: "FAILED"}
    assert client.get_run(stopped).data.tags[tr.TAG_EARLY_STOPPED] == "true"
    assert client.get_run(done).data.tags[tr.TAG_EARLY_STOPPED] == "false"


def test_matrix_and_model_artifacts(store, tmp_path):
    client, target = store
    run_id = runs.attach_trial_run(client, target, "t1", "n1", {}, {})
    confusion = [[1.0 if i == j else 0.0 for j in range(7)] for i in range(7)]
    cos = {"rows": [*CLASSES[1:], "average"], "cols": ["layer5", "cam"],
           "values": [[0.5, math.nan]] * 7}
    files = {
        tr.ARTIFACT_MATRICES: artifacts.write_matrices(
            {"confusion": confusion, "cos_matrix": cos}, tmp_path / "m"),
        tr.ARTIFACT_MODEL: artifacts.write_model({"w": torch.ones(2)}, {"seed": 0},
                                                 tmp_path / "model"),
    }
    runs.log_artifacts(client, run_id, files)
    listed = {a.path for a in client.list_artifacts(run_id, tr.ARTIFACT_MATRICES)}
    assert listed == {f"{tr.ARTIFACT_MATRICES}/{n}" for n in
                      ("confusion.json", "confusion.png", "cos_matrix.json", "cos_matrix.png")}
    local = Path(client.download_artifacts(run_id, tr.ARTIFACT_MATRICES, str(tmp_path / "dl")))
    saved = json.loads((local / "cos_matrix.json").read_text())
    assert saved["values"][0] == [0.5, None]  # NaN → null: standard JSON
    assert (local / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    model = client.download_artifacts(run_id, f"{tr.ARTIFACT_MODEL}/{tr.MODEL_FILE}",
                                      str(tmp_path / "dl2"))
    assert torch.load(model)["state_dict"]["w"].sum() == 2


def test_sweep_context_round_trips(store, tmp_path):
    _, target = store
    settings = SweepSettings(space="pareto", metric=["val_cl", "val_att_cos"], mode=["max", "max"],
                             searcher="optuna_pareto", scheduler="fifo", num_configs=8, seeds=1,
                             max_concurrent=2, optuna_storage="sqlite:///optuna.db")
    ctx = SweepContext({"epochs": 2, "layers": "5"}, target, "abc", "fp", str(tmp_path), settings)
    ctx.save(tmp_path / "sweep")
    assert SweepContext.load(tmp_path / "sweep") == ctx
