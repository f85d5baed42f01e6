"""CAM (Zhou et al., 2016): global average pooling + a linear classifier.

``CAM_k = Σ_c w_kc F_c`` on the last feature map (no ReLU: negative evidence stays, the
min-max of the base class maps it to ``[0, 1]``). Because GAP and the linear layer commute,
the logits are the spatial mean of the class maps plus the bias.
"""

from __future__ import annotations

import torch
from torch import nn

from fer_core.cams.base import CamMethod, HeadOutput, gap


class CAM(CamMethod):
    """GAP + fc head; the CAM is the fc-weighted sum of the last feature map's channels."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fc = nn.Linear(self.feat_channels, self.num_classes)

    def head(self, feat: torch.Tensor, labels: torch.Tensor | None = None) -> HeadOutput:
        return self.fc(gap(feat)), {}

    def class_maps(self, feat: torch.Tensor) -> torch.Tensor:
        # Bias left out: it shifts every pixel of a class map equally and min-max removes it.
        return torch.einsum("kc,bchw->bkhw", self.fc.weight, feat)
