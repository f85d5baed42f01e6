"""One small generic registry: datasets, CAM methods and search spaces register by name."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from fer_core.cli import UnknownName

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → object table filled by a decorator; unknown names list what exists."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@REG.register("name")`` on a class or function."""

        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add

    def add(self, obj: T) -> T:
        """Register ``obj`` under its own ``name`` (a declaration file's ``X = register(...)``)."""
        return self.register(obj.name)(obj)  # type: ignore[attr-defined]

    def forget(self, name: str) -> None:
        """Drop ``name`` if registered (a declaration file read again registers it anew)."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        """The object registered as ``name``; else :class:`~fer_core.cli.UnknownName` (a user
        error that is also a ``KeyError``) listing the valid names."""
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(self.names()) or "(none registered)"
            raise UnknownName(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def import_modules(package: str, path: Iterable[str]) -> None:
    """Import every module of ``package`` (its ``__path__``): each registers what it declares,
    so adding a declaration is adding its file. Idempotent (Python imports a module once)."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
