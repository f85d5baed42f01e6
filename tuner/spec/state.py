"""What ``--resume`` reads, checked before Ray Tune reads it: a torn file ends in one line.

A crash, a kill or a full disk can leave a file of a sweep's folder truncated, empty or
overwritten with something else. Ray Tune would then stop a resume with a traceback from deep
inside its restore (``EOFError`` from ``pickle``), or a trial would fail at every retry. Here
every file a resume reads is read first, and each one that cannot be read either

- is **recovered** from the other copy the sweep keeps of the same facts, with one line
  saying which (``recovered: ...``): the saved spec ``sweep.json`` from the Tuner Ray saved,
  the gate's budget clock and skips from ``sweep_gate.json`` and back, a trial's MLflow journal
  from its readable lines, a trial's unreadable checkpoint by training that trial again from its
  first epoch, the saved price (``estimate.json``) by leaving it out of the summary; or
- ends the resume with one ``error:`` line (:class:`CorruptState`, exit 2) naming the file and
  the way out: Ray Tune's own state (``tuner.pkl``, the experiment state, the search's state)
  has a second copy only in the driver's staging folder on the machine that ran it; without
  one the folder is moved aside and the sweep started again, where the launch gate reuses
  every configuration it finished from MLflow instead of training it twice.

Nothing is ever started afresh silently. Files are read through ``StoragePath`` (a local folder
or a bucket); the per-trial files (checkpoints, journals) are checked on a local or shared
filesystem, where the trials write them.
"""

from __future__ import annotations

import fnmatch
import json
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core.checkpoint import first_line
from fer_core.cli import UserError
from tuner.spec.context import SWEEP_FILE, StoragePath, SweepContext

TUNER_FILE = "tuner.pkl"
GATE_RECORD = "sweep_gate.json"  # tuner.search.gate.GATE_FILE (that module imports Ray)
GATE_STATE = "sweep-gate-state.pkl"  # tuner.search.gate.STATE_FILE
ESTIMATE = "estimate.json"  # tuner.cost.timing.ESTIMATE_FILE
JOURNAL = "mlflow_journal.jsonl"  # tuner.tracking.schema.JOURNAL_FILE
SET_ASIDE = ".unreadable"
"""Suffix of a file set aside because it could not be read (kept for a look, never read)."""


class CorruptState(UserError):
    """A file the resume needs cannot be read and has no second copy; the message names it and
    the way out."""


def _cloudpickle(data: bytes) -> Any:
    import ray.cloudpickle as cloudpickle  # what Tune reads these files with

    return cloudpickle.loads(data)


def _experiment_state(data: bytes) -> Any:
    state = json.loads(data)
    for trial_json, _runtime in state["trial_data"]:  # what Tune's restore walks first
        json.loads(trial_json)
    return state


@dataclass(frozen=True)
class TuneFile:
    """One of Ray Tune's files in the sweep folder: the newest one matching ``pattern``."""

    pattern: str
    what: str
    read: Callable[[bytes], Any]


TUNE_FILES = (
    TuneFile(TUNER_FILE, "Ray Tune's saved Tuner", pickle.loads),
    TuneFile("experiment_state-*.json", "Ray Tune's experiment state: its trials",
             _experiment_state),
    TuneFile("search_gen_state-*.json", "the search's state", _cloudpickle),
    TuneFile("searcher-state-*.pkl", "the searcher's state", _cloudpickle),
)
"""Ray Tune's state: its only second copy is the driver's staging copy (``driver_copy``);
without one an unreadable file ends the resume."""


def why_unreadable(data: bytes, read: Callable[[bytes], Any]) -> str | None:
    """None when ``read(data)`` works, else why not, in a few words."""
    if not data.strip():
        return "empty"
    try:
        read(data)
    except Exception as err:  # noqa: BLE001 - any failure to read means the same here
        return f"truncated or corrupt: {type(err).__name__}: {first_line(err)}"
    return None


