"""Which code a sweep ran: the git commit of the checkout (a tag of every run).

Two different uncommitted states never count as the same code version: ``tuner.search.dedup``
reuses a finished run only for the same commit, and the analysis report prints it.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def git_commit(repo: Path = PROJECT_ROOT) -> str:
    """``<sha>`` of the checkout the code runs from; ``<sha>-dirty-<diff hash>`` with local changes.

    The 8 hex digits hash ``git diff HEAD`` (tracked files, staged or not), so two different
    uncommitted states never count as the same code version (``tuner.search.dedup`` relies on it).
    ``unknown`` outside a git checkout or without git.
    """
    try:
        sha = _git(repo, "rev-parse", "HEAD").decode().strip()
        diff = _git(repo, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not diff:
        return sha
    return f"{sha}-dirty-{hashlib.sha256(diff).hexdigest()[:8]}"


def _git(repo: Path, *args: str) -> bytes:
    """stdout of one git command as bytes (a diff may hold any encoding)."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True,
                          timeout=30).stdout
