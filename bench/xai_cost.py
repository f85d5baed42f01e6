"""What the end-of-trial interpretability metrics cost, against the trial they end.

    python bench/xai_cost.py [--n-images 16] [--methods cam gradcam ...]

1. The ratio: a trial of the default sweep (``lambda_layers`` at ``search_spaces.sizes.LAPTOP``,
   read from there: today resnet18, 48 px, 1200 synthetic images, 10 epochs, batch 32) is
   estimated from its parts,
   ``epochs · (train batches · one training step + one validation pass) + one test pass``, each
   part timed here; the extra is ``evaluate_xai`` on the trial's test split with the default
   :class:`~fer_core.xai.evaluate.XaiConfig` (``--n-images`` images; the model's map and the
   three control maps, the default ``blur`` deletion baseline). Data loading, Ray and MLflow
   are left out of the trial, so the ratio errs high.
2. The method table: images through the backbone per evaluated image, per cost group, for every
   registered method (counted, not timed: the counts do not depend on the machine; tiny sizes).

Robust to a busy machine the way ``bench/au_overhead.py`` is: one torch thread, CPU time of this
process as the clock on CPU (wall clock after a synchronise on CUDA), minimum over repeats.
Prints the table, then ``xai_eval_ratio=<x>`` last (goal: <= 0.10).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from fer_core.cams import METHODS, build_method
from fer_core.config import DataConfig, ExperimentConfig, MethodConfig, ModelConfig
from fer_core.engine import Trainer
from fer_core.loaders import build_split
from fer_core.xai.evaluate import GROUPS, XaiConfig, evaluate_xai, run_xai, select_images
from search_spaces.sizes import LAPTOP

TINY_BACKBONE = {"tscam": "deit_tiny_patch16_224", "apvit": "ir_tiny"}
"""Backbones for the counting table where a method needs its own network family."""


class Clock:
    """CPU time of this process on CPU, wall clock after a synchronise on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return time.perf_counter()
        return time.process_time()


def best_of(fn, clock: Clock, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def trial_seconds(trainer: Trainer, clock: Clock, repeats: int) -> tuple[float, dict[str, float]]:
    """Estimated seconds of one default trial, and its parts."""
    batch = next(iter(trainer.loaders["train"]))
    trainer.model.train()
    trainer.train_step(batch)  # warm-up
    step = best_of(lambda: trainer.train_step(batch), clock, repeats)
    val = best_of(lambda: trainer.evaluate("val"), clock, 1)
    test = best_of(lambda: trainer.evaluate("test"), clock, 1)
    batches = len(trainer.loaders["train"])
    epochs = trainer.cfg.train.epochs
    total = epochs * (batches * step + val) + test
    return total, {"train_step_s": step, "train_batches": batches, "val_s": val, "test_s": test,
                   "epochs": epochs}


def pass_table(methods: list[str], cfg: XaiConfig) -> list[tuple[str, dict[str, float]]]:
    """Images through the backbone per evaluated image, per group, for each method."""
    data = build_split(DataConfig(dataset="synthetic", img_size=32, synthetic_n=100), "test")
    x, labels, au = select_images(data, 2, 0, "reference")
    rows = []
    for method in methods:
        backbone = TINY_BACKBONE.get(method, "resnet18")
        extra = {"apvit_depth": 1, "apvit_k": 2} if method == "apvit" else {}
        stride = 32 if method in TINY_BACKBONE else 16  # token models have a fixed stride
        model = build_method(MethodConfig(method=method, **extra),
                             ModelConfig(backbone=backbone, output_stride=stride),
                             img_size=32).eval()
        xx, aa = x, au
        result = run_xai(model, xx, labels, aa, cfg)
        rows.append((method, {g: result.passes.get(g, 0) / len(x) for g in GROUPS}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=XaiConfig().n_images)
    parser.add_argument("--methods", nargs="*", default=None,
                        help="methods of the counting table (default: every registered one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = XaiConfig(n_images=args.n_images)

    flat = {**LAPTOP, "device": args.device, "lambda_au": 4.0, "layers": "5", "num_workers": 0}
    trainer = Trainer(ExperimentConfig.from_flat(flat), progress=False)
    clock = Clock(trainer.device)
    trial, parts = trial_seconds(trainer, clock, args.repeats)
    model = trainer.model.eval()
    test = trainer.loaders["test"]
    extra = best_of(lambda: evaluate_xai(model, test, cfg, trainer.cfg.align.au_variant,
                                         trainer.eval_layers), clock, 1)

    methods = args.methods if args.methods is not None else list(METHODS.names())
    print(f"images through the backbone per evaluated image (steps={cfg.steps}, ROAD "
          f"percentiles={len(cfg.road_percentiles)}, controls {', '.join(cfg.controls)}, "
          f"full cascade):")
    print("| method | " + " | ".join(GROUPS) + " | total |")
    print("|---|" + "---|" * (len(GROUPS) + 1))
    for method, counts in pass_table(methods, cfg):
        cells = " | ".join(f"{counts[g]:g}" for g in GROUPS)
        print(f"| {method} | {cells} | {sum(counts.values()):g} |")
    print("trial parts: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in parts.items()))
    print(f"trial_s={trial:.2f} xai_s={extra:.2f} n_images={cfg.n_images} "
          f"per_image_s={extra / cfg.n_images:.3f}")
    ratio = extra / trial if trial > 0 else math.nan
    print(f"xai_eval_ratio={ratio:.4f}")


if __name__ == "__main__":
    main()
