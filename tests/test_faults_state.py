"""A resume over state that a crash, a kill or a full disk left torn (``tuner.spec.state``).

Each file a ``--resume`` reads is cut in half, emptied or overwritten with other bytes, in turn,
in a copy of a finished smoke sweep's folder. Each gives exactly one outcome: a recovery from
the sweep's other copy, said in one ``recovered:`` line, or one ``error:`` line naming the file
and the way out with exit 2. Never a traceback, and never a fresh start.

The session's finished sweep (``smoke_sweep``) is only read and copied here: a resume that gets
past its checks writes to the sweep's MLflow store, so the resumes that run to the end use a
sweep of their own (the slow test at the bottom).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import sweep_runs

from fer_core import atomic
from tuner.spec import state
from tuner.spec.context import StoragePath, SweepContext
from tuner.sweep import main
from tuner.tracking import schema as tr
from tuner.tracking.journal import Journal

# ---------------------------------------------------------------- how a file is torn
TEARS: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbage": lambda data: random.Random(len(data)).randbytes(max(len(data), 64)),
}

# ---------------------------------------------------------------- what each file gives
# file (a glob in the sweep folder; "TRIAL/..." is in the trial Tune resumes) → outcome when
# no driver's staging copy of Tune's files is left (another machine, /tmp cleared)
ERROR, RECOVERED = "error", "recovered"
FILES = {
    "sweep.json": RECOVERED,  # rebuilt from tuner.pkl
    "tuner.pkl": ERROR,
    "experiment_state-*.json": ERROR,
    "search_gen_state-*.json": ERROR,
    "searcher-state-*.pkl": ERROR,
    "sweep-gate-state.pkl": RECOVERED,  # from sweep_gate.json
    "sweep_gate.json": RECOVERED,  # from sweep-gate-state.pkl
    "estimate.json": RECOVERED,  # set aside
    "TRIAL/checkpoint_*/checkpoint.pt": RECOVERED,  # the trial trains again
    "TRIAL/mlflow_journal.jsonl": RECOVERED,  # its readable lines kept
}
CASES = [pytest.param(name, tear, id=f"{name.split('/')[-1]}-{tear}")
         for name in FILES for tear in TEARS]


def experiment_file(folder: Path) -> Path:
    return max(folder.glob("experiment_state-*.json"))


def mark_unfinished(folder: Path) -> tuple[str, Path]:
    """Mark the sweep's first trial RUNNING in Tune's experiment state, as a driver killed
    mid-trial leaves it: the resume hands it its latest checkpoint. Its (trial id, folder)."""
    path = experiment_file(folder)
    experiment = json.loads(path.read_text())
    trial = json.loads(experiment["trial_data"][0][0])
    trial["status"] = "RUNNING"
    experiment["trial_data"][0][0] = json.dumps(trial)
    atomic.write_text(path, json.dumps(experiment))
    return trial["trial_id"], folder / trial["relative_logdir"]


def write_journal(folder: Path, trial_id: str) -> None:
    """The journal a trial leaves when MLflow did not take everything: a few operations, one
    acknowledged (written by the journal itself)."""
    context = SweepContext.load(folder.parent)
    journal = Journal(folder / tr.JOURNAL_FILE, context.target, trial_id)
    for seq in (1, 2, 3):
        journal.append({"seq": seq, "op": "metrics", "step": seq, "ts": 0,
                        "values": {"val_cl": 1.0}})
    journal.ack(1)


def tear(folder: Path, name: str, how: str) -> Path:
    """Tear the file ``name`` of the sweep in ``folder``; its path."""
    trial_id, trial = mark_unfinished(folder)
    if name.endswith(tr.JOURNAL_FILE) and not (trial / tr.JOURNAL_FILE).exists():
        write_journal(trial, trial_id)
    pattern = name.replace("TRIAL/", f"{trial.name}/")
    [path] = [max(folder.glob(pattern))]
    path.write_bytes(TEARS[how](path.read_bytes()))
    return path


@pytest.fixture(autouse=True)
def ray_sessions(tmp_path, monkeypatch) -> Path:
    """Where the resume looks for the driver's staging copies of Tune's files: a folder of this
    test's, empty unless the test puts one there (as after a reboot, or on another machine)."""
    root = tmp_path / "ray-temp"
    monkeypatch.setattr(state, "ray_temp_roots", lambda: [root])
    return root


