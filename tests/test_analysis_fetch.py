"""analysis.fetch: the database reader and the client reader see the same trials, and neither
moves MLflow's process-wide tracking URI."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from analysis import fetch
from analysis.runs import load_runs, tidy
from tuner.tracking import schema as tr


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Trials with a NaN metric, a deleted trial, a parent run and a trial of another experiment."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('fetch')}/mlflow.db"
    client = MlflowClient(uri)
    exp, other = client.create_experiment("exp"), client.create_experiment("other")
    client.create_run(exp, tags={tr.TAG_ROLE: tr.ROLE_PARENT})
    ids = []
    for i, cl in enumerate((81.5, float("nan"), 90.0, 70.0)):
        run = client.create_run(exp, tags={tr.TAG_ROLE: tr.ROLE_TRIAL, tr.TAG_ARM: f"a{i % 2}"})
        client.log_batch(run.info.run_id,
                         params=[Param("seed", str(i)), Param("layers", "5+4"),
                                 Param("lambda_au", str(4.0 * (i % 2)))],
                         metrics=[Metric("val_cl", 10.0 * s, 0, s) for s in range(3)]
                         + [Metric("test_cl", cl, 0, 3)])
        client.set_terminated(run.info.run_id, status="FAILED" if i == 2 else "FINISHED")
        ids.append(run.info.run_id)
    client.delete_run(ids[3])
    client.create_run(other, tags={tr.TAG_ROLE: tr.ROLE_TRIAL})
    return uri, ids


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("run_id").reset_index(drop=True)[sorted(frame.columns)]


def test_the_database_reader_matches_the_client_reader(store):
    uri, ids = store
    by_sql, by_client = fetch.from_database("exp", uri), fetch.from_client("exp", uri)
    assert set(by_sql["run_id"]) == set(ids[:3])  # no parent, no deleted run, no other experiment
    pd.testing.assert_frame_equal(_sorted(by_sql), _sorted(by_client))
    frame = tidy(by_sql).set_index("run_id")
    assert math.isnan(frame.loc[ids[1], "test_cl"]) and frame.loc[ids[0], "test_cl"] == 81.5
    assert frame.loc[ids[2], "status"] == "FAILED" and frame.loc[ids[0], "layers"] == "5+4"
    assert fetch.READERS.get("sqlite") is fetch.from_database


def test_load_runs_leaves_the_process_tracking_uri_free(store, tmp_path, monkeypatch):
    """A later MLFLOW_TRACKING_URI must still win (pinning it once broke a later test's
    ``runs:/`` load in a full run)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'a.db'}")
    assert len(load_runs("exp", store[0])) == 2  # the FINISHED trials
    later = f"sqlite:///{tmp_path / 'b.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", later)
    assert mlflow.get_tracking_uri() == later


@pytest.mark.parametrize("reader", [fetch.from_database, fetch.from_client])
def test_an_unknown_experiment_names_those_there(store, reader):
    with pytest.raises(ValueError, match=r"no MLflow experiment 'nope'.*\['Default', 'exp', "
                                         r"'other'\]"):
        reader("nope", store[0])


def test_a_missing_database_file_is_not_created(tmp_path):
    with pytest.raises(ValueError, match="no MLflow store at"):
        fetch.trial_runs("exp", f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


@pytest.mark.slow(reason="2,500 runs read back through a real MLflow server, three pages")
def test_a_tracking_server_with_more_than_one_page_of_runs_gives_every_run(tmp_path):
    # The runs are written in bulk as the scale bench writes them (bench/analysis_scale.py);
    # the server's search answers at most fetch.PAGE runs at a time.
    from analysis_scale import EXPERIMENT, write_runs
    from helpers import free_port

    from tuner.tracking import server

    runs = 2 * fetch.PAGE + 500
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    write_runs(uri, runs, tmp_path / "artifacts")
    config = server.resolve_config(uri, str(tmp_path / "artifacts"), port=free_port())
    with server.start(config) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        frame = load_runs(EXPERIMENT, srv.url)
    assert len(frame) == runs and frame["run_id"].is_unique
    direct = load_runs(EXPERIMENT, uri)  # the SQL reader of the same store
    assert set(frame["run_id"]) == set(direct["run_id"])
    by_id = frame.set_index("run_id").sort_index()
    assert by_id["test_cl"].equals(direct.set_index("run_id").sort_index()["test_cl"])
