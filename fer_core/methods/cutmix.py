"""CutMix (Yun et al., 2019) on a CAM model, AU maps mixed like the images.

Its network: ``fer_core/cams/cutmix.py``."""

from __future__ import annotations

from dataclasses import dataclass

from fer_core.config import check_fractions, fail
from fer_core.methods import declare_method


@dataclass(frozen=True)
class CutMixParams:
    """``β`` of the Beta distribution of the kept area, and the probability of mixing a batch."""

    cutmix_beta: float = 1.0
    cutmix_prob: float = 1.0

    def __post_init__(self) -> None:
        check_fractions(self, "cutmix_prob")
        if self.cutmix_beta <= 0:
            fail("cutmix_beta", self.cutmix_beta, "use a positive Beta parameter")


METHOD = declare_method("cutmix", label="CutMix", params=CutMixParams, rank=90,
                        impl="fer_core.cams.cutmix:CutMix")