def newest(folder: StoragePath, pattern: str) -> StoragePath | None:
    """The file of ``folder`` matching ``pattern`` that Tune reads: the greatest name."""
    names = [c.base_name for c in folder.children() if fnmatch.fnmatchcase(c.base_name, pattern)
             and not c.base_name.startswith(".")]
    return folder / max(names) if names else None


def way_out(folder: StoragePath) -> str:
    return (f"move the folder aside (mv {folder} {folder}{SET_ASIDE}) and start the sweep "
            "again with its first command, without --resume: configurations it finished are "
            "reused from MLflow, not trained again")


def unreadable_error(folder: StoragePath, name: str, what: str, why: str) -> CorruptState:
    return CorruptState(f"{folder}/{name} ({what}) is unreadable ({why}); sweep "
                        f"{folder.name!r} cannot be resumed from it: {way_out(folder)}")


# ---------------------------------------------------------------- the saved spec
def load_context(folder: StoragePath) -> tuple[SweepContext, str | None]:
    """The sweep's saved context and, when ``sweep.json`` could not be read, the line saying it
    was rewritten from the Tuner Ray saved (whose launch gate holds the same context)."""
    path = folder / SWEEP_FILE
    try:
        return SweepContext.load(folder), None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        why = why_unreadable(path.read_bytes(), json.loads) or f"not a sweep spec: {err}"
    tuner = folder / TUNER_FILE
    try:
        context = pickle.loads(tuner.read_bytes())["_tune_config"].search_alg.rules.context
    except Exception:  # noqa: BLE001 - no second copy either: the error below says so
        raise CorruptState(f"{path} (the sweep's saved spec) is unreadable ({why}) and "
                           f"{TUNER_FILE} holds no copy of it; {way_out(folder)}") from None
    context.save(folder)  # credentials redacted, as always
    return context, (f"recovered: {path} was unreadable ({why}); rewritten from {TUNER_FILE} "
                     "(the copy Ray Tune saved when the sweep started)")


