"""ROAD: RemOve And Debias (Rong, Leemann, Borisov, Kasneci & Kasneci, "A consistent and
efficient evaluation strategy for attribution methods", ICML 2022).

Removing pixels leaves a mask shape the model can read (the "class information leakage" the
paper measures); ROAD fills removed pixels by *noisy linear imputation* instead: each removed
pixel is the weighted mean of its 8 neighbours (weight 1/6 for the 4 nearest, 1/12 for the
diagonals, only neighbours inside the image count), solved jointly over all removed pixels, plus
Gaussian noise. Scores, per image, averaged over removal percentiles:

- MoRF: class probability after removing the most relevant ``100 − p`` % (lower is better);
- LeRF: after removing the least relevant ``100 − p`` % (higher is better);
- ``road = (LeRF − MoRF) / 2`` (higher is better), pytorch-grad-cam's ``ROADCombined`` (its
  differences to the unperturbed score cancel in the difference).

The thresholds follow pytorch-grad-cam: a pixel is removed (MoRF) when its map value is at least
the map's ``p``-th percentile (linear interpolation), LeRF the same on ``1 − map``. The linear
system is solved here with batched conjugate gradients on the device (the reference code builds a
sparse matrix per image for ``scipy.sparse.linalg.spsolve`` on the CPU); the test compares both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fer_core.cams import upsample_cams
from fer_core.xai.common import ProbFn, class_probability

PERCENTILES: tuple[float, ...] = (20.0, 40.0, 60.0, 80.0)
"""Default percentiles: removing 80, 60, 40 and 20 % of the pixels (2 forwards each)."""
NOISE = 0.01
"""Standard deviation of the imputation noise, in normalised input units (the reference's)."""
CG_TOL = 1e-5
"""Relative residual at which the imputation stops (float32: ~1e-6 of the pixel range)."""
CG_MAX_ITER = 500

_NEIGHBOURS = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]])


def _neighbour_sum(z: torch.Tensor) -> torch.Tensor:
    """Weighted sum of each pixel's in-image neighbours, ``(N, 1, H, W)`` (zero padding)."""
    return F.conv2d(z, _NEIGHBOURS.to(z.device, z.dtype).view(1, 1, 3, 3), padding=1)


def impute(x: torch.Tensor, removed: torch.Tensor, noise: float = NOISE,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Noisy linear imputation of the ``removed`` pixels of ``x``.

    Args:
        x: ``(B, C, H, W)`` images.
        removed: ``(B, H, W)`` bool, the pixels to fill.
        noise: standard deviation of the noise added to filled pixels (0: none).
        generator: CPU generator of the noise (reproducible on any device).
    """
    b, c, h, w = x.shape
    u = removed.to(torch.float32).unsqueeze(1).expand(b, c, h, w).reshape(b * c, 1, h, w)
    v = x.to(torch.float32).reshape(b * c, 1, h, w)
    weights = _neighbour_sum(torch.ones_like(u[:1]))  # in-image neighbour weight per pixel

    def operator(z: torch.Tensor) -> torch.Tensor:
        # s_i z_i − Σ_j w_ij z_j over removed i, j: symmetric and positive definite as long
        # as every removed region touches a kept pixel.
        return u * (weights * z - _neighbour_sum(u * z))

    rhs = u * _neighbour_sum((1 - u) * v)
    solution = _conjugate_gradient(operator, rhs)
    filled = torch.where(u > 0, solution, v).reshape(b, c, h, w).to(x.dtype)
    if noise > 0:
        eps = torch.randn(filled.shape, generator=generator, dtype=torch.float32)
        filled = filled + removed.unsqueeze(1) * noise * eps.to(filled.device, filled.dtype)
    return filled


def _conjugate_gradient(operator, rhs: torch.Tensor) -> torch.Tensor:
    """Solve ``operator(z) = rhs`` for every ``(1, H, W)`` system of the batch at once."""
    dims = (1, 2, 3)
    z = torch.zeros_like(rhs)
    r = rhs.clone()
    p = r.clone()
    rs = (r * r).sum(dim=dims, keepdim=True)
    stop = CG_TOL**2 * rs.clamp_min(1e-30)
    for _ in range(CG_MAX_ITER):
        if bool((rs <= stop).all()):
            break
        ap = operator(p)
        curvature = (p * ap).sum(dim=dims, keepdim=True)
        alpha = torch.where(curvature > 0, rs / curvature.clamp_min(1e-30), 0.0)
        z = z + alpha * p
        r = r - alpha * ap
        rs_new = (r * r).sum(dim=dims, keepdim=True)
        p = r + torch.where(rs > 0, rs_new / rs.clamp_min(1e-30), 0.0) * p
        rs = rs_new
    return z


def removal_masks(maps: torch.Tensor, percentile: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(MoRF, LeRF)`` bool masks ``(B, H, W)`` of the pixels removed at ``percentile``."""
    if not 0.0 < percentile < 100.0:
        raise ValueError(f"ROAD percentiles must be in (0, 100), got {percentile}")
    flat = maps.flatten(1).double()
    q = percentile / 100.0
    morf = flat >= torch.quantile(flat, q, dim=1, keepdim=True)
    inverse = 1.0 - flat
    lerf = inverse >= torch.quantile(inverse, q, dim=1, keepdim=True)
    return morf.view_as(maps), lerf.view_as(maps)


def road(probs: ProbFn, x: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
         percentiles: tuple[float, ...] = PERCENTILES, noise: float = NOISE,
         generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """``road_morf``, ``road_lerf`` and ``road`` per image ``(B,)``, averaged over
    ``percentiles``; ``2 · len(percentiles)`` forward passes per image."""
    if not percentiles:
        raise ValueError("ROAD needs at least one percentile")
    maps = upsample_cams(maps.float(), x.shape[-2:])
    morf, lerf = [], []
    for p in percentiles:
        remove_top, remove_bottom = removal_masks(maps, p)
        both = impute(torch.cat([x, x]), torch.cat([remove_top, remove_bottom]), noise, generator)
        scores = class_probability(probs, both, torch.cat([classes, classes]))
        morf.append(scores[: len(x)])
        lerf.append(scores[len(x):])
    morf_mean = torch.stack(morf).mean(dim=0)
    lerf_mean = torch.stack(lerf).mean(dim=0)
    return {"road_morf": morf_mean, "road_lerf": lerf_mean, "road": (lerf_mean - morf_mean) / 2}
