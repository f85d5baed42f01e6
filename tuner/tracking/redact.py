"""Credential redaction: what the project writes to MLflow or prints carries no secret.

The functions here only transform text; ``tuner.tracking.client.outgoing`` is the one place
that applies them to params and tags bound for MLflow (and for the trial journal, a queued copy
of those writes). Messages that print a URI or a path use ``redact`` directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"
SECRET_WORDS = frozenset({
    "password", "passwd", "pwd", "pass", "secret", "token", "key", "apikey", "credential",
    "credentials", "auth", "authorization", "cookie", "signature", "sig", "private",
})
"""Name components that mark a value as a secret: ``db_password``, ``MLFLOW_TRACKING_TOKEN``,
``aws.secret_access_key``, ``apiKey``. Matched per component, so ``monkey`` or ``keyframe`` are
not secrets, while every ``*_key`` is (no config field is named so)."""
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]+)@")
_QUERY_SECRET = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#\s]+)=(?P<value>[^&;#\s]*)")
_NAME_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_name(name: str) -> bool:
    """Whether a param/tag/query key names a secret (see ``SECRET_WORDS``)."""
    parts = [p.lower() for p in _NAME_PARTS.findall(name)]
    return any(p in SECRET_WORDS for p in parts) or "apikey" in "".join(parts)


def redact(text: str) -> str:
    """``text`` with credentials in URLs replaced by ``***``.

    ``postgresql://user:pw@host/db`` → ``postgresql://***@host/db`` (user names can be
    secrets too, e.g. a token as the user of an https URL); query values of secret-looking
    keys (``?password=...``, ``&X-Amz-Signature=...``) become ``***``. Idempotent.
    """
    # Greedy userinfo: a password holding a raw "@" is still redacted up to the host.
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)

    def query(m: re.Match[str]) -> str:
        if not is_secret_name(m["name"]):
            return m.group(0)
        return f"{m['lead']}{m['name']}={REDACTED}"

    return _QUERY_SECRET.sub(query, text)


def redact_mapping(values: Mapping[str, Any]) -> dict[str, str]:
    """Params or tags ready to log: secret-named keys get ``***``, other values ``redact``ed."""
    out: dict[str, str] = {}
    for key, value in values.items():
        text = str(value)
        out[key] = REDACTED if is_secret_name(key) and text not in ("", "None") else redact(text)
    return out
