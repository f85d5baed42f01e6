"""A canonical frontal 68-point iBUG face for tests, demos and synthetic data.

The layout is hand-made (not fitted to any data set) to be plausible for a tightly cropped,
aligned frontal face such as RAF-DB's aligned crops: brows near 25 % of the height, eyes near
40 %, nose tip near 60 %, mouth near 77 %, chin near 94 %. It is exactly left-right symmetric
under ``HFLIP_PERMUTATION``.
"""

from __future__ import annotations

import numpy as np


def _mirror_pairs() -> tuple[int, ...]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip
    perm = list(range(68))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


HFLIP_PERMUTATION: tuple[int, ...] = _mirror_pairs()
"""After a horizontal flip, landmark ``i`` of the flipped face is the mirror of ``perm[i]``."""

# Normalised (u, v) in [0, 1] for the image-left half and the midline; the rest is mirrored.
_JAW_T = np.linspace(0.0, np.pi / 2, 9)
_HALF: dict[int, tuple[float, float]] = {
    **{i: (0.5 - 0.41 * np.cos(t), 0.36 + 0.58 * np.sin(t)) for i, t in enumerate(_JAW_T)},
    17: (0.16, 0.290), 18: (0.22, 0.255), 19: (0.29, 0.245), 20: (0.36, 0.250), 21: (0.43, 0.265),
    27: (0.5, 0.37), 28: (0.5, 0.45), 29: (0.5, 0.52), 30: (0.5, 0.59),
    31: (0.42, 0.635), 32: (0.46, 0.650), 33: (0.5, 0.660),
    36: (0.22, 0.400), 37: (0.27, 0.375), 38: (0.33, 0.375),
    39: (0.38, 0.405), 40: (0.33, 0.420), 41: (0.27, 0.420),
    48: (0.36, 0.770), 49: (0.41, 0.740), 50: (0.465, 0.725), 51: (0.5, 0.730),
    57: (0.5, 0.830), 58: (0.455, 0.825), 59: (0.41, 0.810),
    60: (0.385, 0.770), 61: (0.45, 0.755), 62: (0.5, 0.760), 66: (0.5, 0.785), 67: (0.45, 0.780),
}  # fmt: skip


def _unit_template() -> np.ndarray:
    uv = np.full((68, 2), np.nan)
    for i, (u, v) in _HALF.items():
        uv[i] = (u, v)
        uv[HFLIP_PERMUTATION[i]] = (1.0 - u, v)
    return uv


_UNIT = _unit_template()


def template_landmarks(size: int | tuple[int, int] = 224) -> np.ndarray:
    """A plausible frontal 68-point iBUG layout filling an ``H×W`` face crop.

    Args:
        size: ``(H, W)`` or one int for a square crop.

    Returns:
        ``(68, 2)`` float32 array of ``(x, y)`` pixels, pixel centres at integer coordinates
        (so the face's vertical axis of symmetry is ``x = (W - 1) / 2``).
    """
    height, width = (size, size) if isinstance(size, int) else size
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return (_UNIT * np.array([width, height]) - 0.5).astype(np.float32)
