"""Passwords of database URIs are kept in memory, never in what a sweep writes to disk.

A sweep may be given a URI with its password (``--optuna-storage postgresql://fer:pw@db/optuna``).
Its connections use that URI whole, but the objects Ray Tune pickles into the sweep's folder (the
searcher with its Optuna storage, the launch gate, the driver's callbacks) hold it as ``at_rest``
gives it: ``postgresql://fer@db/optuna``. Loading such a pickle in a process that was given the
whole URI (the sweep itself, or its ``--resume`` given the URI again) gets the whole URI back from
here; any other process uses the stored URI as it is, and the database driver takes the password
where it looks without one in the URI (PostgreSQL: ``PGPASSWORD``, then ``~/.pgpass``).
"""

from __future__ import annotations

import re

from tuner.tracking.redact import redact

DATABASE_SCHEMES = ("postgresql", "mysql", "mssql", "oracle")
"""Schemes whose URI's user name is an account, not a secret: it stays in the stored URI so the
driver can find the password for that user (``~/.pgpass`` lines are per host, database, user)."""
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/?#\s@]*):"
                       r"(?P<password>[^/?#\s]*)@")
_QUERY_PASSWORD = re.compile(r"(?P<lead>[?&;])password=[^&;#\s]*(?P<tail>[&;]?)", re.I)

_whole: dict[str, str] = {}
"""at_rest(uri) → uri, for the URIs this process was given (it forgets nothing: a sweep holds a
handful)."""


def scheme(uri: str) -> str:
    """``postgresql`` for ``postgresql+psycopg2://...``; '' for text without a scheme."""
    return uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


def without_password(uri: str) -> str:
    """``postgresql://fer@db/x`` for ``postgresql://fer:pw@db/x`` (also ``?password=``);
    a password holding a raw ``@`` goes up to the host's ``@``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}@", uri)

    def drop(m: re.Match[str]) -> str:
        return m["lead"] if m["tail"] else ""

    return _QUERY_PASSWORD.sub(drop, text)


def at_rest(uri: str) -> str:
    """The form of ``uri`` that may be written to disk, remembered in this process so that
    ``whole`` gives ``uri`` back: a database URI without its password (user kept), any other
    URI with its credentials redacted (a token may be the user name of an https URL)."""
    stored = without_password(uri) if scheme(uri) in DATABASE_SCHEMES else redact(uri)
    if stored != uri:
        _whole[stored] = uri
    return stored


def remember(*uris: str | None) -> None:
    """Note these whole URIs (``--resume`` does, before Tune loads the sweep's pickles)."""
    for uri in uris:
        if uri:
            at_rest(uri)


def whole(stored: str) -> str:
    """The whole URI this process was given for ``stored``, else ``stored`` itself."""
    return _whole.get(stored, stored)
