"""Procedural face renderer behind the ``synthetic`` dataset.

Faces are built in a normalised crop frame (``x`` right, ``y`` down, ``0..1`` spans the image side,
proportions close to ``fer_core.au.template_landmarks``), so the AU region sizes of
docs/method.md §3, which assume a tightly cropped face, fit them. The 68 iBUG landmarks are the
generator's own control points: every feature is drawn from them (or from points derived from
them), so they are exact by construction.

The expression is data (``synthetic_tables.py``): ``ACTIONS`` lists landmark displacements and
appearance marks (wrinkles, folds), each living inside the AU region(s) it is named after;
``EXPRESSION_ACTIONS`` combines them per class. A face of class ``c`` at intensity ``s`` is its
identity's neutral face plus ``s`` times class ``c``'s displacement field, so the only thing that
separates the classes is what happens in their AU regions. Identity, pose, lighting, noise and
background vary independently of the class.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_core.data.synthetic_tables import (
    ANATOMY_ORDER,
    DISPLACEMENTS,
    HAIR_STOPS,
    IRIS_STOPS,
    LEFT_LANDMARKS,
    MARK_STRENGTHS,
    MARKS,
    MIRROR,
    PARAM_RANGES,
    SKIN_STOPS,
    STROKES,
)

_SHIFT = 4  # OpenCV fixed-point bits: vertices are drawn at 1/16-pixel precision
_CHUNK = 256  # images per vectorised photometric step (bounds float32 temporaries)


# --- parameters and landmarks -----------------------------------------------------------------


def sample_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw identity, pose, photometric and background parameters for ``n`` faces.

    All draws happen in one fixed order, so the same generator state gives the same faces.
    """
    u = rng.random((n, len(PARAM_RANGES)))
    params = {
        name: lo + (hi - lo) * u[:, k] for k, (name, (lo, hi)) in enumerate(PARAM_RANGES.items())
    }
    jitter = rng.normal(0.0, 0.003, (n, 68, 2))
    jitter[:, 60:68] = 0.0  # inner lips stay closed on a neutral face
    params["jitter"] = jitter
    params["bg"] = rng.integers(0, 256, (n, 3, 3, 3), dtype=np.uint8)
    params["clutter"] = rng.random((n, 3, 6))  # centre x, y, radius, colour r, g, b
    return params


