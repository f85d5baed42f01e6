"""``python -m tuner.study``: names checked in one line, a price that starts nothing, and a small
study (declared here, smoke sizes, 3 seeds) run, stopped by SIGTERM after a sweep, resumed,
ending in the report with every shared configuration trained once (counted in MLflow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tuner.study.cli import main, parse

ROOT = Path(__file__).resolve().parents[1]

TINY_STUDY = '''
from search_spaces.studies import Part, Study, register

STUDY = register(Study(
    name="tiny", description="a small study for the tests", profile="smoke",
    parts=(Part("first", "first answers", "layers", {"layers": "5"}, first=True),
           Part("t12_cam", "Tables 1–2 (cam)", "layers",
                {"layers": "5", "method": "cam"}),
           Part("t12_layercam", "Tables 1–2 (layercam)", "layers",
                {"layers": "5", "method": "layercam"}),
           Part("t3", "Table 3 (5+4)", "lambda", {"lambda_au": 4.0, "layers": "5+4"}),
           Part("f5", "Fig. 5 (λ=1)", "lambda", {"lambda_au": 1.0}))))
'''
"""Methods, layer sets and λ values through the shipped spaces (workers know only those; the
Table 3 part has no λ = 0 reference of its own, which would be a second baseline); the
cam part (``cam`` is the default method) repeats the first part's configurations, which must
be reused, not retrained."""


@pytest.fixture
def study_file(tmp_path):
    path = tmp_path / "tiny_study.py"
    path.write_text(TINY_STUDY)
    return path


@pytest.mark.parametrize("argv, words", [
    (["nope"], ["unknown study 'nope'", "paper"]),
    (["paper", "--profile", "huge"], ["unknown profile 'huge'", "laptop", "smoke"]),
    (["paper", "--profile", "paper"], ["--dataset rafdb or affectnet"]),
    (["paper", "--profile", "smoke", "--dataset", "nosuch"], ["unknown dataset 'nosuch'"]),
])
def test_bad_names_are_one_line(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
    for word in words:
        assert word in err
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow(reason="times the paper profile's arms at its sizes")
def test_estimate_paper_profile_starts_nothing(study_file, tmp_path, monkeypatch, capsys, no_ray):
    import ray

    monkeypatch.chdir(tmp_path)
    assert main([str(study_file), "--profile", "paper", "--dataset", "rafdb", "--seeds", "3",
                 "--estimate", "--max-arms", "1"]) == 0
    out = capsys.readouterr().out
    for label in ("first answers", "Tables 1–2 (layercam)", "Table 3 (5+4)", "Fig. 5 (λ=1)"):
        line = next(x for x in out.splitlines() if x.startswith(label))
        assert float(line.split()[-1]) > 0  # device-hours of that part
    total = float(out.strip().splitlines()[-1].split("=")[1])
    parts = sum(float(x.split()[-1]) for x in out.splitlines()
                if x.startswith(("first", "Tables", "Table 3", "Fig.")))
    assert 0 < total < parts  # shared configurations counted once in the total
    assert not ray.is_initialized()
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()


def study_cmd(study_file: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tuner.study", str(study_file), "--num-cpus", "2", *extra]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}


@pytest.mark.slow(reason="18 smoke trials in 5 sweeps, started twice: ~4 min on 2 loaded cores")
def test_study_stopped_after_a_sweep_resumes_to_the_same_runs(study_file, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from tuner.study.parts import StudyPlan
    from tuner.tracking import schema as tr

    proc = subprocess.Popen(study_cmd(study_file), cwd=tmp_path, env=env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    third = False
    for line in proc.stdout:  # SIGTERM once the third sweep's trials train
        seen.append(line)
        third = third or line.startswith("== Tables 1–2 (layercam)")
        if third and line.startswith("Trial status:"):
            time.sleep(3)
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=300)[0]
    assert proc.returncode == 143, "".join(seen[-20:]) + rest[-3000:]  # SIGTERM: 128 + 15
    assert "--resume" in rest

    done = subprocess.run(study_cmd(study_file, "--resume"), cwd=tmp_path, env=env(),
                          text=True, capture_output=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("Report: ")
    report = Path(last.removeprefix("Report: "))
    text = report.read_text()
    assert "**Table 1" in text or "Table 1" in text
    assert "not made" not in text.split("**Table 1.**")[1][:300]  # Table 1 filled
    # Table 3's baseline row mixes methods over the whole experiment: the study adds it over
    # its baseline method's runs.
    assert "### Table 3 over method cam's runs" in text
    assert "Do the seeds suffice?" in text and (report.parent / "tables.tex").exists()
    assert (report.parent / "index.html").exists()

    monkeypatch.chdir(tmp_path)  # the study's relative defaults
    plan = StudyPlan.build(parse([str(study_file)]))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(plan.experiment)
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    assert not [r for r in runs if r.info.status == tr.RUNNING]
    trials = [r for r in runs if r.data.tags.get(tr.TAG_ROLE) == tr.ROLE_TRIAL
              and r.info.status == tr.FINISHED]
    counts = Counter(r.data.tags[tr.TAG_CONFIG_HASH] for r in trials)
    assert set(counts) == set(plan.all_trials())  # every trial of every part, nothing more
    assert max(counts.values()) == 1  # each trained once, shared ones included
    study_run = next(r for r in runs if r.data.tags.get(tr.TAG_ROLE) == "study")
    assert study_run.info.status == tr.FINISHED
    sweeps = [r for r in runs if r.data.tags.get(tr.TAG_ROLE) == tr.ROLE_PARENT]
    assert sweeps and all(r.data.tags.get(tr.TAG_PARENT) == study_run.info.run_id
                          for r in sweeps)
    progress = client.download_artifacts(study_run.info.run_id, "study_progress.txt",
                                         str(tmp_path))
    assert "Table 3 (5+4): 1/1 configurations × 3 seeds" in Path(progress).read_text()
