"""Tune's overhead: the same N short trials through ``tuner.sweep`` and as a plain engine loop.

    python bench/tune_overhead.py                      # 8 trials of ~25 s each, ~16 min
    python bench/tune_overhead.py --trials 3           # quick; fixed start-up costs dominate

Both sides are what a user waits for from the command to its return, each in a fresh Python
process: the sweep CLI (imports, Ray start, MLflow store, data, trials in a Ray worker, summary,
Ray shutdown; its cost prediction runs beside the trials on the core they leave free, see
``tuner.cost.pricing``) and a plain script that trains exactly the configurations the
sweep ran (read back from MLflow) one after another (imports, data, trials). Both train on one
CPU thread (the sweep: one 1-CPU trial at a time) with a fresh data cache each. The sides run in
the order sweep, plain, plain, sweep and the ratio uses the sums: on a shared machine whose load
drifts, a drift that is linear in time cancels out.

It prints where the sweep's extra time goes (from its MLflow runs: before the first trial, inside
the trials, after the last; how long the sweep waited for its cost prediction, 0 when it ran
beside the trials), the ratio without that wait, and ``tune_overhead_ratio=<sweep wall / plain
wall>`` last.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient

from tuner.cost.estimate import Prediction
from tuner.spec.context import StoragePath
from tuner.tracking import schema as tr

LOOP_LINE = "plain_loop_s="


@dataclass
class SweepTimes:
    """Where a sweep's wall time went, from its MLflow runs (seconds)."""

    wall: float
    before_trials: float
    """Command start to the first trial's run: imports, Ray, MLflow store, data, prediction,
    the worker's start."""
    prediction: float
    """Seconds the sweep waited for its cost prediction (0 when timed beside the trials)."""
    in_trials: float
    """The trials' runs, summed (training, evaluation, tracking, checkpoints)."""
    after_trials: float
    """Last trial's end to the command's return: summary, Ray shutdown."""


def timed(command: list[str], log: Path) -> tuple[float, float]:
    """Run ``command`` (output to ``log``); its wall seconds and its start (epoch ms)."""
    began, began_ms = time.perf_counter(), time.time() * 1000
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed (exit {done.returncode}): see "
                         f"the end of {log}:\n" + "\n".join(log.read_text().splitlines()[-20:]))
    return time.perf_counter() - began, began_ms


def run_sweep(work: Path, args: argparse.Namespace) -> tuple[SweepTimes, list[dict[str, str]]]:
    """Wall time of the sweep CLI with its breakdown, and the flat configs of its trials."""
    work.mkdir(parents=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    command = [
        sys.executable, "-m", "tuner.sweep",
        "--space", "lambda_layers", "--trials", str(args.trials), "--scheduler", "fifo",
        "--max-concurrent", "1", "--num-cpus", "1", "--name", "bench",
        "--storage-path", str(work / "ray_results"), "--cache-dir", str(work / "cache_tune"),
        "--mlflow-uri", uri, "--experiment", "bench",
        "--set", f"synthetic_n={args.synthetic_n}", "--set", f"epochs={args.epochs}",
    ]
    wall, began_ms = timed(command, work / "sweep.log")
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("bench")
    runs = client.search_runs([exp.experiment_id], tr.tag_filter({tr.TAG_ROLE: tr.ROLE_TRIAL}))
    first = min(r.info.start_time for r in runs)
    last = max(r.info.end_time for r in runs)
    prediction = Prediction.load(StoragePath.parse(work / "ray_results" / "bench"))
    # Timed beside the trials on a spare core (tuner.cost.pricing), nobody waited for it.
    waited = prediction is not None and not prediction.beside_trials
    times = SweepTimes(
        wall, (first - began_ms) / 1000,
        (prediction.measured_s or 0.0) if waited else 0.0,
        sum(r.info.end_time - r.info.start_time for r in runs) / 1000,
        (began_ms + 1000 * wall - last) / 1000)
    return times, [dict(r.data.params) for r in runs]


def run_plain(work: Path, configs: list[dict[str, str]]) -> tuple[float, float]:
    """Wall time of a fresh process training the same configurations in a plain loop, and
    the seconds of its loop alone (without its imports)."""
    work.mkdir(parents=True)
    listed = work / "configs.json"
    listed.write_text(json.dumps(configs))
    log = work / "plain.log"
    wall, _ = timed([sys.executable, __file__, "--plain", str(listed)], log)
    loop = float(log.read_text().split(LOOP_LINE)[-1].split()[0])
    return wall, loop


def plain_loop(listed: Path) -> None:
    """The plain side's process: the engine alone, one thread, one config after another."""
    import torch

    from fer_core.config import ExperimentConfig
    from fer_core.engine import Trainer

    torch.set_num_threads(1)
    began = time.perf_counter()
    for flat in json.loads(listed.read_text()):
        Trainer(ExperimentConfig.from_flat(flat), progress=False,
                cache_dir=str(listed.parent / "cache")).fit()
    print(f"{LOOP_LINE}{time.perf_counter() - began:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8,
                        help="trials per side (8: fixed start-up costs amortised as in a sweep)")
    parser.add_argument("--synthetic-n", type=int, default=600,
                        help="train images per trial (~25 s per trial at 600 × 2 epochs)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--plain", type=Path, help=argparse.SUPPRESS)  # the plain side's process
    args = parser.parse_args()
    if args.plain:
        plain_loop(args.plain)
        return
    with tempfile.TemporaryDirectory(prefix="tune-overhead-") as tmp:
        work = Path(tmp)
        sweep_1, configs = run_sweep(work / "sweep1", args)
        plain_1 = run_plain(work / "plain1", configs)
        plain_2 = run_plain(work / "plain2", configs)
        sweep_2, again = run_sweep(work / "sweep2", args)
    if sorted(map(sorted, (c.items() for c in again))) != sorted(
            map(sorted, (c.items() for c in configs))):
        raise SystemExit("the two sweeps ran different configurations (seeded Optuna?)")
    n = len(configs)
    sweeps = (sweep_1, sweep_2)
    sweep, plain = sweep_1.wall + sweep_2.wall, plain_1[0] + plain_2[0]
    plain_loop_s = (plain_1[1] + plain_2[1]) / 2

    def mean(field: str) -> float:
        return sum(getattr(t, field) for t in sweeps) / 2

    print(f"trials={n} sweep_wall_s={sweep_1.wall:.1f},{sweep_2.wall:.1f} "
          f"plain_wall_s={plain_1[0]:.1f},{plain_2[0]:.1f} per_trial_plain_s="
          f"{plain_loop_s / n:.1f}")
    # Means per side: the sweep's start (to its first trial) against the plain process's start
    # (imports), its trials against the plain loop, and its end.
    over = mean("in_trials") - plain_loop_s
    print(f"sweep_start_s={mean('before_trials'):.1f} (of which waiting for the cost "
          f"prediction {mean('prediction'):.1f}) plain_start_s={plain / 2 - plain_loop_s:.1f} "
          f"in_trials_over_plain_s={over:.1f} ({over / n:.2f} per trial) "
          f"sweep_end_s={mean('after_trials'):.1f}")
    print(f"tune_overhead_ratio_without_prediction="
          f"{(sweep - sweep_1.prediction - sweep_2.prediction) / plain:.3f}")
    print(f"tune_overhead_ratio={sweep / plain:.3f}")


if __name__ == "__main__":
    main()
