"""CAM extraction throughput (images/s) of every registered method on one batch.

    python bench/cams.py --backbone resnet50 --img-size 224 --batch 32 --device cuda
    python bench/cams.py --smoke-test

Each method is built with random weights (throughput does not depend on them), put in eval
mode, and timed on ``m.cams(x, labels)`` (what evaluation calls) and on a plain forward for
reference; medians over ``--repeats`` after ``--warmup`` calls. Methods that reject a CNN
(TS-CAM) run on ``--vit-backbone``, APViT on its ``--ir-backbone`` (no CAM: forward only).
Printed as a Markdown table.
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


def median_seconds(
    fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int
) -> dict[str, float]:
    """Median wall time of each ``fn()``, calls interleaved so machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _forward(model: CamMethod, x: torch.Tensor) -> None:
    with torch.no_grad():
        model(x)


def build(name: str, backbones: list[str], img_size: int) -> tuple[CamMethod, str]:
    """The method on the first of ``backbones`` it accepts (CNN, then ViT, then APViT's IR)."""
    cfg = MethodConfig(method=name)
    errors = []
    for backbone in backbones:
        try:
            model = build_method(cfg, ModelConfig(backbone=backbone), NUM_CLASSES, img_size)
            return model, backbone
        except ValueError as err:
            errors.append(f"{backbone}: {err}")
    raise SystemExit(f"{name} accepts none of {backbones}:\n" + "\n".join(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=None, help="default: all registered")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--vit-backbone", default="deit_small_patch16_224")
    parser.add_argument("--ir-backbone", default="ir50", help="APViT's variant")
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
        args.ir_backbone = "ir_tiny"
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
        backbones = [args.backbone, args.vit_backbone, args.ir_backbone]
        model, backbone = build(name, backbones, args.img_size)
        model = model.to(device).eval()
        fns = {"forward": lambda m=model: _forward(m, x)}
        if model.has_cam:
            fns["cams"] = lambda m=model: m.cams(x, labels)
        med = median_seconds(fns, device, args.repeats, args.warmup)
        fwd = med["forward"]
        if not model.has_cam:
            print(f"| {name} | {backbone} | no CAM | {fwd * 1e3:.1f} | – | – | – |")
            continue
        size = "×".join(str(v) for v in model.cams(x[:1], labels[:1]).shape[-2:])
        cam = med["cams"]
        print(f"| {name} | {backbone} | {size} | {fwd * 1e3:.1f} | {cam * 1e3:.1f} | "
              f"{args.batch / cam:.1f} | {cam / fwd:.2f} |")


if __name__ == "__main__":
    main()
