"""AffectNet: the per-image ``.npy`` folder layout or the official CSV lists; codes ≥ 7 dropped."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from fer_core.cli import UserError
from fer_core.data.base import (
    Catalog,
    Record,
    canonical_label,
    register_file_dataset,
    require,
    square_box,
)

LABEL_CODES: dict[int, str] = {
    0: "Neutral",
    1: "Happiness",
    2: "Sadness",
    3: "Surprise",
    4: "Fear",
    5: "Disgust",
    6: "Anger",
}
"""AffectNet expression codes kept → class names (docs/method.md §9)."""

DROPPED_CODES: dict[int, str] = {7: "Contempt", 8: "None", 9: "Uncertain", 10: "No-Face"}
"""Codes that are valid AffectNet labels but not one of the seven classes: skipped and counted."""

SETS = {"train_set": "train", "val_set": "test"}  # folder layout: set → shipped split
LISTS = {"training.csv": "train", "validation.csv": "test"}  # lists layout: file → shipped split
LIST_DIRS = ("", "Manually_Annotated_file_lists")
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LIST_COLUMNS = (
    "subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
    "facial_landmarks", "expression",
)  # fmt: skip

LAYOUT = """\
  folders:  ROOT/train_set/images/0.jpg, ROOT/train_set/annotations/0_exp.npy (code) and
            0_lnd.npy (136 values x1,y1,x2,...); the same under ROOT/val_set/ (used as test)
  lists:    ROOT/training.csv, ROOT/validation.csv (or in ROOT/Manually_Annotated_file_lists/)
            with columns subDirectory_filePath,face_x,face_y,face_width,face_height,
            facial_landmarks (x1;y1;x2;...),expression,...; images in
            ROOT/Manually_Annotated_Images/<subDirectory_filePath>
  codes: 0 Neutral 1 Happy 2 Sad 3 Surprise 4 Fear 5 Disgust 6 Anger; 7-10 are skipped"""

LAYOUTS = ("auto", "folders", "lists")


def _label(code: str, where: str, dropped: dict[str, int]) -> int | None:
    """Canonical id of an AffectNet code; None (counted) for codes 7..10; others raise."""
    try:
        value = float(code)
    except ValueError:
        value = float("nan")
    if value.is_integer() and int(value) in LABEL_CODES:
        return canonical_label(LABEL_CODES[int(value)])
    if value.is_integer() and int(value) in DROPPED_CODES:
        key = f"code {int(value)} ({DROPPED_CODES[int(value)]})"
        dropped[key] = dropped.get(key, 0) + 1
        return None
    raise UserError(f"{where}: unknown AffectNet expression code {code!r} (valid: 0..10)")


def _scan_folders(root: Path, catalog: Catalog) -> None:
    for set_name, source in SETS.items():
        images = require(root / set_name / "images", f"AffectNet {set_name} images", LAYOUT)
        notes = require(
            root / set_name / "annotations", f"AffectNet {set_name} annotations", LAYOUT
        )
        for path in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            exp = notes / f"{path.stem}_exp.npy"
            try:
                code = str(np.load(exp).reshape(-1)[0])
            except (OSError, ValueError, IndexError) as err:
                catalog.bad.append((str(path), f"no usable expression file {exp.name}: {err}"))
                continue
            label = _label(code, str(exp), catalog.dropped)
            if label is None:
                continue
            landmarks = notes / f"{path.stem}_lnd.npy"
            shipped = landmarks if landmarks.is_file() else None
            # The folder layout ships faces already cropped to their box: the face is the image.
            catalog.records.append(Record(f"{source}/{path.stem}", path, label, source,
                                          shipped=shipped, face_box=(0.0, 0.0, 1.0, 1.0)))


def _find(root: Path, candidates: tuple[str, ...], name: str) -> Path | None:
    return next((root / c / name for c in candidates if (root / c / name).exists()), None)


def _scan_lists(root: Path, catalog: Catalog, margin: float) -> None:
    image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if image_dir is None:
        require(root / IMAGE_DIRS[0], "AffectNet image folder", LAYOUT)
    for list_name, source in LISTS.items():
        list_file = _find(root, LIST_DIRS, list_name)
        if list_file is None:
            require(root / list_name, f"AffectNet list {list_name}", LAYOUT)
        with list_file.open(newline="", encoding="utf-8") as f:
            rows = csv.DictReader(f)
            missing = [c for c in LIST_COLUMNS if c not in (rows.fieldnames or [])]
            if missing:
                raise UserError(f"{list_file}: missing columns {missing}; expected\n{LAYOUT}")
            for lineno, row in enumerate(rows, start=2):
                where = f"{list_file}:{lineno}"
                label = _label(row["expression"], where, catalog.dropped)
                if label is None:
                    continue
                try:
                    x, y, w, h = (float(row[c]) for c in LIST_COLUMNS[1:5])
                    points = [float(v) for v in row["facial_landmarks"].split(";") if v.strip()]
                except (TypeError, ValueError) as err:
                    raise UserError(f"{where}: malformed row ({err})") from None
                rel = row["subDirectory_filePath"]
                shipped = np.array(points, np.float32) if len(points) == 136 else None
                box = square_box(x, y, x + w, y + h, margin)
                side = box[2] - box[0]
                face = ((x - box[0]) / side, (y - box[1]) / side,
                        (x + w - box[0]) / side, (y + h - box[1]) / side) if side > 0 else None
                rid = str(Path(rel).with_suffix(""))
                catalog.records.append(
                    Record(rid, image_dir / rel, label, source, box, shipped, face_box=face))


@register_file_dataset("affectnet")
def scan_affectnet(
    root: str | os.PathLike, layout: str = "auto", crop_margin: float = 0.0
) -> Catalog:
    """AffectNet in ``layout`` ``folders`` (``train_set|val_set/{images,annotations}``, faces
    already cropped, 68 landmarks shipped), ``lists`` (official CSVs; each image is cropped to the
    square around its face box, ``crop_margin`` of its side added on each side; landmarks
    shipped in the CSV) or ``auto``. ``val_set`` / ``validation.csv`` is the test split.
    """
    root = require(Path(root), "AffectNet root", LAYOUT)
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout={layout!r}; valid: {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = "folders" if (root / "train_set").is_dir() else "lists"
    frame = "affectnet-folders" if layout == "folders" else f"affectnet-lists-m{crop_margin:g}"
    catalog = Catalog("affectnet", root, frame, [])
    if layout == "folders":
        _scan_folders(root, catalog)
    else:
        _scan_lists(root, catalog, crop_margin)
    return catalog
