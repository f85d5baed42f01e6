"""Synthetic-face generation speed on one core (images/s), without touching the cache.

    python bench/synthetic_speed.py [--n 1400] [--sizes 64 112 224]

The issue's target is >= 500 images/s at 64 px on one core. Timing covers everything a cache miss
costs except the .npz write: parameter draws, landmark geometry, drawing, lighting and noise.
"""

from __future__ import annotations

import argparse
import os
import time

# One core: pin the math libraries before numpy/OpenCV start their thread pools.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import cv2  # noqa: E402

from fer_core.data.synthetic import SyntheticOptions, generate_split  # noqa: E402


def measure(size: int, n: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` images/s for one split of ``n`` images at ``size`` px."""
    best = float("inf")
    for r in range(repeats):
        start = time.perf_counter()
        generate_split("train", SyntheticOptions(size=size, n=n, seed=r, shortcut=0.5))
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1400, help="images per timed split")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 112, 224])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"{'size':>6} {'images/s':>10} {'ms/image':>9}")
    for size in args.sizes:
        rate = measure(size, args.n, args.repeats)
        print(f"{size:>6} {rate:>10.0f} {1000 / rate:>9.2f}")


if __name__ == "__main__":
    main()
