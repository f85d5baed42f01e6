"""Where a map looks, by AU region of the codebook: brows, eyes, cheeks, nose, lip corners,
mouth (docs/method.md §7.1, the report's per-region figure).

Each region is the union of the codebook's ellipses (``fer_core.au.codebook.AU_REGIONS``) of
its AUs, drawn hard at the map's resolution from each face's landmarks, for every AU whatever
the expression: the question is where the map's mass goes, not whether it meets the class's
own AUs. Regions may overlap (an eye and a cheek ellipse); ``elsewhere`` is the share outside
all of them.
"""

from __future__ import annotations

import torch

from fer_core.au.codebook import MAX_ELLIPSES
from fer_core.au.render import resolve_ellipses
from fer_core.cams import upsample_cams

REGIONS: dict[str, tuple[int, ...]] = {
    "brows": (0, 1, 2), "eyes": (3, 5, 17), "cheeks": (4,), "nose": (6,),
    "lip corners": (8, 9, 10, 12), "mouth": (7, 11, 13, 14, 15, 16, 18, 19),
}
"""Region name → AU ids (0-based, ``fer_core.au.codebook.AU_NAMES``)."""
ELSEWHERE = "elsewhere"


def region_masks(landmarks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bool ``(B, len(REGIONS), H, W)``: pixels inside any ellipse of each region's AUs."""
    centre, half = resolve_ellipses(landmarks.float(), size)  # (B, 2, E) each
    h, w = size
    ys = torch.arange(h, device=landmarks.device, dtype=torch.float32)[:, None]
    xs = torch.arange(w, device=landmarks.device, dtype=torch.float32)[None, :]
    dx = (xs[None, None] - centre[:, 0, :, None, None]) / half[:, 0, :, None, None].clamp_min(1e-6)
    dy = (ys[None, None] - centre[:, 1, :, None, None]) / half[:, 1, :, None, None].clamp_min(1e-6)
    inside = dx**2 + dy**2 <= 1.0  # (B, E, H, W)
    masks = []
    for aus in REGIONS.values():
        ellipses = [au * MAX_ELLIPSES + k for au in aus for k in range(MAX_ELLIPSES)]
        masks.append(inside[:, ellipses].any(dim=1))
    return torch.stack(masks, dim=1)


def region_shares(maps: torch.Tensor, landmarks: torch.Tensor,
                  image_size: tuple[int, int]) -> torch.Tensor:
    """``(B, len(REGIONS) + 1)``: the share of each map's mass (``(B, h, w)``, upsampled to
    ``image_size``, the landmarks' frame) inside each region, then ``elsewhere``."""
    maps = upsample_cams(maps.float(), image_size)
    masks = region_masks(landmarks, image_size)
    total = maps.flatten(1).sum(1).clamp_min(1e-12)
    inside = (maps[:, None] * masks).flatten(2).sum(2) / total[:, None]
    outside = (maps * ~masks.any(dim=1)).flatten(1).sum(1) / total
    return torch.cat([inside, outside[:, None]], dim=1)
