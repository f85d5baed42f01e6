"""How far a study is, counted in MLflow: per part, configurations done × seeds and hours.

A trial counts as done when a trial run of the study's experiment has its ``config.hash``, is
reusable (FINISHED, not stopped early, with test metrics: ``tuner.search.dedup.is_reusable``)
and was made by this code version: exactly what lets a sweep skip it. Hours are the runs' recorded
durations × the devices a trial holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run

from tuner.study.parts import Job


@dataclass(frozen=True)
class PartProgress:
    """One job's state: configurations with every seed done, and device-hours spent/expected."""

    label: str
    configurations: int
    configurations_done: int
    seeds: int
    trials: int
    trials_done: int
    hours_done: float
    hours_expected: float | None
    """Extrapolated from the trials done (None before any)."""

    @property
    def complete(self) -> bool:
        return self.trials_done >= self.trials

    def line(self) -> str:
        total = "?" if self.hours_expected is None else (
            f"{self.hours_expected:.2f}" if self.complete else f"~{self.hours_expected:.2f}")
        return (f"{self.label}: {self.configurations_done}/{self.configurations} configurations "
                f"× {self.seeds} seeds, {self.hours_done:.2f} of {total} device-hours")


def run_hours(run: Run) -> float:
    info = run.info
    return (info.end_time - info.start_time) / 3.6e6 if info.end_time and info.start_time else 0.0


def done_trials(client: MlflowClient, experiment_id: str, commit: str) -> dict[str, Run]:
    """``config hash → run`` of the experiment's reusable trial runs made by ``commit``."""
    from tuner.search.dedup import is_reusable, run_config_hash
    from tuner.tracking import client as runs
    from tuner.tracking import schema as tr

    where = tr.tag_filter({tr.TAG_ROLE: tr.ROLE_TRIAL, tr.TAG_GIT_COMMIT: commit})
    found: dict[str, Run] = {}
    for run in runs.iter_runs(client, experiment_id,
                              f"{where} and attributes.status = '{tr.FINISHED}'"):
        key = run_config_hash(run)
        if key and is_reusable(run):
            found.setdefault(key, run)
    return found


def part_progress(job: Job, done: Mapping[str, Run], seeds: int,
                  devices_per_trial: float) -> PartProgress:
    ran = [done[t.key] for t in job.trials if t.key in done]
    hours = sum(run_hours(r) for r in ran) * devices_per_trial
    by_config: dict[str, int] = {}
    for t in job.trials:
        if t.key in done:
            point = {k: v for k, v in t.config.items() if k != "seed"}
            label = repr(sorted(point.items()))
            by_config[label] = by_config.get(label, 0) + 1
    expected = hours * len(job.trials) / len(ran) if ran else None
    return PartProgress(job.label, job.configurations,
                        sum(1 for n in by_config.values() if n >= seeds), seeds,
                        len(job.trials), len(ran), hours, expected)


def study_lines(jobs: Sequence[Job], done: Mapping[str, Run], seeds: int,
                devices_per_trial: float) -> list[PartProgress]:
    return [part_progress(j, done, seeds, devices_per_trial) for j in jobs]


def spent_hours(runs: Iterable[Run]) -> float:
    """Trial-hours of runs (any status): what a budget counts."""
    return sum(run_hours(r) for r in runs)
