"""A trial's tracking that survives tracking-server outages without slowing training.

The trainable queues its MLflow operations on a ``TrialTracker``; one background thread sends
them in order. When the server cannot be reached, training goes on: the thread warns once,
retries with a growing pause (at most ``RETRY_MAX_S``), and on recovery delivers the backlog in
order (metrics keep the step and time they were measured at). Every operation is written to
the trial's journal first (``tuner.tracking.journal``), so none is lost to a crash or an
overflow:

- memory holds at most ``capacity`` operations; beyond that they stay only in the journal (a
  warning says so) and are read back, in order, once the backlog drains;
- ``flush`` (before each checkpoint) waits briefly for delivery while the server answers and
  forces the journal to disk, so a killed trial leaves its backlog for the next attempt;
- ``close`` (in the trial's ``finally``) gives the server ``close_grace_s`` to come back; what
  is still undelivered is named in an error with the journal's path and the replay command.

MLflow's HTTP client itself retries a refused connection for minutes by default; inside a trial
``client.fail_fast_http`` makes each request give up within seconds, since this queue retries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from tuner.tracking.client import TrackingTarget, outgoing
from tuner.tracking.journal import (
    JOURNAL_FILE,
    STAGING_DIR,
    Delivery,
    Journal,
    Op,
    describe,
    is_transient,
    now_ms,
    replay_command,
    short_error,
)
from tuner.tracking.schema import KEY_RUN_ID

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10_000
"""Operations kept in memory (about 1 kB each); a trial queues about two per epoch."""
RETRY_MIN_S, RETRY_MAX_S = 1.0, 15.0
FLUSH_S = 10.0
"""At most this long before each checkpoint, and only while the server answers."""
CLOSE_GRACE_S = 60.0
"""At the end of a trial, how long an unreachable server gets to come back."""


class TrialTracker:
    """Queued, ordered, journaled MLflow tracking of one trial (one attempt at a time)."""

    def __init__(self, target: TrackingTarget, trial_id: str, folder: Path,
                 capacity: int = DEFAULT_CAPACITY, close_grace_s: float = CLOSE_GRACE_S) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: the journal queue must hold at least 1 "
                             "operation")
        self.uri = target.public().uri
        self.trial_id = trial_id
        self.capacity = capacity
        self.close_grace_s = close_grace_s
        self.journal = Journal(Path(folder) / JOURNAL_FILE, target, trial_id)
        self._delivery = Delivery(target, trial_id)
        self._cond = threading.Condition()
        self._memory: deque[Op] = deque()
        self._rejected = 0
        self._on_disk = 0  # operations only in the journal (overflow or an earlier attempt's)
        self._seq = self.journal.last_seq()
        self._closing = self._abandon = self._overflowed = False
        self._outage_since: float | None = None
        leftover = self.journal.pending()
        if leftover:
            log.warning("trial %s: %d MLflow operation(s) of an earlier attempt were not "
                        "delivered (%s); sending them first", trial_id, len(leftover),
                        describe(leftover))
            self._on_disk = len(leftover)
        self._thread = threading.Thread(target=self._send_loop, name=f"mlflow-journal-{trial_id}",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ what the trial queues
    def attach(self, trial_name: str, tags: Mapping[str, str],
               params: Mapping[str, str], run_name: str | None = None) -> None:
        """Find or create the trial's run (reopened, ``tune.attempts`` + 1, if it exists);
        ``run_name`` names a new run (default: ``trial_name``)."""
        self._put({"op": "attach", "trial_name": trial_name, "tags": outgoing(tags),
                   "params": outgoing(params), "run_name": run_name})

    def log_inputs(self, datasets: list[Mapping[str, str]]) -> None:
        """Dataset inputs (``tuner.tracking.outputs.dataset_inputs``)."""
        self._put({"op": "inputs", "datasets": [dict(d) for d in datasets]})

    def log_model(self, folder: Path, step: int, staged: Path | None = None) -> None:
        """An MLflow model folder → the run's LoggedModel ``model``; ``staged`` is deleted once
        it is delivered."""
        self._put({"op": "model", "folder": str(folder), "step": int(step),
                   "staged": str(staged) if staged else None})

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        self._put({"op": "metrics", "step": int(step), "ts": now_ms(),
                   "values": {k: float(v) for k, v in values.items()}})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._put({"op": "tags", "tags": outgoing(tags)})

    def staging_dir(self) -> Path:
        """A fresh folder for artifact files to ``log_artifacts``; kept until delivered."""
        folder = self.journal.path.parent / STAGING_DIR / f"{now_ms()}-{self._seq + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def log_artifacts(self, files: Mapping[str, list[Path]], staged: Path | None = None) -> None:
        """``{artifact folder: [local files]}``; ``staged`` (from ``staging_dir``) is deleted
        once they are delivered."""
        self._put({"op": "artifacts", "files": {k: [str(p) for p in v] for k, v in files.items()},
                   "staged": str(staged) if staged else None})

    def end(self, status: str, tags: Mapping[str, str] | None = None) -> None:
        self._put({"op": "end", "status": status, "tags": outgoing(tags or {})})

    def run_ref(self) -> dict[str, str]:
        """``{KEY_RUN_ID: run id}`` once the run is attached, for the trial's Tune results (the
        driver ends an early-stopped trial's run by id, without a search); else empty."""
        run_id = self._delivery.run_id
        return {KEY_RUN_ID: run_id} if run_id else {}

    # ------------------------------------------------------------ waiting for delivery
    def pending(self) -> int:
        with self._cond:
            return len(self._memory) + self._on_disk

    def flush(self, timeout: float = FLUSH_S) -> int:
        """Wait (at most ``timeout``, not at all during an outage) until everything queued is
        delivered; force the journal to disk. Returns the operations still pending."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._memory or self._on_disk) and self._outage_since is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            left_over = len(self._memory) + self._on_disk
        self.journal.sync()
        return left_over

    def close(self, timeout: float | None = None) -> int:
        """Deliver what is left (outage or not, at most ``timeout``, default
        ``close_grace_s``), stop the sender and report: delete the journal when all was
        delivered, else log an error naming what was not and how to replay it.

        Returns the number of undelivered operations.
        """
        deadline = time.monotonic() + (self.close_grace_s if timeout is None else timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while self._memory or self._on_disk:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._abandon = True
            self._cond.notify_all()
        # A request in flight ends within MLflow's (fail-fast) timeout; its ack still lands.
        self._thread.join(timeout=5.0)
        left = self.journal.pending()
        if not left and not self._rejected:
            self.journal.remove()
            return 0
        self.journal.sync()  # refused operations stay on record there, with MLflow's reason
        if left:
            log.error("trial %s: %d MLflow operation(s) NOT delivered to %s (%s). They are "
                      "kept in %s; deliver them with: %s", self.trial_id, len(left), self.uri,
                      describe(left), self.journal.path, replay_command(self.journal.path))
        return len(left)

    # ------------------------------------------------------------ internals
    def _put(self, op: Op) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError(f"trial {self.trial_id}: the MLflow journal is closed")
            self._seq += 1
            op = {"seq": self._seq, **op}
            self.journal.append(op)
            if self._on_disk or len(self._memory) >= self.capacity:
                # Order matters (the end status comes last): once one operation waits on disk,
                # every later one does too until the sender reads them back.
                if len(self._memory) >= self.capacity and not self._overflowed:
                    self._overflowed = True
                    log.warning(
                        "trial %s: MLflow journal queue over its in-memory bound (%d operations): "
                        "the newest ones wait only in %s and are sent, in order, once %s "
                        "answers again", self.trial_id, self.capacity, self.journal.path,
                        self.uri)
                self._on_disk += 1
            else:
                self._memory.append(op)
            self._cond.notify_all()

    def _next(self) -> Op | None:
        """The next operation to send (reading back from the journal if memory ran dry);
        None when closing with nothing left, or abandoned."""
        with self._cond:
            while True:
                if self._abandon:
                    return None
                if not self._memory and self._on_disk:
                    self._reload()
                if self._memory:
                    return self._memory[0]
                if self._closing:
                    return None
                self._cond.wait()

    def _reload(self) -> None:
        # Memory is empty and every sent operation is acked: what the journal still holds
        # pending is exactly what waits on disk, in order.
        pending = self.journal.pending()
        taken = pending[:self.capacity]
        self._memory.extend(taken)
        self._on_disk = len(pending) - len(taken)
        if not self._on_disk:
            self._overflowed = False

    def _send_loop(self) -> None:
        delay = RETRY_MIN_S
        while (op := self._next()) is not None:
            try:
                self._delivery.send(op)
            except Exception as err:  # noqa: BLE001 - classified below, never kills the trial
                if is_transient(err):
                    self._outage(err, delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                log.error("trial %s: MLflow refused %s for good (%s); skipped, kept in %s",
                          self.trial_id, describe([op]), err, self.journal.path)
                self.journal.ack(op["seq"], rejected=str(err))
                self._rejected += 1
            else:
                self.journal.ack(op["seq"])
                delay = RETRY_MIN_S
                self._recovered()
            with self._cond:
                self._memory.popleft()
                self._cond.notify_all()

    def _outage(self, err: Exception, delay: float) -> None:
        with self._cond:
            if self._outage_since is None:
                self._outage_since = time.monotonic()
                self._cond.notify_all()  # flush() stops waiting: training goes on
                log.warning("trial %s: MLflow tracking at %s unreachable (%s); training goes "
                            "on, %d operation(s) wait in %s and are retried every <= %.0f s",
                            self.trial_id, self.uri, short_error(err),
                            len(self._memory) + self._on_disk, self.journal.path, RETRY_MAX_S)
            # Sleep the whole pause (new operations do not cut it short); close() does.
            deadline = time.monotonic() + delay
            while not self._abandon and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)

    def _recovered(self) -> None:
        with self._cond:
            if self._outage_since is None:
                return
            gone = time.monotonic() - self._outage_since
            self._outage_since = None
            log.warning("trial %s: MLflow tracking at %s reachable again after %.0f s; sending "
                        "the %d queued operation(s)", self.trial_id, self.uri, gone,
                        len(self._memory) + self._on_disk)
