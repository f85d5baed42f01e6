"""One sweep, fully specified: what is searched, where it runs and writes, and its budget.

``tuner.spec.resolve.resolve`` builds a :class:`SweepSpec` from the command line once, checking
every value there; everything after it (the checks, the price, the Tuner, the summary) reads
this object and never the command line. Its parts nest rather than repeat:

- ``settings`` (:class:`~tuner.spec.settings.SweepSettings`): the space's name, objective,
  searcher, scheduler, configurations, seeds, resources, budget and Optuna storage; saved in
  ``sweep.json`` and logged as the parent run's ``sweep.*`` params;
- ``base``, ``params``, ``reference_points``, ``epochs``: the trials' pinned config and what is
  left to search, as the searchers read it (the spec *is* their plan: :attr:`SweepSpec.plan`);
- ``place`` (:class:`SweepPlace`): the Ray address, the storage and data cache, the MLflow store,
  experiment and parent run, and the limits of the checks before the start;
- ``profile``: the profile (``search_spaces/profiles/``) the sizes in ``base`` come from.

Imports nothing that trains or talks to Ray or MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core.objective import Objective
from search_spaces.base import SweepSpace
from search_spaces.profiles import Chosen
from tuner.checks.preflight import PreflightRules
from tuner.search.budget import Budget
from tuner.spec.context import StoragePath
from tuner.spec.settings import SweepSettings

DATA_CACHE = "data_cache"
"""The data cache's folder under a local storage path when ``--cache-dir`` is not given."""


@dataclass(frozen=True)
class SweepPlace:
    """Where a sweep runs and writes; every path absolute, URIs as given (credentials kept:
    the saved ``sweep.json`` redacts them)."""

    storage: StoragePath
    """Ray Tune's storage: a local folder or a URI; the sweep's folder is ``storage/<name>``."""
    cache_dir: str | None = None
    """``--cache-dir`` as given, made absolute (None: ``storage/data_cache``)."""
    address: str | None = None
    """``--address`` of a Ray cluster (None: a local Ray runtime)."""
    num_cpus: int | None = None
    """CPUs of the local Ray runtime (None: all)."""
    mlflow_uri: str | None = None
    """``--mlflow-uri`` as given (None: ``sqlite:///<cwd>/mlflow.db``)."""
    experiment: str | None = None
    """``--experiment`` (None: the project's default experiment)."""
    pending_timeout_s: float | None = None
    """``--pending-timeout``: how long trials may wait for a node that may never come."""
    preflight: PreflightRules = PreflightRules()
    parent_run: str | None = None
    """``--parent-run``: the MLflow run the sweep's parent run nests under (a study's)."""

    @property
    def data_cache(self) -> str:
        """The data cache folder every trial reads."""
        return self.cache_dir or str(self.storage / DATA_CACHE)

    def folder(self, name: str) -> StoragePath:
        """The folder of sweep ``name`` in the storage."""
        return self.storage / name


def absolute(path: str | None, cwd: Path) -> str | None:
    """A user's path made absolute against ``cwd`` (trials run in their own folders)."""
    return str((cwd / Path(path).expanduser()).resolve()) if path else None


@dataclass(frozen=True)
class SweepSpec:
    """Everything that defines one sweep, checked once (see the module's docstring)."""

    name: str
    base: dict[str, Any]
    """Pinned flat config fields, canonical: the space's overrides, then the user's pins."""
    params: Mapping[str, Any]
    """The space's params minus the fields the user pinned with ``--set``."""
    reference_points: tuple[Mapping[str, Any], ...]
    epochs: int
    first_seed: int
    settings: SweepSettings
    place: SweepPlace
    profile: Chosen | None = None
    """The profile the sizes come from and the fields it set (printed, tagged and logged as
    the parent run's ``profile``); ``base`` already holds its fields."""

    @property
    def space(self) -> SweepSpace:
        from search_spaces import SPACES

        return SPACES.get(self.settings.space)

    @property
    def plan(self) -> SweepSpec:
        """The spec as the searchers and schedulers read it (``tuner.search.searchers``)."""
        return self

    @property
    def sweep_name(self) -> str:
        return self.name

    @property
    def seeds(self) -> tuple[int, ...]:
        """The same seeds in every arm: ``seed``, ``seed + 1``, ... (``--seeds`` of them)."""
        return tuple(range(self.first_seed, self.first_seed + self.settings.seeds))

    @property
    def num_configs(self) -> int:
        return self.settings.num_configs

    @property
    def objective(self) -> Objective:
        return self.settings.objective

    @property
    def optuna_storage(self) -> str | None:
        return self.settings.optuna_storage

    @property
    def budget(self) -> Budget:
        return self.settings.budget

    @property
    def folder(self) -> StoragePath:
        """This sweep's folder in the storage."""
        return self.place.folder(self.name)
