"""Resolve a space and the command line into one checked sweep plan, before anything starts.

Every user error (unknown space, unknown field, bad value, unknown dataset/method/backbone,
nothing left to search) is raised here as a ``SweepError`` naming the key and the valid choices,
so no Ray runtime, MLflow run or trial exists yet when it happens.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune.search.sample import Categorical, Domain, Function

from fer_core.config import ExperimentConfig, field_owners, parse_layers, parse_overrides
from search_spaces import SPACES, SweepSpace
from search_spaces.sizes import TINY
from tuner.budget import Budget
from tuner.cli import DEFAULT_SPACE
from tuner.searchers import SCHEDULERS, SEARCHERS, SearchPlan
from tuner.tracking import schema as tr

SMOKE_MAX_CONFIGS = 2


class SweepError(ValueError):
    """A problem with the command line or the space, found before the sweep starts."""


def _dataset_names() -> list[str]:
    from fer_core.data import DATASETS

    return DATASETS.names()


def _method_names() -> list[str]:
    from fer_core.cams import METHODS

    return METHODS.names()


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


@dataclass(frozen=True)
class ResolvedSweep:
    """Everything the driver needs, checked."""

    space: SweepSpace
    name: str
    base: dict[str, Any]
    plan: SearchPlan
    max_concurrent: int
    resources: dict[str, float]
    scheduler: str
    budget_hours: float | None = None
    """``--budget-hours``: summed trial time after which no new trial starts (None: no limit)."""
    rerun: bool = False
    """``--rerun``: launch configurations already done in the experiment (no dedup)."""

    def settings(self) -> dict[str, Any]:
        """The sweep's own settings, logged as the parent run's ``sweep.*`` params."""
        return {
            "space": self.space.name, "metric": self.plan.metric, "mode": self.plan.mode,
            "searcher": self.space.searcher, "scheduler": self.scheduler,
            "num_configs": self.plan.num_configs, "seeds": len(self.plan.seeds),
            "max_concurrent": self.max_concurrent, **{f"resources_{k}": v
                                                      for k, v in self.resources.items()},
            **({"optuna_storage": self.plan.optuna_storage}
               if self.space.searcher == "optuna_pareto" else {}),
            "dedup": not self.rerun,
            **({"budget_hours": self.budget_hours} if self.budget_hours is not None else {}),
        }


def get_space(name: str | None) -> SweepSpace:
    try:
        return SPACES.get(name or DEFAULT_SPACE)
    except KeyError as err:
        raise SweepError(err.args[0]) from None


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
    if pins.get("data_root") not in (None, "", "None"):
        pins["data_root"] = str((cwd / str(pins["data_root"])).resolve())
    return pins


def check_config(flat: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate one flat config; returns its canonical flat form."""
    try:
        canon = ExperimentConfig.from_flat(dict(flat)).to_flat()
    except (ValueError, TypeError) as err:
        raise SweepError(f"{where}: {err}") from None
    for key, names in NAMED_FIELDS.items():
        valid = names()
        if canon[key] not in valid:
            raise SweepError(f"{where}: unknown {key} {canon[key]!r}; valid: {', '.join(valid)}")
    # The method decides which backbones and layers it accepts: ask it, once per network.
    try:
        check_layers = _model_layers(canon["method"], canon["backbone"],
                                     int(canon["output_stride"]), int(canon["img_size"]))
        check_layers(parse_layers(canon["layers"]))
    except (ValueError, KeyError, RuntimeError) as err:
        message = err.args[0] if err.args else repr(err)
        raise SweepError(f"{where}: {message}") from None
    return canon


