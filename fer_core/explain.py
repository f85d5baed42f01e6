"""Explain a trained model's prediction on a photo, or on every image of a folder.

    python -m fer_core.explain IMAGE --checkpoint PATH_OR_MLFLOW_URI -o out.png
    python -m fer_core.explain FOLDER --checkpoint runs:/<run id> --mlflow-uri URI -o grid.png

The face is found and its 68 landmarks fitted with dlib on the full image, then cut out as a
square around the landmarks framed like the training faces, and fed to the model through the
evaluation transform. One image: prints the prediction and the 7 probabilities (one
``Class p`` line each) and writes the figure of ``fer_core.overlay`` (format from ``-o``'s
suffix). A folder: one grid row per image and a CSV; an unreadable image or one without a face
is recorded there and does not stop the others.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fer_core import CLASSES
from fer_core.au import expression_aus, render_au_maps
from fer_core.cams import upsample_cams
from fer_core.cli import EXIT_USAGE, check_device, cli_main, exit_with
from fer_core.data.base import crop, square_box
from fer_core.data.io import BadImage, read_image
from fer_core.data.landmarks import detect_landmarks
from fer_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from fer_core.inference import LoadedModel, explain_batch, load_model
from fer_core.overlay import (
    ExplainedFace,
    FailedImage,
    check_format,
    explanation_figure,
    grid_figure,
    save_figure,
)
from fer_core.xai.curves import curves_figure, image_curves

FACE_MARGIN = 0.16
"""Square crop side = (1 + 2 · margin) · the landmarks' larger extent. Measured on the synthetic
training faces: the 68 points span 0.76 of the image width (so 1 / 0.76 ≈ 1 + 2 · 0.16)."""
FACE_LIFT = 0.06
"""Crop centre above the landmarks' box centre, as a fraction of the side: the points stop at the
brows, so training faces sit low in the frame (landmark centre at 0.56 of the height)."""
DISPLAY_SIZE = 224
"""Side of the figure panels: maps are upsampled from the model's (small) input to it."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
NO_FACE_EXIT = 2


