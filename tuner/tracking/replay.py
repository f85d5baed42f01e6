"""``python -m tuner.mlflow_replay``: deliver what trials could not send to MLflow.

A trial whose tracking server stayed unreachable past its end leaves its journal
``<trial folder>/mlflow_journal.jsonl`` (``tuner.tracking.journal``); this sends its pending
operations, in order, to the same run (found by its Tune trial id, created if it never was):

    python -m tuner.mlflow_replay ray_results/<sweep>                 # every trial's journal
    python -m tuner.mlflow_replay ray_results/<sweep>/<trial>/mlflow_journal.jsonl \\
        --mlflow-uri http://127.0.0.1:5000

Each delivered operation is acknowledged in the journal, so running it again sends nothing
twice. Exit status: 0 all delivered, 1 something is left (server still unreachable, or an
operation MLflow refused), 2 bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from fer_core.cli import UserError, cli_main
from tuner.tracking.redact import REDACTED, redact
from tuner.tracking.schema import JOURNAL_FILE
from tuner.tracking.target import TrackingTarget


def delivery_target(stored: TrackingTarget, uri: str | None) -> TrackingTarget:
    """The journal's target, at ``uri`` if given: the stored URI has its credentials redacted,
    so a URI that had some must be given again."""
    uri = uri or stored.uri
    if REDACTED in uri:
        raise UserError(f"the journal's tracking URI {stored.uri} had credentials (redacted): "
                         "pass the real one with --mlflow-uri, or put the credentials in "
                         "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD")
    return dataclasses.replace(stored, uri=uri)


@dataclass
class ReplayResult:
    """What one replay did: operations delivered, refused for good, left for a later try."""

    delivered: int = 0
    rejected: list[str] | None = None
    left: int = 0
    error: str | None = None


def replay(path: Path, uri: str | None = None) -> ReplayResult:
    """Deliver the unacknowledged operations of the journal at ``path``, in order, acking each.

    Stops at the first transient failure (the rest stays pending: run it again later).
    """
    # MLflow is imported here, where something is delivered: --help and bad paths answer at once.
    from tuner.tracking.journal import Delivery, Journal, describe, is_transient, short_error

    header, ops, acks = Journal.read(path)
    target = delivery_target(header.target, uri)
    journal = Journal(path, target, header.trial_id)
    delivery = Delivery(target, header.trial_id, live=False)
    result = ReplayResult(rejected=[])
    pending = [op for op in ops if op["seq"] not in acks]
    for i, op in enumerate(pending):
        try:
            delivery.send(op)
        except Exception as err:  # noqa: BLE001 - classified: retry later or reject for good
            if is_transient(err):
                result.left, result.error = len(pending) - i, short_error(err)
                return result
            journal.ack(op["seq"], rejected=str(err))
            result.rejected.append(f"seq {op['seq']} ({describe([op])}): {err}")
            continue
        journal.ack(op["seq"])
        result.delivered += 1
    return result



def journals(paths: list[str]) -> list[Path]:
    """The journal files named, or found under the folders named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name).expanduser()
        if path.is_dir():
            found += sorted(path.rglob(JOURNAL_FILE))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{path}: no such journal file or folder")
    return found


@cli_main()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuner.mlflow_replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help=f"{JOURNAL_FILE} files, or folders to search for them")
    p.add_argument("--mlflow-uri", help="tracking URI (default: the one the trial used; needed "
                                        "when that one held credentials, which are not stored)")
    args = p.parse_args(argv)
    try:
        files = journals(args.paths)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not files:
        print(f"nothing to replay: no {JOURNAL_FILE} under {', '.join(args.paths)}")
        return 0
    from tuner.tracking.client import fail_fast_http

    fail_fast_http()  # an unreachable server is reported in seconds, not minutes
    status = 0
    for path in files:
        try:
            result = replay(path, args.mlflow_uri)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        line = f"{path}: {result.delivered} delivered"
        if result.rejected:
            line += f", {len(result.rejected)} refused by MLflow: " + "; ".join(result.rejected)
            status = 1
        if result.left:
            line += (f", {result.left} left (MLflow at "
                     f"{redact(args.mlflow_uri or '') or 'the journal URI'} failed: "
                     f"{result.error}); run this again when it answers")
            status = 1
        print(line, flush=True)
    return status
