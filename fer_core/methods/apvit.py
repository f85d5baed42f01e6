"""APViT (Xue et al., 2023): attention only, no CAM (Table 1 "--").

Its network: ``fer_core/cams/apvit.py``."""

from __future__ import annotations

from dataclasses import dataclass

from fer_core.config import check_fractions, fail
from fer_core.methods import declare_method


@dataclass(frozen=True)
class ApViTParams:
    """Pooling-ViT depth, patches kept by APP (``k``) and the token keep ratio per ATP (``r``)."""

    apvit_depth: int = 8
    apvit_k: int = 160
    apvit_r: float = 0.9

    def __post_init__(self) -> None:
        check_fractions(self, "apvit_r")
        for name in ("apvit_depth", "apvit_k"):
            if getattr(self, name) < 1:
                fail(name, getattr(self, name), "use a positive int")


METHOD = declare_method("apvit", label="APViT", params=ApViTParams, rank=110,
                        impl="fer_core.cams.apvit:APViT")