def neutral_landmarks(p: dict[str, np.ndarray]) -> np.ndarray:
    """Identity's expressionless landmarks, ``(n, 68, 2)`` in crop-frame units (no pose)."""
    n = len(p["face_w"])
    lm = np.zeros((n, 68, 2))
    col = {k: v[:, None] for k, v in p.items() if v.ndim == 1}
    # Jaw 0..8 (left half): a superellipse from ear level to the chin; jaw_sq < 1 is squarer.
    t = np.linspace(0.0, np.pi / 2, 9)[None, :]
    top = col["eye_y"] - 0.04
    lm[:, 0:9, 0] = 0.5 - col["face_w"] * np.cos(t) ** col["jaw_sq"]
    lm[:, 0:9, 1] = top + (col["chin_y"] - top) * np.sin(t)
    # Brow 17..21: outer to inner, peaking a little outside the middle.
    ecx = 0.5 - col["eye_dx"]
    s = np.linspace(0.0, 1.0, 5)[None, :]
    lm[:, 17:22, 0] = ecx - col["brow_out"] + s * (col["brow_out"] + col["brow_in"])
    lm[:, 17:22, 1] = col["eye_y"] - col["brow_gap"] + col["brow_arch"] * ((s - 0.55) / 0.55) ** 2
    # Nose bridge 27..30, nostril base 31..33.
    lm[:, 27:31, 0] = 0.5
    bridge = col["nose_y"] - col["eye_y"] - 0.04
    lm[:, 27:31, 1] = col["eye_y"] - 0.03 + np.linspace(0, 1, 4)[None] * bridge
    nose = [(31, -1.0, -0.025), (32, -0.5, -0.01), (33, 0.0, 0.0)]
    for i, fx, fy in nose:
        lm[:, i] = np.stack([0.5 + fx * p["nose_w"], p["nose_y"] + fy], -1)
    # Left eye 36..41 around (ecx, eye_y): corners, upper lid, lower lid.
    w, hu, hl, ey = col["eye_w"], col["eye_h"], 0.8 * col["eye_h"], col["eye_y"]
    eye = [(36, -1, 0, 1), (37, -0.35, -1, 0), (38, 0.35, -1, 0), (39, 1, 0, 0),
           (40, 0.35, 1, 0), (41, -0.35, 1, 0)]  # fmt: skip
    for i, fx, fy, tilt in eye:
        h = hu if fy < 0 else hl
        lm[:, i] = np.concatenate([ecx + fx * w, ey + fy * h + tilt * col["eye_tilt"]], -1)
    # Mouth: outer 48..51, 57..59 and inner 60..62, 66, 67 (closed: inner upper == inner lower).
    mw, my, cv = col["mouth_w"], col["mouth_y"], col["mouth_curve"]
    lu, ll = col["lip_up"], col["lip_lo"]
    mouth = [(48, -1, 0, 0, 1), (49, -0.62, -0.8, 0, 0), (50, -0.25, -1, 0, 0),
             (51, 0, -0.85, 0, 0), (57, 0, 0, 1, 0), (58, -0.27, 0, 1, 0), (59, -0.62, 0, 0.8, 0),
             (60, -0.88, 0, 0, 0.8), (61, -0.4, 0, 0, 0), (62, 0, 0, 0, 0), (66, 0, 0, 0, 0),
             (67, -0.4, 0, 0, 0)]  # fmt: skip
    for i, fx, fu, fl, fc in mouth:
        lm[:, i] = np.concatenate([0.5 + fx * mw, my + fu * lu + fl * ll + fc * cv], -1)
    left = list(LEFT_LANDMARKS)
    lm[:, MIRROR[left], 0] = 1.0 - lm[:, left, 0]
    lm[:, MIRROR[left], 1] = lm[:, left, 1]
    return lm + p["jitter"]


def _keep_anatomy(lm: np.ndarray) -> np.ndarray:
    """Restore each ``ANATOMY_ORDER`` pair's least vertical gap by moving the yielding point."""
    for upper, lower, gap, yields in ANATOMY_ORDER:
        if yields == "upper":
            lm[:, upper, 1] = np.minimum(lm[:, upper, 1], lm[:, lower, 1] - gap)
        else:
            lm[:, lower, 1] = np.maximum(lm[:, lower, 1], lm[:, upper, 1] + gap)
    return lm


def mean_landmarks(size: int) -> np.ndarray:
    """The generator's mean neutral face at ``size`` px (mid-range identity, no pose)."""
    mid = {k: np.array([(lo + hi) / 2]) for k, (lo, hi) in PARAM_RANGES.items()}
    mid["jitter"] = np.zeros((1, 68, 2))
    return (neutral_landmarks(mid)[0] * size - 0.5).astype(np.float32)


# --- derived drawing geometry ---------------------------------------------------------------


def _ellipse(centre: np.ndarray, radii: np.ndarray, k: int = 16) -> np.ndarray:
    """Polygon ``(n, k, 2)`` approximating axis-aligned ellipses with ``(n, 2)`` centres/radii."""
    a = np.linspace(0.0, 2 * np.pi, k, endpoint=False)
    ring = np.stack([np.cos(a), np.sin(a)], -1)[None]
    return centre[:, None] + radii[:, None] * ring


def _mirror_x(pts: np.ndarray) -> np.ndarray:
    out = pts.copy()
    out[..., 0] = 1.0 - out[..., 0]
    return out


