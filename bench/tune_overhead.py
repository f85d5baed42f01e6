"""Tune's overhead: the same N short trials through ``tuner.sweep`` and as a plain engine loop.

    python bench/tune_overhead.py                      # 8 trials of ~30 s each, ~16 min
    python bench/tune_overhead.py --trials 3           # quick; fixed start-up costs dominate

Both sides run the trials one after another on one CPU thread (the sweep with one 1-CPU trial
at a time, which is what Ray gives a 1-CPU trial), each with its own fresh data cache, so both
pay data generation once. The sweep side is everything a user waits for: Ray start, MLflow store,
data, trials, summary. The plain side trains exactly the configurations the sweep ran (read back
from MLflow). The sides run in the order sweep, plain, plain, sweep and the ratio uses the sums:
on a shared machine whose load drifts, a drift that is linear in time cancels out.
Prints ``tune_overhead_ratio=<sweep wall / plain wall>`` last.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from mlflow import MlflowClient

from fer_core.config import ExperimentConfig
from fer_core.engine import Trainer
from tuner.sweep import main as sweep_main
from tuner.tracking import schema as tr


def run_sweep(work: Path, args: argparse.Namespace) -> tuple[float, list[dict[str, str]]]:
    """Wall time of the sweep CLI, and the flat configs of its trials (from MLflow)."""
    work.mkdir(parents=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    argv = [
        "--space", "lambda_layers", "--trials", str(args.trials), "--scheduler", "fifo",
        "--max-concurrent", "1", "--num-cpus", "1", "--name", "bench",
        "--storage-path", str(work / "ray_results"), "--cache-dir", str(work / "cache_tune"),
        "--mlflow-uri", uri, "--experiment", "bench",
        "--set", f"synthetic_n={args.synthetic_n}", "--set", f"epochs={args.epochs}",
    ]
    began = time.perf_counter()
    if sweep_main(argv) != 0:
        raise SystemExit("the sweep failed")
    wall = time.perf_counter() - began
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("bench")
    runs = client.search_runs([exp.experiment_id], tr.tag_filter({tr.TAG_ROLE: tr.ROLE_TRIAL}))
    return wall, [dict(r.data.params) for r in runs]


def run_plain(work: Path, configs: list[dict[str, str]]) -> float:
    """Wall time of training the same configurations in a plain loop (one thread)."""
    torch.set_num_threads(1)
    began = time.perf_counter()
    for flat in configs:
        Trainer(ExperimentConfig.from_flat(flat), progress=False,
                cache_dir=str(work / "cache")).fit()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8,
                        help="trials per side (8: fixed start-up costs amortised as in a sweep)")
    parser.add_argument("--synthetic-n", type=int, default=600,
                        help="train images per trial (~30 s per trial at 600 × 2 epochs)")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
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
    sweep, plain = sweep_1 + sweep_2, plain_1 + plain_2
    print(f"trials={n} sweep_wall_s={sweep_1:.1f},{sweep_2:.1f} "
          f"plain_wall_s={plain_1:.1f},{plain_2:.1f} per_trial_plain_s={plain / (2 * n):.1f}")
    print(f"tune_overhead_ratio={sweep / plain:.3f}")


if __name__ == "__main__":
    main()
