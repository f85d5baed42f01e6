"""The price of the paper's whole study on the device at hand, from ``tuner.cost.estimate``.

    python bench/study_cost.py                  # every arm timed (minutes on a CPU)
    python bench/study_cost.py --max-arms 4     # time 4 arms per sweep, the rest cost their mean

The study is the sweeps behind Tables 1–3 and Fig. 5 at the paper's sizes (docs/method.md §8–9):
ResNet-50 at 224 px (TS-CAM: DeiT-S; APViT: IR-50 at 112 px); RAF-DB 100 epochs, batch 32,
12,271 training / 3,068 test images; AffectNet 20 epochs, batch 224, 283,901 / 3,500; each
sweep × 3 seeds. Each distinct arm is
built at 224 px and timed on synthetic images (the step cost does not depend on the pixels):
one warm-up and ``--steps`` training steps and one validation pass. On a CPU the probe batch is
small and the time per image is scaled to the paper's batch (a CPU's cost is close to linear in
the batch); on a GPU the paper's batch is timed as it is. Then ``TrialShape`` scales the times
to the paper's split sizes (validation = ``val_fraction`` of the training images) and epochs.

Prints a line per sweep and ``study_device_hours=<x>`` last: the device-hours of the whole
study with one trial per device (GPU-hours on a GPU, hours of this whole CPU otherwise).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import dataclass, replace

import torch

from fer_core.config import ExperimentConfig
from tuner.cli import parse_args
from tuner.cost.estimate import ArmCost, TrialShape, arms, cost_key, measure, stand_in
from tuner.spec.resolve import resolve

SEEDS = 3
CPU_PROBE_BATCH = 4
PAPER_NETWORK = {"resnet18": "resnet50", "deit_tiny_patch16_224": "deit_small_patch16_224",
                 "ir_tiny": "ir50"}
"""The spaces' laptop networks and the paper's (docs/method.md §6, §8)."""
PAPER_IMG_SIZE = {"apvit": 112}  # every other method: 224 px


def at_paper_size(flat: dict) -> dict:
    """An arm's config with the paper's network and input size."""
    return {**flat, "backbone": PAPER_NETWORK.get(flat["backbone"], flat["backbone"]),
            "img_size": PAPER_IMG_SIZE.get(flat["method"], 224)}


@dataclass(frozen=True)
class Dataset:
    name: str
    train_images: int
    test_images: int
    epochs: int
    batch: int


RAFDB = Dataset("RAF-DB", 12_271, 3_068, 100, 32)
AFFECTNET = Dataset("AffectNet", 283_901, 3_500, 20, 224)
STUDY: tuple[tuple[str, str, Dataset], ...] = (
    ("Tables 1-2", "methods", RAFDB),
    ("Tables 1-2", "methods", AFFECTNET),
    ("Table 3", "layers", RAFDB),
    ("Fig. 5", "lambda", RAFDB),
)


def paper_shape(data: Dataset, val_fraction: float) -> TrialShape:
    val = round(data.train_images * val_fraction)
    train = data.train_images - val
    return TrialShape(math.ceil(train / data.batch), val, data.test_images, data.epochs)


def timed(flat: dict, probe_batch: int, cache: str, steps: int) -> ArmCost:
    """One arm at its paper size on synthetic images, a step of ``probe_batch`` images."""
    probe = {**flat, "dataset": "synthetic", "batch_size": probe_batch, "max_train_batches": 0,
             "synthetic_n": max(20, math.ceil(probe_batch / 0.6) + 5)}
    cost, _ = measure(probe, cache, steps)
    return cost


def sweep_hours(space: str, data: Dataset, args: argparse.Namespace, cache: str,
                seen: dict) -> tuple[float, int, ArmCost]:
    # The network is set per arm afterwards: the methods space derives it from the method.
    resolved = resolve(parse_args([
        "--space", space, "--seeds", str(SEEDS), "--set", f"epochs={data.epochs}",
        "--set", f"batch_size={data.batch}"]))
    probe_batch = data.batch if torch.cuda.is_available() else CPU_PROBE_BATCH
    found = [replace(a, config=at_paper_size(a.config))
             for a in sorted(arms(resolved), key=lambda a: (not a.reference, -a.trials))]
    costs: list[ArmCost | None] = []
    for i, arm in enumerate(found):
        key = (cost_key({**arm.config, "batch_size": 0, "epochs": 0}), probe_batch)
        if key not in seen and (args.max_arms is None or i < args.max_arms):
            seen[key] = timed(arm.config, probe_batch, cache, args.steps)
        probe = seen.get(key)  # kept per probe batch: the two datasets' batches differ
        costs.append(probe and replace(probe, step_s=probe.step_s * data.batch / probe_batch))
    known = [c for c in costs if c is not None]
    hours = 0.0
    for arm, cost in zip(found, costs, strict=True):
        cost = cost or stand_in(known)
        shape = paper_shape(data, ExperimentConfig.from_flat(arm.config).data.val_fraction)
        hours += arm.trials * shape.seconds(cost) / 3600
    return hours, round(sum(a.trials for a in found)), known[0]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1, help="timed training steps per arm")
    p.add_argument("--max-arms", type=int, help="time at most this many arms per sweep")
    args = p.parse_args(argv)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"device: {device}; {torch.get_num_threads()} torch threads; steps per arm: "
          f"1 warm-up + {args.steps}", flush=True)
    total, seen = 0.0, {}
    with tempfile.TemporaryDirectory(prefix="study-cost-") as cache:
        for label, space, data in STUDY:
            hours, trials, cost = sweep_hours(space, data, args, cache, seen)
            total += hours
            print(f"{label:<11} {space:<8} {data.name:<9} {trials:>3} trials  {hours:>9.1f} "
                  f"trial-hours  (selected weights, kept once as the MLflow model "
                  f"{cost.weight_bytes / 1e6:.0f} MB; running checkpoint "
                  f"{cost.running_checkpoint_bytes / 1e6:.0f} MB)", flush=True)
    print(f"study_device_hours={total:.1f}")


if __name__ == "__main__":
    main()
