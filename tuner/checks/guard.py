"""The sweep driver's checks before it starts and its exit status after ``fit()``.

Before (``before_start``, then ``check_cluster`` once Ray runs): the Ray address and the MLflow
store answer, the data passes ``tuner.checks.preflight``, one trial fits on the cluster. All of
it runs before the MLflow experiment, the parent run or any trial exists, and each failure is one
``error:`` line with exit status 2.

After (``outcome``): 0 when every trial concluded (finished, early-stopped, or reused by the
gate), 1 when a trial FAILED (each is listed with the last line of its error and its error file),
2 when no trial could ever start (``--pending-timeout``) or trials failed on a full storage
(``tuner.checks.space``: the user frees space, then resumes), 130 when the sweep was interrupted
(Ctrl-C) and 143 when it was stopped by SIGTERM (``tuner.checks.signals``; the resume command
is printed with the summary either way).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fer_core.checkpoint import FULL_BELOW_BYTES  # below it a filesystem is full
from fer_core.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from fer_core.config import ExperimentConfig
from tuner.checks.preflight import check_data
from tuner.checks.probe import PENDING_TIMEOUT_S, Request, check_ray_address
from tuner.checks.signals import Stop, print_stop
from tuner.checks.space import (
    CHECKPOINTS_KEPT,
    free_bytes,
    full_disk_line,
    is_no_space,
    space_warning,
)
from tuner.tracking.database import check_store
from tuner.tracking.reach import check_mlflow_uri

if TYPE_CHECKING:
    from tuner.spec.spec import SweepPlace, SweepSpec

PENDING_RECORD = "pending_timeout.txt"


def check_connections(address: str | None, mlflow_uri: str | None,
                      optuna_storage: str | None) -> None:
    """The Ray address and the MLflow store answer now (seconds, not Ray's or MLflow's retries)."""
    check_ray_address(address)
    check_mlflow_uri(mlflow_uri)
    # A server whose database is down, or a database URI given directly, fails here too.
    check_store(mlflow_uri, "--mlflow-uri")
    check_store(optuna_storage, "--optuna-storage")


def before_start(spec: SweepSpec) -> None:
    """Connections, then the data scan; prints the scan's one-line summary, and a warning when
    the storage has less free space than the sweep will write (``tuner.checks.space``)."""
    place = spec.place
    check_connections(place.address, place.mlflow_uri, spec.settings.optuna_storage)
    data = ExperimentConfig.from_flat(dict(spec.base)).data
    print(check_data(data, Path(place.data_cache), place.preflight), flush=True)
    warning = space_warning(spec, CHECKPOINTS_KEPT)
    if warning:
        print(warning, flush=True)


def pending_timeout(place: SweepPlace) -> float:
    return place.pending_timeout_s or PENDING_TIMEOUT_S


def check_cluster(place: SweepPlace, resources: dict[str, float]) -> str | None:
    """After ``ray.init``: one trial fits (else ``ProbeError``); a note when not knowable."""
    from tuner.checks.probe import check_resources

    note = check_resources(Request(resources["cpu"], resources["gpu"]), local=not place.address)
    if note:
        print(f"note: {note} (the sweep ends if no trial starts within "
              f"{pending_timeout(place):g} s, --pending-timeout)", flush=True)
    return note


def pending_watch(place: SweepPlace, resources: dict[str, float], folder, note):
    """The Tune callback that ends a sweep whose trials never start (None when not needed)."""
    if not note:
        return None
    from tuner.checks.pending import PendingWatch

    return PendingWatch(pending_timeout(place), Request(resources["cpu"], resources["gpu"]),
                        record=folder / PENDING_RECORD)


@dataclass(frozen=True)
class FailedTrial:
    name: str
    last_line: str
    log: str

    def line(self) -> str:
        return f"  {self.name}: {self.last_line}\n    log: {self.log}"

    @property
    def on_full_disk(self) -> bool:
        return is_no_space(self.last_line)


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


def storage_full(folder) -> bool:
    """The filesystem of the sweep's storage is full: why ``fit()`` failed when it did (Tune
    itself then fails on the files it could only half write)."""
    free = free_bytes(os.path.dirname(str(folder).rstrip("/")))
    return free is not None and free < FULL_BELOW_BYTES


def disk_full(folder, ctx, trials_left: int | None = None) -> int:
    """Say that the storage is full, where, and what the sweep needs to go on; exit 2."""
    concurrent = ctx.settings.max_concurrent if ctx.settings else 1
    running = min(trials_left or concurrent, concurrent)
    line = full_disk_line(str(folder), dict(ctx.base), running, CHECKPOINTS_KEPT)
    print(f"error: {line}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def stopped_by_full_disk(grid) -> bool:
    """Some trial failed because the storage filled up: the sweep did not finish (its parent
    run ends FAILED), and it goes on with ``--resume`` once space is freed."""
    return any(f.on_full_disk for f in failed_trials(grid))


def outcome(grid, folder, stop: Stop | None = None, ctx=None) -> int:
    """The sweep's exit status from what ``fit()`` returned and whether a stop signal ended
    it; prints why when it is not 0. ``ctx``: the sweep's context, to size what trials stopped
    by a full disk need."""
    if stop is not None and stop.stopped_fit:
        return print_stop(stop, "the Resume line above continues the sweep")
    pending = folder / PENDING_RECORD
    if pending.exists():
        print(f"error: {pending.read_text().strip()}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    failed = failed_trials(grid)
    full = [f for f in failed if f.on_full_disk]
    if full:
        others = [f for f in failed if f not in full]
        if others:
            print(f"{len(others)} trial(s) FAILED:\n" + "\n".join(f.line() for f in others),
                  file=sys.stderr, flush=True)
        return disk_full(folder, ctx, len(full))
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
