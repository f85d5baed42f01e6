"""CAM methods (docs/method.md §6): heads by hand, and 3 training steps of every registered
method with and without the AU alignment loss (gradient CAMs against pytorch-grad-cam:
tests/test_cams_gradient.py)."""

from __future__ import annotations

import pytest
import torch

from fer_core.au import render_au_maps, template_landmarks
from fer_core.cams import METHODS, CamMethod, build_method, minmax_normalize, upsample_cams
from fer_core.cams.adl import AttentionDropout
from fer_core.cams.prm import peak_stimulation
from fer_core.cams.wildcat import wildcat_pool
from fer_core.config import MethodConfig, ModelConfig
from fer_core.losses import composite_loss, layer_attention

SIZE = 64
CNN = "resnet18"
SMALL_BACKBONES = (CNN, "deit_tiny_patch16_224", "ir_tiny")
"""Tried in order: the first one a method accepts (CNN methods, TS-CAM: a ViT, APViT: IR)."""


def _clean(model: torch.nn.Module) -> bool:
    """No parameter holds a gradient and no module holds a hook."""
    no_grads = all(p.grad is None for p in model.parameters())
    no_hooks = all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
                   and not m._backward_pre_hooks for m in model.modules())
    return no_grads and no_hooks


def _build(name: str, **method_kw) -> CamMethod:
    """A method on the first of :data:`SMALL_BACKBONES` it accepts."""
    cfg = MethodConfig(method=name, **method_kw)
    errors = []
    for backbone in SMALL_BACKBONES:
        try:
            return build_method(cfg, ModelConfig(backbone=backbone), num_classes=7, img_size=SIZE)
        except ValueError as err:  # the method rejects this kind of backbone
            errors.append(str(err))
    raise AssertionError(f"{name} accepts none of {SMALL_BACKBONES}: {errors}")


