"""ADL (Choe & Shim, 2019): attention-based dropout blocks on a CAM model.

Its network: ``fer_core/cams/adl.py``."""

from __future__ import annotations

from dataclasses import dataclass

from fer_core.config import check_fractions, parse_layers
from fer_core.methods import declare_method


@dataclass(frozen=True)
class ADLParams:
    """Drop-mask probability, drop threshold (fraction of the attention's max), and the
    layers followed by an ADL block (``'4+5'`` in flat configs)."""

    adl_drop_rate: float = 0.4
    adl_threshold: float = 0.1
    adl_layers: tuple[int, ...] = (4, 5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adl_layers", parse_layers(self.adl_layers))
        check_fractions(self, "adl_drop_rate", "adl_threshold")


METHOD = declare_method("adl", label="ADL", params=ADLParams, rank=80,
                        impl="fer_core.cams.adl:ADL")
