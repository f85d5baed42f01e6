"""The shared base of all CAM methods (docs/method.md §6).

A method is one small :class:`CamMethod` subclass: it builds its head on a tapped timm
backbone, returns logits, tapped features and its own loss terms from ``forward``, and CAMs of
given classes from ``raw_cams``. The base turns raw CAMs into ``[0, 1]`` maps (per-image
min-max at feature resolution) and owns everything else the engine calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fer_core.models import Backbone, build_backbone

if TYPE_CHECKING:  # MethodConfig is built from the method registry: never import it here
    from fer_core.config import MethodConfig, ModelConfig

HeadOutput = tuple[torch.Tensor, dict[str, torch.Tensor]]
"""What :meth:`CamMethod.head` returns: ``(logits (B, K), extra losses)``."""

NORM_EPS = 1e-8
"""Lower bound on ``max - min`` in :func:`minmax_normalize`: a flat map becomes all zeros."""


@dataclass
class MethodOutput:
    """What a method's training/eval forward returns.

    Attributes:
        logits: ``(B, K)`` class scores (the ones the engine's cross-entropy uses).
        feats: ``{layer: (B, C, h, w)}``, the requested taps plus the backbone's last layer.
        extra_losses: the method's own scalar loss terms, added to the total as they are
            (e.g. ACoL's second-branch cross-entropy); empty for most methods.
    """

    logits: torch.Tensor
    feats: dict[int, torch.Tensor]
    extra_losses: dict[str, torch.Tensor] = field(default_factory=dict)


def minmax_normalize(maps: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Per-map min-max to ``[0, 1]`` over the last two dims; ``(..., h, w)`` in and out."""
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    return ((maps - lo) / (hi - lo).clamp_min(eps)).clamp_(0.0, 1.0)


def upsample_cams(cams: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Upsample CAMs ``(B, h, w)`` to ``size`` (bilinear) and clamp to ``[0, 1]``.

    The one helper used to bring CAMs to image / AU-map resolution (docs/method.md §6).
    """
    if cams.dim() != 3:
        raise ValueError(f"upsample_cams expects (B, h, w), got {tuple(cams.shape)}")
    size = (int(size[0]), int(size[1]))
    if tuple(cams.shape[-2:]) != size:
        cams = F.interpolate(cams.unsqueeze(1), size=size, mode="bilinear",
                             align_corners=False).squeeze(1)
    return cams.clamp(0.0, 1.0)


def gap(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling ``(B, C, h, w) -> (B, C)``."""
    return x.mean(dim=(2, 3))


def resolve_classes(
    class_idx: torch.Tensor | int | None, batch: int, device: torch.device
) -> torch.Tensor | None:
    """``class_idx`` as a ``(B,)`` long tensor; ``None`` stays ``None`` (= predicted class)."""
    if class_idx is None:
        return None
    idx = torch.as_tensor(class_idx, device=device).long()
    if idx.dim() == 0:
        idx = idx.expand(batch)
    if idx.shape != (batch,):
        raise ValueError(
            f"class_idx must be an int or a ({batch},) tensor, got shape {tuple(idx.shape)}"
        )
    return idx


def pick(maps: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Select one class map per sample: ``(B, K, h, w)``, ``(B,)`` → ``(B, h, w)``."""
    return maps[torch.arange(maps.shape[0], device=maps.device), idx]


class CamMethod(nn.Module):
    """Base class: a timm backbone with layer taps plus a method-specific head.

    Subclasses implement :meth:`head` (and, unless they keep the default CAM-style maps,
    :meth:`class_maps` or :meth:`raw_cams`). Construction follows the engine's call
    ``build_method(method_cfg, model_cfg, num_classes, img_size)``.

    Class attributes:
        has_cam: False for methods without a CAM (APViT, Table 1 "--").
        name, label, rank, Params: set by :func:`~fer_core.cams.registry.register_method`
            (registry name, table label, listing order, hyperparameter dataclass).

    Attributes:
        params: this method's filled-in ``Params`` (its own fields of ``method_cfg``).
    """

    has_cam: bool = True
    name: str
    label: str
    rank: int
    Params: type

    def __init__(
        self,
        method_cfg: MethodConfig,
        model_cfg: ModelConfig,
        num_classes: int = 7,
        img_size: int | None = None,
    ) -> None:
        super().__init__()
        self.method_cfg = method_cfg
        self.params = method_cfg.params_of(self.name)
        self.model_cfg = model_cfg
        self.num_classes = int(num_classes)
        self.img_size = img_size
        self.backbone = self.make_backbone(model_cfg, img_size)

    # -- construction -------------------------------------------------------------------------
    def make_backbone(self, model_cfg: ModelConfig, img_size: int | None) -> Backbone:
        """Build the tapped backbone; override for methods with their own network."""
        return build_backbone(model_cfg.backbone, output_stride=model_cfg.output_stride,
                              pretrained=model_cfg.pretrained, img_size=img_size)

    @property
    def feat_channels(self) -> int:
        """Channels of the last feature map (the head's input)."""
        return self.backbone.channels[self.backbone.last_layer]

    @property
    def headline_layer(self) -> int:
        """The layer whose attention is reported as ATT-COS: the last one (docs/method.md §7)."""
        return self.backbone.last_layer

    # -- training / evaluation forward --------------------------------------------------------
    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, layers: Iterable[int] = ()
    ) -> MethodOutput:
        """Logits, tapped features (``layers`` + last layer) and the method's extra losses."""
        feats = self.backbone(x, layers=layers)
        logits, extra = self.head(feats[self.backbone.last_layer], labels)
        return MethodOutput(logits=logits, feats=feats, extra_losses=extra)

    def head(self, feat: torch.Tensor, labels: torch.Tensor | None = None) -> HeadOutput:
        """Last feature map ``(B, C, h, w)`` → ``(logits (B, K), extra losses)``."""
        raise NotImplementedError

    def prepare_batch(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        au_maps: torch.Tensor | None,
        valid: torch.Tensor | None,
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None, torch.Tensor | None]:
        """Batch-level augmentation before the forward: ``(x, targets, au_maps, valid)``.

        Identity here; CutMix mixes images and maps and returns mixed targets.
        """
        return x, labels, au_maps, valid

    # -- CAMs ---------------------------------------------------------------------------------
    def class_maps(self, feat: torch.Tensor) -> torch.Tensor:
        """Unnormalised per-class maps ``(B, K, h, w)`` from the last feature map."""
        raise NotImplementedError

    def raw_cams(self, x: torch.Tensor, class_idx: torch.Tensor | None) -> torch.Tensor:
        """Unnormalised CAMs ``(B, h, w)`` of ``class_idx`` (``None`` → predicted class).

        Default: the class's map from :meth:`class_maps` on the last layer. Runs under the
        caller's grad mode (:meth:`cams` disables autograd for non-gradient methods).
        """
        feat = self.backbone(x)[self.backbone.last_layer]
        if class_idx is None:
            class_idx = self.head(feat, None)[0].argmax(dim=1)
        return pick(self.class_maps(feat), class_idx)

    def cams(self, x: torch.Tensor, class_idx: torch.Tensor | int | None = None) -> torch.Tensor:
        """CAMs ``(B, h, w)`` in ``[0, 1]`` at feature resolution, min-max per image.

        ``class_idx``: true labels at evaluation, ``None`` for the predicted class (inference).
        Gradient-based methods compute what they need under their own ``enable_grad`` and
        leave no ``.grad`` on parameters; the result is always detached.
        """
        if not self.has_cam:
            raise NotImplementedError(f"{type(self).__name__} has no CAM (attention only)")
        idx = resolve_classes(class_idx, x.shape[0], x.device)
        with torch.no_grad():
            raw = self.raw_cams(x, idx)
        raw = raw.detach()
        if raw.dtype in (torch.float16, torch.bfloat16):  # autocast: normalise in float32
            raw = raw.float()
        return minmax_normalize(raw)
