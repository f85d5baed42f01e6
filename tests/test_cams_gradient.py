"""Gradient CAMs (GradCAM, GradCAM++, LayerCAM; docs/method.md §6) against pytorch-grad-cam on
a ReLU CNN, a CNN whose last features can be negative (GELU) and a ViT's tokens.

All models are float64 with random weights. The classifier's weights are scaled up: with GAP
the gradient is ``g = w / (h·w)``, and pytorch-grad-cam's GradCAM++ adds ε = 1e-6 to a
denominator of order ``g²``. At ×1e8 that ε is negligible and both compute the published
formula, but ``Σ A · g³`` swamps the ``2 g²`` term; scaled to a median ``|g|`` of 1 both terms
count and ε moves the maps by less than 1e-4.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM as PgcGradCAM
from pytorch_grad_cam import GradCAMPlusPlus as PgcGradCAMPlusPlus
from pytorch_grad_cam import LayerCAM as PgcLayerCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from fer_core.cams import CamMethod, build_method, minmax_normalize
from fer_core.config import MethodConfig, ModelConfig

SIZE = 64
ORACLES = {"gradcam": PgcGradCAM, "gradcampp": PgcGradCAMPlusPlus, "layercam": PgcLayerCAM}
BACKBONES = {
    "resnet18": 8,  # ReLU features ≥ 0; output stride 8 → 8×8 maps at 64 px
    "convnext_atto": 32,  # GELU + LayerNorm: about half the features are negative
    "vit_tiny_patch16_224": 32,  # tokens of the last block, a 4×4 grid at 64 px
}
"""Backbone → output stride."""
CLASSES = torch.tensor([1, 3, 5, 6])


class _LogitsOnly(torch.nn.Module):
    """pytorch-grad-cam expects ``model(x) -> logits``."""

    def __init__(self, method: CamMethod) -> None:
        super().__init__()
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.method(x).logits


def _clean(model: torch.nn.Module) -> bool:
    """No parameter holds a gradient and no module holds a hook."""
    no_grads = all(p.grad is None for p in model.parameters())
    no_hooks = all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
                   and not m._backward_pre_hooks for m in model.modules())
    return no_grads and no_hooks


@pytest.fixture(scope="module", params=list(BACKBONES))
def setup(request):
    """The three methods on one backbone, sharing weights, and a batch."""
    torch.manual_seed(0)
    model_cfg = ModelConfig(backbone=request.param, output_stride=BACKBONES[request.param])
    methods: dict[str, CamMethod] = {}
    for name in ORACLES:
        m = build_method(MethodConfig(method=name), model_cfg, img_size=SIZE).double().eval()
        if methods:
            m.load_state_dict(next(iter(methods.values())).state_dict())
        methods[name] = m
    x = torch.randn(len(CLASSES), 3, SIZE, SIZE, dtype=torch.float64)
    return methods, x


def _target(m: CamMethod) -> tuple[torch.nn.Module, Callable | None]:
    """The module whose output is the last feature map, and the token → grid reshape."""
    backbone = m.backbone
    layer = backbone.model.get_submodule(backbone.modules_by_layer[backbone.last_layer])
    if not backbone.is_transformer:
        return layer, None
    prefix = backbone.model.num_prefix_tokens

    def to_grid(tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, prefix:]
        side = int(patches.shape[1] ** 0.5)
        return patches.reshape(tokens.shape[0], side, side, -1).permute(0, 3, 1, 2)

    return layer, to_grid


@contextmanager
def _scaled_classifier(m: CamMethod, scale: float) -> Iterator[None]:
    """The classifier's weights × ``scale`` inside the block (the fixture's model is shared)."""
    fc = m.fc.weight.detach().clone()
    with torch.no_grad():
        m.fc.weight.mul_(scale)
    try:
        yield
    finally:
        with torch.no_grad():
            m.fc.weight.copy_(fc)


def _theirs(m: CamMethod, name: str, x: torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    layer, reshape = _target(m)
    with ORACLES[name](model=_LogitsOnly(m), target_layers=[layer],
                       reshape_transform=reshape) as cam:
        # Keep the oracle's maps at feature resolution: its resize becomes the identity.
        cam.get_target_width_height = lambda _x: (hw[1], hw[0])
        maps = cam(x, targets=[ClassifierOutputTarget(int(c)) for c in CLASSES])
    m.zero_grad(set_to_none=True)
    return maps


@pytest.mark.parametrize("name, unit_gradient, atol", [
    ("gradcam", False, 1e-5), ("layercam", False, 1e-5),  # linear in w: one scale is enough
    ("gradcampp", False, 1e-5), ("gradcampp", True, 1e-4)])
def test_gradient_cams_match_pytorch_grad_cam(setup, name, unit_gradient, atol) -> None:
    methods, x = setup
    m = methods[name]
    # ×1e8, or the scale that makes the median |g| 1 (both denominator terms count there).
    scale = 1.0 / m.activations_and_grads(x, CLASSES)[1].abs().median().item() if (
        unit_gradient) else 1e8
    with _scaled_classifier(m, scale):
        ours = m.cams(x, CLASSES)
        assert ours.dtype == torch.float64 and _clean(m)
        # Both apply ReLU then per-image min-max (theirs with ε 1e-7 and a float32 cast).
        np.testing.assert_allclose(ours.numpy(), _theirs(m, name, x, ours.shape[-2:]),
                                   atol=atol, rtol=0)
        # Not all zero (a 2×2 map can be: no pixel with positive evidence after the ReLU).
        assert ours.amax(dim=(1, 2)).eq(1).sum() >= len(CLASSES) - 1
        # The predicted class is used when none is given.
        with torch.no_grad():
            pred = m(x).logits.argmax(1)
        torch.testing.assert_close(m.cams(x), m.cams(x, pred))


def test_gradcampp_keeps_negative_denominators(setup) -> None:
    """Where Σ A < 0 and g > 0 the published α is negative; zeroing it (the guarded form this
    project used before) changes the map completely on every backbone with negative features."""
    methods, x = setup
    m = methods["gradcampp"]
    with _scaled_classifier(m, 1e8):  # |Σ A · g³| ≫ 2 g²: the sign of Σ A decides
        act, grad = m.activations_and_grads(x, CLASSES)
        ours = m.cams(x, CLASSES)
    g2 = grad * grad
    denom = 2 * g2 + act.sum(dim=(2, 3), keepdim=True) * g2 * grad
    negative = ((grad > 0) & (denom < 0)).any().item()
    assert negative == (m.model_cfg.backbone != "resnet18")  # ReLU features: never
    guarded_alpha = torch.where((grad > 0) & (denom > 0), g2 / denom, 0.0)
    weights = (guarded_alpha * torch.relu(grad)).sum(dim=(2, 3), keepdim=True)
    guarded = minmax_normalize(torch.relu((weights * act).sum(dim=1)))
    gap = (guarded - ours).abs().amax().item()
    assert (gap > 0.1) == negative, gap


def test_gradcam_equals_relu_cam_for_gap_fc(setup) -> None:
    methods, x = setup
    m = methods["gradcam"]
    classes = torch.tensor([0, 2, 4, 6])
    with torch.no_grad():
        feat = m.backbone(x)[m.backbone.last_layer]
        cam = m.class_maps(feat)[torch.arange(4), classes]
    torch.testing.assert_close(m.cams(x, classes), minmax_normalize(torch.relu(cam)))
    # The CAM method itself keeps the negative evidence (no ReLU) before min-max.
    plain = build_method(MethodConfig(method="cam"), m.model_cfg, img_size=SIZE).double().eval()
    plain.load_state_dict(m.state_dict())
    torch.testing.assert_close(plain.cams(x, classes), minmax_normalize(cam))
