"""The team path on a real PostgreSQL: the throwaway cluster, ``tuner.mlflow_server`` on it."""

from __future__ import annotations

import time

import psycopg2
import pytest
from devdb import LocalPostgres
from helpers import free_port
from mlflow import MlflowClient
from pg import fresh_database, pid_alive, postgres_cluster  # noqa: F401

from tuner.sweep import main as sweep_main
from tuner.tracking import server
from tuner.tracking.server import main as server_main


def test_cluster_asks_for_its_password_and_leaves_nothing_behind():
    pg = LocalPostgres(databases=("mlflow",)).start()
    root, pid = pg.root, pg.server_pid()
    try:
        assert pid_alive(pid)
        with psycopg2.connect(pg.uri("mlflow")) as conn, conn.cursor() as cur:
            cur.execute("select current_user, inet_server_addr()::text")
            assert cur.fetchone() == ("fer", "127.0.0.1/32")
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(pg.uri("mlflow").replace(pg.password, "wrong"))
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(pg.uri("mlflow", password=False))
    finally:
        pg.stop()
    assert not pid_alive(pid) and not root.exists()
    pg.stop()  # a second stop is harmless


def test_a_trials_tracking_goes_on_across_a_database_restart(postgres, tmp_path):
    # The project's writer of a trial's run (TrialTracker) on an MLflow store in PostgreSQL:
    # an epoch logged before the restart, one after it on the same tracker, nothing lost.
    from helpers import metric_steps, sweep_target

    from tuner.tracking import schema as tr
    from tuner.tracking.tracker import TrialTracker

    uri = fresh_database(postgres)
    target = sweep_target(uri, "restart")
    tracker = TrialTracker(target, "t1", tmp_path / "trial")
    tracker.attach("trial_t1", {tr.TAG_ARM: "a"}, {"lambda_au": "4.0"})
    tracker.log_metrics({"val_cl": 10.0}, step=1)
    assert tracker.flush() == 0
    before = postgres.server_pid()
    postgres.restart(down_s=0.2)
    assert postgres.server_pid() != before and not pid_alive(before)
    tracker.log_metrics({"val_cl": 20.0}, step=2)
    tracker.end(tr.FINISHED)
    assert tracker.close() == 0  # every item delivered, none left in the journal
    (run,) = MlflowClient(tracking_uri=uri).search_runs(
        [target.experiment_id], f"tags.{tr.TAG_TRIAL_ID} = 't1'")
    assert run.info.status == "FINISHED" and run.data.params["lambda_au"] == "4.0"
    assert metric_steps(uri, run.info.run_id) == [1, 2]
    assert run.data.metrics["val_cl"] == 20.0


# ---------------------------------------------------------------- a database that is down
def test_server_on_an_unreachable_database_fails_in_seconds_without_the_password(
        postgres, tmp_path, capsys):
    closed = f"postgresql://fer:S3cretPw@127.0.0.1:{free_port()}/mlflow"
    wrong = postgres.uri("postgres").replace(postgres.password, "S3cretPw")
    for uri, reason in ((closed, "Connection refused"), (wrong, "password authentication")):
        start = time.monotonic()
        assert server_main(["--port", str(free_port()), "--backend-store-uri", uri,
                            "--artifacts-destination", str(tmp_path / "a")]) == 1
        assert time.monotonic() - start < 20  # mlflow server alone retries for ~2 minutes
        err = capsys.readouterr().err
        assert err.startswith("error: --backend-store-uri postgresql://***@127.0.0.1:")
        assert "cannot reach the database" in err and reason in err
        assert "S3cretPw" not in err and len(err.strip().splitlines()) == 1


def test_a_sweep_with_its_optuna_storage_down_stops_before_anything_starts(tmp_path, capsys):
    closed = f"postgresql://fer:S3cretPw@127.0.0.1:{free_port()}/optuna"
    argv = ["--space", "smoke", "--optuna-storage", closed, "--storage-path",
            str(tmp_path / "ray_results"), "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    assert sweep_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --optuna-storage postgresql://***@127.0.0.1:")
    assert "Connection refused" in err and "S3cretPw" not in err
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow(reason="a PostgreSQL cluster and an MLflow server on it")
def test_a_sweep_against_a_server_whose_database_is_down_is_a_clear_error(tmp_path, capsys):
    with LocalPostgres(databases=("mlflow",)) as pg:
        config = server.resolve_config(pg.uri("mlflow"), str(tmp_path / "artifacts"),
                                       port=free_port())
        with server.start(config) as srv:
            pg.stop_server()  # the server still answers /health
            argv = ["--space", "smoke", "--mlflow-uri", srv.url,
                    "--storage-path", str(tmp_path / "ray_results")]
            start = time.monotonic()
            assert sweep_main(argv) == 2
            assert time.monotonic() - start < 60
    err = capsys.readouterr().err
    # A server worker that had its database open answers 503 at once; one that has not yet
    # opened it retries the connection: the check gives up after SERVER_QUERY_TIMEOUT_S.
    assert err.startswith(f"error: --mlflow-uri {srv.url}: the MLflow server ")
    assert "cannot use its database" in err or "did not answer a query" in err
    assert pg.password not in err and not (tmp_path / "ray_results").exists()


# ---------------------------------------------------------------- a restart under load
@pytest.mark.slow(reason="8 writer processes and an MLflow server through a PostgreSQL restart")
def test_a_database_restart_under_load_loses_and_duplicates_nothing(postgres, tmp_path,
                                                                    monkeypatch):
    # The load bench's own code (bench/tracking_load.py) at a small size: 8 simulated trials,
    # each a process with the project's TrialTracker, writing 10 epochs through one MLflow
    # server while PostgreSQL is stopped for 2 s and started again mid-way.
    from tracking_load import Load, restart_fault, run_backend

    down: list[float] = []  # when the server stopped, when it was back
    for name in ("stop_server", "start_server"):
        real = getattr(postgres, name)
        monkeypatch.setattr(postgres, name, lambda *a, real=real, **k: (
            real(*a, **k), down.append(time.time())))
    uri = fresh_database(postgres, "load")
    load = Load(writers=8, epochs=10, metrics=5, epoch_s=0.4)
    result = run_backend("postgresql", uri, load, workers=2, folder=tmp_path,
                         restart=restart_fault(postgres, after_s=1.5, down_s=2))
    store = {k: result[k] for k in ("lost_steps", "duplicated_steps", "trial_runs",
                                    "extra_runs", "unfinished_runs", "missing_artifacts",
                                    "undelivered")}
    assert store == dict(lost_steps=0, duplicated_steps=0, trial_runs=8, extra_runs=0,
                         unfinished_runs=0, missing_artifacts=0, undelivered=0)
    assert 2 <= result["recover_s"] < 30
    # Mid-way: steps were logged (the trackers stamp them) before the stop and after the stop.
    stopped_ms = down[0] * 1000
    with psycopg2.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("select count(*) filter (where timestamp < %s), "
                    "count(*) filter (where timestamp >= %s) from metrics", (stopped_ms,
                                                                            stopped_ms))
        before, after = cur.fetchone()
    assert before > 0 and after > 0, (before, after)
    assert result["failed_attempts"] > 0  # the writers met the outage and retried
