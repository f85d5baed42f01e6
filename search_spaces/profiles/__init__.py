"""Profiles: the sizes every trial of a sweep or a study runs at, one module each.

A profile module declares ``PROFILE = register(Profile(...))``; ``PROFILES`` is filled by
importing every module of this package, so adding a profile is adding its file. A profile pins
flat config fields (``fields``), may pin more per dataset (``datasets``: the paper's RAF-DB and
AffectNet schedules differ; a profile with datasets fits only those), and gives the network
fields of the methods that bring their own network (``networks``, docs/method.md §6).

``python -m tuner.sweep --profile NAME`` puts a profile's fields in place of the space's own
sizes; ``--set`` still overrides any field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fer_core.cli import UserError
from fer_core.registry import Registry, import_modules
from search_spaces.params import Grid, derived

NETWORK_FIELDS = ("backbone", "layers", "output_stride")
"""Fields that follow the CAM method in a space that searches methods (its own network)."""


@dataclass(frozen=True)
class SplitSizes:
    """Published split sizes of a dataset: what a price scales a timed step to."""

    train_images: int
    test_images: int


@dataclass(frozen=True)
class Profile:
    """Named sizes for every trial: common fields, per-dataset fields, per-method networks."""

    name: str
    description: str
    fields: Mapping[str, Any]
    datasets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Fields per dataset; when given, the profile fits only these datasets."""
    networks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Fields of the methods with their own network (others use ``fields``)."""
    split_sizes: Mapping[str, SplitSizes] = field(default_factory=dict)
    """Published split sizes per dataset (a price at this profile's sizes uses them)."""

    def __post_init__(self) -> None:
        if "dataset" in self.fields and self.datasets:
            raise ValueError(f"profile {self.name!r}: pin the dataset in fields or list "
                             "datasets, not both")
        unknown = set(self.split_sizes) - set(self.datasets)
        if unknown and self.datasets:
            raise ValueError(f"profile {self.name!r}: split sizes for unlisted {sorted(unknown)}")

    def check_dataset(self, dataset: str | None) -> None:
        """A profile with datasets fits only those: a one-line error naming them otherwise."""
        if not self.datasets or dataset in self.datasets:
            return
        fitting = [p for p in PROFILES if not PROFILES.get(p).datasets
                   or dataset in PROFILES.get(p).datasets]
        raise UserError(f"profile {self.name!r} is for dataset(s) {', '.join(self.datasets)}, "
                        f"not {dataset!r}: pass --dataset {' or '.join(self.datasets)}, or a "
                        f"profile that fits {dataset!r} ({', '.join(fitting)})")

    def for_dataset(self, dataset: str | None) -> dict[str, Any]:
        """Every field this profile pins for ``dataset`` (checked to fit)."""
        self.check_dataset(dataset)
        extra = dict(self.datasets.get(dataset, {})) if dataset else {}
        if self.datasets:
            extra["dataset"] = dataset
        return {**self.fields, **extra}

    def for_method(self, method: str | None) -> dict[str, Any]:
        """The network fields of ``method`` when it brings its own network, else none."""
        return dict(self.networks.get(method or "", {}))

    def bind_networks(self, params: Mapping[str, Any], base: Mapping[str, Any],
                      defaults: Mapping[str, Any]) -> dict[str, Any]:
        """A space's params with the method-dependent fields taken from this profile.

        Only where the space searches the method (a grid over ``method``): each
        field that some method's network sets (and the fields a space already derives from the
        method) becomes a derived field: the method's network value, else the pinned value.
        """
        if not isinstance(params.get("method"), Grid):
            return dict(params)

        keys = {k for net in self.networks.values() for k in net}
        keys |= {k for k in NETWORK_FIELDS if k in params}
        out = dict(params)
        for key in sorted(keys):
            fallback = base.get(key, defaults.get(key))
            out[key] = derived(partial(network_value, dict(self.networks), key, fallback))
        return out


def network_value(networks: Mapping[str, Mapping[str, Any]], key: str, fallback: Any,
                  config: Any) -> Any:
    """``key`` of the trial's method network, else ``fallback`` (a derived field's function)."""
    return networks.get(config["method"], {}).get(key, fallback)


PROFILES: Registry[Profile] = Registry("profile")


register = PROFILES.add
"""Add a profile under its own name (a profile module's ``PROFILE = register(...)``)."""


def discover() -> Registry[Profile]:
    """Import every profile module (each registers itself); idempotent."""
    import_modules(__name__, __path__)
    return PROFILES


def get_profile(name: str) -> Profile:
    """The profile ``name``; a one-line error listing the valid names otherwise."""
    registry = discover()
    if name not in registry:
        raise UserError(f"unknown profile {name!r}; valid profiles: {', '.join(registry)}")
    return registry.get(name)


@dataclass(frozen=True)
class Chosen:
    """The profile a sweep runs at and the fields it set (printed at the start, logged)."""

    name: str
    fields: Mapping[str, Any]
    explicit: bool

    def line(self) -> str:
        how = "" if self.explicit else " (the space's default)"
        values = ", ".join(f"{k}={v}" for k, v in sorted(self.fields.items()))
        return f"profile {self.name}{how}: {values}"


def choose(space_profile: str, space_sizes: Mapping[str, Any], name: str | None,
           pins: Mapping[str, Any]) -> tuple[Chosen, dict[str, Any], Profile | None]:
    """The sizes a sweep runs at: the space's own (``name`` None), else profile ``name``'s for
    the pinned dataset (and pinned method's network). Returns what to print and log, the
    fields, and the profile when one was named (its networks then replace the space's)."""
    if name is None:
        return Chosen(space_profile, dict(space_sizes), False), dict(space_sizes), None
    profile = get_profile(name)
    dataset = pins.get("dataset", profile.fields.get("dataset", space_sizes.get("dataset")))
    sizes = {**profile.for_dataset(dataset), **profile.for_method(pins.get("method"))}
    return Chosen(profile.name, sizes, True), sizes, profile
