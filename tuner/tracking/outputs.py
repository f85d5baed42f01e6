"""What a trial run takes in and gives out, in MLflow's own terms: dataset inputs, a logged
PyTorch model, and (for a sweep's best trial) a Model Registry version under an alias.

- Datasets: one ``DatasetInput`` per split (context ``train``/``validation``/``test``), all with
  the dataset's name and the sweep's data fingerprint as digest; the profile holds the split
  sizes. The UI's Dataset column and its dataset filter read these.
- Model: the trial writes the selected model as an MLflow PyTorch model folder
  (``fer_core.export``), offline; delivery creates a LoggedModel named ``model`` whose source
  run is the trial's run, uploads the folder and links it as the run's output, which is what
  the Models column shows and what ``runs:/<run id>/model`` resolves to. It is the trial's one
  copy of its selected weights (its final checkpoint holds the test result instead).
- Registry: ``--register NAME`` adds the best trial's model as a new version of ``NAME`` and
  points the alias ``best`` at it (``models:/NAME@best``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, LoggedModelOutput
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

MODEL_NAME = "model"
"""The logged model's name: ``runs:/<run id>/model``, the trial's only copy of its selected
weights (runs of earlier versions also have a ``model/selected.pt`` artifact, which MLflow
merges into the folder that URI downloads)."""
REGISTRY_ALIAS = "best"
SPLIT_CONTEXT = {"train": "train", "val": "validation", "test": "test"}
"""Engine split → MLflow's dataset context tag value."""


def dataset_inputs(name: str, fingerprint: str, sizes: Mapping[str, int],
                   source: str) -> list[dict[str, str]]:
    """The datasets of a trial as plain dicts (they are journaled as JSON before delivery)."""
    profile = json.dumps({"num_rows": sum(sizes.values()), **{f"{k}_size": v
                                                             for k, v in sizes.items()}})
    return [{"name": f"{name}-{split}", "digest": fingerprint, "source": source,
             "profile": profile, "context": SPLIT_CONTEXT.get(split, split)} for split in sizes]


def log_datasets(client: MlflowClient, run_id: str, datasets: list[Mapping[str, str]]) -> None:
    """``dataset_inputs`` → the run's inputs (MLflow keeps one copy of a dataset per
    experiment, so a retried trial logging them again adds nothing)."""
    client.log_inputs(run_id, datasets=[
        DatasetInput(Dataset(name=d["name"], digest=d["digest"], source_type="local",
                             source=json.dumps({"uri": d["source"]}), profile=d["profile"]),
                     tags=[InputTag(MLFLOW_DATASET_CONTEXT, d["context"])])
        for d in datasets])


def log_model_folder(client: MlflowClient, experiment_id: str, run_id: str, folder: Path,
                     step: int) -> str:
    """Upload an MLflow model folder as the run's LoggedModel ``model``; returns its id."""
    model = client.create_logged_model(experiment_id, name=MODEL_NAME, source_run_id=run_id)
    try:
        client.log_model_artifacts(model.model_id, str(folder))
    except Exception:
        client.finalize_logged_model(model.model_id, "FAILED")
        raise
    client.finalize_logged_model(model.model_id, "READY")
    client.log_outputs(run_id, models=[LoggedModelOutput(model.model_id, step=step)])
    return model.model_id


def run_model_id(client: MlflowClient, run_id: str) -> str | None:
    """The latest model the run logged (its highest step), if any."""
    outputs = client.get_run(run_id).outputs
    models = list(outputs.model_outputs) if outputs and outputs.model_outputs else []
    return max(models, key=lambda m: m.step).model_id if models else None


def register_best(client: MlflowClient, name: str, run_id: str) -> str:
    """Register the run's logged model as a new version of ``name`` with alias ``best``;
    returns ``models:/NAME@best``."""
    model_id = run_model_id(client, run_id)
    if model_id is None:
        raise MlflowException(f"run {run_id} has no logged model to register as {name!r}")
    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # The model's own artifact location as source: a models:/<id> source would be looked up
    # in the process's default tracking store, not in this client's.
    source = client.get_logged_model(model_id).artifact_location
    version = client.create_model_version(name, source=source, run_id=run_id,
                                          model_id=model_id)
    client.set_registered_model_alias(name, REGISTRY_ALIAS, version.version)
    return f"models:/{name}@{REGISTRY_ALIAS}"
