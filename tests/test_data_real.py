"""Real-dataset loaders on tiny trees in the official layouts (real JPEG files written here)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core import CLASSES
from fer_core.data import CATALOGS, build_dataset
from fer_core.data.affectnet import LABEL_CODES as AFFECTNET_CODES
from fer_core.data.cache import COORD_COLUMNS
from fer_core.data.rafdb import LABEL_CODES as RAFDB_CODES
from fer_core.data.splits import select_split, stratified_holdout

C = {name: i for i, name in enumerate(CLASSES)}


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth random image: survives JPEG well enough to compare pixel positions."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def make_rafdb(root: Path, codes: dict[str, int], original: bool = False) -> Path:
    """RAF-DB basic: label list + aligned 100x100 images (or originals 160x120 + boxes)."""
    base = root / "basic"
    lines = []
    for k, (name, code) in enumerate(codes.items()):
        lines.append(f"{name}.jpg {code}")
        if original:
            _write_jpeg(base / "Image" / "original" / f"{name}.jpg", _pattern(120, 160, k))
            box = base / "Annotation" / "boundingbox" / f"{name}_boundingbox.txt"
            box.parent.mkdir(parents=True, exist_ok=True)
            box.write_text("50.0 30.0 90.0 80.0\n")  # 40 wide, 50 high
        else:
            _write_jpeg(base / "Image" / "aligned" / f"{name}_aligned.jpg", _pattern(100, 100, k))
    (base / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (base / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def _rafdb_codes(n_train_per_code: int = 3, n_test_per_code: int = 1) -> dict[str, int]:
    codes: dict[str, int] = {}
    for code in RAFDB_CODES:
        for _ in range(n_train_per_code):
            codes[f"train_{len(codes) + 1:05d}"] = code
        for _ in range(n_test_per_code):
            codes[f"test_{len(codes) + 1:04d}"] = code
    return codes


@pytest.mark.filterwarnings("ignore:no landmark cache")
def test_rafdb_aligned_labels_counts_and_nan_landmarks(tmp_path: Path) -> None:
    codes = _rafdb_codes(3, 1)
    root = make_rafdb(tmp_path, codes)
    with pytest.warns(UserWarning, match="no landmark cache"):
        train = build_dataset("rafdb", "train", root=str(root), val_fraction=0.34)
    val = build_dataset("rafdb", "val", root=str(root), val_fraction=0.34)
    test = build_dataset("rafdb", "test", root=str(root))
    assert (len(train), len(val), len(test)) == (14, 7, 7)
    assert not set(train.ids) & set(val.ids)
    s = test[0]
    assert s["image"].shape == (100, 100, 3) and s["image"].dtype == np.uint8
    assert s["landmarks"].shape == (68, 2) and s["landmarks"].dtype == np.float32
    assert np.isnan(s["landmarks"]).all()  # no cache yet: unknown, sample kept
    for ds in (train, val, test):
        for i in range(len(ds)):
            sample = ds[i]
            assert sample["label"] == C[RAFDB_CODES[codes[sample["id"]]]]
    # RAF-DB code 1 is Surprise, 7 is Neutral: canonical ids 2 and 0.
    assert C[RAFDB_CODES[1]] == 2 and C[RAFDB_CODES[7]] == 0
    # The image is the file's content (RGB, not BGR).
    name = test[0]["id"]
    on_disk = cv2.imread(str(root / "basic/Image/aligned" / f"{name}_aligned.jpg"))
    assert np.array_equal(test[0]["image"], cv2.cvtColor(on_disk, cv2.COLOR_BGR2RGB))


@pytest.mark.filterwarnings("ignore:no landmark cache")
def test_rafdb_original_is_cropped_square_with_margin(tmp_path: Path) -> None:
    root = make_rafdb(tmp_path, {"train_00001": 4, "test_0001": 5}, original=True)
    test = build_dataset("rafdb", "test", root=str(root), images="original", crop_margin=0.3)
    image = test[0]["image"]
    # Box 40x50 centred (70, 55): square side 1.6 * 50 = 80 → x 30..110, y 15..95.
    assert image.shape == (80, 80, 3)
    full = cv2.cvtColor(cv2.imread(str(root / "basic/Image/original/test_0001.jpg")), 4)
    assert np.array_equal(image, full[15:95, 30:110])
    assert test[0]["label"] == C["Sadness"]


def test_rafdb_frames_differ_between_layouts(tmp_path: Path) -> None:
    root = make_rafdb(tmp_path, {"train_00001": 4}, original=True)
    frames = {CATALOGS.get("rafdb")(root, images="original", crop_margin=m).frame for m in (0, 0.3)}
    assert len(frames) == 2  # each crop has its own landmark cache


def _affectnet_folders(root: Path) -> dict[str, tuple[int, np.ndarray]]:
    """train_set: codes 0..9 (7 Contempt, 8 None, 9 Uncertain dropped); val_set: codes 0..6."""
    expected = {}
    rng = np.random.default_rng(0)
    for set_name, codes in (("train_set", range(10)), ("val_set", range(7))):
        for i, code in enumerate(codes):
            _write_jpeg(root / set_name / "images" / f"{i}.jpg", _pattern(224, 224, i))
            notes = root / set_name / "annotations"
            notes.mkdir(parents=True, exist_ok=True)
            np.save(notes / f"{i}_exp.npy", np.array(str(code)))  # AffectNet stores a string
            points = rng.uniform(20, 200, (68, 2)).astype(np.float32)
            np.save(notes / f"{i}_lnd.npy", points.reshape(-1).astype(np.float64))  # x1,y1,x2,..
            if code in AFFECTNET_CODES:
                source = "train" if set_name == "train_set" else "test"
                expected[f"{source}/{i}"] = (C[AFFECTNET_CODES[code]], points)
    return expected


def test_affectnet_folders_layout(tmp_path: Path) -> None:
    expected = _affectnet_folders(tmp_path)
    catalog = CATALOGS.get("affectnet")(tmp_path)
    assert catalog.dropped == {"code 7 (Contempt)": 1, "code 8 (None)": 1, "code 9 (Uncertain)": 1}
    train = build_dataset("affectnet", "train", root=str(tmp_path), val_from_test=True)
    test = build_dataset("affectnet", "test", root=str(tmp_path))
    val = build_dataset("affectnet", "val", root=str(tmp_path), val_from_test=True)
    assert (len(train), len(test)) == (7, 7) and val.ids == test.ids
    assert C[AFFECTNET_CODES[2]] == C["Sadness"] and C[AFFECTNET_CODES[6]] == C["Anger"]
    for ds in (train, test):
        for i in range(len(ds)):
            s = ds[i]
            label, points = expected[s["id"]]
            assert s["label"] == label
            np.testing.assert_allclose(s["landmarks"], points, rtol=1e-6)  # shipped, interleaved
    with pytest.warns(UserWarning, match="no landmark cache"):  # use extracted ones instead
        extracted = build_dataset("affectnet", "test", root=str(tmp_path), landmarks="cache")
    assert np.isnan(extracted[0]["landmarks"]).all()
    with pytest.raises(TypeError, match=r"unknown options \['crop'\].*'crop_margin'"):
        build_dataset("affectnet", "test", root=str(tmp_path), crop=0.2)


def test_affectnet_lists_layout_crops_and_moves_landmarks(tmp_path: Path) -> None:
    rows = []
    rng = np.random.default_rng(1)
    for i, (list_name, code) in enumerate([("training.csv", 1), ("training.csv", 7)] * 2):
        image = _pattern(200, 240, i)
        points = rng.uniform(80, 150, (68, 2)).round()
        rel = f"{i}/face{i}.jpg"
        _write_jpeg(tmp_path / "Manually_Annotated_Images" / rel, image)
        flat = ";".join(f"{v:.1f}" for v in points.reshape(-1))
        rows.append((list_name, [rel, 70, 60, 100, 100, flat, code, 0.1, 0.2]))
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
    header += "expression,valence,arousal"
    for list_name in ("training.csv", "validation.csv"):
        with (tmp_path / list_name).open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(header.split(","))
            out.writerows(r for n, r in rows if n == list_name)
            if list_name == "validation.csv":
                out.writerow(rows[0][1])
    test = build_dataset("affectnet", "test", root=str(tmp_path), layout="lists")
    assert len(test) == 1 and test[0]["label"] == C["Happiness"]
    s = test[0]
    assert s["image"].shape == (100, 100, 3)  # the face box, margin 0
    shipped = np.array(rows[0][1][5].split(";"), float).reshape(68, 2)
    np.testing.assert_allclose(s["landmarks"], shipped - [70, 60], atol=1e-4)
    train = build_dataset("affectnet", "train", root=str(tmp_path), layout="lists", val_fraction=0)
    assert len(train) == 2  # the two Contempt rows are dropped


def test_folder_dataset_names_ids_and_landmark_columns(tmp_path: Path) -> None:
    for i in range(4):
        _write_jpeg(tmp_path / "img" / f"{i}.png", _pattern(50, 60, i))
    points = np.arange(136, dtype=np.float32)
    with (tmp_path / "train.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["path", "label", *COORD_COLUMNS])
        out.writerow(["img/0.png", "happiness", *points])
        out.writerow(["img/1.png", "3", *([""] * 136)])
        out.writerow(["img/2.png", "Anger", *points])
    (tmp_path / "test.csv").write_text(f"path,label\n{tmp_path / 'img' / '3.png'},Neutral\n")
    train = build_dataset("folder", "train", root=str(tmp_path), val_fraction=0)
    assert [train[i]["label"] for i in range(3)] == [C["Happiness"], C["Fear"], C["Anger"]]
    np.testing.assert_array_equal(train[0]["landmarks"][:, 0], points[:68])  # x1..x68
    np.testing.assert_array_equal(train[0]["landmarks"][:, 1], points[68:])  # y1..y68
    assert np.isnan(train[1]["landmarks"]).all()
    with pytest.warns(UserWarning, match="no landmark cache"):  # absolute path, no columns
        test = build_dataset("folder", "test", root=str(tmp_path))
    assert test[0]["image"].shape == (50, 60, 3) and test[0]["label"] == C["Neutral"]


@pytest.mark.filterwarnings("ignore:no landmark cache")
def test_unknown_label_codes_raise_with_file_and_line(tmp_path: Path) -> None:
    root = make_rafdb(tmp_path / "raf", {"train_00001": 4, "train_00002": 9})
    with pytest.raises(
        ValueError, match=r"list_patition_label\.txt:2: unknown RAF-DB label code '9'"
    ):
        build_dataset("rafdb", "train", root=str(root))
    notes = tmp_path / "an" / "train_set" / "annotations"
    _write_jpeg(tmp_path / "an" / "train_set" / "images" / "0.jpg", _pattern(30, 30, 0))
    notes.mkdir(parents=True)
    np.save(notes / "0_exp.npy", np.array("12"))
    (tmp_path / "an" / "val_set" / "images").mkdir(parents=True)
    (tmp_path / "an" / "val_set" / "annotations").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"0_exp\.npy: unknown AffectNet expression code '12'"):
        build_dataset("affectnet", "train", root=str(tmp_path / "an"))
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "train.csv").write_text("path,label\na.jpg,Happiness\nb.jpg,Joy\n")
    (tmp_path / "f" / "test.csv").write_text("path,label\n")
    with pytest.raises(ValueError, match=r"train\.csv:3: unknown label 'Joy'"):
        build_dataset("folder", "train", root=str(tmp_path / "f"))


def test_missing_root_or_label_file_names_path_and_layout(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="RAF-DB root not found.*nowhere") as err:
        build_dataset("rafdb", "train", root=str(missing))
    assert "list_patition_label.txt" in str(err.value)  # the expected layout is spelled out
    (tmp_path / "basic" / "Image" / "aligned").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="RAF-DB label file not found") as err:
        build_dataset("rafdb", "train", root=str(tmp_path))
    assert str(tmp_path / "basic" / "EmoLabel" / "list_patition_label.txt") in str(err.value)
    with pytest.raises(FileNotFoundError, match="AffectNet image folder not found"):
        build_dataset("affectnet", "train", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="train list not found"):
        build_dataset("folder", "train", root=str(tmp_path))
    with pytest.raises(KeyError, match="valid names: affectnet, folder, rafdb"):
        build_dataset("fer2013", "train")


@pytest.mark.filterwarnings("ignore:no landmark cache")
def test_bad_images_are_skipped_counted_and_reported(tmp_path: Path) -> None:
    codes = _rafdb_codes(2, 1)
    root = make_rafdb(tmp_path, codes)
    aligned = root / "basic" / "Image" / "aligned"
    (aligned / "test_0003_aligned.jpg").write_bytes(b"")  # empty
    (aligned / "test_0006_aligned.jpg").write_bytes(b"\xff\xd8 not really a jpeg" * 10)  # corrupt
    (aligned / "test_0009_aligned.jpg").unlink()  # missing
    report = tmp_path / "report.txt"
    test = build_dataset("rafdb", "test", root=str(root), bad_report=str(report))
    assert len(test) == 5  # of 7: the empty and the missing file are left out at once
    ids = [test[i]["id"] for i in range(len(test))]  # the corrupt one is replaced, not raised
    assert "test_0006" not in ids and len(ids) == 5
    lines = dict(line.split("\t") for line in report.read_text().splitlines())
    assert lines == {
        str(aligned / "test_0003_aligned.jpg"): "empty file",
        str(aligned / "test_0009_aligned.jpg"): "missing file",
        str(aligned / "test_0006_aligned.jpg"): "corrupt: OpenCV cannot decode it",
    }
    assert len(test.report) == 3
    verified = build_dataset("rafdb", "test", root=str(root), bad_report=str(report), verify=True)
    assert len(verified) == 4  # verify decodes every image up front
    assert len(report.read_text().splitlines()) == 3  # no duplicate lines across runs
    default = build_dataset("rafdb", "test", root=str(root))  # default report location
    assert (root / ".fer_cache" / "bad_images.txt").is_file() and len(default.report) == 2


def test_stratified_holdout_is_stratified_and_reproducible() -> None:
    labels = np.repeat(np.arange(7), [100, 50, 40, 30, 20, 10, 5])
    keep, held = stratified_holdout(labels, 0.1, seed=3)
    counts = np.bincount(labels[held], minlength=7)
    assert counts.tolist() == [10, 5, 4, 3, 2, 1, 1]  # round(0.1 n), at least one per class
    assert not set(keep) & set(held) and len(keep) + len(held) == len(labels)
    again = stratified_holdout(labels, 0.1, seed=3)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(stratified_holdout(labels, 0.1, seed=4)[1], held)


def test_select_split_options() -> None:
    source = ["train"] * 20 + ["test"] * 5
    labels = [i % 2 for i in range(25)]
    val = select_split(source, labels, "val", val_fraction=0.2, seed=0)
    train = select_split(source, labels, "train", val_fraction=0.2, seed=0)
    assert len(val) == 4 and sorted([*val, *train]) == list(range(20))
    ref = select_split(source, labels, "val", val_from_test=True)
    assert ref.tolist() == list(range(20, 25))
    assert len(select_split(source, labels, "train", val_from_test=True)) == 20
    with pytest.raises(ValueError, match="val_fraction=0"):
        select_split(source, labels, "val", val_fraction=0)
    shipped = select_split([*source, "val", "val"], [*labels, 0, 1], "val")
    assert shipped.tolist() == [25, 26]  # a shipped val split wins over a hold-out


@pytest.mark.parametrize("box", [(10.4, 20.7, 133.6, 143.9), (-5.5, 3.2, 60.1, 68.8)])
def test_crop_of_a_square_box_is_square_and_pixel_exact(box) -> None:
    from fer_core.data.base import crop

    image = np.arange(200 * 160 * 3, dtype=np.int64).reshape(200, 160, 3) % 251
    out, origin = crop(image.astype(np.uint8), box)
    assert out.shape[0] == out.shape[1] == round(box[2] - box[0])
    y, x = 30, 40  # a pixel inside both image and crop keeps its value at (p - origin)
    assert (out[y - int(origin[1]), x - int(origin[0])] == image[y, x]).all()
