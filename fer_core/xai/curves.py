"""One image's deletion and insertion curves, as numbers and as a figure
(``python -m fer_core.explain IMAGE ... --faithfulness``).

The curves are those of :func:`fer_core.xai.faithfulness.deletion_insertion` (Petsiuk et al.,
2018): the probability of the explained class while the map's most salient pixels are moved,
``1/steps`` of the image per step, to (deletion) or from (insertion) a blurred copy. The figure
is built with matplotlib's object API and returned; nothing here touches pyplot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from fer_core.xai.baselines import DEFAULT, baseline
from fer_core.xai.common import explanation_maps, probability_fn
from fer_core.xai.faithfulness import STEPS, deletion_insertion


@dataclass(frozen=True)
class Curves:
    """Probability of the explained class at fractions ``0, 1/steps, …, 1`` of moved pixels."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> float:
        return float(np.trapezoid(self.deletion, self.fractions))

    @property
    def insertion_auc(self) -> float:
        return float(np.trapezoid(self.insertion, self.fractions))


def image_curves(model: nn.Module, x: torch.Tensor, target: int, steps: int = STEPS,
                 baseline_name: str = DEFAULT) -> Curves:
    """The curves of one normalised image ``x`` ``(1, 3, S, S)`` for class ``target``, with the
    map the method explains that class with, towards baseline ``baseline_name``
    (:mod:`fer_core.xai.baselines`)."""
    model.eval()
    classes = torch.tensor([target], device=x.device)
    maps = explanation_maps(model, x, classes)
    out = deletion_insertion(probability_fn(model), x, maps, classes, steps,
                             baseline(baseline_name))
    return Curves(np.linspace(0.0, 1.0, steps + 1),
                  out["deletion_curve"][0].cpu().numpy(), out["insertion_curve"][0].cpu().numpy())


def curves_figure(curves: Curves, title: str) -> Figure:
    """Deletion and insertion curves side by side, their AUCs in the titles."""
    fig = Figure(figsize=(7.0, 3.0), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (name, values, auc, better) in zip(axes, (
            ("Deletion", curves.deletion, curves.deletion_auc, "lower is better"),
            ("Insertion", curves.insertion, curves.insertion_auc, "higher is better")),
            strict=True):
        ax.plot(curves.fractions, values, marker="o", markersize=3)
        ax.fill_between(curves.fractions, values, alpha=0.25)
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("fraction of pixels moved (most salient first)", fontsize=8)
        ax.set_ylabel("class probability", fontsize=8)
        ax.set_title(f"{name}: AUC {auc:.3f} ({better})", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig
