"""Disk space: the warning before a sweep starts, and the line after a full disk stopped it.

Before: a small estimate of what the sweep writes to its storage, per trial its kept running
checkpoints (model, optimizer momentum and best weights: about three copies of the weights),
its selected model staged in its folder until MLflow has it (one copy), and a little for its
logs and artifacts; times the trials the cost package expects (``tuner.cost.estimate.arms``).
When the storage's filesystem has less free than that, one ``warning:`` line says so; the sweep
still starts (the estimate errs high: a finished trial keeps only a small final checkpoint).

After: a trial whose writes failed with ``ENOSPC`` fails like any other; ``full_disk_line``
turns it into the one line that names the folder and the space it needed (exit 2: the user
frees space, then ``--resume`` continues the same trials from their last checkpoints).
"""

from __future__ import annotations

import errno
import os
import shutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.spec.spec import SweepSpec

CHECKPOINTS_KEPT = 1
"""Checkpoints Tune keeps per trial (``tuner.search.launch`` hands it to ``CheckpointConfig``):
the latest is all a resume needs (each holds the best weights too)."""
WEIGHT_COPIES_PER_CHECKPOINT = 3
"""A running checkpoint holds the model, SGD's momentum (one buffer per weight) and the best
weights so far (``fer_core.engine.Trainer.state_dict``)."""
STAGED_MODEL_COPIES = 1
"""The selected model, staged in the trial's folder until MLflow has it."""
LOGS_BYTES_PER_TRIAL = 1_000_000
"""Tune's result logs, the MLflow journal, the confusion matrices: well under a megabyte."""
MB = 1e6
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded", f"[Errno {errno.ENOSPC}]")


def weight_bytes(flat: dict[str, Any]) -> int:
    """Bytes of one trial's model weights, counted on torch's ``meta`` device (no memory, no
    file is read)."""
    import torch

    from fer_core import NUM_CLASSES
    from fer_core.cams import build_method
    from fer_core.config import ExperimentConfig

    cfg = ExperimentConfig.from_flat(flat)
    model_cfg = cfg.model
    if model_cfg.pretrained:
        # Only the tensors' sizes matter: no weights are loaded onto meta tensors.
        from dataclasses import replace

        model_cfg = replace(model_cfg, pretrained=None)
    with torch.device("meta"):
        model = build_method(cfg.method, model_cfg, num_classes=NUM_CLASSES,
                             img_size=cfg.data.img_size)
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def trial_peak_bytes(flat: dict[str, Any], checkpoints_kept: int) -> int:
    """The most one running trial holds on the storage at once: its kept checkpoints plus the
    new one Tune writes before it drops the oldest, and its staged model."""
    copies = WEIGHT_COPIES_PER_CHECKPOINT * (checkpoints_kept + 1) + STAGED_MODEL_COPIES
    return int(weight_bytes(flat) * copies + LOGS_BYTES_PER_TRIAL)


def sweep_bytes(spec: SweepSpec, checkpoints_kept: int) -> tuple[float, float]:
    """(trials, bytes the sweep needs on its storage at once): its concurrent trials at their
    peak, the others' logs (a finished trial keeps a small final checkpoint, its weights are
    in MLflow). Trials per cost arm come from the cost package (``estimate.arms``)."""
    from tuner.cost.estimate import arms

    found = arms(spec)
    trials = sum(arm.trials for arm in found)
    peak = max(trial_peak_bytes(arm.config, checkpoints_kept) for arm in found)
    at_once = min(trials, spec.settings.max_concurrent)
    return trials, at_once * peak + (trials - at_once) * LOGS_BYTES_PER_TRIAL


def free_bytes(path: str) -> int | None:
    """Free bytes of the filesystem holding ``path`` (its nearest existing folder); None for a
    URI (a bucket has no free space to speak of)."""
    if "://" in path:
        return None
    folder = os.path.abspath(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return shutil.disk_usage(folder).free


def space_warning(spec: SweepSpec, checkpoints_kept: int) -> str | None:
    """The warning line when the storage has less free space than the sweep will write."""
    storage = str(spec.place.storage)
    free = free_bytes(storage)
    if free is None:
        return None
    try:
        trials, needed = sweep_bytes(spec, checkpoints_kept)
    except Exception as err:  # noqa: BLE001 - no estimate is no reason to stop a sweep
        return f"note: no disk-space estimate for this sweep ({type(err).__name__}: {err})"
    if free >= needed:
        return None
    return (f"warning: {storage} has {free / MB:.1f} MB free; this sweep needs about "
            f"{needed / MB:.1f} MB there at once ({trials:g} trials, at most "
            f"{min(trials, spec.settings.max_concurrent):g} running: checkpoints, staged model, "
            "logs): free space there or pass another --storage-path, or it stops when the disk "
            "is full (then free space and --resume)")


def is_no_space(text: str) -> bool:
    """An error's text says the disk (or the quota) is full."""
    return any(marker in text for marker in NO_SPACE_TEXT)


def full_disk_line(folder: str, base: dict[str, Any] | None, running: int,
                   checkpoints_kept: int) -> str:
    """The one line after a full storage stopped the sweep (its exit status is 2); ``running``:
    the trials that go on at once when it is resumed."""
    storage = os.path.dirname(str(folder).rstrip("/"))
    free = free_bytes(storage)
    have = f"{free / MB:.1f} MB free now" if free is not None else "free space unknown"
    try:
        needed = running * trial_peak_bytes(dict(base or {}), checkpoints_kept)
        want = f"; it needs about {needed / MB:.1f} MB free there to go on"
    except Exception:  # noqa: BLE001 - the line is still worth printing without the size
        want = ""
    return (f"no space left on the sweep's storage {folder} ({have}{want}): free space there, "
            "then continue with the Resume line above (each trial goes on from its last "
            "checkpoint)")
