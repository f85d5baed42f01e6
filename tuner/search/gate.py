"""The driver-side gate every trial of a sweep passes before Ray launches it.

``SweepGate`` wraps the sweep's search algorithm (Optuna behind ``SweepSearcher``, or Tune's grid
generator) and decides, for each trial the search proposes:

- **already done** (``tuner.search.dedup``): not launched. The earlier run's final metrics go back
  to the search as this trial's result, so Optuna learns from it as if it had run, and the summary
  lists it as ``skipped: already done in run <id>``. ``--rerun`` turns this off.
- **over budget** (``tuner.search.budget``): once the sweep's summed trial time reaches
  ``--budget-hours`` the search ends (Tune sees it finished): no new trial starts, running ones
  finish normally, and what was not launched is written down.
- otherwise launched, at most ``max_concurrent`` at a time.

Why a search-algorithm wrapper rather than a Tune callback or the trainable: only the search
algorithm decides what gets launched, so a duplicate never costs a worker, a Ray actor or an
MLflow run, and telling the search the stored result keeps Optuna's study complete. Its state
is saved and restored with Tune's experiment state, so ``--resume`` keeps the clock and the skips.
What it did is also written to ``<sweep folder>/sweep_gate.json`` for the end-of-sweep report.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ray.tune.search import BasicVariantGenerator, SearchAlgorithm, Searcher, SearchGenerator

from fer_core import atomic
from search_spaces.params import with_derived
from tuner.checks.space import NO_SPACE
from tuner.search.budget import SECONDS_PER_HOUR, Budget, BudgetClock
from tuner.search.dedup import DoneRun, config_hash, done_runs
from tuner.spec.context import StoragePath, SweepContext
from tuner.tracking import schema as tr

GATE_FILE = "sweep_gate.json"
STATE_FILE = "sweep-gate-state.pkl"


@dataclass(frozen=True)
class GateRules:
    """What the gate enforces; picklable (saved in Tune's ``tuner.pkl``)."""

    context: SweepContext
    budget: Budget = field(default_factory=Budget)
    max_concurrent: int = 1
    dedup: bool = True
    record_path: str | None = None
    """Where ``sweep_gate.json`` goes: a local path or a URI (``tuner.spec.context.StoragePath``).
    """
    derived: Mapping[str, Any] = field(default_factory=dict)
    """The space's derived fields (``search_spaces.params.derived_fields``): the
    gate sees them as placeholders and computes them itself."""

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into the sweep's folder with the Tuner: no password there.
        return {**self.__dict__, "context": self.context.at_rest()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, context=state["context"].whole())


@dataclass
class GateRecord:
    """What the gate did: read back by the report, saved with Tune's state for ``--resume``."""

    budget_hours: float | None = None
    dedup: bool = True
    launched: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """One entry per trial not launched because it was done: trial_id, config, run_id, ..."""
    budget_reached: bool = False
    reached_at_hours: float | None = None
    not_launched: int = 0
    not_launched_configs: list[dict[str, Any]] = field(default_factory=list)
    """Known configurations left when the budget ended the search (grids list them all)."""
    trial_hours: float = 0.0

    def save(self, path: str | StoragePath) -> None:
        """Write the record to ``path``, in the sweep folder (a local folder or a URI)."""
        # Written whole (rename locally, one object in a bucket): the report never reads half.
        StoragePath.parse(path).write_text(json.dumps(asdict(self), indent=1, default=str))

    @classmethod
    def load(cls, folder: str | os.PathLike[str] | StoragePath) -> GateRecord | None:
        """The record in ``folder``, or None (a sweep started before the gate existed)."""
        path = StoragePath.parse(folder) / GATE_FILE
        return cls(**json.loads(path.read_text())) if path.is_file() else None

    def notes(self) -> list[str]:
        """Lines for the end-of-sweep summary: each skip, then the time spent and the budget."""
        lines = [f"- skipped: already done in run {s['run_id']} (sweep {s['sweep']}, trial "
                 f"{s['trial_name']}): {format_config(s['config'])}" for s in self.skipped]
        spent = f"{self.trial_hours:.4g} trial-hours used"
        if self.budget_hours is None:
            return [*lines, f"{spent} (no --budget-hours)."]
        if not self.budget_reached:
            return [*lines, f"{spent} of the {self.budget_hours:g} budgeted (not reached)."]
        unknown = self.not_launched - len(self.not_launched_configs)
        return [
            *lines,
            f"budget reached: --budget-hours {self.budget_hours:g} was spent at "
            f"{self.reached_at_hours:.4g} trial-hours; {spent} in all (running trials finished); "
            f"{self.not_launched} planned trial(s) not launched:",
            *(f"- not launched: {format_config(c)}" for c in self.not_launched_configs),
            *([f"- not launched: {unknown} more the searcher had not proposed yet"]
              if unknown > 0 else []),
        ]

    def metrics(self) -> dict[str, float]:
        """The parent run's ``tr.GATE_METRICS``."""
        return dict(zip(tr.GATE_METRICS, (len(self.skipped), self.not_launched, self.trial_hours,
                                         float(self.budget_reached)), strict=True))


class SweepGate(SearchAlgorithm):
    """Dedup + budget + concurrency in front of a search algorithm (see the module docstring)."""

    def __init__(self, inner: SearchAlgorithm | Searcher, rules: GateRules) -> None:
        self.inner = SearchGenerator(inner) if isinstance(inner, Searcher) else inner
        self.rules = rules
        self.clock = BudgetClock()
        self.record = GateRecord(budget_hours=rules.budget.hours, dedup=rules.dedup)
        self._finished = False
        self._done: dict[str, DoneRun] | None = None  # looked up once per driver session
        self._waiting: dict[str, Any] = {}  # launched Tune trials not seen running yet

    # ------------------------------------------------------------ Tune's interface, delegated
    @property
    def metric(self) -> Any:
        return self.inner.metric

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    @property
    def total_samples(self) -> int:
        return self.inner.total_samples

    def add_configurations(self, experiments: Any) -> None:
        self.inner.add_configurations(experiments)

    def is_finished(self) -> bool:
        return self._finished or self.inner.is_finished()

    def set_finished(self) -> None:
        self._finished = True
        self.inner.set_finished()

    # ------------------------------------------------------------ the gate
    def next_trial(self) -> Any:
        """The next trial to launch, or None (nothing now, or the search is over)."""
        if self.is_finished():
            return None
        now = time.time()
        self._note_starts()
        if self.rules.budget.reached(self.clock.used_seconds(now)):
            self._stop_for_budget(now)
            return None
        if self.clock.live() >= self.rules.max_concurrent:
            return None
        while True:  # skip every duplicate the search proposes in a row
            trial = self.inner.next_trial()
            if trial is None:
                self._save_record()
                return None
            done = self._already_done(self._config(trial))
            if done is None:
                self.clock.launched(trial.trial_id)
                self._waiting[trial.trial_id] = trial
                self.record.launched += 1
                return trial
            self._skip(trial, done)

    def _note_starts(self) -> None:
        """Launched trials count from when Tune started them, not while they wait for a worker
        (Tune stamps ``run_metadata.start_time`` on the Trial it got from this gate)."""
        for trial_id, trial in list(self._waiting.items()):
            started = getattr(getattr(trial, "run_metadata", None), "start_time", None)
            if started is not None:
                self.clock.started(trial_id, started)
                del self._waiting[trial_id]

    def _config(self, trial: Any) -> dict[str, Any]:
        """The trial's sampled config with its derived fields computed (no placeholders)."""
        return with_derived(trial.config, self.rules.derived)

    def _already_done(self, config: Mapping[str, Any]) -> DoneRun | None:
        if not self.rules.dedup:
            return None
        if self._done is None:
            self._done = done_runs(self.rules.context)
        return self._done.get(config_hash(self.rules.context.trial_config(config)))

    def _skip(self, trial: Any, done: DoneRun) -> None:
        """Tell the search the stored result, as if the trial had run to the end."""
        result = {**done.metrics, tr.KEY_IS_FINAL: 1.0}
        self.inner.on_trial_complete(trial.trial_id, result=result, error=False)
        config = self._config(trial)
        self.record.skipped.append({"trial_id": trial.trial_id, "config": config,
                                    "run_id": done.run_id, "sweep": done.sweep,
                                    "trial_name": done.trial_name})
        print(f"skipped: already done in run {done.run_id} ({done.sweep}/{done.trial_name}): "
              f"{format_config(config)}", flush=True)
        self._save_record()

    def _stop_for_budget(self, now: float) -> None:
        used_h = self.clock.used_seconds(now) / SECONDS_PER_HOUR
        self.record.not_launched_configs = self._known_left()
        produced = self.record.launched + len(self.record.skipped)
        self.record.not_launched = max(len(self.record.not_launched_configs),
                                       self.total_samples - produced)
        self.set_finished()
        if not self.record.not_launched:  # the search had nothing left: the budget stopped nothing
            self._save_record(now)
            return
        self.record.budget_reached = True
        self.record.reached_at_hours = used_h
        print(f"budget reached: {used_h:.4g} of {self.rules.budget.hours:g} trial-hours used; "
              f"{self.record.not_launched} planned trial(s) not launched, "
              f"{self.clock.live()} running trial(s) finish", flush=True)
        self._save_record(now)

    def _known_left(self) -> list[dict[str, Any]]:
        """Configurations the search would still have proposed, as far as they are known.

        A grid is drained (its order is fixed, nothing is asked of a model); a searcher only
        knows its queued points (reference points, the remaining seeds of a configuration):
        asking Optuna for more would open study trials that never end.
        """
        if isinstance(self.inner, BasicVariantGenerator):
            left = []
            while (trial := self.inner.next_trial()) is not None:
                left.append(self._config(trial))
            return left
        known = getattr(getattr(self.inner, "searcher", None), "known_unlaunched", None)
        return known() if callable(known) else []

    # ------------------------------------------------------------ trial events
    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._waiting.pop(trial_id, None)
        self.clock.reported(trial_id, result, time.time())
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        self._waiting.pop(trial_id, None)
        self.clock.concluded(trial_id, result, time.time())
        self.inner.on_trial_complete(trial_id, result=result, error=error)
        self._save_record()

    # ------------------------------------------------------------ record, save, restore
    def _save_record(self, now: float | None = None) -> None:
        self._note_starts()
        self.record.trial_hours = self.clock.used_seconds(now or time.time()) / SECONDS_PER_HOUR
        if not self.rules.record_path:
            return
        try:
            self.record.save(self.rules.record_path)
        except OSError as err:
            if err.errno not in NO_SPACE:
                raise
            # A full storage: the trials fail on it too and the sweep ends saying so; the last
            # whole record stays (atomic write), the state Tune saves keeps the rest.
            if not getattr(self, "_record_stuck", False):  # once, not at every trial event
                print(f"warning: {self.rules.record_path} not updated: {err.strerror}",
                      flush=True)
            self._record_stuck = True
            return
        self._record_stuck = False

    # Tune hands these the driver's local staging folder and syncs it with the storage itself
    # (a bucket included), so the state pickle is plain local file I/O.
    def has_checkpoint(self, dirpath: str) -> bool:
        return self.inner.has_checkpoint(dirpath) or (Path(dirpath) / STATE_FILE).is_file()

    def save_to_dir(self, dirpath: str, **kwargs: Any) -> None:
        self.inner.save_to_dir(dirpath, **kwargs)
        state = {"clock": self.clock, "record": self.record, "finished": self._finished}
        atomic.write_bytes(Path(dirpath) / STATE_FILE, pickle.dumps(state))

    def restore_from_dir(self, dirpath: str) -> None:
        if self.inner.has_checkpoint(dirpath):
            self.inner.restore_from_dir(dirpath)
        path = Path(dirpath) / STATE_FILE
        if path.is_file():
            state = pickle.loads(path.read_bytes())
            self.clock, self.record = state["clock"], state["record"]
            self._finished = state["finished"]
        self.clock.resumed(time.time())

    def __getstate__(self) -> dict[str, Any]:
        # Neither a stale lookup nor live Trial objects travel in tuner.pkl.
        return {**self.__dict__, "_done": None, "_waiting": {}}


def format_config(config: Mapping[str, Any]) -> str:
    """``lambda_au=4.0, layers=5, seed=0``: a trial's searched values, for people."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(config.items()))
