"""Landmark extraction speed at dataset scale: fitting to known face boxes against detection.

    python bench/landmarks_speed.py [--n 400] [--workers 2]

Writes a RAF-DB-shaped tree (100×100 aligned faces) and an AffectNet-shaped one (photos of
about 300 to 1,100 px with face boxes) of a real face (``bench/face_trees.py``) and runs the
extraction CLI's code path (``extract_catalog``, ``--workers`` processes, fresh cache) on each,
with the dataset's boxes (``detect=auto``) and with detection (``detect=always``). Prints
images/s (wall clock, after the models are loaded once) and images per CPU-second of the
workers (what the same workers give on cores of their own; the machine may be shared), then
``landmarks_images_per_s=<x>`` last: RAF-DB shape, known boxes, wall clock.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from face_trees import write_affectnet, write_rafdb

from fer_core.data import CATALOGS
from fer_core.data.landmarks import _models, extract_catalog


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(catalog, cache_dir: Path, workers: int, detect: str) -> tuple[float, float, int]:
    """(wall images/s, images per worker CPU-second, images with landmarks)."""
    cpu, own = children_cpu(), time.process_time()
    start = time.perf_counter()
    stats = extract_catalog(catalog, cache_dir, workers=workers, progress=False, detect=detect)
    wall = time.perf_counter() - start
    used = children_cpu() - cpu if workers > 1 else time.process_time() - own
    return stats.extracted / wall, stats.extracted / max(used, 1e-9), stats.counts["ok"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="RAF-DB-shaped training images")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    with tempfile.TemporaryDirectory(prefix="fer-landmarks-") as tmp:
        root = Path(tmp)
        trees = {
            "rafdb": CATALOGS.get("rafdb")(write_rafdb(root / "rafdb", args.n)),
            "affectnet": CATALOGS.get("affectnet")(
                write_affectnet(root / "affectnet", max(5, args.n // 8))),
        }
        start = time.process_time()
        _models()  # loaded once; the forked workers share it (reported apart: a one-off cost)
        print(f"dlib models loaded in {time.process_time() - start:.1f} CPU-s (once per run)")
        rates: dict[tuple[str, str], float] = {}
        for name, catalog in trees.items():
            for detect in ("auto", "always"):
                wall, per_cpu, ok = run(catalog, root / f"cache-{name}-{detect}", args.workers,
                                        detect)
                rates[name, detect] = wall
                how = "known boxes" if detect == "auto" else "detection"
                print(f"{name}: {len(catalog.records)} images, {how}, {args.workers} workers: "
                      f"{wall:.1f} images/s ({per_cpu:.1f} per worker CPU-second), "
                      f"{ok} with landmarks", flush=True)
        print(f"landmarks_photos_images_per_s={rates['affectnet', 'auto']:.1f} "
              f"(detection: {rates['affectnet', 'always']:.1f})")
        print(f"landmarks_images_per_s={rates['rafdb', 'auto']:.1f}")


if __name__ == "__main__":
    main()
