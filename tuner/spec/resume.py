"""Finding a sweep to resume and checking that Tune can restore it.

The storage is a local folder or a URI (``tuner.spec.context.StoragePath``); it is listed through
``pyarrow.fs``, so a sweep in a bucket resumes from any machine that can read the bucket.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from fer_core.cli import UserError
from tuner.spec.context import SWEEP_FILE, StoragePath, SweepContext
from tuner.spec.spec import SweepPlace

TUNE_STATE = "experiment_state-*.json"


class NothingToResume(UserError):
    """The named/latest sweep cannot be restored; the message says what to do."""


@dataclass(frozen=True)
class ResumeRequest:
    """``--resume``: the sweep's saved spec (``sweep.json``, credentials put back from the
    command line) and where it runs now; nothing else of the command line is read."""

    place: SweepPlace
    folder: StoragePath
    context: SweepContext
    ignored: bool = False
    """Flags that only a new sweep reads were given (a note says they are ignored)."""


def saved_sweep(place: SweepPlace, name: str | None, space: str | None,
                optuna_storage: str | None, ignored: bool = False) -> ResumeRequest:
    """The sweep ``name`` (or the latest, of ``space``) under the storage, its saved context
    made whole again by the URIs given now.

    Every file the resume reads is read first (``tuner.spec.state``): what was recovered is
    printed, one line each; a file that cannot be recovered ends it with one ``error:`` line."""
    from tuner.spec import state

    folder = find_sweep(place.storage, name, space)
    saved, note = state.load_context(folder)
    try:
        ctx = saved.with_secrets(place.mlflow_uri, optuna_storage)
    except ValueError as err:
        raise NothingToResume(f"sweep {folder.name!r}: {err}") from None
    for line in [note, *state.check(folder, ctx)]:
        if line:
            print(line, flush=True)
    if ctx.settings is None:
        raise NothingToResume(f"sweep {folder.name!r}: its {folder.name}/sweep.json holds no "
                              "sweep settings; start it again without --resume")
    return ResumeRequest(place, folder, ctx, ignored)


def sweep_folders(storage: str | os.PathLike[str] | StoragePath,
                  space: str | None = None) -> list[StoragePath]:
    """Sweeps under ``storage`` (optionally of one space), oldest first."""
    import pyarrow.fs as pafs

    storage = StoragePath.parse(storage)
    found = []
    for child in storage.children():
        if child.type != pafs.FileType.Directory:
            continue
        folder = storage / child.base_name
        record = (folder / SWEEP_FILE).info()
        if record.type != pafs.FileType.File:
            continue
        if space is None or space_of(folder, space) == space:
            # Some stores give no modification time: those sort first.
            stamp = record.mtime.timestamp() if record.mtime else 0.0
            found.append((stamp, folder))
    return [folder for _, folder in sorted(found, key=lambda pair: pair[0])]


def space_of(folder: StoragePath, wanted: str) -> str:
    """The space of the sweep in ``folder``, from ``sweep.json`` or the copy in Tune's Tuner
    (``tuner.spec.state``); ``wanted`` when neither can be read: a torn sweep is not passed
    over for an older one, its resume names the torn file."""
    from tuner.spec import state

    try:
        return state.load_context(folder)[0].target.space
    except state.CorruptState:
        return wanted


def has_tune_state(folder: str | os.PathLike[str] | StoragePath) -> bool:
    """Tune wrote its experiment state: ``tuner.pkl`` alone is not restorable."""
    return any(fnmatch.fnmatchcase(child.base_name, TUNE_STATE)
               for child in StoragePath.parse(folder).children())


def find_sweep(storage: str | os.PathLike[str] | StoragePath, name: str | None,
               space: str | None) -> StoragePath:
    """The folder of sweep ``name``, or the latest sweep (of ``space``) under ``storage``."""
    storage = StoragePath.parse(storage)
    if name:
        folder = storage / name
        if not (folder / SWEEP_FILE).is_file():
            raise NothingToResume(f"no sweep {name!r} under {storage} (no {SWEEP_FILE})")
    else:
        candidates = sweep_folders(storage, space)
        if not candidates:
            what = f"of space {space!r} " if space else ""
            raise NothingToResume(f"no sweep {what}under {storage} to resume")
        folder = candidates[-1]
    if not has_tune_state(folder):
        raise NothingToResume(
            f"sweep {folder.name!r} stopped before Ray Tune saved any state "
            "(no experiment_state-*.json): start it again without --resume")
    return folder
