"""Sanity: does the map depend on what the model learned?

Model-parameter randomisation test (Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity
checks for saliency maps", NeurIPS 2018, §3.1, *cascading* form): the layers of a copy of the
trained model are re-initialised from the top down (the method's head, then the backbone's
layers from the last to the first), and after each step the maps of the same images and classes
are compared with the trained model's by Spearman's rank correlation. A map that explains the
model decorrelates quickly (low values are good); one that mostly shows the input's edges keeps a
high correlation however much of the model is random.

Re-initialisation uses each module's own ``reset_parameters`` (PyTorch's default init, batch-norm
statistics included), as Quantus' ``ModelParameterRandomisation`` does; parameters held directly
by a module without one (ViT's class token, position embeddings) are drawn from N(0, 0.02²).
Correlations are taken at the maps' own (feature) resolution, with average ranks for ties; a
constant map has no ranking and correlates 0 with anything.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from fer_core.xai.common import average_ranks, explanation_maps

HEAD = "head"
"""The first cascade step: every parameter outside ``model.backbone``."""


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of each pair of maps ``(B, h, w)`` → ``(B,)``."""
    if a.shape != b.shape:
        raise ValueError(f"maps to correlate differ in shape: {tuple(a.shape)} vs "
                         f"{tuple(b.shape)}")
    ra = average_ranks(a.flatten(1).double())
    rb = average_ranks(b.flatten(1).double())
    ra = ra - ra.mean(dim=1, keepdim=True)
    rb = rb - rb.mean(dim=1, keepdim=True)
    norm = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(norm > 0, (ra * rb).sum(dim=1) / norm.clamp_min(1e-300), 0.0).float()


def _module_positions(backbone: nn.Module) -> tuple[dict[str, int], dict[int, int]]:
    """Registration order of the timm model's modules, and per layer the position of the last
    module inside that layer's tapped module (everything after it is "above" the tap)."""
    names = [name for name, _ in backbone.model.named_modules()]
    position = {name: i for i, name in enumerate(names)}
    ends = {}
    for layer, path in backbone.modules_by_layer.items():
        inside = [i for name, i in position.items() if name == path or name.startswith(path + ".")]
        ends[layer] = max(inside) if inside else position.get(path, 0)
    return position, ends


def cascade_steps(model: nn.Module) -> list[tuple[str, Callable[[str], bool]]]:
    """Top-down steps ``(name, owns)``: ``owns(module name)`` says whether the step's cumulative
    randomisation covers that module of ``model``.

    Steps: ``head``, then ``l<k>`` for the backbone's layers from the last down to 1 (layer
    ``k`` and everything above it random). A backbone without timm layer taps is one step,
    ``backbone``.
    """
    steps: list[tuple[str, Callable[[str], bool]]] = [
        (HEAD, lambda name: not (name == "backbone" or name.startswith("backbone.")))]
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return steps
    if not (hasattr(backbone, "modules_by_layer") and hasattr(backbone, "model")):
        return [*steps, ("backbone", lambda name: True)]
    position, ends = _module_positions(backbone)
    prefix = "backbone.model."

    def above(layer: int) -> Callable[[str], bool]:
        floor = ends[layer - 1] if layer > 1 else -1

        def owns(name: str) -> bool:
            if not name.startswith("backbone"):
                return True
            inner = name[len(prefix):] if name.startswith(prefix) else ""
            return position.get(inner, 0) > floor or layer == 1
        return owns

    return steps + [(f"l{k}", above(k)) for k in sorted(backbone.modules_by_layer, reverse=True)]


@torch.no_grad()
def _reinitialise(model: nn.Module, owns: Callable[[str], bool]) -> None:
    for name, module in model.named_modules():
        direct = list(module.parameters(recurse=False))
        if not direct or not owns(name):
            continue
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:
            for param in direct:
                param.normal_(0.0, 0.02)


def randomisation_test(model: nn.Module, x: torch.Tensor, classes: torch.Tensor,
                       maps: torch.Tensor, seed: int = 0, max_steps: int | None = None
                       ) -> dict[str, torch.Tensor]:
    """Spearman correlation ``(B,)`` of ``maps`` (the trained model's) with the maps of a copy
    randomised top-down, per cascade step (``{step name: (B,)}``, in cascade order).

    ``max_steps`` stops the cascade early (each step costs one map per image). The model is
    not modified; the copy is dropped at the end.
    """
    steps = cascade_steps(model)[: max_steps if max_steps is not None else None]
    clone = copy.deepcopy(model).eval()
    devices = [x.device] if x.device.type == "cuda" else []
    out = {}
    for i, (name, owns) in enumerate(steps):
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed + i)
            _reinitialise(clone, owns)
        out[name] = spearman(maps, explanation_maps(clone, x, classes))
    del clone
    return out