# ---------------------------------------------------------------- Tune's state
def ray_temp_roots() -> list[Path]:
    """Where Ray keeps its sessions on this machine: the running one's, ``RAY_TMPDIR``'s and
    the default."""
    import os

    roots = []
    try:
        import ray

        if ray.is_initialized():
            from ray._private.worker import global_worker

            roots.append(Path(global_worker.node.get_temp_dir_path()))
    except Exception:  # noqa: BLE001 - Ray's internals moved: the usual places still count
        pass
    roots += [Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray", Path("/tmp/ray")]
    return list(dict.fromkeys(roots))


def run_stamp(name: str) -> str | None:
    """The start of Tune's run in one of its file names (``experiment_state-<start>.json``)."""
    found = re.search(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", name)
    return found.group(0) if found else None


def driver_copy(folder: StoragePath, name: str, read: Callable[[bytes], Any]) -> Path | None:
    """A whole copy of Tune's file ``name`` in the driver's staging folder.

    Tune writes its experiment state and the search's state on the driver's machine first
    (``<ray temp>/session_*/artifacts/<start>/<sweep>/driver_artifacts``) and copies them to the
    storage; a copy cut by a full disk or a kill leaves the driver's whole. The newest that
    reads is taken; ``<start>`` is the stamp of this run of Tune (in the file's name, else in
    the experiment state's), so only this sweep's copies count.
    """
    start = run_stamp(name) or run_stamp(getattr(newest(folder, TUNE_FILES[1].pattern), "name",
                                                  ""))
    if start is None:
        return None  # without the run's stamp another sweep's copy could be taken
    found = [p for root in ray_temp_roots() for p in root.glob(
        f"session_*/artifacts/{start}/{folder.name}/driver_artifacts/{name}")]
    for path in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
        if why_unreadable(path.read_bytes(), read) is None:
            return path
    return None


def check_tune_files(folder: StoragePath) -> tuple[dict[str, Any], list[str]]:
    """Read each of Tune's files as Tune will: the experiment state, read, and the lines of
    the files copied back from the driver's staging folder."""
    read: dict[str, Any] = {}
    notes = []
    for spec in TUNE_FILES:
        path = newest(folder, spec.pattern)
        if path is None:
            continue  # missing ones are find_sweep's and Tune's business
        data = path.read_bytes()
        why = why_unreadable(data, spec.read)
        if why:
            copy = driver_copy(folder, path.name, spec.read)
            if copy is None:
                raise unreadable_error(folder, path.name, spec.what, why)
            data = copy.read_bytes()
            path.write_bytes(data)
            notes.append(f"recovered: {path} ({spec.what}) was unreadable ({why}); copied "
                         f"back from the driver's whole copy {copy}")
        read[spec.pattern] = data
    state = read.get(TUNE_FILES[1].pattern)
    return (json.loads(state) if state is not None else {}), notes


# ---------------------------------------------------------------- the gate's records
def check_gate(folder: StoragePath, context: SweepContext) -> str | None:
    """The gate's state (budget clock, skips; read by Tune's restore) and its record (read by
    the closing summary) are two copies of one story: a torn one is rebuilt from the other, or
    from the driver's staging copy of the state; with neither, a fresh one says what is lost."""
    from tuner.search.budget import BudgetClock, TrialClock
    from tuner.search.gate import GateRecord

    state_path, record_path = folder / GATE_STATE, folder / GATE_RECORD
    if not state_path.is_file() and not record_path.is_file():
        return None
    state_data = state_path.read_bytes() if state_path.is_file() else None
    record_data = record_path.read_bytes() if record_path.is_file() else None
    state_why = "missing" if state_data is None else why_unreadable(state_data, pickle.loads)
    record_why = "missing" if record_data is None else why_unreadable(
        record_data, lambda d: GateRecord(**json.loads(d)))
    if record_why and not state_why:
        pickle.loads(state_data)["record"].save(record_path)
        return (f"recovered: {record_path} was unreadable ({record_why}); written from "
                f"{GATE_STATE}")
    if not state_why:
        return None
    copy = driver_copy(folder, GATE_STATE, pickle.loads)
    if copy is not None:
        state_path.write_bytes(copy.read_bytes())
        pickle.loads(copy.read_bytes())["record"].save(record_path)
        return (f"recovered: {state_path} (the launch gate's budget clock and skips) was "
                f"unreadable ({state_why}); copied back from the driver's whole copy {copy}")
    if record_why:
        # No copy anywhere: the trials are Tune's and go on; what the gate had counted is lost.
        settings = context.settings
        record = GateRecord(settings.budget.hours, settings.dedup) if settings else GateRecord()
        state_path.write_bytes(pickle.dumps({"clock": BudgetClock(), "finished": False,
                                             "record": record}))
        return (f"recovered: {state_path} (the launch gate's budget clock and skips) was "
                f"unreadable ({state_why}) and so was {GATE_RECORD}; started afresh: trial-hours "
                "spent before this resume do not count against --budget-hours, and the summary "
                "does not list earlier skips")
    record = GateRecord(**json.loads(record_data))
    # The clock of each trial is not in the record, only their sum: it stands as one
    # concluded clock; trials resumed now count again from their next result.
    clock = BudgetClock({"before-resume": TrialClock(record.trial_hours * 3600, live=False)})
    state = {"clock": clock, "record": record, "finished": record.budget_reached}
    state_path.write_bytes(pickle.dumps(state))
    return (f"recovered: {state_path} was unreadable ({state_why}); rebuilt from "
            f"{GATE_RECORD}: {record.trial_hours:.4g} trial-hours used, "
            f"{len(record.skipped)} skip(s)")


def check_estimate(folder: StoragePath) -> str | None:
    """The saved price is read only by the closing summary: a torn one is set aside."""
    path = folder / ESTIMATE
    if not path.is_file():
        return None
    why = why_unreadable(path.read_bytes(), json.loads)
    if why is None:
        return None
    path.move_to(f"{path}{SET_ASIDE}")
    return (f"recovered: {path} (the sweep's predicted price) was unreadable ({why}); set "
            f"aside as {ESTIMATE}{SET_ASIDE}: the closing summary goes without the prediction")


# ---------------------------------------------------------------- each trial's files
@dataclass(frozen=True)
class TrialState:
    """One trial as Tune's experiment state has it."""

    trial_id: str
    status: str
    folder: Path
    checkpoint: Path | None
    """The checkpoint Tune hands the trial when it resumes it (None: it starts afresh)."""


def resumed_checkpoint(runtime: dict[str, Any], folder: Path) -> Path | None:
    """The trial's latest registered checkpoint, from Tune's checkpoint manager (a pickled
    field of the trial's runtime state): a checkpoint folder cut by a full disk before Tune
    registered it is not the one a resume hands over."""
    try:
        manager = runtime["checkpoint_manager"]
        manager = json.loads(manager) if isinstance(manager, str) else manager
        latest = _cloudpickle(bytes.fromhex(manager["value"])).latest_checkpoint_result
    except Exception:  # noqa: BLE001 - Ray's layout moved: take the newest folder instead
        kept = sorted(folder.glob("checkpoint_*"))
        return kept[-1] if kept else None
    if latest is None:
        return None
    return folder / Path(latest.checkpoint.path).name  # the folder may have moved since


def trials(folder: StoragePath, experiment: dict[str, Any]) -> list[TrialState]:
    """Every trial of the experiment state."""
    found = []
    for trial_json, runtime_json in experiment.get("trial_data", []):
        trial = json.loads(trial_json)
        path = Path(str(folder)) / trial["relative_logdir"]
        found.append(TrialState(trial["trial_id"], trial["status"], path,
                                resumed_checkpoint(json.loads(runtime_json), path)))
    return found


def check_checkpoint(trial: TrialState) -> str | None:
    """A trial Tune will resume whose checkpoint cannot be read trains again from its first
    epoch (``tuner.trainable`` does so on ``UnreadableCheckpoint``); finished trials'
    checkpoints are never read again."""
    from fer_core.checkpoint import UnreadableCheckpoint, load

    if trial.status == "TERMINATED" or trial.checkpoint is None:
        return None
    try:
        load(trial.checkpoint)
    except UnreadableCheckpoint as err:
        return (f"recovered: trial {trial.trial_id}: {err}; it trains again from its first "
                "epoch (its run keeps the epochs it logged)")
    return None


def check_journal(trial: TrialState, context: SweepContext) -> str | None:
    """A trial's MLflow journal with lines it cannot read is rewritten from its readable
    ones."""
    from tuner.tracking.journal import Journal

    journal = trial.folder / JOURNAL
    if not journal.is_file():
        return None
    repaired = Journal.repair(journal, context.target, trial.trial_id)
    if repaired is None:
        return None
    if not repaired.kept and not repaired.dropped:
        return (f"recovered: trial {trial.trial_id}: {journal} was empty (cut before its first "
                "line was written); started again with its header")
    lost = f"{repaired.dropped} unreadable line(s)" + (", no header" if repaired.header_lost
                                                         else "")
    return (f"recovered: trial {trial.trial_id}: {journal} was torn ({lost}); rewritten "
            f"with its {repaired.kept} readable line(s) (an operation on a lost line that "
            "MLflow had not received is lost)")


def check(folder: StoragePath, context: SweepContext) -> list[str]:
    """Check every file the resume of the sweep in ``folder`` reads; the lines of what was
    recovered. Raises :class:`CorruptState` for a file that cannot be recovered."""
    experiment, copied = check_tune_files(folder)
    notes = [*copied, check_gate(folder, context), check_estimate(folder)]
    if not folder.is_uri:
        for trial in trials(folder, experiment):
            notes += [check_checkpoint(trial), check_journal(trial, context)]
    return [note for note in notes if note]
