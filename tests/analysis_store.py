"""A real sqlite MLflow store filled through MlflowClient, shared by the figure and report tests.

Two experiments:

- ``SWEEPS``: a ``lambda`` sweep (λ × 3 seeds, known test metrics) and a ``pareto`` sweep (known
  CL / ATT-COS points with a known front), runs only: no artifacts.
- ``TRAINED``: two trials really trained with ``fer_core.engine.Trainer`` on synthetic faces
  (λ = 0 at layer 5, λ = 4 at layers 5+4), logged as ``tuner.trainable`` logs them (params,
  final metrics, ``matrices/*.json|png``) but with their weights as ``model/selected.pt``, the
  format earlier versions logged, which the analysis and inference still read.

The store is built once per test process (``shared_store``), since training costs seconds.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from fer_core.config import ExperimentConfig
from fer_core.engine import Trainer
from tuner.results import artifacts
from tuner.tracking import schema as tr

SWEEPS, TRAINED = "fig-sweeps", "fig-trained"
COMMIT = "c" * 40
SEEDS = (0, 1, 2)
BASE = dict(method="cam", backbone="resnet18", synthetic_n=140, img_size=64, epochs=3)

# λ → metric → values for seeds 0, 1, 2 (layer 5)
LAMBDA_RUNS = {
    0.0: {"test_cl": [60.0, 61.0, 62.5], "test_cam_cos": [0.40, 0.42, 0.41],
          "test_att_cos": [0.45, 0.44, 0.47]},
    0.5: {"test_cl": [62.0, 63.0, 61.0], "test_cam_cos": [0.45, 0.47, 0.46],
          "test_att_cos": [0.55, 0.56, 0.58]},
    4.0: {"test_cl": [65.0, 66.0, 64.5], "test_cam_cos": [0.55, 0.58, 0.56],
          "test_att_cos": [0.68, 0.70, 0.69]},
    16.0: {"test_cl": [58.0, 57.0, 59.5], "test_cam_cos": [0.60, 0.61, 0.59],
           "test_att_cos": [0.74, 0.73, 0.75]},
}

# (λ, layers, test_cl, test_att_cos, on the front)
PARETO_RUNS = (
    (0.0, "5", 60.0, 0.50, True),
    (4.0, "5", 58.0, 0.60, True),
    (8.0, "5+4", 55.0, 0.70, True),
    (2.0, "5+4", 57.0, 0.55, False),  # below (58, 0.60)
    (12.0, "4", 50.0, 0.65, False),  # below (55, 0.70)
    (0.5, "5", 60.0, 0.45, False),  # same CL as (60, 0.50), lower ATT-COS
    (16.0, "5+4+3", 52.0, 0.70, False),  # same ATT-COS as (55, 0.70), lower CL
)

# the two trained trials: small enough to train in a few seconds on 2 CPU cores
TRAIN = dict(synthetic_n=140, img_size=64, output_stride=16, batch_size=35, epochs=1)
TRAINED_ARMS = ({"lambda_au": 0.0, "layers": "5"}, {"lambda_au": 4.0, "layers": "5+4"})


@dataclass(frozen=True)
class Store:
    uri: str
    root: Path
    cache: Path
    """``FER_CACHE`` the trained runs' synthetic data lives in."""
    trained: dict[float, str]
    """λ → run id of the trained trials."""
    matrices: dict[str, dict]
    """run id → ``Trainer.final_matrices`` as logged."""


def new_experiment(client: MlflowClient, name: str, root: Path) -> str:
    # an absolute artifact location: never ./mlruns of whatever folder pytest runs in
    return client.create_experiment(name, artifact_location=(root / name).as_uri())


def add_trial(client: MlflowClient, exp_id: str, parent: str, space: str, flat: dict,
              metrics: dict[str, float], sweep: str | None = None) -> str:
    """One FINISHED child run with the schema's tags, the full config as params."""
    sweep = sweep or f"{space}-1"
    tags = {tr.TAG_PARENT: parent, tr.TAG_ROLE: tr.ROLE_TRIAL, tr.TAG_SWEEP: sweep,
            tr.TAG_SPACE: space, tr.TAG_ARM: f"lambda_au={flat['lambda_au']}",
            tr.TAG_GIT_COMMIT: COMMIT, tr.TAG_EARLY_STOPPED: "false",
            tr.TAG_TUNE_STATUS: "TERMINATED"}
    run = client.create_run(exp_id, tags=tags)
    config = ExperimentConfig.from_flat(flat).to_flat()
    client.log_batch(run.info.run_id,
                     params=[Param(k, v) for k, v in tr.param_values(config).items()],
                     metrics=[Metric(k, float(v), 0, 1) for k, v in metrics.items()])
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def add_parent(client: MlflowClient, exp_id: str, space: str) -> str:
    return client.create_run(exp_id, tags={tr.TAG_ROLE: tr.ROLE_PARENT, tr.TAG_SPACE: space,
                                           tr.TAG_SWEEP: f"{space}-1"}).info.run_id


