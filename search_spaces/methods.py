"""Every registered CAM method, without and with AU guidance (the paper's Tables 1–2).

Method names come from the CAM methods' declarations (``fer_core/methods/``, which import no torch;
``--list`` prints them). CNN methods share one CNN backbone; the two methods that bring their own
kind of network (docs/method.md §6: TS-CAM on a DeiT, APViT on IR + ViT) get theirs, and every
method is aligned at its own last layer (Table 2's ATT-COS).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from fer_core import metric_names as mn
from fer_core.methods import discover
from search_spaces.base import SweepSpace, arm_by, register
from search_spaces.params import derived, grid
from search_spaces.profiles.laptop import PROFILE as LAPTOP_PROFILE
from search_spaces.sizes import LAPTOP

LAMBDA_WITH_AU = 4.0  # Fig. 5's accuracy peak, docs/method.md §8

CNN: dict[str, Any] = {"backbone": LAPTOP["backbone"], "layers": "5",
                       "output_stride": LAPTOP["output_stride"]}
OWN_NETWORK: Mapping[str, Mapping[str, Any]] = LAPTOP_PROFILE.networks
"""Network fields of the methods that do not run on the CNN backbone (laptop sizes; a
``--profile`` gives its own, ``search_spaces.profiles.Profile.networks``)."""


def network_field(key: str, config: Mapping[str, Any]) -> Any:
    """``key`` (backbone, layers, output_stride) of the trial's method."""
    return OWN_NETWORK.get(config["method"], CNN)[key]


NAMES = discover().names()

SPACE = register(
    SweepSpace(
        name="methods",
        description=f"every registered CAM method ({', '.join(NAMES)}) × "
                    "{without AU (λ=0), with AU (λ=4)} at its last layer",
        reproduces="Tables 1–2",
        params={
            "method": grid(NAMES),
            "lambda_au": grid([0.0, LAMBDA_WITH_AU]),
            **{key: derived(partial(network_field, key)) for key in CNN},
        },
        metric=mn.VAL_CL,
        mode="max",
        searcher="grid",
        # Table cells compare fully trained models: no early stopping.
        scheduler="fifo",
        overrides=LAPTOP,
        arm=arm_by("method", "lambda_au"),
    )
)
