"""Image files: read, hash and decode with OpenCV; keep a report of the files that failed.

A bad file never crashes a run: readers raise :class:`BadImage` with a short reason and the caller
skips the file and lists it in a :class:`BadImageReport` (a plain text file, one
``path<TAB>reason`` line per bad file, appended and flushed at once so nothing is lost on a kill).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import cv2
import numpy as np

BAD_IMAGES_FILE = "bad_images.txt"
"""Default report file name, inside the dataset's cache directory."""


class BadImage(Exception):
    """An image file that cannot be used: missing, empty, unreadable or not decodable."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class NoReadableImage(RuntimeError):
    """Every image of a dataset failed to load: nothing is left to train or evaluate on."""


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes; missing, empty or unreadable files raise :class:`BadImage`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadImage(path, "missing file") from None
    except OSError as err:
        raise BadImage(path, f"unreadable: {err.strerror or err}") from None
    if not data:
        raise BadImage(path, "empty file")
    return data


def decode_image(data: bytes, path: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to an ``H×W×3`` uint8 RGB array.

    Grayscale files become three equal channels, alpha is dropped and 16-bit files are scaled to
    8 bits (OpenCV's ``IMREAD_COLOR``). A truncated JPEG whose header decodes is kept, as OpenCV
    returns it (its missing rows are grey), like PIL with ``LOAD_TRUNCATED_IMAGES``.
    """
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise BadImage(path, "corrupt: OpenCV cannot decode it")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as ``H×W×3`` uint8 RGB; bad files raise :class:`BadImage`."""
    return decode_image(read_bytes(path), path)


def content_hash(data: bytes) -> str:
    """A short content fingerprint (BLAKE2b, 96 bits, hex): a changed file gets a new hash."""
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class BadImageReport:
    """The list of skipped files of a dataset, shared by runs, splits and DataLoader workers.

    Each new ``(path, reason)`` is appended as one line and flushed immediately; lines already in
    the file are not repeated. ``path=None`` keeps the list in memory only.
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path is not None else None
        self.entries: list[tuple[str, str]] = []  # found by this object, in order
        self._known: set[tuple[str, str]] = set()
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                file, _, reason = line.partition("\t")
                self._known.add((file, reason))

    def add(self, path: str | os.PathLike, reason: str) -> None:
        """Record one bad file (idempotent per ``(path, reason)``)."""
        entry = (str(path), " ".join(reason.split()))  # one line, whatever the reason text
        if entry in self.entries:
            return
        self.entries.append(entry)
        if entry in self._known or self.path is None:
            return
        self._known.add(entry)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(f"{entry[0]}\t{entry[1]}\n")
        except OSError as err:  # a read-only dataset must still train; the list stays in memory
            warnings.warn(f"cannot write the bad-image report {self.path}: {err}", stacklevel=2)
            self.path = None

    def __len__(self) -> int:
        return len(self.entries)
