"""RAF-DB (basic): the label list, aligned 100×100 faces or original images cropped by their box."""

from __future__ import annotations

import os
from pathlib import Path

from fer_core.cli import UserError
from fer_core.data.base import Catalog, Record, canonical_label, register_file_dataset, require
from fer_core.data.base import square_box as _square_box

LABEL_CODES: dict[int, str] = {
    1: "Surprise",
    2: "Fear",
    3: "Disgust",
    4: "Happiness",
    5: "Sadness",
    6: "Anger",
    7: "Neutral",
}
"""RAF-DB's label codes (``list_patition_label.txt``) → class names (docs/method.md §9)."""

LAYOUT = """\
  ROOT/ (or ROOT/basic/)
    EmoLabel/list_patition_label.txt     lines "train_00001.jpg 5" (codes 1..7)
    Image/aligned/train_00001_aligned.jpg   100x100 aligned faces (images="aligned"), or
    Image/original/train_00001.jpg       + Annotation/boundingbox/train_00001_boundingbox.txt
                                           ("x0 y0 x1 y1"; images="original")"""

IMAGE_LAYOUTS = ("auto", "aligned", "original")
ALIGNED_FACE_BOX = (0.1, 0.1, 0.9, 0.9)
"""The face in an aligned crop, as fractions of its sides: the aligned faces fill the crop, and
dlib's detector puts its box about a tenth of the side inside such a crop's edges."""


def _base_dir(root: Path) -> Path:
    require(root, "RAF-DB root", LAYOUT)
    return root / "basic" if (root / "basic").is_dir() else root


def _read_box(path: Path, margin: float) -> tuple[float, float, float, float] | str:
    """The square crop box of one boundingbox file, or the reason it cannot be used."""
    try:
        values = [float(v) for v in path.read_text().split()[:4]]
    except FileNotFoundError:
        return "missing bounding box file"
    except (OSError, ValueError) as err:
        return f"unreadable bounding box file: {err}"
    if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
        return f"bad bounding box {values} (expected x0 y0 x1 y1)"
    return _square_box(*values, margin=margin)


def face_in_crop(box_file: Path, crop: tuple[float, float, float, float]):
    """The annotated face box inside its square crop, as fractions of the crop's side."""
    x0, y0, x1, y1 = (float(v) for v in box_file.read_text().split()[:4])
    side = crop[2] - crop[0]
    return ((x0 - crop[0]) / side, (y0 - crop[1]) / side,
            (x1 - crop[0]) / side, (y1 - crop[1]) / side)


@register_file_dataset("rafdb")
def scan_rafdb(root: str | os.PathLike, images: str = "auto", crop_margin: float = 0.3) -> Catalog:
    """RAF-DB basic: ``images`` = ``aligned`` (100×100 ``*_aligned.jpg``), ``original`` (cropped
    to the square around ``Annotation/boundingbox`` with ``crop_margin`` of its side added on each
    side) or ``auto`` (aligned if that folder exists). Ids are the list's names without extension.
    """
    base = _base_dir(Path(root))
    labels_file = require(
        base / "EmoLabel" / "list_patition_label.txt", "RAF-DB label file", LAYOUT
    )
    if images not in IMAGE_LAYOUTS:
        raise UserError(f"unknown images={images!r}; valid: {', '.join(IMAGE_LAYOUTS)}")
    if images == "auto":
        images = "aligned" if (base / "Image" / "aligned").is_dir() else "original"
    require(base / "Image" / images, f"RAF-DB {images} image folder", LAYOUT)
    records: list[Record] = []
    bad: list[tuple[str, str]] = []
    for lineno, line in enumerate(labels_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{labels_file}:{lineno}"
        parts = line.split()
        if len(parts) != 2:
            raise UserError(f"{where}: expected '<name>.jpg <code>', got {line!r}")
        name, code = parts
        if not code.isdigit() or int(code) not in LABEL_CODES:
            raise UserError(f"{where}: unknown RAF-DB label code {code!r} (valid: 1..7)")
        stem = Path(name).stem
        source = stem.split("_", 1)[0]
        if source not in ("train", "test"):
            raise UserError(f"{where}: name {name!r} starts with neither 'train_' nor 'test_'")
        label = canonical_label(LABEL_CODES[int(code)])
        if images == "aligned":
            path = base / "Image" / "aligned" / f"{stem}_aligned.jpg"
            records.append(Record(stem, path, label, source, face_box=ALIGNED_FACE_BOX))
            continue
        box_file = base / "Annotation" / "boundingbox" / f"{stem}_boundingbox.txt"
        box = _read_box(box_file, crop_margin)
        if isinstance(box, str):
            bad.append((str(box_file), box))
            continue
        records.append(Record(stem, base / "Image" / "original" / name, label, source, box=box,
                              face_box=face_in_crop(box_file, box)))
    # The frame names the landmark cache; v2 = crops whose size comes from the rounded box
    # extent (older crops could be a pixel wider than tall, their cached landmarks do not fit).
    frame = "rafdb-aligned" if images == "aligned" else f"rafdb-original-v2-m{crop_margin:g}"
    return Catalog("rafdb", Path(root), frame, records, bad)
