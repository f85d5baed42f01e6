"""68-point landmarks with dlib (HOG face detector + iBUG-68 predictor), and the cache CLI.

    python -m fer_core.data.landmarks --dataset rafdb --root DIR [--workers N] [--cache-dir D]
    python -m fer_core.data.landmarks --dataset rafdb --root DIR --import ref_landmarks.csv

The CLI extracts landmarks for every image of a file dataset (all shipped splits) in the exact
pixel frame its samples have (aligned image or crop), and appends them to the dataset's landmark
cache (``fer_core.data.cache``). Images already cached with the same content hash are skipped, so a
killed run resumes where it stopped and a changed image is extracted again. ``--import`` loads the
reference implementation's landmark files (``id,x1..x68,y1..y68``, ``inf`` for failures) instead.

Where the dataset says where the face is (RAF-DB's aligned crops and bounding boxes, AffectNet's
face boxes), only the shape predictor runs, on that box; the HOG detector runs where there is no
usable box, or for every image with ``--detect always``.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_core.cli import MissingPath, UserError, at_least, cli_main, exit_with
from fer_core.data._cli import add_option_argument, parse_options, with_options
from fer_core.data.base import CATALOGS, Catalog, Record, decode_face
from fer_core.data.cache import DEFAULT_CACHE_DIR, Entry, LandmarkCache, cache_file
from fer_core.data.io import BAD_IMAGES_FILE, BadImage, BadImageReport, content_hash, read_bytes

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
UPSAMPLE_STEPS = (0, 1, 2)
"""HOG upsampling levels tried in turn until a face is found: dlib's HOG detector finds faces of
about 80 px and up, so the 100 px aligned RAF-DB faces often need one or two 2x upsamplings."""
MAX_UPSAMPLED_SIDE = 1200
"""Skip an upsampling level that would make the image side larger than this (large images hold
large faces; upsampling them only costs time)."""

MIN_FACE_SIDE = 16
"""A known face box smaller than this many pixels is unusable: detection is tried instead."""
MIN_BOX_INSIDE = 0.5
"""A known face box needs at least this share of its area inside the image to be used."""
DETECT_MODES = ("auto", "always")
"""``auto``: fit the predictor to the dataset's face box where it has one (no detection), else
detect; ``always``: detect every face, ignoring known boxes."""

_MODELS: tuple | None = None  # (detector, predictor), loaded once per process


def predictor_path() -> Path:
    """The iBUG-68 predictor shipped in ``face-recognition-models``.

    Found through the package's location without importing it: its ``__init__`` imports
    ``pkg_resources``, which setuptools ≥ 81 no longer has.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "landmark extraction needs dlib and the iBUG-68 model: "
            "pip install 'au-guided-fer[landmarks]' (dlib-bin, face-recognition-models)"
        )
    path = Path(spec.origin).parent / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise MissingPath(f"iBUG-68 predictor missing from face-recognition-models: {path}")
    return path


def _models() -> tuple:
    global _MODELS
    if _MODELS is None:
        import dlib  # optional dependency: only landmark extraction needs it

        _MODELS = (dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor_path())))
    return _MODELS


