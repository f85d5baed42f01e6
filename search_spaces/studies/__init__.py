"""Studies: several sweeps that fill a paper's tables, declared in one file each.

A study module declares ``STUDY = register(Study(...))``; ``STUDIES`` is filled by importing
every module of this package, so adding an ablation study is adding its file. A study is data:
its parts, each a sweep of a named space with a few pinned fields, run over ``--seeds`` and
each ``--dataset`` by ``python -m tuner.study NAME``. Parts that share a configuration (the
λ = 0 baseline appears in every table) train it once: a sweep reuses the finished trials of its
experiment (``tuner.search.dedup``). Parts marked ``first`` run before the others, for every
dataset, so an interrupted study already fills the first rows of each table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fer_core.cli import UserError
from fer_core.registry import Registry, import_modules


@dataclass(frozen=True)
class Part:
    """One sweep of a study: a named space with pinned fields, and what it fills."""

    key: str
    """Short name, unique in the study (its sweeps are named ``<study>-<dataset>-<key>``)."""
    label: str
    """What it fills, as progress lines and the report say it (``Tables 1–2``)."""
    space: str
    """Name in ``search_spaces.SPACES``."""
    pins: Mapping[str, Any] = field(default_factory=dict)
    """Fields pinned for this part (``--set``), e.g. ``layers=5``."""
    first: bool = False
    """Run before every other part (the baselines and the paper's point)."""

    def __post_init__(self) -> None:
        if not self.key.replace("_", "").isalnum():
            raise ValueError(f"part key {self.key!r}: letters, digits and _ only")


@dataclass(frozen=True)
class Study:
    """A named set of parts; ``parts`` in the order they run (``first`` ones before)."""

    name: str
    description: str
    parts: tuple[Part, ...]
    profile: str = "laptop"
    """The profile a study runs at unless ``--profile`` says otherwise."""
    datasets: tuple[str, ...] = ()
    """Datasets run by default (empty: the profile's)."""

    def __post_init__(self) -> None:
        keys = [p.key for p in self.parts]
        if len(set(keys)) != len(keys) or not keys:
            raise ValueError(f"study {self.name!r}: give parts unique keys")

    def ordered(self) -> tuple[Part, ...]:
        """Parts marked ``first`` before the others, each group in declaration order."""
        return tuple(p for p in self.parts if p.first) + tuple(
            p for p in self.parts if not p.first)


STUDIES: Registry[Study] = Registry("study")


register = STUDIES.add
"""Add a study under its own name (a study module's ``STUDY = register(...)``)."""


def discover() -> Registry[Study]:
    """Import every study module (each registers itself); idempotent."""
    import_modules(__name__, __path__)
    return STUDIES


_FROM_FILES: set[str] = set()
"""Studies registered from files outside the package: reading a file again replaces them."""


def load_file(path: str) -> Study:
    """The study a Python file outside the package declares (it registers it on import), so
    a user's own study, kept with their project, runs like the shipped ones."""
    import importlib.util
    from pathlib import Path

    file = Path(path).resolve()
    if not file.is_file():
        raise UserError(f"study file {path!r} does not exist")
    for name in _FROM_FILES:
        STUDIES.forget(name)
    _FROM_FILES.clear()
    before = set(discover())
    spec = importlib.util.spec_from_file_location(f"user_study_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    added = [n for n in STUDIES if n not in before]
    _FROM_FILES.update(added)
    study = getattr(module, "STUDY", None)
    if not isinstance(study, Study) or (study.name not in added and study.name not in before):
        raise UserError(f"study file {path!r}: declare STUDY = register(Study(...))")
    return study


def get_study(name: str) -> Study:
    """The study ``name`` (or a ``.py`` file declaring one); a one-line error listing the valid
    names otherwise."""
    if name.endswith(".py"):
        return load_file(name)
    registry = discover()
    if name not in registry:
        raise UserError(f"unknown study {name!r}; valid studies: {', '.join(registry)}")
    return registry.get(name)
