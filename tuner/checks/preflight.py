"""Check a sweep's data on the driver before any MLflow run or Ray trial exists.

Every split the trials will use is opened once, as a scan: each listed file is checked to exist,
to be non-empty and to start like an image (JPEG, PNG, BMP, WebP, TIFF, GIF), and a few files per
split are decoded. No training pass, no full decode of a large dataset. The sweep stops (exit 2)
with one message when the root or its layout is missing, a split has no readable image, a class
has no training image (``--allow-missing-classes`` accepts a subset on purpose), or the share of
readable images without landmarks exceeds ``--max-missing-landmarks`` (default
:data:`MAX_MISSING_LANDMARKS`). Unreadable files are counted and listed in a report file whose
path the message gives; a few of them never stop a sweep (the trials skip them).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_core import CLASSES
from fer_core.cli import UserError
from fer_core.config import DataConfig

MAX_MISSING_LANDMARKS = 0.25
"""Default ceiling on the share of readable images without landmarks (their AU map is invalid,
so the alignment term never sees them); 1 turns the check off."""

DECODED_PER_SPLIT = 16  # full decodes per split: catches files whose header lies, stays cheap
REPORT_NAME = "preflight-{dataset}.txt"

# Leading bytes of the formats OpenCV reads; a file starting otherwise is not an image.
MAGIC: dict[str, tuple[bytes, ...]] = {
    "jpeg": (b"\xff\xd8\xff",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "bmp": (b"BM",),
    "tiff": (b"II*\x00", b"MM\x00*"),
    "gif": (b"GIF87a", b"GIF89a"),
    "webp": (b"RIFF",),
}


class PreflightError(UserError):
    """The data cannot give a meaningful sweep; raised before anything starts."""


@dataclass(frozen=True)
class PreflightRules:
    """What the data must satisfy (``--allow-missing-classes``, ``--max-missing-landmarks``)."""

    allow_missing_classes: bool = False
    max_missing_landmarks: float = MAX_MISSING_LANDMARKS

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_missing_landmarks <= 1.0:
            raise PreflightError(f"--max-missing-landmarks {self.max_missing_landmarks}: use a "
                                 "share between 0 and 1 (1 turns the check off)")


@dataclass
class SplitScan:
    """What one split's scan found."""

    name: str
    listed: int = 0
    readable: int = 0
    no_landmarks: int = 0
    classes: Counter = field(default_factory=Counter)
    bad: list[tuple[str, str]] = field(default_factory=list)


def file_problem(path: str | os.PathLike, decode: bool = False) -> str | None:
    """Why ``path`` cannot be an image (None when it looks like one); reads 16 bytes unless
    ``decode``, which decodes it fully as the trials will."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except FileNotFoundError:
        return "missing file"
    except OSError as err:
        return f"unreadable: {err.strerror or err}"
    if not head:
        return "empty file"
    if not any(head.startswith(m) for magics in MAGIC.values() for m in magics):
        return "not an image (unknown header)"
    if head.startswith(b"RIFF") and b"WEBP" not in head:
        return "not an image (RIFF but not WebP)"
    if decode:
        from fer_core.data.io import BadImage, read_image

        try:
            read_image(path)
        except BadImage as err:
            return err.reason
    return None


def has_landmarks(dataset, record) -> bool:
    """Whether the record's sample will carry landmarks (shipped, or an ``ok`` cache entry)."""
    if record.shipped is not None:
        if isinstance(record.shipped, Path):
            return record.shipped.is_file()
        return bool(np.isfinite(np.asarray(record.shipped, dtype=np.float32)).all())
    entry = dataset.cache.entries.get(record.id) if dataset.cache is not None else None
    return entry is not None and entry.status == "ok"


def scan_split(cfg: DataConfig, split: str) -> SplitScan:
    """Open ``split`` of ``cfg``'s file dataset and check each of its files cheaply."""
    from fer_core.data import build_dataset
    from fer_core.loaders import dataset_options

    with warnings.catch_warnings():  # "no landmark cache": the landmark share is checked below
        warnings.simplefilter("ignore")
        dataset = build_dataset(cfg.dataset, split, root=cfg.data_root,
                                **dataset_options(cfg, split))
    scan = SplitScan(split, listed=len(dataset.records) + len(dataset.report.entries))
    scan.bad.extend(dataset.report.entries)  # missing/empty files and bad annotations
    step = max(1, len(dataset.records) // DECODED_PER_SPLIT)
    for k, record in enumerate(dataset.records):
        problem = file_problem(record.path, decode=k % step == 0)
        if problem:
            scan.bad.append((str(record.path), problem))
            continue
        scan.readable += 1
        scan.classes[record.label] += 1
        scan.no_landmarks += not has_landmarks(dataset, record)
    return scan


def write_report(scans: list[SplitScan], path: Path) -> Path:
    """The unreadable files of every split, one ``split<TAB>path<TAB>reason`` line each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for scan in scans:
            for file, reason in sorted(set(scan.bad)):
                out.write(f"{scan.name}\t{file}\t{reason}\n")
    return path


def check_data(cfg: DataConfig, report_dir: str | os.PathLike,
               rules: PreflightRules = PreflightRules()) -> str:
    """Scan the train/val/test splits of ``cfg``; returns a one-line summary, or raises
    :class:`PreflightError` naming the problem (and the report file listing bad images)."""
    if cfg.dataset == "synthetic":
        return "preflight: synthetic data (generated, nothing to scan)"
    if not cfg.data_root:
        raise PreflightError(f"--dataset {cfg.dataset} needs --data-root <its folder>")
    from fer_core.data import SPLITS

    scans = []
    for split in SPLITS:
        try:
            scans.append(scan_split(cfg, split))
        except FileNotFoundError as err:  # the layout; its message shows the expected one
            raise PreflightError(f"--dataset {cfg.dataset} --data-root {cfg.data_root}: "
                                 f"{err}") from None
    report = write_report(scans, Path(report_dir) / REPORT_NAME.format(dataset=cfg.dataset))
    bad = sum(len(set(s.bad)) for s in scans)
    where = f"{cfg.dataset} at {cfg.data_root}"
    for scan in scans:
        if scan.readable == 0:
            raise PreflightError(
                f"the {scan.name} split of {where} has no readable image ({scan.listed} listed, "
                f"{len(set(scan.bad))} unreadable: see {report})")
    train = scans[0]
    missing = [CLASSES[c] for c in range(len(CLASSES)) if train.classes[c] == 0]
    if missing and not rules.allow_missing_classes:
        raise PreflightError(
            f"no training image of class(es) {', '.join(missing)} in {where}; fix the labels, "
            f"or pass --allow-missing-classes to train on a subset on purpose (report: {report})")
    readable = sum(s.readable for s in scans)
    share = sum(s.no_landmarks for s in scans) / readable
    if share > rules.max_missing_landmarks:
        raise PreflightError(
            f"{share:.0%} of the readable images of {where} have no landmarks (limit "
            f"{rules.max_missing_landmarks:.0%}, --max-missing-landmarks): extract them with "
            f"python -m fer_core.data.landmarks --dataset {cfg.dataset} --root {cfg.data_root}")
    return (f"preflight: {readable} readable images in {len(scans)} splits of {where}, "
            f"{bad} unreadable (listed in {report}), {share:.0%} without landmarks")
