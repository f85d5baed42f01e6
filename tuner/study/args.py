"""The command line of ``python -m tuner.study``, parsed and checked into :class:`StudyArgs`.

Kept apart from ``tuner.study.cli`` (which runs the command): the study's plan reads these
arguments, and the command imports the plan.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fer_core.cli import UserError, non_negative_float, positive_int

EPILOG = """\
examples:
  python -m tuner.study paper --profile smoke               # every table, tiny, on this CPU
  python -m tuner.study paper --profile paper --dataset rafdb --dataset affectnet --estimate
  python -m tuner.study paper --profile paper --fetch-weights --cache /shared/hf-hub
  python -m tuner.study paper --profile paper --dataset rafdb --data-root /data/RAF-DB \\
      --address auto --gpus-per-trial 1                      # the published protocol
  python -m tuner.study paper --profile smoke --resume      # continue after any stop
"""


@dataclass(frozen=True)
class StudyArgs:
    """The study's command line, checked; nothing past ``parse`` sees a Namespace."""

    study: str
    profile: str | None
    datasets: tuple[str | None, ...]
    data_roots: dict[str, str]
    seeds: int
    sets: tuple[str, ...]
    name: str | None
    storage_path: str
    mlflow_uri: str | None
    experiment: str | None
    report_dir: str | None
    budget_hours: float | None
    resume: bool
    estimate: bool
    fetch_weights: bool
    cache: str | None
    gpu: str | None
    max_arms: int
    address: str | None
    num_cpus: int | None
    cpus_per_trial: float | None
    gpus_per_trial: float | None
    max_concurrent: int | None
    cache_dir: str | None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tuner.study", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A study's sweeps (parts × datasets × seeds) in one command, ending in the "
                    "finished report.")
    p.add_argument("study", help="study name (search_spaces/studies/<name>.py), e.g. paper")
    p.add_argument("--profile", help="sizes for every trial (search_spaces/profiles/): laptop, "
                                     "smoke, paper (default: the study's)")
    p.add_argument("--dataset", action="append", default=[],
                   help="dataset (repeatable; default: the profile's)")
    p.add_argument("--data-root", action="append", default=[], metavar="[DATASET=]PATH",
                   help="dataset root (repeatable: rafdb=/data/RAF-DB)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per configuration")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="pin a config field in every sweep (repeatable)")
    p.add_argument("--name", help="study name in MLflow and its folder "
                                  "(default: study-<study>-<profile>)")
    p.add_argument("--storage-path", default="ray_results", help="sweeps' folder (Ray Tune)")
    p.add_argument("--mlflow-uri", help="tracking URI (default: sqlite:///./mlflow.db)")
    p.add_argument("--experiment", help="MLflow experiment (default: the study's name)")
    p.add_argument("--report-dir", help="where the report goes (default: report/<name>)")
    p.add_argument("--budget-hours", type=non_negative_float, metavar="H",
                   help="stop launching trials once the study's trials took H trial-hours")
    p.add_argument("--resume", action="store_true", help="continue the study --name")
    p.add_argument("--estimate", action="store_true",
                   help="print device-hours per table and in total; starts nothing")
    p.add_argument("--gpu", help="with --estimate: also price it on this GPU (a measured rate)")
    p.add_argument("--max-arms", type=positive_int, default=6,
                   help="with --estimate: cost arms timed at most (the rest cost the mean of "
                        "the timed arms of their network)")
    p.add_argument("--fetch-weights", action="store_true",
                   help="download the ImageNet weights the study needs into --cache and exit")
    p.add_argument("--cache", help="hub cache folder for --fetch-weights (default: HF_HUB_CACHE)")
    where = p.add_argument_group("passed to every sweep")
    where.add_argument("--address")
    where.add_argument("--num-cpus", type=positive_int)
    where.add_argument("--cpus-per-trial", type=float)
    where.add_argument("--gpus-per-trial", type=float)
    where.add_argument("--max-concurrent", type=positive_int)
    where.add_argument("--cache-dir", help="data cache shared by the trials")
    return p


def data_roots(values: Sequence[str], datasets: Sequence[str | None]) -> dict[str, str]:
    """``--data-root`` values by dataset: ``NAME=PATH``, or a bare path for the one dataset."""
    roots: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            if len(datasets) != 1 or datasets[0] is None:
                raise UserError(f"--data-root {value!r}: with several datasets write "
                                "DATASET=PATH, e.g. rafdb=/data/RAF-DB")
            name, path = str(datasets[0]), value
        roots[name] = str(Path(path).resolve())
    return roots


def parse(argv: Sequence[str] | None = None) -> StudyArgs:
    a = build_parser().parse_args(argv)
    datasets = tuple(dict.fromkeys(a.dataset)) or (None,)
    return StudyArgs(
        a.study, a.profile, datasets, data_roots(a.data_root, datasets), a.seeds, tuple(a.set),
        a.name, a.storage_path, a.mlflow_uri, a.experiment, a.report_dir, a.budget_hours,
        a.resume, a.estimate, a.fetch_weights, a.cache, a.gpu, a.max_arms, a.address, a.num_cpus,
        a.cpus_per_trial, a.gpus_per_trial, a.max_concurrent, a.cache_dir)
