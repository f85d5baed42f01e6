"""dlib landmarks on a real face, and the landmark cache written by the extraction CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from fer_core.data import CATALOGS, build_dataset
from fer_core.data.cache import COORD_COLUMNS, LandmarkCache, cache_file
from fer_core.data.landmarks import (
    _models,
    detect_landmarks,
    extract_catalog,
    fit_landmarks,
    import_reference,
    main,
    predictor_path,
    usable_box,
)
from fer_core.data.rafdb import ALIGNED_FACE_BOX

EYES, NOSE_TIP, MOUTH = slice(36, 48), 30, slice(48, 68)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def _face(image: np.ndarray, side: int, seed: int = 0) -> np.ndarray:
    """The astronaut's face as an aligned-style crop of ``side`` px, with a little noise."""
    crop = cv2.resize(image[30:250, 110:330], (side, side), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(seed).integers(-6, 7, crop.shape)
    return np.clip(crop.astype(int) + noise, 0, 255).astype(np.uint8)


def _rafdb_tree(root: Path, astronaut: np.ndarray, n: int) -> list[Path]:
    """RAF-DB basic with ``n`` aligned 100 px faces (labels cycling through codes 1..7)."""
    aligned = root / "basic" / "Image" / "aligned"
    aligned.mkdir(parents=True)
    (root / "basic" / "EmoLabel").mkdir()
    lines, paths = [], []
    for i in range(n):
        name = f"{'train' if i % 3 else 'test'}_{i:05d}"
        paths.append(aligned / f"{name}_aligned.jpg")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(_face(astronaut, 100, i), cv2.COLOR_RGB2BGR))
        lines.append(f"{name}.jpg {i % 7 + 1}")
    (root / "basic" / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines))
    return paths


def test_one_face_with_sane_landmarks_on_astronaut(astronaut: np.ndarray) -> None:
    detector, _ = _models()
    faces = detector(astronaut, 0)
    assert len(faces) == 1
    box = faces[0]
    points = detect_landmarks(astronaut)
    assert points.shape == (68, 2) and points.dtype == np.float32
    margin = 0.15 * box.width()
    assert (points[:, 0] >= box.left() - margin).all() and (
        points[:, 0] <= box.right() + margin
    ).all()
    assert (points[:, 1] >= box.top() - margin).all() and (
        points[:, 1] <= box.bottom() + margin
    ).all()
    eyes, nose, mouth = points[EYES, 1].mean(), points[NOSE_TIP, 1], points[MOUTH, 1].mean()
    assert eyes < nose < mouth  # image rows grow downwards
    assert points[36:42, 0].mean() < points[42:48, 0].mean()  # iBUG "left" eye is image-left


def test_small_faces_need_and_get_upsampling(astronaut: np.ndarray) -> None:
    small = _face(astronaut, 80)
    detector, _ = _models()
    assert len(detector(small, 0)) == 0  # dlib's HOG window is ~80 px: too small as is
    points = detect_landmarks(small)
    assert points is not None
    assert points[EYES, 1].mean() < points[NOSE_TIP, 1] < points[MOUTH, 1].mean()
    assert detect_landmarks(small, upsample=(0,)) is None


def test_no_face_gives_none() -> None:
    assert detect_landmarks(np.full((120, 120, 3), 128, np.uint8)) is None
    with pytest.raises(ValueError, match="uint8 RGB"):
        detect_landmarks(np.zeros((50, 50), np.float32))


def test_predictor_found_without_importing_its_package() -> None:
    assert predictor_path().is_file()
    assert "face_recognition_models" not in sys.modules  # its __init__ needs pkg_resources


