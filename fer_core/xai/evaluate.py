"""The one entry point: every interpretability metric of a trained model on a fixed subsample.

    scores = evaluate_xai(model, test_loader, XaiConfig(n_images=16, seed=0), au_variant)

returns flat ``test_xai_<metric>`` floats (:mod:`fer_core.xai.names`), the same metric of each
control map ``test_xai_<metric>_<control>`` (:mod:`fer_core.xai.controls`: random, centred
Gaussian, the AU map; on the same images), the randomisation
test per cascade step ``test_xai_mprt_<step>``, and, for the attention of each layer in
``layers``, the localisation metrics ``test_xai_<metric>_att_l<k>``.

The subsample is fixed by ``seed`` and independent of the model: images are visited in a
seeded random order and the first ``n_images`` expression images (not Neutral) with a valid AU
map are kept, so every trial with the same data and seed scores the same images. Maps and
perturbations explain each image's **true** class, as CAM-COS does.

Cost: besides the maps, ``2 · (steps + 1)`` forward passes per image for deletion/insertion,
1 for Average Drop / Increase in Confidence, ``2 · len(road_percentiles)`` for ROAD (all
doubled by the random baseline), 1 for the unperturbed probability, and one map per image and
randomisation step. :func:`run_xai` reports the images through the backbone per group.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from fer_core import NEUTRAL
from fer_core.au import render_au_maps
from fer_core.cams import upsample_cams
from fer_core.cams.base import minmax_normalize
from fer_core.cli import UserError
from fer_core.losses import layer_attention
from fer_core.xai import baselines as bl
from fer_core.xai import faithfulness as fa
from fer_core.xai import localisation as lo
from fer_core.xai import road as rd
from fer_core.xai.common import (
    bootstrap_interval,
    class_probability,
    explanation_maps,
    probability_fn,
)
from fer_core.xai.controls import CONTROLS, control_maps
from fer_core.xai.names import BY_NAME, PREFIX
from fer_core.xai.sanity import randomisation_test, spearman

GROUPS = ("maps", "localisation", "deletion_insertion", "confidence", "road", "sanity")
"""Cost groups of :func:`run_xai`, in the order they run."""


@dataclass(frozen=True)
class XaiConfig:
    """What :func:`evaluate_xai` computes, on how many images. Defaults meet the cost goal of
    ``bench/xai_cost.py`` (≤ 10 % of a default sweep trial's time)."""

    n_images: int = 12
    seed: int = 0
    steps: int = fa.STEPS
    baseline: str = bl.DEFAULT
    """What deletion/insertion fill removed pixels with (:mod:`fer_core.xai.baselines`)."""
    blur_sigma: float = bl.BLUR_SIGMA
    au_threshold: float = lo.AU_THRESHOLD
    top_percent: float = lo.TOP_PERCENT
    road_percentiles: tuple[float, ...] = rd.PERCENTILES
    road_noise: float = rd.NOISE
    mprt_steps: int | None = None
    """Randomisation cascade steps to run (None: all; 0: skip the test)."""
    controls: tuple[str, ...] = tuple(CONTROLS.names())
    """Control maps scored beside the model's (:mod:`fer_core.xai.controls`; () for none)."""
    chunk: int = 64
    """Images per forward pass of the perturbation metrics (memory bound)."""

    def __post_init__(self) -> None:
        checks = [
            (self.baseline in bl.BASELINES, "baseline",
             f"use one of {', '.join(bl.BASELINES.names())}"),
            (self.n_images >= 1, "n_images", "use >= 1"),
            (self.steps >= 1, "steps", "use >= 1"),
            (self.blur_sigma > 0, "blur_sigma", "use a positive fraction of the image side"),
            (0 < self.au_threshold <= 1, "au_threshold", "use a fraction in (0, 1]"),
            (0 < self.top_percent <= 100, "top_percent", "use a percentage in (0, 100]"),
            (len(self.road_percentiles) > 0 and all(0 < p < 100 for p in self.road_percentiles),
             "road_percentiles", "use one or more percentiles in (0, 100)"),
            (self.road_noise >= 0, "road_noise", "use >= 0"),
            (self.mprt_steps is None or self.mprt_steps >= 0, "mprt_steps", "use None or >= 0"),
            (self.chunk >= 1, "chunk", "use >= 1"),
            (all(c in CONTROLS for c in self.controls), "controls",
             f"use names among {', '.join(CONTROLS.names())}"),
        ]
        for ok, name, fix in checks:
            if not ok:
                raise UserError(f"XaiConfig.{name}={getattr(self, name)!r} is invalid: {fix}")


@dataclass
class XaiResult:
    """Per-image values by metric name (``<name>`` and ``<name>_random``), images through the
    backbone per cost group, and seconds."""

    values: dict[str, torch.Tensor] = field(default_factory=dict)
    passes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    n_images: int = 0

    def flat(self) -> dict[str, float]:
        """``test_xai_<name>``: the mean over images (NaN images skipped), as floats; for the
        model's own metrics also ``test_xai_<name>_ci95``, the half-width of the 95 % bootstrap
        interval of that mean."""
        out = {}
        for name, per_image in self.values.items():
            kept = per_image[~torch.isnan(per_image)]
            out[PREFIX + name] = float(kept.double().mean()) if kept.numel() else math.nan
            if name in BY_NAME:  # the metric's resolution at this image count
                low, high = bootstrap_interval(kept.double().cpu().numpy())
                out[BY_NAME[name].interval_key] = (high - low) / 2
        return out


def select_images(data, n_images: int, seed: int, au_variant: str
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, labels, au_maps)`` of the seeded subsample (see the module docstring).

    ``data``: a dataset of sample dicts (``image``, ``label``, ``landmarks``) or a DataLoader
    over one. Fewer images are returned when the split has fewer usable ones.
    """
    dataset = getattr(data, "dataset", data)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    images, labels, maps = [], [], []
    kept = 0
    for start in range(0, len(order), 2 * n_images):
        block = [dataset[int(i)] for i in order[start:start + 2 * n_images]]
        block = [s for s in block if int(s["label"]) != NEUTRAL]
        if not block:
            continue
        x = torch.stack([s["image"] for s in block])
        y = torch.tensor([int(s["label"]) for s in block])
        points = torch.stack([torch.as_tensor(s["landmarks"]) for s in block]).float()
        au, valid = render_au_maps(points, y, tuple(x.shape[-2:]), au_variant)
        take = valid.nonzero().squeeze(1)[: n_images - kept]
        images.append(x[take])
        labels.append(y[take])
        maps.append(au[take])
        kept += len(take)
        if kept >= n_images:
            break
    if not kept:
        raise ValueError(f"no expression image with a valid AU map ({au_variant} variant) among "
                         f"{len(dataset)} images: cannot score interpretability")
    return torch.cat(images), torch.cat(labels), torch.cat(maps)


def _stem(model: nn.Module) -> nn.Module:
    """The first convolution of the model: every image the network sees passes it once (CNN
    stems, a ViT's patch embedding, APViT's IR stem), whichever entry point was called."""
    return next((m for m in model.modules() if isinstance(m, nn.Conv2d)), model)


@contextmanager
def count_images(model: nn.Module, into: dict[str, int], group: str):
    """Add the images that pass through the model's stem to ``into[group]``."""
    seen = [0]

    def hook(_module, args):
        seen[0] += int(args[0].shape[0])

    handle = _stem(model).register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()
        into[group] = into.get(group, 0) + seen[0]


def _attention(model: nn.Module, x: torch.Tensor, layers: Sequence[int]) -> dict[int, torch.Tensor]:
    with torch.no_grad():
        feats = model(x, layers=tuple(layers)).feats
    return {k: minmax_normalize(layer_attention(feats[k].float())) for k in layers}


def run_xai(model: nn.Module, x: torch.Tensor, classes: torch.Tensor, au_maps: torch.Tensor,
            cfg: XaiConfig, layers: Sequence[int] = ()) -> XaiResult:
    """Every metric on one batch of images (already on the model's device); see the module
    docstring for the names."""
    model.eval()
    result = XaiResult(n_images=len(x))
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    probs = probability_fn(model, cfg.chunk)
    count = result.passes
    with count_images(model, count, "maps"):
        maps = explanation_maps(model, x, classes)
        attention = _attention(model, x, layers) if layers else {}
    fill = bl.baseline(cfg.baseline, bl.BaselineParams(cfg.blur_sigma, cfg.road_noise, cfg.seed))
    candidates = {"": maps}
    candidates.update({"_" + name: m for name, m in
                       control_maps(cfg.controls, maps, au_maps, gen).items()})
    values = result.values
    with count_images(model, count, "localisation"):
        for suffix, m in candidates.items():
            for name, v in lo.localisation_scores(m, au_maps, cfg.au_threshold,
                                                  cfg.top_percent).items():
                values[name + suffix] = v
        for k, att in attention.items():
            for name, v in lo.localisation_scores(att, au_maps, cfg.au_threshold,
                                                  cfg.top_percent).items():
                values[f"{name}_att_l{k}"] = v
    with count_images(model, count, "confidence"):
        base = class_probability(probs, x, classes)
    for suffix, m in candidates.items():
        with count_images(model, count, "deletion_insertion"):
            curves = fa.deletion_insertion(probs, x, m, classes, cfg.steps, fill)
        values["deletion" + suffix] = curves["deletion"]
        values["insertion" + suffix] = curves["insertion"]
        with count_images(model, count, "confidence"):
            y, o = fa.confidence_change(probs, x, m, classes, base)
        values["average_drop" + suffix] = fa.average_drop(y, o)
        values["increase_confidence" + suffix] = fa.increase_in_confidence(y, o)
        with count_images(model, count, "road"):
            scores = rd.road(probs, x, m, classes, cfg.road_percentiles, cfg.road_noise, gen)
        values.update({name + suffix: v for name, v in scores.items()})
    if cfg.mprt_steps != 0:
        with count_images(model, count, "sanity"):
            steps = randomisation_test(model, x, classes, maps, cfg.seed, cfg.mprt_steps)
        values.update({f"mprt_{step}": v for step, v in steps.items()})
        values["mprt"] = torch.stack(list(steps.values())).mean(dim=0)
        size = au_maps.shape[-2:]
        for suffix, m in candidates.items():
            if suffix:  # a control does not depend on the weights: ρ against the model's map
                values["mprt" + suffix] = spearman(upsample_cams(maps, size),
                                                   upsample_cams(m, size))
    result.seconds = time.perf_counter() - start
    return result


def evaluate_xai(model: nn.Module, data, cfg: XaiConfig, au_variant: str = "reference",
                 layers: Sequence[int] = (), device: torch.device | str | None = None
                 ) -> dict[str, float]:
    """Flat ``test_xai_*`` metrics of ``model`` on the seeded subsample of ``data`` (a test
    dataset or loader); see the module docstring. ``device``: default, the model's."""
    if device is None:
        device = next(model.parameters()).device
    x, labels, au_maps = select_images(data, cfg.n_images, cfg.seed, au_variant)
    device = torch.device(device)
    result = run_xai(model, x.to(device), labels.to(device), au_maps.to(device), cfg, layers)
    flat = result.flat()
    flat[PREFIX + "n_images"] = float(result.n_images)
    flat[PREFIX + "time_s"] = result.seconds
    return flat
