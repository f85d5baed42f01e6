"""Dataset registry, the sample contract, and the one dataset class behind every file dataset.

A file dataset (RAF-DB, AffectNet, folder) is a *scan* function that turns a root directory into a
:class:`Catalog` of :class:`Record` s (path, label, shipped split, optional face box and shipped
landmarks). ``@register_file_dataset(name)`` registers the scan (in ``CATALOGS``, used by the
landmarks CLI) and a factory (in ``DATASETS``) that selects a split and wraps it in
:class:`FaceImages`. Landmarks come from the records (shipped with the dataset) or from the landmark
cache written by ``python -m fer_core.data.landmarks``; unknown landmarks are NaN.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from fer_core import CLASSES
from fer_core.cli import MissingPath, UserError
from fer_core.data.cache import DEFAULT_CACHE_DIR, LandmarkCache, cache_file, nan_landmarks
from fer_core.data.io import (
    BAD_IMAGES_FILE,
    BadImage,
    BadImageReport,
    NoReadableImage,
    content_hash,
    decode_image,
    read_bytes,
)
from fer_core.data.splits import select_split
from fer_core.registry import Registry

DATASETS: Registry = Registry("dataset")
"""Dataset factories: ``factory(split, root=None, **options) -> torch Dataset of Samples``."""

CATALOGS: Registry = Registry("file dataset")
"""Scans of file datasets: ``scan(root, **layout_options) -> Catalog`` (all shipped splits)."""

SPLITS = ("train", "val", "test")
LANDMARK_SOURCES = ("auto", "cache", "shipped")


class Sample(TypedDict):
    """One raw sample, before transforms."""

    image: np.ndarray  # H×W×3 uint8 RGB
    label: int  # canonical class id (fer_core.CLASSES order)
    landmarks: np.ndarray  # (68, 2) float32 (x, y) in the image's pixel frame; NaN when unknown
    id: str  # stable identifier (file name or generated id)


Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) pixels of the image file


@dataclass(frozen=True)
class Record:
    """One image of a file dataset, as its annotation files describe it."""

    id: str  # stable, unique within the dataset
    path: Path
    label: int  # canonical class id
    source_split: str  # the split the dataset ships it in: train, val or test
    box: Box | None = None  # crop to this box (already squared and with margin) if given
    shipped: np.ndarray | Path | None = None  # landmarks in the file's frame: (68, 2) or a .npy
    # Where the face is in the sample (after the crop), as fractions of its width and height;
    # None: unknown, the landmark extraction detects it.
    face_box: Box | None = None


@dataclass
class Catalog:
    """Everything a scan found: records of all shipped splits and what it had to leave out."""

    name: str
    root: Path
    frame: str  # names the samples' pixel frame (layout + crop); keys the landmark cache file
    records: list[Record]
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) found by the scan
    dropped: dict[str, int] = field(default_factory=dict)  # rule → count (e.g. Contempt codes)


def canonical_label(name: str) -> int:
    """Canonical id of a class name (case-insensitive)."""
    lowered = [c.lower() for c in CLASSES]
    return lowered.index(name.lower())


def square_box(x0: float, y0: float, x1: float, y1: float, margin: float) -> Box:
    """A square box centred on ``(x0, y0, x1, y1)``, side ``(1 + 2 * margin) * max(w, h)``.

    Square, so that resizing the crop to the network's square input never distorts the face.
    """
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = (1 + 2 * margin) * max(x1 - x0, y1 - y0) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def crop(image: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``box`` out of ``image`` (zero padding outside it); returns the crop and its origin.

    A point ``p`` of the image is at ``p - origin`` in the crop.
    """
    x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
    # Size from the rounded extent (not floor/ceil of each edge): a square box stays square.
    x1 = x0 + max(1, round(box[2] - box[0]))
    y1 = y0 + max(1, round(box[3] - box[1]))
    h, w = image.shape[:2]
    pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    if any(pad):
        image = np.pad(image, ((pad[0], pad[1]), (pad[2], pad[3]), (0, 0)))
    out = image[y0 + pad[0] : y1 + pad[0], x0 + pad[2] : x1 + pad[2]]
    return np.ascontiguousarray(out), np.array([x0, y0], dtype=np.float32)


