"""Checking a tracking/study database before anything is started on it.

``mlflow server`` and Optuna retry an unreachable database for minutes and then fail with a long
traceback that may carry the URI. ``check_reachable`` connects once, with a short timeout, and
turns a failure into one line that names the (redacted) URI, the reason and the fix.
"""

from __future__ import annotations

from tuner.tracking.redact import redact

CONNECT_TIMEOUT_S = 5
SERVER_SCHEMES = ("postgresql", "mysql", "mssql")  # network databases; sqlite is a local file
DRIVER_HINT = {
    "postgresql": 'pip install -e ".[team]" (psycopg / psycopg2)',
    "mysql": "pip install pymysql (and use mysql+pymysql://)",
    "mssql": "pip install pyodbc",
}


class DatabaseUnreachable(RuntimeError):
    """The database cannot be used; the message says which one and what to do."""


def scheme(uri: str) -> str:
    """``postgresql`` for ``postgresql+psycopg2://...``; '' for a URI without a scheme."""
    return uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


def is_server_database(uri: str) -> bool:
    return scheme(uri) in SERVER_SCHEMES


def check_reachable(uri: str, timeout_s: int = CONNECT_TIMEOUT_S) -> None:
    """Connect to a network database once (``timeout_s``); ``DatabaseUnreachable`` if that
    fails. Other URIs (sqlite files, http servers) are left to their own checks."""
    if not is_server_database(uri):
        return
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = redact(uri)
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
            f"cannot reach the database {shown}: {reason}; start the database server, or fix "
            "the host, port, user, password or database name in the URI") from None
    finally:
        engine.dispose()


def first_line(err: BaseException) -> str:
    """The gist of a driver error, with any credentials in it redacted."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return redact(lines[0]) if lines else type(err).__name__
