"""A short train/evaluate loop, extended through callbacks (no Ray in here).

One epoch = train on the train split, validate (CL, ATT-COS per tapped layer, CAM-COS), keep the
model with the best validation CL (first maximum). ``fit`` ends with the test evaluation of that
selected model. AU maps are rendered from the batch's landmarks on the device, inside the step.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from fer_core import NUM_CLASSES
from fer_core import checkpoint as ckpt
from fer_core import metric_names as mn
from fer_core.au import render_au_maps
from fer_core.cams import build_method
from fer_core.cli import UserError
from fer_core.config import ExperimentConfig
from fer_core.loaders import build_loader
from fer_core.losses import composite_loss, layer_attention
from fer_core.metrics import FERMetrics
from fer_core.xai.evaluate import XaiConfig, evaluate_xai
from fer_core.xai.shortcut import evaluate_shortcut


class Callback:
    """Hooks the loop calls; override what you need."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        """After training and validating ``epoch``."""

    def on_fit_end(self, trainer: Trainer, final: dict[str, float]) -> None:
        """After the selected model was evaluated on the test split."""


class InjectedFault(RuntimeError):
    """Raised by ``fail_at_epoch`` to test retries; never raised in a resumed run."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device='cuda' but no CUDA device is visible; use device=auto or cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Train one configuration; checkpointable at every epoch boundary."""

    def __init__(
        self, cfg: ExperimentConfig, callbacks: Sequence[Callback] = (), progress: bool = True,
        cache_dir: str | None = None,
    ) -> None:
        """``cache_dir``: where generated data is cached (a sweep's shared data cache)."""
        self.cfg = cfg
        self.callbacks = list(callbacks)
        self.progress = progress
        self.device = resolve_device(cfg.train.device)
        seed_everything(cfg.train.seed)
        self.model: nn.Module = build_method(
            cfg.method, cfg.model, num_classes=NUM_CLASSES, img_size=cfg.data.img_size
        ).to(self.device)
        # Attention is reported for every aligned layer and for the headline layer.
        self.eval_layers = tuple(dict.fromkeys((*cfg.align.layers, self.model.headline_layer)))
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
            nesterov=cfg.optim.nesterov, weight_decay=cfg.optim.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=cfg.optim.lr_step, gamma=cfg.optim.lr_gamma
        )
        # Mixed precision on CUDA only; float16 needs the loss scaled so small gradients do not
        # flush to zero, bfloat16 keeps float32's exponent range and needs no scaling.
        self.use_amp = cfg.train.amp and self.device.type == "cuda"
        self.amp_dtype = getattr(torch, cfg.train.amp_dtype)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        )
        self.memory_format = (
            torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        )
        self.model.to(memory_format=self.memory_format)
        # The compiled wrapper shares the parameters; checkpoints keep using ``self.model`` so
        # their keys never carry the wrapper's ``_orig_mod.`` prefix.
        self.forward = torch.compile(self.model) if cfg.train.compile else self.model
        self.loaders = {
            split: build_loader(cfg.data, split, cfg.train.batch_size, seed=cfg.train.seed,
                                cache_dir=cache_dir)
            for split in ("train", "val", "test")
        }
        self.epoch = 0
        self.best_val_cl = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []
        self.resumed = False
        self.final_matrices: dict[str, Any] = {}
        self.final: dict[str, float] | None = None
        """The test result once ``fit`` has tested the selected model (or a checkpoint did)."""

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self, selected_weights: bool = True) -> dict[str, Any]:
        """What resume needs, each tensor once.

        While training, the model, optimizer, scheduler and scaler; the best weights only when
        they are not the model's (``best_is_model``). Once the last epoch is trained, only the
        selected (best) weights: restoring tests them. Once ``fit`` has tested them, the test
        result (``final``) too, so a restore repeats nothing; ``selected_weights=False`` then
        leaves the weights out, for a caller that keeps the selected model elsewhere (a sweep
        trial logs it to MLflow): such a checkpoint cannot rebuild the model.
        """
        trained = self.epoch >= self.cfg.train.epochs
        if trained and (self.best_state is not None or self.final is not None):
            finished = {
                "config": self.cfg.to_flat(), "epoch": self.epoch, "finished": True,
                "best_val_cl": self.best_val_cl, "best_epoch": self.best_epoch,
                "history": self.history, "rng": ckpt.rng_state(), "final": self.final,
            }
            if selected_weights or self.final is None:  # untested: the restore tests them
                finished["best_state"] = self.best_state
            return finished
        best_is_model = self.best_epoch == self.epoch and self.best_state is not None
        return {
            "config": self.cfg.to_flat(),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best_val_cl": self.best_val_cl,
            "best_epoch": self.best_epoch,
            "best_state": None if best_is_model else self.best_state,
            "best_is_model": best_is_model,
            "history": self.history,
            "rng": ckpt.rng_state(),
        }

    def save_checkpoint(self, directory: str, selected_weights: bool = True) -> str:
        """Write :meth:`state_dict` to ``directory/checkpoint.pt``; returns the file's path."""
        return str(ckpt.save(self.state_dict(selected_weights), directory))

    def load_checkpoint(self, path: str) -> None:
        state = ckpt.load(path, map_location=self.device)
        if state.get("finished"):
            if state["epoch"] < self.cfg.train.epochs:
                raise UserError(
                    f"{path} is the checkpoint of a finished {state['epoch']}-epoch run (no "
                    f"optimizer state): it cannot continue to epochs={self.cfg.train.epochs}; "
                    "start a new run with the number of epochs wanted")
            if state.get("best_state") is not None:
                self.model.load_state_dict(state["best_state"])
            self.final = state.get("final")
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = state["epoch"]
        self.best_val_cl, self.best_epoch = state["best_val_cl"], state["best_epoch"]
        self.best_state = state.get("best_state")
        if state.get("best_is_model"):
            self.best_state = copy.deepcopy(self.model.state_dict())
        self.history = state["history"]
        ckpt.set_rng_state(state["rng"])
        self.resumed = True

    # ----------------------------------------------------------------- loop
    def fit(self) -> dict[str, float]:
        """Train the remaining epochs, then test the model selected on validation CL.

        A trainer restored from a checkpoint written after its test (``final`` set) returns
        that stored result: nothing is trained or tested again and no callback is called.
        """
        if self.final is not None:
            return dict(self.final)
        for epoch in range(self.epoch + 1, self.cfg.train.epochs + 1):
            if epoch == self.cfg.train.fail_at_epoch and not self.resumed:
                raise InjectedFault(f"fail_at_epoch={epoch}: injected fault (testing retries)")
            metrics = self.run_epoch(epoch)
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, metrics)
        final = self.test()
        self.final = dict(final)
        for cb in self.callbacks:
            cb.on_fit_end(self, final)
        return final

    def run_epoch(self, epoch: int) -> dict[str, float]:
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        train = self.train_epoch(epoch)
        self.scheduler.step()
        val = self.evaluate("val")
        self.epoch = epoch
        if val["cl"] > self.best_val_cl:  # strict: the first maximum wins
            self.best_val_cl, self.best_epoch = val["cl"], epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
        metrics = {
            mn.EPOCH: float(epoch), **train, **flat_eval(val, mn.VAL, self.model.headline_layer),
            mn.LR: lr,
            mn.EPOCH_TIME: time.perf_counter() - start,
            mn.BEST_VAL_CL: self.best_val_cl, mn.BEST_EPOCH: float(self.best_epoch),
        }
        self.history.append(metrics)
        return metrics

    def autocast(self):
        """Mixed-precision context of this trainer (a no-op without AMP)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp)

    def to_input(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device, non_blocking=True).contiguous(
            memory_format=self.memory_format)

    def checkpoint_due(self, epoch: int) -> bool:
        """Whether ``epoch`` ends with a checkpoint: every ``checkpoint_every`` epochs and the
        last one (a long trial then writes few, at the price of redoing up to K-1 epochs)."""
        every = self.cfg.train.checkpoint_every
        return epoch % every == 0 or epoch >= self.cfg.train.epochs

    def au_maps(self, landmarks: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]):
        return render_au_maps(landmarks, labels, size=size, variant=self.cfg.align.au_variant)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        cfg = self.cfg
        sums: dict[str, float] = {}
        correct = seen = 0
        batches = self.loaders["train"]
        cap = cfg.train.max_train_batches or len(batches)
        bar = tqdm(batches, total=min(cap, len(batches)), desc=f"epoch {epoch}",
                   disable=not self.progress, leave=False)
        for i, batch in enumerate(bar):
            if i >= cap:
                break
            parts, logits, labels = self.train_step(batch)
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
            bar.set_postfix(loss=f"{sums['loss'] / seen:.3f}")
        # Loss parts (loss, loss_ce, loss_<term>) become train_loss, train_loss_ce, ...
        result = {mn.key(mn.TRAIN, k): v / max(seen, 1) for k, v in sums.items()}
        result[mn.TRAIN_CL] = 100.0 * correct / max(seen, 1)
        return result

    def train_step(self, batch: dict[str, torch.Tensor]):
        """One optimisation step; AU maps are rendered here only when λ > 0."""
        cfg = self.cfg
        x = self.to_input(batch["image"])
        labels = batch["label"].to(self.device)
        maps = valid = None
        if cfg.align.lambda_au > 0:
            maps, valid = self.au_maps(batch["landmarks"].to(self.device), labels, x.shape[-2:])
        x, targets, maps, valid = self.model.prepare_batch(x, labels, maps, valid)
        with self.autocast():
            out = self.forward(x, labels=labels, layers=cfg.align.layers)
            attn = {k: layer_attention(out.feats[k].float()) for k in cfg.align.layers}
            parts = composite_loss(
                out.logits.float(), targets, attn, maps, valid, cfg.align.lambda_au,
                layer_reduce=cfg.align.layer_reduce, extra=out.extra_losses,
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(parts.total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return parts.as_floats(), out.logits.detach(), labels

    @torch.no_grad()
    def evaluate(self, split: str, model: nn.Module | None = None,
                 max_batches: int | None = None) -> dict[str, Any]:
        """CL, confusion, ATT-COS per layer and CAM-COS (CAMs of the true class) on ``split``
        (its first ``max_batches`` batches if given: timing, not metrics)."""
        model = model or self.model
        model.eval()
        metrics = FERMetrics(layers=self.eval_layers, num_classes=NUM_CLASSES)
        forward = self.forward if model is self.model else model
        for batch in itertools.islice(self.loaders[split], max_batches):
            x = self.to_input(batch["image"])
            labels = batch["label"].to(self.device)
            maps, valid = self.au_maps(batch["landmarks"].to(self.device), labels, x.shape[-2:])
            with self.autocast():
                out = forward(x, layers=self.eval_layers)
            attn = {k: layer_attention(out.feats[k].float()) for k in self.eval_layers}
            cams = None
            if model.has_cam:
                # Gradient-based CAMs need autograd here; under autocast like the forward pass.
                with torch.enable_grad(), self.autocast():
                    cams = model.cams(x, labels)
                cams = cams.float()
            metrics.update(out.logits.float(), labels, attn=attn, au_maps=maps, valid=valid,
                           cams=cams)
        return metrics.compute()

    def test(self) -> dict[str, float]:
        """Evaluate the selected (best validation CL) model on the test split."""
        model = self.model
        if self.best_state is not None:
            model = copy.deepcopy(self.model)
            model.load_state_dict(self.best_state)
        result = self.evaluate("test", model)
        self.final_matrices = {"confusion": result["confusion"], "cos_matrix": result["cos_matrix"]}
        final = flat_eval(result, mn.TEST, self.model.headline_layer)
        final[mn.BEST_EPOCH] = float(self.best_epoch)
        final[mn.TEST_N_INVALID] = float(result["n_invalid"])
        final.update(self.xai_metrics(model))
        return final

    def xai_metrics(self, model: nn.Module) -> dict[str, float]:
        """Interpretability beyond CAM-COS on a fixed, seeded subsample of the test split (the
        same images in every trial of a sweep: the seed is the split seed): ``xai_images`` for
        the ``test_xai_*`` metrics and ``shortcut_images`` for the shortcut cue's
        ``test_shortcut_*`` (at the aligned and headline layers); 0 skips each."""
        cfg, seed = self.cfg, self.cfg.data.split_seed
        out: dict[str, float] = {}
        if cfg.train.xai_images:
            xai = XaiConfig(n_images=cfg.train.xai_images, seed=seed)
            out.update(evaluate_xai(model, self.loaders["test"], xai, cfg.align.au_variant,
                                    layers=cfg.align.layers, device=self.device))
        out.update(evaluate_shortcut(model, self.loaders["test"], cfg.train.shortcut_images, seed,
                                     cfg.align.au_variant, self.eval_layers, self.device))
        return out


def flat_eval(result: dict[str, Any], prefix: str, headline: int) -> dict[str, float]:
    """Scalar metrics of one evaluation, flat: ``<prefix>_cl``, ``<prefix>_att_cos_l<k>``...

    ``<prefix>_att_cos`` is the headline layer's (the last layer, docs/method.md §7 / Table 2).
    """
    att = result["att_cos"]
    flat = {mn.key(prefix, mn.CL): float(result["cl"])}
    flat.update({mn.layer_key(prefix, k): float(v) for k, v in att.items()})
    flat[mn.key(prefix, mn.ATT_COS)] = float(att[headline])
    cam = result.get("cam_cos")
    flat[mn.key(prefix, mn.CAM_COS)] = math.nan if cam is None else float(cam)
    return flat
