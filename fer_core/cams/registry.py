"""The CAM method registry and its discovery (a module of its own so method files import it
without a cycle).

A method declares everything about itself in its own module, with :func:`register_method`: its
registry name, its table label, where it sits in Table 1's order, and its hyperparameters as a
small frozen dataclass (:class:`NoParams` when it has none). :func:`discover` imports every
module of this package and every module named by an entry point of the group
:data:`ENTRY_POINT_GROUP`, so adding a method never means editing a list.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar, get_type_hints

from fer_core.registry import Registry

ENTRY_POINT_GROUP = "fer_core.cams"
"""Entry-point group of method modules shipped outside this package (one entry per module:
``name = "package.module"``); loading the module registers its methods."""

PLUGIN_RANK = 1000
"""Default :func:`register_method` rank: after the paper's methods."""

C = TypeVar("C", bound=type)


@dataclasses.dataclass(frozen=True)
class NoParams:
    """The hyperparameters of a method that has none."""


class MethodRegistry(Registry):
    """Name → method class, listed by each class's ``rank`` then name (Table 1 order)."""

    def names(self) -> list[str]:
        return sorted(self._items, key=lambda name: (self._items[name].rank, name))

    def labels(self) -> dict[str, str]:
        """Name → table label, in :meth:`names` order."""
        return {name: self._items[name].label for name in self.names()}

    def param_classes(self) -> dict[str, type]:
        """Name → hyperparameter dataclass, in :meth:`names` order."""
        return {name: self._items[name].Params for name in self.names()}


METHODS: MethodRegistry = MethodRegistry("CAM method")
"""Method name → :class:`~fer_core.cams.base.CamMethod` subclass."""


def register_method(
    name: str, *, label: str, params: type = NoParams, rank: int = PLUGIN_RANK
) -> Callable[[C], C]:
    """Class decorator: register a :class:`~fer_core.cams.base.CamMethod` subclass.

    Args:
        name: the registry name (the config's ``method`` value, MLflow param, sweep grid value).
        label: how tables print the method.
        params: a frozen dataclass of the method's own hyperparameters. Its field names become
            flat config fields (``--set``, MLflow params), so prefix them with the method's
            name (``wildcat_kmax``); its defaults are the config's, and its ``__post_init__``
            validates them whenever a config is built.
        rank: position in listings (sweep grids, table rows); ties go by name.
    """
    if not (dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen):
        raise TypeError(f"method {name!r}: params={params!r} must be a frozen dataclass")

    def add(klass: C) -> C:
        klass.name, klass.label, klass.Params, klass.rank = name, label, params, int(rank)
        return METHODS.register(name)(klass)

    return add


_discovered = False


def discover() -> MethodRegistry:
    """Import every method module once (this package's, then entry points'); the registry."""
    global _discovered
    if _discovered:
        return METHODS
    _discovered = True  # set first: the imports below import fer_core.cams, which calls us
    package = importlib.import_module(__package__)
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{__package__}.{info.name}")
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
