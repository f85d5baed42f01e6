"""The lab's path end to end on a real PostgreSQL: ``tuner.mlflow_server`` on it, a sweep on a
multi-node Ray cluster with its Optuna study in it, the password kept out of everything the run
writes or prints, and a database that is down at a sweep's start."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psycopg2
import pytest
from helpers import free_port
from pg import fresh_database, postgres_cluster  # noqa: F401
from ray_clusters import local_cluster

from search_spaces import SPACES
from tuner.tracking import schema as tr
from tuner.tracking.redact import REDACTED

pytestmark = pytest.mark.slow(reason="a 2-node Ray cluster, a sweep, MLflow on PostgreSQL")


def start_server(db_uri: str, folder: Path) -> tuple[subprocess.Popen, str, Path]:
    """``python -m tuner.mlflow_server`` on ``db_uri``; (process, URL, its output file)."""
    port = free_port()
    log = folder / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner.mlflow_server", "--port", str(port), "--workers", "2",
         "--backend-store-uri", db_uri, "--artifacts-destination", str(folder / "artifacts")],
        cwd=folder, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while "--mlflow-uri" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}", log


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(2)  # Ctrl-C: the server and its workers stop
    assert proc.wait(timeout=60) == 0


LOG_FILES = re.compile(r"journal|\.log$|\.err$|\.out$|\.txt$|error|sweep\.json")
"""Journals, logs and sweep.json: what a run writes as text (models, checkpoints aside)."""


def text_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_size < 20_000_000]


@pytest.fixture(scope="module")
def team_run(postgres, tmp_path_factory):
    """One sweep of the ``smoke`` space (Optuna TPE) on a 2-node Ray cluster, tracked by an
    MLflow server on PostgreSQL, its study in PostgreSQL too; both URIs carry the password."""
    folder = tmp_path_factory.mktemp("team")
    mlflow_db, optuna_db = fresh_database(postgres, "mlflow"), fresh_database(postgres, "optuna")
    server, url, server_log = start_server(mlflow_db, folder)
    try:
        with local_cluster(workers=2, prefix="pgt") as cluster:
            sweep = subprocess.run(
                [sys.executable, "-m", "tuner.sweep", "--space", "smoke", "--name", "team1",
                 "--address", cluster.address, "--mlflow-uri", url,
                 "--optuna-storage", optuna_db, "--storage-path", str(folder / "ray_results"),
                 "--max-concurrent", "2"],
                cwd=folder, capture_output=True, text=True, timeout=900)
            ray_logs = Path(cluster.head_node.get_session_dir_path())
            ray_log_text = "\n".join(p.read_text(errors="replace") for p in text_files(ray_logs)
                                     if LOG_FILES.search(p.name))
    finally:
        stop_server(server)
    return dict(folder=folder, url=url, mlflow_db=mlflow_db, optuna_db=optuna_db,
                sweep=sweep, server_log=server_log, password=postgres.password,
                ray_log_text=ray_log_text)


def test_a_sweep_on_the_team_server_shares_one_study_in_postgres(team_run, postgres):
    sweep = team_run["sweep"]
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    # The runs are in PostgreSQL, read straight from its tables.
    with psycopg2.connect(team_run["mlflow_db"]) as conn, conn.cursor() as cur:
        cur.execute("select r.status, t.value from runs r join tags t on t.run_uuid = "
                    "r.run_uuid and t.key = %s", (tr.TAG_ROLE,))
        roles = sorted(cur.fetchall())
        cur.execute("select count(distinct step) from metrics where key = 'val_cl'")
        assert cur.fetchone()[0] == 2  # 2 epochs
    trials = SPACES.get("smoke").default_trials
    assert roles == sorted([("FINISHED", tr.ROLE_PARENT)]
                           + [("FINISHED", tr.ROLE_TRIAL)] * trials)
    # The study is in PostgreSQL: every Optuna-suggested configuration was told its outcome.
    study = optuna.load_study(study_name="team1", storage=team_run["optuna_db"])
    states = [t.state for t in study.trials]
    assert len(states) == trials - 1  # the λ=0 baseline runs outside the searched domain
    assert all(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
               for s in states)


def test_the_password_is_nowhere_the_run_writes_or_prints(team_run):
    password = team_run["password"]
    found = []
    with psycopg2.connect(team_run["mlflow_db"]) as conn, conn.cursor() as cur:
        for table, columns in {"params": "key, value", "tags": "key, value",
                               "runs": "name, artifact_uri, source_name",
                               "experiments": "name, artifact_location",
                               "experiment_tags": "key, value",
                               "metrics": "key"}.items():
            cur.execute(f"select {columns} from {table}")
            found += [(table, row) for row in cur.fetchall() if password in repr(row)]
    # Journals, trial logs and error files, the server's log; the trials' and Ray's logs.
    for path in text_files(team_run["folder"]):
        if LOG_FILES.search(path.name) and password in path.read_text(errors="replace"):
            found.append(("file", str(path.relative_to(team_run["folder"]))))
    if password in team_run["ray_log_text"]:
        found.append(("ray logs", [ln for ln in team_run["ray_log_text"].splitlines()
                                   if password in ln][:3]))
    sweep = team_run["sweep"]
    for name, text in (("sweep stdout", sweep.stdout), ("sweep stderr", sweep.stderr)):
        if password in text:
            found.append((name, [ln for ln in text.splitlines() if password in ln][:3]))
    assert found == []
    # What was redacted is still there, as ***: the printed hints and the server's banner.
    assert f"postgresql://{REDACTED}@127.0.0.1" in team_run["server_log"].read_text()
    assert "optuna-dashboard postgresql://fer@127.0.0.1" in sweep.stdout
