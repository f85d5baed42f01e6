"""Concurrent trials against one tracking server: PostgreSQL, then SQLite, under the same load.

    python bench/tracking_load.py                        # 32 writers, own throwaway PostgreSQL
    python bench/tracking_load.py --writers 8 --epochs 10 --backends postgresql
    python bench/tracking_load.py --restart-after 5 --down-s 3   # PostgreSQL restarted mid-load
    python bench/tracking_load.py --backend-store-uri postgresql://user:pw@db/mlflow_bench

Each writer is a process simulating one trial through the project's own ``TrialTracker`` (queue,
journal, background delivery): it attaches its run, logs ``--metrics`` metrics for each of
``--epochs`` epochs, one small artifact, and ends the run. All writers talk to one ``mlflow
server`` with ``--workers`` workers; the back end is a PostgreSQL database (a throwaway cluster
from ``bench/devdb.py`` unless ``--backend-store-uri`` names one) or a SQLite file.

Per back end it prints the operations delivered per second (all writers, from the first to the
last delivery), each operation's p50/p95 delivery latency (one HTTP request: the server's
work plus queueing behind the other writers), and what the store holds afterwards, counted
with SQL: metric steps lost (expected but absent) and duplicated (a (run, key, step) stored
twice), runs per trial, artifacts missing, operations the trackers could not deliver.
With ``--restart-after`` the PostgreSQL server is stopped that many seconds into the load,
kept down ``--down-s``, and started again; the time until the tracking server answers a query
from the database again is printed as ``recover_s``. The last line is
``tracking_lost_steps=<n>`` for PostgreSQL (the bar: 0).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKENDS = ("postgresql", "sqlite")
SWEEP = "load"


@dataclass(frozen=True)
class Load:
    writers: int
    epochs: int
    metrics: int
    epoch_s: float

    def metric_names(self) -> list[str]:
        return [f"m{i:02d}" for i in range(self.metrics)]


# ---------------------------------------------------------------- one writer (a process)
def writer(index: int, target: Any, load: Load, folder: str, ready: Any, go: Any,
           out: Any) -> None:
    """One simulated trial; puts {op: [delivery seconds]}, undelivered count, times on ``out``."""
    import logging

    from tuner.tracking.client import fail_fast_http
    from tuner.tracking.tracker import TrialTracker

    logging.basicConfig(level=logging.ERROR)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - MLflow prints a line per ended run
    fail_fast_http()  # as in a real trial: the tracker retries, one request gives up fast
    trial_id = f"w{index:03d}"
    tracker = TrialTracker(target, trial_id, Path(folder) / trial_id)
    timings: dict[str, list[float]] = {}
    marks: list[float] = []
    send = tracker._delivery.send  # timed per operation: the bench's only look inside

    failed = [0]

    def timed_send(op: dict) -> None:
        start = time.perf_counter()
        try:
            send(op)  # a failure is retried by the tracker, and timed again then
        except Exception:
            failed[0] += 1
            raise
        timings.setdefault(op["op"], []).append(time.perf_counter() - start)
        marks.append(time.time())

    tracker._delivery.send = timed_send
    # One request before the clock starts: MLflow's client imports its REST layer lazily.
    tracker._delivery.client.get_experiment(target.experiment_id)
    ready.put(index)
    go.wait()
    tracker.attach(f"trial_{trial_id}", {}, {"writer": str(index), "epochs": str(load.epochs)})
    names = load.metric_names()
    for epoch in range(1, load.epochs + 1):
        tracker.log_metrics({k: epoch + i / 100 for i, k in enumerate(names)}, step=epoch)
        if load.epoch_s:
            time.sleep(load.epoch_s)
    staged = tracker.staging_dir()
    note = staged / "summary.json"
    note.write_text(f'{{"writer": {index}}}')
    tracker.log_artifacts({"model": [note]}, staged)
    tracker.end("FINISHED")
    left = tracker.close(timeout=600)
    out.put({"timings": timings, "left": left, "failed": failed[0],
             "first": min(marks, default=0.0), "last": max(marks, default=0.0)})


# ---------------------------------------------------------------- one back end
def run_backend(name: str, uri: str, load: Load, workers: int, folder: Path,
                restart: Any = None) -> dict[str, Any]:
    from tuner.tracking import client as runs
    from tuner.tracking import server

    config = server.resolve_config(uri, str(folder / "artifacts"), workers=workers,
                                   port=_free_port(), cwd=folder)
    with open(folder / "server.log", "wb") as log, server.start(config, log) as srv:
        client = runs.MlflowClient(tracking_uri=srv.url)
        exp = runs.ensure_experiment(client, f"load-{name}", srv.url)
        parent = runs.start_parent(client, exp, SWEEP, {}, {})
        target = runs.TrackingTarget(srv.url, exp, parent, SWEEP, "load")
        ctx = mp.get_context("spawn")  # fresh interpreters: no HTTP session shared by a fork
        ready, go, out = ctx.Queue(), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=writer,
                             args=(i, target, load, str(folder / "w"), ready, go, out))
                 for i in range(load.writers)]
        try:
            for p in procs:
                p.start()
            _gather(ready, procs)  # all imported and connected: the timing starts at `go`
            start = time.time()
            go.set()
            recover_s = restart(srv.url, client, exp) if restart else None
            results = _gather(out, procs)
        except BaseException:
            for p in procs:
                if p.pid is not None:
                    p.terminate()  # none is left behind by a failed load
            raise
        finally:
            for p in procs:
                if p.pid is not None:
                    p.join()
        wall = time.time() - start
    store = count_store(uri, exp, load, folder / "artifacts")
    timings: dict[str, list[float]] = {}
    for r in results:
        for op, values in r["timings"].items():
            timings.setdefault(op, []).extend(values)
    ops = sum(len(v) for v in timings.values())
    span = max(r["last"] for r in results) - min(r["first"] for r in results)
    return dict(backend=name, wall_s=wall, ops=ops, ops_per_s=ops / span if span else 0.0,
                latency={op: (_pct(v, 50), _pct(v, 95)) for op, v in sorted(timings.items())},
                undelivered=sum(r["left"] for r in results), recover_s=recover_s,
                failed_attempts=sum(r["failed"] for r in results), **store)


def count_store(uri: str, experiment_id: str, load: Load, artifacts: Path) -> dict[str, int]:
    """Lost/duplicated metric steps, runs per trial and artifacts, read from the store."""
    import sqlalchemy

    from tuner.tracking import schema as tr

    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.NullPool)
    q_runs = sqlalchemy.text(
        "select t.value, r.run_uuid, r.status from runs r join tags t "
        "on t.run_uuid = r.run_uuid and t.key = :k where r.experiment_id = :e")
    q_steps = sqlalchemy.text(
        "select m.run_uuid, m.key, m.step, count(*) from metrics m join runs r "
        "on r.run_uuid = m.run_uuid where r.experiment_id = :e group by m.run_uuid, m.key, m.step")
    with engine.connect() as conn:
        trial_runs = conn.execute(q_runs, {"e": int(experiment_id), "k": tr.TAG_TRIAL_ID}).all()
        steps = conn.execute(q_steps, {"e": int(experiment_id)}).all()
    engine.dispose()
    trial_of = {run: trial for trial, run, _ in trial_runs}
    present = {(trial_of[run], key, step) for run, key, step, _ in steps if run in trial_of}
    expected = {(f"w{i:03d}", k, s) for i in range(load.writers) for k in load.metric_names()
                for s in range(1, load.epochs + 1)}
    duplicated = sum(n - 1 for *_, n in steps)
    duplicated += len([1 for run, key, step, _ in steps if run in trial_of]) - len(present)
    unfinished = sum(1 for *_, status in trial_runs if status != tr.FINISHED)
    # The server proxies artifacts into --artifacts-destination, which this bench chose.
    missing = sum(1 for _, run, _ in trial_runs
                  if not any(artifacts.glob(f"*/{run}/artifacts/model/summary.json")))
    return dict(lost_steps=len(expected - present), duplicated_steps=duplicated,
                trial_runs=len(trial_runs), extra_runs=len(trial_runs) - load.writers,
                unfinished_runs=unfinished, missing_artifacts=missing)


# ---------------------------------------------------------------- the PostgreSQL fault
def restart_fault(pg: Any, after_s: float, down_s: float):
    """A ``restart`` hook: stop PostgreSQL ``after_s`` into the load, start it ``down_s``
    later; returns seconds from the stop until the tracking server reads the store again.

    The load starts when the first writer's run is in the store, not when the writers are
    told to go: on a busy machine their imports may still take seconds, and a restart before
    any write would test nothing."""

    from tuner.tracking import schema as tr

    trials = tr.tag_filter({tr.TAG_ROLE: tr.ROLE_TRIAL})  # the parent run is there before

    def hook(url: str, client: Any, experiment_id: str) -> float:
        deadline = time.monotonic() + 600
        while not client.search_runs([experiment_id], trials, max_results=1):
            if time.monotonic() > deadline:
                raise RuntimeError("no writer started its run within 10 minutes")
            time.sleep(0.1)
        time.sleep(after_s)
        stopped = time.monotonic()
        pg.restart(down_s=down_s, mode="fast")
        while True:
            try:
                client.get_experiment(experiment_id)
                return time.monotonic() - stopped
            except Exception:  # noqa: BLE001 - any failure means not recovered yet
                time.sleep(0.1)

    return hook


# ---------------------------------------------------------------- helpers and output
def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _free_port() -> int:
    from devdb import free_port

    return free_port()


def _gather(queue: Any, procs: list[Any], timeout_s: float = 1800) -> list[Any]:
    """One item from each writer; a writer that died instead is an error, not a hang."""
    import queue as q

    items: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(items) < len(procs):
        try:
            items.append(queue.get(timeout=1))
        except q.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"writers failed (exit codes {dead}): see their tracebacks "
                                   "above") from None
    return items


def report(r: dict[str, Any], load: Load, workers: int) -> None:
    print(f"\n== {r['backend']}: {load.writers} writers × {load.epochs} epochs × "
          f"{load.metrics} metrics + 1 artifact, mlflow server --workers {workers}")
    print(f"  delivered {r['ops']} operations in {r['wall_s']:.1f} s: "
          f"{r['ops_per_s']:.1f} ops/s ({r['ops_per_s'] * load.metrics:.0f} metric values/s)")
    for op, (p50, p95) in r["latency"].items():
        print(f"  {op:<10} p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms")
    if r["recover_s"] is not None:
        print(f"  PostgreSQL restarted mid-load: recover_s={r['recover_s']:.1f}")
    print(f"  store: lost_steps={r['lost_steps']} duplicated_steps={r['duplicated_steps']} "
          f"trial_runs={r['trial_runs']} (extra {r['extra_runs']}) "
          f"unfinished={r['unfinished_runs']} missing_artifacts={r['missing_artifacts']} "
          f"undelivered_ops={r['undelivered']}", flush=True)
    print(f"  failed attempts, retried by the trackers: {r['failed_attempts']}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--writers", type=int, default=32)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--metrics", type=int, default=20)
    p.add_argument("--epoch-s", type=float, default=0.0,
                   help="seconds of simulated training per epoch (default 0: back to back)")
    p.add_argument("--workers", type=int, default=4, help="mlflow server workers")
    p.add_argument("--backends", default="postgresql,sqlite",
                   help=f"comma-separated, in order (default postgresql,sqlite; of {BACKENDS})")
    p.add_argument("--backend-store-uri", help="an existing PostgreSQL database (default: a "
                   "throwaway cluster); its runs are added to an experiment load-postgresql")
    p.add_argument("--restart-after", type=float, help="restart PostgreSQL after S seconds")
    p.add_argument("--down-s", type=float, default=3.0, help="how long it stays down")
    args = p.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if unknown := set(backends) - set(BACKENDS):
        p.error(f"--backends {','.join(sorted(unknown))}: choose from {','.join(BACKENDS)}")
    if min(args.writers, args.epochs, args.metrics, args.workers) < 1:
        p.error("--writers, --epochs, --metrics and --workers must be at least 1")
    if args.restart_after is not None and args.backend_store_uri:
        p.error("--restart-after restarts the bench's own PostgreSQL: drop --backend-store-uri")
    args.backends = backends
    return args


def main(argv: list[str] | None = None) -> int:
    from devdb import LocalPostgres

    from tuner.tracking.redact import redact

    args = parse_args(argv)
    load = Load(args.writers, args.epochs, args.metrics, args.epoch_s)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="trackload") as tmp:
        for name in args.backends:
            folder = Path(tmp) / name
            folder.mkdir()
            if name == "sqlite":
                results[name] = run_backend(name, f"sqlite:///{folder / 'mlflow.db'}", load,
                                            args.workers, folder)
            elif args.backend_store_uri:
                print(f"PostgreSQL: {redact(args.backend_store_uri)}")
                results[name] = run_backend(name, args.backend_store_uri, load, args.workers,
                                            folder)
            else:
                with LocalPostgres(databases=("mlflow",)) as pg:
                    print(f"PostgreSQL: throwaway cluster at {pg.uri(password=False)}")
                    hook = (restart_fault(pg, args.restart_after, args.down_s)
                            if args.restart_after is not None else None)
                    results[name] = run_backend(name, pg.uri("mlflow"), load, args.workers,
                                                folder, hook)
            report(results[name], load, args.workers)
    if "postgresql" in results:
        print(f"tracking_lost_steps={results['postgresql']['lost_steps']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
