"""A trained model to look at: load it from a file or an MLflow run, then predict and map.

Used by ``fer_core.explain`` (one image) and ``analysis.figures`` (per-class average maps over a
test set). Three forms are accepted:

- an MLflow PyTorch model folder written by ``fer_core.export``: what a sweep trial logs as its
  LoggedModel ``model`` (``runs:/<run id>/model``), and ``models:/NAME@best`` after
  ``--register NAME``; loaded through ``mlflow.pytorch``;
- a ``selected.pt`` file (``{"state_dict", "config"}``), which runs of earlier versions logged
  at ``model/selected.pt``;
- a training checkpoint (``checkpoint.pt`` of ``Trainer.save_checkpoint``): its best-validation
  model when it has one, else its current weights. A sweep trial's final checkpoint holds its
  test result but no weights (they are its MLflow model) and is refused, naming the URI to use.

A source is a local file, a folder holding one of them, or an MLflow URI (``runs:/<run id>``,
``runs:/<run id>/<artifact path>``, ``mlflow-artifacts:/...``, ``models:/...``), downloaded with
``mlflow.artifacts.download_artifacts``. ``runs:/<run id>`` means the run's logged model
``model``, or its ``model/selected.pt`` artifact when it has none (a run of an earlier version).
Logged models are looked up here, in the given tracking store: MLflow's own ``runs:/`` and
``models:/<model id>`` resolution asks the process's default store for them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fer_core import NUM_CLASSES, export
from fer_core.cams import build_method, upsample_cams
from fer_core.cams.base import minmax_normalize
from fer_core.checkpoint import CHECKPOINT_FILE
from fer_core.cli import UserError
from fer_core.config import ExperimentConfig
from fer_core.losses import layer_attention

RUN_MODEL_NAME = "model"
"""The LoggedModel a sweep trial logs its selected weights as (``tuner.tracking.outputs``)."""
SELECTED_ARTIFACT = "model/selected.pt"
"""Where runs of earlier versions logged the selected weights (``tuner.tracking.schema``:
ARTIFACT_MODEL and MODEL_FILE)."""
MODEL_FILES = ("selected.pt", CHECKPOINT_FILE)
MLFLOW_SCHEMES = ("runs:", "mlflow-artifacts:", "models:")


class ModelSourceError(UserError):
    """A checkpoint source that cannot be loaded; the message names it and the fix."""


@dataclass
class LoadedModel:
    """A CAM method in eval mode with the config that built it."""

    model: torch.nn.Module
    cfg: ExperimentConfig
    source: str
    device: torch.device

    @property
    def img_size(self) -> int:
        return self.cfg.data.img_size

    @property
    def layers(self) -> tuple[int, ...]:
        """Aligned layers, then the headline layer: the layers whose attention is reported."""
        return tuple(dict.fromkeys((*self.cfg.align.layers, self.model.headline_layer)))


@dataclass
class Explanation:
    """What a model says about a batch; every map is ``(B, S, S)`` in ``[0, 1]`` at input size."""

    probs: torch.Tensor
    """``(B, 7)`` softmax probabilities (rows sum to 1)."""
    pred: torch.Tensor
    """``(B,)`` predicted class ids."""
    cams: torch.Tensor | None
    """CAM of ``class_idx`` (the predicted class by default); None for attention-only methods."""
    attention: dict[int, torch.Tensor]
    """Layer attention (channel mean), min-max normalised per image, per reported layer."""


def _is_mlflow_uri(source: str) -> bool:
    return source.startswith(MLFLOW_SCHEMES)


def _download(source: str, tracking_uri: str | None, folder: Path) -> Path:
    import mlflow.artifacts

    uri = source.rstrip("/")
    try:
        uri = _artifact_uri(uri, tracking_uri)
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder),
                                                        tracking_uri=tracking_uri))
    except Exception as err:  # mlflow raises several types; all mean "not there"
        raise ModelSourceError(
            f"could not download {uri} from MLflow ({tracking_uri or 'default tracking URI'}): "
            f"{err}. Check the run id and --mlflow-uri; a sweep trial logs its model as "
            f"runs:/<run id>/{RUN_MODEL_NAME} (runs of earlier versions: {SELECTED_ARTIFACT})"
        ) from err


def _artifact_uri(uri: str, tracking_uri: str | None) -> str:
    """Where the files behind ``uri`` are: a run's logged model and a ``models:/`` URI are
    resolved in ``tracking_uri``'s store; anything else is downloaded as given."""
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/"):].partition("/")
        if path in ("", RUN_MODEL_NAME):
            location = _logged_model_location(run_id, tracking_uri)
            if location is not None:
                return location
            if not path:  # a run of an earlier version: its selected.pt artifact
                return f"runs:/{run_id}/{SELECTED_ARTIFACT}"
        return uri
    if uri.startswith("models:/") and tracking_uri:
        return _registry_source(uri, tracking_uri)
    return uri


