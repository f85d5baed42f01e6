"""The ``pareto`` space on the team database: a smoke sweep whose multi-objective Optuna study
lives in PostgreSQL (``--optuna-storage`` with the password in the URI) and whose runs go to an
MLflow server on PostgreSQL; its study, the Pareto front in the report, the optuna-dashboard
command it prints (run as printed, the password in ``PGPASSWORD``), and no password on disk."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import psycopg2
import pytest
from helpers import free_port
from pg import files_holding, fresh_database, postgres_cluster  # noqa: F401
from test_browser_ui import page, stop, wait_http  # noqa: F401

from tuner.tracking import schema as tr
from tuner.tracking import server

SWEEP, EXPERIMENT = "pg-pareto", "pg-pareto"

pytestmark = pytest.mark.slow(reason="a pareto sweep on PostgreSQL, an MLflow server, chromium")


@pytest.fixture(scope="module")
def pareto_run(postgres, tmp_path_factory) -> Iterator[dict]:
    """A finished ``pareto`` smoke sweep (two trials) with its study and runs in PostgreSQL."""
    root = tmp_path_factory.mktemp("pgpareto")
    ray_tmp = Path(tempfile.mkdtemp(prefix="rpp", dir="/tmp"))  # Ray's sockets: a short path
    mlflow_db, optuna_db = fresh_database(postgres, "mlflow"), fresh_database(postgres, "optuna")
    assert postgres.password in optuna_db
    config = server.resolve_config(mlflow_db, str(root / "artifacts"), port=free_port(),
                                   cwd=root)
    with open(root / "server.log", "wb") as log, server.start(config, log) as srv:
        argv = [sys.executable, "-m", "tuner.sweep", "--space", "pareto", "--smoke-test",
                "--trials", "2", "--name", SWEEP, "--experiment", EXPERIMENT,
                "--storage-path", str(root / "ray_results"), "--mlflow-uri", srv.url,
                "--optuna-storage", optuna_db, "--num-cpus", "2"]
        done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=1200,
                              start_new_session=True,
                              env={**os.environ, "RAY_TMPDIR": str(ray_tmp)})
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        report = subprocess.run(
            [sys.executable, "-m", "analysis.report", "--experiment", EXPERIMENT,
             "--mlflow-uri", srv.url, "--no-progress", "-o", str(root / "report")],
            capture_output=True, text=True, timeout=900)
        yield {"root": root, "ray_tmp": ray_tmp, "url": srv.url, "mlflow_db": mlflow_db,
               "optuna_db": optuna_db, "sweep": done, "report": report}
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_the_study_is_multi_objective_in_postgres(pareto_run):
    study = optuna.load_study(study_name=SWEEP, storage=pareto_run["optuna_db"])
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2
    # Two trials: the λ=0 baseline runs outside the searched domain, the paper's point is
    # Optuna's first trial; it was told both objectives.
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and len(trial.values) == 2
    assert study.best_trials == [trial]  # one trial is its own Pareto front
    with psycopg2.connect(pareto_run["mlflow_db"]) as conn, conn.cursor() as cur:
        cur.execute("select r.status from runs r join tags t on t.run_uuid = r.run_uuid "
                    "and t.key = %s and t.value = %s", (tr.TAG_ROLE, tr.ROLE_TRIAL))
        assert sorted(cur.fetchall()) == [("FINISHED",), ("FINISHED",)]


def test_the_report_draws_the_pareto_front(pareto_run):
    report = pareto_run["report"]
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    out = pareto_run["root"] / "report"
    assert (out / "figures" / "pareto.png").stat().st_size > 10_000
    line = next(ln for ln in (out / "index.md").read_text().splitlines()
                if "CL against ATT-COS" in ln)
    assert "not made" not in line and "figures/pareto.png" in line


def test_the_printed_dashboard_command_opens_the_study(pareto_run, postgres, page):  # noqa: F811
    stdout = pareto_run["sweep"].stdout
    found = re.search(r"^Optuna study:\s+optuna-dashboard (\S+)\s+\(study (\S+)\)$", stdout,
                      re.M)
    assert found, stdout[-2000:]
    storage, study = found.groups()
    assert study == SWEEP and postgres.password not in storage
    assert storage == postgres.uri(pareto_run["optuna_db"].rsplit("/", 1)[1], password=False)
    assert "the password: from PGPASSWORD or ~/.pgpass" in stdout
    port = free_port()
    proc = subprocess.Popen(["optuna-dashboard", storage, "--host", "127.0.0.1", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True,
                            env={**os.environ, "PGPASSWORD": postgres.password})
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        page.goto(f"http://127.0.0.1:{port}/dashboard")
        page.get_by_text(SWEEP).first.wait_for()
    finally:
        stop(proc)


def test_no_file_the_sweep_wrote_holds_the_password(pareto_run, postgres):
    # Tune's pickles (tuner.pkl, the searcher's state with its Optuna storage), its JSON, the
    # sweep's spec, the trials' folders and journals, the report, the MLflow artifacts and
    # Ray's own session logs, as raw bytes.
    roots = [pareto_run["root"], pareto_run["ray_tmp"]]
    assert list((pareto_run["root"] / "ray_results" / SWEEP).rglob("*.pkl"))
    assert files_holding(postgres.password, *roots) == []