READS_THE_SWEEP = pytest.mark.slow(
    reason="tears a copy of the session's smoke sweep: a real sweep on Ray (~25 s, built once)")


@pytest.fixture()
def torn_copy(smoke_sweep, tmp_path) -> Path:
    """A copy of the session's finished sweep folder (its MLflow store stays where it is)."""
    assert smoke_sweep.code == 0
    copy = tmp_path / "rr" / smoke_sweep.name
    shutil.copytree(smoke_sweep.storage / smoke_sweep.name, copy)
    return copy


# ---------------------------------------------------------------- every file, every tear
@READS_THE_SWEEP
@pytest.mark.parametrize(("name", "how"), CASES)
def test_each_torn_file_is_recovered_or_named_with_the_way_out(torn_copy, name, how):
    folder = StoragePath.parse(torn_copy)
    path = tear(torn_copy, name, how)
    if FILES[name] == ERROR:
        with pytest.raises(state.CorruptState) as caught:
            context, _ = state.load_context(folder)
            state.check(folder, context)
        message = str(caught.value)
        assert "\n" not in message and str(path) in message
        assert f"mv {torn_copy} {torn_copy}{state.SET_ASIDE}" in message
        assert "reused from MLflow, not trained again" in message
        return
    context, note = state.load_context(folder)
    lines = [line for line in [note, *state.check(folder, context)] if line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("recovered: ") and path.name in lines[0]
    # Checked again, everything reads: the recovery wrote the file whole (or set it aside).
    again = [] if "checkpoint" not in name else lines  # the trial itself starts over
    assert state.load_context(folder)[1] is None and state.check(folder, context) == again


@READS_THE_SWEEP
@pytest.mark.parametrize("name", ["experiment_state-*.json", "search_gen_state-*.json",
                                  "searcher-state-*.pkl"])
def test_tune_state_torn_on_the_storage_comes_back_from_the_drivers_copy(torn_copy, ray_sessions,
                                                                         name):
    """Tune writes its state on the driver first and copies it to the storage: a copy cut by
    a full disk is replaced by the driver's whole one, in Ray's layout of its sessions."""
    whole = max(torn_copy.glob(name))
    stamp = whole.stem[-len("2026-01-01_00-00-00"):]  # the start of Tune's run, in every name
    staging = ray_sessions / "session_1" / "artifacts" / stamp / torn_copy.name / "driver_artifacts"
    staging.mkdir(parents=True)
    shutil.copy2(whole, staging / whole.name)
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 3])
    context = SweepContext.load(torn_copy)
    [line] = state.check(StoragePath.parse(torn_copy), context)
    assert line.startswith(f"recovered: {whole} ") and str(staging / whole.name) in line
    assert whole.read_bytes() == data


@READS_THE_SWEEP
def test_the_gate_rebuilt_from_its_record_keeps_the_hours_and_skips(torn_copy):
    import pickle

    record = json.loads((torn_copy / state.GATE_RECORD).read_text())
    (torn_copy / state.GATE_STATE).write_bytes(b"")
    [line] = state.check(StoragePath.parse(torn_copy), SweepContext.load(torn_copy))
    assert f"rebuilt from {state.GATE_RECORD}" in line
    rebuilt = pickle.loads((torn_copy / state.GATE_STATE).read_bytes())
    assert rebuilt["record"].trial_hours == pytest.approx(record["trial_hours"])
    assert rebuilt["record"].skipped == record["skipped"]
    assert rebuilt["clock"].used_seconds(0.0) == pytest.approx(record["trial_hours"] * 3600)


