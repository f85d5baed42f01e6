"""Resolve a space and the command line into one checked sweep spec, before anything starts.

Every user error (unknown space, unknown field, bad value, unknown dataset/method/backbone,
nothing left to search) is raised here as a ``SweepError`` naming the key and the valid choices,
so no Ray runtime, MLflow run or trial exists yet when it happens.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fer_core.cli import UserError
from fer_core.config import ExperimentConfig, field_owners, parse_layers, parse_overrides
from fer_core.models.hub import IMAGENET
from fer_core.objective import Objective
from search_spaces import profiles
from search_spaces.base import DEFAULT_SPACE, SweepSpace
from search_spaces.params import fixed_values
from search_spaces.sizes import TINY
from tuner.checks.preflight import PreflightRules
from tuner.results.summary import SUMMARIES
from tuner.search.searchers import SCHEDULERS, SEARCHERS
from tuner.spec.context import StoragePath
from tuner.spec.resume import ResumeRequest, saved_sweep
from tuner.spec.settings import SweepSettings
from tuner.spec.spec import SweepPlace, SweepSpec, absolute
from tuner.tracking import schema as tr

SMOKE_MAX_CONFIGS = 2


class SweepError(UserError):
    """A problem with the command line or the space, found before the sweep starts."""


def _dataset_names() -> list[str]:
    from fer_core.data import DATASETS

    return DATASETS.names()


def _method_names() -> list[str]:
    from fer_core.methods import discover

    return discover().names()


@functools.lru_cache(maxsize=64)
def _model_layers(method: str, backbone: str, output_stride: int, img_size: int) -> Any:
    """Build the method's network once (random weights) to learn its valid layer range."""
    from fer_core.cams import build_method
    from fer_core.config import MethodConfig, ModelConfig

    model = build_method(MethodConfig(method=method),
                         ModelConfig(backbone=backbone, output_stride=output_stride),
                         img_size=img_size)
    return model.backbone.check_layers


NAMED_FIELDS: dict[str, Callable[[], list[str]]] = {
    "dataset": _dataset_names,
    "method": _method_names,
}
"""Config fields whose values must be registered names (the config only checks their type)."""


def get_space(name: str | None) -> SweepSpace:
    # Read here, not at import: filling the registry imports every space module, and some
    # read registries that import torch (the launch gate imports this module without it).
    from search_spaces import SPACES

    try:
        return SPACES.get(name or DEFAULT_SPACE)
    except KeyError as err:
        raise SweepError(err.args[0]) from None


def check_objective(metrics: tuple[str, ...], where: str) -> None:
    """Every metric a per-epoch trial metric the searcher and scheduler can follow."""
    for metric in metrics:
        if not tr.is_trial_metric(metric) or metric.startswith("test_"):
            raise SweepError(f"{where} {metric!r}: use a per-epoch metric, one of "
                             f"{', '.join(tr.EPOCH_METRICS)} or val_att_cos_l<k>")


def check_space(space: SweepSpace) -> None:
    """Every name a space gives is registered, before anything starts (not after its trials).

    The config fields of its params, overrides and reference points are checked with each
    point (``check_config``); its metric, searcher, scheduler, summary and arm here.
    """
    where = f"space {space.name!r}"
    check_objective(space.objective.metrics, f"{where}: metric")
    for kind, name, registry in (("searcher", space.searcher, SEARCHERS),
                                 ("scheduler", space.scheduler, SCHEDULERS),
                                 ("summary", space.summary, SUMMARIES)):
        if name not in registry:
            raise SweepError(f"{where}: unknown {kind} {name!r}; valid: "
                             f"{', '.join(registry.names())}")
    point = next(fixed_values(space.params), {})
    try:
        label = space.arm({**space.overrides, **point})
    except Exception as err:  # noqa: BLE001 - any failure of the space's own function
        raise SweepError(f"{where}: arm({point}) failed: {err!r}") from None
    if not isinstance(label, str):
        raise SweepError(f"{where}: arm must return a str label, got {label!r}")


def user_pins(args: argparse.Namespace, cwd: Path) -> dict[str, Any]:
    """``--set`` values plus the shortcut flags (``--dataset``, ``--data-root``, ``--epochs``)."""
    try:
        pins: dict[str, Any] = dict(parse_overrides(args.set))
    except ValueError as err:
        raise SweepError(str(err)) from None
    owners = field_owners()
    for key in pins:
        if key not in owners:
            raise SweepError(f"--set {key}=...: unknown config field {key!r}; "
                             f"valid fields: {', '.join(sorted(owners))}")
    shortcuts = {"dataset": args.dataset, "data_root": args.data_root, "epochs": args.epochs}
    pins.update({k: v for k, v in shortcuts.items() if v is not None})
    for key in ("data_root", "pretrained"):  # trials run in folders of their own
        if pins.get(key) not in (None, "", "None", IMAGENET):
            pins[key] = str((cwd / str(pins[key])).expanduser().resolve())
    return pins


