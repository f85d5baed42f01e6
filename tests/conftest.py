"""Shared test settings (small thread counts: CI has 2 cores; local-only Ray), the guard of the
fast tier (tests/slow_guard.py) and what the suite builds once (docs/testing.md)."""

import contextlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from slow_guard import pytest_addoption, pytest_runtest_makereport  # noqa: F401 (hooks)

pytest_plugins = ["pytester"]  # tests/test_slow_guard.py runs pytest on small test files

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


@pytest.fixture(autouse=True)
def cwd_is_restored():
    """A test that changes directory must give it back (``monkeypatch.chdir``): its tmp_path is
    deleted once it passes, and every later test would run in a directory that is gone."""
    before = os.getcwd()
    yield
    try:
        after = os.getcwd()
    except FileNotFoundError:
        after = "a directory since deleted"
    if after != before:
        os.chdir(before)
        pytest.fail(f"the test left the working directory at {after}: use monkeypatch.chdir")


class SharedRay:
    """One local Ray for the whole session (2 CPUs, a private temp dir), started when a test
    first asks for it: starting one costs seconds and ~700 MB, and most Ray tests only need a
    plain local runtime. A test that must find none running (it starts its own cluster, or
    checks that a command starts nothing) asks for ``no_ray``, which stops it; the next test
    asking for ``ray_runtime`` starts it again."""

    def __init__(self) -> None:
        self.temp: str | None = None
        self.address: str | None = None

    def up(self) -> str:
        import ray

        if self.address is None:
            assert not ray.is_initialized(), "a test left its own Ray connected"
            self.temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths
            ray.init(num_cpus=2, include_dashboard=False, _temp_dir=self.temp)
            self.address = ray.get_runtime_context().gcs_address
        assert ray.is_initialized(), "a test shut the shared Ray down: ask for no_ray instead"
        return self.address

    def down(self) -> None:
        import ray

        if self.address is not None:
            ray.shutdown()
            shutil.rmtree(self.temp, ignore_errors=True)
            self.temp = self.address = None


@pytest.fixture(scope="session")
def shared_ray():
    runtime = SharedRay()
    yield runtime
    runtime.down()


@pytest.fixture()
def ray_runtime(shared_ray) -> str:
    """The session's local Ray, up: its GCS address (for subprocess drivers given
    ``--address``). Sweeps run by ``tuner.sweep.main`` in this process use it and leave it up."""
    return shared_ray.up()


@pytest.fixture()
def no_ray(shared_ray) -> None:
    """No Ray runtime in this process: the session's is stopped if it is up."""
    shared_ray.down()


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


@dataclass(frozen=True)
class FinishedSweep:
    """A sweep run to its end: where it wrote, what it printed and its exit code."""

    root: Path
    """The folder it ran in (its working directory)."""
    storage: Path
    """``--storage-path``: the sweep's folder is ``storage / name``."""
    uri: str
    """Its MLflow store."""
    name: str
    code: int
    stdout: str


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory, shared_ray) -> FinishedSweep:
    """The ``smoke`` space with its defaults, run once per session by ``tuner.sweep.main`` in
    this process, on the session's Ray.

    For the tests that only read a finished sweep: its store, its folder, its printed summary.
    They must not write into it (a report goes under ``root``, in a folder of its own).
    """
    from tuner.sweep import main

    shared_ray.up()
    root = tmp_path_factory.mktemp("smoke-sweep")
    storage, uri = root / "ray_results", f"sqlite:///{root}/mlflow.db"
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.chdir(root)
        code = main(["--space", "smoke", "--name", "s", "--storage-path", str(storage),
                     "--mlflow-uri", uri])
    return FinishedSweep(root, storage, uri, "s", code, out.getvalue())


CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
"""Debian's chromium: playwright drives it (its own browser download cannot reach the network)."""


@pytest.fixture(scope="module")
def browser():
    """One headless chromium per test module that opens pages (the MLflow UI, the docs site)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "install Debian's browser: apt-get install -y chromium"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM),
                                      args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()
