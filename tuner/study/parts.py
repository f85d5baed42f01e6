"""A study resolved: its sweeps' command lines and the trials each part needs.

Every sweep is described by the argv ``python -m tuner.sweep`` takes, so the study drives
sweeps only through the sweep's command line. The trials a part needs are computed the way the
launch gate identifies a trial (``tuner.search.dedup.config_hash`` of the pinned fields, the point
and the seed), so progress can be counted in MLflow and a resumed study knows what is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core.cli import UserError
from search_spaces.studies import Part, Study, get_study
from tuner.study.args import StudyArgs


@dataclass(frozen=True)
class Trial:
    """One trial a part needs: its identity (``config.hash``) and its flat config."""

    key: str
    config: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One part on one dataset: a sweep's command line and the trials it must leave done."""

    part: Part
    dataset: str | None
    argv: tuple[str, ...]
    trials: tuple[Trial, ...]
    configurations: int

    @property
    def key(self) -> str:
        return f"{self.dataset or 'default'}-{self.part.key}"

    @property
    def label(self) -> str:
        return self.part.label + (f" ({self.dataset})" if self.dataset else "")


@dataclass(frozen=True)
class StudyPlan:
    """The study, its profile, datasets and jobs in the order they run, and where it writes."""

    args: StudyArgs
    study: Study
    profile: str
    name: str
    experiment: str
    jobs: tuple[Job, ...]

    @property
    def folder(self) -> Path:
        return Path(self.args.storage_path).resolve() / self.name

    @classmethod
    def build(cls, args: StudyArgs) -> StudyPlan:
        """Check every name (study, profile, datasets, fields) and resolve every sweep."""
        from search_spaces.profiles import get_profile

        study = get_study(args.study)
        profile = args.profile or study.profile
        # Checked before any sweep is resolved (the spaces import Ray): a bad name is one line.
        get_profile(profile)
        datasets = args.datasets if args.datasets != (None,) or not study.datasets else tuple(
            study.datasets)
        name = args.name or f"study-{study.name}-{profile}"
        experiment = args.experiment or name
        first = [(d, p) for d in datasets for p in study.ordered() if p.first]
        rest = [(d, p) for d in datasets for p in study.ordered() if not p.first]
        jobs = tuple(job(args, profile, experiment, p, d) for d, p in first + rest)
        return cls(args, study, profile, name, experiment, jobs)

    def all_trials(self) -> dict[str, Trial]:
        """Every distinct trial of the study (a configuration shared by parts counted once)."""
        found: dict[str, Trial] = {}
        for j in self.jobs:
            for t in j.trials:
                found.setdefault(t.key, t)
        return found


def sweep_argv(args: StudyArgs, profile: str, experiment: str, part: Part,
               dataset: str | None) -> list[str]:
    """The command line of ``part``'s sweep on ``dataset`` (without its name and budget)."""
    argv = ["--space", part.space, "--seeds", str(args.seeds), "--profile", profile,
            "--storage-path", str(Path(args.storage_path).resolve()), "--experiment", experiment]
    if dataset:
        argv += ["--dataset", dataset]
        if dataset in args.data_roots:
            argv += ["--data-root", args.data_roots[dataset]]
    for key, value in part.pins.items():
        argv += ["--set", f"{key}={value}"]
    for pin in args.sets:
        argv += ["--set", pin]
    for flag, value in (("--mlflow-uri", args.mlflow_uri), ("--address", args.address),
                        ("--num-cpus", args.num_cpus), ("--cpus-per-trial", args.cpus_per_trial),
                        ("--gpus-per-trial", args.gpus_per_trial),
                        ("--max-concurrent", args.max_concurrent),
                        ("--cache-dir", args.cache_dir)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def job(args: StudyArgs, profile: str, experiment: str, part: Part,
        dataset: str | None) -> Job:
    """Resolve ``part``'s sweep as the sweep will (a bad name is one line) and list its trials."""
    from fer_core.config import ExperimentConfig
    from search_spaces.params import fixed_values
    from tuner.cli import parse_args
    from tuner.spec.resolve import resolve

    argv = sweep_argv(args, profile, experiment, part, dataset)
    try:
        resolved = resolve(parse_args([*argv, "--estimate"]))
    except ValueError as err:
        where = f"{part.label}" + (f" on {dataset}" if dataset else "")
        raise UserError(f"study {args.study!r}, {where}: {err}") from None
    if resolved.space.searcher != "grid":
        raise UserError(f"study {args.study!r}: part {part.key!r} uses space "
                        f"{resolved.space.name!r}, searched by {resolved.space.searcher}: a "
                        "study's tables need grid spaces (every configuration known)")
    from tuner.search.dedup import config_hash  # imports MLflow: after the checks

    plan = resolved.plan
    points = [*plan.reference_points, *fixed_values(plan.params)]
    trials, seen = [], set()
    for point in points:
        for seed in plan.seeds:
            cfg = ExperimentConfig.from_flat({**resolved.base, **point, "seed": seed},
                                             strict=False)
            key = config_hash(cfg)
            if key not in seen:
                seen.add(key)
                trials.append(Trial(key, cfg.to_flat()))
    return Job(part, dataset, tuple(argv), tuple(trials), len(trials) // len(plan.seeds))
