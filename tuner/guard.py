"""The sweep driver's checks before it starts and its exit status after ``fit()``.

Before (``before_start``, then ``check_cluster`` once Ray runs): the Ray address and the MLflow
store answer, the data passes ``tuner.preflight``, one trial fits on the cluster. All of it runs
before the MLflow experiment, the parent run or any trial exists, and each failure is one
``error:`` line with exit status 2.

After (``outcome``): 0 when every trial concluded (finished, early-stopped, or reused by the
gate), 1 when a trial FAILED (each is listed with the last line of its error and its error file),
2 when no trial could ever start (``--pending-timeout``), 130 when the sweep was interrupted
(Ctrl-C; the resume command is printed with the summary).
"""

from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from fer_core.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from fer_core.config import ExperimentConfig
from tuner.database import check_store
from tuner.preflight import MAX_MISSING_LANDMARKS, PreflightRules, check_data
from tuner.probe import PENDING_TIMEOUT_S, Request, check_mlflow_uri, check_ray_address

PENDING_RECORD = "pending_timeout.txt"


def check_connections(args: argparse.Namespace) -> None:
    """The Ray address and the MLflow store answer now (seconds, not Ray's or MLflow's retries)."""
    check_ray_address(args.address)
    check_mlflow_uri(args.mlflow_uri)
    # A server whose database is down, or a database URI given directly, fails here too.
    check_store(args.mlflow_uri, "--mlflow-uri")
    check_store(getattr(args, "optuna_storage", None), "--optuna-storage")


def before_start(base: dict, args: argparse.Namespace, cache_dir: str) -> None:
    """Connections, then the data scan; prints the scan's one-line summary."""
    check_connections(args)
    limit = getattr(args, "max_missing_landmarks", None)  # a Namespace built in code may lack it
    rules = PreflightRules(
        allow_missing_classes=getattr(args, "allow_missing_classes", False),
        max_missing_landmarks=MAX_MISSING_LANDMARKS if limit is None else limit)
    data = ExperimentConfig.from_flat(dict(base)).data
    print(check_data(data, Path(cache_dir), rules), flush=True)


def check_cluster(args: argparse.Namespace, resources: dict[str, float]) -> str | None:
    """After ``ray.init``: one trial fits (else ``ProbeError``); a note when not knowable."""
    from tuner.probe import check_resources

    note = check_resources(Request(resources["cpu"], resources["gpu"]), local=not args.address)
    if note:
        timeout = getattr(args, "pending_timeout", None) or PENDING_TIMEOUT_S
        print(f"note: {note} (the sweep ends if no trial starts within {timeout:g} s, "
              "--pending-timeout)", flush=True)
    return note


def pending_watch(args: argparse.Namespace, resources: dict[str, float], folder, note):
    """The Tune callback that ends a sweep whose trials never start (None when not needed)."""
    if not note:
        return None
    from tuner.pending import PendingWatch

    timeout = getattr(args, "pending_timeout", None) or PENDING_TIMEOUT_S
    return PendingWatch(timeout, Request(resources["cpu"], resources["gpu"]),
                        record=folder / PENDING_RECORD)


@dataclass(frozen=True)
class FailedTrial:
    name: str
    last_line: str
    log: str

    def line(self) -> str:
        return f"  {self.name}: {self.last_line}\n    log: {self.log}"


def failed_trials(grid) -> list[FailedTrial]:
    """The trials of a ``ResultGrid`` that ended in error, with the error's last line."""
    failed = []
    for result in grid:
        if result.error is None:
            continue
        lines = [line for line in str(result.error).strip().splitlines() if line.strip()]
        path = Path(str(result.path))
        log = path / "error.txt"
        failed.append(FailedTrial(path.name, lines[-1].strip() if lines else
                                  type(result.error).__name__, str(log if log.exists() else path)))
    return failed


class CtrlC:
    """Whether Ctrl-C stopped ``fit()``: Tune ends the run gracefully on the first SIGINT and
    returns normally, its trials marked terminated, so the results alone cannot tell.

    Tune's handler puts back the SIGINT handler it found only when it fires (Ray 2.60,
    ``ray.tune.tune._setup_signal_catching``); finding ours back after ``fit()`` therefore
    means Ctrl-C was pressed. Ours raises ``KeyboardInterrupt`` (a second Ctrl-C) as Python's
    default does."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous = None

    @staticmethod
    def _raise(signum, frame) -> None:
        raise KeyboardInterrupt

    def __enter__(self) -> CtrlC:
        try:
            self._previous = signal.signal(signal.SIGINT, self._raise)
        except ValueError:  # not the main thread: Tune installs no handler either
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            self.pressed = signal.getsignal(signal.SIGINT) == self._raise
            signal.signal(signal.SIGINT, self._previous)


def outcome(grid, folder, interrupted: bool = False) -> int:
    """The sweep's exit status from what ``fit()`` returned; prints why when it is not 0."""
    if interrupted:
        print("interrupted: the Resume line above continues the sweep", file=sys.stderr,
              flush=True)
        return EXIT_INTERRUPTED
    pending = folder / PENDING_RECORD
    if pending.exists():
        print(f"error: {pending.read_text().strip()}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    failed = failed_trials(grid)
    if failed:
        print(f"{len(failed)} trial(s) FAILED:\n" + "\n".join(f.line() for f in failed),
              file=sys.stderr, flush=True)
        return EXIT_FAILED
    concluded = grid.num_terminated + grid.num_errors
    if concluded < len(grid):
        print(f"interrupted: {len(grid) - concluded} trial(s) did not conclude; the Resume "
              "line above continues the sweep", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    return EXIT_OK
