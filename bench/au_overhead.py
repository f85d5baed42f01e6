"""Training-step time with AU guidance (maps rendered from landmarks inside the step, λ > 0)
against the same step without it (λ = 0), measured so that a busy machine does not skew it.

    python bench/au_overhead.py --backbone resnet18 --img-size 112 --batch 16

Robust to other processes on the same cores:

- a fixed thread count (``--threads``, default 1): a multi-threaded op waits for its slowest
  thread, so one busy core would stretch every step by an amount that depends on the load;
- on CPU the clock is the process's CPU time, which does not count the time the scheduler gives
  to other processes (on CUDA: wall clock after a synchronise);
- rounds of interleaved steps (plain, guided, plain, guided, ...; ``--k`` of each), the minimum
  of each arm per round, the guided/plain ratio per round, and the median of the round ratios:
  a burst of load inflates some steps of a round but rarely the fastest of each arm.

Prints one line per configuration and ``au_overhead_ratio=<x>`` last (the largest median ratio
over the backbones; the paper measured 1.35 for its per-image OpenCV rendering).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fer_core.config import ExperimentConfig
from fer_core.engine import Trainer


def round_ratios(trainers: dict[str, Trainer], batch: dict, rounds: int, k: int, warmup: int):
    """Per round: (min plain step, min guided step) seconds, steps interleaved within the round."""
    cuda = any(t.device.type == "cuda" for t in trainers.values())
    clock = time.perf_counter if cuda else time.process_time
    for _ in range(warmup):
        for trainer in trainers.values():
            trainer.train_step(batch)
    mins = []
    for r in range(rounds):
        best = {name: float("inf") for name in trainers}
        names = list(trainers) if r % 2 == 0 else list(trainers)[::-1]  # alternate who leads
        for _ in range(k):
            for name in names:
                start = clock()
                trainers[name].train_step(batch)
                if cuda:
                    torch.cuda.synchronize()
                best[name] = min(best[name], clock() - start)
        mins.append((best["plain"], best["guided"]))
    return mins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--k", type=int, default=3, help="steps of each arm per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--lambda-au", type=float, default=4.0)
    parser.add_argument("--layers", default="5")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

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
        mins = round_ratios(trainers, batch, args.rounds, args.k, args.warmup)
        per_round = sorted(g / p for p, g in mins)
        ratio = statistics.median(per_round)
        ratios.append(ratio)
        plain = statistics.median(p for p, _ in mins)
        guided = statistics.median(g for _, g in mins)
        print(f"{backbone} {args.img_size}px batch {args.batch} ({trainers['plain'].device}, "
              f"{args.threads} thread(s)): plain {1e3 * plain:.1f} ms  guided {1e3 * guided:.1f} "
              f"ms  ratio {ratio:.3f} (rounds {per_round[0]:.3f}..{per_round[-1]:.3f})",
              flush=True)
    print(f"au_overhead_ratio={max(ratios):.3f}")


if __name__ == "__main__":
    main()
