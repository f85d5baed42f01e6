"""Sweep paths a user walks first, end to end as subprocesses (real Ray, MLflow, dlib, JPEGs).

- The README's main command at smoke sizes: the default space, the sweep starting its own Ray,
  with ``--max-concurrent 1`` actually keeping one trial at a time.
- ``--dataset rafdb --data-root`` on a RAF-DB tree of real JPEG files in the official layout and
  label format: the preflight stops the sweep until landmarks exist, the landmarks CLI extracts
  them with dlib, then the sweep runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import sweep_runs
from skimage import data

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow(reason="sweeps and the landmark CLI, each in its own process")


def python(*argv: str, cwd: Path, limit: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=limit)


def test_readme_command_at_smoke_sizes_runs_one_trial_at_a_time(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = python("tuner.sweep", "--space", "lambda_layers", "--smoke-test", "--max-concurrent",
                 "1", "--num-cpus", "2", "--storage-path", str(tmp_path / "rr"), "--mlflow-uri",
                 uri, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "preflight: synthetic data" in run.stdout
    runs = sorted(sweep_runs(uri)[1], key=lambda r: r.info.start_time)
    assert len(runs) >= 2 and all(r.info.status == "FINISHED" for r in runs)
    # Two CPUs would hold two 1-CPU trials; --max-concurrent 1 must keep their runs apart.
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.info.end_time <= later.info.start_time


def face(image: np.ndarray, seed: int) -> np.ndarray:
    """The astronaut's face as a 100 px aligned-style crop with a little noise (BGR)."""
    crop = cv2.resize(image[30:250, 110:330], (100, 100), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(seed).integers(-6, 7, crop.shape)
    return cv2.cvtColor(np.clip(crop.astype(int) + noise, 0, 255).astype(np.uint8),
                        cv2.COLOR_RGB2BGR)


def rafdb_tree(root: Path) -> Path:
    """RAF-DB basic: per label code 1..7, two train and one test aligned JPEG."""
    aligned = root / "basic" / "Image" / "aligned"
    aligned.mkdir(parents=True)
    (root / "basic" / "EmoLabel").mkdir()
    astronaut, lines, k = data.astronaut(), [], 0
    for code in range(1, 8):
        for split in ("train", "train", "test"):
            k += 1
            name = f"{split}_{k:05d}"
            cv2.imwrite(str(aligned / f"{name}_aligned.jpg"), face(astronaut, k))
            lines.append(f"{name}.jpg {code}")
    (root / "basic" / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def test_rafdb_tree_of_real_jpegs_through_the_sweep(tmp_path):
    root = rafdb_tree(tmp_path / "RAF-DB")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = ("tuner.sweep", "--space", "smoke", "--smoke-test", "--trials", "1", "--num-cpus",
             "1", "--dataset", "rafdb", "--data-root", str(root), "--storage-path",
             str(tmp_path / "rr"), "--mlflow-uri", uri)
    before = python(*sweep, "--name", "before", cwd=tmp_path)
    assert before.returncode == 2, before.stderr[-3000:]
    assert "100% of the readable images" in before.stderr
    assert "python -m fer_core.data.landmarks --dataset rafdb" in before.stderr
    assert not (tmp_path / "rr" / "before").exists()  # stopped before the sweep folder existed

    extract = python("fer_core.data.landmarks", "--dataset", "rafdb", "--root", str(root),
                     "--workers", "1", "--no-progress", cwd=tmp_path)
    assert extract.returncode == 0, extract.stderr[-3000:]

    after = python(*sweep, "--name", "after", cwd=tmp_path)
    assert after.returncode == 0, after.stderr[-3000:]
    line = next(x for x in after.stdout.splitlines() if x.startswith("preflight:"))
    assert "21 readable images in 3 splits" in line and "0 unreadable" in line
    runs = sweep_runs(uri)[1]
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.params["dataset"] == "rafdb"


def test_ctrl_c_exits_130_with_the_resume_command(tmp_path):
    import glob
    import signal
    import time

    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(PROJECT)}
    results = tmp_path / "rr" / "c"
    driver = subprocess.Popen(
        [sys.executable, "-m", "tuner.sweep", "--space", "smoke", "--name", "c", "--set",
         "epochs=6", "--num-cpus", "1", "--storage-path", str(tmp_path / "rr"), "--mlflow-uri",
         f"sqlite:///{tmp_path}/mlflow.db"], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while not glob.glob(f"{results}/*/checkpoint_0*"):  # a trial is training
            assert driver.poll() is None, driver.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no trial started"
            time.sleep(0.5)
        driver.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, err[-3000:]
    assert f"python -m tuner.sweep --resume --name c --storage-path {tmp_path / 'rr'}" in out
    assert "interrupted:" in err
    # --resume needs it: only an early-stopped trial's checkpoints are deleted (closer.py)
    assert glob.glob(f"{results}/*/checkpoint_0*/checkpoint.pt")
