"""CAM extraction throughput (images/s) of every registered method on one batch.

    python bench/cams.py --backbone resnet50 --img-size 224 --batch 32 --device cuda
    python bench/cams.py --smoke-test

Each method is built with random weights (throughput does not depend on them), put in eval
mode, and timed on ``m.cams(x, labels)`` (what evaluation calls) and on a plain forward for
reference; medians over ``--repeats`` after ``--warmup`` calls. Methods that reject a CNN
(transformer methods) run on ``--vit-backbone``. Printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from fer_core import NUM_CLASSES
from fer_core.cams import METHODS, CamMethod, build_method
from fer_core.config import MethodConfig, ModelConfig


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int,
                   warmup: int) -> float:
    """Median wall time of ``fn()``, synchronising CUDA around each call."""
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(name: str, backbone: str, vit_backbone: str, img_size: int) -> tuple[CamMethod, str]:
    """The method on ``backbone``, or on ``vit_backbone`` when it needs a transformer."""
    cfg = MethodConfig(method=name)
    try:
        return build_method(cfg, ModelConfig(backbone=backbone), NUM_CLASSES, img_size), backbone
    except ValueError:
        model = build_method(cfg, ModelConfig(backbone=vit_backbone), NUM_CLASSES, img_size)
        return model, vit_backbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=None, help="default: all registered")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--vit-backbone", default="deit_small_patch16_224")
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--smoke-test", action="store_true",
                        help="tiny run: resnet18/deit_tiny, 32 px, batch 2, 1 repeat")
    args = parser.parse_args()
    if args.smoke_test:
        args.backbone, args.vit_backbone = "resnet18", "deit_tiny_patch16_224"
        args.img_size, args.batch, args.repeats, args.warmup = 32, 2, 1, 0
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = args.methods or METHODS.names()

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)
    labels = torch.arange(args.batch, device=device) % NUM_CLASSES
    print(f"CAM extraction, batch {args.batch} at {args.img_size} px on {device} "
          f"({torch.get_num_threads()} CPU threads), median of {args.repeats}")
    print("| method | backbone | CAM size | forward ms | cams ms | images/s | cams / forward |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        model, backbone = build(name, args.backbone, args.vit_backbone, args.img_size)
        model = model.to(device).eval()
        with torch.no_grad():
            fwd = median_seconds(lambda m=model: m(x), device, args.repeats, args.warmup)
        if not model.has_cam:
            print(f"| {name} | {backbone} | no CAM | {fwd * 1e3:.1f} | – | – | – |")
            continue
        size = "×".join(str(v) for v in model.cams(x[:1], labels[:1]).shape[-2:])
        cam = median_seconds(lambda m=model: m.cams(x, labels), device, args.repeats, args.warmup)
        print(f"| {name} | {backbone} | {size} | {fwd * 1e3:.1f} | {cam * 1e3:.1f} | "
              f"{args.batch / cam:.1f} | {cam / fwd:.2f} |")


if __name__ == "__main__":
    main()
