"""Joint transforms: landmarks stay on the image content through every geometric step."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fer_core.au import HFLIP_PERMUTATION, expression_aus, render_au_maps, template_landmarks
from fer_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

GEOMETRY_ONLY = dict(gray_p=0.0, jitter_p=0.0, erase_p=0.0)
PURE_FLIP = dict(
    pre_resize=1.0, rotate_p=0.0, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), hflip_p=1.0,
    **GEOMETRY_ONLY,
)  # fmt: skip


def _sample(image: np.ndarray, landmarks: np.ndarray, label: int = 1) -> dict:
    return {"image": image, "label": label, "landmarks": landmarks.astype(np.float32), "id": "s"}


def _pixels(out: dict) -> np.ndarray:
    """The output image back in [0, 1], H×W×3."""
    return out["image"].numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN


def _dot_image(side: int, point: np.ndarray) -> np.ndarray:
    """A white disc centred exactly (1/16 px) on ``point``, on black."""
    image = np.zeros((side, side, 3), np.uint8)
    centre = tuple(int(round(v * 16)) for v in point)
    cv2.circle(image, centre, max(2, side // 40) * 16, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    return image


def _centroid(gray: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[: gray.shape[0], : gray.shape[1]]
    w = np.clip(gray - 0.2, 0, None)
    return np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum()


def test_eval_is_an_exact_resize() -> None:
    points = template_landmarks(100)
    out = build_transforms(train=False, size=64)(_sample(np.zeros((100, 100, 3), np.uint8), points))
    assert out["image"].shape == (3, 64, 64) and out["image"].dtype == torch.float32
    assert out["landmarks"].dtype == torch.float32 and out["label"] == 1 and out["id"] == "s"
    np.testing.assert_allclose(out["landmarks"].numpy(), (points + 0.5) * 0.64 - 0.5, atol=1e-4)
    # Black input normalises to -mean/std in every channel.
    np.testing.assert_allclose(out["image"][:, 0, 0].numpy(), -IMAGENET_MEAN / IMAGENET_STD, 1e-5)


@pytest.mark.parametrize("side,size", [(128, 112), (512, 64), (100, 224)])
def test_a_dot_drawn_at_a_landmark_stays_under_it(side: int, size: int) -> None:
    transform = build_transforms(train=True, size=size, seed=0, rotate_p=1.0, **GEOMETRY_ONLY)
    points = template_landmarks(side)
    margin = 1.3 * max(2, side // 40) * size / side + 2  # the dot's radius in the output, and some
    checked = flips = 0
    for _ in range(10):
        for index in (36, 30, 54, 8, 19):  # eye corner, nose tip, mouth corner, chin, brow
            out = transform(_sample(_dot_image(side, points[index]), points))
            # After a flip the dot's landmark has its mirror's index (left stays image-left).
            candidates = out["landmarks"].numpy()[[index, HFLIP_PERMUTATION[index]]]
            if ((candidates < margin) | (candidates > size - 1 - margin)).any():
                continue  # the crop cut the dot: its centroid would move
            dist = np.linalg.norm(candidates - _centroid(_pixels(out).mean(2)), axis=1)
            assert dist.min() < 0.3, (index, dist)
            checked += 1
            flips += int(dist.argmin() == 1 and index != 30)
    assert checked >= 35 and 0 < flips < checked  # flipped and unflipped samples were checked


def test_flip_keeps_left_left_and_mirrors_the_image() -> None:
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    points = template_landmarks(64) + np.array([3.0, 0.0], np.float32)  # off-centre face
    out = build_transforms(train=True, size=64, seed=0, **PURE_FLIP)(_sample(image, points))
    plain = build_transforms(train=False, size=64)(_sample(image, points))
    assert torch.equal(out["image"], plain["image"].flip(-1))
    moved = out["landmarks"].numpy()
    assert (moved[36:42, 0] < moved[42:48, 0].min()).all()  # "left" eye still image-left
    mirrored = points.copy()
    mirrored[:, 0] = 63 - mirrored[:, 0]
    np.testing.assert_allclose(moved, mirrored[list(HFLIP_PERMUTATION)], atol=1e-4)


def test_au_map_of_flipped_landmarks_is_the_flipped_au_map() -> None:
    rng = np.random.default_rng(1)
    points = template_landmarks(96) + rng.normal(0, 1.5, (68, 2)).astype(np.float32)
    points[:, 0] += 6  # an asymmetric, off-centre face
    flip = build_transforms(train=True, size=96, seed=0, **PURE_FLIP)
    image = np.zeros((96, 96, 3), np.uint8)
    # docs/method.md §3 places AU 7 at (x48, y50) / (x52, y54) and AU 11 between lm59 and lm8: not
    # mirror-symmetric regions, so only classes without them can flip exactly in `reference`.
    aus = expression_aus("reference")
    checks = [("reference", c) for c in range(1, 7) if not {7, 11} & set(aus[c])]
    checks += [("generic", c) for c in range(1, 7)]
    assert len(checks) == 9
    for variant, label in checks:
        moved = flip(_sample(image, points, label))["landmarks"][None]
        labels = torch.tensor([label])
        flipped_map, valid = render_au_maps(moved, labels, size=96, variant=variant)
        original, _ = render_au_maps(torch.from_numpy(points)[None], labels, 96, variant=variant)
        assert valid.all()
        cos = torch.nn.functional.cosine_similarity(
            flipped_map.flatten(), original.flip(-1).flatten(), dim=0
        )
        assert cos > 0.99, (variant, label, float(cos))


def test_seeded_and_torch_seeded_runs_repeat() -> None:
    image = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    sample = _sample(image, template_landmarks(80))
    a = build_transforms(True, 48, seed=5)(sample)
    b = build_transforms(True, 48, seed=5)(sample)
    assert torch.equal(a["image"], b["image"])
    assert torch.equal(a["landmarks"], b["landmarks"])
    transform = build_transforms(True, 48)
    torch.manual_seed(3)
    first = [transform(sample)["image"] for _ in range(3)]
    torch.manual_seed(3)
    second = [transform(sample)["image"] for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])  # a new draw per sample


class _Repeat(torch.utils.data.Dataset):
    def __init__(self, sample: dict, transform) -> None:
        self.sample, self.transform = sample, transform

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        return self.transform(self.sample)


def test_dataloader_workers_differ_and_repeat() -> None:
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    points = template_landmarks(64)
    points[0] = np.nan  # unknown landmarks stay unknown
    data = _Repeat(_sample(image, points), build_transforms(True, 32))

    def run() -> dict:
        loader = DataLoader(
            data, batch_size=4, num_workers=2, generator=torch.Generator().manual_seed(0)
        )
        return list(loader)

    first, second = run(), run()
    assert first[0]["landmarks"].shape == (4, 68, 2)
    unknown = torch.isnan(first[0]["landmarks"]).any(-1)
    assert (unknown.sum(-1) == 1).all()  # the one unknown landmark stays unknown (maybe renumbered)
    images = torch.cat([b["image"] for b in first])
    assert len({tuple(x.flatten()[:50].tolist()) for x in images}) == 8  # all different
    for x, y in zip(first, second, strict=True):
        assert torch.equal(x["image"], y["image"])


def test_augmentation_ops_and_options() -> None:
    image = np.full((64, 64, 3), (200, 60, 30), np.uint8)
    gray = build_transforms(True, 32, seed=0, gray_p=1.0, jitter_p=0.0, erase_p=0.0)
    pixels = _pixels(gray(_sample(image, template_landmarks(64))))
    inside = pixels[8:24, 8:24]
    assert np.allclose(inside[..., 0], inside[..., 1], atol=1e-5)
    erase = build_transforms(True, 32, seed=0, erase_p=1.0, gray_p=0.0, jitter_p=0.0, rotate_p=0.0)
    out = erase(_sample(image, template_landmarks(64)))["image"]
    assert (out.abs().sum(0) == 0).sum() >= 0.02 * 32 * 32  # one rectangle set to the mean
    with pytest.raises(TypeError, match="unknown transform options.*valid"):
        build_transforms(True, 32, rotation=5)


def test_augment_false_trains_on_the_evaluation_transform(tmp_path) -> None:
    # The shortcut study's switch: the train split keeps its cue square where it was drawn.
    from fer_core.config import DataConfig
    from fer_core.loaders import build_split

    base = dict(dataset="synthetic", img_size=32, synthetic_n=14, shortcut=1.0)
    plain = build_split(DataConfig(**base, augment=False), "train", str(tmp_path))
    augmented = build_split(DataConfig(**base), "train", str(tmp_path))
    raw = plain.base[0]
    expected = build_transforms(train=False, size=32)(raw)["image"]
    assert torch.equal(plain[0]["image"], expected) and torch.equal(plain[0]["image"],
                                                                    plain[0]["image"])
    assert not all(torch.equal(augmented[i]["image"], plain[i]["image"]) for i in range(14))
