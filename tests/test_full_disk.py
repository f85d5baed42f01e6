"""A sweep whose storage fills up (``tuner.checks.space``), on a real small filesystem.

The test mounts a 2 MB tmpfs as the sweep's storage (root may mount; elsewhere it is skipped,
saying why) and unmounts it whatever happens. The smoke sweep's first checkpoint does not fit:
the sweep warns before it starts, ends with one ``error:`` line naming the folder and the space
it needs, exit 2, every MLflow run closed and the store readable. Once the filesystem is made
bigger, ``--resume`` finishes the same trials, one run each.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from helpers import sweep_runs

from tuner.sweep import main

SMALL, FREED = "2m", "1g"  # tmpfs sizes; a tmpfs only takes memory for what is written


@pytest.fixture()
def small_disk(tmp_path):
    """A 2 MB filesystem of its own at ``tmp_path/storage``, unmounted after the test."""
    folder = tmp_path / "storage"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL}", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({mounted.stderr.strip()}): a "
                    "full disk needs a filesystem of its own")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def tune_trial_ids(folder) -> set[str]:
    state = json.loads(max(folder.glob("experiment_state-*.json")).read_text())
    return {json.loads(trial)["trial_id"] for trial, _ in state["trial_data"]}


@pytest.mark.slow(reason="a smoke sweep failing on a full tmpfs (3 attempts per trial), then "
                         "its resume (~4 min)")
def test_full_storage_ends_in_one_line_and_resume_finishes_one_run_per_trial(
        small_disk, ray_runtime, tmp_path, monkeypatch, capsys, record_property):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"  # the store is elsewhere: only the storage fills
    flags = ["--name", "d", "--storage-path", str(small_disk), "--mlflow-uri", uri]
    code = main(["--space", "smoke", "--trials", "2", "--cache-dir", str(tmp_path / "cache"),
                 *flags])
    out, err = capsys.readouterr()
    folder = small_disk / "d"

    # Before the start: a warning that the estimate does not fit.
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warnings[0].startswith(f"warning: {small_disk} has ")
    assert "MB free; this sweep needs about" in warnings[0]
    # The gate's record may find the disk full too: said at most once, its last copy kept.
    assert warnings[1:] in ([], [f"warning: {small_disk}/d/sweep_gate.json not updated: No "
                                 "space left on device"])
    # The end: one line, the folder, the space it needs, exit 2.
    assert code == 2
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: no space left on the sweep's storage {folder} (")
    assert "MB free there to go on" in line and "Resume line above" in line
    assert f"--resume --name d --storage-path {small_disk}" in out
    # MLflow: nothing left RUNNING, the store answers.
    parents, trials = sweep_runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FAILED"
    assert all(run.info.status != "RUNNING" for run in trials)

    # Space freed: the same filesystem, bigger.
    subprocess.run(["mount", "-o", f"remount,size={FREED}", str(small_disk)], check=True)
    began = time.monotonic()
    assert main(["--resume", *flags]) == 0
    resumed_s = time.monotonic() - began
    record_property("full_disk_resume_to_completion_s", round(resumed_s, 1))
    out = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{line}\nspace freed → --resume to completion {resumed_s:.1f} s; recovered:\n"
              + "\n".join(r for r in out.splitlines() if r.startswith("recovered: ")))
    assert "resuming sweep d" in out

    parents, trials = sweep_runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {run.info.status for run in trials} == {"FINISHED"}
    assert sorted(run.data.tags["tune.trial_id"] for run in trials) == sorted(
        tune_trial_ids(folder))  # one run per trial, none twice
    assert len(trials) == 2
