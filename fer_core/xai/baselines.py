"""What deletion and insertion put in place of a removed pixel: the perturbation baselines.

A baseline is a function ``fill(x, removed) -> image``: ``x`` ``(B, C, H, W)`` (normalised, as
the model sees it), ``removed`` ``(B, H, W)`` bool; the result shows ``x`` where ``removed`` is
False and the baseline where it is True. Deletion fills the most salient pixels first, insertion
starts from everything filled and gives the most salient pixels back first
(:func:`fer_core.xai.faithfulness.perturbation_curve`).

A baseline has to *remove the information* a pixel carries at every image size, or no map can
score differently from another (docs/method.md §7.1):

- ``blur`` (default): a Gaussian blur of σ = ``blur_sigma`` × the image side (default 0.1: the
  scale of an eye or a mouth, so the expression's detail goes at any resolution). The filled
  pixels stay face-like, so the perturbed image stays closer to what the model was trained on
  than a constant patch; measured at 48 px (``bench/xai_baselines.py``) it separates trained
  CAMs from random maps by the widest margin of the four.
- ``mean``: the dataset's mean colour (0 in the normalised input). Removes everything at any
  size and costs nothing, but leaves sharp constant patches the model can read (the class
  leakage of Rong et al. 2022).
- ``rise``: RISE's blur, σ = 5 px at 224 px (Petsiuk et al. 2018). At 48 px that is ~1 px, and
  the blurred face is nearly the face: kept only to reproduce numbers made with it.
- ``road``: ROAD's noisy linear imputation (:func:`fer_core.xai.road.impute`): removed pixels
  are interpolated from the kept ones, no mask edge; one linear solve per curve step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fer_core.registry import Registry

Fill = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(x, removed) -> image``: ``x`` with the ``removed`` pixels replaced by the baseline."""

DEFAULT = "blur"
RISE_SIGMA = 5.0 / 224.0
"""RISE's blur σ as a fraction of the image side (5 px at 224 px)."""
BLUR_SIGMA = 0.1
"""Default σ of the ``blur`` baseline, a fraction of the image side: the size of an AU region."""


@dataclass(frozen=True)
class BaselineParams:
    """The knobs of the baselines (each baseline reads the ones it needs)."""

    blur_sigma: float = BLUR_SIGMA
    road_noise: float = 0.01
    seed: int = 0


BASELINES: Registry[Callable[[BaselineParams], Fill]] = Registry("deletion/insertion baseline")
"""Name → factory ``params -> fill``."""


def gaussian_blur(x: torch.Tensor, sigma_fraction: float = RISE_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with σ = ``sigma_fraction · H`` (reflect
    padding, kernel ``2·⌈3σ⌉ + 1``, cut to the image)."""
    if sigma_fraction <= 0:
        raise ValueError(f"blur sigma must be > 0, got {sigma_fraction}")
    sigma = sigma_fraction * x.shape[-2]
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, x.shape[-2] - 1, x.shape[-1] - 1)  # reflect padding needs radius < size
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(x.dtype)
    c = x.shape[1]
    out = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _static(make: Callable[[torch.Tensor], torch.Tensor]) -> Fill:
    """A baseline image that does not depend on which pixels are removed."""

    def fill(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        return torch.where(removed.unsqueeze(1), make(x), x)

    return fill


@BASELINES.register("mean")
def _mean(params: BaselineParams) -> Fill:
    return _static(torch.zeros_like)  # normalised input: 0 is the dataset's mean colour


@BASELINES.register("blur")
def _blur(params: BaselineParams) -> Fill:
    return _static(lambda x: gaussian_blur(x, params.blur_sigma))


@BASELINES.register("rise")
def _rise(params: BaselineParams) -> Fill:
    return _static(lambda x: gaussian_blur(x, RISE_SIGMA))


@BASELINES.register("road")
def _road(params: BaselineParams) -> Fill:
    from fer_core.xai.road import impute

    generator = torch.Generator().manual_seed(params.seed)

    def fill(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        return impute(x, removed, params.road_noise, generator)

    return fill


def baseline(name: str, params: BaselineParams | None = None) -> Fill:
    """The fill function of baseline ``name`` (see the module docstring)."""
    from fer_core.cli import UserError

    if name not in BASELINES:
        raise UserError(f"unknown deletion/insertion baseline {name!r}: use one of "
                        f"{', '.join(BASELINES.names())}")
    return BASELINES.get(name)(params or BaselineParams())
