"""Where a sweep's code and data come from: git commit, data fingerprint, the shared data cache.

The driver prepares the data once before any trial starts (the synthetic generator writes its
splits into the cache; file datasets are listed, which also checks ``--data-root``), so trials
read instead of generating it side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from fer_core.config import DataConfig, ExperimentConfig

SPLITS = ("train", "val", "test")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def git_commit(repo: Path = PROJECT_ROOT) -> str:
    """``<sha>`` of the checkout the code runs from; ``<sha>-dirty-<diff hash>`` with local changes.

    The 8 hex digits hash ``git diff HEAD`` (tracked files, staged or not), so two different
    uncommitted states never count as the same code version (``tuner.dedup`` relies on it).
    ``unknown`` outside a git checkout or without git.
    """
    try:
        sha = _git(repo, "rev-parse", "HEAD").decode().strip()
        diff = _git(repo, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not diff:
        return sha
    return f"{sha}-dirty-{hashlib.sha256(diff).hexdigest()[:8]}"


def _git(repo: Path, *args: str) -> bytes:
    """stdout of one git command as bytes (a diff may hold any encoding)."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True,
                          timeout=30).stdout


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
