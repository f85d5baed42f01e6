"""Training losses: cross-entropy plus the layer-wise AU alignment term (docs/method.md §5).

The alignment term compares each tapped layer's attention ``T_l`` (channel mean of its feature
map) with the AU map ``A`` resized to ``T_l``'s grid, through a per-sample cosine::

    align_l = mean over valid samples of (1 - cos(flatten(T_l), flatten(A)))
    align   = mean_l align_l      (layer_reduce="mean", the reference code)
            | sum_l  align_l      (layer_reduce="sum",  the paper's formula)
    total   = CE + lambda_au * align + sum(extra)

Everything here takes tensors only; rendering ``A`` and tapping layers live elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

COS_EPS = 1e-8
"""Epsilon of the per-sample cosine (as in ``F.cosine_similarity`` and the reference code)."""

LAYER_REDUCTIONS: tuple[str, ...] = ("mean", "sum")
"""Valid values of ``layer_reduce``."""

MixedLabels = tuple[torch.Tensor, torch.Tensor, float | torch.Tensor]
"""CutMix targets: ``(labels_a, labels_b, lam_mix)``, CE = lam·CE(a) + (1 − lam)·CE(b)."""


def layer_attention(feat: torch.Tensor) -> torch.Tensor:
    """Attention map of one layer: the mean over channels of its features.

    Args:
        feat: features ``(B, C, h, w)``.

    Returns:
        ``(B, h, w)``, same dtype and device. No ReLU and no normalisation, as in the paper:
        the cosine is scale-invariant, and a ReLU would hide negative evidence from the loss.
    """
    if feat.dim() != 4:
        raise ValueError(f"layer_attention expects features (B, C, h, w), got {tuple(feat.shape)}")
    return feat.mean(dim=1)


def resize_maps(maps: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Resize a batch of single-channel maps ``(B, H, W)`` to ``(B, h, w)``.

    Bilinear with antialiasing: when shrinking (e.g. 224 → 7) the filter widens with the scale
    factor and behaves like area averaging, so a small AU blob still leaves a trace instead of
    falling between the sampled pixels. The result is clamped per map to the input map's own
    ``[min, max]``, so an AU map stays in ``[0, 1]`` and a CAM keeps its range. Same size →
    the input is returned unchanged. Differentiable (used on attention maps in metrics).
    """
    if maps.dim() != 3:
        raise ValueError(f"resize_maps expects maps (B, H, W), got {tuple(maps.shape)}")
    size = (int(size[0]), int(size[1]))
    if tuple(maps.shape[-2:]) == size:
        return maps
    if not maps.is_floating_point():
        maps = maps.float()
    out = F.interpolate(
        maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False, antialias=True
    ).squeeze(1)
    lo = maps.amin(dim=(1, 2), keepdim=True)
    hi = maps.amax(dim=(1, 2), keepdim=True)
    return torch.clamp(out, min=lo, max=hi)


