"""The AU codebook as data: AU names, expression→AU variants and the AU region geometry.

Everything here is a table; the renderers (``render.py`` for torch, ``render_np.py`` for numpy)
read it and never special-case an AU. Landmarks are the 68-point iBUG layout, 0-based, with
``(x, y) = (column, row)`` in pixels. Geometry constants are pixels at a 224×224 face crop
(docs/method.md §3) and are scaled per axis at other sizes: x-quantities by ``W/224``,
y-quantities by ``H/224``. Per-axis scaling makes a map rendered at ``H×W`` equal the 224×224
map resized to ``H×W``, which is what happens to the face itself when a dataset resizes a crop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from fer_core import CLASSES, NUM_CLASSES
from fer_core.cli import UserError

REFERENCE_SIDE = 224.0
"""Face-crop side (pixels) at which every geometry constant below is expressed."""

AU_NAMES: tuple[str, ...] = (
    "Inner Brow Raiser",
    "Outer Brow Raiser",
    "Brow Lowerer",
    "Upper Lid Raiser",
    "Cheek Raiser",
    "Lid Tightener",
    "Nose Wrinkler",
    "Upper Lip Raiser",
    "Lip Corner Puller",
    "Dimpler",
    "Lip Corner Depressor",
    "Chin Raiser",
    "Lip Stretcher",
    "Lip Tightener",
    "Lip Pressor",
    "Lips Part",
    "Jaw Drop",
    "Eyes Closed",
    "Mouth Stretcher",
    "Lower Lip Depressor",
)
"""The 20 action units, indexed by their 0-based id (docs/method.md §2)."""

NUM_AUS = len(AU_NAMES)

# --- expression → AUs -------------------------------------------------------------------------

_REFERENCE_AUS: dict[str, tuple[int, ...]] = {
    "Neutral": (),
    "Happiness": (4, 8, 15),
    "Surprise": (0, 1, 3, 16, 18),
    "Fear": (0, 1, 2, 3, 12, 15, 16, 18),
    "Anger": (2, 3, 5, 7, 11, 13, 14, 15, 16),
    "Disgust": (6, 3, 19, 11, 15, 16),
    "Sadness": (0, 2, 4, 10, 11),
}
# The paper's Fig. 2 gives Disgust the Upper *Lip* Raiser (7); the reference code used the
# Upper *Lid* Raiser (3). Only that entry differs.
_PAPER_AUS = {**_REFERENCE_AUS, "Disgust": (6, 7, 19, 11, 15, 16)}
_GENERIC_AUS = {name: tuple(range(NUM_AUS)) for name in CLASSES}


def _by_class_id(table: dict[str, tuple[int, ...]]) -> tuple[tuple[int, ...], ...]:
    return tuple(table[name] for name in CLASSES)


VARIANTS: Mapping[str, tuple[tuple[int, ...], ...]] = MappingProxyType(
    {
        "reference": _by_class_id(_REFERENCE_AUS),
        "paper": _by_class_id(_PAPER_AUS),
        "generic": _by_class_id(_GENERIC_AUS),
    }
)
"""variant → per canonical class id, the tuple of AU ids drawn for that expression."""

DEFAULT_VARIANT = "reference"

SMOOTHING: tuple[str, ...] = ("box", "none")
"""``box``: soft edges equivalent to the reference (default); ``none``: hard full-res ellipses."""

SMOOTH_GRID = 28
"""Cells per image side of the low-resolution grid used by ``smooth="box"`` (the reference's)."""


def expression_aus(variant: str = DEFAULT_VARIANT) -> tuple[tuple[int, ...], ...]:
    """AU ids per canonical class id for ``variant``; an unknown name is a user error."""
    try:
        return VARIANTS[variant]
    except KeyError:
        raise UserError(
            f"unknown AU variant {variant!r}; valid variants: {', '.join(VARIANTS)}"
        ) from None


def au_membership(variant: str = DEFAULT_VARIANT) -> np.ndarray:
    """``(NUM_CLASSES, NUM_AUS)`` bool matrix, True where class ``c`` uses AU ``a``."""
    table = np.zeros((NUM_CLASSES, NUM_AUS), dtype=bool)
    for cls, aus in enumerate(expression_aus(variant)):
        table[cls, list(aus)] = True
    return table


# --- region geometry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Centre:
    """An ellipse centre: x = mean of the x of ``xs``, y = mean of the y of ``ys``, plus offsets.

    ``xs``/``ys`` are always two landmark indices (repeat one for a single landmark), so a
    landmark, a midpoint, "x from one, y from another" and an eye centre are all the same rule.
    Offsets are pixels at 224 px.
    """

    xs: tuple[int, int]
    ys: tuple[int, int]
    dx: float = 0.0
    dy: float = 0.0

    def resolve(self, landmarks: np.ndarray, scale: tuple[float, float]) -> tuple[float, float]:
        """Centre ``(x, y)`` in pixels for one face's ``(68, 2)`` landmarks."""
        x = landmarks[list(self.xs), 0].mean() + self.dx * scale[0]
        y = landmarks[list(self.ys), 1].mean() + self.dy * scale[1]
        return float(x), float(y)


@dataclass(frozen=True)
class HalfAxis:
    """One half-axis: ``max(|span distance| / 2 + fixed, minimum)``, distances along this axis.

    ``span`` is a pair of landmarks whose distance along the axis (x for the horizontal half-axis,
    y for the vertical one) is halved; ``None`` means a fixed size. ``fixed`` (additive, e.g. AU 5's
    +10) and ``minimum`` are pixels at 224 px.
    """

    span: tuple[int, int] | None = None
    fixed: float = 0.0
    minimum: float = 0.0

    def __post_init__(self) -> None:
        # A zero half-axis would make the ellipse inequality divide by zero.
        if self.fixed <= 0 and self.minimum <= 0:
            raise ValueError(f"{self}: a half-axis needs a positive `fixed` or `minimum`")

    def resolve(self, landmarks: np.ndarray, axis: int, scale: float) -> float:
        """Half-axis length in pixels along ``axis`` (0 = x, 1 = y) for one face."""
        half = 0.0
        if self.span is not None:
            half = abs(landmarks[self.span[1], axis] - landmarks[self.span[0], axis]) / 2
        return float(max(half + self.fixed * scale, self.minimum * scale))


@dataclass(frozen=True)
class Ellipse:
    """An axis-aligned filled ellipse: a centre and the x / y half-axes."""

    centre: Centre
    rx: HalfAxis
    ry: HalfAxis


def _at(i: int, dx: float = 0.0, dy: float = 0.0) -> Centre:
    return Centre((i, i), (i, i), dx, dy)


def _mid(i: int, j: int) -> Centre:
    return Centre((i, j), (i, j))


def _x_of_y_of(xi: int, yi: int) -> Centre:
    return Centre((xi, xi), (yi, yi))


def _fixed(rx: float, ry: float, centre: Centre) -> Ellipse:
    return Ellipse(centre, HalfAxis(fixed=rx), HalfAxis(fixed=ry))


def _circle(centre: Centre, radius: float = 20.0) -> Ellipse:
    return _fixed(radius, radius, centre)


def _spanned(xs: tuple[int, int], ys: tuple[int, int], minimum: float, extra_y: float = 0.0):
    """Centred between the landmark pairs, half-axes half their x / y distances."""
    return Ellipse(
        Centre(xs, ys),
        HalfAxis(span=xs, minimum=minimum),
        HalfAxis(span=ys, fixed=extra_y, minimum=minimum),
    )


_EYES = (_spanned((36, 39), (38, 41), 5.0), _spanned((42, 45), (44, 47), 5.0))
_EYES_TALL = (  # AU 5 / AU 17: the eye ellipse with the vertical half-axis grown by 10 px
    _spanned((36, 39), (38, 41), 5.0, extra_y=10.0),
    _spanned((42, 45), (44, 47), 5.0, extra_y=10.0),
)
_MOUTH = (_spanned((48, 54), (51, 57), 5.0),)
_LIP_CORNERS = (_circle(_at(48)), _circle(_at(54)))

AU_REGIONS: tuple[tuple[Ellipse, ...], ...] = (
    (_fixed(28, 22, _at(20)), _fixed(28, 22, _at(23))),  # 0 inner brow raiser
    (_fixed(28, 22, _at(18)), _fixed(28, 22, _at(25))),  # 1 outer brow raiser
    (_spanned((19, 24), (19, 24), 10.0),),  # 2 brow lowerer
    _EYES,  # 3 upper lid raiser
    (_fixed(22, 22, _at(41, dy=37)), _fixed(22, 22, _at(46, dy=37))),  # 4 cheek raiser
    _EYES_TALL,  # 5 lid tightener
    (_circle(_x_of_y_of(31, 29)), _circle(_x_of_y_of(35, 29))),  # 6 nose wrinkler
    (_circle(_x_of_y_of(48, 50)), _circle(_x_of_y_of(52, 54))),  # 7 upper lip raiser
    _LIP_CORNERS,  # 8 lip corner puller
    (_circle(_at(48, dx=-20)), _circle(_at(54, dx=20))),  # 9 dimpler
    _LIP_CORNERS,  # 10 lip corner depressor
    (_spanned((59, 8), (59, 8), 5.0),),  # 11 chin raiser
    # 12 lip stretcher: the reference paired lm50 with lm10 for the 2nd ellipse (a typo); the
    # mirror of mid(lm48, lm6) is mid(lm54, lm10).
    (_circle(_mid(48, 6)), _circle(_mid(54, 10))),
    _MOUTH,  # 13 lip tightener
    _MOUTH,  # 14 lip pressor
    (_fixed(25, 10, _at(51)), _fixed(25, 10, _at(57))),  # 15 lips part
    _MOUTH,  # 16 jaw drop
    _EYES_TALL,  # 17 eyes closed
    _MOUTH,  # 18 mouth stretcher
    (_circle(_at(59)), _circle(_at(55))),  # 19 lower lip depressor
)
"""Per AU id, the one or two ellipses that make up its region (docs/method.md §3)."""

MAX_ELLIPSES = max(len(r) for r in AU_REGIONS)

if len(AU_REGIONS) != NUM_AUS:  # pragma: no cover - a table edit gone wrong
    raise RuntimeError(f"AU_REGIONS has {len(AU_REGIONS)} entries, expected {NUM_AUS}")
