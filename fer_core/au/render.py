"""Batched AU-map renderer: landmarks + labels → soft AU maps, on the landmarks' device.

Every AU ellipse is resolved for the whole batch with index gathers from the codebook's tables;
each sample keeps the ellipses of its own expression's AUs (padded slots, masked), which are
evaluated on a pixel grid in one broadcast and max-merged. There is no per-sample or per-AU
Python loop, so the cost is a few small tensor ops per training step.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from fer_core import NUM_CLASSES
from fer_core.au.codebook import (
    AU_REGIONS,
    DEFAULT_VARIANT,
    MAX_ELLIPSES,
    NUM_AUS,
    REFERENCE_SIDE,
    SMOOTH_GRID,
    SMOOTHING,
    expression_aus,
)

_EPS = 1e-6  # a map whose max - min is below this carries no spatial cue → invalid


def _geometry_arrays() -> dict[str, np.ndarray]:
    """Flatten ``AU_REGIONS`` into arrays indexed ``[axis (x, y), ellipse]``.

    Every AU gets ``MAX_ELLIPSES`` slots (ellipse ``e`` of AU ``a`` is ``a * MAX_ELLIPSES + e``);
    a one-ellipse AU repeats its ellipse, which leaves the union unchanged.
    """
    n = NUM_AUS * MAX_ELLIPSES
    arrays = {
        "centre_idx": np.zeros((2, n, 2), np.int64),
        "offset": np.zeros((2, n)),
        "span_idx": np.zeros((2, n, 2), np.int64),
        "span_on": np.zeros((2, n)),
        "fixed": np.zeros((2, n)),
        "minimum": np.zeros((2, n)),
    }
    for au, region in enumerate(AU_REGIONS):
        for slot in range(MAX_ELLIPSES):
            ell = region[min(slot, len(region) - 1)]
            e = au * MAX_ELLIPSES + slot
            c = ell.centre
            arrays["centre_idx"][:, e] = (c.xs, c.ys)
            arrays["offset"][:, e] = (c.dx, c.dy)
            for axis, half in enumerate((ell.rx, ell.ry)):
                if half.span is not None:
                    arrays["span_idx"][axis, e] = half.span
                    arrays["span_on"][axis, e] = 1.0
                arrays["fixed"][axis, e] = half.fixed
                arrays["minimum"][axis, e] = half.minimum
    return arrays


_GEOMETRY = _geometry_arrays()


@lru_cache(maxsize=32)
def _tables(device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    # Cached per device/dtype so a training step does not rebuild constants from Python lists.
    return {
        k: torch.as_tensor(v, device=device, dtype=torch.long if v.dtype == np.int64 else dtype)
        for k, v in _GEOMETRY.items()
    }


@lru_cache(maxsize=32)
def _au_slots(variant: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, its AU ids padded to the variant's longest set, and which slots are real.

    Rendering only a class's own AUs (9 at most in ``reference``) instead of all 20 and masking
    halves the work of the default variants.
    """
    sets = expression_aus(variant)
    width = max(1, max(len(s) for s in sets))
    slots = np.zeros((len(sets), width), np.int64)
    real = np.zeros((len(sets), width), bool)
    for cls, aus in enumerate(sets):
        slots[cls, : len(aus)] = aus
        real[cls, : len(aus)] = True
    return torch.as_tensor(slots, device=device), torch.as_tensor(real, device=device)


@lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int, device: torch.device, dtype: torch.dtype):
    """``(n_out, n_in)`` linear-resize weights, half-pixel centres, borders clamped.

    Upscaling gives exactly bilinear interpolation; downscaling widens the triangle to the scale
    (antialiasing, like ``F.interpolate(..., antialias=True)``). Two small matmuls with these
    replace ``F.interpolate``, which is several times slower on CPU for this shape.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    src = (np.arange(n_out) + 0.5) * scale - 0.5
    w = np.clip(1.0 - np.abs(np.arange(n_in)[None, :] - src[:, None]) / support, 0.0, None)
    return torch.as_tensor(w / w.sum(1, keepdims=True), device=device, dtype=dtype)


def resolve_ellipses(
    landmarks: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres and half-axes of every AU ellipse for a batch, in pixels of an ``H×W`` image.

    Args:
        landmarks: ``(B, 68, 2)`` finite float tensor, ``(x, y)`` pixels.
        size: ``(H, W)``.

    Returns:
        ``(centre, half)``, each ``(B, 2, NUM_AUS * MAX_ELLIPSES)``; dim 1 is (x, y); ellipse
        ``e`` belongs to AU ``e // MAX_ELLIPSES``.
    """
    t = _tables(landmarks.device, landmarks.dtype)
    height, width = size
    scale = landmarks.new_tensor([width / REFERENCE_SIDE, height / REFERENCE_SIDE])[:, None]
    coords = landmarks.transpose(1, 2)  # (B, 2, 68)
    axis = torch.arange(2, device=landmarks.device)[:, None, None]
    centre = coords[:, axis, t["centre_idx"]].mean(-1) + t["offset"] * scale
    span = coords[:, axis, t["span_idx"]]  # (B, 2, E, 2)
    half = (span[..., 1] - span[..., 0]).abs() * (0.5 * t["span_on"]) + t["fixed"] * scale
    half = torch.maximum(half, t["minimum"] * scale)
    return centre, half


