"""Tests for fer_core.losses: attention, resizing, alignment term and the composite loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fer_core.losses import (
    LossParts,
    alignment_loss,
    composite_loss,
    cosine_per_sample,
    layer_attention,
    resize_maps,
)


def _blob_maps(b: int, size: int, seed: int = 0) -> torch.Tensor:
    """AU-like maps: a few soft blobs in [0, 1] at random places."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    maps = torch.zeros(b, size, size)
    for i in range(b):
        for _ in range(3):
            cy, cx = torch.randint(0, size, (2,), generator=g).tolist()
            r = size / 8
            blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            maps[i] = torch.maximum(maps[i], blob)
    return maps / maps.amax(dim=(1, 2), keepdim=True)


# --- layer_attention / resize_maps -------------------------------------------------------


def test_layer_attention_is_plain_channel_mean() -> None:
    feat = torch.randn(2, 5, 3, 4)  # negative values must survive: no ReLU
    att = layer_attention(feat)
    assert att.shape == (2, 3, 4)
    torch.testing.assert_close(att, feat.sum(dim=1) / 5)
    assert (att < 0).any()
    with pytest.raises(ValueError, match=r"\(B, C, h, w\)"):
        layer_attention(torch.randn(2, 3, 4))


def test_resize_same_size_is_identity() -> None:
    maps = torch.rand(3, 8, 8)
    assert resize_maps(maps, (8, 8)) is maps


def test_resize_shrink_keeps_small_blob_and_range() -> None:
    maps = torch.zeros(2, 224, 224)
    maps[0, 100:104, 50:54] = 1.0  # a 4×4 blob: plain bilinear to 7×7 could miss it
    maps[1] = 0.25
    out = resize_maps(maps, (7, 7))
    assert out.shape == (2, 7, 7)
    assert out[0].max() > 0.0
    assert out.min() >= 0.0 and out.max() <= 1.0
    torch.testing.assert_close(out[1], torch.full((7, 7), 0.25))  # clamped to its own range
    # Area-like: the blob's mass is about preserved (an area average would keep it exactly).
    assert out[0].sum() * (224 / 7) ** 2 == pytest.approx(16.0, rel=0.2)


def test_resize_upsample_is_clamped_per_map() -> None:
    maps = torch.rand(2, 7, 7) * torch.tensor([1.0, 3.0]).view(2, 1, 1) - 0.5
    out = resize_maps(maps, (30, 30))
    for i in range(2):
        assert out[i].min() >= maps[i].min() and out[i].max() <= maps[i].max()


# --- alignment_loss ----------------------------------------------------------------------


def test_align_zero_when_attention_is_scaled_au_map() -> None:
    au = _blob_maps(4, 16)
    valid = torch.ones(4, dtype=torch.bool)
    scale = torch.tensor([0.5, 2.0, 7.0, 100.0]).view(4, 1, 1)
    loss = alignment_loss({5: au * scale}, au, valid)  # same size: resize is the identity
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    # At another size the attention is compared with A resized the same way.
    small = resize_maps(au, (4, 4))
    loss = alignment_loss({5: small * 3.0, 4: resize_maps(au, (8, 8))}, au, valid)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_align_matches_hand_computed_cosine() -> None:
    au = _blob_maps(3, 8, seed=1)
    att = torch.randn(3, 4, 4)
    valid = torch.tensor([True, False, True])
    a = resize_maps(au, (4, 4)).flatten(1)
    t = att.flatten(1)
    cos = (t * a).sum(1) / (t.norm(dim=1) * a.norm(dim=1))
    expected = ((1 - cos[0]) + (1 - cos[2])) / 2
    torch.testing.assert_close(alignment_loss({5: att}, au, valid), expected)


def test_align_invalid_samples_contribute_nothing() -> None:
    au = _blob_maps(4, 16, seed=2)
    att = torch.randn(4, 4, 4, requires_grad=True)
    valid = torch.tensor([True, False, True, False])
    base = alignment_loss({5: att}, au, valid)
    base.backward()
    assert torch.all(att.grad[~valid] == 0)
    assert torch.all(att.grad[valid].abs().sum(dim=(1, 2)) > 0)

    au2, att2 = au.clone(), att.detach().clone()
    au2[1] = torch.rand(16, 16)
    att2[3] = torch.full((4, 4), float("nan"))  # even garbage in an invalid sample is ignored
    att2[1] = 0.0
    other = alignment_loss({5: att2}, au2, valid)
    assert other.item() == base.item()


def test_align_all_invalid_is_zero_and_backward_works() -> None:
    au = torch.zeros(3, 16, 16)
    att = torch.zeros(3, 4, 4, requires_grad=True)  # zero maps: the cosine's worst case
    loss = alignment_loss({5: att}, au, torch.zeros(3, dtype=torch.bool))
    assert loss.item() == 0.0 and math.isfinite(loss.item())
    loss.backward()
    assert att.grad is not None and torch.all(att.grad == 0)


def test_align_layer_reduce_sum_vs_mean() -> None:
    au = _blob_maps(2, 16, seed=3)
    valid = torch.ones(2, dtype=torch.bool)
    attn = {5: torch.randn(2, 4, 4), 4: torch.randn(2, 8, 8), 3: torch.randn(2, 16, 16)}
    per_layer = [alignment_loss({k: v}, au, valid) for k, v in attn.items()]
    total = alignment_loss(attn, au, valid, layer_reduce="sum")
    mean = alignment_loss(attn, au, valid, layer_reduce="mean")
    torch.testing.assert_close(total, sum(per_layer))
    torch.testing.assert_close(mean, sum(per_layer) / 3)