def decode_face(record: Record, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The sample image of a record from its file's bytes, and the crop origin in the file."""
    image = decode_image(data, record.path)
    if record.box is None:
        return image, np.zeros(2, dtype=np.float32)
    return crop(image, record.box)


def load_face(record: Record) -> tuple[np.ndarray, np.ndarray, str]:
    """The sample image of a record, the crop origin in the file, and the file's content hash.

    Raises :class:`BadImage` for a missing, empty or undecodable file.
    """
    data = read_bytes(record.path)
    image, origin = decode_face(record, data)
    return image, origin, content_hash(data)


def shipped_landmarks(record: Record) -> np.ndarray | None:
    """The record's shipped landmarks as ``(68, 2)`` float32 in the file's frame (NaN where not
    finite); None when the dataset ships none. ``.npy`` files hold 136 values ``x1, y1, x2, ...``.
    """
    if record.shipped is None:
        return None
    values = record.shipped
    if isinstance(values, Path):
        try:
            values = np.load(values)
        except (OSError, ValueError):
            return nan_landmarks()  # a missing/corrupt landmark file: the image stays usable
    points = np.asarray(values, dtype=np.float32).reshape(-1)
    if points.size != 136:
        return nan_landmarks()
    points = points.reshape(68, 2).copy()
    points[~np.isfinite(points)] = np.nan
    return points


class FaceImages:
    """Samples (:class:`Sample`) of a list of records; bad images are skipped and reported.

    A map-style dataset (``__len__``, ``__getitem__``) that a torch ``DataLoader`` takes as it
    is; not a subclass of torch's ``Dataset``, so that naming datasets imports no torch.

    Files that are missing or empty are left out when the dataset is built (``verify=True``
    also decodes every image then). A file that fails to decode later is reported and replaced by
    the next good sample, so a run never stops on one bad file. Every bad file is listed in
    ``report`` (``path<TAB>reason`` lines).
    """

    def __init__(
        self,
        records: list[Record],
        cache: LandmarkCache | None = None,
        report: BadImageReport | None = None,
        verify: bool = False,
    ) -> None:
        self.cache = cache
        self.report = report if report is not None else BadImageReport(None)
        self.records = [r for r in records if self._usable(r, verify)]
        self._bad: set[int] = set()

    def _usable(self, record: Record, verify: bool) -> bool:
        try:
            if verify:
                load_face(record)
            elif os.stat(record.path).st_size == 0:
                raise BadImage(record.path, "empty file")
        except FileNotFoundError:
            self.report.add(record.path, "missing file")
            return False
        except BadImage as err:
            self.report.add(err.path, err.reason)
            return False
        return True

    @property
    def labels(self) -> np.ndarray:
        """Canonical labels of all samples, in order."""
        return np.array([r.label for r in self.records], dtype=np.int64)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def sample(self, index: int) -> Sample:
        """Sample ``index``; raises :class:`BadImage` instead of skipping."""
        record = self.records[index]
        image, origin, hash_ = load_face(record)
        points = shipped_landmarks(record)
        if points is not None:
            points = points - origin  # shipped in the file's frame
        elif self.cache is not None:
            points = self.cache.lookup(record.id, hash_)  # extracted in the sample's frame
        if points is None:
            points = nan_landmarks()
        return Sample(image=image, label=record.label, landmarks=points, id=record.id)

    def __getitem__(self, index: int) -> Sample:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        for step in range(n):
            j = (index + step) % n
            if j in self._bad:
                continue
            try:
                return self.sample(j)
            except BadImage as err:
                self._bad.add(j)
                self.report.add(err.path, err.reason)
        raise NoReadableImage(f"no readable image left in this dataset; see {self.report.path}")


def from_catalog(
    catalog: Catalog,
    split: str,
    *,
    val_fraction: float = 0.1,
    val_from_test: bool = False,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    bad_report: str | os.PathLike | None = None,
    verify: bool = False,
    landmarks: str = "auto",
) -> FaceImages:
    """The ``split`` of a scanned dataset, with its landmark cache and bad-image report.

    Args:
        val_fraction, val_from_test, seed: how val is chosen (``splits.select_split``).
        cache_dir: landmark cache and report folder; default ``<root>/.fer_cache``.
        bad_report: the bad-image list; default ``<cache_dir>/bad_images.txt``.
        verify: decode every image now and leave out those that fail (else: at first use).
        landmarks: ``auto`` (shipped ones where the dataset has them, else the cache),
            ``cache`` (always the extracted ones, e.g. dlib for AffectNet too) or ``shipped``.
    """
    if landmarks not in LANDMARK_SOURCES:
        raise UserError(f"unknown landmarks={landmarks!r}; valid: {', '.join(LANDMARK_SOURCES)}")
    cache_dir = Path(cache_dir) if cache_dir is not None else catalog.root / DEFAULT_CACHE_DIR
    report = BadImageReport(bad_report if bad_report is not None else cache_dir / BAD_IMAGES_FILE)
    for path, reason in catalog.bad:
        report.add(path, reason)
    records = catalog.records
    picked = select_split(
        [r.source_split for r in records],
        [r.label for r in records],
        split,
        val_fraction=val_fraction,
        val_from_test=val_from_test,
        seed=seed,
    )
    chosen = [records[i] for i in picked]
    if landmarks == "cache":
        chosen = [replace(r, shipped=None) for r in chosen]
    cache = None
    if landmarks != "shipped" and any(r.shipped is None for r in chosen):
        cache = LandmarkCache(cache_file(cache_dir, catalog.frame))
        if not len(cache):
            warnings.warn(
                f"no landmark cache at {cache.path}: landmarks are NaN, so AU maps are invalid. "
                f"Run: python -m fer_core.data.landmarks --dataset {catalog.name} "
                f"--root {catalog.root}",
                stacklevel=4,
            )
    return FaceImages(chosen, cache=cache, report=report, verify=verify)


SPLIT_OPTIONS = tuple(inspect.signature(from_catalog).parameters)[2:]
"""Dataset options that choose the split and its files; every other option goes to the scan."""


def register_file_dataset(name: str) -> Callable[[Callable[..., Catalog]], Callable[..., Catalog]]:
    """Decorator for a scan ``scan(root, **layout_options) -> Catalog``: registers it in
    ``CATALOGS`` and a split factory in ``DATASETS`` whose options are those of
    :func:`from_catalog` (``SPLIT_OPTIONS``) plus the scan's own."""

    def add(scan: Callable[..., Catalog]) -> Callable[..., Catalog]:
        def factory(split: str, root: str | os.PathLike | None = None, **options: Any):
            if root is None:
                raise UserError(f"dataset {name!r} needs root=<its directory>")
            valid = {*SPLIT_OPTIONS, *list(inspect.signature(scan).parameters)[1:]}
            unknown = set(options) - valid
            if unknown:
                raise TypeError(
                    f"unknown options {sorted(unknown)} for dataset {name!r}; "
                    f"valid: {sorted(valid)}"
                )
            split_options = {k: options.pop(k) for k in SPLIT_OPTIONS if k in options}
            return from_catalog(scan(root, **options), split, **split_options)

        factory.__doc__ = f"The {name!r} dataset. {scan.__doc__ or ''}"
        CATALOGS.register(name)(scan)
        DATASETS.register(name)(factory)
        return scan

    return add


def build_dataset(name: str, split: str, root: str | None = None, **options: Any):
    """Build a registered dataset; unknown names or splits raise errors listing valid ones."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return DATASETS.get(name)(split, root=root, **options)


def require(path: Path, what: str, layout: str) -> Path:
    """``path`` if it exists, else a ``FileNotFoundError`` naming it and the expected layout."""
    if not path.exists():
        raise MissingPath(f"{what} not found: {path}\nExpected layout:\n{layout}")
    return path
