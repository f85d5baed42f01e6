"""Shared pieces of the interpretability metrics: maps, class probabilities, ranks.

Every function is batched over images, runs on the device of its inputs and never keeps an
autograd graph. A *map* is ``(B, h, w)`` in ``[0, 1]`` (what :meth:`CamMethod.cams` returns);
metrics bring it to the AU map's / input's size with :func:`fer_core.cams.upsample_cams`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fer_core.cams.base import minmax_normalize
from fer_core.losses import layer_attention

ProbFn = Callable[[torch.Tensor], torch.Tensor]
"""Images ``(N, 3, H, W)`` → class probabilities ``(N, K)``."""


def logits_of(output: object) -> torch.Tensor:
    """Logits out of a model's forward: a :class:`~fer_core.cams.MethodOutput` or a tensor."""
    logits = getattr(output, "logits", output)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise TypeError(f"the model must return (N, K) logits or an object with .logits, got "
                        f"{type(output).__name__}")
    return logits


def probability_fn(model: nn.Module, chunk: int = 64) -> ProbFn:
    """``x ↦ softmax(model(x))``, run in chunks of ``chunk`` images under ``no_grad``.

    Chunks bound the memory of the perturbation metrics, which feed many copies of each image.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")

    @torch.no_grad()
    def probs(x: torch.Tensor) -> torch.Tensor:
        parts = [F.softmax(logits_of(model(part)).float(), dim=1) for part in x.split(chunk)]
        return torch.cat(parts)

    return probs


def class_probability(probs: ProbFn, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """``p(class_i | x_i)`` for ``x`` ``(N, 3, H, W)`` and ``classes`` ``(N,)`` → ``(N,)``."""
    return probs(x).gather(1, classes.view(-1, 1).to(x.device)).squeeze(1)


def explanation_maps(model: nn.Module, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """The map a method explains ``classes`` with, ``(B, h, w)`` in ``[0, 1]``.

    The CAM of the class when the method has one; otherwise (APViT, attention only) the
    headline layer's attention, the map its ATT-COS scores.
    """
    if getattr(model, "has_cam", True):
        with torch.enable_grad():  # gradient-based CAMs need autograd; cams() detaches
            return model.cams(x, classes).float()
    with torch.no_grad():
        feats = model(x, layers=(model.headline_layer,)).feats
    return minmax_normalize(layer_attention(feats[model.headline_layer].float()))


def random_maps(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Uniform noise maps shaped like ``like`` ``(B, h, w)``: the chance level of every metric.

    Drawn on the CPU from ``generator`` (same numbers on any device), then moved.
    """
    noise = torch.rand(like.shape, generator=generator, dtype=torch.float32)
    return noise.to(like.device)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks ``1..N`` along the last dim of ``(B, N)``, ties sharing their average rank.

    The ranks of Spearman's correlation and of the Mann–Whitney form of the ROC AUC; without
    averaging, a map with flat regions (ReLU zeros) would score by the pixels' scan order.
    """
    if values.dim() != 2:
        raise ValueError(f"average_ranks expects (B, N), got {tuple(values.shape)}")
    b, n = values.shape
    ordered, order = values.sort(dim=1, stable=True)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = starts.long().cumsum(dim=1) - 1 + torch.arange(b, device=values.device)[:, None] * n
    position = torch.arange(n, device=values.device, dtype=torch.float64).expand(b, n)
    flat_group = group.reshape(-1)
    first = torch.full((b * n,), float(n), dtype=torch.float64, device=values.device)
    last = torch.zeros(b * n, dtype=torch.float64, device=values.device)
    first.scatter_reduce_(0, flat_group, position.reshape(-1), reduce="amin")
    last.scatter_reduce_(0, flat_group, position.reshape(-1), reduce="amax")
    sorted_ranks = ((first[flat_group] + last[flat_group]) / 2 + 1).view(b, n)
    return torch.empty_like(sorted_ranks).scatter_(1, order, sorted_ranks)


def saliency_order(maps: torch.Tensor) -> torch.Tensor:
    """Each pixel's position ``0..N-1`` in descending saliency, ``(B, H, W)`` → ``(B, H, W)``.

    Ties are broken by pixel index (a stable sort), as in Petsiuk et al.'s reference code.
    """
    b = maps.shape[0]
    flat = maps.reshape(b, -1)
    order = flat.argsort(dim=1, descending=True, stable=True)
    position = torch.empty_like(order)
    position.scatter_(1, order, torch.arange(flat.shape[1], device=maps.device).expand_as(order))
    return position.view_as(maps)


def trapezoid_auc(curve: torch.Tensor) -> torch.Tensor:
    """Area under ``(B, S + 1)`` values at evenly spaced fractions ``0, 1/S, …, 1`` → ``(B,)``."""
    return ((curve[:, 1:] + curve[:, :-1]) / 2).mean(dim=1)

