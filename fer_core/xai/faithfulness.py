"""Faithfulness: does removing what a map highlights change the model's decision?

All functions take the model's input images ``x`` ``(B, 3, H, W)`` (normalised, as the model
sees them), maps ``(B, h, w)`` in ``[0, 1]`` (upsampled to ``H × W``), the explained classes
``(B,)`` and a :data:`~fer_core.xai.common.ProbFn`; they return per-image values.

Sources:
- deletion / insertion: Petsiuk, Das & Saenko, "RISE: Randomized input sampling for
  explanation of black-box models", BMVC 2018, §4.1. Pixels are moved in order of decreasing
  saliency, ``1/steps`` of the image per step, between the image and a baseline
  (:mod:`fer_core.xai.baselines`; default a blur of σ = 0.1 of the side, which removes the
  expression's detail at every image size; RISE blurred for insertion and used zeros for
  deletion);
  the score is the area under the class-probability curve (deletion: lower is better;
  insertion: higher is better).
- Average Drop and Increase in Confidence: Chattopadhay et al., "Grad-CAM++: generalized
  gradient-based visual explanations for deep convolutional networks", WACV 2018, §6.1. The
  explanation image is ``x ⊙ map`` on the normalised tensor (0 = the dataset's mean colour), as
  ``pytorch_grad_cam.metrics.cam_mult_image`` does.
"""

from __future__ import annotations

import torch

from fer_core.cams import upsample_cams
from fer_core.xai.baselines import DEFAULT, Fill, baseline, gaussian_blur
from fer_core.xai.common import ProbFn, class_probability, saliency_order, trapezoid_auc

__all__ = ["STEPS", "average_drop", "confidence_change", "deletion_insertion", "gaussian_blur",
           "increase_in_confidence", "perturbation_curve", "step_counts"]

STEPS = 12
"""Default deletion/insertion steps: ``steps + 1`` forward passes per image and curve."""


def step_counts(n_pixels: int, steps: int) -> torch.Tensor:
    """Pixels moved after each of ``0..steps`` steps: ``round(i · N / steps)``."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.round(torch.arange(steps + 1, dtype=torch.float64) * n_pixels / steps).long()


def perturbation_curve(probs: ProbFn, x: torch.Tensor, fill: Fill, maps: torch.Tensor,
                       classes: torch.Tensor, steps: int = STEPS, insertion: bool = False
                       ) -> torch.Tensor:
    """Class probability ``(B, steps + 1)`` while the most salient pixels are removed
    (deletion: at step ``i`` the top ``i/steps`` of the pixels show the baseline ``fill``) or
    given back (insertion: at step ``i`` only the top ``i/steps`` show ``x``).

    Images of one step are built and scored together; ``probs`` chunks the forward passes.
    """
    b, _, h, w = x.shape
    order = saliency_order(upsample_cams(maps.float(), (h, w)))  # (B, H, W)
    counts = step_counts(h * w, steps).to(x.device)
    curve = []
    for k in counts:
        moved = order < k
        removed = ~moved if insertion else moved
        curve.append(class_probability(probs, fill(x, removed), classes))
    return torch.stack(curve, dim=1)


def deletion_insertion(probs: ProbFn, x: torch.Tensor, maps: torch.Tensor,
                       classes: torch.Tensor, steps: int = STEPS,
                       fill: Fill | None = None) -> dict[str, torch.Tensor]:
    """Deletion and insertion curves and their AUCs, per image.

    ``fill``: the baseline (:mod:`fer_core.xai.baselines`; default its ``DEFAULT``). Returns
    ``deletion`` and ``insertion`` ``(B,)`` AUCs and the curves ``deletion_curve``,
    ``insertion_curve`` ``(B, steps + 1)``; ``2 · (steps + 1)`` forward passes per image.
    """
    fill = fill if fill is not None else baseline(DEFAULT)
    deletion = perturbation_curve(probs, x, fill, maps, classes, steps)
    insertion = perturbation_curve(probs, x, fill, maps, classes, steps, insertion=True)
    return {"deletion": trapezoid_auc(deletion), "insertion": trapezoid_auc(insertion),
            "deletion_curve": deletion, "insertion_curve": insertion}


def confidence_change(probs: ProbFn, x: torch.Tensor, maps: torch.Tensor,
                      classes: torch.Tensor, base: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Y, O)``: the class probability on ``x`` and on ``x ⊙ map``, ``(B,)`` each.

    ``base`` (``Y``, when already known) saves one forward pass per image.
    """
    masked = x * upsample_cams(maps.float(), x.shape[-2:]).unsqueeze(1).to(x.dtype)
    y = class_probability(probs, x, classes) if base is None else base
    return y, class_probability(probs, masked, classes)


def average_drop(y: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """Per-image ``100 · max(0, Y − O) / Y`` (its mean is the Average Drop, lower is better)."""
    return 100.0 * (y - o).clamp_min(0.0) / y.clamp_min(1e-12)


def increase_in_confidence(y: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """Per-image ``100 · [O > Y]`` (its mean is the Increase in Confidence, higher is better)."""
    return 100.0 * (o > y).float()
