"""How long each command line of the project takes to answer ``--help`` and a usage error.

    python bench/cli_latency.py                 # every CLI, median of 5 fresh processes each
    python bench/cli_latency.py --repeat 3 fer_core.train analysis.tables

A user who mistypes a flag waits for the answer; heavy libraries (torch, timm, Ray, MLflow)
imported before the arguments are read make that wait seconds long. Each CLI runs as a fresh
``python -m <module>`` process from a temporary folder (nothing is written next to the caller),
once with ``--help`` (must exit 0) and once with a typical usage error: an unknown name, a value
out of range or a missing path (must exit 2 with one ``error`` line). A command that answers with
another exit code is reported as wrong: its time would not measure the same thing.

Prints one row per CLI (median seconds of each case) and, last,
``cli_usage_error_s=<max>``: the slowest median over every CLI and both cases.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

HELP = ("--help",)

CLIS: dict[str, tuple[str, ...]] = {
    "fer_core.train": ("--set", "lambda_au=-1"),
    "fer_core.explain": ("no_such_photo.png", "--checkpoint", "selected.pt", "-o", "out.png"),
    "fer_core.data": ("preview", "--dataset", "nosuch", "-o", "grid.png"),
    "fer_core.data.landmarks": ("--dataset", "rafdb", "--root", "no_such_folder"),
    "analysis.tables": ("--experiment", "demo", "--table", "9"),
    "analysis.figures": ("--experiment", "demo", "--figure", "nosuch", "-o", "figures"),
    "analysis.report": ("--experiment", "demo", "--figure", "nosuch"),
    "tuner.sweep": ("--space", "nosuch"),
    "tuner.mlflow_server": ("--workers", "0"),
    "tuner.mlflow_replay": ("no_such_folder",),
    "tuner.cluster.check": ("no_such_cluster.yaml",),
}
"""Module → the arguments of its usage error (each must end with exit status 2)."""


@dataclass(frozen=True)
class Case:
    module: str
    args: tuple[str, ...]
    expected: int

    def run(self, cwd: str) -> tuple[float, int, list[str]]:
        """Wall seconds, exit status and the stderr lines of one fresh process."""
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", self.module, *self.args], cwd=cwd,
                              capture_output=True, text=True, timeout=300, check=False)
        return time.perf_counter() - began, done.returncode, done.stderr.strip().splitlines()


def median_seconds(case: Case, repeat: int, cwd: str) -> tuple[float, str]:
    """Median wall seconds of ``repeat`` runs, and '' or what was wrong with the answer."""
    times, problem = [], ""
    for _ in range(repeat):
        seconds, code, lines = case.run(cwd)
        times.append(seconds)
        errors = [line for line in lines if line.startswith("error:") or ": error: " in line]
        if code != case.expected:
            problem = f"exit {code}, expected {case.expected}: {(lines or [''])[-1][:120]}"
        elif case.expected == 2 and len(errors) != 1:
            problem = f"exit 2 with {len(errors)} error lines: {(lines or [''])[-1][:120]}"
    return statistics.median(times), problem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"only these CLIs (default: all): {', '.join(CLIS)}")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per case")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(CLIS))
    if unknown:
        parser.error(f"unknown CLI {unknown[0]!r}; known: {', '.join(CLIS)}")
    modules = args.modules or list(CLIS)
    width = max(map(len, modules))
    print(f"{'cli':<{width}}  {'--help s':>8}  {'usage error s':>13}")
    worst, problems = 0.0, []
    with tempfile.TemporaryDirectory(prefix="cli_latency_") as cwd:
        for module in modules:
            row = []
            for case in (Case(module, HELP, 0), Case(module, CLIS[module], 2)):
                seconds, problem = median_seconds(case, args.repeat, cwd)
                worst = max(worst, seconds)
                row.append(seconds)
                if problem:
                    problems.append(f"{module} {' '.join(case.args)}: {problem}")
            print(f"{module:<{width}}  {row[0]:8.2f}  {row[1]:13.2f}", flush=True)
    for problem in problems:
        print(f"wrong answer: {problem}")
    print(f"cli_usage_error_s={worst:.2f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
