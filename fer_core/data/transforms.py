"""Joint image + landmark transforms: every geometric step moves the 68 points with the pixels.

Training (docs/method.md §8, sizes relative to the output side S): resize to ``S * 256 / 224`` →
rotation ±6° (p 0.5) → random-resized-crop to S (scale 0.8–1) → horizontal flip (p 0.5, with
the iBUG-68 left/right permutation) → grayscale (p 0.2) → colour jitter (p 0.8) → normalisation →
random erasing (p 0.5, image only). Evaluation: resize to S×S.

The geometric steps are composed into one 3×3 affine matrix per sample, applied once to the image
(``cv2.warpAffine``, one interpolation) and to the points (one matmul), so image and landmarks can
never disagree. Coordinates put pixel centres at integers, as dlib, ``cv2.warpAffine`` and the AU
renderer do. Landmarks are left where they land, even outside the output.

Randomness comes from a numpy ``Generator`` per sample. With ``seed=None`` (default) its seed is
drawn from torch's global RNG, which ``torch.manual_seed`` and the DataLoader (a different seed in
every worker, derived from the loader's generator) already control; with an integer ``seed`` the
transform owns a generator seeded by ``(seed, worker id)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import get_worker_info

from fer_core.au import HFLIP_PERMUTATION

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_FLIP = np.asarray(HFLIP_PERMUTATION)
_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma, as torchvision
_MEAN4 = (*IMAGENET_MEAN.tolist(), 0.0)  # OpenCV scalars have four channels
_INV_STD4 = (*(1.0 / IMAGENET_STD).tolist(), 0.0)


@dataclass(frozen=True)
class AugmentOptions:
    """Training augmentation settings (defaults: docs/method.md §8)."""

    pre_resize: float = 256 / 224  # resize to pre_resize * S before rotating and cropping
    rotate_p: float = 0.5
    rotate_deg: float = 6.0
    crop_scale: tuple[float, float] = (0.8, 1.0)  # area fraction of the random-resized-crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip_p: float = 0.5
    gray_p: float = 0.2
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    erase_p: float = 0.5
    erase_scale: tuple[float, float] = (0.02, 0.33)
    erase_ratio: tuple[float, float] = (0.3, 3.3)


def _resize_matrix(src_w: float, src_h: float, dst_w: float, dst_h: float) -> np.ndarray:
    """Maps pixel centres of a ``src`` image onto those of its resize to ``dst``."""
    sx, sy = dst_w / src_w, dst_h / src_h
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])


def _rotation_matrix(degrees: float, side: float) -> np.ndarray:
    """Rotation about the centre of a ``side × side`` image (positive: counter-clockwise)."""
    c = (side - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), degrees, 1.0)
    return np.vstack([m, [0, 0, 1]])


def _crop_box(rng: np.random.Generator, side: float, o: AugmentOptions) -> tuple[float, ...]:
    """A random-resized-crop box ``(x, y, w, h)`` inside ``side × side`` (torchvision's rule)."""
    area = side * side
    for _ in range(10):
        target = area * rng.uniform(*o.crop_scale)
        ratio = math.exp(rng.uniform(math.log(o.crop_ratio[0]), math.log(o.crop_ratio[1])))
        w, h = math.sqrt(target * ratio), math.sqrt(target / ratio)
        if w <= side and h <= side:
            return rng.uniform(0, side - w), rng.uniform(0, side - h), w, h
    return 0.0, 0.0, side, side


def _geometry(
    rng: np.random.Generator | None, width: int, height: int, size: int, o: AugmentOptions
) -> tuple[np.ndarray, bool]:
    """The affine matrix from the input image to the ``size × size`` output, and the flip flag.

    Without ``rng`` (evaluation) it is the plain resize.
    """
    if rng is None:
        return _resize_matrix(width, height, size, size), False
    side = round(size * o.pre_resize)
    m = _resize_matrix(width, height, side, side)
    if rng.random() < o.rotate_p:
        m = _rotation_matrix(rng.uniform(-o.rotate_deg, o.rotate_deg), side) @ m
    x, y, w, h = _crop_box(rng, side, o)
    crop = np.array([[1, 0, -x], [0, 1, -y], [0, 0, 1]], dtype=np.float64)
    m = _resize_matrix(w, h, size, size) @ crop @ m
    flip = rng.random() < o.hflip_p
    if flip:
        m = np.array([[-1, 0, size - 1], [0, 1, 0], [0, 0, 1]]) @ m
    return m, flip


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply ``matrix`` (input → output pixel centres) to ``image``, output ``size × size``.

    Strong shrinking is done first with ``INTER_AREA`` (bilinear sampling alone would alias),
    and the remaining transform with one bilinear warp; outside pixels are black.
    """
    scale = math.sqrt(abs(np.linalg.det(matrix[:2, :2])))
    if scale < 0.5:
        h, w = image.shape[:2]
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        matrix = matrix @ np.linalg.inv(_resize_matrix(w, h, new_w, new_h))
    return cv2.warpAffine(
        image, matrix[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def move_points(points: np.ndarray, matrix: np.ndarray, flip: bool) -> np.ndarray:
    """Landmarks through ``matrix``; after a flip, renumber them so left stays left (iBUG-68)."""
    moved = points.astype(np.float64) @ matrix[:2, :2].T + matrix[:2, 2]
    if flip:
        moved = moved[_FLIP]
    return moved.astype(np.float32)


def _towards_gray(img: np.ndarray, factor: float, offset: float = 0.0) -> np.ndarray:
    """``factor * img + (1 - factor) * luma(img) + offset`` per channel, in one linear pass
    (``cv2.transform`` with a 3×4 matrix); ``factor`` 0 is the grey image."""
    matrix = (1.0 - factor) * np.tile(_GRAY, (3, 1)) + factor * np.eye(3, dtype=np.float32)
    return cv2.transform(img, np.hstack([matrix, np.full((3, 1), offset)]).astype(np.float32))


def _jitter(rng: np.random.Generator, img: np.ndarray, o: AugmentOptions) -> np.ndarray:
    """Brightness, contrast, saturation and hue, in random order (torchvision's ColorJitter).

    ``img`` is float32 in [0, 1] and is changed in place where possible: at 224 px the loader
    spends most of its time here, and OpenCV's vectorised ops avoid numpy's temporaries.
    """
    for step in rng.permutation(4):
        if step == 0 and o.brightness:
            img *= rng.uniform(1 - o.brightness, 1 + o.brightness)
        elif step == 1 and o.contrast:
            mean = float(np.dot(cv2.mean(img)[:3], _GRAY))  # luma is linear: mean of luma
            factor = rng.uniform(1 - o.contrast, 1 + o.contrast)
            img = cv2.addWeighted(img, factor, img, 0.0, mean * (1.0 - factor))
        elif step == 2 and o.saturation:
            img = _towards_gray(img, rng.uniform(1 - o.saturation, 1 + o.saturation))
        elif step == 3 and o.hue:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)  # H in degrees, [0, 360)
            # A shift taken modulo 360 keeps H in [0, 720), which HSV2RGB wraps itself (no
            # per-pixel modulo, the slowest step of the loader otherwise).
            shift = (360.0 * rng.uniform(-o.hue, o.hue)) % 360.0
            cv2.add(hsv, (shift, 0.0, 0.0, 0.0), dst=hsv)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        np.clip(img, 0.0, 1.0, out=img)
    return img


def _erase(rng: np.random.Generator, img: np.ndarray, o: AugmentOptions) -> None:
    """Zero (the dataset mean after normalisation) one random rectangle, in place."""
    h, w = img.shape[:2]
    for _ in range(10):
        target = h * w * rng.uniform(*o.erase_scale)
        ratio = math.exp(rng.uniform(math.log(o.erase_ratio[0]), math.log(o.erase_ratio[1])))
        eh, ew = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < eh < h and 0 < ew < w:
            y, x = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
            img[y : y + eh, x : x + ew] = 0.0
            return


class JointTransform:
    """``sample → dict(image (3,S,S) float32 normalised, label, landmarks (68,2) float32, id)``."""

    def __init__(self, train: bool, size: int, options: AugmentOptions, seed: int | None) -> None:
        self.train = train
        self.size = size
        self.options = options
        self.seed = seed
        self._rng: np.random.Generator | None = None
        self._rng_worker: int | None = None

    def _generator(self) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        info = get_worker_info()
        worker = -1 if info is None else info.id
        if self._rng is None or self._rng_worker != worker:  # each worker: its own stream
            self._rng = np.random.default_rng([self.seed, worker + 1])
            self._rng_worker = worker
        return self._rng

    def __call__(self, sample: dict) -> dict[str, Any]:
        image = sample["image"]
        o = self.options
        rng = self._generator() if self.train else None
        matrix, flip = _geometry(rng, image.shape[1], image.shape[0], self.size, o)
        out = warp(image, matrix, self.size).astype(np.float32)
        out *= 1.0 / 255.0
        points = move_points(np.asarray(sample["landmarks"]), matrix, flip)
        if rng is not None:
            if rng.random() < o.gray_p:
                out = _towards_gray(out, 0.0)
            if rng.random() < o.jitter_p:
                out = _jitter(rng, out, o)
        # OpenCV's per-channel scalar ops: numpy's broadcast over a last axis of 3 is ~20x slower.
        cv2.subtract(out, _MEAN4, dst=out)
        cv2.multiply(out, _INV_STD4, dst=out)
        if rng is not None and rng.random() < o.erase_p:
            _erase(rng, out, o)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))),
            "label": int(sample["label"]),
            "landmarks": torch.from_numpy(points),
            "id": sample["id"],
        }


def build_transforms(train: bool, size: int, seed: int | None = None, **options: Any):
    """The joint transform for training (``train=True``) or evaluation, output ``size × size``.

    ``options`` override :class:`AugmentOptions` fields (e.g. ``rotate_deg=10``, ``erase_p=0``);
    an unknown name raises a ``TypeError`` listing the valid ones.
    """
    valid = {f.name for f in fields(AugmentOptions)}
    unknown = set(options) - valid
    if unknown:
        raise TypeError(f"unknown transform options {sorted(unknown)}; valid: {sorted(valid)}")
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    return JointTransform(train, size, AugmentOptions(**options), seed)
