"""Named sweep spaces, one module each; ``python -m tuner.sweep --list`` shows them.

A space module declares ``SPACE = register(SweepSpace(...))``. ``SPACES`` is filled by importing
every module of this package (``pkgutil``), so adding a space is adding its file: there is no
list to edit. The import happens the first time ``search_spaces.SPACES`` is read, not when a
helper module such as ``search_spaces.params`` is imported. Space modules import neither Ray nor
torch (their values are ``search_spaces.params``' types, the CAM method names come from their
declarations), so ``--list`` and a mistyped ``--space`` answer at once.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from fer_core.registry import Registry
from search_spaces.base import DEFAULT_SPACE, SweepSpace, arm_au, arm_by
from search_spaces.base import SPACES as _SPACES


def discover() -> Registry[SweepSpace]:
    """Import every module of the package (each space module registers its space); idempotent."""
    for module in pkgutil.iter_modules(__path__):
        try:
            importlib.import_module(f"{__name__}.{module.name}")
        except AttributeError as err:
            # Raised out of ``__getattr__`` it would read "cannot import name 'SPACES'".
            raise ImportError(f"search space module {module.name!r}: {err}") from err
    globals()["SPACES"] = _SPACES  # later reads skip __getattr__
    return _SPACES


def listing() -> str:
    """The ``--list`` table: every registered space and what it runs by default."""
    lines = [f"{'space':<14} {'trials':>6}  {'searcher':<14} {'scheduler':<9} {'metric':<24} "
             "reproduces / description"]
    discover()
    for name in _SPACES:
        space = _SPACES.get(name)
        metric = ",".join(space.objective.metrics)
        lines.append(f"{name:<14} {space.default_trials:>6}  {space.searcher:<14} "
                     f"{space.scheduler:<9} {metric:<24} {space.reproduces}: {space.description}")
    lines.append("trials: configurations (× --seeds); the λ=0 baseline included where listed; "
                 f"default space: {DEFAULT_SPACE}")
    return "\n".join(lines)


def __getattr__(name: str) -> Any:
    if name == "SPACES":
        return discover()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_SPACE", "SPACES", "SweepSpace", "arm_au", "arm_by", "discover", "listing"]
