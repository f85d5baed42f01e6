"""Timing one cost arm on a trial's device: a few training steps, one evaluation pass and the
end-of-trial work, scaled later by ``tuner.cost.estimate`` into a sweep's price.

Torch, timm and the training code are imported inside :func:`measure`, where the timing runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ESTIMATE_FILE = "estimate.json"
TIMED_STEPS = 3
WARMUP_STEPS = 2  # the first steps pay for allocator warm-up and lazy initialisation
COST_NEUTRAL = ("seed", "lr", "lr_step", "lr_gamma", "momentum", "nesterov", "weight_decay",
                "fail_at_epoch", "checkpoint_every", "shortcut")
"""Flat fields that change no step's cost; ``lambda_au`` counts only as zero or not."""
FINAL_NEUTRAL = ("lambda_au", "layers")
"""Cost fields that change the training steps but not the end-of-trial work."""
TRIAL_OVERHEAD_S = 0.5
"""Seconds of a trial's MLflow run (what the closing summary counts as its actual) beyond its
build, epochs and end-of-trial work: run creation, parameter and metric logging, reports to
Tune. bench/price_check.py over 10 smoke sweeps: ASHA-stopped trials took 1.19 s (median of 15)
where their build and one epoch time at ~0.65 s, finished ones 4.82 s against ~4.4 s. A
worker's start and imports fall outside the run (bench/tune_overhead.py measures them)."""


@dataclass(frozen=True)
class ArmCost:
    """What one arm costs, measured: seconds per training batch and per evaluated image."""

    step_s: float
    eval_s_per_image: float
    build_s: float
    checkpoint_s: float
    final_s: float
    """End-of-trial work besides the test pass: end-of-trial XAI metrics, the selected model
    copied and saved as an MLflow model (a trial ASHA stops does none of it)."""
    weight_bytes: int
    running_checkpoint_bytes: int
    final_checkpoint_bytes: int
    device: str


@dataclass(frozen=True)
class TrialShape:
    """The sizes a trial's time scales with."""

    train_batches: int
    val_images: int
    test_images: int
    epochs: int

    def seconds(self, cost: ArmCost, epochs: float | None = None,
                finished: float = 1.0) -> float:
        """Build, ``epochs`` epochs (train, validate, checkpoint) and Tune's and MLflow's
        per-trial overhead, then the test pass and ``final_s`` for the ``finished`` share of
        trials (the ones ASHA lets run every epoch: a stopped trial ends without them)."""
        epochs = self.epochs if epochs is None else epochs
        epoch_s = (self.train_batches * cost.step_s + self.val_images * cost.eval_s_per_image
                   + cost.checkpoint_s)
        end_s = self.test_images * cost.eval_s_per_image + cost.final_s
        return cost.build_s + epochs * epoch_s + TRIAL_OVERHEAD_S + finished * end_s


