"""The batched AU-map renderer: geometry on a synthetic face, validity, scale, dtypes, errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fer_core import CLASSES
from fer_core.au import render_au_map_np, render_au_maps, template_landmarks
from fer_core.au.render import _resize_matrix

HAPPY, SURPRISE, DISGUST = (CLASSES.index(n) for n in ("Happiness", "Surprise", "Disgust"))
ALL = torch.arange(len(CLASSES))


def face(size, n: int = 1, noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """``n`` copies of the template face, optionally jittered, as a (n, 68, 2) float32 tensor."""
    lm = torch.from_numpy(template_landmarks(size)).repeat(n, 1, 1)
    gen = torch.Generator().manual_seed(seed)
    return lm + noise * torch.randn(lm.shape, generator=gen)


def value_at(m: torch.Tensor, xy) -> float:
    x, y = (float(v) for v in xy)
    return float(m[round(y), round(x)])


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.flatten(1).double(), b.flatten(1).double(), dim=1)


@pytest.mark.parametrize("smooth", ["box", "none"])
def test_happiness_peaks_at_mouth_and_cheeks_not_forehead(smooth):
    lm = face(224)
    maps, valid = render_au_maps(lm, torch.tensor([HAPPY]), 224, smooth=smooth)
    m, p = maps[0], lm[0]
    assert bool(valid[0])
    assert value_at(m, p[48]) > 0.95 and value_at(m, p[54]) > 0.95  # lip corners (AU 8)
    assert value_at(m, (p[41, 0], p[41, 1] + 37)) > 0.95  # cheek (AU 4)
    assert value_at(m, p[51]) > 0.8 and value_at(m, p[57]) > 0.8  # lips (AU 15)
    assert float(m[:25].max()) < 0.01  # forehead band above the brows
    assert value_at(m, p[19]) < 0.01 and value_at(m, p[24]) < 0.01  # brows


def test_surprise_covers_brows_and_open_mouth():
    lm = face(224)
    maps, valid = render_au_maps(lm, torch.tensor([SURPRISE]), 224)
    m, p = maps[0], lm[0]
    assert bool(valid[0])
    for i in (18, 19, 20, 23, 24, 25):
        assert value_at(m, p[i]) > 0.9, f"brow landmark {i}"
    assert value_at(m, ((p[48, 0] + p[54, 0]) / 2, (p[51, 1] + p[57, 1]) / 2)) > 0.5
    assert value_at(m, (p[41, 0], p[41, 1] + 37)) < 0.01  # no cheek raiser


def test_paper_disgust_drops_the_eyes_for_the_upper_lip():
    lm = face(224)
    labels = torch.tensor([DISGUST])
    ref, _ = render_au_maps(lm, labels, 224, variant="reference", smooth="none")
    paper, _ = render_au_maps(lm, labels, 224, variant="paper", smooth="none")
    eye = ((lm[0, 36, 0] + lm[0, 39, 0]) / 2, (lm[0, 38, 1] + lm[0, 41, 1]) / 2)
    assert value_at(ref[0], eye) == 1.0 and value_at(paper[0], eye) == 0.0


def test_validity_per_variant_and_invalid_maps_are_zero():
    lm = face(112, n=7)
    for variant, neutral_valid in (("reference", False), ("paper", False), ("generic", True)):
        maps, valid = render_au_maps(lm, ALL, 112, variant=variant)
        assert valid.tolist() == [neutral_valid] + [True] * 6, variant
        assert (maps[~valid] == 0).all()


def test_generic_is_the_same_map_for_every_class():
    maps, valid = render_au_maps(face(112, n=7), ALL, 112, variant="generic")
    assert valid.all()
    assert torch.equal(maps, maps[:1].expand_as(maps))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_landmarks_make_only_that_sample_invalid(bad):
    lm = face(112, n=3, noise=1.0)
    labels = torch.tensor([HAPPY, SURPRISE, HAPPY])
    good, _ = render_au_maps(lm, labels, 112)
    lm[1, 30] = bad  # a single failed point is enough
    lm[2] = bad  # a face whose extraction failed entirely
    maps, valid = render_au_maps(lm, labels, 112)
    assert valid.tolist() == [True, False, False]
    assert torch.isfinite(maps).all() and (maps[1:] == 0).all()
    assert torch.equal(maps[0], good[0])


def test_all_aus_outside_the_image_is_invalid_partial_is_valid():
    lm = face(112, n=3)
    lm[0] += 10_000.0
    lm[1] -= 500.0
    lm[2, :, 1] += 60.0  # face slid down: the mouth leaves the image, the brows stay
    maps, valid = render_au_maps(lm, torch.tensor([SURPRISE, SURPRISE, SURPRISE]), 112)
    assert valid.tolist() == [False, False, True]
    assert (maps[:2] == 0).all() and float(maps[2].max()) == pytest.approx(1.0)


@pytest.mark.parametrize("smooth", ["box", "none"])
def test_maps_are_in_unit_range_float32_and_valid_maps_reach_one(smooth):
    maps, valid = render_au_maps(face(96, n=14, noise=3.0), ALL.repeat(2), 96, smooth=smooth)
    assert maps.dtype == torch.float32 and maps.shape == (14, 96, 96) and valid.dtype == torch.bool
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    assert torch.allclose(maps[valid].amax(dim=(1, 2)), torch.ones(int(valid.sum())))


@pytest.mark.parametrize("variant", ["reference", "generic"])
def test_maps_scale_consistently_between_112_and_224(variant):
    small, _ = render_au_maps(face(112, n=7), ALL, 112, variant=variant)
    large, valid = render_au_maps(face(224, n=7), ALL, 224, variant=variant)
    down = F.interpolate(large[:, None], size=(112, 112), mode="bilinear", antialias=True)[:, 0]
    assert (cosine(small, down)[valid] > 0.95).all()


def test_non_square_maps_scale_per_axis():
    wide, valid = render_au_maps(face((112, 168), n=7), ALL, (112, 168))
    square, _ = render_au_maps(face(224, n=7), ALL, 224)
    squashed = F.interpolate(square[:, None], size=(112, 168), mode="bilinear", antialias=True)
    assert wide.shape == (7, 112, 168)
    assert (cosine(wide, squashed[:, 0])[valid] > 0.95).all()


def test_tiny_output_still_matches_the_large_map():
    tiny, valid = render_au_maps(face(14, n=7), ALL, 14)
    large, _ = render_au_maps(face(224, n=7), ALL, 224)
    down = F.interpolate(large[:, None], size=(14, 14), mode="bilinear", antialias=True)[:, 0]
    assert tiny.shape == (7, 14, 14)
    assert (cosine(tiny, down)[valid] > 0.95).all()


def test_batch_equals_per_sample_and_is_deterministic():
    lm = face(112, n=10, noise=4.0, seed=3)
    labels = torch.tensor([1, 2, 3, 4, 5, 6, 0, 1, 5, 4])
    maps, valid = render_au_maps(lm, labels, 112)
    for i in range(len(labels)):
        one, one_valid = render_au_maps(lm[i : i + 1], labels[i : i + 1], 112)
        assert bool(one_valid[0]) == bool(valid[i])
        torch.testing.assert_close(one[0], maps[i], atol=1e-6, rtol=0)
    again, _ = render_au_maps(lm, labels, 112)
    assert torch.equal(maps, again)


def test_float64_and_float32_landmarks_agree_and_int32_labels_work():
    lm = face(112, n=7, noise=2.0)
    m32, v32 = render_au_maps(lm, ALL, 112)
    m64, v64 = render_au_maps(lm.double(), ALL.int(), 112)
    assert m64.dtype == torch.float32 and torch.equal(v32, v64)
    torch.testing.assert_close(m32, m64, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", ["reference", "paper", "generic"])
@pytest.mark.parametrize("smooth", ["box", "none"])
def test_batched_torch_renderer_matches_numpy_reference(variant, smooth):
    size = (96, 128)
    lm = face(size, n=7, noise=3.0, seed=1).double()
    maps, valid = render_au_maps(lm, ALL, size, variant=variant, smooth=smooth)
    for c in range(7):
        ref, ref_valid = render_au_map_np(lm[c].numpy(), c, size, variant=variant, smooth=smooth)
        assert ref_valid == bool(valid[c])
        np.testing.assert_allclose(maps[c].numpy(), ref, atol=1e-5, err_msg=f"class {c}")


def test_empty_batch():
    maps, valid = render_au_maps(torch.zeros(0, 68, 2), torch.zeros(0, dtype=torch.long), 32)
    assert maps.shape == (0, 32, 32) and valid.shape == (0,)


def test_resize_matrix_equals_torch_interpolate():
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    for out, aa in ((112, False), (224, False), (14, True), (20, True)):
        m = _resize_matrix(28, out, x.device, x.dtype)
        ours = m @ x[:, 0] @ m.T
        ref = F.interpolate(x, size=(out, out), mode="bilinear", antialias=aa)[:, 0]
        torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("landmarks", "labels", "kwargs", "match"),
    [
        (torch.zeros(2, 68, 3), torch.zeros(2, dtype=torch.long), {}, r"\(2, 68, 3\).*B, 68, 2"),
        (torch.zeros(68, 2), torch.zeros(1, dtype=torch.long), {}, r"\(68, 2\).*\(B, 68, 2\)"),
        (torch.zeros(2, 68, 2, dtype=torch.long), torch.zeros(2, dtype=torch.long), {}, "float"),
        (torch.zeros(2, 68, 2), torch.zeros(3, dtype=torch.long), {}, r"\(3,\).*\(2,\)"),
        (torch.zeros(2, 68, 2), torch.zeros(2), {}, "integer"),
        (torch.zeros(2, 68, 2), torch.tensor([0, 7]), {}, r"\[0, 6\]"),
        (torch.zeros(1, 68, 2), torch.zeros(1, dtype=torch.long), {"variant": "x"}, "reference"),
        (torch.zeros(1, 68, 2), torch.zeros(1, dtype=torch.long), {"smooth": "gauss"}, "box"),
        (torch.zeros(1, 68, 2), torch.zeros(1, dtype=torch.long), {"size": (0, 8)}, "size"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(landmarks, labels, kwargs, match):
    kwargs = {"size": 32, **kwargs}
    with pytest.raises(ValueError, match=match):
        render_au_maps(landmarks, labels, **kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    lm = face(112, n=14, noise=3.0)
    labels = ALL.repeat(2)
    cpu, cpu_valid = render_au_maps(lm, labels, 112)
    gpu, gpu_valid = render_au_maps(lm.cuda(), labels.cuda(), 112)
    again, _ = render_au_maps(lm.cuda(), labels.cuda(), 112)
    assert gpu.device.type == "cuda" and torch.equal(gpu, again)
    assert torch.equal(cpu_valid, gpu_valid.cpu())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)
