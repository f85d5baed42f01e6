"""Where a sweep's runs live: the address every trial and the closing summary write to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tuner.tracking import passwords
from tuner.tracking.redact import redact

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class TrackingTarget:
    """Where a sweep's runs live; picklable, handed to every trial."""

    uri: str = field(repr=False)  # a trial's error report may print the target
    experiment_id: str
    parent_run_id: str
    sweep_name: str
    space: str

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def public(self) -> TrackingTarget:
        """This target with the URI's credentials redacted (what a journal may store)."""
        return dataclasses.replace(self, uri=redact(self.uri))

    def at_rest(self) -> TrackingTarget:
        """This target as it may be pickled to disk (``tuner.tracking.passwords``)."""
        return dataclasses.replace(self, uri=passwords.at_rest(self.uri))

    def whole(self) -> TrackingTarget:
        """A target loaded from disk with the URI this process was given for it."""
        return dataclasses.replace(self, uri=passwords.whole(self.uri))
