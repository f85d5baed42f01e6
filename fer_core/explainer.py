"""The work behind ``python -m fer_core.explain``: find the face, frame it like the training
faces, and explain the model's prediction on it (an :class:`~fer_core.overlay.ExplainedFace`).

The face is found and its 68 landmarks fitted with dlib on the full image, then cut out as a
square around the landmarks framed like the training faces, and fed to the model through the
evaluation transform. A folder is explained image by image; an unreadable image or one without a
face becomes a :class:`~fer_core.overlay.FailedImage` and does not stop the others.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fer_core import CLASSES
from fer_core.au import expression_aus, render_au_maps
from fer_core.cams import upsample_cams
from fer_core.data.base import crop, square_box
from fer_core.data.io import BadImage, read_image
from fer_core.data.landmarks import detect_landmarks
from fer_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from fer_core.inference import LoadedModel, explain_batch
from fer_core.overlay import ExplainedFace, FailedImage

FACE_MARGIN = 0.16
"""Square crop side = (1 + 2 · margin) · the landmarks' larger extent. Measured on the synthetic
training faces: the 68 points span 0.76 of the image width (so 1 / 0.76 ≈ 1 + 2 · 0.16)."""
FACE_LIFT = 0.06
"""Crop centre above the landmarks' box centre, as a fraction of the side: the points stop at the
brows, so training faces sit low in the frame (landmark centre at 0.56 of the height)."""
DISPLAY_SIZE = 224
"""Side of the figure panels: maps are upsampled from the model's (small) input to it."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


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
