"""Loading a trained model from every source ``fer_core.inference`` accepts, and what it says."""

from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from fer_core.inference import RUN_MODEL_ARTIFACT, ModelSourceError, explain_batch, load_model
from tuner.tracking import schema as tr


@pytest.fixture(scope="module")
def trained(trained_model):
    trainer = trained_model["trainer"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_CACHE", str(trained_model["cache"]))
        batch = next(iter(trainer.loaders["test"]))
    return trained_model, trainer, batch


def test_sweep_schema_and_loader_agree_on_the_model_artifact():
    assert RUN_MODEL_ARTIFACT == f"{tr.ARTIFACT_MODEL}/{tr.MODEL_FILE}"


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


def test_runs_uri_downloads_the_logged_model(trained, tmp_path):
    model, _, batch = trained
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


def test_bad_sources_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(ModelSourceError, match="no model file at .*missing.pt"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(ModelSourceError, match="holds none of selected.pt, checkpoint.pt"):
        load_model(tmp_path)
    junk = Path(tmp_path / "junk.pt")
    torch.save({"weights": 1}, junk)
    with pytest.raises(ModelSourceError, match="not a model file of this project"):
        load_model(junk)