def test_align_rejects_bad_arguments() -> None:
    au, valid = torch.rand(2, 8, 8), torch.ones(2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"\['mean', 'sum'\]"):
        alignment_loss({5: torch.rand(2, 4, 4)}, au, valid, layer_reduce="max")
    with pytest.raises(ValueError, match="layer_attention"):
        alignment_loss({5: torch.rand(2, 3, 4, 4)}, au, valid)
    with pytest.raises(ValueError, match="empty"):
        alignment_loss({}, au, valid)


def test_cosine_per_sample_identical_and_zero_maps() -> None:
    x = torch.rand(2, 5, 5).half()
    torch.testing.assert_close(cosine_per_sample(x, x), torch.ones(2), atol=1e-3, rtol=0)
    z = torch.zeros(2, 5, 5)
    assert torch.all(cosine_per_sample(z, x.float()) == 0)


# --- composite_loss ----------------------------------------------------------------------


class _Tiny(torch.nn.Module):
    """Two branches: ``head`` feeds the logits, ``side`` is tapped but never classified."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.side = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 7)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        f5 = self.head(x)
        f4 = self.side(x)
        logits = self.fc(f5.mean(dim=(2, 3)))
        return logits, {5: layer_attention(f5), 4: layer_attention(f4)}


def _batch(b: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(b, 3, 8, 8)
    labels = torch.tensor([1, 0, 3, 6])[:b]
    au = _blob_maps(b, 32, seed=4)
    valid = labels != 0
    return x, labels, au, valid


def test_lambda_zero_is_plain_cross_entropy_and_no_align_gradient() -> None:
    model = _Tiny()
    x, labels, au, valid = _batch()
    logits, attn = model(x)
    parts = composite_loss(logits, labels, attn, au, valid, lambda_au=0.0)
    assert isinstance(parts, LossParts)
    assert torch.equal(parts.total, F.cross_entropy(logits, labels))
    assert parts.align.item() == 0.0
    parts.total.backward()
    # The tapped side branch feeds no logit: without the alignment term it gets no gradient.
    assert model.side.weight.grad is None
    assert model.head.weight.grad is not None
    # The baseline needs no AU input at all.
    parts = composite_loss(logits.detach(), labels, None, None, None, lambda_au=0)
    assert parts.total.item() == pytest.approx(F.cross_entropy(logits, labels).item())


def test_positive_lambda_sends_gradient_through_align() -> None:
    model = _Tiny()
    x, labels, au, valid = _batch()
    logits, attn = model(x)
    parts = composite_loss(logits, labels, attn, au, valid, lambda_au=4.0)
    expected_align = alignment_loss(attn, au, valid)
    torch.testing.assert_close(parts.align, expected_align)
    torch.testing.assert_close(parts.total, parts.ce + 4.0 * expected_align)
    parts.total.backward()
    assert model.side.weight.grad is not None
    assert model.side.weight.grad.abs().sum() > 0


def test_layer_reduce_passed_through() -> None:
    model = _Tiny()
    x, labels, au, valid = _batch()
    logits, attn = model(x)
    mean = composite_loss(logits, labels, attn, au, valid, 1.0, layer_reduce="mean")
    total = composite_loss(logits, labels, attn, au, valid, 1.0, layer_reduce="sum")
    torch.testing.assert_close(total.align, 2 * mean.align)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_bad_lambda_raises(bad: float) -> None:
    logits, labels = torch.randn(2, 7), torch.tensor([1, 2])
    with pytest.raises(ValueError, match="lambda_au must be finite and >= 0"):
        composite_loss(logits, labels, None, None, None, lambda_au=bad)


def test_positive_lambda_without_maps_raises() -> None:
    with pytest.raises(ValueError, match="lambda_au=0"):
        composite_loss(torch.randn(2, 7), torch.tensor([1, 2]), None, None, None, 1.0)


def test_mixed_targets_match_hand_written_mix() -> None:
    logits = torch.randn(4, 7)
    a, b = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 0, 1])
    lam = 0.3
    parts = composite_loss(logits, (a, b, lam), None, None, None, lambda_au=0)
    expected = lam * F.cross_entropy(logits, a) + (1 - lam) * F.cross_entropy(logits, b)
    torch.testing.assert_close(parts.total, expected)
    # Soft targets (B, K) are plain F.cross_entropy probabilities.
    soft = lam * F.one_hot(a, 7).float() + (1 - lam) * F.one_hot(b, 7).float()
    torch.testing.assert_close(composite_loss(logits, soft, None, None, None, 0).total, expected)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        composite_loss(logits, (a, b, 1.5), None, None, None, lambda_au=0)


def test_extra_terms_and_as_floats() -> None:
    logits, labels = torch.randn(2, 7), torch.tensor([1, 2])
    au, valid = _blob_maps(2, 8), torch.tensor([True, True])
    attn = {5: torch.rand(2, 4, 4)}
    extra = {"branch_b": torch.tensor(0.25)}
    parts = composite_loss(logits, labels, attn, au, valid, 2.0, extra=extra)
    torch.testing.assert_close(parts.total, parts.ce + 2.0 * parts.align + 0.25)
    logged = parts.as_floats()
    assert set(logged) == {"loss", "loss_ce", "loss_align", "loss_branch_b"}
    assert all(type(v) is float for v in logged.values())
    assert logged["loss_branch_b"] == 0.25
    assert logged["loss"] == pytest.approx(parts.total.item())
