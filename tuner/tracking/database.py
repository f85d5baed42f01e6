"""Checking a tracking/study database before anything is started on it.

``mlflow server`` and Optuna retry an unreachable database for minutes and then fail with a long
traceback that may carry the URI. ``check_reachable`` connects once, with a short timeout, and
turns a failure into one line that names the (redacted) URI, the reason and the fix.
``check_store`` does the same for a sweep's ``--mlflow-uri`` / ``--optuna-storage``; for an
MLflow server it asks one question that needs the server's own database, since a server whose
database is down still answers ``/health``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from fer_core.cli import UserError
from tuner.tracking.redact import redact

CONNECT_TIMEOUT_S = 5
SERVER_QUERY_TIMEOUT_S = 15.0  # a busy server answers a lookup by name well within this
SERVER_SCHEMES = ("postgresql", "mysql", "mssql")  # network databases; sqlite is a local file
DRIVER_HINT = {
    "postgresql": 'pip install -e ".[team]" (psycopg / psycopg2)',
    "mysql": "pip install pymysql (and use mysql+pymysql://)",
    "mssql": "pip install pyodbc",
}


class DatabaseUnreachable(UserError):
    """The database cannot be used; the message says which one and what to do."""


def scheme(uri: str) -> str:
    """``postgresql`` for ``postgresql+psycopg2://...``; '' for a URI without a scheme."""
    return uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


def is_server_database(uri: str) -> bool:
    return scheme(uri) in SERVER_SCHEMES


def check_reachable(uri: str, timeout_s: int = CONNECT_TIMEOUT_S, flag: str = "") -> None:
    """Connect to a network database once (``timeout_s``); ``DatabaseUnreachable`` if that
    fails. Other URIs (sqlite files, http servers) are left to their own checks."""
    if not is_server_database(uri):
        return
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = f"{flag} {redact(uri)}".strip()
    kind = scheme(uri)
    args = {"connect_timeout": timeout_s} if kind in ("postgresql", "mysql") else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=args, poolclass=sqlalchemy.NullPool)
    except (ArgumentError, NoSuchModuleError) as err:
        raise DatabaseUnreachable(f"{shown}: not a usable database URI ({first_line(err)})"
                                  ) from None
    except ImportError as err:
        raise DatabaseUnreachable(f"{shown}: the database driver is missing ({err.name}); "
                                  f"install it: {DRIVER_HINT[kind]}") from None
    try:
        with engine.connect():
            pass
    except ImportError as err:
        raise DatabaseUnreachable(f"{shown}: the database driver is missing ({err.name}); "
                                  f"install it: {DRIVER_HINT[kind]}") from None
    except SQLAlchemyError as err:
        reason = first_line(getattr(err, "orig", None) or err)
        raise DatabaseUnreachable(
            f"{shown}: cannot reach the database: {reason}; start the database server, or fix "
            "the host, port, user, password or database name in the URI") from None
    finally:
        engine.dispose()


def first_line(err: BaseException) -> str:
    """The gist of a driver error, with any credentials in it redacted."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return redact(lines[0]) if lines else type(err).__name__


def check_tracking_server(url: str, flag: str = "--mlflow-uri",
                          timeout_s: float = SERVER_QUERY_TIMEOUT_S) -> None:
    """An MLflow server that answers but cannot read its database is an error now (its
    clients would retry for minutes). An unreachable server is left to the caller's check."""
    query = urllib.parse.urlencode({"experiment_name": "Default"})
    request = f"{url.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name?{query}"
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as err:
        if err.code < 500:
            return  # e.g. 404: the database answered that there is no such experiment
        try:
            detail = json.loads(err.read() or b"{}").get("message", "")
        except ValueError:
            detail = ""
        reason = first_line(Exception(detail)) if detail else f"HTTP {err.code}"
        raise DatabaseUnreachable(
            f"{flag} {redact(url)}: the MLflow server answers but cannot use its database "
            f"({reason[:300]}); check that the database of its --backend-store-uri is up and "
            "reachable from the server, then start the sweep again") from None
    except TimeoutError:
        raise DatabaseUnreachable(
            f"{flag} {redact(url)}: the MLflow server accepts connections but did not answer a "
            f"query within {timeout_s:g} s (its database down or unreachable?); check the "
            "server's log and its --backend-store-uri database, then start again") from None
    except OSError as err:
        if isinstance(getattr(err, "reason", None), TimeoutError):  # urllib wraps it
            raise DatabaseUnreachable(
                f"{flag} {redact(url)}: the MLflow server accepts connections but did not "
                f"answer a query within {timeout_s:g} s (its database down or unreachable?); "
                "check the server's log and its --backend-store-uri database") from None
        return  # not listening at all: the caller's connection check reports that


STORE_CHECKS = {
    "http": check_tracking_server, "https": check_tracking_server,
    **{name: lambda uri, flag: check_reachable(uri, flag=flag) for name in SERVER_SCHEMES},
}
"""URI scheme → the check run before a sweep starts (other schemes: none here)."""


def check_store(uri: str | None, flag: str) -> None:
    """Check ``--mlflow-uri`` or ``--optuna-storage`` (see ``STORE_CHECKS``)."""
    if uri and (check := STORE_CHECKS.get(scheme(uri))):
        check(uri, flag)
