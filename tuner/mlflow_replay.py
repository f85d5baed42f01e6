"""``python -m tuner.mlflow_replay``: deliver what trials could not send to MLflow.

A trial whose tracking server stayed unreachable past its end leaves
``<trial folder>/mlflow_outbox.jsonl`` (``tuner.mlflow_outbox``); this sends its pending
operations, in order, to the same run (found by its Tune trial id, created if it never was):

    python -m tuner.mlflow_replay ray_results/<sweep>                 # every trial's journal
    python -m tuner.mlflow_replay ray_results/<sweep>/<trial>/mlflow_outbox.jsonl \\
        --mlflow-uri http://127.0.0.1:5000

Each delivered operation is acknowledged in the journal, so running it again sends nothing
twice. Exit status: 0 all delivered, 1 something is left (server still unreachable, or an
operation MLflow refused), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tuner import tracking as tr
from tuner.mlflow_buffer import fail_fast_http
from tuner.mlflow_outbox import OUTBOX_FILE, replay


def journals(paths: list[str]) -> list[Path]:
    """The journal files named, or found under the folders named."""
    found: list[Path] = []
    for name in paths:
        path = Path(name).expanduser()
        if path.is_dir():
            found += sorted(path.rglob(OUTBOX_FILE))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such journal file or folder")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuner.mlflow_replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help=f"{OUTBOX_FILE} files, or folders to search for them")
    p.add_argument("--mlflow-uri", help="tracking URI (default: the one the trial used; needed "
                                        "when that one held credentials, which are not stored)")
    args = p.parse_args(argv)
    fail_fast_http()  # an unreachable server is reported in seconds, not minutes
    try:
        files = journals(args.paths)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not files:
        print(f"nothing to replay: no {OUTBOX_FILE} under {', '.join(args.paths)}")
        return 0
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
                     f"{tr.redact(args.mlflow_uri or '') or 'the journal URI'} failed: "
                     f"{result.error}); run this again when it answers")
            status = 1
        print(line, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
