"""Landmarks fitted to a known face box (no detection), with the real dlib model and a real face."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from fer_core.data import CATALOGS
from fer_core.data.cache import LandmarkCache, cache_file
from fer_core.data.landmarks import (
    detect_landmarks,
    extract_catalog,
    fit_landmarks,
    main,
    usable_box,
)

FACE = (179, 83, 266, 170)  # dlib's detection box of the astronaut's face


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut())


def aligned(photo: np.ndarray, context: float = 1.25, side: int = 100) -> np.ndarray:
    """A RAF-DB-like aligned crop: the face fills most of a ``side`` px square."""
    cx, cy, half = (FACE[0] + FACE[2]) / 2, (FACE[1] + FACE[3]) / 2, context * 87 / 2
    crop = photo[round(cy - half):round(cy + half), round(cx - half):round(cx + half)]
    return np.ascontiguousarray(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA))


def error(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean point error as a fraction of the inter-ocular distance."""
    iod = np.linalg.norm(reference[36:42].mean(0) - reference[42:48].mean(0))
    return float(np.linalg.norm(points - reference, axis=1).mean() / iod)


@pytest.mark.parametrize("context", [1.2, 1.35, 1.5])
def test_fit_on_the_aligned_box_matches_detection(astronaut, context):
    from fer_core.data.rafdb import ALIGNED_FACE_BOX

    image = aligned(astronaut, context)
    fitted = fit_landmarks(image, usable_box(ALIGNED_FACE_BOX, 100, 100))
    assert error(fitted, detect_landmarks(image)) < 0.05


def test_fit_on_the_detection_box_of_a_photo_equals_detection(astronaut):
    fitted = fit_landmarks(astronaut, FACE)
    np.testing.assert_allclose(fitted, detect_landmarks(astronaut), atol=1.0)


@pytest.mark.parametrize("box, usable", [
    ((0.1, 0.1, 0.9, 0.9), True),
    ((0.0, 0.0, 0.1, 0.1), False),  # 10 px: too small to fit
    ((0.8, 0.8, 1.8, 1.8), False),  # mostly outside the image
    ((float("nan"), 0.0, 1.0, 1.0), False),
    (None, False),
])
def test_unusable_boxes_are_refused(box, usable):
    assert (usable_box(box, 100, 100) is not None) == usable


def _rafdb(root: Path, photo: np.ndarray, faces: list[np.ndarray]) -> None:
    aligned_dir = root / "Image" / "aligned"
    aligned_dir.mkdir(parents=True)
    (root / "EmoLabel").mkdir()
    lines = []
    for i, face in enumerate(faces, start=1):
        cv2.imwrite(str(aligned_dir / f"train_{i:05d}_aligned.jpg"), face[..., ::-1])
        lines.append(f"train_{i:05d}.jpg {i % 7 + 1}")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")


def test_extraction_fits_known_boxes_and_detects_when_told(tmp_path, astronaut):
    _rafdb(tmp_path, astronaut, [aligned(astronaut, c) for c in (1.2, 1.4)])
    catalog = CATALOGS.get("rafdb")(tmp_path)
    assert extract_catalog(catalog, progress=False).counts["ok"] == 2
    entries = LandmarkCache(cache_file(tmp_path / ".fer_cache", catalog.frame)).entries
    assert {e.reason for e in entries.values()} == {"fitted to the dataset's face box"}
    detected = tmp_path / "detected"
    assert main(["--dataset", "rafdb", "--root", str(tmp_path), "--workers", "1",
                 "--cache-dir", str(detected), "--detect", "always", "--no-progress"]) == 0
    again = LandmarkCache(cache_file(detected, catalog.frame)).entries
    assert {e.reason for e in again.values()} == {""}  # the detector's path
    for key, entry in again.items():
        image = cv2.imread(str(catalog.records[int(key[-1]) - 1].path))[..., ::-1]
        np.testing.assert_allclose(entry.points(), detect_landmarks(np.ascontiguousarray(image)),
                                   atol=0.01)
        assert error(entries[key].points(), entry.points()) < 0.05


def test_unknown_detect_mode_is_refused(tmp_path, astronaut):
    _rafdb(tmp_path, astronaut, [aligned(astronaut)])
    with pytest.raises(ValueError, match="detect='sometimes'.*auto, always"):
        extract_catalog(CATALOGS.get("rafdb")(tmp_path), progress=False, detect="sometimes")


def test_a_box_too_small_falls_back_to_detection(tmp_path, astronaut):
    """RAF-DB originals: the annotated box is used in the crop; a useless one means detection."""
    base = tmp_path / "basic"
    for sub in ("Image/original", "Annotation/boundingbox", "EmoLabel"):
        (base / sub).mkdir(parents=True)
    boxes = {"test_0001": "179 83 266 170", "test_0002": "220 125 226 131"}  # 6 px: unusable
    for stem, box in boxes.items():
        cv2.imwrite(str(base / "Image" / "original" / f"{stem}.jpg"), astronaut[..., ::-1])
        (base / "Annotation" / "boundingbox" / f"{stem}_boundingbox.txt").write_text(box)
    (base / "EmoLabel" / "list_patition_label.txt").write_text(
        "test_0001.jpg 4\ntest_0002.jpg 4\n")
    catalog = CATALOGS.get("rafdb")(tmp_path, images="original")
    face = catalog.records[0].face_box
    # The box sits 30 % of its side inside each edge of the square crop.
    np.testing.assert_allclose(face, (0.3 / 1.6, 0.3 / 1.6, 1.3 / 1.6, 1.3 / 1.6), atol=0.01)
    extract_catalog(catalog, progress=False)
    entries = LandmarkCache(cache_file(tmp_path / ".fer_cache", catalog.frame)).entries
    assert entries["test_0001"].reason == "fitted to the dataset's face box"
    assert entries["test_0002"].status == "no_face"  # the 10 px crop holds no findable face
    assert entries["test_0002"].reason.startswith("no face found")


def test_affectnet_face_boxes_follow_the_crop(tmp_path, astronaut):
    (tmp_path / "Manually_Annotated_Images" / "1").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "Manually_Annotated_Images" / "1" / "a.jpg"), astronaut[..., ::-1])
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
              "facial_landmarks", "expression"]
    for name in ("training.csv", "validation.csv"):
        with (tmp_path / name).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerow(["1/a.jpg", 179, 83, 87, 87, "", 1])
    catalog = CATALOGS.get("affectnet")(tmp_path, crop_margin=0.25)
    np.testing.assert_allclose(catalog.records[0].face_box, (1 / 6, 1 / 6, 5 / 6, 5 / 6))
    stats = extract_catalog(catalog, progress=False)
    assert stats.counts["ok"] == 2
