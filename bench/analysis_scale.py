"""``analysis.tables`` and ``analysis.report`` over an experiment of 10,000 trial runs.

    python bench/analysis_scale.py               # PostgreSQL (throwaway), SQLite, http
    python bench/analysis_scale.py --runs 2000 --backends sqlite

The runs are written in bulk: the store's schema is created by MLflow itself (its
``SqlAlchemyStore`` runs the migrations), then the rows go in through MLflow's own table
definitions, one multi-row insert per table, since 10,000 ``create_run`` + ``log_batch`` calls
would take minutes. Each run looks like a finished trial of the ``methods`` grid (11 methods ×
λ ∈ {0, 4}) or of the ``layers`` grid (λ = 4 at 9 layer sets, plus the λ = 0 baseline), with
its full config as params, the schema's tags and its final metrics.

Then, per back end, each command is timed as a user runs it (a fresh process, the store's URI as
``--mlflow-uri``): ``analysis.tables`` for tables 1-3 and ``analysis.report`` (every table and
figure; the maps figure needs trained models and is reported as not made). The ``http`` back end
is a team's setup: an MLflow server (``tuner.tracking.server``) on a throwaway PostgreSQL, read
through its REST search a page of runs at a time, where the two others are read with plain SQL.
The last lines are ``analysis_10k_runs_s=<s>``, the slowest database back end's total (the goal:
≤ 60 s), and ``analysis_10k_runs_http_s=<s>`` beside it when ``http`` ran.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fer_core.cams import METHODS
from fer_core.config import ExperimentConfig
from tuner.tracking import schema as tr

EXPERIMENT = "scale"
LAYER_SETS = ("5", "4", "3", "2", "1", "5+4", "5+4+3", "5+4+3+2", "5+4+3+2+1")
METHODS_SHARE = 0.6  # of the runs; the rest are the layers grid
COMMIT = "a" * 40
CHUNK = 5000  # rows per insert statement batch
BACKENDS = ("postgresql", "sqlite", "http")  # http: an MLflow server on PostgreSQL


def arms() -> tuple[list[dict], list[dict]]:
    """(the methods grid's arms, the layers grid's arms) as config overrides."""
    methods = [{"method": m, "lambda_au": lam, "layers": "5"}
               for m in METHODS.names() for lam in (0.0, 4.0)]
    layers = [{"method": "cam", "lambda_au": 0.0, "layers": "5"}]
    layers += [{"method": "cam", "lambda_au": 4.0, "layers": s} for s in LAYER_SETS]
    return methods, layers


def trial_rows(n: int, experiment_id: str, parents: dict[str, str], rng: random.Random):
    """Rows for the runs, tags, params, metrics and latest_metrics tables."""
    base = ExperimentConfig.from_flat({}).to_flat()
    methods, layers = arms()
    runs, tags, params, metrics = [], [], [], []
    now = int(time.time() * 1000)
    n_methods = int(n * METHODS_SHARE)
    for i in range(n):
        space, grid, k = (("methods", methods, i) if i < n_methods
                          else ("layers", layers, i - n_methods))
        arm, seed = grid[k % len(grid)], k // len(grid)
        config = {**base, **arm, "seed": seed, "epochs": 20}
        run = uuid.uuid4().hex
        runs.append(dict(run_uuid=run, name=f"trial_{i:05d}", source_type="LOCAL",
                         source_name="", entry_point_name="", user_id="bench",
                         status=tr.FINISHED, start_time=now + i, end_time=now + i + 60_000,
                         source_version="", lifecycle_stage="active",
                         artifact_uri=f"/tmp/none/{run}", experiment_id=int(experiment_id)))
        run_tags = {tr.TAG_PARENT: parents[space], tr.TAG_ROLE: tr.ROLE_TRIAL,
                    tr.TAG_SWEEP: f"{space}-1", tr.TAG_SPACE: space,
                    tr.TAG_ARM: f"lambda_au={arm['lambda_au']}", tr.TAG_GIT_COMMIT: COMMIT,
                    tr.TAG_EARLY_STOPPED: "false", tr.TAG_TUNE_STATUS: "TERMINATED",
                    tr.TAG_TRIAL_ID: f"t{i:05d}", "mlflow.runName": f"trial_{i:05d}"}
        tags += [dict(key=k, value=v, run_uuid=run) for k, v in run_tags.items()]
        params += [dict(key=k, value=v, run_uuid=run)
                   for k, v in tr.param_values(config).items()]
        gain = 0.05 * arm["lambda_au"] / 4
        values = {"test_cl": 60 + 10 * rng.random() + 2 * gain,
                  "test_cam_cos": 0.4 + 0.1 * rng.random() + gain,
                  "test_att_cos": 0.5 + 0.1 * rng.random() + gain, "test_n_invalid": 0.0,
                  "best_val_cl": 60 + 10 * rng.random(), "best_epoch": float(rng.randint(5, 20))}
        values |= {f"test_att_cos_l{layer}": values["test_att_cos"]
                   for layer in arm["layers"].split("+")}
        metrics += [dict(key=k, value=v, timestamp=now, step=20, is_nan=False, run_uuid=run)
                    for k, v in values.items()]
    return runs, tags, params, metrics


def write_runs(uri: str, n: int, artifacts: Path, seed: int = 0) -> float:
    """Create the experiment with its two parent runs and ``n`` trial runs; seconds taken."""
    from mlflow import MlflowClient
    from mlflow.store.tracking.dbmodels import models as m
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    start = time.perf_counter()
    store = SqlAlchemyStore(uri, str(artifacts))  # creates or migrates the schema
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())
    parents = {space: client.create_run(exp, tags={
        tr.TAG_ROLE: tr.ROLE_PARENT, tr.TAG_SPACE: space, tr.TAG_SWEEP: f"{space}-1"}
        ).info.run_id for space in ("methods", "layers")}
    runs, tags, params, metrics = trial_rows(n, exp, parents, random.Random(seed))
    with store.engine.begin() as conn:
        for model, rows in ((m.SqlRun, runs), (m.SqlTag, tags), (m.SqlParam, params),
                            (m.SqlMetric, metrics), (m.SqlLatestMetric, metrics)):
            for i in range(0, len(rows), CHUNK):
                conn.execute(insert(model.__table__), rows[i:i + CHUNK])
    store.engine.dispose()
    return time.perf_counter() - start


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``python -m <cmd>``. The CPU time is the steadier figure
    on a shared machine: the wall time also counts waiting for a core."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *cmd], cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"python -m {' '.join(cmd[:3])} failed ({done.returncode}): "
                         f"{done.stderr.strip()[-1500:]}")
    return took, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_backend(name: str, uri: str, n: int, folder: Path, serve: bool = False) -> float:
    """Write ``n`` runs into the database ``uri``, then time the analysis commands on it
    (``serve``: through an MLflow server on it)."""
    from tuner.tracking import server
    from tuner.tracking.redact import redact

    wrote = write_runs(uri, n, folder / "artifacts")
    print(f"\n== {name}: {n} trial runs written in {wrote:.1f} s ({redact(uri)})", flush=True)
    if not serve:
        return time_commands(uri, folder)
    from devdb import free_port

    config = server.resolve_config(uri, str(folder / "artifacts"), port=free_port(), cwd=folder)
    with open(folder / "server.log", "wb") as log, server.start(config, log) as srv:
        print(f"  read through the MLflow server at {srv.url}", flush=True)
        return time_commands(srv.url, folder)


def time_commands(uri: str, folder: Path) -> float:
    """Each analysis command on ``uri``, timed and printed; the total wall seconds."""
    source = ["--experiment", EXPERIMENT, "--mlflow-uri", uri]
    commands = {f"analysis.tables --table {t}": [
        "analysis.tables", *source, "--where", f"space={'layers' if t == 3 else 'methods'}",
        "--table", str(t), "-o", str(folder / f"table{t}.md")] for t in (1, 2, 3)}
    commands["analysis.report (all tables and figures)"] = [
        "analysis.report", *source, "--no-progress", "-o", str(folder / "report")]
    total = total_cpu = 0.0
    for label, cmd in commands.items():
        took, cpu = timed(cmd, folder)
        total, total_cpu = total + took, total_cpu + cpu
        print(f"  {label}: {took:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    print(f"  total: {total:.1f} s wall, {total_cpu:.1f} s CPU", flush=True)
    return total


def main(argv: list[str] | None = None) -> int:
    from devdb import LocalPostgres

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--backends", default=",".join(BACKENDS))
    args = p.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.runs < 1 or not backends or set(backends) - set(BACKENDS):
        p.error(f"--runs ≥ 1; --backends: some of {','.join(BACKENDS)}")
    totals = {}
    with tempfile.TemporaryDirectory(prefix="ascale") as tmp:
        for name in backends:
            folder = Path(tmp) / name
            folder.mkdir()
            if name == "sqlite":
                totals[name] = run_backend(name, f"sqlite:///{folder / 'mlflow.db'}", args.runs,
                                           folder)
            else:
                with LocalPostgres(databases=("mlflow",)) as pg:
                    totals[name] = run_backend(name, pg.uri("mlflow"), args.runs, folder,
                                               serve=name == "http")
    if databases := [totals[b] for b in backends if b != "http"]:
        print(f"analysis_10k_runs_s={max(databases):.1f}")
    if "http" in totals:
        print(f"analysis_10k_runs_http_s={totals['http']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
