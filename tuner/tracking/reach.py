"""Whether a tracking store answers now: seconds, not MLflow's minutes of retries.

An MLflow tracking URI that names a server (``http(s)://``, a database) must accept a TCP
connection; a ``sqlite:///`` store's folder must exist. The sweep checks it before it creates
anything, and the analysis before it reads.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from fer_core.cli import UserError

CONNECT_TIMEOUT_S = 5.0
DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mssql": 1433}


class ProbeError(UserError):
    """Something the sweep needs does not answer, or can never hold a trial."""


def tcp_error(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why nothing accepts a TCP connection at ``host:port`` (None when something does)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as err:
        return err.strerror or str(err)


def where(uri: str) -> str:
    """``scheme://host:port`` of a URI, without user, password or query (safe to print)."""
    parts = urlsplit(uri)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def check_mlflow_uri(uri: str | None, flag: str = "--mlflow-uri") -> None:
    """Raise :class:`ProbeError` when the tracking store at ``uri`` cannot be reached now."""
    if not uri:
        return
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        path = Path(uri.split(":///", 1)[-1]) if ":///" in uri else None
        if path is not None and str(path) != ":memory:" and not path.parent.is_dir():
            raise ProbeError(f"{flag} {uri}: folder {path.parent} does not exist; create it or "
                             "point the URI at an existing folder")
        return
    if scheme in ("http", "https") or scheme in DB_PORTS:
        default = {"http": 80, "https": 443, **DB_PORTS}[scheme]
        try:
            port = parts.port or default
        except ValueError:
            raise ProbeError(f"{flag} {where(uri)}: the port is not a number") from None
        if not parts.hostname:
            raise ProbeError(f"{flag} {uri!r}: no host name; e.g. http://127.0.0.1:5000")
        problem = tcp_error(parts.hostname, port)
        if problem:
            hint = ("start one with `python -m tuner.mlflow_server` (or pass "
                    "--mlflow-uri sqlite:///mlflow.db for a local store)")
            raise ProbeError(f"{flag} {where(uri)}: no MLflow server answers at "
                             f"{parts.hostname}:{port} ({problem}); {hint}")
