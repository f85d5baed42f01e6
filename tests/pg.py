"""The ``postgres`` fixture: a throwaway PostgreSQL cluster (``tuner.devdb``) per test module.

Import it where needed, under another name so the test's argument does not shadow it:
``from pg import postgres_cluster  # noqa: F401``; tests then ask for ``postgres``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from devdb import LocalPostgres

_names = itertools.count()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def fresh_database(pg: LocalPostgres, prefix: str = "db") -> str:
    """A new, empty database on ``pg``; its URI (password included)."""
    return pg.create_database(f"{prefix}_{os.getpid()}_{next(_names)}")


@pytest.fixture(scope="module", name="postgres")
def postgres_cluster() -> Iterator[LocalPostgres]:
    """A running cluster with a password; stopped and deleted after the module, and checked to
    leave no server process behind."""
    pg = LocalPostgres(databases=())
    pg.start()
    pid = pg.server_pid()
    try:
        yield pg
    finally:
        pg.stop()
    assert pid is not None and not pid_alive(pid), f"PostgreSQL server {pid} outlived its test"


def files_holding(secret: str, *roots: Path) -> list[str]:
    """Every file under ``roots`` whose raw bytes hold ``secret`` (pickles, databases and
    logs included), as paths; ``[]`` when none does."""
    needle = secret.encode()
    return [str(path) for root in roots for path in sorted(Path(root).rglob("*"))
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes()]
