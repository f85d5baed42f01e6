"""The landmark cache: one CSV file per dataset frame, written by the landmarks CLI.

Format (header row, then one row per image; a later row for the same id replaces an earlier one)::

    id,hash,status,reason,x1..x68,y1..y68

``hash`` is the content hash of the image file (``io.content_hash``): an entry counts only while the
file still has that hash, so a changed image reads as "not cached" and is re-extracted. ``status``
is ``ok`` (68 finite points), ``no_face`` or ``unreadable`` (coordinates left empty; ``reason``
says why). Rows are appended and flushed one at a time: a killed extraction loses at most the row
being written, and a truncated last row is ignored on reading. The coordinate columns follow the
reference implementation's landmark files (``id,x1..x68,y1..y68``), without its ``inf`` sentinels.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_LANDMARKS = 68
STATUSES = ("ok", "no_face", "unreadable")
COORD_COLUMNS = [f"x{i}" for i in range(1, NUM_LANDMARKS + 1)] + [
    f"y{i}" for i in range(1, NUM_LANDMARKS + 1)
]
HEADER = ["id", "hash", "status", "reason", *COORD_COLUMNS]
DEFAULT_CACHE_DIR = ".fer_cache"
"""Cache directory created inside a dataset root unless ``cache_dir`` is given."""


def cache_file(cache_dir: str | os.PathLike, frame: str) -> Path:
    """Where the landmarks of the dataset frame ``frame`` (e.g. ``rafdb-aligned``) are cached."""
    return Path(cache_dir) / f"landmarks-{frame}.csv"


def nan_landmarks() -> np.ndarray:
    """The "unknown" landmarks: ``(68, 2)`` float32 NaN."""
    return np.full((NUM_LANDMARKS, 2), np.nan, dtype=np.float32)


@dataclass(frozen=True)
class Entry:
    """One cached image: its content hash, outcome and landmarks (NaN unless ``ok``)."""

    id: str
    hash: str
    status: str
    reason: str = ""
    landmarks: np.ndarray | None = None  # (68, 2) float32 when status == "ok"

    def points(self) -> np.ndarray:
        """``(68, 2)`` float32 landmarks; NaN when the extraction failed."""
        if self.status != "ok" or self.landmarks is None:
            return nan_landmarks()
        return self.landmarks

    def row(self) -> list[str]:
        pts = self.points()
        coords = ["" if not np.isfinite(v) else f"{v:.2f}" for v in (*pts[:, 0], *pts[:, 1])]
        return [self.id, self.hash, self.status, self.reason, *coords]


def _parse_row(row: list[str]) -> Entry | None:
    """An entry from one CSV row, or None for a truncated or malformed row."""
    if len(row) != len(HEADER) or row[2] not in STATUSES:
        return None
    try:
        values = np.array([float(v) if v else np.nan for v in row[4:]], dtype=np.float32)
    except ValueError:
        return None
    points = values.reshape(2, NUM_LANDMARKS).T.copy()
    if row[2] == "ok" and not np.isfinite(points).all():
        return None  # an "ok" row cut short by a kill: re-extract it
    return Entry(row[0], row[1], row[2], row[3], points if row[2] == "ok" else None)


class LandmarkCache:
    """The cached entries of one frame, by image id (read once; appends go through ``writer``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.entries: dict[str, Entry] = {}
        if self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as f:
                rows = csv.reader(f)
                next(rows, None)  # header
                for row in rows:
                    entry = _parse_row(row)
                    if entry is not None:
                        self.entries[entry.id] = entry

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self.entries

    def current(self, image_id: str, hash_: str) -> Entry | None:
        """The entry of ``image_id`` if it was made from the file content ``hash_``, else None."""
        entry = self.entries.get(image_id)
        return entry if entry is not None and entry.hash == hash_ else None

    def lookup(self, image_id: str, hash_: str) -> np.ndarray | None:
        """Cached landmarks of this image content (NaN if extraction failed), None if not cached."""
        entry = self.current(image_id, hash_)
        return None if entry is None else entry.points().copy()  # callers may edit theirs

    @contextmanager
    def writer(self) -> Iterator[Callable[[Entry], None]]:
        """Open the cache for appending; yields ``write(entry)``, which flushes every row."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with self.path.open("a", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            if new:
                out.writerow(HEADER)
            elif not _ends_with_newline(self.path):
                f.write("\n")  # a row cut by a kill stays on its own (ignored) line

            def write(entry: Entry) -> None:
                out.writerow(entry.row())
                f.flush()
                self.entries[entry.id] = entry

            yield write


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
