"""The Optuna study's database storage, pickled without its password.

Ray Tune pickles the searcher into the sweep's folder (``tuner.pkl`` and the searcher's state at
every checkpoint), and with it Optuna's ``RDBStorage``, whose pickle keeps the database URL as
given. ``StudyStorage`` pickles the URL as ``tuner.tracking.passwords.at_rest`` gives it and,
once loaded, connects with the whole URL if this process was given it, else with the stored one
(PostgreSQL then reads the password from ``PGPASSWORD`` or ``~/.pgpass``).
"""

from __future__ import annotations

from typing import Any

from optuna.storages import RDBStorage

from tuner.tracking import passwords


class StudyStorage(RDBStorage):
    """An ``RDBStorage`` whose pickle holds no password."""

    def __getstate__(self) -> dict[Any, Any]:
        return {**super().__getstate__(), "url": passwords.at_rest(self.url)}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__({**state, "url": passwords.whole(state["url"])})
