"""One trial of a finished sweep as its MLflow child run recorded it: what the summary and the
claim read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fer_core import metric_names as mn
from tuner.tracking import schema as tr

if TYPE_CHECKING:  # a type only: reading the summary's rows needs no MLflow import
    from mlflow.entities import Run


@dataclass(frozen=True)
class TrialRow:
    """One child run, flattened for the summary."""

    name: str
    arm: str
    status: str
    early_stopped: bool
    params: dict[str, str]
    metrics: dict[str, float]
    reused_from: str = ""
    """The earlier run this sweep reused instead of running a duplicate (``tuner.search.dedup``)."""

    @classmethod
    def from_run(cls, run: Run, reused: bool = False) -> TrialRow:
        """A child run of the sweep, or (``reused``) an earlier run standing in for a skip."""
        tags = run.data.tags
        name = tags.get(tr.TAG_TRIAL_NAME, run.info.run_name or run.info.run_id)
        return cls(
            name=f"{name} [done in run {run.info.run_id}]" if reused else name,
            arm=tags.get(tr.TAG_ARM, "?"), status=run.info.status,
            early_stopped=tags.get(tr.TAG_EARLY_STOPPED) == "true",
            params=dict(run.data.params), metrics=dict(run.data.metrics),
            reused_from=run.info.run_id if reused else "",
        )

    @property
    def complete(self) -> bool:
        """Ran to the end: it has test metrics."""
        return tr.finite(self.metrics.get(mn.TEST_CL))
