"""CAM methods (docs/method.md §6): one small class per method on :class:`CamMethod`, by name.

Adding a method = one new module with a ``@METHODS.register("name")`` class + its module name
in :data:`METHOD_MODULES`.
"""

from __future__ import annotations

from importlib import import_module

from fer_core.cams.base import (
    CamMethod,
    MethodOutput,
    minmax_normalize,
    upsample_cams,
)
from fer_core.cams.registry import METHODS
from fer_core.config import MethodConfig, ModelConfig

METHOD_MODULES: tuple[str, ...] = (
    "cam", "wildcat", "gradcam", "acol", "prm", "adl", "cutmix", "tscam", "apvit",
)
"""Modules whose import registers the methods, in docs/method.md §6 / Table 1 order (which becomes
``METHODS.names()``'s order, used by sweeps and tables)."""

for _name in METHOD_MODULES:
    import_module(f"{__name__}.{_name}")


def build_method(
    method_cfg: MethodConfig,
    model_cfg: ModelConfig,
    num_classes: int = 7,
    img_size: int | None = None,
) -> CamMethod:
    """Build the method named ``method_cfg.method`` (KeyError listing the valid names)."""
    klass = METHODS.get(method_cfg.method)
    return klass(method_cfg, model_cfg, num_classes=num_classes, img_size=img_size)


__all__ = [
    "METHODS",
    "CamMethod",
    "MethodOutput",
    "build_method",
    "minmax_normalize",
    "upsample_cams",
]
