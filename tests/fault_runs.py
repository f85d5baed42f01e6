"""Sweep drivers as processes that a fault test signals or kills: started, watched, cleaned up.

Test files import it as ``from fault_runs import ...`` (pytest puts ``tests/`` on the path). A
driver here starts its own local Ray, whose processes are its descendants: what a test kills is
found among them (never by a process name, which other sessions' Ray processes share), and every
one still alive when the test ends is killed.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from helpers import sweep_runs

PROJECT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 600  # imports, Ray and the data before the first epoch: slow on a busy machine
NATIVE_DUMP = ("*** SIGTERM received", "*** SIGABRT received", "PC: @", "Fatal Python error")
"""Lines of a native crash dump (Ray's failure signal handler, CPython's fault handler)."""


def sweep_argv(tmp_path: Path, name: str, *extra: str, mlflow_uri: str | None = None,
               ) -> list[str]:
    """A smoke sweep on a local Ray runtime of one CPU, its storage in ``tmp_path`` and its
    store too unless ``mlflow_uri`` names one."""
    return [sys.executable, "-m", "tuner.sweep", "--space", "smoke", "--name", name,
            "--num-cpus", "1", "--storage-path", str(tmp_path / "rr"),
            "--mlflow-uri", mlflow_uri or f"sqlite:///{tmp_path}/mlflow.db", *extra]


def resume_argv(tmp_path: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "tuner.sweep", "--resume", "--name", name,
            "--storage-path", str(tmp_path / "rr")]


def driver_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(PROJECT), **extra}


class Driver:
    """A running ``python -m tuner.sweep``; its output goes to ``<log>.out`` / ``<log>.err``."""

    def __init__(self, argv: list[str], cwd: Path, log: str, env: dict[str, str]) -> None:
        self.out_path, self.err_path = cwd / f"{log}.out", cwd / f"{log}.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err,
                                         start_new_session=True)
        self.seen: set[int] = set()

    def descendants(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen.update(p.pid for p in found)
        return found

    def wait(self, timeout: float = START_TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def tail(self) -> str:
        return self.out[-2000:] + "\n--- stderr ---\n" + self.err[-4000:]

    def kill_all(self) -> None:
        """SIGKILL the driver and every process it started (its local Ray included)."""
        self.descendants()
        for pid in [self.proc.pid, *self.seen]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=60)


@contextmanager
def driver(argv: list[str], cwd: Path, log: str = "driver",
           env: dict[str, str] | None = None) -> Iterator[Driver]:
    """A sweep driver; it and its Ray processes are gone when the block ends."""
    d = Driver(argv, cwd, log, env or driver_env())
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            d.kill_all()
        for pid in d.seen:  # a Ray process that outlived its driver
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for(predicate: Callable[[], Any], what: str, d: Driver | None = None,
             timeout: float = START_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if d is not None:
            d.descendants()
            assert d.proc.poll() is None, f"the sweep ended before {what}:\n{d.tail()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def trial_folders(tmp_path: Path, name: str) -> list[Path]:
    return [Path(p) for p in glob.glob(f"{tmp_path}/rr/{name}/train_trial_*")]


def last_result(folder: Path) -> dict[str, Any] | None:
    """The newest line of a trial's ``result.json`` (Tune adds the trial process's ``pid``)."""
    try:
        lines = (folder / "result.json").read_text().splitlines()
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):  # not there yet, or a line being written now
        return None


def training_worker(d: Driver, tmp_path: Path, name: str) -> tuple[Path, psutil.Process] | None:
    """(trial folder, worker process) of a trial that reported an epoch, once there is one."""
    mine = {p.pid: p for p in d.descendants()}
    for folder in trial_folders(tmp_path, name):
        result = last_result(folder)
        if result and result.get("pid") in mine:
            return folder, mine[result["pid"]]
    return None


def trial_workers(d: Driver) -> list[psutil.Process]:
    """The driver's live Tune trial workers (Ray names them ``ray::ImplicitFunc...``)."""
    found = []
    for p in d.descendants():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "ImplicitFunc" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:  # ended while we looked
            pass
    return found


def runs_of(tmp_path: Path) -> tuple[list, list]:
    """(parent runs, trial runs) in the sweep's store."""
    return sweep_runs(f"sqlite:///{tmp_path}/mlflow.db")
