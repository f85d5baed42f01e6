"""Finding a sweep to resume and checking that Tune can restore it."""

from __future__ import annotations

from pathlib import Path

from tuner.context import SWEEP_FILE, SweepContext


class NothingToResume(ValueError):
    """The named/latest sweep cannot be restored; the message says what to do."""


def sweep_folders(storage: Path, space: str | None = None) -> list[Path]:
    """Sweeps under ``storage`` (optionally of one space), oldest first."""
    found = []
    for path in storage.glob(f"*/{SWEEP_FILE}"):
        if space is None or SweepContext.load(path.parent).target.space == space:
            found.append(path.parent)
    return sorted(found, key=lambda p: (p / SWEEP_FILE).stat().st_mtime)


def has_tune_state(folder: Path) -> bool:
    """Tune wrote its experiment state: ``tuner.pkl`` alone is not restorable."""
    return any(folder.glob("experiment_state-*.json"))


def find_sweep(storage: Path, name: str | None, space: str | None) -> Path:
    """The folder of sweep ``name``, or the latest sweep (of ``space``) under ``storage``."""
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
