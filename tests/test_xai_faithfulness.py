"""Faithfulness metrics: a model whose evidence is known, and pytorch-grad-cam on the same
model, image and map (Average Drop / Increase in Confidence, ROAD)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam.metrics.cam_mult_image import DropInConfidence, IncreaseInConfidence
from pytorch_grad_cam.metrics.perturbation_confidence import (
    PerturbationConfidenceMetric,
    RemoveLeastRelevantFirst,
    RemoveMostRelevantFirst,
)
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from torch import nn

from fer_core.cams import build_method, upsample_cams
from fer_core.config import MethodConfig, ModelConfig
from fer_core.xai import baselines as bl
from fer_core.xai import faithfulness as fa
from fer_core.xai import road as rd
from fer_core.xai.common import probability_fn

SIZE = 24


class RegionEnergy(nn.Module):
    """A perfectly faithful model: class 1's logit is the energy of channel 0 inside a known
    square, so only those pixels matter (and blurring them lowers it)."""

    def __init__(self, region: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("region", region.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = (x[:, 0] ** 2 * self.region).sum(dim=(1, 2)) / self.region.sum()
        return torch.stack([torch.zeros_like(energy), 3 * energy], dim=1)


@pytest.fixture()
def faithful():
    region = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    region[4:10, 12:20] = True  # 48 of 576 pixels
    torch.manual_seed(0)
    x = torch.randn(3, 3, SIZE, SIZE)
    return RegionEnergy(region), region, x


def test_blur_keeps_constants_and_smooths_noise():
    flat = torch.full((1, 3, 16, 16), 0.7)
    assert torch.allclose(fa.gaussian_blur(flat, 0.1), flat, atol=1e-6)
    noise = torch.randn(2, 3, 32, 32)
    assert fa.gaussian_blur(noise, 0.05).var() < 0.5 * noise.var()
    with pytest.raises(ValueError, match="sigma must be > 0"):
        fa.gaussian_blur(noise, 0.0)


def test_deletion_of_a_perfectly_faithful_model(faithful):
    model, region, x = faithful
    probs = probability_fn(model)
    classes = torch.ones(len(x), dtype=torch.long)
    steps = 24  # 24 pixels per step: the 48 region pixels go in the first two steps
    oracle = region.float().expand(len(x), SIZE, SIZE)
    blur = bl.baseline("blur", bl.BaselineParams(blur_sigma=0.08))
    good = fa.deletion_insertion(probs, x, oracle, classes, steps, blur)
    bad = fa.deletion_insertion(probs, x, 1 - oracle, classes, steps, blur)
    d, i = good["deletion_curve"], good["insertion_curve"]
    p_x = probs(x)[:, 1]
    p_blur = probs(fa.gaussian_blur(x, 0.08))[:, 1]
    assert torch.allclose(d[:, 0], p_x) and torch.allclose(d[:, -1], p_blur)
    assert torch.allclose(i[:, 0], p_blur) and torch.allclose(i[:, -1], p_x)
    # Once the region is gone nothing else matters: the curve is flat from step 2 on.
    assert torch.allclose(d[:, 2:], d[:, -1:].expand_as(d[:, 2:]))
    assert torch.allclose(i[:, 2:], i[:, -1:].expand_as(i[:, 2:]))
    # The reversed map deletes the region last.
    assert torch.allclose(bad["deletion_curve"][:, :-2], p_x[:, None].expand(-1, steps - 1))
    assert bool((good["deletion"] < bad["deletion"]).all())
    assert bool((good["insertion"] > bad["insertion"]).all())


def test_step_counts_cover_the_image():
    counts = fa.step_counts(100, 8)
    assert counts[0] == 0 and counts[-1] == 100 and len(counts) == 9
    assert bool((counts[1:] >= counts[:-1]).all())
    with pytest.raises(ValueError, match="steps must be >= 1"):
        fa.step_counts(10, 0)


class Logits(nn.Module):
    """A CamMethod seen as a plain classifier (pytorch-grad-cam calls model(x) -> logits)."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.method(x).logits


@pytest.fixture(scope="module")
def cam_case():
    torch.manual_seed(3)
    method = build_method(MethodConfig(method="cam"),
                          ModelConfig(backbone="resnet18", output_stride=16)).eval()
    x = torch.randn(4, 3, 32, 32)
    classes = torch.tensor([1, 2, 3, 4])
    maps = upsample_cams(method.cams(x, classes), (32, 32))
    return Logits(method).eval(), x, classes, maps


def test_average_drop_and_increase_match_pytorch_grad_cam(cam_case):
    model, x, classes, maps = cam_case
    y, o = fa.confidence_change(probability_fn(model), x, maps, classes)
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes]
    drop = DropInConfidence()(x, maps.numpy(), targets, model)
    increase = IncreaseInConfidence()(x, maps.numpy(), targets, model)
    np.testing.assert_allclose((y - o).clamp_min(0).numpy(), drop, atol=1e-6)
    np.testing.assert_allclose(fa.increase_in_confidence(y, o).numpy(), 100 * increase)
    assert torch.allclose(fa.average_drop(y, o), 100 * torch.from_numpy(drop) / y, atol=1e-4)


@pytest.mark.parametrize("percentile", [30.0, 70.0])
def test_road_matches_pytorch_grad_cam_without_noise(cam_case, percentile):
    model, x, classes, maps = cam_case
    ours = rd.road(probability_fn(model), x, maps, classes, (percentile,), noise=0.0)
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes]
    for key, remover in (("road_morf", RemoveMostRelevantFirst),
                         ("road_lerf", RemoveLeastRelevantFirst)):
        metric = PerturbationConfidenceMetric(remover(percentile, NoisyLinearImputer(noise=0.0)))
        theirs = metric(x, maps.numpy(), targets, model, return_diff=False)
        np.testing.assert_allclose(ours[key].numpy(), theirs, atol=2e-4)
    assert torch.allclose(ours["road"], (ours["road_lerf"] - ours["road_morf"]) / 2)


def test_road_masks_remove_the_right_share():
    maps = torch.rand(2, 20, 20)
    morf, lerf = rd.removal_masks(maps, 80.0)
    for m, top, bottom in zip(maps, morf, lerf, strict=True):
        assert top.float().mean() == pytest.approx(0.2, abs=0.01)
        assert float(m[top].min()) >= float(m[~top].max())
        assert float(m[bottom].max()) <= float(m[~bottom].min())
    with pytest.raises(ValueError, match="percentiles must be in"):
        rd.removal_masks(maps, 100.0)


def test_imputation_matches_the_reference_sparse_solve():
    torch.manual_seed(5)
    x = torch.randn(2, 3, 20, 20)
    removed = torch.rand(2, 20, 20) > 0.4
    ours = rd.impute(x, removed, noise=0.0)
    for i in range(2):
        ref = NoisyLinearImputer(noise=0.0)(x[i], (~removed[i]).float())
        assert torch.allclose(ours[i], ref, atol=1e-4)
    assert torch.equal(ours[~removed.unsqueeze(1).expand_as(x)],
                       x[~removed.unsqueeze(1).expand_as(x)])
    noisy = rd.impute(x, removed, noise=0.01, generator=torch.Generator().manual_seed(0))
    again = rd.impute(x, removed, noise=0.01, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again) and not torch.equal(noisy, ours)
