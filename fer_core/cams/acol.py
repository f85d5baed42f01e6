"""ACoL, Adversarial Complementary Learning (Zhang et al., 2018).

Two classifier branches share the backbone's last feature map. Branch A scores it as usual;
branch B scores the same features with the region branch A finds for the target class erased
(its min-max normalised map ≥ ``acol_threshold``), which pushes B onto complementary
evidence. The target is the true label in training and the predicted class of branch A
otherwise. Loss ``CE_A + CE_B``: the engine already adds ``CE_A`` on the returned (branch A)
logits, so ``forward`` returns ``CE_B`` as the extra term ``acol_b``. CAM = pixel-wise max of
both branches' normalised maps of the class asked for.

Each branch is the paper's classifier in a lighter form: 3×3 conv (to at most 512 channels) +
ReLU + 1×1 conv to the class maps, scored by GAP (the paper used two 3×3 convs of 1024).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fer_core.cams.base import CamMethod, HeadOutput, gap, minmax_normalize, pick

BRANCH_WIDTH = 512


def branch(in_channels: int, num_classes: int) -> nn.Sequential:
    """One ACoL classifier branch: features → class maps ``(B, K, h, w)``."""
    hidden = min(in_channels, BRANCH_WIDTH)
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, num_classes, 1),
    )


class ACoL(CamMethod):
    """Two branches; B sees the features erased where A's target-class map is high."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.branch_a = branch(self.feat_channels, self.num_classes)
        self.branch_b = branch(self.feat_channels, self.num_classes)

    def erase(
        self, feat: torch.Tensor, maps_a: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Zero ``feat`` where A's normalised map of ``target`` reaches the threshold."""
        attention = minmax_normalize(pick(maps_a, target).detach())
        keep = (attention < self.params.acol_threshold).to(feat.dtype)
        return feat * keep.unsqueeze(1)

    def both_maps(
        self, feat: torch.Tensor, target: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(maps_a, maps_b, target)``: B's input erased with A's map of ``target``."""
        maps_a = self.branch_a(feat)
        if target is None:
            target = gap(maps_a).argmax(dim=1)
        maps_b = self.branch_b(self.erase(feat, maps_a, target))
        return maps_a, maps_b, target

    def head(self, feat: torch.Tensor, labels: torch.Tensor | None = None) -> HeadOutput:
        target = labels if self.training else None
        maps_a, maps_b, _ = self.both_maps(feat, target)
        extra = {}
        if labels is not None and labels.dim() == 1:
            extra["acol_b"] = F.cross_entropy(gap(maps_b), labels)
        return gap(maps_a), extra

    def raw_cams(self, x: torch.Tensor, class_idx: torch.Tensor | None) -> torch.Tensor:
        feat = self.backbone(x)[self.backbone.last_layer]
        maps_a, maps_b, target = self.both_maps(feat, class_idx)
        return torch.maximum(minmax_normalize(pick(maps_a, target)),
                             minmax_normalize(pick(maps_b, target)))
