"""Dataset-shaped trees of real face photos for the benches (imported by the bench scripts).

The face is scikit-image's ``astronaut`` photo (a real face, so dlib finds and fits it), varied
per file by position, scale and brightness:

- RAF-DB shape: ``EmoLabel/list_patition_label.txt`` and 100×100 aligned JPEG faces under
  ``Image/aligned/`` (the face fills the middle of the crop, as in RAF-DB's aligned set);
- AffectNet shape: the official CSV lists with a face box and 68 landmarks per row, and JPEG
  photos of varied sizes (about 300 to 1,100 px a side) under ``Manually_Annotated_Images/``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

FACE_BOX = (179.0, 83.0, 266.0, 170.0)
"""dlib's HOG detection box of the astronaut's face (x0, y0, x1, y1) in the 512 px photo."""
ALIGNED_SIDE = 100
ALIGNED_CONTEXT = 1.5  # crop side / face box side: the face fills two thirds of an aligned crop


def astronaut() -> np.ndarray:
    from skimage import data  # a dev dependency: only the benches and tests need the photo

    return np.ascontiguousarray(data.astronaut())


def _jpeg(path: Path, rgb: np.ndarray, quality: int = 92) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def aligned_face(photo: np.ndarray, rng: np.random.Generator, side: int = ALIGNED_SIDE):
    """One ``side × side`` crop around the face, jittered like an imperfect alignment."""
    x0, y0, x1, y1 = FACE_BOX
    face = max(x1 - x0, y1 - y0)
    half = face * ALIGNED_CONTEXT * rng.uniform(0.95, 1.05) / 2
    cx = (x0 + x1) / 2 + rng.uniform(-0.03, 0.03) * face
    cy = (y0 + y1) / 2 + rng.uniform(-0.03, 0.03) * face
    src = np.float32([[cx - half, cy - half], [cx + half, cy - half], [cx - half, cy + half]])
    dst = np.float32([[0, 0], [side, 0], [0, side]])
    crop = cv2.warpAffine(photo, cv2.getAffineTransform(src, dst), (side, side),
                          flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return np.clip(crop * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)


def write_rafdb(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` aligned training faces and ``n // 5`` test faces in RAF-DB's basic layout."""
    rng = np.random.default_rng(seed)
    photo = astronaut()
    lines = []
    for split, count in (("train", n), ("test", max(1, n // 5))):
        for i in range(1, count + 1):
            stem = f"{split}_{i:05d}"
            _jpeg(root / "Image" / "aligned" / f"{stem}_aligned.jpg", aligned_face(photo, rng))
            lines.append(f"{stem}.jpg {int(rng.integers(1, 8))}")
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def rafdb_landmark_file(root: Path, out: Path) -> Path:
    """A reference landmark file (``id,x1..x68,y1..y68``) giving every aligned face the same
    plausible points, so the loader's joint augmentation has landmarks to move."""
    from fer_core.au.template import template_landmarks

    points = template_landmarks(ALIGNED_SIDE)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        for line in (root / "EmoLabel" / "list_patition_label.txt").read_text().split("\n"):
            if line.strip():
                stem = Path(line.split()[0]).stem
                writer.writerow([stem, *points[:, 0].tolist(), *points[:, 1].tolist()])
    return out


def photo_of_size(photo: np.ndarray, rng: np.random.Generator):
    """The photo rescaled to a random size and aspect; returns it and the scaled face box."""
    sx, sy = rng.uniform(0.6, 2.2), rng.uniform(0.6, 2.2)
    sy = float(np.clip(sy, sx * 0.75, sx * 1.33))
    w, h = round(photo.shape[1] * sx), round(photo.shape[0] * sy)
    image = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA if sx < 1 else
                       cv2.INTER_LINEAR)
    x0, y0, x1, y1 = FACE_BOX
    return image, (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


def write_affectnet(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` training photos and ``n // 5`` validation photos in AffectNet's CSV-list layout."""
    from fer_core.au.template import template_landmarks

    rng = np.random.default_rng(seed)
    photo = astronaut()
    unit = template_landmarks(1000) / 1000.0
    root.mkdir(parents=True, exist_ok=True)
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
              "facial_landmarks", "expression", "valence", "arousal"]
    for list_name, count in (("training.csv", n), ("validation.csv", max(1, n // 5))):
        with (root / list_name).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for i in range(count):
                image, (x0, y0, x1, y1) = photo_of_size(photo, rng)
                rel = f"{i % 7}/{list_name[:5]}_{i:05d}.jpg"
                _jpeg(root / "Manually_Annotated_Images" / rel, image)
                pts = unit * [x1 - x0, y1 - y0] + [x0, y0]
                marks = ";".join(f"{v:.2f}" for v in pts.reshape(-1))
                writer.writerow([rel, f"{x0:.1f}", f"{y0:.1f}", f"{x1 - x0:.1f}",
                                 f"{y1 - y0:.1f}", marks, int(rng.integers(0, 7)), 0, 0])
    return root
