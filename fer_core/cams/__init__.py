"""CAM methods (docs/method.md §6): one small class per method on :class:`CamMethod`, by name.

A method's declaration (name, table label, Table 1 rank, its hyperparameter dataclass) lives in
``fer_core/methods/`` and imports no torch; its network is the :class:`CamMethod` subclass of
the module of this package that the declaration names. Importing this package imports every
declared network (those of entry points of the group ``fer_core.cams`` too), so a new method is
found without editing any list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fer_core.cams.base import (
    CamMethod,
    MethodOutput,
    minmax_normalize,
    upsample_cams,
)
from fer_core.cams.registry import METHODS, NoParams, discover, register_method

if TYPE_CHECKING:  # at runtime MethodConfig is built from the registry filled below
    from fer_core.config import MethodConfig, ModelConfig

discover()


def build_method(
    method_cfg: MethodConfig,
    model_cfg: ModelConfig,
    num_classes: int = 7,
    img_size: int | None = None,
) -> CamMethod:
    """Build the method named ``method_cfg.method`` (KeyError listing the valid names)."""
    klass = METHODS.load(method_cfg.method)
    return klass(method_cfg, model_cfg, num_classes=num_classes, img_size=img_size)


__all__ = [
    "METHODS",
    "CamMethod",
    "MethodOutput",
    "NoParams",
    "build_method",
    "minmax_normalize",
    "register_method",
    "upsample_cams",
]
