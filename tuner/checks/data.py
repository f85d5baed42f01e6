"""The data a sweep trains on, prepared once by the driver before any trial starts.

The synthetic generator writes its splits into the shared cache; file datasets are listed, which
also checks ``--data-root``. Trials then read instead of generating the data side by side, and
the fingerprint (a parent-run tag) says which images the sweep saw.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from fer_core.config import DataConfig, ExperimentConfig

SPLITS = ("train", "val", "test")


def _root_listing_digest(root: str) -> str:
    """Hash of every file's relative path and size under ``root`` (cheap, no file reads)."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            try:
                size = path.stat().st_size
            except OSError:
                continue
            digest.update(f"{path.relative_to(root)}\0{size}\n".encode())
    return digest.hexdigest()


def prepare_data(cfg: ExperimentConfig, cache_dir: str | None) -> str:
    """Build every split once (filling the cache); returns the data fingerprint.

    The fingerprint hashes the data config, each split's size and cache file, and for a
    dataset root the listing of its files: same fingerprint ⇒ same images in the same splits.
    """
    from fer_core.loaders import build_split

    digest = hashlib.sha256()
    data: DataConfig = cfg.data
    fields = {k: getattr(data, k) for k in data.__dataclass_fields__ if k != "num_workers"}
    digest.update(json.dumps(fields, sort_keys=True, default=str).encode())
    for split in SPLITS:
        ds = build_split(data, split, cache_dir)
        raw = getattr(ds, "base", ds)
        cache_file = getattr(raw, "path", None)
        digest.update(f"{split}:{len(ds)}:{Path(cache_file).name if cache_file else ''}"
                      .encode())
    if data.data_root:
        digest.update(_root_listing_digest(data.data_root).encode())
    return digest.hexdigest()[:16]