def _logged_model_location(run_id: str, tracking_uri: str | None) -> str | None:
    """The artifact location of the run's latest logged model named ``model``, if any."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    outputs = client.get_run(run_id).outputs
    linked = list(outputs.model_outputs) if outputs and outputs.model_outputs else []
    for output in sorted(linked, key=lambda m: m.step, reverse=True):
        model = client.get_logged_model(output.model_id)
        if model.name == RUN_MODEL_NAME:
            return model.artifact_location
    return None


def _registry_source(uri: str, tracking_uri: str) -> str:
    """``models:/NAME@alias``, ``models:/NAME/version`` or ``models:/<model id>`` → where that
    model's files are, looked up in ``tracking_uri``'s store."""
    from mlflow import MlflowClient

    ref = uri[len("models:/"):]
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if ref.startswith("m-"):  # a logged model id
        return client.get_logged_model(ref).artifact_location
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return client.get_model_version_by_alias(name, alias).source
    name, _, version = ref.partition("/")
    return client.get_model_version(name, version).source


def resolve_file(source: str | os.PathLike, tracking_uri: str | None,
                 download_dir: Path) -> Path:
    """The local model file behind ``source`` (downloaded into ``download_dir`` first when it
    is an MLflow URI)."""
    text = str(source)
    path = (_download(text, tracking_uri, download_dir) if _is_mlflow_uri(text)
            else Path(text).expanduser())
    if path.is_dir():
        found = [path / name for name in MODEL_FILES if (path / name).is_file()]
        if not found and export.is_mlflow_model(path):  # e.g. models:/NAME@best
            return path
        if not found:
            raise ModelSourceError(f"{path} holds none of {', '.join(MODEL_FILES)}: pass the "
                                   "model file itself or the folder a run wrote")
        path = found[0]
    if not path.is_file():
        raise ModelSourceError(f"no model file at {path}: pass a selected.pt / checkpoint.pt "
                               "file, a folder holding one, or runs:/<run id>")
    return path


def _weights(payload: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, flat config) out of either file format."""
    if isinstance(payload, dict) and "config" in payload:
        if "state_dict" in payload:
            return payload["state_dict"], payload["config"]
        if "model" in payload or payload.get("best_state"):  # a finished run: best weights only
            return payload.get("best_state") or payload["model"], payload["config"]
        if payload.get("finished"):
            raise ModelSourceError(
                f"{path} is the final checkpoint of a finished sweep trial: it holds the test "
                f"result, not the weights; load runs:/<run id>/{RUN_MODEL_NAME} (the trial's "
                "logged model) instead")
    raise ModelSourceError(f"{path} is not a model file of this project (expected the keys "
                           "state_dict+config or model+config)")


def load_model(source: str | os.PathLike, tracking_uri: str | None = None,
               device: str | torch.device = "cpu") -> LoadedModel:
    """Build the method from the file's config and load its weights (eval mode).

    A model downloaded from MLflow is read into memory, and its files are removed (MLflow's own
    default would leave ~45 MB in a temporary folder per load)."""
    device = torch.device(device)
    with tempfile.TemporaryDirectory(prefix="fer-model-") as downloads:
        path = resolve_file(source, tracking_uri, Path(downloads))
        if path.is_dir():  # an MLflow PyTorch model (fer_core.export): the method, pickled
            try:
                model, flat = export.load_mlflow_model(path)
            except UserError as err:
                raise ModelSourceError(str(err)) from None
            cfg = ExperimentConfig.from_flat(flat, strict=False)
            return LoadedModel(model.to(device).eval(), cfg, str(source), device)
        # weights_only=False: the files hold a config dict next to tensors; they are this
        # project's own outputs (never load a file from an untrusted source).
        payload = torch.load(path, map_location="cpu", weights_only=False)
    state, flat = _weights(payload, path)
    cfg = ExperimentConfig.from_flat(flat, strict=False)
    model = build_method(cfg.method, cfg.model, num_classes=NUM_CLASSES,
                         img_size=cfg.data.img_size)
    model.load_state_dict(state)
    return LoadedModel(model.to(device).eval(), cfg, str(source), device)


def explain_batch(loaded: LoadedModel, x: torch.Tensor,
                  class_idx: torch.Tensor | None = None) -> Explanation:
    """Probabilities, the CAM of ``class_idx`` (default: predicted) and the layer attention.

    ``x``: ``(B, 3, S, S)`` normalised images (``fer_core.data.transforms`` evaluation output).
    """
    model = loaded.model
    x = x.to(loaded.device)
    size = tuple(x.shape[-2:])
    with torch.no_grad():
        out = model(x, layers=loaded.layers)
        probs = F.softmax(out.logits.float(), dim=1)
        attention = {}
        for k in loaded.layers:
            attn = layer_attention(out.feats[k].float())[:, None]
            attn = F.interpolate(attn, size=size, mode="bilinear", align_corners=False)[:, 0]
            attention[k] = minmax_normalize(attn)
    pred = probs.argmax(1)
    cams = None
    if model.has_cam:
        idx = pred if class_idx is None else class_idx.to(loaded.device)
        with torch.enable_grad():  # gradient-based CAMs need autograd
            cams = upsample_cams(model.cams(x, idx).float(), size)
    return Explanation(probs.cpu(), pred.cpu(), None if cams is None else cams.cpu(),
                       {k: v.cpu() for k, v in attention.items()})
