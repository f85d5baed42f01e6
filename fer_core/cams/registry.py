"""The networks of the CAM methods, found through their declarations (``fer_core/methods/``).

A method of this project is declared in ``fer_core/methods/<name>.py`` (name, label, rank,
hyperparameters, and the ``"module:Class"`` of its network here); a method shipped in another
package declares and implements itself in one module with :func:`register_method`, named by an
entry point of the group :data:`ENTRY_POINT_GROUP`. :func:`discover` imports every network, so
each class knows its name, label, rank and ``Params`` before one is built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

from fer_core.methods import (
    ENTRY_POINT_GROUP,
    METHODS,
    PLUGIN_RANK,
    MethodInfo,
    MethodRegistry,
    NoParams,
    params_fields,
)
from fer_core.methods import discover as discover_declarations

C = TypeVar("C", bound=type)


def register_method(
    name: str, *, label: str, params: type = NoParams, rank: int = PLUGIN_RANK
) -> Callable[[C], C]:
    """Class decorator: declare a :class:`~fer_core.cams.base.CamMethod` subclass as a method.

    For a method kept outside this project, whose one module holds both its declaration and its
    network (this project's methods declare themselves in ``fer_core/methods/``).

    Args:
        name: the registry name (the config's ``method`` value, MLflow param, sweep grid value).
        label: how tables print the method.
        params: a frozen dataclass of the method's own hyperparameters. Its field names become
            flat config fields (``--set``, MLflow params), so prefix them with the method's
            name (``wildcat_kmax``); its defaults are the config's, and its ``__post_init__``
            validates them whenever a config is built.
        rank: position in listings (sweep grids, table rows); ties go by name.
    """
    info = MethodInfo(name, label, object, params, rank)  # a bad params fails here, unused

    def add(klass: C) -> C:
        return METHODS.register(name)(dataclasses.replace(info, impl=klass)).load()

    return add


def discover() -> MethodRegistry:
    """Every declared method with its network imported; the registry."""
    registry = discover_declarations()
    for name in registry.names():
        registry.load(name)
    return registry


__all__ = ["ENTRY_POINT_GROUP", "METHODS", "NoParams", "discover", "params_fields",
           "register_method"]
