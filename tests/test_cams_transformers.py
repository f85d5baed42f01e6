"""TS-CAM and APViT: shapes, CAM formula, attentive pooling, training with the AU loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import fer_core.cams.apvit  # noqa: F401  (registers "apvit")
import fer_core.cams.tscam  # noqa: F401  (registers "tscam")
from fer_core.au import render_au_maps
from fer_core.cams import METHODS, build_method
from fer_core.config import MethodConfig, ModelConfig
from fer_core.data import build_dataset
from fer_core.losses import composite_loss, layer_attention
from fer_core.models.apvit_net import ApViTNet, PoolingBlock, keep_top_tokens

DEIT = "deit_tiny_patch16_224"


def tscam(img_size: int = 64):
    return build_method(MethodConfig(method="tscam"), ModelConfig(backbone=DEIT),
                        img_size=img_size)


def apvit(img_size: int = 64, **method_kw):
    return build_method(MethodConfig(method="apvit", **method_kw),
                        ModelConfig(backbone="ir_tiny"), img_size=img_size)


def synthetic_batch(size: int, n: int = 4):
    """Real synthetic faces, their labels and AU maps rendered from their landmarks."""
    ds = build_dataset("synthetic", split="train", root=None, size=size, n=max(n, 7), seed=0)
    samples = [ds[i] for i in range(n)]
    x = torch.stack([torch.from_numpy(s["image"]).permute(2, 0, 1) for s in samples])
    x = (x.float() / 255.0 - 0.5) / 0.25
    labels = torch.tensor([s["label"] for s in samples])
    landmarks = torch.stack([torch.as_tensor(s["landmarks"]) for s in samples])
    maps, valid = render_au_maps(landmarks, labels, size=(size, size))
    return x, labels, maps, valid


def test_both_registered():
    assert "tscam" in METHODS and "apvit" in METHODS
    assert METHODS.load("tscam").has_cam and not METHODS.load("apvit").has_cam


# -- TS-CAM ------------------------------------------------------------------------------------
def test_tscam_shapes_and_cams():
    torch.manual_seed(0)
    m = tscam(64)
    x = torch.randn(3, 3, 64, 64)
    out = m(x, layers=(1, 6))
    assert out.logits.shape == (3, 7)
    assert set(out.feats) == {1, 6, 12} and m.headline_layer == 12
    assert all(f.shape == (3, 192, 4, 4) for f in out.feats.values())
    assert out.extra_losses == {}
    m.eval()
    for idx in (torch.tensor([0, 3, 6]), None):
        cams = m.cams(x, idx)
        assert cams.shape == (3, 4, 4) and not cams.requires_grad
        assert torch.isfinite(cams).all() and cams.min() >= 0 and cams.max() <= 1
        assert torch.allclose(cams.amax(dim=(1, 2)), torch.ones(3))


def _reference_tscam(m, x: torch.Tensor, class_idx: torch.Tensor) -> torch.Tensor:
    """TS-CAM written out independently: explicit blocks, full attention matrices."""
    vit = m.backbone.model
    tokens = vit.norm_pre(vit._pos_embed(vit.patch_embed(x)))
    attn_sum = 0.0
    for blk in vit.blocks:
        a = blk.attn
        b, n, c = tokens.shape
        qkv = a.qkv(blk.norm1(tokens)).reshape(b, n, 3, a.num_heads, c // a.num_heads)
        q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)
        probs = torch.softmax(q @ k.transpose(-2, -1) / (c // a.num_heads) ** 0.5, dim=-1)
        attn_sum = attn_sum + probs.mean(dim=1)[:, 0, 1:]  # cls row, patch columns
        tokens = blk(tokens)
    patches = vit.norm(tokens)[:, 1:]
    side = int(patches.shape[1] ** 0.5)
    grid = patches.transpose(1, 2).reshape(x.shape[0], -1, side, side)
    semantic = F.conv2d(grid, m.semantic.weight, m.semantic.bias, padding=1)
    cam = semantic[torch.arange(x.shape[0]), class_idx] * attn_sum.reshape(-1, side, side)
    lo, hi = cam.amin(dim=(1, 2), keepdim=True), cam.amax(dim=(1, 2), keepdim=True)
    return (cam - lo) / (hi - lo)


def test_tscam_cam_is_semantic_map_times_attention_sum():
    torch.manual_seed(1)
    m = tscam(80).double().eval()
    x = torch.randn(2, 3, 80, 80, dtype=torch.float64)
    idx = torch.tensor([2, 5])
    with torch.no_grad():
        expected = _reference_tscam(m, x, idx)
        logits = m(x).logits
    torch.testing.assert_close(m.cams(x, idx), expected, atol=1e-10, rtol=1e-8)
    # class_idx=None → the predicted class.
    torch.testing.assert_close(m.cams(x), m.cams(x, logits.argmax(1)))
    # The hooks are gone after the call.
    assert all(not blk.attn.qkv._forward_hooks for blk in m.backbone.model.blocks)


def test_tscam_logits_are_mean_of_semantic_maps():
    m = tscam(64).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = m(x)
        maps = m.class_maps(out.feats[12])
    torch.testing.assert_close(out.logits, maps.mean(dim=(2, 3)))


def test_tscam_rejects_cnn_backbone():
    with pytest.raises(ValueError, match="ViT/DeiT"):
        build_method(MethodConfig(method="tscam"), ModelConfig(backbone="resnet18"))


# -- APViT -------------------------------------------------------------------------------------
def test_apvit_layers_and_logits_at_112():
    torch.manual_seed(0)
    m = apvit(112)
    out = m(torch.randn(2, 3, 112, 112), layers=(1, 2, 3))
    assert out.logits.shape == (2, 7) and out.extra_losses == {}
    assert {k: tuple(v.shape[1:]) for k, v in out.feats.items()} == {
        1: (64, 112, 112), 2: (64, 56, 56), 3: (128, 28, 28), 4: (256, 14, 14)
    }
    assert m.headline_layer == 4
    with pytest.raises(ValueError, match="valid layers are 1..4"):
        m(torch.randn(1, 3, 112, 112), layers=(5,))


def test_apvit_has_no_cam():
    m = apvit(64)
    assert m.has_cam is False
    with pytest.raises(NotImplementedError, match="APViT has no CAM"):
        m.cams(torch.randn(1, 3, 64, 64), 1)


def test_apvit_rejects_non_ir_backbone():
    with pytest.raises(ValueError, match="ir50"):
        build_method(MethodConfig(method="apvit"), ModelConfig(backbone="resnet18"))


def test_keep_top_tokens_keeps_highest_in_order():
    tokens = torch.arange(6.0).reshape(1, 6, 1).expand(2, 6, 3)
    scores = torch.tensor([[0.1, 5.0, 0.2, 4.0, 3.0, 0.0], [9.0, 0.0, 0.0, 0.0, 8.0, 7.0]])
    kept = keep_top_tokens(tokens, scores, 3)
    assert kept[..., 0].tolist() == [[1.0, 3.0, 4.0], [0.0, 4.0, 5.0]]
    assert keep_top_tokens(tokens, scores, 6) is tokens


def test_token_pooling_keeps_top_cls_attention_tokens():
    torch.manual_seed(0)
    blk = PoolingBlock(dim=16, num_heads=2, mlp_ratio=2.0, keep_rate=0.5).eval()
    x = torch.randn(2, 11, 16)  # class token + 10 patches → keeps int(10 · 0.5) = 5
    with torch.no_grad():
        out = blk(x)
        # Independent ranking: pre-softmax class-token logits summed over heads.
        qkv = blk.attn.qkv(blk.norm1(x)).reshape(2, 11, 3, 2, 8)
        q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)
        scores = ((q @ k.transpose(-2, -1)) * 8**-0.5)[:, :, 0, 1:].sum(1)
        keep = scores.topk(5, dim=1).indices.sort(dim=1).values + 1
        after_attn = x + blk.attn(blk.norm1(x))[0]
        pooled = torch.cat([after_attn[:, :1], after_attn.gather(
            1, keep.unsqueeze(-1).expand(-1, -1, 16))], dim=1)
        expected = pooled + blk.mlp(blk.norm2(pooled))
    assert out.shape == (2, 6, 16)
    torch.testing.assert_close(out, expected)


def test_apvit_token_counts_through_the_network():
    """APP keeps k patches, then ATP keeps int(r·n) in each block of the second half."""
    torch.manual_seed(0)
    m = apvit(112)  # 14×14 = 196 patches, paper defaults k=160, r=0.9, depth 8
    net = m.backbone.net
    seen: list[int] = []
    handles = [blk.register_forward_hook(lambda _m, _i, o: seen.append(o.shape[1] - 1))
               for blk in net.blocks]
    try:
        m(torch.randn(2, 3, 112, 112))
    finally:
        for h in handles:
            h.remove()
    assert seen == [160, 160, 160, 160, 144, 129, 116, 104]
    assert net.token_counts() == [160, *seen]
    # A k above the grid keeps every patch (64 at 64 px).
    assert apvit(64).backbone.net.token_counts()[0] == 64
    assert apvit(112, apvit_depth=2, apvit_k=50, apvit_r=0.5).backbone.net.token_counts() == [
        50, 50, 25
    ]


def test_apvit_patch_pooling_keeps_highest_abs_sum_patches():
    torch.manual_seed(0)
    net = ApViTNet(num_classes=7, img_size=64, ir_units=(1, 1, 1), depth=1, keep_k=5,
                   keep_r=1.0, embed_dim=16, num_heads=2, mlp_ratio=2.0).eval()
    x = torch.randn(2, 3, 64, 64)
    entering: list[torch.Tensor] = []
    h = net.blocks[0].register_forward_pre_hook(lambda _m, args: entering.append(args[0]))
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        h.remove()
    proj = net.proj(out.ir_feats[-1])
    torch.testing.assert_close(out.patch_scores, proj.abs().sum(1))
    keep = out.patch_scores.flatten(1).topk(5, dim=1).indices.sort(dim=1).values
    tokens = proj.flatten(2).transpose(1, 2) + net.pos_embed
    expected = tokens.gather(1, keep.unsqueeze(-1).expand(-1, -1, 16))
    torch.testing.assert_close(entering[0][:, 1:], expected)


@pytest.mark.slow(reason="builds and runs the full IR-50 APViT")
def test_apvit_ir50_default_network():
    m = build_method(MethodConfig(method="apvit"), ModelConfig(backbone="ir50"), img_size=112)
    n_params = sum(p.numel() for p in m.parameters())
    assert 60e6 < n_params < 70e6  # IR-50 stages 1–3 + ViT 768×8 blocks: ~65 M as in APViT
    assert [len(s) for s in m.backbone.net.ir.stages] == [3, 4, 14]
    with torch.no_grad():
        out = m.eval()(torch.randn(1, 3, 112, 112), layers=(4,))
    assert out.logits.shape == (1, 7) and out.feats[4].shape == (1, 256, 14, 14)


# -- training with the AU loss -----------------------------------------------------------------
CASES = {"tscam": (tscam, 64, (12, 6)), "apvit": (apvit, 64, (4, 3))}


def first_layer_weight(m) -> torch.Tensor:
    """The weight that sees the image first (patch embedding / IR stem conv)."""
    if m.backbone.is_transformer:
        return m.backbone.model.patch_embed.proj.weight
    return m.backbone.net.ir.stem[0].weight


def _train_steps(name: str, lambda_au: float, device: str, amp: bool = False) -> list[float]:
    build, size, layers = CASES[name]
    torch.manual_seed(0)
    m = build(size).to(device).train()
    x, labels, maps, valid = (t.to(device) for t in synthetic_batch(size))
    assert valid.any()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    first = [p.detach().clone() for p in m.parameters()]
    totals = []
    # A moderate initial scale: fp16 overflow would only make the scaler skip steps.
    scaler = torch.amp.GradScaler(device, init_scale=1024.0, enabled=amp)
    for _ in range(3):
        with torch.autocast(device, enabled=amp):  # as the engine runs on CUDA
            out = m(x, labels=labels, layers=layers)
            attn = {layer: layer_attention(out.feats[layer]) for layer in layers}
            parts = composite_loss(out.logits, labels, attn, maps, valid, lambda_au,
                                   extra=out.extra_losses)
        opt.zero_grad()
        scaler.scale(parts.total).backward()
        scaler.unscale_(opt)
        if not amp:  # under AMP the scaler, not the test, handles overflowing steps
            assert all(torch.isfinite(p.grad).all() for p in m.parameters()
                       if p.grad is not None)
        scaler.step(opt)
        scaler.update()
        totals.append(float(parts.total.detach()))
        if lambda_au > 0:
            assert 0 < float(parts.align.detach()) <= 2
    assert all(torch.isfinite(torch.tensor(totals)))
    assert all(torch.isfinite(p).all() for p in m.parameters())
    assert any(not torch.equal(a, b.detach()) for a, b in zip(first, m.parameters(), strict=True))
    if m.has_cam:
        m.eval()
        with torch.autocast(device, enabled=amp):
            cams = m.cams(x, labels)
        assert cams.shape == (x.shape[0], *out.feats[m.headline_layer].shape[-2:])
        assert torch.isfinite(cams).all() and 0 <= cams.min() and cams.max() <= 1
    return totals


@pytest.mark.parametrize("lambda_au", [0.0, 4.0])
@pytest.mark.parametrize("name", sorted(CASES))
def test_three_sgd_steps_with_and_without_au_loss(name: str, lambda_au: float):
    totals = _train_steps(name, lambda_au, "cpu")
    assert len(totals) == 3 and totals[-1] < totals[0]  # three steps on one batch: it learns


@pytest.mark.parametrize("name", sorted(CASES))
def test_alignment_gradient_reaches_first_layer(name: str):
    """With λ > 0 the AU term alone moves the earliest parameters (through the taps)."""
    build, size, layers = CASES[name]
    torch.manual_seed(0)
    m = build(size).train()
    x, labels, maps, valid = synthetic_batch(size)
    out = m(x, layers=(1,))
    parts = composite_loss(out.logits * 0, labels, {1: layer_attention(out.feats[1])}, maps,
                           valid, lambda_au=1.0)
    parts.total.backward()
    assert float(parts.ce.detach()) > 0 and float(parts.align.detach()) > 0
    assert first_layer_weight(m).grad.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_three_sgd_steps_on_cuda(name: str, amp: bool):
    totals = _train_steps(name, 4.0, "cuda", amp=amp)
    assert len(totals) == 3 and totals[-1] < totals[0]  # three steps on one batch: it learns