class NoFaceError(Exception):
    """dlib found no face in an image (and the whole image was not asked for)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name}: no face found by dlib's HOG detector; pass --no-face-ok to "
                         "classify the whole image resized (no landmarks, no AU map)")


def frame_face(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The square face crop around ``landmarks`` (zero padded at the borders), and the
    landmarks moved into it."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    box = square_box(x0, y0, x1, y1, margin=FACE_MARGIN)
    side = max(1, round(box[2] - box[0]))
    # Whole pixels: the crop starts exactly where the lift puts it and stays square.
    left, top = round(box[0]), round(box[1] - FACE_LIFT * side)
    face, origin = crop(image, (left, top, left + side, top + side))
    return face, (landmarks - origin).astype(np.float32)


def _au_map(loaded: LoadedModel, points: torch.Tensor,
            target: int) -> tuple[np.ndarray | None, str]:
    """The AU map of class ``target`` at display size, or None and why there is none."""
    variant = loaded.cfg.align.au_variant
    maps, valid = render_au_maps(points[None], torch.tensor([target]), DISPLAY_SIZE, variant)
    if bool(valid[0]):
        return maps[0].numpy(), ""
    if not expression_aus(variant)[target]:
        return None, f"{CLASSES[target]} has no AUs ({variant} variant)"
    return None, "no AU region inside the crop"


class Explainer:
    """Turns RGB images into :class:`ExplainedFace` s with one loaded model."""

    def __init__(self, loaded: LoadedModel, no_face_ok: bool = False,
                 target_class: int | None = None) -> None:
        self.loaded = loaded
        self.no_face_ok = no_face_ok
        self.target_class = target_class
        """The class whose AU map and CAM are drawn; None: each image's predicted class."""
        self.to_model = build_transforms(train=False, size=loaded.img_size)
        self.to_display = build_transforms(train=False, size=DISPLAY_SIZE)

    def __call__(self, image: np.ndarray, name: str) -> ExplainedFace:
        """Explain one ``H × W × 3`` uint8 RGB image; raises :class:`NoFaceError`."""
        points = detect_landmarks(image)
        if points is None and not self.no_face_ok:
            raise NoFaceError(name)
        if points is not None:
            image, points = frame_face(image, points)
        sample = {"image": image, "label": 0, "id": name,
                  "landmarks": np.full((68, 2), np.nan, np.float32) if points is None else points}
        shown = self.to_display(sample)
        chosen = None if self.target_class is None else torch.tensor([self.target_class])
        model_input = self.to_model(sample)["image"][None]
        result = explain_batch(self.loaded, model_input, chosen)
        self.last_input = model_input  # kept for --faithfulness (same crop, same transform)
        target = int(result.pred[0]) if self.target_class is None else self.target_class
        display = (DISPLAY_SIZE, DISPLAY_SIZE)
        face = ExplainedFace(
            name=name,
            image=np.clip(shown["image"].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN,
                          0.0, 1.0),
            probs=result.probs[0].numpy(),
            method=self.loaded.cfg.method.method,
            cam=None if result.cams is None else upsample_cams(result.cams, display)[0].numpy(),
            attention={k: upsample_cams(v, display)[0].numpy()
                       for k, v in result.attention.items()},
            explained=self.target_class,
        )
        if points is not None:
            face.landmarks = shown["landmarks"].numpy()
            face.au_map, face.au_note = _au_map(self.loaded, shown["landmarks"], target)
        return face

    def file(self, path: Path) -> ExplainedFace:
        """Explain an image file; raises ``BadImage`` (naming it) or :class:`NoFaceError`."""
        image = read_image(path)
        try:
            return self(image, path.name)
        except NoFaceError:
            raise NoFaceError(str(path)) from None


def image_files(folder: Path, exclude: Sequence[Path] = ()) -> list[Path]:
    """Image files of ``folder`` by suffix, sorted; ``exclude`` (our own outputs) left out."""
    skip = {p.resolve() for p in exclude}
    return sorted(p for p in folder.iterdir() if p.is_file()
                  and p.suffix.lower() in IMAGE_SUFFIXES and p.resolve() not in skip)


CSV_FIELDS = ("file", "face_found", "predicted", *(f"p_{c}" for c in CLASSES), "error")


def csv_row(item: ExplainedFace | FailedImage, face_found: bool) -> dict[str, object]:
    """One CSV line: a failed image has empty prediction fields and its reason in ``error``."""
    row: dict[str, object] = dict.fromkeys(CSV_FIELDS, "")
    row.update(file=item.name, face_found=str(face_found).lower())
    if isinstance(item, FailedImage):
        row["error"] = item.reason
    else:
        row["predicted"] = CLASSES[item.pred]
        row.update({f"p_{c}": f"{p:.6f}" for c, p in zip(CLASSES, item.probs, strict=True)})
    return row


def explain_folder(explainer: Explainer, files: Sequence[Path], progress: bool = True
                   ) -> tuple[list[ExplainedFace | FailedImage], list[dict[str, object]]]:
    """Explain every file; failures become :class:`FailedImage` s. Returns items and CSV rows."""
    from tqdm import tqdm

    items: list[ExplainedFace | FailedImage] = []
    rows = []
    for path in tqdm(files, unit="img", disable=not progress):
        try:
            item: ExplainedFace | FailedImage = explainer.file(path)
            found = item.face_found
        except BadImage as err:
            item, found = FailedImage(path.name, f"unreadable: {err.reason}"), False
        except NoFaceError:
            item, found = FailedImage(path.name, "no face found"), False
        items.append(item)
        rows.append(csv_row(item, found))
    return items, rows


