"""Spatial AU cues: the AU codebook (data), a batched torch renderer and a numpy reference.

The torch renderer's names are imported on first use (module ``__getattr__``): the codebook and
the landmark template serve code that must not wait for torch (the data CLIs' checks).
"""

from typing import Any

from fer_core.au.codebook import (
    AU_NAMES,
    AU_REGIONS,
    DEFAULT_VARIANT,
    NUM_AUS,
    SMOOTHING,
    VARIANTS,
    Centre,
    Ellipse,
    HalfAxis,
    au_membership,
    expression_aus,
)
from fer_core.au.render_np import render_au_map_np
from fer_core.au.template import HFLIP_PERMUTATION, template_landmarks

_TORCH_NAMES = ("render_au_maps", "resolve_ellipses")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from fer_core.au import render

        return getattr(render, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AU_NAMES",
    "AU_REGIONS",
    "DEFAULT_VARIANT",
    "NUM_AUS",
    "VARIANTS",
    "Centre",
    "Ellipse",
    "HalfAxis",
    "au_membership",
    "expression_aus",
    "SMOOTHING",
    "render_au_maps",
    "resolve_ellipses",
    "render_au_map_np",
    "HFLIP_PERMUTATION",
    "template_landmarks",
]
