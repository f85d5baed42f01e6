"""ACoL (Zhang et al., 2018): two branches, the second sees the first's region erased.

Its network: ``fer_core/cams/acol.py``."""

from __future__ import annotations

from dataclasses import dataclass

from fer_core.config import check_fractions
from fer_core.methods import declare_method


@dataclass(frozen=True)
class ACoLParams:
    """Erase where branch A's normalised map reaches ``acol_threshold``."""

    acol_threshold: float = 0.1

    def __post_init__(self) -> None:
        check_fractions(self, "acol_threshold")


METHOD = declare_method("acol", label="ACoL", params=ACoLParams, rank=60,
                        impl="fer_core.cams.acol:ACoL")
