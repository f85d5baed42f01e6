"""End a sweep whose trials can never start, instead of waiting on Ray forever.

Tune keeps a trial PENDING as long as no node offers its resources; on a cluster whose autoscaler
node types are unknown (``tuner.checks.probe.check_resources`` could not decide) that may be
forever. :class:`PendingWatch` is a Tune callback that notes when the first trial was queued; its
:meth:`PendingWatch.stopper` ends the experiment when no trial has started ``timeout_s`` later.
"""

from __future__ import annotations

import time

from ray import tune

from tuner.checks.probe import Request


class PendingWatch(tune.Callback):
    """Watches the trials of one ``fit()``; ``expired`` once nothing started in time."""

    def __init__(self, timeout_s: float, request: Request, record=None) -> None:
        self.timeout_s = timeout_s
        self.request = request
        self.record = record  # a file (Path or StoragePath) the driver reads after fit()
        self.first_pending: float | None = None
        self.started = False
        self.expired = False

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        if self.started or self.expired or not trials:
            return
        if any(t.status != "PENDING" for t in trials):
            self.started = True  # from now on a queue is normal, not a sign of a bad request
            return
        if self.first_pending is None:
            self.first_pending = time.monotonic()
        elif time.monotonic() - self.first_pending > self.timeout_s:
            self.expired = True
            if self.record is not None:
                self.record.write_text(self.message() + "\n")

    def stopper(self) -> tune.Stopper:
        return _StopWhenExpired(self)

    def message(self) -> str:
        return (f"no trial started within {self.timeout_s:g} s (--pending-timeout): no node of "
                f"the cluster was offered for {self.request.flags()}; lower the request or add "
                "nodes that can hold it")


class _StopWhenExpired(tune.Stopper):
    """Tune asks every step whether to stop all trials: yes once the watch expired."""

    def __init__(self, watch: PendingWatch) -> None:
        self.watch = watch

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.watch.expired
