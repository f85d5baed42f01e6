"""Does the sweep's printed price hold? N default sweeps with different seeds, each against its
own prediction.

    python bench/price_check.py                        # 10 smoke sweeps, ~8 min on 2 cores
    python bench/price_check.py --sweeps 3 --profile laptop

Each sweep is the README's first command (``python -m tuner.sweep``, its default space) at
``--profile`` with ``--set seed=S`` (S = first seed, first seed + 1, ...): a fresh process,
its own Ray, one MLflow store shared by the sweeps. It reads what the sweep predicted at its
start (``estimate.json`` in its folder) and the trial-hours its trial runs used (MLflow), as
the closing summary does, and prints a line per sweep, then ``intervals_held=K/N`` and
``median_abs_error_pct=<x>`` last. The target (``docs/sweeps.md``): the printed interval holds
the actual in at least 9 of 10 sweeps, and the point's median error is at most 15 %.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

from tuner.cost.estimate import Comparison, Prediction
from tuner.results.closing import trial_hours
from tuner.spec.context import StoragePath
from tuner.tracking import schema as tr


def run_sweep(work: Path, seed: int, args: argparse.Namespace) -> tuple[Comparison, float]:
    """One sweep in a fresh process; its prediction against its actual, and its wall seconds."""
    name = f"price-{seed}"
    command = [sys.executable, "-m", "tuner.sweep", "--profile", args.profile,
               "--set", f"seed={seed}", "--name", name,
               "--storage-path", str(work / "ray_results"),
               "--mlflow-uri", f"sqlite:///{work / 'mlflow.db'}"]
    began = time.perf_counter()
    with (work / f"{name}.log").open("w") as log:
        done = subprocess.run(command, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"error: sweep {name} ended with exit {done.returncode}; its output is in "
                 f"{work / (name + '.log')} (run with --keep to look at it)")
    prediction = Prediction.load(StoragePath(str(work / "ray_results" / name)))
    if prediction is None:
        sys.exit(f"error: sweep {name} recorded no prediction (estimate.json)")
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("au-guided-fer")
    runs = client.search_runs([experiment.experiment_id], tr.tag_filter(
        {tr.TAG_ROLE: tr.ROLE_TRIAL, tr.TAG_SWEEP: name}), max_results=1000)
    return prediction.compare(trial_hours(runs), len(runs)), wall


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweeps", type=int, default=10, help="sweeps to run (default 10)")
    p.add_argument("--first-seed", type=int, default=101, help="seed of the first sweep")
    p.add_argument("--profile", default="smoke", help="sizes of every sweep (default smoke)")
    p.add_argument("--keep", action="store_true", help="keep the sweeps' folder and logs")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="price-check-"))
    try:
        results = check(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    held = sum(bool(c.inside) for c in results)
    median = statistics.median(abs(c.error_pct) for c in results)
    if args.keep:
        print(f"kept: {work}")
    print(f"intervals_held={held}/{len(results)}")
    print(f"median_abs_error_pct={median:.1f}")


def check(work: Path, args: argparse.Namespace) -> list[Comparison]:
    """Run the sweeps one after another, a line each."""
    print(f"{'seed':>5} {'predicted':>9} {'interval':>15} {'actual':>8} {'error':>7} "
          f"{'held':>5} {'wall s':>7}", flush=True)
    results = []
    for seed in range(args.first_seed, args.first_seed + args.sweeps):
        c, wall = run_sweep(work, seed, args)
        results.append(c)
        interval = f"{c.low:.4f}–{c.high:.4f}" if c.low is not None else "—"
        print(f"{seed:>5} {c.expected:>9.4f} {interval:>15} {c.actual:>8.4f} "
              f"{c.error_pct:>+6.0f}% {('yes' if c.inside else 'NO'):>5} {wall:>7.0f}",
              flush=True)
    return results


if __name__ == "__main__":
    main()
