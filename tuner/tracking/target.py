"""Where a sweep's runs live: the address every trial and the closing summary write to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuner.tracking.redact import redact

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class TrackingTarget:
    """Where a sweep's runs live; picklable, handed to every trial."""

    uri: str
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