def detect_landmarks(
    image: np.ndarray, upsample: Sequence[int] = UPSAMPLE_STEPS
) -> np.ndarray | None:
    """68 iBUG landmarks of the largest face in an ``H×W×3`` uint8 RGB image.

    Tries the HOG detector at each ``upsample`` level until a face is found. Nothing else is
    tried: fitting the predictor to an arbitrary box (say, the whole image) always returns 68
    points, even without a face, so such a fallback would hide failures; a failure gives NaN
    landmarks and an invalid AU map instead.

    Returns:
        ``(68, 2)`` float32 ``(x, y)`` pixels (pixel centres at integers), or None if no face.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
    detector, predictor = _models()
    image = np.ascontiguousarray(image)
    for level in upsample:
        if level and max(image.shape[:2]) * 2**level > MAX_UPSAMPLED_SIDE:
            break
        faces = detector(image, level)
        if len(faces):
            face = max(faces, key=lambda r: r.area())
            shape = predictor(image, face)
            return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    return None


def usable_box(
    face_box: tuple[float, float, float, float] | None, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """The pixel box of a fractional ``face_box`` in a ``width × height`` image, or None when it
    cannot be trusted (missing, not finite, smaller than ``MIN_FACE_SIDE`` or mostly outside)."""
    if face_box is None or not np.isfinite(face_box).all():
        return None
    scale = (width, height, width, height)
    x0, y0, x1, y1 = (round(v * s) for v, s in zip(face_box, scale, strict=True))
    if min(x1 - x0, y1 - y0) < MIN_FACE_SIDE:
        return None
    inside = max(0, min(x1, width) - max(x0, 0)) * max(0, min(y1, height) - max(y0, 0))
    if inside < MIN_BOX_INSIDE * (x1 - x0) * (y1 - y0):
        return None
    return x0, y0, x1, y1


def fit_landmarks(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """68 iBUG landmarks fitted by the shape predictor alone to a known face ``box``
    ``(x0, y0, x1, y1)`` pixels of an ``H×W×3`` uint8 RGB image.

    Skips the HOG detector, which costs most of the time on upsampled small faces and on large
    photos. The predictor trusts the box: it returns 68 points whatever the box holds, so use it
    only where the dataset says where the face is (see :func:`detect_landmarks`).
    """
    import dlib

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 uint8 RGB image, got {image.dtype} {image.shape}")
    _, predictor = _models()
    shape = predictor(np.ascontiguousarray(image), dlib.rectangle(*(int(v) for v in box)))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _extract(task: tuple[Record, str | None, str]) -> Entry | None:
    """One image: None if its cached entry is current, else a new cache entry (pool worker).

    A file that cannot be read is cached with an empty hash, so it is tried again only once it
    can be read; one that does not decode keeps its content hash, so it is tried again once it
    changes.
    """
    record, cached_hash, detect = task
    try:
        data = read_bytes(record.path)
    except BadImage as err:
        return None if cached_hash == "" else Entry(record.id, "", "unreadable", err.reason)
    hash_ = content_hash(data)
    if hash_ == cached_hash:
        return None
    try:
        image, _ = decode_face(record, data)
    except BadImage as err:
        return Entry(record.id, hash_, "unreadable", err.reason)
    box = None if detect == "always" else usable_box(record.face_box, *image.shape[1::-1])
    if box is not None:
        return Entry(record.id, hash_, "ok", "fitted to the dataset's face box",
                     fit_landmarks(image, box))
    points = detect_landmarks(image)
    if points is None:
        return Entry(record.id, hash_, "no_face", "no face found by the HOG detector")
    return Entry(record.id, hash_, "ok", "", points)


@dataclass
class ExtractStats:
    """What one extraction run did."""

    total: int = 0
    cached: int = 0  # skipped: already in the cache with the same content hash
    counts: Counter = field(default_factory=Counter)  # new entries per status
    seconds: float = 0.0

    @property
    def extracted(self) -> int:
        return sum(self.counts.values())

    @property
    def images_per_second(self) -> float:
        """Extraction speed over the whole run (model loading included); NaN if none ran."""
        return self.extracted / self.seconds if self.extracted else float("nan")


def extract_catalog(
    catalog: Catalog,
    cache_dir: str | os.PathLike | None = None,
    workers: int = 1,
    progress: bool = True,
    detect: str = "auto",
) -> ExtractStats:
    """Extract and cache the landmarks of every image of ``catalog`` not cached yet.

    Runs ``workers`` processes (each loads the dlib models once); every result is appended to
    the cache as it arrives. Unreadable images also go to ``<cache_dir>/bad_images.txt``.
    ``detect`` (``DETECT_MODES``): ``auto`` fits faces with a known box without detecting them.
    """
    if detect not in DETECT_MODES:
        raise UserError(f"unknown detect={detect!r}; valid: {', '.join(DETECT_MODES)}")
    from tqdm import tqdm

    cache_dir = Path(cache_dir) if cache_dir is not None else catalog.root / DEFAULT_CACHE_DIR
    cache = LandmarkCache(cache_file(cache_dir, catalog.frame))
    report = BadImageReport(cache_dir / BAD_IMAGES_FILE)
    tasks = [(r, e.hash if (e := cache.entries.get(r.id)) else None, detect)
             for r in catalog.records]
    paths = {r.id: r.path for r in catalog.records}
    stats = ExtractStats(total=len(tasks))
    start = time.perf_counter()
    context = multiprocessing.get_context()
    if context.get_start_method() == "fork" or workers <= 1:
        # Loading the predictor takes seconds: do it once here, and forked workers share it
        # (copy-on-write) instead of each reading the ~100 MB model again.
        _models()
    pool = context.Pool(workers) if workers > 1 else None
    try:
        results: Iterable = (
            pool.imap_unordered(_extract, tasks, 4) if pool else map(_extract, tasks)
        )
        with (
            cache.writer() as write,
            tqdm(total=len(tasks), unit="img", disable=not progress) as bar,
        ):
            for entry in results:
                bar.update()
                if entry is None:
                    stats.cached += 1
                    continue
                write(entry)
                stats.counts[entry.status] += 1
                if entry.status == "unreadable":
                    report.add(paths[entry.id], entry.reason)
    finally:
        if pool is not None:
            pool.terminate()
    stats.seconds = time.perf_counter() - start
    return stats


def _id_key(image_id: str) -> str:
    """Loose id for matching another tool's ids: base name, no extension, no ``_aligned``."""
    stem = Path(image_id.replace("\\", "/")).name.split(".")[0]
    return stem.removesuffix("_aligned")


