"""Nothing left by a kill: the scratch a trial or a driver writes lies in the sweep's folder.

A trial stages each checkpoint before Tune copies it into ``checkpoint_NNNNNN``, and the driver
times the sweep's price in a scratch folder. Killed (SIGKILL: an OOM kill, a lost machine),
neither process cleans up; a system temp folder would keep ~100 MB per kill for good. Here a
sweep's trial worker is killed while it stages a checkpoint, then the driver, and ``--resume``
finishes the sweep: the system temp folder (the driver's ``TMPDIR``, its own for the test) holds
no name the project creates, and the sweep's folder no scratch.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from fault_runs import (
    Driver,
    driver,
    driver_env,
    resume_argv,
    runs_of,
    sweep_argv,
    trial_folders,
    trial_workers,
    wait_for,
)

from tuner.cost.timing import SCRATCH_PREFIX
from tuner.tracking import schema as tr
from tuner.trainable import CHECKPOINT_STAGING

PROJECT_PREFIX = "fer-"
"""What the project's temporary folders are named (``fer-ckpt-``, ``fer-estimate-``, ...)."""


def staging(tmp_path: Path, name: str, temp: Path) -> list[Path]:
    """Checkpoint staging folders now: the trials' own, or any the project made in ``temp``."""
    return ([f / CHECKPOINT_STAGING for f in trial_folders(tmp_path, name)
             if (f / CHECKPOINT_STAGING).exists()]
            + [p for p in temp.iterdir() if p.name.startswith(PROJECT_PREFIX)])


def trial_worker(d: Driver) -> psutil.Process | None:
    found = trial_workers(d)
    return found[0] if found else None


@pytest.mark.slow(reason="a smoke sweep whose worker and driver are killed, then resumed")
def test_no_scratch_left_outside_the_sweep_after_killed_processes(tmp_path, record_property):
    temp = tmp_path / "systmp"  # the processes' temp folder: only theirs, whatever else runs
    temp.mkdir()
    env = driver_env(TMPDIR=str(temp), RAY_TMPDIR=os.environ.get("RAY_TMPDIR", "/tmp"))
    argv = sweep_argv(tmp_path, "k", "--trials", "2", "--set", "epochs=6")
    with driver(argv, tmp_path, env=env) as d:
        wait_for(lambda: staging(tmp_path, "k", temp) and trial_worker(d),
                 "a checkpoint being staged", d)
        killed = trial_worker(d)
        killed.kill()  # SIGKILL while the checkpoint is staged
        retried, at = time.monotonic(), time.time()

        def retry_staging() -> bool:
            worker = trial_worker(d)
            return bool(worker and worker.pid != killed.pid and any(
                p.stat().st_mtime > at for p in staging(tmp_path, "k", temp)))

        # The retry (a new worker) stages a checkpoint of its own: then the driver dies too.
        wait_for(retry_staging, "the retry staging a checkpoint", d)
        record_property("retry_s", round(time.monotonic() - retried, 1))
        d.kill_all()
    began = time.monotonic()
    with driver(resume_argv(tmp_path, "k"), tmp_path, log="resume", env=env) as again:
        assert again.wait() == 0, again.tail()
    record_property("resume_s", round(time.monotonic() - began, 1))

    assert not [p.name for p in temp.iterdir() if p.name.startswith(PROJECT_PREFIX)]
    sweep = tmp_path / "rr" / "k"
    assert not list(sweep.glob(f"*/{CHECKPOINT_STAGING}")), "staging left in a trial's folder"
    assert not list(sweep.glob(f"{SCRATCH_PREFIX}*")), "timing scratch left in the sweep"
    parents, trials = runs_of(tmp_path)
    assert {r.info.status for r in parents + trials} == {tr.FINISHED}
    assert set(Counter(r.data.tags[tr.TAG_TRIAL_ID] for r in trials).values()) == {1}
    assert len(trials) == 2


def test_resume_removes_only_the_timing_scratch_a_killed_driver_left(tmp_path):
    from tuner.cost.timing import remove_stale_scratch

    left = tmp_path / f"{SCRATCH_PREFIX}abc123"
    (left / "mlflow_model").mkdir(parents=True)
    (left / "checkpoint.pt").write_bytes(b"x" * 1024)
    trial = tmp_path / "train_trial_1"
    trial.mkdir()
    (tmp_path / "sweep.json").write_text("{}")
    remove_stale_scratch(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.json", "train_trial_1"]
