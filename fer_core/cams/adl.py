"""ADL, Attention-based Dropout Layer (Choe & Shim, 2019) on a CAM model.

After each configured layer (``adl_layers``, protocol numbering: 4, 5 = ResNet layer3,
layer4), training only: the self-attention map is the channel mean of the features; per
forward pass one of two maps multiplies the features, chosen at random as in the paper:
the *drop mask* (0 where attention ≥ ``adl_threshold`` · its per-image max, else 1) with
probability ``adl_drop_rate``, otherwise the *importance map* (sigmoid of the attention).
In eval mode ADL is the identity; the CAM is CAM's, from the last block.
"""

from __future__ import annotations

import torch
from torch import nn

from fer_core.cams.cam import CAM
from fer_core.cli import UserError


class AttentionDropout(nn.Module):
    """The parameter-free ADL block; identity in eval mode."""

    def __init__(self, drop_rate: float, threshold: float) -> None:
        super().__init__()
        self.drop_rate = float(drop_rate)
        self.threshold = float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        attention = x.mean(dim=1, keepdim=True)
        # One draw per forward pass (the paper's choice), on the tensor's device: no sync.
        use_drop = torch.rand((), device=x.device) < self.drop_rate
        peak = attention.amax(dim=(2, 3), keepdim=True)
        drop_mask = (attention < self.threshold * peak).to(x.dtype)
        importance = torch.sigmoid(attention)
        return x * torch.where(use_drop, drop_mask, importance)

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate}, threshold={self.threshold}"


class ADL(CAM):
    """CAM with ADL blocks inserted after ``adl_layers`` of the backbone."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.params
        if self.backbone.is_transformer:
            raise UserError("ADL is defined for CNN feature maps; use a ResNet-family backbone")
        for layer in self.backbone.check_layers(cfg.adl_layers):
            self.backbone.wrap_layer(layer, AttentionDropout(cfg.adl_drop_rate, cfg.adl_threshold))
