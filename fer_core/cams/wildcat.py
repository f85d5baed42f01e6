"""WILDCAT (Durand et al., 2017): multi-map transfer layer + class-wise spatial pooling.

A 1×1 convolution gives ``M`` modality maps per class; a class map is their mean. Its score is
``mean(top-k⁺ values) + α · mean(bottom-k⁻ values)`` over the map's ``h·w`` positions, with
``k⁺ = kmax·h·w`` and ``k⁻ = kmin·h·w`` (rounded, at least 1 when the fraction is > 0; 0
drops the term). The reference code silently dropped the ``k⁻`` term (docs/method.md §6); this is
the published pooling. The CAM is the class map.
"""

from __future__ import annotations

import torch
from torch import nn

from fer_core.cams.base import CamMethod, HeadOutput


def region_count(fraction: float, n: int) -> int:
    """Positions taken for a pooling fraction of ``n`` positions: 0 if ``fraction`` is 0."""
    if fraction <= 0:
        return 0
    return min(n, max(1, round(fraction * n)))


def wildcat_pool(maps: torch.Tensor, kmax: float, kmin: float, alpha: float) -> torch.Tensor:
    """WILDCAT spatial pooling ``(B, K, h, w) -> (B, K)``.

    ``score = mean(top-k_max) + alpha · mean(bottom-k_min)``; see :func:`region_count`.
    """
    flat = maps.flatten(2)
    n = flat.shape[-1]
    k_max, k_min = region_count(kmax, n), region_count(kmin, n)
    if k_max == 0:
        raise ValueError("wildcat_kmax must be > 0: the top regions carry the class score")
    score = flat.topk(k_max, dim=-1).values.mean(dim=-1)
    if k_min > 0 and alpha != 0:
        score = score + alpha * flat.topk(k_min, dim=-1, largest=False).values.mean(dim=-1)
    return score


class WILDCAT(CamMethod):
    """1×1 conv to ``K·M`` modality maps, mean over modalities, WILDCAT pooling."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.modalities = int(self.params.wildcat_modalities)
        self.transfer = nn.Conv2d(self.feat_channels, self.num_classes * self.modalities, 1)

    def class_maps(self, feat: torch.Tensor) -> torch.Tensor:
        maps = self.transfer(feat)
        b, _, h, w = maps.shape
        # Channels are grouped per class: class k owns channels k·M .. k·M + M − 1.
        return maps.view(b, self.num_classes, self.modalities, h, w).mean(dim=2)

    def head(self, feat: torch.Tensor, labels: torch.Tensor | None = None) -> HeadOutput:
        p = self.params
        maps = self.class_maps(feat)
        return wildcat_pool(maps, p.wildcat_kmax, p.wildcat_kmin, p.wildcat_alpha), {}