def cost_key(flat: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The fields of a flat config that decide what one trial costs."""
    key = {k: str(v) for k, v in flat.items() if k not in COST_NEUTRAL}
    key["lambda_au"] = str(float(flat.get("lambda_au", 0.0)) > 0)
    return tuple(sorted(key.items()))


def _sync(device: Any) -> None:
    import torch

    torch.cuda.synchronize(device) if device.type == "cuda" else None


@dataclass(frozen=True)
class Timing:
    """How much of each arm ``measure_arms`` times: all of it for ``--estimate``, less for the
    prediction a sweep records at its start (``QUICK``), which a short sweep waits for."""

    steps: int = TIMED_STEPS
    max_arms: int | None = None
    """Time only the references and the arms with most trials, up to this many; the others
    cost the mean of the timed ones (a 22-arm grid would otherwise time 22)."""
    eval_batches: int | None = None
    """Validation batches timed per arm (None: the whole split)."""
    share_final: bool = False
    """Time the end-of-trial work (XAI metrics, model save) once per ``final_key``: it does not
    depend on λ or the aligned layers."""


FULL = Timing()
"""``--estimate``'s timing: every arm, the full steps."""
QUICK = Timing(steps=3, max_arms=2, eval_batches=2, share_final=True)


def final_key(flat: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The fields of a flat config that decide the end-of-trial work's cost."""
    return tuple((k, v) for k, v in cost_key(flat) if k not in FINAL_NEUTRAL)


SCRATCH_PREFIX = "fer-estimate-"
"""The timing's scratch folder (checkpoints, an MLflow model), removed after it."""


def measure(flat: Mapping[str, Any], cache_dir: str | None, steps: int = TIMED_STEPS,
            threads: int | None = None, eval_batches: int | None = None,
            final_s: float | None = None, scratch: str | None = None,
            ) -> tuple[ArmCost, TrialShape]:
    """Build one arm, time ``steps`` training batches (loading included), a validation pass
    (its first ``eval_batches``) and, unless ``final_s`` already says what it costs, the
    end-of-trial work; save its checkpoints to a temporary folder to learn their sizes.

    ``scratch`` holds that folder (default: the system's temp folder). A sweep gives its own
    folder: a driver killed while timing leaves the scratch there, where ``--resume`` removes
    it (``remove_stale_scratch``), never in a temp folder nobody cleans."""
    import torch

    from fer_core import metric_names as mn
    from fer_core.config import ExperimentConfig
    from fer_core.engine import Trainer, flat_eval

    if threads:
        torch.set_num_threads(threads)
    cfg = ExperimentConfig.from_flat(dict(flat))
    began = time.perf_counter()
    trainer = Trainer(cfg, progress=False, cache_dir=cache_dir)
    build_s = time.perf_counter() - began
    loader = trainer.loaders["train"]
    batches = iter(loader)
    trainer.model.train()
    seconds = []
    for i in range(WARMUP_STEPS + steps):
        _sync(trainer.device)
        began = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:  # a split smaller than the steps timed: go round again
            batches = iter(loader)
            batch = next(batches)
        trainer.train_step(batch)
        _sync(trainer.device)
        if i >= WARMUP_STEPS:
            seconds.append(time.perf_counter() - began)
    # The median: one step slowed by another process (a 2-step mean was 40 % high once) does
    # not set the price of every step of the sweep.
    step_s = statistics.median(seconds)
    val = trainer.loaders["val"]
    trainer.evaluate("val", max_batches=1)  # untimed: the first batch was 12 ms/img, later 9
    _sync(trainer.device)
    began = time.perf_counter()
    result = trainer.evaluate("val", max_batches=eval_batches)
    _sync(trainer.device)
    seen = len(val.dataset) if eval_batches is None else min(
        len(val.dataset), eval_batches * (val.batch_size or 1))
    eval_s_per_image = (time.perf_counter() - began) / max(seen, 1)
    # The test pass costs its images at eval_s_per_image (TrialShape); the rest of the end of
    # a trial is the XAI metrics and the MLflow model, timed here.
    explain_s = 0.0
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=scratch) as tmp:
        if final_s is None:
            import mlflow.pytorch  # noqa: F401 - a trial's worker imports it once, not per trial

            began = time.perf_counter()
            trainer.xai_metrics(trainer.model)
            _sync(trainer.device)
            save_selected_model(trainer, Path(tmp) / "mlflow_model")
            explain_s = time.perf_counter() - began
        began = time.perf_counter()
        running = Path(trainer.save_checkpoint(tmp)).stat().st_size
        checkpoint_s = time.perf_counter() - began
        # A finished trial's checkpoint: what the trainable writes after the test (the test
        # result has the validation result's keys and size).
        trainer.epoch = cfg.train.epochs
        trainer.final = flat_eval(result, mn.TEST, trainer.model.headline_layer)
        final = Path(trainer.save_checkpoint(tmp, selected_weights=False)).stat().st_size
    if final_s is None:
        final_s = explain_s + checkpoint_s
    weights = sum(t.numel() * t.element_size() for t in trainer.model.state_dict().values())
    cap = cfg.train.max_train_batches or len(loader)
    shape = TrialShape(min(cap, len(loader)), len(val.dataset),
                       len(trainer.loaders["test"].dataset), cfg.train.epochs)
    cost = ArmCost(step_s, eval_s_per_image, build_s, checkpoint_s, final_s, weights, running,
                   final, str(trainer.device))
    return cost, shape


def remove_stale_scratch(folder: str) -> None:
    """Remove the timing's scratch a killed driver left in its sweep's ``folder``."""
    import shutil

    for stale in Path(folder).glob(f"{SCRATCH_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)


def save_selected_model(trainer: Any, folder: Path) -> None:
    """The weights a finished trial writes besides its checkpoint: the MLflow PyTorch model
    (``tuner.trainable.log_selected_model``)."""
    import copy

    from fer_core import export

    export.save_mlflow_model(copy.deepcopy(trainer.model), trainer.cfg.to_flat(),
                             trainer.cfg.data.img_size, folder / "model")
