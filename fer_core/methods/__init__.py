"""What each CAM method is, without its network: name, table label, rank, hyperparameters.

A method is declared in a module of this package with :func:`declare_method`: its registry
name, its table label, where it sits in Table 1's order, its hyperparameters as a small frozen
dataclass (:class:`NoParams` when it has none) and where its network lives (``impl``, a
``"module:Class"`` path into ``fer_core/cams/``). Declarations import no torch: the config
builds its method section from them and a command line checks ``--set`` keys, method names and
values against them at once, while the network's module (torch, timm) is imported only when a
model is built (:meth:`MethodInfo.load`).

:func:`discover` imports every module of this package and every module named by an entry point
of the group :data:`ENTRY_POINT_GROUP` (a method shipped in another package registers itself
with ``fer_core.cams.registry.register_method``), so adding a method never means editing a list.
"""

from __future__ import annotations

import dataclasses
import importlib
from importlib.metadata import entry_points
from typing import Any, get_type_hints

from fer_core.registry import Registry, import_modules

ENTRY_POINT_GROUP = "fer_core.cams"
"""Entry-point group of method modules shipped outside this project (one entry per module:
``name = "package.module"``); loading the module registers its methods."""

PLUGIN_RANK = 1000
"""Default rank: after the paper's methods."""


@dataclasses.dataclass(frozen=True)
class NoParams:
    """The hyperparameters of a method that has none."""


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """One method's declaration; its network class is imported by :meth:`load`."""

    name: str
    label: str
    """How tables print the method."""
    impl: str | type
    """``"module:Class"`` of its :class:`~fer_core.cams.base.CamMethod` subclass, or the class."""
    params: type = NoParams
    """Frozen dataclass of the method's own hyperparameters; its field names are flat config
    fields (``--set``, MLflow params), prefixed with the method's name (``wildcat_kmax``)."""
    rank: int = PLUGIN_RANK
    """Position in listings (sweep grids, table rows); ties go by name."""

    def __post_init__(self) -> None:
        params = self.params
        if not (dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen):
            raise TypeError(f"method {self.name!r}: params={params!r} must be a frozen dataclass")
        object.__setattr__(self, "rank", int(self.rank))

    def load(self) -> type:
        """The network class, imported on first use and told its name, label, rank, Params."""
        if isinstance(self.impl, str):
            module, _, attr = self.impl.partition(":")
            klass = getattr(importlib.import_module(module), attr)
        else:
            klass = self.impl
        klass.name, klass.label, klass.Params, klass.rank = (
            self.name, self.label, self.params, self.rank)
        return klass


class MethodRegistry(Registry[MethodInfo]):
    """Name → :class:`MethodInfo`, listed by rank then name (Table 1 order)."""

    def names(self) -> list[str]:
        return sorted(self._items, key=lambda name: (self._items[name].rank, name))

    def labels(self) -> dict[str, str]:
        """Name → table label, in :meth:`names` order."""
        return {name: self._items[name].label for name in self.names()}

    def param_classes(self) -> dict[str, type]:
        """Name → hyperparameter dataclass, in :meth:`names` order."""
        return {name: self._items[name].params for name in self.names()}

    def load(self, name: str) -> type:
        """The network class of method ``name`` (unknown names list the valid ones)."""
        return self.get(name).load()


METHODS: MethodRegistry = MethodRegistry("CAM method")
"""Method name → :class:`MethodInfo` (read it through :func:`discover`, which fills it)."""


def declare_method(name: str, *, label: str, impl: str | type, params: type = NoParams,
                   rank: int = PLUGIN_RANK) -> MethodInfo:
    """Register a method's declaration (a declaration module's ``METHOD = declare_method(...)``)."""
    return METHODS.register(name)(MethodInfo(name, label, impl, params, rank))


_discovered = False


def discover() -> MethodRegistry:
    """Import every declaration once (this package's, then entry points'); the registry."""
    global _discovered
    if _discovered:
        return METHODS
    _discovered = True  # set first: a plugin's import comes back here through fer_core.cams
    import_modules(__name__, __path__)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except ImportError as err:
            raise ImportError(
                f"CAM method plugin {entry.name!r} = {entry.value!r} (entry point group "
                f"{ENTRY_POINT_GROUP!r}) cannot be imported: {err}; install it or remove the "
                "entry point") from err
    return METHODS


def params_fields() -> dict[str, tuple[str, dataclasses.Field, Any]]:
    """Flat hyperparameter field → (its method, the dataclass field, its resolved type).

    A field name declared by two methods, or shadowing ``method``, is an error naming both.
    """
    out: dict[str, tuple[str, dataclasses.Field, Any]] = {}
    for name, params in discover().param_classes().items():
        hints = get_type_hints(params)
        for f in dataclasses.fields(params):
            if f.name == "method" or f.name in out:
                other = out[f.name][0] if f.name in out else "the config"
                raise ValueError(f"CAM method {name!r} declares hyperparameter {f.name!r}, "
                                 f"already declared by {other}; prefix it with {name + '_'!r}")
            out[f.name] = (name, f, hints[f.name])
    return out
