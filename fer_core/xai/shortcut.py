"""Ground truth from the shortcut cue: does the map show a cue the model relies on?

The synthetic dataset's ``shortcut=p`` option paints a class-coloured square at a class-specific
spot of the background in train/val images (``fer_core.data.synthetic``), never in test. A
model trained with it may decide from the square, whose position is known, so the test split
with the square painted back in gives an explanation its ground truth (docs/method.md §7.2).

On test images (expression classes with a valid AU map, the subsample of
:func:`fer_core.xai.evaluate.select_images`), three questions, per image:

- **reliance**, the accuracy and the true class's probability with the square in its place
  (``in_place``), without it (``removed``: the clean test image), moved to another class's spot
  (``moved``: same colour, class ``(y + 1) mod 7``'s position) and replaced by another class's
  square (``swapped``: colour and spot of class ``(y + 1) mod 7``); ``follows`` is the share of
  ``swapped`` images predicted as the square's class.
- **attribution to the cue**, on the ``in_place`` images: the share of the map's mass inside the
  square (``mass``) and that share over the square's share of the image (``mass_ratio``: 1 is a
  uniform map), and the pointing game at the map's own resolution (``pointing``: the map's
  maximal cell overlaps the square; an upsampled 3×3 map cannot point at a 4 px square any
  finer). The same for each aligned layer's attention (``..._att_l<k>``).
- **faithfulness under guidance**: per image, Spearman's ρ between reliance
  (``p(in_place) − p(removed)``) and the CAM's ``mass_ratio`` (``rho``), so λ = 0 and λ > 0 arms
  can be compared: a guided model that still relies on the square but whose map moved away from
  it hides its evidence.

A trial with ``shortcut_images`` > 0 logs the same numbers as ``test_shortcut_<name>``
(:func:`evaluate_shortcut`; the names: :func:`fer_core.metric_names.shortcut_keys`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_core import NUM_CLASSES
from fer_core import metric_names as mn
from fer_core.cams import upsample_cams
from fer_core.cams.base import minmax_normalize
from fer_core.data.synthetic import SHORTCUT_COLOURS, shortcut_box
from fer_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fer_core.losses import layer_attention
from fer_core.xai.common import explanation_maps, logits_of
from fer_core.xai.evaluate import select_images

CONDITIONS = mn.SHORTCUT_CONDITIONS


def other_class(labels: torch.Tensor) -> torch.Tensor:
    """The class whose spot/square a ``moved``/``swapped`` image gets: ``(y + 1) mod 7``."""
    return (labels + 1) % NUM_CLASSES


def paint(x: torch.Tensor, spots: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """``x`` (normalised ``(B, 3, S, S)``) with class ``colours[i]``'s colour painted at class
    ``spots[i]``'s square (the generator's box and colour, normalised like the input)."""
    out = x.clone()
    size = x.shape[-1]
    for i, (spot, colour) in enumerate(zip(spots.tolist(), colours.tolist(), strict=True)):
        y0, y1, x0, x1 = shortcut_box(spot, size)
        rgb = (np.asarray(SHORTCUT_COLOURS[colour], np.float32) / 255 - IMAGENET_MEAN) \
            / IMAGENET_STD
        out[i, :, y0:y1, x0:x1] = torch.as_tensor(rgb, dtype=x.dtype).view(3, 1, 1)
    return out


def conditions(x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The test images under each of :data:`CONDITIONS` (``x`` is the clean image)."""
    other = other_class(labels)
    return {"in_place": paint(x, labels, labels), "removed": x,
            "moved": paint(x, other, labels), "swapped": paint(x, other, other)}


def square_masks(labels: torch.Tensor, size: int) -> torch.Tensor:
    """Bool ``(B, size, size)``: each image's true-class square."""
    mask = torch.zeros(len(labels), size, size, dtype=torch.bool)
    for i, label in enumerate(labels.tolist()):
        y0, y1, x0, x1 = shortcut_box(label, size)
        mask[i, y0:y1, x0:x1] = True
    return mask