def cosine_per_sample(x: torch.Tensor, y: torch.Tensor, eps: float = COS_EPS) -> torch.Tensor:
    """Cosine similarity between ``x[i]`` and ``y[i]`` flattened, for each sample ``i``.

    Args:
        x, y: tensors with the same shape ``(B, ...)``.
        eps: lower bound on each norm, so an all-zero map gives 0 rather than NaN.

    Returns:
        ``(B,)`` float32 (or float64 if an input is float64). Half-precision inputs are
        promoted, because squared norms of 224×224 maps overflow float16.
    """
    if x.shape != y.shape:
        raise ValueError(f"cosine_per_sample: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    return F.cosine_similarity(x.flatten(1).to(dtype), y.flatten(1).to(dtype), dim=1, eps=eps)


def _check_batch(au_maps: torch.Tensor, valid: torch.Tensor) -> None:
    if au_maps.dim() != 3:
        raise ValueError(f"au_maps must be (B, H, W), got {tuple(au_maps.shape)}")
    if valid.dim() != 1 or valid.shape[0] != au_maps.shape[0]:
        raise ValueError(f"valid must be (B,) with B={au_maps.shape[0]}, got {tuple(valid.shape)}")


def alignment_loss(
    attn: Mapping[int, torch.Tensor],
    au_maps: torch.Tensor,
    valid: torch.Tensor,
    layer_reduce: str = "mean",
) -> torch.Tensor:
    """Alignment between layer attentions and the AU maps (docs/method.md §5).

    Args:
        attn: ``{layer: T_l (B, h_l, w_l)}``, e.g. from :func:`layer_attention`.
        au_maps: ``A`` ``(B, H, W)``; resized to each ``T_l``'s size with :func:`resize_maps`.
        valid: ``(B,)`` bool; invalid samples contribute nothing, neither value nor gradient.
        layer_reduce: ``"mean"`` (reference code) or ``"sum"`` (paper) over layers.

    Returns:
        A scalar float32 tensor. With no valid sample it is 0, still attached to the graph of
        ``attn`` (so ``backward()`` works and yields zero gradients), never NaN.
    """
    if layer_reduce not in LAYER_REDUCTIONS:
        raise ValueError(f"layer_reduce={layer_reduce!r} is not one of {list(LAYER_REDUCTIONS)}")
    if not attn:
        raise ValueError("alignment_loss needs at least one layer in attn; got an empty mapping")
    _check_batch(au_maps, valid)
    valid = valid.to(device=au_maps.device, dtype=torch.bool)
    # Dividing by max(n_valid, 1) keeps the all-invalid batch at exactly 0 without a host sync.
    n_valid = valid.sum().clamp_min(1)
    row_mask = valid.unsqueeze(1)

    resized: dict[tuple[int, int], torch.Tensor] = {}  # layers sharing a grid share one resize
    terms = []
    for layer, t in attn.items():
        if t.dim() != 3 or t.shape[0] != au_maps.shape[0]:
            raise ValueError(
                f"attn[{layer}] must be (B, h, w) with B={au_maps.shape[0]}, got "
                f"{tuple(t.shape)}; apply layer_attention to (B, C, h, w) features first"
            )
        size = (int(t.shape[-2]), int(t.shape[-1]))
        if size not in resized:
            resized[size] = resize_maps(au_maps, size).flatten(1)
        a = resized[size]
        t = t.flatten(1)
        # Invalid rows are swapped for a constant before the cosine: torch.where routes their
        # gradient to exactly zero, whereas multiplying by a 0 weight would still turn a
        # non-finite local derivative (e.g. zero or NaN maps) into NaN.
        t = torch.where(row_mask, t.float(), torch.ones_like(t, dtype=torch.float32))
        a = torch.where(row_mask, a.float(), torch.ones_like(a, dtype=torch.float32))
        per_sample = torch.where(valid, 1.0 - cosine_per_sample(t, a), 0.0)
        terms.append(per_sample.sum() / n_valid)

    stacked = torch.stack(terms)
    return stacked.mean() if layer_reduce == "mean" else stacked.sum()


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor | MixedLabels) -> torch.Tensor:
    if isinstance(labels, torch.Tensor):
        # Class indices (B,) or class probabilities (B, K): F.cross_entropy handles both.
        return F.cross_entropy(logits, labels)
    if not (isinstance(labels, tuple) and len(labels) == 3):
        raise ValueError(
            "labels must be a tensor (B,) / (B, K) or a CutMix tuple (labels_a, labels_b, lam_mix)"
        )
    labels_a, labels_b, lam = labels
    # Only a python number is checked: reading a device tensor back would cost a sync.
    if isinstance(lam, (int, float)) and not 0.0 <= lam <= 1.0:
        raise ValueError(f"CutMix lam_mix must be in [0, 1], got {lam}")
    lam_t = torch.as_tensor(lam, dtype=torch.float32, device=logits.device)
    ce_a = F.cross_entropy(logits, labels_a, reduction="none")
    ce_b = F.cross_entropy(logits, labels_b, reduction="none")
    # A per-sample lam (B,) broadcasts the same way as a scalar one.
    return (lam_t * ce_a + (1.0 - lam_t) * ce_b).mean()