def _reference_rows(path: Path) -> Iterable[tuple[int, str, np.ndarray]]:
    """``(line, id, (68, 2) points)`` of a reference landmark file (header row optional)."""
    with path.open(newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or (lineno == 1 and row[1:2] and not _is_number(row[1])):
                continue  # blank line or header
            if len(row) != 137:
                raise UserError(
                    f"{path}:{lineno}: expected id + 136 values, got {len(row)} fields"
                )
            try:
                values = np.array([float(v) for v in row[1:]], dtype=np.float32)
            except ValueError as err:
                raise UserError(f"{path}:{lineno}: {err}") from None
            yield lineno, row[0], values.reshape(2, 68).T.copy()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def import_reference(
    catalog: Catalog, path: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> Counter:
    """Load a reference landmark file (``id,x1..x68,y1..y68``) into the cache of ``catalog``.

    Ids match exactly or, failing that, by :func:`_id_key` (e.g. ``train_00001_aligned.jpg`` →
    ``train_00001``). Rows with any non-finite value (the reference's ``inf``) become ``no_face``.
    Points are taken as they are, in the samples' pixel frame. Returns counts: ``ok``,
    ``no_face``, ``unmatched`` (ids not in the dataset), ``unreadable`` (image files).
    """
    path = Path(path)
    cache_dir = Path(cache_dir) if cache_dir is not None else catalog.root / DEFAULT_CACHE_DIR
    cache = LandmarkCache(cache_file(cache_dir, catalog.frame))
    exact = {r.id: r for r in catalog.records}
    loose: dict[str, Record] = {}
    for r in catalog.records:
        loose.setdefault(_id_key(r.id), r)
    counts: Counter = Counter()
    with cache.writer() as write:
        for _, ref_id, points in _reference_rows(path):
            record = exact.get(ref_id) or loose.get(_id_key(ref_id))
            if record is None:
                counts["unmatched"] += 1
                continue
            try:
                hash_ = content_hash(read_bytes(record.path))
            except BadImage:
                counts["unreadable"] += 1
                continue
            if np.isfinite(points).all():
                write(Entry(record.id, hash_, "ok", f"imported from {path.name}", points))
                counts["ok"] += 1
            else:
                write(Entry(record.id, hash_, "no_face", f"failed in {path.name} (inf)"))
                counts["no_face"] += 1
    return counts


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    """The landmarks CLI (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m fer_core.data.landmarks",
        description="Extract (or import) 68-point landmarks into a dataset's landmark cache.",
    )
    parser.add_argument("--dataset", required=True, choices=CATALOGS.names())
    parser.add_argument("--root", required=True, help="dataset root directory")
    parser.add_argument("--cache-dir", default=None, help=f"default: ROOT/{DEFAULT_CACHE_DIR}")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--import",
        dest="import_file",
        default=None,
        metavar="FILE",
        help="load a reference landmark file (id,x1..x68,y1..y68) instead",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--detect", choices=DETECT_MODES, default="auto",
        help="auto: fit the shape predictor to the face box the dataset gives (RAF-DB aligned "
             "crops and boxes, AffectNet boxes) and detect only where there is none; always: "
             "detect every face",
    )
    add_option_argument(parser)
    args = parser.parse_args(argv)
    at_least("--workers", args.workers, 1)
    catalog = with_options(CATALOGS.get(args.dataset), f"dataset {args.dataset!r}", args.root,
                           **parse_options(args.option))
    target = cache_file(args.cache_dir or Path(args.root) / DEFAULT_CACHE_DIR, catalog.frame)
    if args.import_file:
        counts = import_reference(catalog, args.import_file, args.cache_dir)
        print(f"imported {dict(counts)} into {target}")
        return 0
    stats = extract_catalog(catalog, args.cache_dir, args.workers, not args.no_progress,
                            detect=args.detect)
    print(
        f"{stats.total} images: {stats.cached} already cached, {stats.extracted} extracted "
        f"{dict(stats.counts)} in {stats.seconds:.1f} s ({stats.images_per_second:.1f} images/s, "
        f"{args.workers} workers)\ncache: {target}"
    )
    if stats.counts["no_face"] or stats.counts["unreadable"]:
        print("failures are listed with their reason in the cache (status, reason columns)")
    if stats.total and not stats.cached and not stats.counts["ok"]:
        raise UserError(f"no landmarks for any of the {stats.total} images of {args.root} "
                        f"({dict(stats.counts)}): check that the files are face images; "
                        f"reasons per file in {target}")
    return 0


if __name__ == "__main__":
    exit_with(main())