def _render_box(
    centre: torch.Tensor, half: torch.Tensor, used: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Soft maps: per-AU coverage on a 28×28 grid, 3×3 box blur, max over AUs, bilinear resize.

    ``centre``/``half``: ``(B, 2, S * MAX_ELLIPSES)`` for the sample's S AU slots; ``used``:
    ``(B, S * MAX_ELLIPSES)`` bool. Returns ``(B, H, W)``, not normalised.
    """
    height, width = size
    batch, _, n_ell = centre.shape
    g = SMOOTH_GRID
    cell = centre.new_tensor([width / g, height / g])[:, None]
    # Pixel centres sit at integer coordinates, so cell k's centre is (k + 0.5) * cell - 0.5.
    c = (centre + 0.5) / cell - 0.5
    r = half / cell
    # Approximate area coverage of each cell: a one-cell linear ramp across the boundary,
    # clamp(0.5 + (1 - rho) * rbar), rho the normalised radius and rbar the geometric-mean
    # radius in cells. Unlike point sampling, a small ellipse between cell centres never vanishes
    # and the map moves continuously with the landmarks. rbar is folded into the per-axis terms
    # and unused slots get a negative offset, so the full-grid work is four ops.
    rbar = (r[:, 0] * r[:, 1]).sqrt()  # (B, E)
    grid = torch.arange(g, device=centre.device, dtype=centre.dtype)
    q = rbar[:, None, :, None] / r[..., None]  # (B, 2, E, 1)
    nx = ((grid - c[:, 0, :, None]) * q[:, 0]).square_()  # (B, E, g)
    ny = ((grid - c[:, 1, :, None]) * q[:, 1]).square_()
    offset = torch.where(used, rbar + 0.5, -1.0)[..., None, None]
    dist = (nx[:, :, None, :] + ny[:, :, :, None]).sqrt_()
    cover = torch.sub(offset, dist).clamp_(0.0, 1.0)
    cover = cover.view(batch, n_ell // MAX_ELLIPSES, MAX_ELLIPSES, g, g).amax(2)
    # 3x3 box blur per AU as separable slice sums (avg_pool2d is slow on CPU here); reflect
    # padding (reflect-101) is cv2.blur's border rule. The 1/9 factor is dropped: the max-merge
    # commutes with it and min-max normalisation removes it.
    p = F.pad(cover, (1, 1, 1, 1), mode="reflect")
    p = p[..., :-2] + p[..., 1:-1] + p[..., 2:]
    blurred = p[..., :-2, :] + p[..., 1:-1, :] + p[..., 2:, :]
    merged = blurred.amax(1)  # (B, g, g)
    rows = _resize_matrix(g, height, centre.device, centre.dtype)
    cols = _resize_matrix(g, width, centre.device, centre.dtype)
    return rows @ merged @ cols.T


def _render_hard(
    centre: torch.Tensor, half: torch.Tensor, used: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Hard maps: 1 on pixels whose centre lies in any used ellipse, else 0."""
    height, width = size
    xs = torch.arange(width, device=centre.device, dtype=centre.dtype)
    ys = torch.arange(height, device=centre.device, dtype=centre.dtype)
    nx = ((xs - centre[:, 0, :, None]) / half[:, 0, :, None]).square()  # (B, E, W)
    ny = ((ys - centre[:, 1, :, None]) / half[:, 1, :, None]).square()  # (B, E, H)
    nx = nx.masked_fill(~used[..., None], float("inf"))  # unused slots cover nothing
    inside = (nx[:, :, None, :] + ny[:, :, :, None]) <= 1.0
    return inside.any(1).to(centre.dtype)


def _check_inputs(landmarks: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(landmarks, torch.Tensor) or not landmarks.is_floating_point():
        raise ValueError("landmarks must be a floating-point torch.Tensor of shape (B, 68, 2)")
    if landmarks.ndim != 3 or tuple(landmarks.shape[1:]) != (68, 2):
        raise ValueError(
            f"landmarks has shape {tuple(landmarks.shape)}; expected (B, 68, 2) (x, y) pixels"
        )
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex():
        raise ValueError("labels must be an integer torch.Tensor of shape (B,)")
    if labels.dtype == torch.bool or tuple(labels.shape) != (landmarks.shape[0],):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)} and dtype {labels.dtype}; expected an "
            f"integer tensor of shape ({landmarks.shape[0]},) matching landmarks' batch"
        )


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or not all(isinstance(v, int) and v > 0 for v in hw):
        raise ValueError(f"size must be a positive int or (H, W) of positive ints, got {size!r}")
    return hw  # type: ignore[return-value]


