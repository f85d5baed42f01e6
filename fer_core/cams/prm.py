"""PRM, Peak Response Maps (Zhou et al., 2018): class response maps + peak stimulation.

A 1×1 convolution gives one response map per class (the CAM). Our reading of "peak
stimulation via 3×3 max-pool stride 1, then GAP" (docs/method.md §6) follows the paper: a peak is
a position equal to the max of its 3×3 neighbourhood (found with a stride-1 max-pool), and
the class score is the *average over the peaks* of the response, i.e. GAP of the peak-masked
map renormalised by the number of peaks, so the gradient flows only through the peaks. The
official code additionally drops peaks below the map's median; we keep every local maximum
(the paper's formula). A plateau counts every of its positions as a peak.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fer_core.cams.base import CamMethod, HeadOutput

PEAK_WINDOW = 3


def peak_mask(maps: torch.Tensor, window: int = PEAK_WINDOW) -> torch.Tensor:
    """Bool ``(B, K, h, w)``: positions that equal the max of their ``window``² neighbourhood."""
    pad = window // 2
    # -inf padding: a border position is compared with its in-image neighbours only.
    padded = F.pad(maps, (pad, pad, pad, pad), value=float("-inf"))
    return maps >= F.max_pool2d(padded, kernel_size=window, stride=1)


def peak_stimulation(maps: torch.Tensor, window: int = PEAK_WINDOW) -> torch.Tensor:
    """Class scores ``(B, K)``: mean response over each map's local peaks."""
    mask = peak_mask(maps.detach(), window).to(maps.dtype)
    # Every map has at least one peak (its global maximum), so the count is ≥ 1.
    return (maps * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3))


class PRM(CamMethod):
    """1×1 conv to class response maps, scored by peak stimulation."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.classifier = nn.Conv2d(self.feat_channels, self.num_classes, 1)

    def class_maps(self, feat: torch.Tensor) -> torch.Tensor:
        return self.classifier(feat)

    def head(self, feat: torch.Tensor, labels: torch.Tensor | None = None) -> HeadOutput:
        return peak_stimulation(self.class_maps(feat)), {}
