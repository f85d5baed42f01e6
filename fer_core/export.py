"""The selected model as an MLflow PyTorch model: ``mlflow.pytorch.load_model`` gives it back.

A CAM method's ``forward`` returns a ``MethodOutput`` (logits, tapped features, extra losses),
which MLflow's pyfunc and serving cannot pass on. ``Classifier`` wraps the method so that
``forward(images) -> logits`` (what the signature and the input example describe); the method
itself stays reachable as ``.method`` and the flat config that built it as ``.config``, so
``fer_core.inference`` rebuilds its ``LoadedModel`` (CAMs, layer attention) from the same file.

The model is pickled (``serialization_format="pickle"``): MLflow 3's default, a ``torch.export``
program, loads as a traced graph without the method's CAM machinery. Unpickling imports the
classes from ``fer_core``, so loading needs this package installed (as every reader here has).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_core.cli import UserError

MLMODEL_FILE = "MLmodel"  # what marks a folder as an MLflow model


class Classifier(nn.Module):
    """A CAM method seen as an image classifier: ``(B, 3, S, S)`` float images → ``(B, 7)``
    logits."""

    def __init__(self, method: nn.Module, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.method = method
        self.config = dict(config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.method(images).logits


def requirements() -> list[str]:
    """Pinned to what is installed: given explicitly, MLflow does not start a subprocess that
    imports torch to infer them (several seconds per trial)."""
    import timm
    import torchvision

    return [f"torch=={torch.__version__.split('+')[0]}",
            f"torchvision=={torchvision.__version__.split('+')[0]}", f"timm=={timm.__version__}"]


def save_mlflow_model(method: nn.Module, config: Mapping[str, Any], img_size: int,
                      folder: Path) -> Path:
    """Write ``method`` (weights as they are now) as an MLflow PyTorch model in ``folder``
    (which must not exist): signature and input example from one real forward pass."""
    import mlflow.pytorch
    from mlflow.models import infer_signature

    model = Classifier(method, config).cpu().eval()
    example = np.zeros((1, 3, img_size, img_size), dtype=np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(example)).numpy()
    # MLflow warns (by warning and by log line) that pickle is unsafe: these are our files.
    quiet = logging.getLogger("mlflow.pytorch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.pytorch.save_model(
                model, str(folder), serialization_format="pickle",
                signature=infer_signature(example, logits), input_example=example,
                pip_requirements=requirements(), metadata={"source": "au-guided-fer"},
            )
    finally:
        quiet.setLevel(level)
    return folder


def is_mlflow_model(folder: Path) -> bool:
    return (Path(folder) / MLMODEL_FILE).is_file()


def load_mlflow_model(folder: Path) -> tuple[nn.Module, dict[str, Any]]:
    """(the CAM method, its flat config) out of an MLflow model folder written here."""
    import mlflow.pytorch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mlflow.pytorch.load_model(str(folder), map_location="cpu")
    if not isinstance(model, Classifier):
        raise UserError(f"{folder} holds a {type(model).__name__}, not a model logged by this "
                         "project (fer_core.export.Classifier)")
    return model.method, model.config
