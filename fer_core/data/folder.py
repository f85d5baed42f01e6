"""A generic dataset: per-split CSV files ``path,label[,x1..x68,y1..y68]`` next to the images."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from fer_core import CLASSES
from fer_core.cli import UserError
from fer_core.data.base import Catalog, Record, canonical_label, register_file_dataset, require
from fer_core.data.cache import COORD_COLUMNS

LAYOUT = f"""\
  ROOT/train.csv, ROOT/test.csv and optionally ROOT/val.csv, each with a header row
    path,label[,x1,...,x68,y1,...,y68]
  path: image file, relative to ROOT or absolute; label: a class name ({", ".join(CLASSES)},
  any case) or its id 0..6; landmark columns (pixels of the image, empty/inf/nan = unknown) are
  optional: without them landmarks come from the landmark cache"""


def _label(value: str, where: str) -> int:
    text = value.strip()
    if text.isdigit() and int(text) < len(CLASSES):
        return int(text)
    try:
        return canonical_label(text)
    except ValueError:
        raise UserError(
            f"{where}: unknown label {value!r}; use a class name ({', '.join(CLASSES)}) "
            f"or an id 0..{len(CLASSES) - 1}"
        ) from None


def _points(row: dict[str, str], where: str) -> np.ndarray:
    try:
        values = [float(row[c]) if row[c].strip() else np.nan for c in COORD_COLUMNS]
    except ValueError as err:
        raise UserError(f"{where}: malformed landmark value ({err})") from None
    return np.array(values, np.float32).reshape(2, 68).T.copy()  # x1..x68, y1..y68 → (68, 2)


def _read_list(root: Path, list_file: Path, source: str) -> list[Record]:
    records: list[Record] = []
    with list_file.open(newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f)
        columns = rows.fieldnames or []
        if "path" not in columns or "label" not in columns:
            raise UserError(f"{list_file}: header needs 'path' and 'label'; expected\n{LAYOUT}")
        has_points = all(c in columns for c in COORD_COLUMNS)
        for lineno, row in enumerate(rows, start=2):
            where = f"{list_file}:{lineno}"
            path = Path(row["path"])
            shipped = _points(row, where) if has_points else None
            label = _label(row["label"] or "", where)
            records.append(Record(row["path"], root / path, label, source, shipped=shipped))
    return records


@register_file_dataset("folder")
def scan_folder(root: str | os.PathLike) -> Catalog:
    """Any labelled face images listed in ``train.csv``, ``test.csv`` (and optional ``val.csv``)
    under ``root``; ids are the ``path`` values."""
    root = require(Path(root), "folder dataset root", LAYOUT)
    records: list[Record] = []
    for source in ("train", "val", "test"):
        list_file = root / f"{source}.csv"
        if source != "val":
            require(list_file, f"{source} list", LAYOUT)
        if list_file.is_file():
            records += _read_list(root, list_file, source)
    return Catalog("folder", root, "folder", records)
