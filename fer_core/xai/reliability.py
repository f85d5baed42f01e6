"""How far a metric can be trusted (after MetaQuantus: Hedström et al., "The meta-evaluation
problem in explainable AI", TMLR 2023).

A metric is *reliable* at a given image count when

- its value is stable over the evaluated images: the 95 % bootstrap interval of the mean
  (:func:`bootstrap_interval`) is narrower than the difference it is asked to show;
- it *reacts* to what it should: randomising the model's weights changes it
  (:func:`randomised_copy`, the MPRT idea applied to the metric, not the map);
- it *resists* what it should not: a small input perturbation that keeps the prediction barely
  moves it (:func:`perturbed_inputs`).

:func:`separates` is the verdict Table 4 prints: can the metric tell two arms apart at the
evaluated size and count (their intervals do not overlap)?
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from fer_core.xai.common import BOOTSTRAP, bootstrap_interval  # noqa: F401  (this module's API)


def separates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals ``(low, high)`` are disjoint (NaN never separates)."""
    if any(np.isnan(v) for v in (*a, *b)):
        return False
    return a[1] < b[0] or b[1] < a[0]


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every parameter redrawn from N(0, std of the original tensor)
    (the last step of the MPRT cascade, at once); the original is untouched."""
    out = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            std = float(p.float().std()) if p.numel() > 1 else 1.0
            p.copy_(torch.randn(p.shape, generator=gen).to(p) * (std or 1.0))
    return out.eval()


def perturbed_inputs(model: nn.Module, x: torch.Tensor, scale: float = 0.02,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` plus Gaussian noise of ``scale`` (normalised units), and a ``(B,)`` bool mask of
    the images whose predicted class the noise kept (only those count for stability)."""
    gen = torch.Generator().manual_seed(seed)
    noisy = x + scale * torch.randn(x.shape, generator=gen).to(x)
    with torch.no_grad():
        before = _logits(model(x)).argmax(1)
        after = _logits(model(noisy)).argmax(1)
    return noisy, before == after


def _logits(output) -> torch.Tensor:
    return getattr(output, "logits", output)


def metric_reliability(model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                       au_maps: torch.Tensor, cfg, seed: int = 0,
                       noise: float = 0.02) -> dict[str, dict[str, float]]:
    """Per metric of ``fer_core.xai`` on one model and image set: ``value`` (mean over the
    images), ``ci_low``/``ci_high`` (95 % bootstrap interval), ``randomised`` (the value for a
    copy with redrawn weights), ``perturbed`` (the value on inputs with Gaussian noise of
    ``noise``, over the images whose prediction the noise kept), ``kept`` (their share),
    ``random`` (the value of uniform random maps on the same images)."""
    from dataclasses import replace

    from fer_core.xai.evaluate import run_xai
    from fer_core.xai.names import METRICS

    plain = run_xai(model, x, labels, au_maps, replace(cfg, controls=("random",))).values
    cfg = replace(cfg, controls=())
    shuffled = run_xai(randomised_copy(model, seed), x, labels, au_maps, cfg).values
    noisy, kept = perturbed_inputs(model, x, noise, seed)
    moved = run_xai(model, noisy[kept], labels[kept], au_maps[kept], cfg).values if kept.any() \
        else {}
    out = {}
    for metric in METRICS:
        values = plain[metric.name].double().cpu().numpy()
        low, high = bootstrap_interval(values, seed=seed)

        def mean(source: dict, name: str = metric.name) -> float:
            return float(np.nanmean(source[name].double().cpu().numpy())) if name in source \
                else float("nan")

        out[metric.name] = {"value": float(np.nanmean(values)), "ci_low": low, "ci_high": high,
                            "randomised": mean(shuffled), "perturbed": mean(moved),
                            "kept": float(kept.float().mean()),
                            "random": mean(plain, metric.name + "_random")}
    return out
