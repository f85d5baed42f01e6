"""The team path on a real PostgreSQL: the throwaway cluster, ``tuner.mlflow_server`` on it."""

from __future__ import annotations

import psycopg2
import pytest
from pg import fresh_database, pid_alive, postgres_cluster  # noqa: F401

from tuner.devdb import LocalPostgres


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


def test_restart_keeps_the_data(postgres):
    uri = fresh_database(postgres)
    with psycopg2.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("create table t (x int); insert into t values (7)")
    before = postgres.server_pid()
    postgres.restart(down_s=0.2)
    assert postgres.server_pid() != before and not pid_alive(before)
    with psycopg2.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("select x from t")
        assert cur.fetchall() == [(7,)]