def check_values(flat: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate one flat config's values and names (no model built); its canonical flat form."""
    try:
        canon = ExperimentConfig.from_flat(dict(flat)).to_flat()
    except (ValueError, TypeError) as err:
        raise SweepError(f"{where}: {err}") from None
    for key, names in NAMED_FIELDS.items():
        valid = names()
        if canon[key] not in valid:
            raise SweepError(f"{where}: unknown {key} {canon[key]!r}; valid: {', '.join(valid)}")
    return canon


def check_config(flat: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate one flat config, its network's layers too; returns its canonical flat form."""
    canon = check_values(flat, where)
    check_network(canon, where)
    return canon


def check_network(canon: Mapping[str, Any], where: str) -> None:
    """The method's network accepts the backbone and the layers (builds it: torch, timm)."""
    # The method decides which backbones and layers it accepts: ask it, once per network.
    try:
        check_layers = _model_layers(canon["method"], canon["backbone"],
                                     int(canon["output_stride"]), int(canon["img_size"]))
        check_layers(parse_layers(canon["layers"]))
    except (ValueError, KeyError, RuntimeError) as err:
        message = err.args[0] if err.args else repr(err)
        raise SweepError(f"{where}: {message}") from None


def resolve_objective(space: SweepSpace, args: argparse.Namespace) -> Objective:
    """The space's objective, or ``--metric``/``--mode`` for a single-objective space."""
    if space.multi_objective:
        if args.metric is not None:
            raise SweepError(f"space {space.name!r} is multi-objective {space.metric}; "
                             "--metric applies to single-objective spaces")
        return space.objective
    if args.metric is not None:
        check_objective((args.metric,), "--metric")
    return Objective(args.metric or space.metric, args.mode or space.mode)


def storage_root(args: argparse.Namespace) -> StoragePath:
    """``--storage-path`` as Tune gets it: a URI (``s3://``, ``gs://``, ``file://``, ...) kept
    as given, a local folder made absolute (default ``./ray_results``)."""
    return StoragePath.parse(args.storage_path or "ray_results")


def resolve_place(args: argparse.Namespace, cwd: Path) -> SweepPlace:
    """Where the sweep runs and writes, from the command line (``--resume`` reads it too)."""
    try:
        return SweepPlace(
            storage=storage_root(args), cache_dir=absolute(args.cache_dir, cwd),
            address=args.address, num_cpus=args.num_cpus, mlflow_uri=args.mlflow_uri,
            experiment=args.experiment, pending_timeout_s=args.pending_timeout,
            parent_run=getattr(args, "parent_run", None),
            preflight=PreflightRules(allow_missing_classes=args.allow_missing_classes,
                                     max_missing_landmarks=args.max_missing_landmarks))
    except ValueError as err:
        raise SweepError(str(err)) from None


def check_paths(base: Mapping[str, Any]) -> None:
    """The data root and a weight file the user named exist (a trial would fail much later)."""
    root, dataset = base.get("data_root"), base.get("dataset")
    if root not in (None, "", "None") and not Path(str(root)).exists():
        from fer_core.data import CATALOGS

        try:  # the dataset's own scan names the missing root and the layout it expects
            if dataset in CATALOGS:
                CATALOGS.get(dataset)(str(root))
        except FileNotFoundError as err:
            raise SweepError(f"--dataset {dataset} --data-root {root}: {err}") from None
        raise SweepError(f"--data-root {root}: no such folder; pass the dataset's root folder")
    weights = base.get("pretrained")
    if weights not in (None, "", "None", IMAGENET) and not Path(str(weights)).is_file():
        raise SweepError(f"--set pretrained={weights}: no such file; pass a weight file "
                         f"(absolute, or relative to this folder) or pretrained={IMAGENET}")


def check_storage(place: SweepPlace) -> None:
    """A storage URI needs a data cache folder on a shared filesystem."""
    if place.storage.is_uri and not place.cache_dir:
        from tuner.tracking.redact import redact

        raise SweepError(
            f"--storage-path {redact(str(place.storage))} is a URI, and the data cache cannot "
            "live in object storage (the datasets read and write plain files): pass --cache-dir, "
            "a folder on a filesystem shared by all nodes (e.g. an NFS/EFS/Filestore mount such "
            "as /mnt/fer/data_cache)")


def resolve(args: argparse.Namespace, cwd: Path | None = None) -> SweepSpec:
    """Check everything the command line and the space say; the one spec of the sweep.

    The checks that need no model come first, so a mistake among them answers at once; the
    networks (torch, timm) are built last, once each, to check their layers.
    """
    cwd = (cwd or Path.cwd()).resolve()
    pins = user_pins(args, cwd)  # the command line's own mistakes first: they need no space
    place = resolve_place(args, cwd)
    space = get_space(args.space)
    check_space(space)
    try:
        chosen, sizes, profile = profiles.choose(space.profile, space.overrides,
                                                 getattr(args, "profile", None), pins)
    except ValueError as err:
        raise SweepError(str(err)) from None
    base = {**sizes, **(TINY if args.smoke_test else {}), **pins}
    canon = check_values(base, "pinned config")
    base = {k: canon[k] for k in base}  # canonical types (floats, '5+4' strings)
    check_paths(base)
    params = {k: v for k, v in space.params.items() if k not in pins}
    if profile is not None:  # the method-dependent networks at the profile's sizes
        params = profile.bind_networks(params, base, canon)
    references = pinned_references(space, base, pins)
    points = [(canon, "pinned config"), *checked_points(space, base, params, references)]
    settings = resolve_settings(space, args, cwd)
    if not args.estimate:  # the estimate writes no sweep folder
        check_storage(place)
    for point, where in points:
        check_network(point, where)
    if not args.estimate:  # a price needs no weights; fail before any trial
        from fer_core.models.hub import require_for

        try:
            require_for({**base, **v} for v in fixed_values(params))
        except ValueError as err:
            raise SweepError(str(err)) from None
    return SweepSpec(
        name=args.name or f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}", base=base,
        params=params, reference_points=tuple(references), epochs=int(canon["epochs"]),
        first_seed=int(canon["seed"]), settings=settings, place=place, profile=chosen)


def pinned_references(space: SweepSpace, base: Mapping[str, Any], pins: Mapping[str, Any]
                      ) -> list[dict[str, Any]]:
    """The space's reference points with the user's pins applied, each once."""
    references: list[dict[str, Any]] = []
    for point in space.reference_points:
        pinned = {**point, **{k: base[k] for k in point if k in pins}}
        if pinned not in references:
            references.append(pinned)
    return references


def checked_points(space: SweepSpace, base: Mapping[str, Any], params: Mapping[str, Any],
                   references: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Every point of the space (grid values, sampled ends, references) with the pinned
    fields, its values checked: (canonical config, where it comes from) for the network check.
    """
    out = []
    for i, values in enumerate(fixed_values(params)):
        where = f"space {space.name!r} point {values}"
        out.append((check_values({**base, **values}, where), where))
        if i > 500:  # enough to catch a bad choice; huge grids are not enumerated further
            break
    for point in references:
        where = f"space {space.name!r} reference point {point}"
        out.append((check_values({**base, **point}, where), where))
    return out


def resolve_settings(space: SweepSpace, args: argparse.Namespace, cwd: Path) -> SweepSettings:
    """What is searched and how: scheduler, objective, configurations, seeds, budget, storage."""
    scheduler = args.scheduler or space.scheduler
    if scheduler not in SCHEDULERS:  # argparse limits the flag; a Namespace may come from code
        raise SweepError(f"--scheduler {scheduler!r}: valid: {', '.join(SCHEDULERS.names())}")
    if scheduler == "asha" and space.multi_objective:
        raise SweepError(f"space {space.name!r} is multi-objective: ASHA needs one metric")
    num_configs = args.trials if args.trials is not None else space.num_samples
    if args.smoke_test:
        num_configs = min(num_configs, SMOKE_MAX_CONFIGS)
    objective = resolve_objective(space, args)
    # A multi-objective study always lives in an RDB (a local file by default); TPE's in
    # memory unless --optuna-storage names one (e.g. PostgreSQL, shared by a team).
    optuna_storage = args.optuna_storage or (f"sqlite:///{cwd / 'optuna.db'}"
                                             if space.searcher == "optuna_pareto" else None)
    # `or` would turn an explicit 0 into the default: a value given is checked, never replaced
    max_concurrent = space.max_concurrent if args.max_concurrent is None else args.max_concurrent
    try:  # SweepSettings checks each value (seeds, trials, budget, ...) and names its flag
        return SweepSettings(
            space=space.name, metric=objective.metric, mode=objective.mode,
            searcher=space.searcher, scheduler=scheduler, num_configs=num_configs,
            seeds=args.seeds, max_concurrent=max_concurrent,
            resources_cpu=args.cpus_per_trial, resources_gpu=args.gpus_per_trial,
            optuna_storage=optuna_storage if space.searcher.startswith("optuna") else None,
            dedup=not args.rerun, budget_hours=args.budget_hours,
            system_metrics=args.system_metrics, register=args.register,
        )
    except ValueError as err:
        raise SweepError(str(err)) from None


NEW_SWEEP_ONLY = ("set", "trials", "smoke_test", "rerun", "budget_hours")


def resolve_resume(args: argparse.Namespace, cwd: Path | None = None) -> ResumeRequest:
    """``--resume``: the sweep to continue, from its saved copy, and where it runs now."""
    ignored = args.seeds != 1 or any(getattr(args, flag) not in (None, False, [])
                                     for flag in NEW_SWEEP_ONLY)
    return saved_sweep(resolve_place(args, (cwd or Path.cwd()).resolve()), args.name,
                       args.space, args.optuna_storage, ignored)