def _interp_rows(xs: np.ndarray, ys: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise piecewise-linear ``y(q)`` through ``(xs, ys)`` (``(n, m)``, xs increasing)."""
    q = np.clip(q, xs[:, :1], xs[:, -1:])
    out = np.zeros_like(q)
    for j in range(xs.shape[1] - 1):
        x0, x1 = xs[:, j : j + 1], xs[:, j + 1 : j + 2]
        y0, y1 = ys[:, j : j + 1], ys[:, j + 1 : j + 2]
        t = np.clip((q - x0) / np.maximum(x1 - x0, 1e-9), 0.0, 1.0)
        inside = (q >= x0) & (q <= x1)
        out = np.where(inside, y0 + t * (y1 - y0), out)
    return out


def _iris(lm: np.ndarray, p: dict[str, np.ndarray], upper: list[int], lower: list[int]):
    """Iris disc clipped between the lids, so an eye can open or narrow around it."""
    ids = upper + lower[1:-1]
    centre = lm[:, ids].mean(1)
    centre[:, 0] += p["gaze"] * p["eye_w"]
    r = (p["iris_r"] * p["eye_w"])[:, None].repeat(2, 1)
    disc = _ellipse(centre, r, 12)
    xs_up, xs_lo = lm[:, upper, 0], lm[:, lower, 0]
    x = np.clip(disc[..., 0], xs_up[:, :1], xs_up[:, -1:])
    top = _interp_rows(xs_up, lm[:, upper, 1], x)
    bottom = _interp_rows(xs_lo, lm[:, lower, 1], x)
    y = np.clip(disc[..., 1], top, np.maximum(top, bottom))
    return np.stack([x, y], -1)


def _offsets(base: np.ndarray, offs: list[tuple[float, float]]) -> np.ndarray:
    """Points ``base (n, 2) + each offset`` as ``(n, k, 2)``."""
    return base[:, None] + np.asarray(offs)[None]


def _head(lm: np.ndarray, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Neck, hair, ears and the skin outline (jaw plus a forehead arc)."""
    top = lm[:, [0, 16], 1].mean(1)
    fw = (lm[:, 16, 0] - lm[:, 0, 0]) / 2
    chin = lm[:, 8]
    neck = _offsets(chin, [(-0.13, -0.12), (0.13, -0.12), (0.17, 0.2), (-0.17, 0.2)])
    hair_c = np.stack([np.full_like(top, 0.5), top + 0.05], -1)
    hair_r = np.stack([fw + 0.03, p["forehead_h"] + 0.05 + p["hair_t"]], -1)
    ear_r = np.array([[0.035, 0.07]]).repeat(len(top), 0)
    ears = [_ellipse(lm[:, 0] + [0.005, 0.075], ear_r, 12),
            _ellipse(lm[:, 16] + [-0.005, 0.075], ear_r, 12)]  # fmt: skip
    a = np.linspace(0.0, np.pi, 11)[None, 1:-1]  # lm16 -> over the top -> lm0
    arc = np.stack([0.5 + fw[:, None] * np.cos(a), top[:, None] - p["forehead_h"][:, None] *
                    np.sin(a)], -1)  # fmt: skip
    return {
        "neck": neck[:, None],
        "hair": _ellipse(hair_c, hair_r, 20)[:, None],
        "ears": np.stack(ears, 1),
        "face": np.concatenate([lm[:, 0:17], arc], 1)[:, None],
    }


def _left_marks(lm: np.ndarray, p: dict[str, np.ndarray], m: np.ndarray) -> dict[str, np.ndarray]:
    """Image-left half of the paired features, from landmarks and mark strengths."""
    n = len(lm)
    cheek_s = m[:, MARKS.index("cheek")]
    # Anchored on the eye corners, which no action moves: only the cheek mark moves the cheek.
    corners = lm[:, [36, 39]].mean(1)
    cheek_c = corners + np.stack([np.full(n, -0.035), 0.17 - 0.025 * cheek_s], -1)
    cheek_r = np.stack([0.055 + 0.01 * cheek_s, 0.04 + 0.005 * cheek_s], -1)
    xm, yb = lm[:, [21, 22], 0].mean(1), lm[:, [21, 22], 1].mean(1)
    crease_off = np.stack(
        [np.broadcast_to([0.008, 0.0, 0.0, -0.006], (n, 4)),
         -np.array([0.4, 1.0, 1.0, 0.6])[None] * p["crease"][:, None]], -1
    )  # fmt: skip
    return {
        "cheeks": _ellipse(cheek_c, cheek_r),
        "cheek_hi": _ellipse(cheek_c - [0.0, 0.008], cheek_r * 0.55),
        "folds": _offsets(lm[:, 48], [(-0.01, -0.06), (-0.03, -0.02), (-0.025, 0.015)]),
        "frown": _offsets(np.stack([xm, yb], -1), [(-0.016, -0.01), (-0.01, 0.03)]),
        "creases": lm[:, [36, 37, 38, 39]] + crease_off,
        "nose_wrinkle_a": _offsets(lm[:, 29], [(-0.015, -0.025), (-0.05, 0.005)]),
        "nose_wrinkle_b": _offsets(lm[:, 29], [(-0.015, -0.003), (-0.05, 0.027)]),
        "nostrils": _ellipse(lm[:, 32] + [-0.004, -0.008], np.tile([0.016, 0.008], (n, 1)), 10),
    }


def _features(lm: np.ndarray, p: dict[str, np.ndarray], m: np.ndarray) -> dict[str, np.ndarray]:
    """Brows, eyes, nose, mouth and the expression marks, as polygons/polylines ``(n, m, k, 2)``."""
    # Paired features: build the left one on the face and on its mirror image, so the right one
    # follows the right-side landmarks exactly (identity jitter makes faces slightly asymmetric).
    mirrored = _mirror_x(lm[:, MIRROR])
    left, right = _left_marks(lm, p, m), _left_marks(mirrored, p, m)
    pairs = {k: np.stack([left[k], _mirror_x(right[k])], 1) for k in left}
    wrinkles = np.concatenate([pairs.pop("nose_wrinkle_a"), pairs.pop("nose_wrinkle_b")], 1)
    taper = np.array([0.55, 0.9, 1.0, 1.0, 0.85])[None, :, None]
    t = (p["brow_t"] / 2)[:, None, None] * taper * np.array([0.0, 1.0])  # half-thickness, in y
    brows = [np.concatenate([b - t, (b + t)[:, ::-1]], 1) for b in (lm[:, 17:22], lm[:, 22:27])]
    gaps = lm[:, [67, 66, 65], 1] - lm[:, [61, 62, 63], 1]
    teeth_low = lm[:, [61, 62, 63]] + np.stack([np.zeros_like(gaps), np.minimum(gaps, 0.02)], -1)
    chin = _offsets(lm[:, 57], [(-0.035, 0.029), (-0.018, 0.034), (0.0, 0.035), (0.018, 0.034),
                                (0.035, 0.029)])  # fmt: skip
    return {
        **pairs,
        "nose_wrinkles": wrinkles,
        "brows": np.stack(brows, 1),
        "sclera": np.stack([lm[:, 36:42], lm[:, 42:48]], 1),
        "iris": np.stack([_iris(lm, p, [36, 37, 38, 39], [36, 41, 40, 39]),
                          _iris(lm, p, [42, 43, 44, 45], [42, 47, 46, 45])], 1),
        "upper_lids": np.stack([lm[:, [36, 37, 38, 39]], lm[:, [42, 43, 44, 45]]], 1),
        "lower_lids": np.stack([lm[:, [39, 40, 41, 36]], lm[:, [45, 46, 47, 42]]], 1),
        "nose_shade": (lm[:, [28, 29, 30]] + [[-0.03, 0.0], [-0.033, 0.0], [-0.04, 0.01]])[:, None],
        "nostril_base": lm[:, None, 31:36],
        "lips": lm[:, None, 48:60], "cavity": lm[:, None, 60:68],
        "teeth": np.concatenate([lm[:, 60:65], teeth_low[:, ::-1]], 1)[:, None],
        "mouth_lines": np.stack([lm[:, [48, 60, 61, 62, 63, 64, 54]],
                                 lm[:, [48, 60, 67, 66, 65, 64, 54]]], 1),
        "chin_crease": chin[:, None],
    }  # fmt: skip


# --- colours, strokes and rasterisation -------------------------------------------------------


def _palette(stops: tuple[tuple[int, int, int], ...], t: np.ndarray) -> np.ndarray:
    """Piecewise-linear colour ramp through ``stops`` at ``t`` in [0, 1] → ``(n, 3)``."""
    arr = np.asarray(stops, dtype=np.float64)
    pos = np.clip(t, 0.0, 1.0) * (len(arr) - 1)
    lo = np.minimum(pos.astype(int), len(arr) - 2)
    frac = (pos - lo)[:, None]
    return arr[lo] * (1 - frac) + arr[lo + 1] * frac


def _mix(a: np.ndarray, b: np.ndarray | tuple, t: np.ndarray | float) -> np.ndarray:
    return a + (np.asarray(b, dtype=np.float64) - a) * np.reshape(t, (-1, 1))


def _colours(p: dict[str, np.ndarray], m: np.ndarray) -> dict[str, np.ndarray]:
    """Per-face RGB colours ``(n, 3)``; expression marks fade in from the skin colour."""
    skin = _palette(SKIN_STOPS, p["skin"]) + p["warm"][:, None] * [8.0, 0.0, -8.0]
    hair = _palette(HAIR_STOPS, p["hair"])
    strength = {k: np.clip(m[:, i], 0.0, 1.0) for i, k in enumerate(MARKS)}
    cheek = _mix(skin, (214, 96, 100), p["blush"] + 0.5 * strength["cheek"])
    # Per-channel multiply keeps lips redder and darker than the skin for every skin tone.
    lip = skin * [0.78, 0.52, 0.56] * (0.8 + 0.25 * p["lip"])[:, None]
    brow = np.minimum(0.5 * hair + 0.2 * skin, 0.6 * skin)  # brows always darker than skin
    return {
        "skin": skin, "skin_dark": skin * 0.86, "hair": hair, "brow": brow, "cheek": cheek,
        "cheek_hi": _mix(cheek, (255, 240, 230), 0.4 * strength["cheek"]),
        "fold": _mix(skin, skin * 0.55, strength["fold"]),
        "frown": _mix(skin, skin * 0.5, strength["frown"]),
        "nose_wrinkle": _mix(skin, skin * 0.5, strength["nose"]),
        "chin": _mix(skin, skin * 0.55, strength["chin"]),
        "sclera": np.tile([236.0, 232.0, 226.0], (len(skin), 1)),
        "iris": _palette(IRIS_STOPS, p["iris"]),
        "lid": brow * 0.7, "lower_lid": skin * 0.72, "crease": skin * 0.78,
        "nose_shade": skin * 0.84, "nostril_base": skin * 0.6, "nostril": skin * 0.35,
        "lip": lip, "cavity": np.tile([74.0, 26.0, 32.0], (len(skin), 1)),
        "teeth": np.tile([240.0, 236.0, 222.0], (len(skin), 1)), "mouth_line": lip * 0.45,
    }  # fmt: skip


def _to_pixels(geom: dict[str, np.ndarray], p: dict[str, np.ndarray], size: int):
    """Apply each face's pose (rotation, scale, shift about the crop centre) to all its points.

    Returns OpenCV fixed-point int32 arrays (``_SHIFT`` fractional bits), pixel centres at integer
    coordinates: the landmarks are read back from the very vertices that are drawn.
    """
    n = len(p["rot"])
    flat = np.concatenate([g.reshape(n, -1, 2) for g in geom.values()], 1) - 0.5
    theta = np.deg2rad(p["rot"])[:, None]
    c, s, k = np.cos(theta), np.sin(theta), p["scale"][:, None]
    x = k * (c * flat[..., 0] - s * flat[..., 1]) + 0.5 + p["tx"][:, None]
    y = k * (s * flat[..., 0] + c * flat[..., 1]) + 0.5 + p["ty"][:, None]
    fixed = np.rint((np.stack([x, y], -1) * size - 0.5) * (1 << _SHIFT)).astype(np.int32)
    out, start = {}, 0
    for name, g in geom.items():
        count = g.shape[1] * g.shape[2]
        out[name] = fixed[:, start : start + count].reshape(g.shape)
        start += count
    return out


def _background(p: dict[str, np.ndarray], i: int, size: int) -> np.ndarray:
    """Smooth random colour field plus a few coloured discs (mostly hidden behind the head)."""
    img = cv2.resize(p["bg"][i], (size, size), interpolation=cv2.INTER_LINEAR)
    for cx, cy, r, *rgb in p["clutter"][i]:
        centre = (int(cx * size * (1 << _SHIFT)), int(cy * size * (1 << _SHIFT)))
        radius = int((0.03 + 0.1 * r) * size * (1 << _SHIFT))
        cv2.circle(img, centre, radius, [255.0 * v for v in rgb], -1, cv2.LINE_AA, _SHIFT)
    return img


def _photometric(images: np.ndarray, p: dict[str, np.ndarray], rng: np.random.Generator | None):
    """In place: brightness gradient, colour cast and (with ``rng``) Gaussian noise, in chunks."""
    size = images.shape[1]
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    for a in range(0, len(images), _CHUNK):
        b = min(a + _CHUNK, len(images))
        ang, strength = p["light_a"][a:b, None, None], p["light_s"][a:b, None, None]
        field = p["bright"][a:b, None, None] * (
            1 + strength * (np.cos(ang) * grid[None, None, :] + np.sin(ang) * grid[None, :, None])
        )
        gain = np.stack([p["gain_r"][a:b], np.ones(b - a), p["gain_b"][a:b]], -1)
        scale = (field[..., None] * gain[:, None, None, :]).astype(np.float32)
        out = images[a:b].astype(np.float32) * scale
        if rng is not None:
            noise = rng.standard_normal(out.shape, dtype=np.float32)
            out += noise * p["noise"][a:b, None, None, None].astype(np.float32)
        np.clip(out + 0.5, 0.0, 255.0, out=out)
        images[a:b] = out.astype(np.uint8)


def render_faces(
    params: dict[str, np.ndarray],
    labels: np.ndarray,
    intensity: np.ndarray,
    size: int,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render faces of the given classes and expression intensities.

    Args:
        params: from ``sample_params`` (one row per face).
        labels: ``(n,)`` canonical class ids. intensity: ``(n,)`` expression strength (0 = the
            identity's neutral face whatever the label; 1 = the full ``ACTIONS`` magnitudes).
        size: output side in pixels (drawn directly at this size, antialiased).
        rng: source of pixel noise; ``None`` renders noise-free (same identity → comparable).

    Returns:
        ``images`` ``(n, size, size, 3)`` uint8 RGB and ``landmarks`` ``(n, 68, 2)`` float32
        ``(x, y)`` pixels (pixel centres at integer coordinates).
    """
    labels = np.asarray(labels, dtype=np.int64)
    amount = np.asarray(intensity, dtype=np.float64)
    lm = _keep_anatomy(neutral_landmarks(params) + amount[:, None, None] * DISPLACEMENTS[labels])
    marks = amount[:, None] * MARK_STRENGTHS[labels]
    geom = {**_head(lm, params), **_features(lm, params, marks), "landmarks": lm[:, None]}
    pts = _to_pixels(geom, params, size)
    colours = {k: v.tolist() for k, v in _colours(params, marks).items()}
    gap = (lm[:, [67, 66, 65], 1] - lm[:, [61, 62, 63], 1]).max(1) * size
    gates = {"hair": params["hair_on"] > 0.15, "open": gap > 0.25}
    gates.update({k: marks[:, i] > 0 for i, k in enumerate(MARKS)})
    lid = max(1, int(size / 60))  # lid line weight: 1 px at 64, 3 px at 224
    images = np.empty((len(labels), size, size, 3), dtype=np.uint8)
    for i in range(len(labels)):
        img = _background(params, i, size)
        for name, colour, kind, gate in STROKES:
            if gate is not None and not gates[gate][i]:
                continue
            if kind == "fill":
                cv2.fillPoly(img, pts[name][i], colours[colour][i], cv2.LINE_AA, _SHIFT)
            else:
                width = lid if kind == "thick" else 1
                cv2.polylines(
                    img, pts[name][i], False, colours[colour][i], width, cv2.LINE_AA, _SHIFT
                )
        images[i] = img
    _photometric(images, params, rng)
    landmarks = (pts["landmarks"][:, 0] / float(1 << _SHIFT)).astype(np.float32)
    return images, landmarks
