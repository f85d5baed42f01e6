"""Training-loader throughput at the paper's input size: can the CPUs keep a GPU fed?

    python bench/loader_throughput.py [--n 600] [--size 224] [--batch 64] [--workers 2]

Writes a RAF-DB-shaped tree (100×100 aligned JPEG faces, landmarks imported into the landmark
cache) and an AffectNet-shaped one (larger photos of varied sizes, face boxes and landmarks in
the CSV lists) into a temporary folder, then times the training loader of each (decode, crop,
joint image + landmark augmentation, collate) for ``--epochs`` passes, in the main process (one
worker) and with ``--workers`` worker processes. Prints images/s per line and
``loader_images_per_s_per_worker=<x>`` last (RAF-DB shape, one worker, best pass).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import torch
from face_trees import rafdb_landmark_file, write_affectnet, write_rafdb

from fer_core.config import DataConfig
from fer_core.data import CATALOGS
from fer_core.data.landmarks import import_reference
from fer_core.loaders import build_loader


def passes(cfg: DataConfig, batch: int, epochs: int) -> list[tuple[float, float]]:
    """(wall, CPU) images/s of each full pass over the training split.

    The CPU figure (images per second of this process's CPU time) is what one worker delivers
    on a core of its own; it is only meaningful in the main process (``num_workers=0``), and it
    does not drop when other processes share the cores, as the wall-clock figure does.
    """
    loader = build_loader(cfg, "train", batch, seed=0)
    rates = []
    for _ in range(epochs):
        start, cpu, seen = time.perf_counter(), time.process_time(), 0
        for item in loader:
            seen += len(item["label"])
        rates.append((seen / (time.perf_counter() - start),
                      seen / max(time.process_time() - cpu, 1e-9)))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600, help="training images per tree")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="passes per setting")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a loader worker is one process on one core
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory(prefix="fer-loader-") as tmp:
        root = Path(tmp)
        rafdb = write_rafdb(root / "rafdb", args.n)
        import_reference(CATALOGS.get("rafdb")(rafdb),
                         rafdb_landmark_file(rafdb, root / "rafdb_landmarks.csv"))
        affectnet = write_affectnet(root / "affectnet", max(7, args.n // 4))
        trees = {"rafdb": rafdb, "affectnet": affectnet}
        per_worker: dict[str, float] = {}
        for name, path in trees.items():
            for workers in (0, args.workers):
                cfg = DataConfig(dataset=name, data_root=str(path), img_size=args.size,
                                 num_workers=workers)
                rates = passes(cfg, args.batch, args.epochs)
                if workers == 0:
                    print(f"{name}: {args.size}px batch {args.batch}, 1 worker (main process): "
                          + ", ".join(f"{w:.0f} wall / {c:.0f} CPU" for w, c in rates)
                          + " images/s per pass", flush=True)
                    per_worker[name] = max(c for _, c in rates)
                else:
                    print(f"{name}: {args.size}px batch {args.batch}, {workers} workers: "
                          + ", ".join(f"{w:.0f}" for w, _ in rates)
                          + " images/s per pass (wall clock, all workers)", flush=True)
        print(f"affectnet_loader_images_per_s_per_worker={per_worker['affectnet']:.0f}")
        print(f"loader_images_per_s_per_worker={per_worker['rafdb']:.0f}")


if __name__ == "__main__":
    main()
