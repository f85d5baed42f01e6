"""Loading a trained model from every source ``fer_core.inference`` accepts, and what it says."""

import tempfile
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from fer_core.engine import Trainer
from fer_core.export import save_mlflow_model
from fer_core.inference import (
    RUN_MODEL_NAME,
    SELECTED_ARTIFACT,
    ModelSourceError,
    explain_batch,
    load_model,
)
from tuner.tracking import outputs
from tuner.tracking import schema as tr


@pytest.fixture(scope="module")
def trained(trained_model):
    trainer = trained_model["trainer"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_CACHE", str(trained_model["cache"]))
        batch = next(iter(trainer.loaders["test"]))
    return trained_model, trainer, batch


def test_sweep_schema_and_loader_agree_on_the_model_artifact():
    assert RUN_MODEL_NAME == outputs.MODEL_NAME
    assert SELECTED_ARTIFACT == f"{tr.ARTIFACT_MODEL}/{tr.MODEL_FILE}"


def test_checkpoint_and_selected_model_give_the_same_predictions(trained):
    model, trainer, batch = trained
    from_ckpt = load_model(model["checkpoint"])
    from_selected = load_model(model["selected"])
    assert from_ckpt.cfg == trainer.cfg and from_ckpt.layers == (5, 4)
    a, b = explain_batch(from_ckpt, batch["image"]), explain_batch(from_selected, batch["image"])
    torch.testing.assert_close(a.probs, b.probs)
    assert torch.allclose(a.probs.sum(1), torch.ones(len(a.probs)), atol=1e-5)
    assert torch.equal(a.pred, a.probs.argmax(1))
    size = (trainer.cfg.data.img_size,) * 2
    assert a.cams.shape == (len(a.probs), *size) and 0 <= a.cams.min() <= a.cams.max() <= 1
    for layer, maps in a.attention.items():
        assert maps.shape == (len(a.probs), *size), layer
        assert float(maps.amax(dim=(1, 2)).min()) == pytest.approx(1.0)


def test_cams_follow_the_requested_class(trained):
    model, _, batch = trained
    loaded = load_model(model["checkpoint"])
    x = batch["image"][:4]
    other = (explain_batch(loaded, x).pred + 1) % 7
    assert not torch.allclose(explain_batch(loaded, x, class_idx=other).cams,
                              explain_batch(loaded, x).cams)


def temp_dir_for(monkeypatch, tmp_path: Path) -> Path:
    """A temp folder of its own for this test, to see what a load leaves behind in it."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def test_runs_uri_of_an_older_run_downloads_its_selected_pt(trained, tmp_path, monkeypatch):
    model, _, batch = trained
    temp = temp_dir_for(monkeypatch, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("inference", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp).info.run_id
    client.log_artifact(run, str(model["selected"]), tr.ARTIFACT_MODEL)
    loaded = load_model(f"runs:/{run}", tracking_uri=uri)
    reference = load_model(model["checkpoint"])
    torch.testing.assert_close(explain_batch(loaded, batch["image"]).probs,
                               explain_batch(reference, batch["image"]).probs)
    with pytest.raises(ModelSourceError, match="runs:/0123"):
        load_model("runs:/0123456789abcdef", tracking_uri=uri)
    assert list(temp.iterdir()) == []  # the download was removed once loaded


def test_bad_sources_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(ModelSourceError, match="no model file at .*missing.pt"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(ModelSourceError, match="holds none of selected.pt, checkpoint.pt"):
        load_model(tmp_path)
    junk = Path(tmp_path / "junk.pt")
    torch.save({"weights": 1}, junk)
    with pytest.raises(ModelSourceError, match="not a model file of this project"):
        load_model(junk)


def test_runs_uri_loads_the_logged_model_from_the_given_store(trained, tmp_path, monkeypatch):
    """A sweep trial's one copy of its weights is its LoggedModel ``model``: ``runs:/<id>``
    finds it in the store passed, whatever MLflow's process-wide default store is."""
    model, trainer, batch = trained
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    temp = temp_dir_for(monkeypatch, tmp_path)
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("logged", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp).info.run_id
    reference = load_model(model["selected"])
    folder = save_mlflow_model(reference.model, reference.cfg.to_flat(), reference.img_size,
                               tmp_path / "staged" / "model")
    outputs.log_model_folder(client, exp, run, folder, step=1)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    expected = explain_batch(reference, batch["image"]).probs
    for source in (f"runs:/{run}", f"runs:/{run}/model"):
        loaded = load_model(source, tracking_uri=uri)
        assert loaded.cfg == reference.cfg
        torch.testing.assert_close(explain_batch(loaded, batch["image"]).probs, expected)
    model_id = outputs.run_model_id(client, run)
    by_id = load_model(f"models:/{model_id}", tracking_uri=uri)
    torch.testing.assert_close(explain_batch(by_id, batch["image"]).probs, expected)
    assert list(temp.iterdir()) == []  # each download was removed once loaded


def test_a_sweep_trials_final_checkpoint_names_the_uri_to_load(trained, tmp_path, monkeypatch):
    model, trainer, _ = trained
    monkeypatch.setenv("FER_CACHE", str(model["cache"]))
    tested = Trainer(trainer.cfg, progress=False)  # the same run's state, as a trial saves it
    tested.load_checkpoint(str(model["checkpoint"]))
    assert tested.final is not None
    path = Path(tested.save_checkpoint(str(tmp_path / "final"), selected_weights=False))
    with pytest.raises(ModelSourceError) as err:
        load_model(path.parent)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "holds the test result, not the weights" in message
    assert "runs:/<run id>/model" in message