def fixed_values(params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every grid combination, with each categorical choice and each numeric bound.

    Sampled ranges are checked at their ends: a bad range fails here, not in trial 17;
    ``tune.sample_from`` values are computed from each combination, as Tune will.
    """
    options: dict[str, list[Any]] = {}
    derived = derived_fields(params)
    for key, value in params.items():
        if key in derived:
            continue
        if isinstance(value, dict) and "grid_search" in value:
            options[key] = list(value["grid_search"])
        elif isinstance(value, Categorical):
            options[key] = list(value.categories)
        elif isinstance(value, Domain):
            options[key] = [value.lower, value.upper]
        else:
            options[key] = [value]
    keys = list(options)
    for combo in itertools.product(*(options[k] for k in keys)):
        yield with_derived(dict(zip(keys, combo, strict=True)), derived)


def derived_fields(params: Mapping[str, Any]) -> dict[str, Function]:
    """The params computed from the others (``tune.sample_from``), e.g. a method's backbone."""
    return {k: v for k, v in params.items() if isinstance(v, Function)}


def with_derived(values: Mapping[str, Any], derived: Mapping[str, Function]) -> dict[str, Any]:
    """``values`` with every derived field computed from them, as Tune computes it for a trial.

    Tune hands a search algorithm configs whose derived fields are still placeholders (it
    resolves them only when it adds the trial); the launch gate needs the real values first.
    """
    given = {k: v for k, v in values.items() if k not in derived}
    return {**given, **{k: fn.func(given) for k, fn in derived.items()}}


def resolve_metric(space: SweepSpace, args: argparse.Namespace) -> tuple[Any, Any]:
    if args.metric is None:
        if space.multi_objective:
            return list(space.metric), list(space.mode)
        return space.metric, args.mode or space.mode
    if space.multi_objective:
        raise SweepError(f"space {space.name!r} is multi-objective {space.metric}; "
                         "--metric applies to single-objective spaces")
    if not tr.is_trial_metric(args.metric) or args.metric.startswith("test_"):
        raise SweepError(f"--metric {args.metric!r}: use a per-epoch metric, one of "
                         f"{', '.join(k for k in tr.EPOCH_METRICS)} or val_att_cos_l<k>")
    return args.metric, args.mode or space.mode


def resolve(args: argparse.Namespace, cwd: Path | None = None) -> ResolvedSweep:
    """Check everything the command line and the space say; build the search plan."""
    cwd = (cwd or Path.cwd()).resolve()
    space = get_space(args.space)
    if args.seeds < 1:
        raise SweepError("--seeds must be at least 1")
    try:
        Budget(args.budget_hours)  # parse_args checks it too; a Namespace may come from code
    except ValueError as err:
        raise SweepError(str(err)) from None
    pins = user_pins(args, cwd)
    base = {**space.overrides, **(TINY if args.smoke_test else {}), **pins}
    canon = check_config(base, "pinned config")
    base = {k: canon[k] for k in base}  # canonical types (floats, '5+4' strings)

    params = {k: v for k, v in space.params.items() if k not in pins}
    references: list[dict[str, Any]] = []
    for point in space.reference_points:
        pinned = {**point, **{k: base[k] for k in point if k in pins}}
        if pinned not in references:
            references.append(pinned)
    for i, values in enumerate(fixed_values(params)):
        check_config({**base, **values}, f"space {space.name!r} point {values}")
        if i > 500:  # enough to catch a bad choice; huge grids are not enumerated further
            break
    for point in references:
        check_config({**base, **point}, f"space {space.name!r} reference point {point}")

    scheduler = args.scheduler or space.scheduler
    if space.searcher not in SEARCHERS or scheduler not in SCHEDULERS:
        raise SweepError(f"space {space.name!r} names an unknown searcher/scheduler; searchers: "
                         f"{SEARCHERS.names()}, schedulers: {SCHEDULERS.names()}")
    if scheduler == "asha" and space.multi_objective:
        raise SweepError(f"space {space.name!r} is multi-objective: ASHA needs one metric")
    num_configs = args.trials if args.trials is not None else space.num_samples
    if args.smoke_test:
        num_configs = min(num_configs, SMOKE_MAX_CONFIGS)
    if num_configs < 1:
        raise SweepError("--trials must be at least 1")
    metric, mode = resolve_metric(space, args)
    name = args.name or f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    seeds = tuple(range(int(canon["seed"]), int(canon["seed"]) + args.seeds))
    plan = SearchPlan(
        space=space, params=params, reference_points=tuple(references), seeds=seeds,
        num_configs=num_configs, metric=metric, mode=mode, epochs=int(canon["epochs"]),
        sweep_name=name,
        optuna_storage=args.optuna_storage or f"sqlite:///{cwd / 'optuna.db'}",
    )
    # `or` would turn an explicit 0 into the default: a value given is checked, never replaced
    max_concurrent = space.max_concurrent if args.max_concurrent is None else args.max_concurrent
    for flag, value, ok in (("--max-concurrent", max_concurrent, max_concurrent >= 1),
                            ("--cpus-per-trial", args.cpus_per_trial, args.cpus_per_trial > 0),
                            ("--gpus-per-trial", args.gpus_per_trial, args.gpus_per_trial >= 0)):
        if not ok:
            raise SweepError(f"{flag} {value}: use --max-concurrent >= 1, --cpus-per-trial > 0, "
                             "--gpus-per-trial >= 0")
    resources = {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}
    return ResolvedSweep(space, name, base, plan, max_concurrent, resources, scheduler,
                         budget_hours=args.budget_hours, rerun=args.rerun)