def cue_attribution(maps: torch.Tensor, labels: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
    """``mass``, ``mass_ratio`` and ``pointing`` ``(B,)`` of maps ``(B, h, w)`` against each
    image's true-class square (see the module docstring)."""
    square = square_masks(labels, size).to(maps.device)
    up = upsample_cams(maps.float(), (size, size))
    total = up.flatten(1).sum(1).clamp_min(1e-12)
    mass = (up * square).flatten(1).sum(1) / total
    area = square.flatten(1).float().mean(1)
    h, w = maps.shape[-2:]
    top = maps.flatten(1).argmax(1).cpu()
    hits = []
    for i, label in enumerate(labels.tolist()):  # does the maximal cell overlap the square?
        y0, y1, x0, x1 = shortcut_box(label, size)
        row, col = divmod(int(top[i]), w)
        cell_y = (row * size / h, (row + 1) * size / h)
        cell_x = (col * size / w, (col + 1) * size / w)
        hits.append(cell_y[0] < y1 and y0 < cell_y[1] and cell_x[0] < x1 and x0 < cell_x[1])
    pointing = torch.tensor(hits, dtype=torch.float32, device=maps.device)
    return {"mass": mass, "mass_ratio": mass / area, "pointing": pointing}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    keep = ~(np.isnan(a) | np.isnan(b))
    if keep.sum() < 3:
        return float("nan")
    ra = np.argsort(np.argsort(a[keep])).astype(float)
    rb = np.argsort(np.argsort(b[keep])).astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@torch.no_grad()
def _probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits_of(model(x)).float(), dim=1)


def measure(model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
            layers: Sequence[int] = ()) -> dict[str, float]:
    """Every number of the module docstring for one model on clean test images ``x`` (on the
    model's device) and their ``labels``: means over the images, flat."""
    model.eval()
    out: dict[str, float] = {}
    probs = {}
    for name, images in conditions(x, labels).items():
        p = _probabilities(model, images)
        probs[name] = p
        out[f"acc_{name}"] = float((p.argmax(1) == labels).float().mean() * 100)
        out[f"p_true_{name}"] = float(p.gather(1, labels.view(-1, 1)).mean())
    out["follows"] = float((probs["swapped"].argmax(1) == other_class(labels)).float().mean()
                           * 100)
    cued = conditions(x, labels)["in_place"]
    size = x.shape[-1]
    cam = cue_attribution(explanation_maps(model, cued, labels), labels.cpu(), size)
    out.update({f"cam_{k}": float(v.mean()) for k, v in cam.items()})
    if layers:
        with torch.no_grad():
            feats = model(cued, layers=tuple(layers)).feats
        for k in layers:
            att = minmax_normalize(layer_attention(feats[k].float()))
            scores = cue_attribution(att, labels.cpu(), size)
            out.update({f"att_l{k}_{name}": float(v.mean()) for name, v in scores.items()})
    reliance = (probs["in_place"] - probs["removed"]).gather(1, labels.view(-1, 1)).squeeze(1)
    out["reliance"] = float(reliance.mean())
    out["rho"] = _spearman(reliance.cpu().numpy(), cam["mass_ratio"].cpu().numpy())
    return out


def evaluate_shortcut(model: nn.Module, data, n_images: int, seed: int, au_variant: str,
                      layers: Sequence[int] = (), device: torch.device | str | None = None
                      ) -> dict[str, float]:
    """:func:`measure` on the seeded subsample of ``data`` (a test dataset or loader) that the
    interpretability metrics score (:func:`fer_core.xai.evaluate.select_images`), as
    ``test_shortcut_<name>`` floats; none when ``n_images`` is 0."""
    if n_images == 0:
        return {}
    device = torch.device(device) if device is not None else next(model.parameters()).device
    x, labels, _ = select_images(data, n_images, seed, au_variant)
    scores = measure(model, x.to(device), labels.to(device), tuple(layers))
    scores[mn.SHORTCUT_N_IMAGES] = float(len(x))
    return {mn.shortcut_key(name): value for name, value in scores.items()}
