"""A trial's MLflow journal: a JSONL file of tracking operations, and their delivery.

Every operation a trial sends to MLflow (attach its run, metrics of a step, tags, artifacts, its
end status) is first appended to ``<trial folder>/mlflow_journal.jsonl`` and acknowledged in the
same file once MLflow accepted it. What is not acknowledged was not delivered: a later attempt
of the trial sends it first, and ``python -m tuner.mlflow_replay`` sends it after the sweep.
Nothing in the journal is a credential: params and tags pass ``client.outgoing`` before they are
queued and the tracking URI is stored redacted (``TrackingTarget.public``).

Lines (one JSON object each):

- ``{"header": 1, "uri": ..., "experiment_id": ..., "parent_run_id": ..., "sweep_name": ...,
  "space": ..., "trial_id": ...}``: first line, where the operations go (a ``TrackingTarget``
  and the trial);
- ``{"seq": N, "op": "attach" | "metrics" | "tags" | "artifacts" | "inputs" | "model" | "end",
  ...}``: an operation (``inputs``: dataset inputs; ``model``: an MLflow model folder to log as
  the run's LoggedModel, ``tuner.tracking.outputs``);
- ``{"ack": N}`` (delivered) or ``{"ack": N, "rejected": "why"}`` (refused by MLflow for good,
  e.g. the run was deleted; reported as an error, never retried).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from fer_core import atomic
from fer_core.cli import UserError
from tuner.tracking import client as runs
from tuner.tracking import outputs
from tuner.tracking.client import TrackingTarget
from tuner.tracking.schema import JOURNAL_FILE  # noqa: F401  (the journal's file name)

STAGING_DIR = "mlflow_journal_files"  # artifacts waiting for delivery, deleted once delivered

Op = dict[str, Any]
_TARGET_FIELDS = tuple(f.name for f in fields(TrackingTarget))


class Header(NamedTuple):
    """A journal's first line: where its operations go (URI redacted) and for which trial."""

    target: TrackingTarget
    trial_id: str


class Repair(NamedTuple):
    """What ``Journal.repair`` kept of a torn journal."""

    kept: int
    """Readable lines kept (operations, acks, the header)."""
    dropped: int
    """Unreadable lines dropped."""
    header_lost: bool
    """The first line was gone or unreadable (an empty file, one cut in its first line)."""


class Journal:
    """The append-only JSONL file; thread-safe within one process."""

    def __init__(self, path: Path, target: TrackingTarget, trial_id: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._removed = False
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.stat().st_size == 0:
            path.touch()
            self._append({"header": 1, **asdict(target.public()), "trial_id": trial_id})
        elif not path.read_bytes().endswith(b"\n"):  # a line cut by a crash: close it off
            with path.open("a") as f:
                f.write("\n")

    @classmethod
    def read(cls, path: Path) -> tuple[Header, list[Op], dict[int, str | None]]:
        """(header, operations in order, acks: seq → None or the rejection reason)."""
        header: Header | None = None
        ops: list[Op] = []
        acks: dict[int, str | None] = {}
        # Bytes a crash or a disk left there are no operation: undecodable ones read as such.
        with path.open(errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # blank, or cut by a crash while written: never fully queued
                if "header" in record:
                    header = header or Header(
                        TrackingTarget(**{k: record[k] for k in _TARGET_FIELDS}),
                        record["trial_id"])
                elif "ack" in record:
                    acks[int(record["ack"])] = record.get("rejected")
                else:
                    ops.append(record)
        if header is None:
            raise UserError(f"{path}: no header line: not an MLflow journal")
        ops.sort(key=lambda op: op["seq"])
        return header, ops, acks

    @classmethod
    def repair(cls, path: Path, target: TrackingTarget, trial_id: str) -> Repair | None:
        """Rewrite a journal with unreadable lines (cut, overwritten, empty file) from its
        readable ones, under a header for ``target`` and ``trial_id`` when its own is lost.

        Returns what was kept and dropped, or None when every line reads.
        """
        records, dropped = [], 0
        lines = path.read_bytes().split(b"\n")
        for line in lines:
            try:
                record = json.loads(line.decode())
            except (UnicodeDecodeError, json.JSONDecodeError):
                dropped += bool(line.strip())  # a blank line (the file's last) held nothing
                continue
            if isinstance(record, dict) and ("header" in record or "ack" in record
                                             or "seq" in record):
                records.append(record)
            else:
                dropped += 1
        has_header = any("header" in r for r in records)
        if has_header and not dropped:
            return None
        if not has_header:
            records.insert(0, {"header": 1, **asdict(target.public()), "trial_id": trial_id})
        atomic.write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in records))
        return Repair(len(records) - (not has_header), dropped, not has_header)

    def pending(self) -> list[Op]:
        """Operations not acknowledged yet, in order."""
        with self._lock:
            _, ops, acks = self.read(self.path)
        return [op for op in ops if op["seq"] not in acks]

    def last_seq(self) -> int:
        with self._lock:
            _, ops, acks = self.read(self.path)
        return max([op["seq"] for op in ops] + list(acks) + [0])

    def append(self, op: Op) -> None:
        self._append(op)

    def ack(self, seq: int, rejected: str | None = None) -> None:
        self._append({"ack": seq} if rejected is None else {"ack": seq, "rejected": rejected})

    def sync(self) -> None:
        """Force the journal to disk (before a checkpoint: a killed process loses nothing)."""
        with self._lock:
            if self._removed:
                return
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)  # never created here
            except FileNotFoundError:
                return
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            if self._removed:  # a late ack after everything was delivered and cleaned up
                return
            try:
                # Never created here: a journal gone since it was opened was removed by the
                # trial once all was delivered (a replay at the sweep's end can race it), and
                # an ack alone in a new file would be a journal without its header.
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                self._removed = True
                return
            with os.fdopen(fd, "a") as f:
                f.write(line)

    def remove(self) -> None:
        """Delete the journal and staged artifacts (everything was delivered)."""
        with self._lock:
            self._removed = True
            self.path.unlink(missing_ok=True)
            shutil.rmtree(self.path.parent / STAGING_DIR, ignore_errors=True)