def test_cache_is_reused_resumed_and_refreshed(tmp_path: Path, astronaut: np.ndarray) -> None:
    paths = _rafdb_tree(tmp_path, astronaut, 8)
    (paths[4]).write_bytes(b"\xff\xd8 broken" * 20)  # corrupt: cached as unreadable
    catalog = CATALOGS.get("rafdb")(tmp_path)
    first = extract_catalog(catalog, workers=2, progress=False)  # real process pool
    assert (first.total, first.cached, dict(first.counts)) == (8, 0, {"ok": 7, "unreadable": 1})
    second = extract_catalog(catalog, workers=1, progress=False)
    assert (second.cached, second.extracted) == (8, 0)  # nothing extracted again
    cache_path = cache_file(tmp_path / ".fer_cache", "rafdb-aligned")
    assert LandmarkCache(cache_path).entries["train_00004"].reason.startswith("corrupt")
    assert "corrupt" in (tmp_path / ".fer_cache" / "bad_images.txt").read_text()

    # A kill mid-write leaves a cut row: that image (only) is extracted again.
    lines = cache_path.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if line.startswith("train_00002,"))
    cache_path.write_text("".join(lines[:cut] + lines[cut + 1 :]) + lines[cut][:300])
    # A changed image gets a new content hash: extracted again too.
    cv2.imwrite(str(paths[5]), cv2.cvtColor(_face(astronaut, 100, 99), cv2.COLOR_RGB2BGR))
    third = extract_catalog(catalog, workers=1, progress=False)
    assert (third.cached, dict(third.counts)) == (6, {"ok": 2})

    # Datasets read the cache: points are those of the sample image itself (aligned crops:
    # fitted to the aligned face box, no detection).
    train = build_dataset("rafdb", "train", root=str(tmp_path), val_fraction=0)
    for i in range(len(train)):
        s = train[i]
        if s["id"] == "train_00004":
            continue
        box = usable_box(ALIGNED_FACE_BOX, 100, 100)
        np.testing.assert_allclose(s["landmarks"], fit_landmarks(s["image"], box), atol=0.01)
    cv2.imwrite(str(paths[1]), cv2.cvtColor(_face(astronaut, 100, 7), cv2.COLOR_RGB2BGR))
    stale = build_dataset("rafdb", "train", root=str(tmp_path), val_fraction=0)
    assert np.isnan(stale[stale.ids.index("train_00001")]["landmarks"]).all()  # stale → NaN


def test_original_images_are_extracted_in_the_crop_frame(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    base = tmp_path / "basic"
    (base / "Image" / "original").mkdir(parents=True)
    (base / "Annotation" / "boundingbox").mkdir(parents=True)
    (base / "EmoLabel").mkdir()
    cv2.imwrite(str(base / "Image" / "original" / "test_0001.jpg"), astronaut[..., ::-1])
    (base / "Annotation" / "boundingbox" / "test_0001_boundingbox.txt").write_text("179 83 266 170")
    (base / "EmoLabel" / "list_patition_label.txt").write_text("test_0001.jpg 4\n")
    catalog = CATALOGS.get("rafdb")(tmp_path, images="original")
    assert extract_catalog(catalog, progress=False).counts["ok"] == 1
    test = build_dataset("rafdb", "test", root=str(tmp_path), images="original")
    s = test[0]
    full = detect_landmarks(astronaut)
    # The crop starts at the box's square minus 30 % of its side: the same face, shifted.
    origin = np.array([179 + 266, 83 + 170]) / 2 - 1.6 * 87 / 2
    np.testing.assert_allclose(s["landmarks"], full - np.floor(origin), atol=2.0)


def test_cli_and_reference_import(tmp_path: Path, astronaut: np.ndarray, capsys) -> None:
    _rafdb_tree(tmp_path, astronaut, 3)
    assert main(["--dataset", "rafdb", "--root", str(tmp_path), "--workers", "1"]) == 0
    assert "3 extracted" in capsys.readouterr().out
    ref = tmp_path / "ref.csv"
    good = np.arange(136, dtype=float)
    rows = [
        "id," + ",".join(COORD_COLUMNS),
        "train_00001_aligned.jpg," + ",".join(map(str, good)),
        "train_00002_aligned.jpg," + ",".join(["inf"] * 136),
        "train_99999_aligned.jpg," + ",".join(map(str, good)),
    ]
    ref.write_text("\n".join(rows) + "\n")
    counts = import_reference(CATALOGS.get("rafdb")(tmp_path), ref)
    assert dict(counts) == {"ok": 1, "no_face": 1, "unmatched": 1}
    train = build_dataset("rafdb", "train", root=str(tmp_path), val_fraction=0)
    by_id = {train[i]["id"]: train[i]["landmarks"] for i in range(len(train))}
    np.testing.assert_array_equal(by_id["train_00001"], good.reshape(2, 68).T)
    assert np.isnan(by_id["train_00002"]).all()  # inf in the reference → NaN, sample kept
