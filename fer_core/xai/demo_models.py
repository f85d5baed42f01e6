"""Briefly trained models for the interpretability studies (shortcut cue, metric reliability).

The studies compare arms over seeds, so each needs several models; on a laptop CPU these are
trained at the demo's size (48 px, output stride 16) on fewer images and epochs than a sweep
trial. ``--set`` on the studies' CLIs changes any field.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from fer_core import atomic

DEMO: dict[str, Any] = {
    "dataset": "synthetic", "backbone": "resnet18", "img_size": 48, "output_stride": 16,
    "synthetic_n": 600, "synthetic_intensity": 0.6, "epochs": 4, "batch_size": 32, "lr": 0.05,
    "layers": "5", "num_workers": 0, "xai_images": 0,
}
"""About a minute per model on one core."""


def cache_path(flat: dict[str, Any]) -> Path:
    """Where the selected weights of ``flat`` are kept: ``<cache>/xai-models/<hash>.pt`` beside
    the synthetic data's cache (a study rerun, or a second study on the same models, reuses
    them instead of training again)."""
    from fer_core.data.synthetic import default_root

    key = hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()
    return default_root().parent / "xai-models" / f"{key[:20]}.pt"


def train(flat: dict[str, Any], reuse: bool = True):
    """A :class:`~fer_core.engine.Trainer` fitted on ``flat`` whose model holds the weights
    selected on validation CL (read back from :func:`cache_path` when ``reuse`` and present)."""
    import torch

    from fer_core.config import ExperimentConfig
    from fer_core.engine import Trainer

    trainer = Trainer(ExperimentConfig.from_flat(flat), progress=False)
    path = cache_path(flat)
    if reuse and path.is_file():
        trainer.model.load_state_dict(torch.load(path, map_location=trainer.device))
    else:
        trainer.fit()
        if trainer.best_state is not None:
            trainer.model.load_state_dict(trainer.best_state)
        with atomic.replacing(path) as partial:  # a concurrent study never reads half a file
            torch.save(trainer.model.state_dict(), partial)
    trainer.model.eval()
    return trainer


def add_study_args(parser: argparse.ArgumentParser, images: int) -> None:
    """The options every study's command line takes: its arms (seeds × λ), the test images
    scored per model, ``--set`` on the demo's config, the JSON output and torch's threads."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 4.0])
    parser.add_argument("--images", type=int, default=images, help="test images scored per model")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")


def study_overrides(args: argparse.Namespace) -> dict[str, str]:
    """``--set`` as config overrides, after ``--threads`` is applied (torch imported then)."""
    from fer_core.config import parse_overrides

    overrides = parse_overrides(args.set)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return overrides


def trained_test_batch(flat: dict[str, Any], images: int) -> tuple[Any, Any, Any, Any]:
    """The model of ``flat`` (:func:`train`) and ``images`` test images, their labels and AU
    maps, on the model's device: ``(trainer, x, labels, au_maps)``."""
    import torch

    from fer_core.xai.evaluate import select_images

    trainer = train(flat)
    x, labels, au = select_images(trainer.loaders["test"], images, 0, trainer.cfg.align.au_variant)
    device = torch.device(trainer.device)
    return trainer, x.to(device), labels.to(device), au.to(device)