def fill_sweeps(client: MlflowClient, root: Path) -> None:
    exp_id = new_experiment(client, SWEEPS, root)
    parent = add_parent(client, exp_id, "lambda")
    for lam, metrics in LAMBDA_RUNS.items():
        for i, seed in enumerate(SEEDS):
            values = {k: v[i] for k, v in metrics.items()} | {"best_val_cl": 50.0 + i}
            add_trial(client, exp_id, parent, "lambda",
                      BASE | {"lambda_au": lam, "layers": "5", "seed": seed}, values)
    parent = add_parent(client, exp_id, "pareto")
    for lam, layers, cl, att, _ in PARETO_RUNS:
        add_trial(client, exp_id, parent, "pareto", BASE | {"lambda_au": lam, "layers": layers},
                  {"test_cl": cl, "test_att_cos": att, "test_cam_cos": 0.5,
                   "best_val_cl": 40.0})


def train_and_log(client: MlflowClient, exp_id: str, parent: str, arm: dict,
                  work: Path, cache: Path) -> tuple[str, dict]:
    """Train one small trial for real and log it the way the sweep's trainable does."""
    trainer = Trainer(ExperimentConfig.from_flat(TRAIN | arm), progress=False,
                      cache_dir=str(cache))
    final = trainer.fit()
    metrics = tr.metric_values(trainer.history[-1] | final)
    run_id = add_trial(client, exp_id, parent, "methods", trainer.cfg.to_flat(), metrics)
    folder = work / run_id
    files = {tr.ARTIFACT_MATRICES: artifacts.write_matrices(trainer.final_matrices,
                                                            folder / tr.ARTIFACT_MATRICES),
             tr.ARTIFACT_MODEL: artifacts.write_model(trainer.best_state, trainer.cfg.to_flat(),
                                                      folder / tr.ARTIFACT_MODEL)}
    for artifact_path, paths in files.items():
        for path in paths:
            client.log_artifact(run_id, str(path), artifact_path=artifact_path)
    return run_id, trainer.final_matrices


_STORES: dict[str, Store] = {}


def shared_store(tmp_path_factory) -> Store:
    """The store of this test process (built at the first call, ~10 s)."""
    if "store" not in _STORES:
        root = tmp_path_factory.mktemp("analysis-store")
        uri = f"sqlite:///{root}/mlflow.db"
        client = MlflowClient(uri)
        fill_sweeps(client, root)
        exp_id = new_experiment(client, TRAINED, root)
        parent = add_parent(client, exp_id, "methods")
        trained, matrices = {}, {}
        with tempfile.TemporaryDirectory() as work:
            for arm in TRAINED_ARMS:
                run_id, logged = train_and_log(client, exp_id, parent, arm, Path(work),
                                               root / "cache")
                trained[arm["lambda_au"]], matrices[run_id] = run_id, logged
        _STORES["store"] = Store(uri, root, root / "cache", trained, matrices)
    return _STORES["store"]



# Fixtures ``store`` and the autouse ``store_cache`` for the modules that read this store; they
# import ``store_fixture, store_cache`` (imported under a name of their own, not a test argument's).
@pytest.fixture(scope="module", name="store")
def store_fixture(tmp_path_factory) -> Store:
    return shared_store(tmp_path_factory)


@pytest.fixture(autouse=True)
def store_cache(store, monkeypatch):
    """Rebuilding a trained run's split (figures, maps) must find the data it was trained on."""
    monkeypatch.setenv("FER_CACHE", str(store.cache))

def t_interval(values: list[float]) -> tuple[float, float]:
    """Mean and 95 % Student-t half-width, computed here without ``analysis.stats``."""
    t975 = {2: 4.302652729911275}  # tabulated t quantiles by degrees of freedom
    a = np.asarray(values, dtype=float)
    return float(a.mean()), t975[a.size - 1] * float(a.std(ddof=1)) / float(np.sqrt(a.size))
