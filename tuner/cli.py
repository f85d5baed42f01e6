"""The command line of ``python -m tuner.sweep`` (parsing only; ``tuner.sweep`` runs it)."""

from __future__ import annotations

import argparse

from fer_core.cli import non_negative_float, positive_float, positive_int, share
from search_spaces.base import DEFAULT_SPACE
from tuner.checks.preflight import MAX_MISSING_LANDMARKS
from tuner.checks.probe import PENDING_TIMEOUT_S
from tuner.search.budget import parse_budget_hours

EPILOG = """\
examples:
  python -m tuner.sweep --space lambda_layers              # the embedded default (~10 min, 2 CPUs)
  python -m tuner.sweep --list                             # the named spaces
  python -m tuner.sweep --space methods --seeds 3 --set epochs=20 --gpus-per-trial 0.5 \\
      --address auto --dataset rafdb --data-root /data/RAF-DB
  python -m tuner.sweep --space lambda_layers --resume     # continue the latest such sweep
  python -m tuner.sweep --space methods --budget-hours 12  # stop launching after 12 trial-hours
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tuner.sweep",
        description="Ray Tune sweeps over CAM methods × λ × aligned layers, tracked in MLflow.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group("what to sweep")
    what.add_argument("--space", default=None,
                      help=f"named search space (default {DEFAULT_SPACE}; see --list)")
    what.add_argument("--list", action="store_true", help="list the spaces and exit")
    what.add_argument("--estimate", action="store_true",
                      help="time each arm of the sweep for a few steps on a trial's device and "
                           "print its trial-hours, device-hours, wall clock and disk; starts "
                           "nothing (no MLflow run, no trial)")
    what.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="pin any config field for every trial (repeatable), e.g. "
                           "--set lambda_au=8 --set layers=5+4; checked before anything starts")
    what.add_argument("--profile",
                      help="sizes for every trial: laptop (the default spaces' sizes), smoke "
                           "(seconds per trial), paper (docs/method.md §8, per --dataset); "
                           "files in search_spaces/profiles/; --set overrides any field")
    what.add_argument("--parent-run", metavar="RUN_ID",
                      help="make the sweep's parent run a child of this MLflow run (a study)")
    what.add_argument("--dataset", help="dataset registry name (default: the space's, synthetic)")
    what.add_argument("--data-root", help="dataset root folder (absolute or relative to cwd)")
    what.add_argument("--epochs", type=positive_int, help="epochs per trial (= --set epochs=N)")
    what.add_argument("--trials", type=positive_int,
                      help="configurations to try, reference points (the λ=0 baseline) included; "
                           "searched spaces only (grids run their whole grid)")
    what.add_argument("--seeds", type=positive_int, default=1,
                      help="run every configuration with K seeds (the same K seeds in every arm)")
    what.add_argument("--metric", help="override the space's objective (single-objective spaces)")
    what.add_argument("--mode", choices=("min", "max"), help="direction of --metric")
    what.add_argument("--scheduler", choices=("asha", "fifo"),
                      help="override the space's trial scheduler (fifo: no early stopping)")
    what.add_argument("--smoke-test", action="store_true",
                      help="tiny data, 2 epochs (searched spaces: at most 2 configurations; grids "
                           "run their whole grid, each trial takes seconds): checks the plumbing")

    where = p.add_argument_group("where to run")
    where.add_argument("--address", help="Ray cluster address (e.g. auto); default: a local Ray")
    where.add_argument("--num-cpus", type=positive_int,
                       help="CPUs of the local Ray runtime (default: all); ignored with --address")
    where.add_argument("--cpus-per-trial", type=positive_float, default=1.0)
    where.add_argument("--gpus-per-trial", type=non_negative_float, default=0.0,
                       help="GPUs per trial; fractions share a GPU (e.g. 0.5)")
    where.add_argument("--max-concurrent", type=positive_int,
                       help="trials running at once (default: the space's)")
    where.add_argument("--storage-path",
                       help="Ray Tune results folder, or an s3:// / gs:// / file:// URI "
                            "(default: ./ray_results)")
    where.add_argument("--name", help="sweep name (default: <space>-<date>-<time>)")
    where.add_argument("--cache-dir",
                       help="data cache shared by the trials (default: <storage-path>/data_cache); "
                            "required when --storage-path is a URI (s3://, gs://, file://)")
    where.add_argument("--resume", action="store_true",
                       help="continue the sweep --name (default: the latest sweep of --space) "
                            "after a crash or kill; its saved settings are used")

    check = p.add_argument_group("checks before the sweep starts (exit 2 when one fails)")
    check.add_argument("--allow-missing-classes", action="store_true",
                       help="accept training data without some of the 7 classes (a subset on "
                            "purpose); by default a class with no training image stops the sweep")
    check.add_argument("--max-missing-landmarks", type=share, metavar="SHARE",
                       default=MAX_MISSING_LANDMARKS,
                       help="largest share of readable images without landmarks (default "
                            f"{MAX_MISSING_LANDMARKS:g}; 1 turns the check off)")
    check.add_argument("--pending-timeout", type=positive_float, metavar="S",
                       default=PENDING_TIMEOUT_S,
                       help="on a cluster whose node types are unknown, end the sweep when no "
                            f"trial has started after S seconds (default {PENDING_TIMEOUT_S:g})")

    spend = p.add_argument_group("budget and reuse")
    spend.add_argument("--budget-hours", type=parse_budget_hours, metavar="H",
                       help="stop launching trials once the sweep's summed trial time (running "
                            "trials included) reaches H trial-hours; running trials finish; "
                            "fractions are fine (0.25 = 15 trial-minutes)")
    spend.add_argument("--rerun", action="store_true",
                       help="run every configuration, even one already done (same config, seed, "
                            "git commit and data, FINISHED, not early-stopped) in the experiment")

    track = p.add_argument_group("tracking")
    track.add_argument("--mlflow-uri",
                       help="MLflow tracking URI (default: sqlite:///./mlflow.db); a team server: "
                            "start `python -m tuner.mlflow_server`, then http://HOST:5000")
    track.add_argument("--experiment", help="MLflow experiment (default: au-guided-fer)")
    track.add_argument("--system-metrics", action="store_true",
                       help="record each trial's CPU, memory and (where present) GPU use in its "
                            "MLflow run (MLflow system metrics, every 5 s)")
    track.add_argument("--register", metavar="NAME",
                       help="put the best trial's model in the MLflow Model Registry as a new "
                            "version of NAME with the alias 'best' (models:/NAME@best)")
    track.add_argument("--optuna-storage",
                       help="Optuna RDB storage of a searched space's study, e.g. "
                            "postgresql://user:pw@db/optuna for a team (default: multi-objective "
                            "spaces sqlite:///./optuna.db, single-objective ones in memory)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)
