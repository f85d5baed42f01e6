"""`python -m fer_core.explain` on real photos with a model trained here and the real dlib model."""

import csv
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data
from mlflow import MlflowClient

from fer_core import CLASSES
from fer_core.cams import build_method
from fer_core.config import ExperimentConfig
from fer_core.data.landmarks import detect_landmarks
from fer_core.explain import main
from fer_core.explainer import (
    DISPLAY_SIZE,
    FACE_MARGIN,
    Explainer,
    NoFaceError,
    explain_folder,
    frame_face,
    image_files,
)
from fer_core.inference import load_model
from fer_core.overlay import FailedImage, check_format, explanation_figure, grid_figure
from tuner.results import artifacts
from tuner.tracking import schema as tr

PROB_LINE = re.compile(r"^(\w+) (\d\.\d{4})$")
slow = pytest.mark.slow(reason="the session's trained model: ~12 s to train on 2 cores")


def write_rgb(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def files(trained_model, tmp_path_factory):
    """The shared trained model (its ``model/selected.pt`` file) and a folder: a face, a non-face, a
    corrupt file."""
    root = tmp_path_factory.mktemp("explain")
    images = root / "images"
    images.mkdir()
    write_rgb(images / "astronaut.png", skimage.data.astronaut())
    write_rgb(images / "coffee.png", skimage.data.coffee())
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated, not a JPEG")
    (images / "notes.txt").write_text("not an image: skipped")
    return dict(root=root, model=trained_model["selected"], images=images,
                face=images / "astronaut.png", no_face=images / "coffee.png")


@pytest.fixture(scope="module")
def astronaut(files):
    """The explanation of the astronaut photo (dlib + model run once for several tests)."""
    return Explainer(load_model(files["model"])).file(files["face"])


def parse_probabilities(text):
    probs = {m[1]: float(m[2]) for line in text.splitlines() if (m := PROB_LINE.match(line))}
    assert list(probs) == list(CLASSES), text
    return probs


def test_the_crop_frames_the_face_like_the_training_images():
    image = skimage.data.astronaut()
    points = detect_landmarks(image)
    face, moved = frame_face(image, points)
    side = face.shape[0]
    assert face.shape == (side, side, 3)
    width = np.ptp(points, axis=0).max()
    assert side == pytest.approx((1 + 2 * FACE_MARGIN) * width, abs=2)
    assert (moved >= 0).all() and (moved < side).all()
    np.testing.assert_allclose(np.ptp(moved, axis=0), np.ptp(points, axis=0))
    # The same pixels: the crop at a moved landmark is the photo at the original one.
    x, y = points[30].astype(int)  # nose tip
    mx, my = moved[30].astype(int)
    np.testing.assert_array_equal(face[my, mx], image[y, x])


def test_folder_listing_keeps_images_only_and_skips_our_outputs(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.txt", "grid.png", "d.jpeg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    found = image_files(tmp_path, exclude=[tmp_path / "grid.png"])
    assert [p.name for p in found] == ["a.jpg", "b.PNG", "d.jpeg"]


def test_unknown_figure_format_is_refused_before_any_work():
    check_format("a/b.PDF")
    with pytest.raises(ValueError, match="unknown figure format 'xyz'.*png"):
        check_format("out.xyz")


@slow
def test_cli_prints_the_prediction_and_writes_the_figure(files, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert main([str(files["face"]), "--checkpoint", str(files["model"]), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    probs = parse_probabilities(text)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    predicted = max(probs, key=probs.get)
    assert f"predicted {predicted} " in text.splitlines()[0]
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 600


@slow
def test_figure_panels_of_a_face(astronaut):
    face = astronaut
    name = CLASSES[face.pred]
    fig = explanation_figure(face)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["face + landmarks", f"AU map: {name}", f"CAM (cam): {name}",
                      "attention layer 5", "attention layer 4", "probabilities"]
    assert fig.get_suptitle().startswith(f"astronaut.png: {name} (")
    bars = fig.axes[-1].patches
    np.testing.assert_allclose([b.get_width() for b in bars], face.probs, rtol=1e-6)
    assert [t.get_text() for t in fig.axes[-1].get_yticklabels()] == list(CLASSES)
    assert face.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert face.image.shape == (DISPLAY_SIZE, DISPLAY_SIZE, 3)
    for heat in (face.cam, *face.attention.values()):
        assert heat.shape == (DISPLAY_SIZE, DISPLAY_SIZE) and 0 <= heat.min() < heat.max() <= 1
    assert ((face.landmarks > 0) & (face.landmarks < DISPLAY_SIZE)).all()
    if face.pred == 0:  # Neutral has no AU in the reference variant
        assert face.au_map is None and "Neutral has no AUs" in face.au_note
    else:
        assert face.au_map.max() == pytest.approx(1.0) and face.au_map.mean() < 0.5


@slow
def test_no_face_stops_unless_the_whole_image_is_asked_for(files, tmp_path):
    args = [str(files["no_face"]), "--checkpoint", str(files["model"])]
    # The real entry point: its exit code and message.
    run = subprocess.run([sys.executable, "-m", "fer_core.explain", *args, "-o",
                          str(tmp_path / "x.png")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert "no face found" in run.stderr and "--no-face-ok" in run.stderr
    assert "coffee.png" in run.stderr and not (tmp_path / "x.png").exists()
    out = tmp_path / "whole.pdf"
    assert main([*args, "--no-face-ok", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")
    face = Explainer(load_model(files["model"]), no_face_ok=True).file(files["no_face"])
    assert not face.face_found and face.au_map is None
    titles = [ax.get_title() for ax in explanation_figure(face).axes]
    assert titles[0] == "whole image (no face)" and not any("AU map" in t for t in titles)
    with pytest.raises(NoFaceError, match="coffee.png"):
        Explainer(load_model(files["model"])).file(files["no_face"])


@slow
def test_folder_gives_a_grid_and_a_csv_row_per_image(files, tmp_path, capsys):
    out = tmp_path / "grid.png"
    argv = [str(files["images"]), "--checkpoint", str(files["model"]), "-o", str(out),
            "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "3 images: 1 explained" in text and "corrupt.jpg: unreadable" in text
    assert cv2.imread(str(out)) is not None
    with (tmp_path / "grid.csv").open(newline="") as f:
        rows = {row["file"]: row for row in csv.DictReader(f)}
    assert list(rows) == ["astronaut.png", "coffee.png", "corrupt.jpg"]
    face, no_face, bad = rows.values()
    assert face["face_found"] == "true" and face["predicted"] in CLASSES and face["error"] == ""
    assert sum(float(face[f"p_{c}"]) for c in CLASSES) == pytest.approx(1.0, abs=1e-4)
    assert no_face["face_found"] == "false" and no_face["error"] == "no face found"
    assert no_face["predicted"] == ""
    assert bad["face_found"] == "false" and "corrupt" in bad["error"]


@slow
def test_grid_rows_and_a_whole_image_row(astronaut, files):
    explainer = Explainer(load_model(files["model"]), no_face_ok=True)
    items, rows = explain_folder(explainer, [files["no_face"], files["images"] / "corrupt.jpg"],
                                 progress=False)
    assert rows[0]["face_found"] == "false" and rows[0]["predicted"] in CLASSES
    assert isinstance(items[1], FailedImage)
    fig = grid_figure([astronaut, *items])
    axes = np.array(fig.axes).reshape(3, 6)
    assert [ax.get_title() for ax in axes[0]] == [ax.get_title() for ax in
                                                   explanation_figure(astronaut).axes]
    assert axes[1, 1].texts[0].get_text() == "no landmarks"
    assert axes[1, 0].get_title() == "whole image (no face)"
    assert axes[2, 0].get_ylabel() == "corrupt.jpg" and "corrupt" in axes[2, 0].texts[0].get_text()
    assert axes[0, 0].get_ylabel().startswith("astronaut.png\n")


@slow
def test_runs_uri_checkpoint_from_a_sqlite_store(files, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("explain", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp).info.run_id
    client.log_artifact(run, str(files["model"]), tr.ARTIFACT_MODEL)
    base = [str(files["face"]), "-o", str(tmp_path / "a.png")]
    assert main([*base, "--checkpoint", f"runs:/{run}", "--mlflow-uri", uri]) == 0
    from_run = parse_probabilities(capsys.readouterr().out)
    assert main([*base, "--checkpoint", str(files["model"])]) == 0
    assert from_run == parse_probabilities(capsys.readouterr().out)


def test_bad_checkpoint_and_bad_image_name_the_file(tmp_path, capsys):
    image = write_rgb(tmp_path / "face.png", skimage.data.astronaut())
    missing = tmp_path / "nowhere" / "selected.pt"
    assert main([str(image), "--checkpoint", str(missing), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert f"no model file at {missing}" in err and "runs:/<run id>" in err
    assert main([str(tmp_path / "gone.png"), "--checkpoint", str(missing), "-o",
                 str(tmp_path / "o.png")]) == 2
    assert "gone.png: missing file" in capsys.readouterr().err


@slow
def test_unreadable_image_and_attention_only_model(files, tmp_path, capsys):
    assert main([str(files["images"] / "corrupt.jpg"), "--checkpoint", str(files["model"]),
                 "-o", str(tmp_path / "o.png")]) == 2
    assert "cannot read" in (err := capsys.readouterr().err) and "corrupt.jpg" in err
    # APViT (untrained weights are enough for the panel layout): attention, no CAM.
    cfg = ExperimentConfig.from_flat(dict(method="apvit", backbone="ir_tiny", img_size=112,
                                          layers="4"))
    model = build_method(cfg.method, cfg.model, img_size=cfg.data.img_size)
    artifacts.write_model(model.state_dict(), cfg.to_flat(), tmp_path / "apvit")
    face = Explainer(load_model(tmp_path / "apvit")).file(files["face"])
    assert face.cam is None and list(face.attention) == [4]
    cam_panel = explanation_figure(face).axes[2]
    assert cam_panel.get_title() == f"CAM (apvit): {CLASSES[face.pred]}"
    assert cam_panel.texts[0].get_text().replace("\n", " ") == "no CAM: apvit is attention-only"


@slow
def test_a_chosen_class_gets_its_own_au_map_and_cam(files, astronaut, tmp_path, capsys):
    other = next(k for k in (5, 2) if k != astronaut.pred)  # Disgust, else Surprise: both have AUs
    chosen = Explainer(load_model(files["model"]), target_class=other).file(files["face"])
    np.testing.assert_allclose(chosen.probs, astronaut.probs, rtol=1e-5)  # same prediction
    assert chosen.target == other and chosen.pred == astronaut.pred
    titles = [ax.get_title() for ax in explanation_figure(chosen).axes]
    assert titles[1:3] == [f"AU map: {CLASSES[other]}", f"CAM (cam): {CLASSES[other]}"]
    assert not np.allclose(chosen.cam, astronaut.cam)
    assert chosen.au_map is not None  # the chosen classes have AUs (the predicted may not)
    assert astronaut.au_map is None or not np.allclose(chosen.au_map, astronaut.au_map)
    out = tmp_path / "chosen.png"
    assert main([str(files["face"]), "--checkpoint", str(files["model"]), "-o", str(out),
                 "--class", CLASSES[other]]) == 0
    assert out.stat().st_size > 0
    assert f"predicted {CLASSES[astronaut.pred]} " in capsys.readouterr().out
