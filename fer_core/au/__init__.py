"""Spatial AU cues: the AU codebook (data), a batched torch renderer and a numpy reference."""

from fer_core.au.codebook import (
    AU_NAMES,
    AU_REGIONS,
    DEFAULT_VARIANT,
    NUM_AUS,
    VARIANTS,
    Centre,
    Ellipse,
    HalfAxis,
    au_membership,
    expression_aus,
)
from fer_core.au.render import SMOOTHING, render_au_maps, resolve_ellipses
from fer_core.au.render_np import render_au_map_np
from fer_core.au.template import HFLIP_PERMUTATION, template_landmarks

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
