"""Training-step time with AU guidance (maps rendered from landmarks inside the step, λ > 0)
against the same step without it (λ = 0), interleaved in one run so machine noise hits both.

    python bench/au_overhead.py --backbone resnet18 --img-size 112 --batch 16

Prints one line per configuration and ``au_overhead_ratio=<x>`` last (median guided / median
plain; the paper measured 1.35 for its per-image OpenCV rendering).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fer_core.config import ExperimentConfig
from fer_core.engine import Trainer


def step_times(trainers: dict[str, Trainer], batch: dict, repeats: int, warmup: int):
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for i in range(warmup + repeats):
        for name, trainer in trainers.items():  # interleaved: A, B, A, B, ...
            start = time.perf_counter()
            trainer.train_step(batch)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--lambda-au", type=float, default=4.0)
    parser.add_argument("--layers", default="5")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    ratios = []
    for backbone in args.backbone:
        flat = dict(backbone=backbone, img_size=args.img_size, batch_size=args.batch,
                    synthetic_n=max(7, args.batch), layers=args.layers, device=args.device)
        trainers = {
            "plain": Trainer(ExperimentConfig.from_flat({**flat, "lambda_au": 0.0}),
                             progress=False),
            "guided": Trainer(ExperimentConfig.from_flat({**flat, "lambda_au": args.lambda_au}),
                              progress=False),
        }
        batch = next(iter(trainers["plain"].loaders["train"]))
        med = step_times(trainers, batch, args.repeats, args.warmup)
        ratio = med["guided"] / med["plain"]
        ratios.append(ratio)
        print(f"{backbone} {args.img_size}px batch {args.batch} ({trainers['plain'].device}): "
              f"plain {1e3 * med['plain']:.1f} ms  guided {1e3 * med['guided']:.1f} ms  "
              f"ratio {ratio:.3f}", flush=True)
    print(f"au_overhead_ratio={max(ratios):.3f}")


if __name__ == "__main__":
    main()
