"""Models: timm backbones with layer taps selected by feature index (docs/method.md §5).

The backbone's names are served on first use (PEP 562): importing ``fer_core.models.hub``
(which names weights and checks the hub cache) does not import timm and torch with them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fer_core.models.backbone import Backbone, build_backbone, load_weights, read_state_dict

__all__ = ["Backbone", "build_backbone", "load_weights", "read_state_dict"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("fer_core.models.backbone"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