@torch.no_grad()
def render_au_maps(
    landmarks: torch.Tensor,
    labels: torch.Tensor,
    size: int | tuple[int, int],
    variant: str = DEFAULT_VARIANT,
    smooth: str = "box",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render the AU map A of every sample in a batch (docs/method.md §4).

    Each AU of the sample's expression (``variant``: ``reference``, ``paper`` or ``generic``) is
    drawn as its ellipses (``codebook.AU_REGIONS``, sizes scaled per axis by ``W/224``,
    ``H/224``); AUs are merged by pixel-wise max and each valid map is min-max normalised.

    Smoothing (``smooth``):
        ``"box"`` (default) mirrors the reference's "draw, resize to 28×28, 3×3 box blur, resize
        back" without drawing at full resolution: each AU's ellipses are evaluated directly on a
        28×28 grid of cells spanning the image (approximate area coverage in [0, 1]), blurred with
        a 3×3 box filter (reflect-101 border), max-merged over AUs on that grid, then resized
        bilinearly (half-pixel centres) to ``H×W``. The grid is fixed per image, so the blur
        width is a fixed fraction of the face at any resolution. The reference max-merged after
        resizing each AU back; merging before the resize is cheaper and differs only where two
        blurred AUs overlap. ``"none"``: hard ellipses at full resolution (pixel centres at
        integer coordinates), for inspection and tests.

    A map is invalid (all zeros, ``valid`` False) when the class has no AU (Neutral in
    ``reference``/``paper``), any landmark is NaN/inf, or no AU region reaches the image (the map
    is flat). Deterministic; runs on CPU or CUDA without host round-trips except one label check.

    Args:
        landmarks: ``(B, 68, 2)`` float tensor, ``(x, y)`` pixels in the ``H×W`` image.
        labels: ``(B,)`` integer tensor of canonical class ids.
        size: ``(H, W)`` or one int for a square map.
        variant: expression→AU table, a key of ``codebook.VARIANTS``.
        smooth: one of ``SMOOTHING``.

    Returns:
        ``(maps, valid)``: float32 ``(B, H, W)`` in [0, 1] (max 1 when valid) and bool ``(B,)``,
        on the landmarks' device.
    """
    height, width = _check_size(size)
    _check_inputs(landmarks, labels)
    if smooth not in SMOOTHING:
        raise ValueError(f"unknown smooth {smooth!r}; valid values: {', '.join(SMOOTHING)}")
    dtype = torch.float64 if landmarks.dtype == torch.float64 else torch.float32
    lm = landmarks.to(dtype)
    expression_aus(variant)  # unknown variants fail here, before any work
    labels = labels.to(device=lm.device, dtype=torch.long)
    if labels.numel() and bool(((labels < 0) | (labels >= NUM_CLASSES)).any()):
        raise ValueError(f"labels must be canonical class ids in [0, {NUM_CLASSES - 1}]")

    finite = torch.isfinite(lm).flatten(1).all(1)
    # Zero failed faces' landmarks so NaN never enters the arithmetic; their slots are marked
    # unused below, which leaves the map flat and therefore invalid.
    lm = torch.where(finite[:, None, None], lm, torch.zeros((), dtype=dtype, device=lm.device))
    centre, half = resolve_ellipses(lm, (height, width))
    # Keep only the ellipses of each sample's own AU slots.
    slots, real = _au_slots(variant, lm.device)
    ell = (slots[labels] * MAX_ELLIPSES)[..., None] + torch.arange(MAX_ELLIPSES, device=lm.device)
    ell = ell.flatten(1)  # (B, S * MAX_ELLIPSES)
    centre = centre.gather(2, ell[:, None, :].expand(-1, 2, -1))
    half = half.gather(2, ell[:, None, :].expand(-1, 2, -1))
    used = (real[labels] & finite[:, None]).repeat_interleave(MAX_ELLIPSES, dim=1)
    draw = _render_box if smooth == "box" else _render_hard
    maps = draw(centre, half, used, (height, width))

    flat = maps.flatten(1)
    lo, hi = flat.amin(1), flat.amax(1)  # aminmax is ~20x slower than these on CPU (torch 2.14)
    valid = (hi - lo) > _EPS
    # Dividing (not multiplying by a reciprocal) keeps the result in [0, 1] exactly, with 1 at the
    # maximum, without a clamp pass; an infinite range zeroes the invalid maps in the same pass.
    span = torch.where(valid, hi - lo, float("inf"))
    maps = (maps - lo[:, None, None]).div_(span[:, None, None])
    return maps.to(torch.float32), valid