def _batch(n: int = 8, seed: int = 0):
    """Random images with jittered template landmarks; every class present, Neutral included."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, SIZE, SIZE, generator=g)
    labels = torch.arange(n) % 7
    base = torch.as_tensor(template_landmarks(SIZE))
    landmarks = base + torch.randn(n, 68, 2, generator=g)
    return x, labels, landmarks


# -- hand-computed heads ----------------------------------------------------------------------

def test_wildcat_pooling_by_hand() -> None:
    values = torch.tensor([3.0, -2.0, 7.0, 1.0, 10.0, 4.0, -5.0, 6.0, 0.0, 2.0])
    maps = values.view(1, 1, 2, 5)
    # kmax 0.5 of 10 → top 5 {10, 7, 6, 4, 3}; kmin 0.1 → bottom 1 {-5}; kmin 0.2 → {-5, -2}.
    top = (10 + 7 + 6 + 4 + 3) / 5
    assert wildcat_pool(maps, 0.5, 0.1, 0.6).item() == pytest.approx(top + 0.6 * -5)
    assert wildcat_pool(maps, 0.5, 0.2, 0.6).item() == pytest.approx(top + 0.6 * (-5 - 2) / 2)
    assert wildcat_pool(maps, 0.5, 0.0, 0.6).item() == pytest.approx(top)
    assert wildcat_pool(maps, 0.1, 0.1, 1.0).item() == pytest.approx(10 - 5)


def test_wildcat_head_averages_modalities() -> None:
    m = _build("wildcat", wildcat_modalities=3).eval()
    assert m.transfer.out_channels == 7 * 3
    feat = torch.randn(2, m.feat_channels, 4, 4)
    with torch.no_grad():
        raw = m.transfer(feat)
        maps = m.class_maps(feat)
        logits, _ = m.head(feat)
    torch.testing.assert_close(maps[:, 2], raw[:, 6:9].mean(dim=1))
    torch.testing.assert_close(logits, wildcat_pool(maps, 0.5, 0.1, 0.6))


def test_prm_peak_stimulation_by_hand() -> None:
    # A row: local maxima of the 3-wide window are 3 and 5 → mean 4.
    row = torch.tensor([1.0, 3.0, 2.0, 5.0, 4.0]).view(1, 1, 1, 5)
    assert peak_stimulation(row).item() == pytest.approx(4.0)
    # Corners count (padding never wins); the centre 3 touches 9 so it is no peak → (9+8)/2.
    grid = torch.tensor([[9.0, 2.0, 1.0], [2.0, 3.0, 2.0], [1.0, 2.0, 8.0]]).view(1, 1, 3, 3)
    assert peak_stimulation(grid).item() == pytest.approx(8.5)
    # Batched over samples and classes; gradients reach the peaks only.
    maps = torch.cat([row.expand(1, 1, 1, 5), row.flip(-1)], dim=1).requires_grad_(True)
    peak_stimulation(maps).sum().backward()
    assert maps.grad[0, 0, 0].tolist() == [0.0, 0.5, 0.0, 0.5, 0.0]


def test_adl_block_train_and_eval() -> None:
    x = torch.rand(2, 4, 5, 5)
    att = x.mean(dim=1, keepdim=True)
    drop = AttentionDropout(drop_rate=1.0, threshold=0.5).train()
    keep = (att < 0.5 * att.amax(dim=(2, 3), keepdim=True)).float()
    torch.testing.assert_close(drop(x), x * keep)
    importance = AttentionDropout(drop_rate=0.0, threshold=0.5).train()
    torch.testing.assert_close(importance(x), x * torch.sigmoid(att))
    assert torch.equal(drop.eval()(x), x)

    m = _build("adl", adl_layers=(4, 5))
    wrapped = [m.backbone.model.layer3, m.backbone.model.layer4]
    assert all(isinstance(w[-1], AttentionDropout) for w in wrapped)
    with pytest.raises(ValueError, match="valid layers"):
        build_method(MethodConfig(method="adl", adl_layers=(6,)), ModelConfig(backbone=CNN))


def test_cutmix_mixes_images_and_maps_with_one_box() -> None:
    torch.manual_seed(3)
    m = _build("cutmix").train()
    n = 6
    ids = torch.arange(n, dtype=torch.float32)
    x = ids.view(n, 1, 1, 1).expand(n, 3, SIZE, SIZE).clone()
    maps = (ids.view(n, 1, 1) + 10).expand(n, SIZE, SIZE).clone()
    valid = torch.tensor([True, True, False, True, True, True])
    labels = torch.arange(n)
    for _ in range(5):
        x2, (la, lb, lam), maps2, valid2 = m.prepare_batch(x, labels, maps, valid)
        assert torch.equal(la, labels) and sorted(lb.tolist()) == list(range(n))
        moved = [i for i in range(n) if lb[i] != i]
        assert moved, "a random permutation of 6 left every image in place"
        box = x2[moved[0], 0] == lb[moved[0]]  # pixels pasted from the partner image
        for i in range(n):
            # Each image is its own id outside the box and its partner's id inside it.
            torch.testing.assert_close(x2[i], torch.where(box, lb[i], i).float().expand(3, -1, -1))
            # The AU map got the same box from the same partner.
            torch.testing.assert_close(maps2[i], torch.where(box, lb[i] + 10, i + 10).float())
        assert lam == pytest.approx(1 - box.float().mean().item())
        if box.any() and not box.all():
            assert torch.equal(valid2, valid & valid[lb])
    m.eval()
    assert m.prepare_batch(x, labels, maps, valid)[1] is labels


# -- every registered method: 3 training steps, then CAMs -------------------------------------

@pytest.mark.parametrize("lambda_au", [0.0, 4.0])
@pytest.mark.parametrize("name", METHODS.names())
def test_method_trains_and_gives_cams(name: str, lambda_au: float) -> None:
    torch.manual_seed(0)
    m = _build(name)
    layers = (m.headline_layer - 1, m.headline_layer)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x, labels, landmarks = _batch()
    maps, valid = render_au_maps(landmarks, labels, size=(SIZE, SIZE))
    assert valid.sum() >= 5
    m.train()
    for _ in range(3):
        xb, targets, mb, vb = m.prepare_batch(x, labels, maps, valid)
        out = m(xb, labels=labels, layers=layers)
        assert out.logits.shape == (8, 7) and m.headline_layer in out.feats
        attn = {k: layer_attention(out.feats[k]) for k in layers}
        parts = composite_loss(out.logits, targets, attn, mb, vb, lambda_au,
                               extra=out.extra_losses)
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        opt.step()
        assert all(torch.isfinite(v) for v in (parts.total, parts.ce, parts.align))
        assert all(torch.isfinite(v) for v in parts.extra.values())
        assert (parts.align > 0) == (lambda_au > 0)
        if name == "acol":
            assert set(out.extra_losses) == {"acol_b"}
        if name == "cutmix":
            assert isinstance(targets, tuple) and len(targets) == 3
    for p in m.parameters():
        assert torch.isfinite(p).all()

    m.eval()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        out = m(x, layers=layers)
    if name == "acol":
        assert out.extra_losses == {}  # no labels at evaluation, no second-branch loss
    if not m.has_cam:
        with pytest.raises(NotImplementedError):
            m.cams(x, labels)
        return
    cams = m.cams(x, labels)
    assert cams.shape == (8, *out.feats[m.headline_layer].shape[-2:])
    assert torch.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
    assert not cams.requires_grad
    assert _clean(m), "cams() left gradients or hooks behind"
    up = upsample_cams(cams, (SIZE, SIZE))
    assert up.shape == (8, SIZE, SIZE) and up.min() >= 0 and up.max() <= 1


def test_acol_erases_branch_b_input_and_adds_its_loss() -> None:
    m = _build("acol", acol_threshold=0.5).train()
    x, labels, _ = _batch(4)
    out = m(x, labels=labels)
    assert set(out.extra_losses) == {"acol_b"} and out.extra_losses["acol_b"].requires_grad
    assert m(x).extra_losses == {}  # no labels, no loss term
    feat = out.feats[5].detach()
    with torch.no_grad():
        maps_a = m.branch_a(feat)
        erased = m.erase(feat, maps_a, labels)
        high = minmax_normalize(maps_a[torch.arange(4), labels]) >= 0.5
    assert torch.all(erased.permute(1, 0, 2, 3)[:, high] == 0)
    torch.testing.assert_close(erased.permute(1, 0, 2, 3)[:, ~high],
                               feat.permute(1, 0, 2, 3)[:, ~high])


def test_registry_and_errors() -> None:
    with pytest.raises(KeyError, match="valid names"):
        build_method(MethodConfig(method="nope"), ModelConfig())
    m = _build("cam").eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match="class_idx"):
        m.cams(x, torch.tensor([1, 2, 3]))
    torch.testing.assert_close(m.cams(x, 3), m.cams(x, torch.tensor([3, 3])))
