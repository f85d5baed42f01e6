"""Whole-or-nothing file writes: what a resume reads is never half written.

A crash, a kill or a full disk in the middle of a plain ``open(path, "w")`` leaves a truncated
file where the last good one was. Every file a later run depends on (checkpoints, the sweep's
saved spec, the gate's records, a study's state, cached data) is written under a temporary name
in the same folder, flushed to the disk, then renamed over the target: ``os.replace`` is atomic
within one filesystem, so a reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"
"""Temporary names end with it (``.<name>.<random>.tmp``): a crash may leave one behind, never
under the target's name."""


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; once the block has written it, it replaces
    ``path``. If the block raises (a full disk included), ``path`` is left as it was and the
    temporary file is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # Flushed before the rename: after a power loss the name never points at empty blocks.
        with tmp.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all; returns ``path``."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"))
