"""Plain numpy AU-map renderer, one face at a time: the readable reference for ``render.py``.

It walks ``AU_REGIONS`` with explicit loops and the codebook's own ``resolve`` methods, so it
shares no code with the batched torch renderer beyond the tables and constants; tests compare
the two. Too slow for training (use ``render_au_maps``).
"""

from __future__ import annotations

import numpy as np

from fer_core.au.codebook import (
    AU_REGIONS,
    DEFAULT_VARIANT,
    REFERENCE_SIDE,
    SMOOTH_GRID,
    SMOOTHING,
    Ellipse,
    expression_aus,
)

_EPS = 1e-6


def _normalised_radius(ell: Ellipse, lm: np.ndarray, scale, xs: np.ndarray, ys: np.ndarray):
    cx, cy = ell.centre.resolve(lm, scale)
    rx = ell.rx.resolve(lm, 0, scale[0])
    ry = ell.ry.resolve(lm, 1, scale[1])
    rho = np.sqrt(((xs[None, :] - cx) / rx) ** 2 + ((ys[:, None] - cy) / ry) ** 2)
    return rho, rx, ry


def _cell_coverage(ell: Ellipse, lm: np.ndarray, scale, size: tuple[int, int]) -> np.ndarray:
    """Approximate coverage of each 28×28 grid cell by the ellipse (see ``render_au_maps``)."""
    height, width = size
    cell_w, cell_h = width / SMOOTH_GRID, height / SMOOTH_GRID
    k = np.arange(SMOOTH_GRID) + 0.5
    rho, rx, ry = _normalised_radius(ell, lm, scale, k * cell_w - 0.5, k * cell_h - 0.5)
    ramp = np.sqrt((rx / cell_w) * (ry / cell_h))  # geometric-mean radius in cells
    return np.clip(0.5 + (1.0 - rho) * ramp, 0.0, 1.0)


def _box_blur3(m: np.ndarray) -> np.ndarray:
    p = np.pad(m, 1, mode="reflect")  # numpy's "reflect" excludes the edge: reflect-101
    h, w = m.shape
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def _resize_bilinear(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with half-pixel centres and clamped borders (no antialiasing)."""

    def taps(n_in: int, n_out: int):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, wy = taps(m.shape[0], size[0])
    x0, x1, wx = taps(m.shape[1], size[1])
    top = m[y0][:, x0] * (1 - wx) + m[y0][:, x1] * wx
    bottom = m[y1][:, x0] * (1 - wx) + m[y1][:, x1] * wx
    return top * (1 - wy[:, None]) + bottom * wy[:, None]


def render_au_map_np(
    landmarks: np.ndarray,
    label: int,
    size: int | tuple[int, int],
    variant: str = DEFAULT_VARIANT,
    smooth: str = "box",
) -> tuple[np.ndarray, bool]:
    """One face's AU map with the same semantics as ``render_au_maps`` (float64 arithmetic).

    Args:
        landmarks: ``(68, 2)`` ``(x, y)`` pixels. label: canonical class id.
        size: ``(H, W)`` or an int; with ``smooth="box"`` each side must be ≥ 28 (this renderer
            does not antialias a downscale).

    Returns:
        ``(map, valid)``: float32 ``(H, W)`` in [0, 1] and whether it is valid.
    """
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if smooth not in SMOOTHING:
        raise ValueError(f"unknown smooth {smooth!r}; valid values: {', '.join(SMOOTHING)}")
    if smooth == "box" and min(height, width) < SMOOTH_GRID:
        raise ValueError(f"numpy renderer needs sides >= {SMOOTH_GRID} with smooth='box'")
    lm = np.asarray(landmarks, dtype=np.float64)
    aus = expression_aus(variant)[label]
    empty = np.zeros((height, width), np.float32)
    if not aus or not np.isfinite(lm).all():
        return empty, False

    scale = (width / REFERENCE_SIDE, height / REFERENCE_SIDE)
    if smooth == "box":
        merged = np.zeros((SMOOTH_GRID, SMOOTH_GRID))
        for au in aus:
            region = np.zeros_like(merged)
            for ell in AU_REGIONS[au]:
                region = np.maximum(region, _cell_coverage(ell, lm, scale, (height, width)))
            merged = np.maximum(merged, _box_blur3(region))
        full = _resize_bilinear(merged, (height, width))
    else:
        full = np.zeros((height, width))
        xs, ys = np.arange(width), np.arange(height)
        for au in aus:
            for ell in AU_REGIONS[au]:
                rho, _, _ = _normalised_radius(ell, lm, scale, xs, ys)
                full = np.maximum(full, (rho**2 <= 1.0).astype(np.float64))

    lo, hi = full.min(), full.max()
    if hi - lo <= _EPS:
        return empty, False
    return ((full - lo) / (hi - lo)).astype(np.float32), True
