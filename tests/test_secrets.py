"""No credential reaches MLflow: redaction of URLs and secret-named keys, checked on a real
sqlite store by scanning every table for the secrets."""

from __future__ import annotations

import sqlite3

import pytest
from helpers import free_port
from mlflow import MlflowClient

from tuner.tracking import client as runs
from tuner.tracking import replay
from tuner.tracking import schema as tr
from tuner.tracking.client import FAIL_FAST_HTTP
from tuner.tracking.journal import JOURNAL_FILE
from tuner.tracking.redact import redact, redact_mapping
from tuner.tracking.tracker import TrialTracker


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://fer:pw@db:5432/optuna", "postgresql://***@db:5432/optuna"),
    ("postgresql://fer:p@ss@db/optuna", "postgresql://***@db/optuna"),  # raw "@" in a password
    ("http://user:pw@host:5000", "http://***@host:5000"),
    ("https://ghp_abc@github.com/x.git", "https://***@github.com/x.git"),  # a token as the user
    ("mysql+pymysql://u:p%40x@h/db", "mysql+pymysql://***@h/db"),
    ("postgresql://db/x?user=fer&password=pw", "postgresql://db/x?user=fer&password=***"),
    ("s3://b/k?X-Amz-Signature=abc&X-Amz-Date=1", "s3://b/k?X-Amz-Signature=***&X-Amz-Date=1"),
    ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("/data/RAF-DB", "/data/RAF-DB"),
    ("5+4+3", "5+4+3"),
])
def test_redact_urls(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent


def test_secret_names_are_redacted_other_fields_kept():
    values = {"db_password": "pw", "MLFLOW_TRACKING_TOKEN": "t", "apiKey": "k",
              "aws.secret_access_key": "s", "sweep.optuna_storage": "postgresql://a:b@h/d",
              "monkey": "m", "keyframe": "k", "layers": "5+4", "api_token": "None"}
    assert redact_mapping(values) == {
        "db_password": "***", "MLFLOW_TRACKING_TOKEN": "***", "apiKey": "***",
        "aws.secret_access_key": "***", "sweep.optuna_storage": "postgresql://***@h/d",
        "monkey": "m", "keyframe": "k", "layers": "5+4", "api_token": "None"}


SECRETS = ("S3cretPw", "hunter2", "wJalrXUtnFEMI", "tok-9f8e7d", "pa55word", "alice:",
           "AKIAEXAMPLE")


@pytest.mark.slow(reason="writes and reads back a real store's runs and artifacts")
def test_no_secret_reaches_a_real_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    exp = runs.ensure_experiment(client, "secrets", uri)
    settings = {"space": "pareto", "optuna_storage": "postgresql://alice:S3cretPw@db:5432/opt"}
    base = {"data_root": "https://bob:hunter2@data.example/raf", "epochs": 2}
    parent = runs.start_parent(
        client, exp, "s",
        tags={tr.TAG_SWEEP_PATH: "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/ray_results/s"},
        params={**tr.sweep_params(settings), **tr.param_values(base)})
    target = runs.TrackingTarget(uri, exp, parent, "s", "pareto")
    tracker = TrialTracker(target, "t1", tmp_path / "trial")
    tracker.attach("trial_t1", {"api_token": "tok-9f8e7d"},
                   tr.param_values({**base, "db_password": "pa55word"}))
    tracker.set_tags({"note": "see postgresql://alice:S3cretPw@db/x"})
    tracker.log_metrics({"val_cl": 1.0}, step=1)
    tracker.flush()
    journal = tracker.journal.path.read_text()  # what would wait on disk in an outage
    tracker.end(tr.FINISHED, {tr.TAG_TUNE_STATUS: "TERMINATED"})
    assert tracker.close() == 0

    for secret in SECRETS:
        assert secret not in journal
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
        dump = "\n".join(repr(row) for t in tables for row in db.execute(f"select * from {t}"))
    assert "postgresql://***@db:5432/opt" in dump  # the values are there, redacted
    for secret in SECRETS:
        assert secret not in dump, f"{secret} reached the store"
    (child,) = runs.sweep_trial_runs(client, target)
    assert child.data.params["data_root"] == "https://***@data.example/raf"
    assert child.data.params["db_password"] == "***"
    assert child.data.tags["api_token"] == "***"
    assert client.get_run(parent).data.tags[tr.TAG_SWEEP_PATH] == (
        "s3://***@bucket/ray_results/s")


def test_a_journal_keeps_no_credentials_and_replay_asks_for_them(tmp_path, capsys,
                                                                 monkeypatch):
    for key, value in FAIL_FAST_HTTP.items():  # as in a trial process
        monkeypatch.setenv(key, value)
    port = free_port()  # nothing listens there: the server is down
    target = runs.TrackingTarget(f"http://fer:hunter2@127.0.0.1:{port}", "1", "p", "s", "smoke")
    tracker = TrialTracker(target, "t1", tmp_path / "trial")
    tracker.attach("trial_t1", {}, {})
    tracker.end(tr.FINISHED)
    assert tracker.close(timeout=0) == 2
    journal = (tmp_path / "trial" / JOURNAL_FILE).read_text()
    assert "hunter2" not in journal and f"http://***@127.0.0.1:{port}" in journal
    assert replay.main([str(tmp_path)]) == 2
    assert "had credentials (redacted): pass the real one with --mlflow-uri" in (
        capsys.readouterr().err)


def test_the_closing_hints_print_no_credentials():
    from pathlib import Path

    from tuner.results.next_steps import how_to_look
    from tuner.spec.context import SweepContext
    from tuner.spec.settings import SweepSettings
    from tuner.tracking.client import TrackingTarget

    server = "https://alice:hunter2@mlflow.example:5000"
    target = TrackingTarget(server, "1", "p" * 32, "s", "smoke")
    settings = SweepSettings(space="pareto", metric=("val_cl", "val_att_cos"), mode=("max", "max"),
                             searcher="optuna_pareto", scheduler="fifo", num_configs=1, seeds=1,
                             max_concurrent=1, optuna_storage="postgresql://bob:s3cret@db/optuna")
    ctx = SweepContext({}, target, settings=settings)
    text = how_to_look(ctx, Path("/shared/ray_results"))
    assert "hunter2" not in text and "s3cret" not in text and "alice" not in text
    assert "Open the UI:   https://***@mlflow.example:5000" in text  # a server is the UI
    assert "optuna-dashboard postgresql://bob@db/optuna" in text  # runs with PGPASSWORD


def test_the_project_never_turns_ray_token_auth_off():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    off = re.compile(r"RAY_AUTH_MODE\W{0,8}disabled")  # e.g. env["RAY_AUTH_MODE"] = "disabled"
    sources = [p for pkg in ("fer_core", "tuner", "search_spaces", "analysis", "bench")
               for p in (root / pkg).rglob("*") if p.suffix in (".py", ".yaml", ".sh")]
    assert len(sources) > 50
    assert [str(p) for p in sources if off.search(p.read_text())] == []


def test_sweep_json_keeps_no_password_and_resume_takes_it_again(tmp_path):
    """``sweep.json`` travels with the results: its URIs are redacted, and ``--resume`` puts
    back the credentials from the URIs it is given (or says which flag it needs)."""
    from tuner.spec.context import SweepContext
    from tuner.spec.settings import SweepSettings
    from tuner.tracking.client import TrackingTarget

    mlflow_uri, optuna = "http://fer:S3cret@mlflow.lan:5000", "postgresql://fer:S3cret@db/optuna"
    ctx = SweepContext(base={}, target=TrackingTarget(mlflow_uri, "1", "p", "s", "pareto"),
                       settings=SweepSettings("pareto", ("test_cl", "test_att_cos"),
                                              ("max", "max"), "optuna_mo", "fifo", 4, 1, 1,
                                              optuna_storage=optuna))
    path = ctx.save(tmp_path / "s")
    assert "S3cret" not in path.read_text() and "postgresql://***@db/optuna" in path.read_text()
    loaded = SweepContext.load(tmp_path / "s")
    assert loaded.with_secrets(mlflow_uri, optuna) == ctx
    with pytest.raises(ValueError, match=r"pass --optuna-storage postgresql://\*\*\*@db/optuna"):
        loaded.with_secrets(mlflow_uri, None)
    with pytest.raises(ValueError, match="--mlflow-uri http://\\*\\*\\*@mlflow.lan:5000"):
        loaded.with_secrets("http://127.0.0.1:5000", optuna)  # another server is not this one
    plain = SweepContext(base={}, target=TrackingTarget("sqlite:////x/mlflow.db", "1", "p", "s",
                                                        "smoke"))
    plain.save(tmp_path / "t")
    assert SweepContext.load(tmp_path / "t").with_secrets(None, None) == plain


# ---------------------------------------------------------------- nothing at rest
@pytest.mark.parametrize(("uri", "stored"), [
    ("postgresql://fer:S3cretPw@db:5432/mlflow", "postgresql://fer@db:5432/mlflow"),
    ("postgresql+psycopg2://fer:p@ss@db/optuna", "postgresql+psycopg2://fer@db/optuna"),
    ("postgresql://db/x?user=fer&password=S3cretPw", "postgresql://db/x?user=fer"),
    ("postgresql://db/x?password=S3cretPw&user=fer", "postgresql://db/x?user=fer"),
    ("postgresql://fer@db/optuna", "postgresql://fer@db/optuna"),  # PGPASSWORD or ~/.pgpass
    ("http://alice:hunter2@mlflow.lan:5000", "http://***@mlflow.lan:5000"),
    ("sqlite:////abs/optuna.db", "sqlite:////abs/optuna.db"),
])
def test_a_uri_at_rest_has_no_password_and_this_process_gets_it_back(uri, stored,
                                                                     monkeypatch):
    from tuner.tracking import passwords

    monkeypatch.setattr(passwords, "_whole", {})  # what this process was given: nothing yet
    assert passwords.at_rest(uri) == stored
    assert passwords.whole(stored) == uri


def test_the_drivers_pickles_hold_no_password(monkeypatch):
    # What Tune pickles into tuner.pkl: the driver's callback with the tracking target, the
    # gate's rules with the sweep's context (its Optuna storage URI too).
    import pickle

    from tuner.search.gate import GateRules
    from tuner.spec.context import SweepContext
    from tuner.spec.settings import SweepSettings
    from tuner.tracking import passwords
    from tuner.tracking.client import TrackingTarget
    from tuner.tracking.closer import CloseTrialRuns

    target = TrackingTarget("postgresql://fer:S3cretPw@db/mlflow", "1", "p", "s", "pareto")
    settings = SweepSettings("pareto", ("val_cl", "val_att_cos"), ("max", "max"),
                             "optuna_pareto", "fifo", 2, 1, 1,
                             optuna_storage="postgresql://fer:hunter2@db/optuna")
    rules = GateRules(SweepContext({}, target, settings=settings))
    assert "S3cretPw" not in repr(target)  # a trial's error report may print it
    blobs = [pickle.dumps(CloseTrialRuns(target)), pickle.dumps(rules)]
    for blob in blobs:
        assert b"S3cretPw" not in blob and b"hunter2" not in blob
    assert b"postgresql://fer@db/mlflow" in blobs[0] and b"postgresql://fer@db/optuna" in blobs[1]
    # Loaded by the sweep that was given the URIs: whole again.
    assert pickle.loads(blobs[0]).target == target and pickle.loads(blobs[1]) == rules
    # Loaded anywhere else: the stored URI, the driver finds the password on its own.
    monkeypatch.setattr(passwords, "_whole", {})
    assert pickle.loads(blobs[0]).target.uri == "postgresql://fer@db/mlflow"
    loaded = pickle.loads(blobs[1]).context.settings.optuna_storage
    assert loaded == "postgresql://fer@db/optuna"


@pytest.mark.slow(reason="a smoke sweep with its study and runs in PostgreSQL")
def test_no_file_a_sweep_writes_holds_the_database_password(tmp_path):
    # The MLflow URI names the database itself, so the trials connect to PostgreSQL too;
    # both URIs carry the password. Every file under the sweep's folders and Ray's session
    # (pickles, JSON, sweep.json, journals, logs, checkpoints) is read as raw bytes.
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import psycopg2
    from devdb import LocalPostgres
    from pg import files_holding

    ray_tmp = Path(tempfile.mkdtemp(prefix="rsec", dir="/tmp"))  # Ray's sockets: a short path
    try:
        with LocalPostgres(databases=("mlflow", "optuna")) as pg:
            argv = [sys.executable, "-m", "tuner.sweep", "--space", "smoke", "--name", "sec",
                    "--storage-path", str(tmp_path / "ray_results"), "--num-cpus", "2",
                    "--mlflow-uri", pg.uri("mlflow"), "--optuna-storage", pg.uri("optuna")]
            done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=1200, start_new_session=True,
                                  env={**os.environ, "RAY_TMPDIR": str(ray_tmp)})
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            with psycopg2.connect(pg.uri("mlflow")) as conn, conn.cursor() as cur:
                cur.execute("select count(*) from runs where status = 'FINISHED'")
                assert cur.fetchone()[0] >= 3  # the parent and its trials
            assert list(tmp_path.rglob("tuner.pkl")) and list(tmp_path.rglob("*.json"))
            assert pg.password not in done.stdout + done.stderr
            assert files_holding(pg.password, tmp_path, ray_tmp) == []
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_pickled_study_storage_connects_elsewhere_with_pgpassword_or_pgpass(tmp_path):
    # A process that was not given the password (a resume without it, a tool reading the
    # sweep's folder) loads the searcher's pickle and connects as PostgreSQL users do.
    import os
    import pickle
    import subprocess
    import sys

    import optuna
    from devdb import LocalPostgres

    from tuner.search.study_storage import StudyStorage

    with LocalPostgres(databases=("optuna",)) as pg:
        storage = StudyStorage(url=pg.uri("optuna"))
        optuna.create_study(storage=storage, study_name="s1")
        blob = pickle.dumps(storage)
        assert pg.password.encode() not in blob
        (tmp_path / "storage.pkl").write_bytes(blob)
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(f"127.0.0.1:{pg.port}:optuna:{pg.user}:{pg.password}\n")
        pgpass.chmod(0o600)
        load = ("import pickle, sys, optuna; storage = pickle.loads(open(sys.argv[1], 'rb')"
                ".read()); print(optuna.get_all_study_names(storage))")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGPASS")}
        nowhere = str(tmp_path / "no-pgpass")
        outcomes = [subprocess.run([sys.executable, "-c", load, str(tmp_path / "storage.pkl")],
                                   env={**env, **extra}, capture_output=True, text=True)
                    for extra in ({"PGPASSWORD": pg.password, "PGPASSFILE": nowhere},
                                  {"PGPASSFILE": str(pgpass)}, {"PGPASSFILE": nowhere})]
    assert [o.stdout.strip() for o in outcomes[:2]] == ["['s1']", "['s1']"], outcomes
    assert outcomes[2].returncode != 0 and "password" in outcomes[2].stderr
