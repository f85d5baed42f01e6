"""Model-parameter randomisation: Spearman against scipy, the cascade's reach, and a map that
ignores the model (an input-edge map) against one that depends on it (CAM)."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from fer_core.cams import build_method
from fer_core.cams.base import minmax_normalize
from fer_core.config import MethodConfig, ModelConfig
from fer_core.xai import sanity
from fer_core.xai.common import explanation_maps


def _cam(method: str = "cam"):
    torch.manual_seed(0)
    return build_method(MethodConfig(method=method),
                        ModelConfig(backbone="resnet18", output_stride=16)).eval()


def _trained_like():
    """A CAM model whose every parameter moved away from its init (as training would), so
    re-initialising shows on batch-norm weights too."""
    model = _cam()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=gen))
    return model


def test_spearman_matches_scipy_with_ties():
    torch.manual_seed(0)
    a = torch.randint(0, 4, (3, 5, 5)).float()
    b = a + torch.randn(3, 5, 5)
    for rho, x, y in zip(sanity.spearman(a, b), a, b, strict=True):
        assert float(rho) == pytest.approx(stats.spearmanr(x.flatten(), y.flatten())[0],
                                           abs=1e-5)
    assert torch.allclose(sanity.spearman(a, a), torch.ones(3))
    assert float(sanity.spearman(a[:1], torch.zeros(1, 5, 5))) == 0.0  # constant: no ranking


def test_cascade_goes_top_down_and_reaches_every_parameter():
    model = _trained_like()
    names = [name for name, _ in sanity.cascade_steps(model)]
    assert names == ["head", "l5", "l4", "l3", "l2", "l1"]
    original = {k: v.clone() for k, v in model.state_dict().items()}
    changed_by_step = []
    clone = _trained_like()
    for _step, owns in sanity.cascade_steps(clone):
        sanity._reinitialise(clone, owns)
        changed_by_step.append({k for k, v in clone.named_parameters()
                                if not torch.equal(v, original[k])})
    assert all(not k.startswith("backbone") for k in changed_by_step[0]) and changed_by_step[0]
    assert all(not k.startswith("backbone.model.layer3") for k in changed_by_step[1])
    assert any(k.startswith("backbone.model.layer4") for k in changed_by_step[1])
    assert any(k.startswith("backbone.model.layer3") for k in changed_by_step[2])
    assert not any(k.startswith("backbone.model.conv1") for k in changed_by_step[-2])
    assert changed_by_step[-1] == set(original) & {k for k, _ in clone.named_parameters()}
    for before, after in zip(changed_by_step, changed_by_step[1:], strict=False):
        assert before < after  # cumulative


class EdgeMap(torch.nn.Module):
    """A "method" whose map is the input's gradient magnitude: it ignores the model."""

    has_cam = True

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.fc = model.fc

    def cams(self, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        gray = x.mean(dim=1)
        inner = gray[:, 1:, 1:]
        edges = (inner - gray[:, :-1, 1:]).abs() + (inner - gray[:, 1:, :-1]).abs()
        return minmax_normalize(edges)


def test_a_map_that_ignores_the_model_fails_the_sanity_check():
    torch.manual_seed(1)
    x = torch.randn(3, 3, 32, 32)
    classes = torch.tensor([1, 2, 3])
    edge = EdgeMap(_cam())
    edge_maps = explanation_maps(edge, x, classes)
    edge_rho = sanity.randomisation_test(edge, x, classes, edge_maps, seed=0)
    assert all(torch.allclose(v, torch.ones(3)) for v in edge_rho.values())

    cam = _cam()
    before = {k: v.clone() for k, v in cam.state_dict().items()}
    cam_maps = explanation_maps(cam, x, classes)
    cam_rho = sanity.randomisation_test(cam, x, classes, cam_maps, seed=0, max_steps=2)
    assert list(cam_rho) == ["head", "l5"]
    assert float(cam_rho["head"].mean()) < 0.9
    assert all(torch.equal(v, before[k]) for k, v in cam.state_dict().items())  # untouched
    again = sanity.randomisation_test(cam, x, classes, cam_maps, seed=0, max_steps=2)
    assert all(torch.equal(again[k], cam_rho[k]) for k in cam_rho)  # seeded
