"""Checkpoints that resume a run exactly: model, optimizer, scheduler, epoch, RNG, config.

What a checkpoint holds at each stage of a run is ``fer_core.engine.Trainer.state_dict``'s
choice (a finished run's keeps the selected weights, or only its test result); this module
writes and reads the file.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_core import atomic
from fer_core.cli import MissingPath, UserError

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions: CLIs read CHECKPOINT_FILE before any work starts.

CHECKPOINT_FILE = "checkpoint.pt"
FULL_BELOW_BYTES = 1_000_000
"""Free bytes under which a failed checkpoint write is taken for a full disk."""


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
    import torch

    target = Path(directory) / CHECKPOINT_FILE
    with atomic.replacing(target) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as e:
            # torch's zip writer reports a full disk as a failed write ("unexpected pos ..."):
            # say what it is, so a sweep can tell a full storage from a bug.
            if shutil.disk_usage(tmp.parent).free < FULL_BELOW_BYTES:
                raise OSError(errno.ENOSPC, f"No space left on device writing {target}") from e
            raise
    return target


class UnreadableCheckpoint(UserError):
    """A checkpoint file is there but cannot be read (truncated, empty or not a checkpoint)."""


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint from a file or from a directory holding ``checkpoint.pt``.

    Raises :class:`UnreadableCheckpoint` naming the file when it is torn or not a checkpoint
    (nothing of it is applied anywhere then)."""
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
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except PermissionError:
        raise
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, ValueError, KeyError) as err:
        # torch names a torn zip "failed finding central directory", an empty file "Ran out
        # of input", another file "invalid load key": all mean the same to a resume.
        raise UnreadableCheckpoint(f"{path} is not a readable checkpoint "
                                   f"({first_line(err)})") from None
    if not isinstance(payload, dict) or "epoch" not in payload:
        raise UnreadableCheckpoint(f"{path} is not a readable checkpoint (no epoch in it)")
    return payload


def first_line(err: BaseException) -> str:
    """The gist of a (long, multi-line) error, for a one-line message."""
    text = str(err).strip().splitlines()
    return text[0][:160] if text else type(err).__name__