def write_csv(rows: Sequence[dict[str, object]], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return out


def _run_image(explainer: Explainer, path: Path, out: Path, faithfulness: bool = False) -> int:
    try:
        face = explainer.file(path)
    except NoFaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return NO_FACE_EXIT
    how = "face" if face.face_found else "no face found: whole image"
    print(f"{path.name}: predicted {face.headline} [{how}; {face.method}, "
          f"{explainer.loaded.cfg.model.backbone}]")
    for name, p in zip(CLASSES, face.probs, strict=True):
        print(f"{name} {p:.4f}")
    print(f"wrote {save_figure(explanation_figure(face), out)}")
    if faithfulness:
        curves = image_curves(explainer.loaded.model,
                              explainer.last_input.to(explainer.loaded.device), face.target)
        where = out.with_name(f"{out.stem}_faithfulness{out.suffix}")
        print(f"deletion AUC {curves.deletion_auc:.4f}, insertion AUC "
              f"{curves.insertion_auc:.4f} ({CLASSES[face.target]})")
        title = f"{path.name}: {CLASSES[face.target]} ({face.method})"
        print(f"wrote {save_figure(curves_figure(curves, title), where)}")
    return 0


def _run_folder(explainer: Explainer, folder: Path, out: Path, csv_path: Path,
                progress: bool) -> int:
    files = image_files(folder, exclude=(out, csv_path))
    if not files:
        raise BadImage(folder, f"no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    items, rows = explain_folder(explainer, files, progress)
    failed = [item for item in items if isinstance(item, FailedImage)]
    whole = sum(isinstance(item, ExplainedFace) and not item.face_found for item in items)
    print(f"{len(items)} images: {len(items) - len(failed)} explained (no face found, whole "
          f"image used: {whole}), {len(failed)} not")
    for item in failed:
        print(f"  {item.name}: {item.reason}")
    print(f"wrote {save_figure(grid_figure(items), out)} and {write_csv(rows, csv_path)}")
    return 0 if len(failed) < len(items) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fer_core.explain",
        description="Predict the expression of a face photo (or every image of a folder) and "
                    "draw the AU map, CAM and layer attention behind it.")
    parser.add_argument("input", type=Path, help="an image file, or a folder of images")
    parser.add_argument("--checkpoint", required=True,
                        help="selected.pt / checkpoint.pt, a run folder, runs:/<run id>[/path], or "
                             "an MLflow model (runs:/<run id>/model, models:/NAME@best)")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help="figure to write; the suffix picks the format (png, pdf, svg)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="folder input: per-image CSV (default: next to -o, suffix .csv)")
    parser.add_argument("--mlflow-uri", default=None, help="tracking URI for runs:/ checkpoints")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--class", dest="target_class", choices=CLASSES, default=None,
                        help="draw the AU map and CAM of this class (default: the predicted one)")
    parser.add_argument("--no-face-ok", action="store_true",
                        help="without a face, classify the whole image resized")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--faithfulness", action="store_true",
                        help="one image: also draw its deletion and insertion curves "
                             "(Petsiuk et al. 2018) to <out>_faithfulness.<suffix>")
    return parser


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    """The explain CLI (see the module docstring); returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        check_format(args.out)
        check_device("--device", args.device)
        if not args.input.exists():
            raise BadImage(args.input, "missing file or folder")
        loaded = load_model(args.checkpoint, args.mlflow_uri, args.device)
    except (BadImage, ValueError) as err:  # ModelSourceError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    target = None if args.target_class is None else CLASSES.index(args.target_class)
    explainer = Explainer(loaded, no_face_ok=args.no_face_ok, target_class=target)
    try:
        if args.input.is_dir():
            return _run_folder(explainer, args.input, args.out,
                               args.csv or args.out.with_suffix(".csv"), not args.no_progress)
        return _run_image(explainer, args.input, args.out, args.faithfulness)
    except BadImage as err:
        print(f"error: cannot read {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    exit_with(main())