# ---------------------------------------------------------------- delivery
@dataclass
class Delivery:
    """Sends operations of one trial's journal to MLflow."""

    target: TrackingTarget
    trial_id: str
    live: bool = True
    """False for a replay: an ``attach`` then counts the attempt without reopening the run."""
    run_id: str | None = None

    @functools.cached_property
    def client(self) -> MlflowClient:
        """Made at the first send, in the tracker's thread: a process's first client opens
        MLflow's store (~1.5 s for a SQLite file), which the trial's thread need not wait for."""
        return self.target.client()

    def run(self) -> str:
        """The trial's run id (an ``attach`` found or created it, now or in an earlier
        attempt)."""
        if self.run_id is None:
            found = runs.find_trial_run(self.client, self.target, self.trial_id)
            if found is None:
                raise MlflowException(f"no MLflow run of trial {self.trial_id} in experiment "
                                      f"{self.target.experiment_id} (was it deleted?)",
                                      error_code=RESOURCE_DOES_NOT_EXIST)
            self.run_id = found.info.run_id
        return self.run_id

    def send(self, op: Op) -> None:
        OPS[op["op"]](self, op)


def _attach(d: Delivery, op: Op) -> None:
    d.run_id = runs.attach_trial_run(d.client, d.target, d.trial_id, op["trial_name"],
                                     op["tags"], op["params"], reopen_run=d.live,
                                     run_name=op.get("run_name"))


def _metrics(d: Delivery, op: Op) -> None:
    runs.log_metrics(d.client, d.run(), op["values"], step=op["step"], timestamp_ms=op["ts"])


def _tags(d: Delivery, op: Op) -> None:
    runs.set_tags(d.client, d.run(), op["tags"])


def _artifacts(d: Delivery, op: Op) -> None:
    runs.log_artifacts(d.client, d.run(), op["files"])
    if op.get("staged"):
        shutil.rmtree(op["staged"], ignore_errors=True)


def _inputs(d: Delivery, op: Op) -> None:
    outputs.log_datasets(d.client, d.run(), op["datasets"])


def _model(d: Delivery, op: Op) -> None:
    outputs.log_model_folder(d.client, d.target.experiment_id, d.run(), Path(op["folder"]),
                             step=op["step"])
    if op.get("staged"):
        shutil.rmtree(op["staged"], ignore_errors=True)


def _end(d: Delivery, op: Op) -> None:
    runs.end_run(d.client, d.run(), op["status"], op.get("tags") or None)


OPS: dict[str, Callable[[Delivery, Op], None]] = {
    "attach": _attach, "metrics": _metrics, "tags": _tags, "artifacts": _artifacts,
    "inputs": _inputs, "model": _model, "end": _end,
}
"""Operation name → how it is delivered."""


def is_transient(err: BaseException) -> bool:
    """Worth retrying: the server is unreachable, overloaded or failing (5xx, 429); a 4xx
    answer (bad value, deleted run) or a missing local file will not get better."""
    if isinstance(err, MlflowException):
        status = err.get_http_status_code()
        return status >= 500 or status == 429
    return isinstance(err, requests.RequestException | ConnectionError | TimeoutError)


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def short_error(err: BaseException | str) -> str:
    """The gist of a (long, nested) MLflow/requests error, e.g. ``Connection refused``."""
    text = str(err)
    found = _ERRNO.findall(text)
    return found[-1].strip() if found else text.splitlines()[0][:160] if text else repr(err)


def describe(ops: list[Op]) -> str:
    """What a list of operations holds, for warnings: steps, tag keys, artifacts, statuses."""
    steps = sorted({op["step"] for op in ops if op["op"] == "metrics"})
    parts = []
    if any(op["op"] == "attach" for op in ops):
        parts.append("run creation/attach")
    if steps:
        parts.append(f"metrics of step(s) {', '.join(map(str, steps))}")
    tags = sorted({k for op in ops if op["op"] in ("tags", "end") for k in op.get("tags") or {}})
    if tags:
        parts.append(f"tags {', '.join(tags)}")
    folders = sorted({f for op in ops if op["op"] == "artifacts" for f in op["files"]})
    folders += ["logged model"] * any(op["op"] == "model" for op in ops)
    if folders:
        parts.append(f"artifacts {', '.join(folders)}")
    parts += [f"status {op['status']}" for op in ops if op["op"] == "end"]
    return "; ".join(parts) or "nothing"


def replay_command(path: Path) -> str:
    return f"python -m tuner.mlflow_replay {path} [--mlflow-uri URI]"


def now_ms() -> int:
    return int(time.time() * 1000)
