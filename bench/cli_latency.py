"""How long each command line of the project takes to answer ``--help``, ``--list`` and mistakes.

    python bench/cli_latency.py                 # every case, median of 5 fresh processes each
    python bench/cli_latency.py --repeat 3 fer_core.train tuner.sweep

A user who mistypes a flag waits for the answer; heavy libraries (torch, timm, Ray, MLflow)
imported before the arguments are read make that wait seconds long. Each case runs as a fresh
``python -m <module>`` process from a temporary folder (nothing is written next to the caller):
``--help`` of every CLI (must exit 0), the listings (``--list``, exit 0) and the usage errors (an
unknown name, an unknown ``--set`` key, a value out of range, a missing path: must exit 2 with one
``error`` line). A command that answers with another exit code is reported as wrong: its time
would not measure the same thing.

Prints one row per case (median seconds) and, last, ``cli_usage_error_s=<max>``: the slowest
median over every case.
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

CLIS: dict[str, tuple[tuple[str, ...], ...]] = {
    "fer_core.train": (("--set", "lambda_au=-1"), ("--set", "nosuch=1"),
                       ("--set", "wildcat_kmax=2")),
    "fer_core.explain": (("no_such_photo.png", "--checkpoint", "selected.pt", "-o", "out.png"),),
    "fer_core.data": (("preview", "--dataset", "nosuch", "-o", "grid.png"),),
    "fer_core.data.landmarks": (("--dataset", "rafdb", "--root", "no_such_folder"),),
    "fer_core.shortcut_eval": (("--images", "0"),),
    "fer_core.xai_reliability": (("--images", "1"),),
    "fer_core.weights": (("nosuch",),),
    "analysis.tables": (("--experiment", "demo", "--table", "9"),),
    "analysis.figures": (("--experiment", "demo", "--figure", "nosuch", "-o", "figures"),),
    "analysis.report": (("--experiment", "demo", "--figure", "nosuch"),),
    "tuner.sweep": (("--space", "nosuch"), ("--set", "nosuch=1"), ("--set", "lambda_au=-1"),
                    ("--metric", "test_cl"), ("--set", "pretrained=no_such_weights.pt"),
                    ("--dataset", "rafdb", "--data-root", "no_such_folder"),
                    ("--estimate", "--trials", "0")),
    "tuner.study": (("nosuch",), ("paper", "--set", "nosuch=1"),
                    ("paper", "--set", "lambda_au=-1"), ("paper", "--profile", "huge")),
    "tuner.mlflow_server": (("--workers", "0"),),
    "tuner.mlflow_replay": (("no_such_folder",),),
    "tuner.cluster.check": (("no_such_cluster.yaml",),),
}
"""Module → the arguments of its usage errors (each must end with exit status 2)."""

LISTINGS: dict[str, tuple[str, ...]] = {"tuner.sweep": ("--list",)}
"""Module → the arguments that list what it knows (exit status 0)."""


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


def cases(modules: list[str]) -> list[Case]:
    """``--help``, the listings and the usage errors of ``modules``, in that order per module."""
    out = []
    for module in modules:
        out.append(Case(module, HELP, 0))
        if module in LISTINGS:
            out.append(Case(module, LISTINGS[module], 0))
        out.extend(Case(module, args, 2) for args in CLIS[module])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"only these CLIs (default: all): {', '.join(CLIS)}")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per case")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(CLIS))
    if unknown:
        parser.error(f"unknown CLI {unknown[0]!r}; known: {', '.join(CLIS)}")
    todo = cases(args.modules or list(CLIS))
    width = max(len(case.module) for case in todo)
    print(f"{'cli':<{width}}  {'median s':>8}  arguments")
    worst, problems = 0.0, []
    with tempfile.TemporaryDirectory(prefix="cli_latency_") as cwd:
        for case in todo:
            seconds, problem = median_seconds(case, args.repeat, cwd)
            worst = max(worst, seconds)
            if problem:
                problems.append(f"{case.module} {' '.join(case.args)}: {problem}")
            print(f"{case.module:<{width}}  {seconds:8.2f}  {' '.join(case.args)}", flush=True)
    for problem in problems:
        print(f"wrong answer: {problem}")
    print(f"cli_usage_error_s={worst:.2f}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
