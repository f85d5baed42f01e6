"""WILDCAT (Durand et al., 2017): multi-map transfer layer + class-wise spatial pooling.

Its network: ``fer_core/cams/wildcat.py``."""

from __future__ import annotations

from dataclasses import dataclass

from fer_core.config import check_fractions, fail
from fer_core.methods import declare_method


@dataclass(frozen=True)
class WildcatParams:
    """WILDCAT's pooling (docs/method.md §6 defaults): fractions of positions in the top and
    bottom regions, the bottom regions' weight, and maps (modalities) per class."""

    wildcat_kmax: float = 0.5
    wildcat_kmin: float = 0.1
    wildcat_alpha: float = 0.6
    wildcat_modalities: int = 5

    def __post_init__(self) -> None:
        check_fractions(self, "wildcat_kmax", "wildcat_kmin")
        if self.wildcat_modalities < 1:
            fail("wildcat_modalities", self.wildcat_modalities, "use a positive int")


METHOD = declare_method("wildcat", label="WILDCAT", params=WildcatParams, rank=20,
                        impl="fer_core.cams.wildcat:WILDCAT")
