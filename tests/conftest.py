"""Shared test settings: small thread counts (CI has 2 cores) and local-only Ray."""

import os
import shutil
import tempfile

import pytest
import torch

# Local test clusters need no token auth; real clusters keep Ray's default (auth on).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray per test module that runs sweeps in-process: 2 CPUs, a private temp dir.

    Yields the GCS address (for subprocess drivers given ``--address``).
    """
    import ray

    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths are limited
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A sqlite MLflow store per test module (creating one runs every MLflow migration: seconds).

    Tests that need a clean slate make their own experiment in it (``helpers.sweep_target``).
    """
    from tuner.tracking import client as runs

    return runs.normalize_uri(None, tmp_path_factory.mktemp("store"))


TRAINED_MODEL_CONFIG = dict(synthetic_n=140, img_size=64, output_stride=16, batch_size=28,
                            epochs=1, lambda_au=2.0, layers="5+4")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """One briefly trained model for the tests that look at a model (inference, explain).

    A resnet18 CAM trained for one epoch on 140 synthetic 64 px faces (λ 2, layers 5+4; output
    stride 16, so layer 5 is a 4×4 map). Keys: ``trainer``, ``checkpoint`` (the folder of
    ``Trainer.save_checkpoint``), ``selected`` (a ``model/selected.pt``, the weights file
    earlier sweep trials logged; today's log an MLflow model, which ``fer_core.inference``
    reads too).
    """
    from fer_core.config import ExperimentConfig
    from fer_core.engine import Trainer
    from tuner.results import artifacts
    from tuner.tracking import schema as tr

    root = tmp_path_factory.mktemp("trained-model")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_CACHE", str(root / "cache"))
        trainer = Trainer(ExperimentConfig.from_flat(TRAINED_MODEL_CONFIG), progress=False)
        trainer.fit()
        trainer.save_checkpoint(str(root / "checkpoint"))
    artifacts.write_model(trainer.best_state, trainer.cfg.to_flat(), root / tr.ARTIFACT_MODEL)
    return dict(trainer=trainer, checkpoint=root / "checkpoint",
                selected=root / tr.ARTIFACT_MODEL / tr.MODEL_FILE, cache=root / "cache")
