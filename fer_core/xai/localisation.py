"""Localisation of a map against the AU map (the AU map as a ground-truth mask).

Every function takes maps ``(B, h, w)`` (any resolution; upsampled bilinearly to the AU map's
size with :func:`fer_core.cams.upsample_cams`, as CAM-COS does) and AU maps ``(B, H, W)`` in
``[0, 1]``, and returns one score per image ``(B,)``. The *AU region* is the set of pixels whose
AU value is at least ``threshold`` times the image's maximum (:func:`au_region`).

Sources:
- pointing game: Zhang et al., "Top-down neural attention by excitation backprop", ECCV 2016 /
  IJCV 2018 (a hit when the map's maximum lies in the object's region; no tolerance margin here).
- relevance mass and relevance rank accuracy: Arras, Osman & Samek, "CLEVR-XAI: a benchmark
  dataset for the ground truth evaluation of neural network explanations", Information Fusion
  2022.
- AUC: the ROC AUC of the map's values as a detector of region pixels (the Mann–Whitney U
  statistic over average ranks), as in Quantus' ``AUC`` localisation metric.
- top-k IoU: the intersection over union of the map's top ``k`` % pixels with the region, the
  ``Top-K Intersection`` family of Theiner et al. 2022, scored as an IoU.
"""

from __future__ import annotations

import torch

from fer_core.cams import upsample_cams
from fer_core.xai.common import average_ranks

AU_THRESHOLD = 0.5
"""Default region threshold, a fraction of each AU map's maximum. The rendered maps are blurred
ellipses (docs/method.md §4): 0.5 keeps their cores and drops the blur's fringe."""
TOP_PERCENT = 20.0
"""Default ``k`` of :func:`topk_iou`: close to the AU region's share of the synthetic faces at
``AU_THRESHOLD`` (measured 15–25 %), so a perfect map can score near 1."""


def au_region(au_maps: torch.Tensor, threshold: float = AU_THRESHOLD) -> torch.Tensor:
    """Bool region ``(B, H, W)``: pixels with ``A >= threshold · max(A)`` (per image)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"AU-region threshold must be in (0, 1], got {threshold}")
    peak = au_maps.amax(dim=(-2, -1), keepdim=True)
    return (au_maps >= threshold * peak) & (peak > 0)


def _at(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``maps`` brought to the region's size, ``(B, H*W)``."""
    if maps.dim() != 3 or region.dim() != 3 or maps.shape[0] != region.shape[0]:
        raise ValueError(f"maps (B, h, w) and regions (B, H, W) must share B; got "
                         f"{tuple(maps.shape)} and {tuple(region.shape)}")
    return upsample_cams(maps.float(), region.shape[-2:]).flatten(1)


def pointing_game(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """1 where a maximal pixel of the map lies in the region, else 0; a flat map misses."""
    m, r = _at(maps, region), region.flatten(1)
    peak = m.amax(dim=1)
    inside = torch.where(r, m, torch.full_like(m, -1.0)).amax(dim=1)
    flat = peak <= m.amin(dim=1)
    return ((inside >= peak) & ~flat).float()


def relevance_mass(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Share of the map's total value inside the region (0 for an all-zero map)."""
    m, r = _at(maps, region), region.flatten(1)
    total = m.sum(dim=1)
    return torch.where(total > 0, (m * r).sum(dim=1) / total.clamp_min(1e-12), 0.0)


def relevance_rank(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Share of the map's top-``K`` pixels inside the region, ``K`` = the region's size.

    Ties at the ``K``-th value are split by average rank, so a flat map scores the region's
    share of the image (chance), not the scan order.
    """
    m, r = _at(maps, region), region.flatten(1)
    n = m.shape[1]
    size = r.sum(dim=1, keepdim=True).double()
    # A tie group spans positions lo..hi (1 = most salient); the share of them within the top
    # K is each member's weight.
    ranks = (n + 1) - average_ranks(m)
    half = _tie_halfwidth(m)
    lo, hi = ranks - half, ranks + half
    weight = ((size - lo + 1) / (hi - lo + 1)).clamp(0.0, 1.0)
    return ((weight * r).sum(dim=1) / size.squeeze(1).clamp_min(1)).float()


def _tie_halfwidth(m: torch.Tensor) -> torch.Tensor:
    """Half the spread of positions a pixel's tie group occupies, ``(B, N)`` float64."""
    # Count of equal values per pixel, via the sorted order (group sizes).
    ordered, order = m.sort(dim=1)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    b, n = m.shape
    group = starts.long().cumsum(dim=1) - 1 + torch.arange(b, device=m.device)[:, None] * n
    counts = torch.bincount(group.reshape(-1), minlength=b * n).double()
    sizes = counts[group.reshape(-1)].view(b, n)
    half = torch.empty_like(sizes).scatter_(1, order, sizes)
    return (half - 1) / 2


def au_auc(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """ROC AUC of the map's values separating region pixels from the rest (0.5: chance).

    NaN for an image whose region is empty or covers everything (no negatives to rank).
    """
    m, r = _at(maps, region), region.flatten(1)
    pos = r.sum(dim=1).double()
    neg = r.shape[1] - pos
    ranks = average_ranks(m)
    u = (ranks * r).sum(dim=1) - pos * (pos + 1) / 2
    auc = u / (pos * neg)
    return torch.where((pos > 0) & (neg > 0), auc, torch.nan).float()


def topk_iou(maps: torch.Tensor, region: torch.Tensor, percent: float = TOP_PERCENT
             ) -> torch.Tensor:
    """IoU of the map's top ``percent`` % pixels (stable order on ties) with the region."""
    if not 0.0 < percent <= 100.0:
        raise ValueError(f"top-k percent must be in (0, 100], got {percent}")
    m, r = _at(maps, region), region.flatten(1)
    k = max(1, round(m.shape[1] * percent / 100.0))
    top = torch.zeros_like(r)
    top.scatter_(1, m.topk(k, dim=1, sorted=False).indices, True)
    union = (top | r).sum(dim=1).clamp_min(1)
    return ((top & r).sum(dim=1) / union).float()


LOCALISATION = {
    "pointing_game": pointing_game,
    "relevance_mass": relevance_mass,
    "relevance_rank": relevance_rank,
    "au_auc": au_auc,
    "topk_iou": topk_iou,
}
"""Metric name → function ``(maps, region) -> (B,)``; all higher-is-better, chance for random
maps: pointing game ≈ region share, mass ≈ region share, rank ≈ region share, AUC ≈ 0.5, IoU ≈
``k·s / (k + s - k·s)`` for shares ``k`` and ``s``."""


def localisation_scores(maps: torch.Tensor, au_maps: torch.Tensor,
                        threshold: float = AU_THRESHOLD,
                        top_percent: float = TOP_PERCENT) -> dict[str, torch.Tensor]:
    """Every localisation metric of :data:`LOCALISATION`, per image."""
    region = au_region(au_maps, threshold)
    out = {name: fn(maps, region) for name, fn in LOCALISATION.items() if name != "topk_iou"}
    out["topk_iou"] = topk_iou(maps, region, top_percent)
    return out