@dataclass
class LossParts:
    """The pieces of the training loss; all tensors, ``total`` is the one to backpropagate."""

    total: torch.Tensor
    ce: torch.Tensor
    align: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def as_floats(self) -> dict[str, float]:
        """Python floats for logging: ``loss``, ``loss_ce``, ``loss_align``, ``loss_<name>``."""
        keys = ["loss", "loss_ce", "loss_align", *(f"loss_{k}" for k in self.extra)]
        tensors = [self.total, self.ce, self.align, *self.extra.values()]
        # One stacked transfer instead of one device sync per value.
        values = torch.stack([t.detach().float().reshape(()).cpu() for t in tensors]).tolist()
        return dict(zip(keys, values, strict=True))


def composite_loss(
    logits: torch.Tensor,
    labels: torch.Tensor | MixedLabels,
    attn: Mapping[int, torch.Tensor] | None,
    au_maps: torch.Tensor | None,
    valid: torch.Tensor | None,
    lambda_au: float,
    layer_reduce: str = "mean",
    extra: Mapping[str, torch.Tensor] | None = None,
) -> LossParts:
    """``total = CE + lambda_au · align + Σ extra`` (docs/method.md §5).

    Args:
        logits: ``(B, K)``.
        labels: ``(B,)`` class ids, ``(B, K)`` class probabilities, or a CutMix tuple
            ``(labels_a, labels_b, lam_mix)`` giving ``lam·CE(a) + (1 − lam)·CE(b)``
            (``lam_mix`` a float, a 0-d tensor or a per-sample ``(B,)`` tensor).
        attn, au_maps, valid, layer_reduce: as in :func:`alignment_loss`; may be ``None``
            when ``lambda_au == 0``.
        lambda_au: weight of the alignment term, finite and ``>= 0``. At 0 the alignment term
            is not computed at all (reported as 0), so the baseline costs nothing extra.
        extra: a method's own scalar loss terms (e.g. ACoL's second branch), added as they are.

    Returns:
        :class:`LossParts`.
    """
    lam = float(lambda_au)
    if not math.isfinite(lam) or lam < 0.0:
        raise ValueError(
            f"lambda_au must be finite and >= 0, got {lambda_au!r}; use 0 for the baseline "
            "without AU guidance or a positive weight (the paper searched 1..20)"
        )
    if layer_reduce not in LAYER_REDUCTIONS:
        raise ValueError(f"layer_reduce={layer_reduce!r} is not one of {list(LAYER_REDUCTIONS)}")
    ce = _cross_entropy(logits, labels)
    total = ce
    if lam > 0.0:
        if attn is None or au_maps is None or valid is None:
            raise ValueError(
                f"lambda_au={lam} > 0 needs attn, au_maps and valid; pass them or set lambda_au=0"
            )
        align = alignment_loss(attn, au_maps, valid, layer_reduce=layer_reduce)
        total = total + lam * align
    else:
        align = ce.new_zeros(()).detach()
    extra = dict(extra or {})
    for name, value in extra.items():
        if value.numel() != 1:
            raise ValueError(f"extra loss {name!r} must be a scalar, got {tuple(value.shape)}")
        total = total + value.reshape(())
    return LossParts(total=total, ce=ce, align=align, extra=extra)


__all__ = [
    "COS_EPS",
    "LAYER_REDUCTIONS",
    "LossParts",
    "MixedLabels",
    "alignment_loss",
    "composite_loss",
    "cosine_per_sample",
    "layer_attention",
    "resize_maps",
]
