"""Checkpoints that resume a run exactly: model, optimizer, scheduler, epoch, RNG, config.

What a checkpoint holds at each stage of a run is ``fer_core.engine.Trainer.state_dict``'s
choice (a finished run's keeps the selected weights, or only its test result); this module
writes and reads the file.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_core.cli import MissingPath

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions: CLIs read CHECKPOINT_FILE before any work starts.

CHECKPOINT_FILE = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(payload: dict[str, Any], directory: str | os.PathLike) -> Path:
    """Write ``directory/checkpoint.pt`` atomically: a crash mid-write never leaves a torn file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CHECKPOINT_FILE
    import torch

    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint from a file or from a directory holding ``checkpoint.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise MissingPath(
            f"no checkpoint at {path}: pass a checkpoint file or a directory holding "
            f"{CHECKPOINT_FILE} (written by Trainer.save_checkpoint)"
        )
    import torch

    # weights_only=False: the payload holds RNG states and the config dict, not only tensors;
    # checkpoints are the project's own files.
    return torch.load(path, map_location=map_location, weights_only=False)
