"""Control maps: what a map scores without the model (docs/method.md §7.1).

Each control is scored with every metric on the same images as the model's map, so a reader
sees where an arm sits between "free" and "the ceiling":

- ``random``: uniform noise, the chance level of every metric;
- ``centre``: a centred Gaussian (σ = :data:`CENTRE_SIGMA` of the side). Faces are centred, so
  "look at the middle" scores well on localisation for free;
- ``au``: the AU map itself (normalised to [0, 1]): what the prior alone scores, the ceiling of
  localisation against it.

A control is ``make(maps, au_maps, generator) -> (B, h, w)`` in ``[0, 1]``; ``maps`` is the
model's map (only its shape and device are read), ``au_maps`` ``(B, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fer_core.cams.base import minmax_normalize
from fer_core.registry import Registry
from fer_core.xai.common import random_maps

CENTRE_SIGMA = 0.25
"""σ of the centred Gaussian, a fraction of the image side: its half-maximum disc covers the
central ~60 % of the side, about the synthetic faces' extent."""

Control = Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
CONTROLS: Registry[Control] = Registry("control map")


@CONTROLS.register("random")
def _random(maps: torch.Tensor, au_maps: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return random_maps(maps, gen)


def centred_gaussian(batch: int, height: int, width: int, sigma: float = CENTRE_SIGMA,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """``(batch, height, width)`` Gaussian bump centred in the image, peak 1."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height - 0.5
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width - 0.5
    d2 = ys[:, None] ** 2 + xs[None, :] ** 2
    return torch.exp(-d2 / (2 * sigma**2)).expand(batch, height, width).clone()


@CONTROLS.register("centre")
def _centre(maps: torch.Tensor, au_maps: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b, h, w = au_maps.shape
    return centred_gaussian(b, h, w, device=au_maps.device)


@CONTROLS.register("au")
def _au(maps: torch.Tensor, au_maps: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return minmax_normalize(au_maps.float())


def control_maps(names: tuple[str, ...], maps: torch.Tensor, au_maps: torch.Tensor,
                 gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``{name: map}`` for each control in ``names`` (registry order of drawing: as given)."""
    return {name: CONTROLS.get(name)(maps, au_maps, gen) for name in names}