@READS_THE_SWEEP
def test_a_torn_journal_keeps_its_readable_operations(torn_copy):
    trial_id, trial = mark_unfinished(torn_copy)
    path = trial / tr.JOURNAL_FILE
    path.unlink(missing_ok=True)
    write_journal(trial, trial_id)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]) + b"\x00\xff garbage\n" + lines[-2][:10])
    context = SweepContext.load(torn_copy)
    [line] = state.check(StoragePath.parse(torn_copy), context)
    assert "2 unreadable line(s)" in line
    _, ops, acks = Journal.read(path)
    assert [op["seq"] for op in ops] == [1, 2] and set(acks) == set()  # the last two were torn


# ---------------------------------------------------------------- the command line
@READS_THE_SWEEP
@pytest.mark.parametrize("name", [n for n, outcome in FILES.items() if outcome == ERROR])
def test_resume_over_torn_tune_state_is_one_error_line_and_exit_2(torn_copy, smoke_sweep,
                                                                  capsys, name):
    path = tear(torn_copy, name, "truncated")
    _, before = sweep_runs(smoke_sweep.uri)
    code = main(["--resume", "--name", smoke_sweep.name, "--storage-path",
                 str(torn_copy.parent), "--mlflow-uri", smoke_sweep.uri])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("error:") == 1 and "Traceback" not in err and str(path) in err
    _, after = sweep_runs(smoke_sweep.uri)
    assert len(after) == len(before)  # nothing started, nothing duplicated


@pytest.mark.slow(reason="a smoke sweep of its own, then a resume per torn file (~3 min)")
def test_resume_after_a_recovery_finishes_with_one_run_per_trial(ray_runtime, tmp_path,
                                                                  monkeypatch, capsys):
    """The recovered files carry a resume to the end: the trial whose checkpoint was torn
    trains again in its own run, and no run is added or left RUNNING."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    flags = ["--name", "t", "--storage-path", str(tmp_path / "rr"), "--mlflow-uri", uri]
    assert main(["--space", "smoke", "--trials", "2", *flags]) == 0
    _, finished = sweep_runs(uri)
    folder = tmp_path / "rr" / "t"
    for name in ("sweep.json", "sweep-gate-state.pkl", "sweep_gate.json",
                 "TRIAL/checkpoint_*/checkpoint.pt", "TRIAL/mlflow_journal.jsonl"):
        capsys.readouterr()
        path = tear(folder, name, "truncated")
        began = time.monotonic()
        assert main(["--resume", *flags]) == 0, name
        out = capsys.readouterr().out
        with capsys.disabled():
            print(f"\n{name} torn: resume to completion {time.monotonic() - began:.1f} s")
        recovered = [line for line in out.splitlines() if line.startswith("recovered: ")]
        assert len(recovered) == 1 and path.name in recovered[0], (name, recovered)
        parents, trials = sweep_runs(uri)
        assert len(parents) == 1 and len(trials) == len(finished), name
        assert {r.info.status for r in [*parents, *trials]} == {"FINISHED"}, name
        assert all(tr.finite(r.data.metrics.get("test_cl")) for r in trials), name


# ---------------------------------------------------------------- the writes a resume reads
def test_an_atomic_write_cut_short_keeps_the_last_good_copy(tmp_path):
    import errno

    path = atomic.write_text(tmp_path / "sweep.json", '{"good": 1}')
    with pytest.raises(OSError), atomic.replacing(path) as tmp:
        tmp.write_text('{"half')  # the disk fills here
        raise OSError(errno.ENOSPC, "No space left on device")
    assert json.loads(path.read_text()) == {"good": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.json"]  # no temporary file left
    atomic.write_bytes(path, b'{"good": 2}')
    assert json.loads(path.read_text()) == {"good": 2}
