"""MLflow as its users meet it: the experiment's kind, run names, the sweep link, the best trial
on the parent, dataset inputs, the PyTorch-flavour model and the Model Registry.

Everything runs against a real SQLite MLflow store and a really trained model.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import mlflow.pytorch
import pytest
import torch
from mlflow import MlflowClient

from fer_core.export import Classifier, save_mlflow_model
from fer_core.inference import explain_batch, load_model
from fer_core.objective import Objective
from tuner.spec.settings import SweepSettings
from tuner.tracking import client as runs
from tuner.tracking import outputs, ui


@pytest.mark.parametrize(("flat", "label"), [
    ({"method": "cam", "lambda_au": 4.0, "layers": "5", "seed": 0}, "cam λ=4 L5 s0"),
    ({"method": "acol", "lambda_au": 2.2898514, "layers": "5+4", "seed": 3},
     "acol λ=2.29 L5+L4 s3"),
    ({"method": "cam", "lambda_au": 0.0, "layers": "5", "seed": 1}, "cam λ=0 s1"),
])
def test_trial_runs_are_named_by_what_they_are(flat, label):
    assert ui.run_label(flat) == label


def test_link_opens_the_sweeps_trials_sorted_by_the_objective():
    link = ui.trials_link("http://host:5000/", "7", "demo-1", "val_att_cos", "max")
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://host:5000/"
    route, query = parts.fragment.split("?", 1)
    assert route == "/experiments/7/runs"
    q = parse_qs(query)
    assert q["searchFilter"] == ["tags.`sweep.name` = 'demo-1' and tags.`sweep.role` = 'trial'"]
    assert q["orderByKey"] == ["metrics.`val_att_cos`"] and q["orderByAsc"] == ["false"]
    assert q["workflowType"] == ["machine_learning"]  # else a new browser opens on GenAI
    assert ui.experiment_link("http://h/", "7") == (
        "http://h/#/experiments/7/runs?workflowType=machine_learning")
    assert "orderByAsc=true" in ui.trials_link("http://h", "7", "d", "val_loss", "min")
    assert ui.ui_base("sqlite:////x/mlflow.db") == ui.LOCAL_UI


def test_experiment_is_created_and_retagged_as_model_training(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    new = runs.ensure_experiment(client, "fresh", uri)
    assert client.get_experiment(new).tags[ui.TAG_EXPERIMENT_KIND] == ui.KIND_MODEL_TRAINING
    old = client.create_experiment("older")  # made before the kind was set
    assert runs.ensure_experiment(client, "older", uri) == old
    assert client.get_experiment(old).tags[ui.TAG_EXPERIMENT_KIND] == ui.KIND_MODEL_TRAINING


def test_best_trial_is_summed_up_for_the_parent(tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("best")
    made = []
    for name, val, test in (("a", 50.0, 40.0), ("b", 70.0, 60.0), ("c", 90.0, None)):
        run = client.create_run(exp, run_name=name).info.run_id
        client.log_metric(run, "val_cl", val)
        if test is not None:  # "c" was stopped early: no test result, never the best
            client.log_metric(run, "test_cl", test)
            client.log_metric(run, "test_att_cos", 0.5)
        made.append(client.get_run(run))
    best = ui.best_run(made, Objective("val_cl", "max"))
    assert best.info.run_name == "b"
    assert ui.best_run(made, Objective("val_cl", "min")).info.run_name == "a"
    metrics, tags = ui.best_summary(best)
    assert metrics == {"best.test_cl": 60.0, "best.test_att_cos": 0.5, "best.val_cl": 70.0}
    assert tags == {ui.TAG_BEST_RUN_ID: best.info.run_id, ui.TAG_BEST_RUN_NAME: "b"}
    assert ui.best_run(made[2:], Objective("val_cl", "max")) is None


@pytest.fixture(scope="module")
def logged(trained_model, tmp_path_factory):
    """The shared trained model logged as a trial does: datasets, PyTorch model, registry."""
    root = tmp_path_factory.mktemp("ux")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = runs.ensure_experiment(client, "ux", uri)
    run = client.create_run(exp, run_name="cam λ=2 L5+L4 s0").info.run_id
    loaded = load_model(trained_model["selected"])
    folder = save_mlflow_model(loaded.model, loaded.cfg.to_flat(), loaded.img_size,
                               root / "staged" / "model")
    outputs.log_model_folder(client, exp, run, folder, step=1)
    sizes = {k: len(v.dataset) for k, v in trained_model["trainer"].loaders.items()}
    outputs.log_datasets(client, run, outputs.dataset_inputs("synthetic", "abc123", sizes,
                                                             str(root)))
    return {"uri": uri, "client": client, "run": run, "loaded": loaded, "sizes": sizes}


def test_trial_datasets_are_mlflow_inputs(logged):
    inputs = logged["client"].get_run(logged["run"]).inputs.dataset_inputs
    by_context = {i.tags[0].value: i.dataset for i in inputs}
    assert set(by_context) == {"train", "validation", "test"}
    assert {d.digest for d in by_context.values()} == {"abc123"}
    assert by_context["train"].name == "synthetic-train"
    assert f'"train_size": {logged["sizes"]["train"]}' in by_context["test"].profile


def test_runs_uri_loads_a_working_pytorch_model(logged, trained_model, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged["uri"])
    model = mlflow.pytorch.load_model(f"runs:/{logged['run']}/model")
    assert isinstance(model, Classifier)
    trainer = trained_model["trainer"]
    monkeypatch.setenv("FER_CACHE", str(trained_model["cache"]))
    images = next(iter(trainer.loaders["test"]))["image"]
    expected = explain_batch(logged["loaded"], images).probs
    with torch.no_grad():
        torch.testing.assert_close(model(images).softmax(1), expected)
    # fer_core.inference takes the same URI, and runs:/<run id> alone (analysis.maps does)
    for source in (f"runs:/{logged['run']}/model", f"runs:/{logged['run']}"):
        again = load_model(source, tracking_uri=logged["uri"])
        torch.testing.assert_close(explain_batch(again, images).probs, expected)


def test_register_puts_the_model_under_the_best_alias(logged, trained_model, monkeypatch):
    client = logged["client"]
    uri = outputs.register_best(client, "fer-best", logged["run"])
    assert uri == "models:/fer-best@best"
    version = client.get_model_version_by_alias("fer-best", "best")
    assert version.run_id == logged["run"] and int(version.version) == 1
    assert outputs.register_best(client, "fer-best", logged["run"]) == uri  # a second sweep
    assert int(client.get_model_version_by_alias("fer-best", "best").version) == 2
    monkeypatch.setenv("FER_CACHE", str(trained_model["cache"]))
    images = next(iter(trained_model["trainer"].loaders["test"]))["image"]
    from_registry = load_model(uri, tracking_uri=logged["uri"])  # only the MLflow model there
    torch.testing.assert_close(explain_batch(from_registry, images).probs,
                               explain_batch(logged["loaded"], images).probs)
    assert from_registry.cfg == logged["loaded"].cfg


def test_registering_a_run_without_a_model_names_it(logged):
    client = logged["client"]
    bare = client.create_run(client.get_run(logged["run"]).info.experiment_id).info.run_id
    with pytest.raises(Exception, match=f"run {bare} has no logged model"):
        outputs.register_best(client, "fer-best", bare)


def test_register_name_is_checked_before_the_sweep():
    common = dict(space="smoke", metric="val_cl", mode="max", searcher="optuna",
                  scheduler="fifo", num_configs=1, seeds=1, max_concurrent=1)
    assert SweepSettings(**common, register="au-guided_fer.v1").register == "au-guided_fer.v1"
    with pytest.raises(ValueError, match="--register 'a/b'"):
        SweepSettings(**common, register="a/b")
