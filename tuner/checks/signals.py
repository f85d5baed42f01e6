"""How a driver stops on a signal: SIGTERM is an ordinary stop, handled as Ctrl-C is.

A batch scheduler, Kubernetes or a preemptible machine stops a job with SIGTERM. The sweep and
the study drivers turn it into what Ctrl-C does: Tune ends ``fit()`` gracefully (trials
checkpointed, their MLflow runs closed), the closing summary and the ``--resume`` command are
printed, and the exit status is 143 (128 + 15, the shell's convention) instead of Ctrl-C's 130.

``ray.init`` replaces a process's SIGTERM handling twice (Ray 2.60): a Python handler that
exits at once, then, when it starts the driver's core worker, a native failure handler that
prints a stack dump (``*** SIGTERM received ... PC: @ 0x...``) and aborts (exit 134). Both are
undone by starting Ray inside ``sigterm_kept``.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fer_core.cli import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated

SIGTERM_LINE = "stopped by SIGTERM"
"""The one line a driver stopped by SIGTERM prints on stderr, before what continues it."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_kept() -> Iterator[None]:
    """Whatever this process did on SIGTERM before, it does again after the block (wrap
    ``ray.init`` in it)."""
    previous = signal.getsignal(signal.SIGTERM) if _main_thread() else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Stop:
    """Ctrl-C and SIGTERM for one driver, as a context manager around its work.

    SIGTERM is recorded and sent on as SIGINT: inside ``fit()`` Tune's own SIGINT handler stops
    the sweep gracefully; elsewhere ours raises ``KeyboardInterrupt`` (``Terminated`` after a
    SIGTERM), which the CLI ends with exit 130 (143). Tune puts back the SIGINT handler it
    found only when it fires (Ray 2.60, ``ray.tune.tune._setup_signal_catching``), so finding
    ours back after ``fit()`` means a stop signal ended it (``fitting``). Outside the main
    thread nothing is installed (Python allows signal handlers there only), as Tune does.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        """SIGINT or SIGTERM once one arrived, else None."""
        self.stopped_fit = False
        self._previous: dict[int, Any] = {}

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signal.SIGINT
        raise Terminated if self.signum == signal.SIGTERM else KeyboardInterrupt

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.signum = signal.SIGTERM
        os.kill(os.getpid(), signal.SIGINT)

    def __enter__(self) -> Stop:
        if _main_thread():
            self._previous = {signal.SIGINT: signal.signal(signal.SIGINT, self._on_sigint),
                              signal.SIGTERM: signal.signal(signal.SIGTERM, self._on_sigterm)}
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @contextmanager
    def fitting(self) -> Iterator[None]:
        """Around ``tuner.fit()``: afterwards ``stopped_fit`` says whether a signal ended it."""
        try:
            yield
        finally:
            if self._previous:
                self.stopped_fit = signal.getsignal(signal.SIGINT) == self._on_sigint
                signal.signal(signal.SIGINT, self._on_sigint)  # Tune's stays when unfired

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.signum == signal.SIGTERM else EXIT_INTERRUPTED

    @property
    def reason(self) -> str:
        return SIGTERM_LINE if self.signum == signal.SIGTERM else "interrupted"

    def line(self, what: str) -> str:
        """``<why>: <what>`` for stderr, why being SIGTERM or Ctrl-C."""
        return f"{self.reason}: {what}"


def print_stop(stop: Stop, what: str) -> int:
    """Print the stop's one line on stderr; its exit code."""
    print(stop.line(what), file=sys.stderr, flush=True)
    return stop.exit_code


class WorkerStopping(SystemExit):
    """Raised in a trial's thread when its worker process ends under it (SIGTERM: a node
    draining). A ``SystemExit``, as Tune's own stop inside ``tune.report``: the trial ends its
    run only if it already reported its test result, and Tune retries it from its last
    checkpoint."""


@contextmanager
def stopped_at_exit(grace_s: float = 20.0) -> Iterator[None]:
    """Around a trial function that runs in a thread of its worker process (a Tune function
    trainable does): when the process exits under it, the trial stops first, cleanly.

    On SIGTERM Ray's worker handler exits the process (Ray 2.60, exit code 1). Its interpreter
    then ends the threads still running: one inside torch's C++ code dies in a forced unwind
    that aborts the process with a native crash dump (``*** SIGABRT received``, ``Fatal Python
    error: Aborted``). This registers an exit handler, run before that: it raises
    ``WorkerStopping`` in the trial's thread (at its next Python line, within one torch call)
    and waits up to ``grace_s`` for the trial's ``finally`` blocks (its MLflow run's delivery);
    past that the process ends at once, without a dump."""
    ident = threading.get_ident()
    done = threading.Event()

    def stop() -> None:
        import ctypes

        if done.is_set():
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                   ctypes.py_object(WorkerStopping))
        if not done.wait(grace_s):
            os._exit(EXIT_TERMINATED)

    if _main_thread():  # the process's own thread ends with it: nothing to stop first
        yield
        return
    atexit.register(stop)
    try:
        yield
    finally:
        done.set()
        atexit.unregister(stop)
