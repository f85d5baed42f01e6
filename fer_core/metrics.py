"""Streaming evaluation metrics (docs/method.md §7): CL, confusion, ATT-COS per layer, CAM-COS.

Definitions, for the images of one evaluation split:

- ``cl``: top-1 accuracy in percent over all images, Neutral included.
- ``confusion``: counts ``[true, predicted]``, each row divided by its sum (a row with no
  image stays all zeros).
- per image: cosine between a map (a layer's attention or the true-class CAM), upsampled
  bilinearly to the AU map's size, and the AU map ``A``. Images whose ``A`` is invalid and
  Neutral images (even with a valid ``A``, e.g. the ``generic`` AU variant) are left out.
- per class: the mean of those cosines over the images of that true class; a class with no
  contributing image is NaN.
- ``att_cos[layer]`` / ``cam_cos``: the unweighted mean of the per-class values over the six
  expression classes, skipping NaN classes (NaN if all are NaN). Unweighted so that a frequent
  class (Happiness in RAF-DB) does not dominate.

State is a few float64/int64 CPU vectors (counts and sums per class), never the maps
themselves, so an epoch of any size costs the same memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from fer_core import CLASSES, NEUTRAL, NUM_CLASSES
from fer_core.losses import cosine_per_sample, resize_maps


def _macro(values: Sequence[float]) -> float:
    """Unweighted mean of the non-NaN values; NaN if there is none."""
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


class _ClassCosine:
    """Per-class running sums of cosines (float64) and their counts."""

    def __init__(self, num_classes: int) -> None:
        self.sums = torch.zeros(num_classes, dtype=torch.float64)
        self.counts = torch.zeros(num_classes, dtype=torch.int64)

    def add(self, labels: torch.Tensor, cos: torch.Tensor) -> None:
        n = self.sums.numel()
        self.sums += torch.bincount(labels, weights=cos.double(), minlength=n)
        self.counts += torch.bincount(labels, minlength=n)

    def per_class(self, classes: Sequence[int]) -> list[float]:
        return [
            float(self.sums[k] / self.counts[k]) if self.counts[k] > 0 else math.nan
            for k in classes
        ]


class FERMetrics:
    """Accumulates CL, the confusion matrix, ATT-COS per layer and CAM-COS over batches.

    Args:
        layers: the tapped layers whose attention is scored, in the order of the cosine
            matrix's columns.
        num_classes: number of classes; class :data:`fer_core.NEUTRAL` (0) is excluded from the
            cosine metrics, the others are the expression classes.
    """

    def __init__(self, layers: Sequence[int], num_classes: int = NUM_CLASSES) -> None:
        layers = tuple(int(layer) for layer in layers)
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers must be unique, got {layers}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.layers = layers
        self.num_classes = num_classes
        self.expression_classes = tuple(k for k in range(num_classes) if k != NEUTRAL)
        self.class_names = tuple(
            CLASSES[k] if k < len(CLASSES) else f"class{k}" for k in range(num_classes)
        )
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        k = self.num_classes
        self._confusion = torch.zeros(k, k, dtype=torch.int64)
        self._att = {layer: _ClassCosine(k) for layer in self.layers}
        self._cam = _ClassCosine(k)
        self._seen_cams = False
        self._n_invalid = 0
        self._n_scored = torch.zeros(k, dtype=torch.int64)

    @torch.no_grad()
    def update(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        attn: Mapping[int, torch.Tensor] | None,
        au_maps: torch.Tensor,
        valid: torch.Tensor,
        cams: torch.Tensor | None = None,
    ) -> None:
        """Add one batch.

        Args:
            logits: ``(B, K)``.
            labels: ``(B,)`` true class ids.
            attn: ``{layer: (B, h, w)}`` attention maps for (at least) every layer in
                ``self.layers``, or ``None`` to score no attention in this batch.
            au_maps: ``A`` ``(B, H, W)``; maps are upsampled to ``(H, W)`` before the cosine.
            valid: ``(B,)`` bool, whether each ``A`` is usable.
            cams: ``(B, h, w)`` CAM of each image's **true** class, or ``None``.
        """
        b = labels.shape[0]
        if logits.dim() != 2 or logits.shape != (b, self.num_classes):
            raise ValueError(
                f"logits must be (B, {self.num_classes}) with B={b}, got {tuple(logits.shape)}"
            )
        if au_maps.dim() != 3 or au_maps.shape[0] != b or tuple(valid.shape) != (b,):
            raise ValueError(
                f"au_maps must be (B, H, W) and valid (B,) with B={b}; got "
                f"{tuple(au_maps.shape)} and {tuple(valid.shape)}"
            )
        labels_cpu = labels.detach().to("cpu", torch.int64)
        pred = logits.detach().argmax(dim=1).to("cpu", torch.int64)
        k = self.num_classes
        self._confusion += torch.bincount(labels_cpu * k + pred, minlength=k * k).view(k, k)

        valid_cpu = valid.detach().to("cpu", torch.bool)
        self._n_invalid += int((~valid_cpu).sum())
        scored = valid_cpu & (labels_cpu != NEUTRAL)
        self._n_scored += torch.bincount(labels_cpu[scored], minlength=k)
        if not bool(scored.any()):
            return
        # Only the scored images are upsampled and compared: Neutral/invalid ones cost nothing.
        idx = scored.nonzero().squeeze(1).to(au_maps.device)
        target = au_maps.detach().index_select(0, idx)
        scored_labels = labels_cpu[scored]
        size = target.shape[-2:]

        if attn is not None:
            missing = [layer for layer in self.layers if layer not in attn]
            if missing:
                raise ValueError(f"attn lacks layers {missing}; it has {sorted(attn)}")
            for layer in self.layers:
                maps = resize_maps(attn[layer].detach().index_select(0, idx).float(), size)
                self._att[layer].add(scored_labels, cosine_per_sample(maps, target).cpu())
        if cams is not None:
            self._seen_cams = True
            maps = resize_maps(cams.detach().index_select(0, idx).float(), size)
            self._cam.add(scored_labels, cosine_per_sample(maps, target).cpu())

    def compute(self) -> dict[str, Any]:
        """The metrics so far, as plain python floats / lists / dicts (JSON-serialisable;
        NaN marks a value with no data). Keys:

        ``cl``, ``confusion`` (K×K, rows = true class), ``att_cos`` ``{layer: macro}``,
        ``att_cos_per_class`` ``{layer: [one per expression class]}``, ``cam_cos`` and
        ``cam_cos_per_class`` (``None`` if no CAM was ever given), ``cos_matrix``
        (``rows`` = expression class names + ``"average"``, ``cols`` = ``"layer<k>"`` … +
        ``"cam"``, ``values`` rows × cols, the cam column NaN without CAMs), ``n`` (images),
        ``n_invalid`` (images with an invalid ``A``), ``n_scored_per_class`` (images entering
        the cosine averages, per expression class).
        """
        conf = self._confusion.double()
        n = int(self._confusion.sum())
        cl = 100.0 * float(conf.diagonal().sum()) / n if n else math.nan
        row_sums = conf.sum(dim=1, keepdim=True)
        confusion = torch.where(row_sums > 0, conf / row_sums.clamp_min(1), 0.0)

        expr = self.expression_classes
        att_per_class = {layer: self._att[layer].per_class(expr) for layer in self.layers}
        att_cos = {layer: _macro(v) for layer, v in att_per_class.items()}
        cam_per_class = self._cam.per_class(expr) if self._seen_cams else None
        cam_cos = _macro(cam_per_class) if cam_per_class is not None else None

        columns = [att_per_class[layer] for layer in self.layers]
        columns.append(cam_per_class if cam_per_class is not None else [math.nan] * len(expr))
        values = [list(row) for row in zip(*columns, strict=True)]
        values.append([_macro(col) for col in columns])
        cos_matrix = {
            "rows": [self.class_names[k] for k in expr] + ["average"],
            "cols": [f"layer{layer}" for layer in self.layers] + ["cam"],
            "values": values,
        }
        return {
            "cl": cl,
            "confusion": confusion.tolist(),
            "att_cos": att_cos,
            "att_cos_per_class": att_per_class,
            "cam_cos": cam_cos,
            "cam_cos_per_class": cam_per_class,
            "cos_matrix": cos_matrix,
            "n": n,
            "n_invalid": self._n_invalid,
            "n_scored_per_class": [int(self._n_scored[k]) for k in expr],
        }


__all__ = ["FERMetrics"]
