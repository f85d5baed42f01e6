"""A corpus of bad inputs, each given to a real CLI.

For every case: the exit code, one ``error:`` line naming the offending value, no traceback, a
bounded time, and nothing left behind: no RUNNING MLflow run in the case's store, no process of
the case still alive (matched by the case's folder, which holds its Ray temp dir, by the session
the case's process led, and by the children it left to this process).

Most cases call the command's ``main(argv)`` in this process: a fresh interpreter would add only
its imports (torch, timm, Ray, MLflow: seconds to tens of seconds on a busy 2-core machine).
What only a process shows, ``python -m <command>`` ending with the status ``main`` returned,
is checked by one case per command run as its own process (``process=True``), and by the
sweep cases that start a local Ray, whose processes must all be gone when the command ends.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest
from helpers import free_port

from fer_core import CLASSES

LIMIT_S = 240  # no case may take longer (a hang fails the test instead of blocking CI)
PROJECT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # after ``python -m``; {d} is the corpus folder, {c} the case's own
    code: int
    names: str  # the offending value, as the message must show it ({d}/{c} formatted)
    process: bool = False  # run as ``python -m`` in its own process (else ``main`` in this one)
    lists: Callable[[], Iterable[str]] | None = None  # the valid values the message must list

    @property
    def slow(self) -> bool:
        """A case in its own process pays for importing torch, timm, Ray or MLflow again."""
        return self.process


def table_numbers() -> list[str]:
    from analysis.tables import TABLES

    return [str(n) for n in TABLES]


def sweep(*args: str) -> tuple[str, ...]:
    """A sweep command at smoke sizes writing only inside the case's folder."""
    return ("tuner.sweep", "--smoke-test", "--space", "smoke", "--storage-path", "{c}/rr",
            "--mlflow-uri", "sqlite:///{c}/mlflow.db", *args)


PREVIEW = ("fer_core.data", "preview", "-o", "{c}/grid.png")
LANDMARKS = ("fer_core.data.landmarks", "--workers", "1", "--no-progress")
TRAIN = ("fer_core.train", "--out", "{c}/out", "--no-progress")
EXPLAIN = ("fer_core.explain", "--no-progress")
TABLES = ("analysis.tables", "--table", "1")

CASES = [
    # fer_core.data preview: images, layouts, names, numbers
    Case("preview-n-0", (*PREVIEW, "--dataset", "synthetic", "-n", "0"), 2, "-n 0",
         process=True),
    Case("preview-size-4", (*PREVIEW, "--dataset", "synthetic", "--size", "4"), 2, "--size 4"),
    Case("preview-unknown-option", (*PREVIEW, "--dataset", "synthetic", "--option", "bogus=1"),
         2, "bogus"),
    Case("preview-unknown-dataset", (*PREVIEW, "--dataset", "fer2013"), 2, "fer2013"),
    Case("preview-unknown-split", (*PREVIEW, "--dataset", "synthetic", "--split", "dev"), 2,
         "dev"),
    Case("preview-unknown-variant", (*PREVIEW, "--dataset", "synthetic", "--variant", "nope"),
         2, "nope"),
    Case("preview-missing-root", (*PREVIEW, "--dataset", "rafdb", "--root", "{d}/nowhere"), 2,
         "{d}/nowhere"),
    Case("preview-folder-without-lists", (*PREVIEW, "--dataset", "folder", "--root", "{d}/empty"),
         2, "train.csv"),
    Case("preview-all-images-bad", (*PREVIEW, "--dataset", "folder", "--root", "{d}/allbad"), 2,
         "{d}/allbad"),
    Case("preview-rafdb-no-label-file", (*PREVIEW, "--dataset", "rafdb", "--root",
                                         "{d}/raf_nolabels"), 2, "list_patition_label.txt"),
    Case("preview-rafdb-bad-code", (*PREVIEW, "--dataset", "rafdb", "--root", "{d}/raf_badcode"),
         2, "'9'"),
    Case("preview-folder-unknown-label", (*PREVIEW, "--dataset", "folder", "--root",
                                          "{d}/badlabel"), 2, "Bored"),
    Case("preview-rafdb-unknown-images", (*PREVIEW, "--dataset", "rafdb", "--root",
                                          "{d}/raf_badcode", "--option", "images=thumbs"),
         2, "thumbs"),
    Case("preview-unknown-format", ("fer_core.data", "preview", "--dataset", "synthetic", "-n",
                                    "2", "-o", "{c}/grid.xyz"), 2, "xyz"),
    # landmark extraction
    Case("landmarks-all-images-bad", (*LANDMARKS, "--dataset", "folder", "--root", "{d}/allbad"),
         2, "{d}/allbad", process=True),
    Case("landmarks-workers-0", (*LANDMARKS[:1], "--workers", "0", "--dataset", "folder",
                                 "--root", "{d}/allbad"), 2, "--workers 0"),
    Case("landmarks-missing-root", (*LANDMARKS, "--dataset", "rafdb", "--root", "{d}/nowhere"),
         2, "{d}/nowhere"),
    Case("landmarks-unknown-option", (*LANDMARKS, "--dataset", "folder", "--root", "{d}/allbad",
                                      "--option", "crop=1"), 2, "crop"),
    Case("landmarks-missing-import-file", (*LANDMARKS, "--dataset", "folder", "--root",
                                           "{d}/allbad", "--import", "{d}/nowhere.csv"),
         2, "{d}/nowhere.csv"),
    # fer_core.train
    Case("train-unknown-field", (*TRAIN, "--set", "lamda_au=4"), 2, "lambda_au", process=True),
    Case("train-epochs-0", (*TRAIN, "--set", "epochs=0"), 2, "epochs=0"),
    Case("train-cuda-without-gpu", (*TRAIN, "--set", "device=cuda:7"), 2, "cuda:7"),
    Case("train-resume-without-checkpoint", (*TRAIN, "--resume"), 2, "{c}/out/checkpoint.pt"),
    Case("train-override-without-value", (*TRAIN, "--set", "bogus"), 2, "bogus"),
    Case("train-unknown-method", (*TRAIN, "--set", "method=nosuch"), 2, "nosuch"),
    Case("train-dataset-without-root", (*TRAIN, "--set", "dataset=rafdb"), 2, "dataset=rafdb"),
    Case("train-out-is-a-file", ("fer_core.train", "--out", "{d}/afile"), 2, "{d}/afile"),
    # fer_core.explain
    Case("explain-missing-checkpoint", (*EXPLAIN, "{d}/corrupt.jpg", "--checkpoint",
                                        "{d}/nowhere.pt", "-o", "{c}/x.png"), 2, "{d}/nowhere.pt",
         process=True),
    Case("explain-missing-image", (*EXPLAIN, "{d}/gone.png", "--checkpoint", "{d}/nowhere.pt",
                                   "-o", "{c}/x.png"), 2, "gone.png"),
    Case("explain-cuda-without-gpu", (*EXPLAIN, "{d}/text.jpg", "--checkpoint", "{d}/nowhere.pt",
                                      "-o", "{c}/x.png", "--device", "cuda:7"), 2, "cuda:7"),
    Case("explain-unknown-format", (*EXPLAIN, "{d}/text.jpg", "--checkpoint", "{d}/nowhere.pt",
                                    "-o", "{c}/x.xyz"), 2, "xyz"),
    Case("explain-unknown-class", (*EXPLAIN, "{d}/text.jpg", "--checkpoint", "{d}/nowhere.pt",
                                   "-o", "{c}/x.png", "--class", "Bored"), 2, "Bored"),
    # analysis
    Case("tables-unreachable-server", (*TABLES, "--experiment", "x", "--mlflow-uri",
                                       "http://127.0.0.1:{port}"), 2, "127.0.0.1:{port}",
         process=True),
    Case("tables-missing-store", (*TABLES, "--experiment", "x", "--mlflow-uri",
                                  "sqlite:///{d}/nowhere.db"), 2, "{d}/nowhere.db"),
    Case("tables-unknown-experiment", (*TABLES, "--experiment", "nope", "--mlflow-uri",
                                       "sqlite:///{d}/store.db"), 2, "nope"),
    Case("tables-no-trial-runs", (*TABLES, "--experiment", "foreign", "--mlflow-uri",
                                  "sqlite:///{d}/store.db"), 2, "1 not a run of this project"),
    Case("tables-unknown-table", ("analysis.tables", "--table", "9", "--experiment", "x"), 2,
         "9", lists=table_numbers),
    Case("figures-unknown-format", ("analysis.figures", "--experiment", "x", "--format", "gif",
                                    "-o", "{c}/figs"), 2, "gif", process=True),
    Case("report-unreachable-server", ("analysis.report", "--experiment", "x", "--mlflow-uri",
                                       "http://127.0.0.1:{port}", "-o", "{c}/r"), 2,
         "127.0.0.1:{port}", process=True),
    # cluster configs
    Case("cluster-check-missing-file", ("tuner.cluster.check", "{d}/nowhere.yaml"), 2,
         "{d}/nowhere.yaml", process=True),
    Case("cluster-check-not-yaml", ("tuner.cluster.check", "{d}/bad.yaml"), 1, "{d}/bad.yaml"),
    # the tracking server and the journal replay
    Case("mlflow-server-port-out-of-range", ("tuner.mlflow_server", "--port", "99999",
                                             "--dry-run"), 2, "99999", process=True),
    Case("mlflow-replay-missing-journal", ("tuner.mlflow_replay", "{d}/nowhere.jsonl"), 2,
         "{d}/nowhere.jsonl", process=True),
    # tuner.sweep: usage, data preflight, connections, resources
    Case("sweep-max-concurrent-0", sweep("--max-concurrent", "0"), 2, "--max-concurrent: 0",
         process=True),
    Case("sweep-unknown-field", sweep("--set", "lamda_au=3"), 2, "lambda_au"),
    Case("sweep-unknown-space", ("tuner.sweep", "--space", "nosuch"), 2, "nosuch"),
    Case("sweep-missing-root", sweep("--dataset", "rafdb", "--data-root", "{d}/nowhere"), 2,
         "{d}/nowhere"),
    Case("sweep-all-images-bad", sweep("--dataset", "folder", "--data-root", "{d}/allbad"), 2,
         "{c}/rr/data_cache/preflight-folder.txt"),
    Case("sweep-class-missing", sweep("--dataset", "folder", "--data-root", "{d}/noclass"), 2,
         "Disgust"),
    Case("sweep-unreachable-address", sweep("--address", "127.0.0.1:{port}"), 2,
         "127.0.0.1:{port}"),
    Case("sweep-unreachable-mlflow", sweep("--mlflow-uri", "http://127.0.0.1:{port}"), 2,
         "127.0.0.1:{port}"),
    Case("sweep-store-folder-missing", sweep("--mlflow-uri", "sqlite:///{d}/nowhere/m.db"), 2,
         "{d}/nowhere"),
    # these two start a local Ray: its processes must be gone when the command ends
    Case("sweep-too-many-gpus", sweep("--gpus-per-trial", "64", "--num-cpus", "1"), 2,
         "--gpus-per-trial 64", process=True),
    Case("sweep-too-many-cpus", sweep("--cpus-per-trial", "4096", "--num-cpus", "1"), 2,
         "--cpus-per-trial 4096", process=True),
    Case("sweep-resume-unknown", sweep("--resume", "--name", "nosuch"), 2, "nosuch"),
]


def write_list(root: Path, split: str, rows: list[tuple[str, str]]) -> None:
    with (root / f"{split}.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["path", "label"])
        out.writerows(rows)


def bad_files(folder: Path) -> list[Path]:
    """A corrupt JPEG (valid marker, garbage after), a zero-byte file, text named .jpg."""
    folder.mkdir(parents=True, exist_ok=True)
    corrupt, empty, text = folder / "corrupt.jpg", folder / "zero.jpg", folder / "text.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200))
    empty.write_bytes(b"")
    text.write_text("this is a text file, not a JPEG\n")
    return [corrupt, empty, text]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad-inputs")
    bad = bad_files(d)
    # A folder dataset where every listed image is bad.
    allbad = d / "allbad"
    files = bad_files(allbad / "img")
    rows = [(str(files[i % 3].relative_to(allbad)), c) for i, c in enumerate(CLASSES * 2)]
    write_list(allbad, "train", rows)
    write_list(allbad, "test", rows)
    # Readable images, but no training image of Disgust.
    noclass = d / "noclass"
    (noclass / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, name in enumerate(CLASSES * 3):
        cv2.imwrite(str(noclass / "img" / f"{i}.png"), rng.integers(0, 255, (32, 32, 3), np.uint8))
        rows.append((f"img/{i}.png", name))
    write_list(noclass, "train", [r for r in rows if r[1] != "Disgust"])
    write_list(noclass, "test", rows)
    (d / "empty").mkdir()
    badlabel = d / "badlabel"
    badlabel.mkdir()
    write_list(badlabel, "train", [("../corrupt.jpg", "Bored")])
    write_list(badlabel, "test", [("../corrupt.jpg", "Happiness")])
    (d / "raf_nolabels" / "Image" / "aligned").mkdir(parents=True)
    raf = d / "raf_badcode"
    (raf / "Image" / "aligned").mkdir(parents=True)
    (raf / "EmoLabel").mkdir()
    (raf / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 9\n")
    shutil.copy(bad[0], raf / "Image" / "aligned" / "train_00001_aligned.jpg")
    (d / "afile").write_text("not a folder\n")
    (d / "bad.yaml").write_text("cluster_name: [unclosed\n")
    # A store whose only run is not of the project's schema.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{d}/store.db")
    run = client.create_run(client.create_experiment("foreign"))
    client.set_terminated(run.info.run_id)
    return d


def leftovers(case_dir: Path, session: int | None) -> list[str]:
    """Processes still alive that belong to the case (its folder in their command line, or
    the session the case's process led)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            sid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, ValueError, IndexError):
            continue
        if str(case_dir) in cmdline or sid == session:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def running_runs(case_dir: Path) -> int:
    """RUNNING runs in every sqlite MLflow store the case wrote."""
    count = 0
    for db in case_dir.rglob("*.db"):
        with sqlite3.connect(db) as con:
            tables = {r[0] for r in con.execute("select name from sqlite_master")}
            if "runs" in tables:
                count += con.execute(
                    "select count(*) from runs where status='RUNNING'").fetchone()[0]
    return count


@dataclass(frozen=True)
class Ran:
    """What a case did: its exit code and output, how long it took, where it ran."""

    code: int
    stdout: str
    stderr: str
    took: float
    case_dir: Path
    session: int | None  # the session its process led (None: it ran in this process)
    fill: dict[str, str]


def case_env(case_dir: Path) -> dict[str, str]:
    """What a case's command sees besides the inherited environment."""
    return {"RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": str(case_dir / "ray"),
            "FER_CACHE": str(case_dir / "cache"), "PYTHONPATH": str(PROJECT)}


def in_process(argv: list[str], case_dir: Path, capsys) -> tuple[int, str, str]:
    """``python -m argv[0] argv[1:]`` as the command's ``main(argv)`` in this process, in the
    case's folder and environment, within ``LIMIT_S``; its exit code and output."""
    module = argv[0] if argv[0] != "fer_core.data" else "fer_core.data.__main__"

    def hung(*_):
        raise TimeoutError(f"{argv[0]}: no answer within {LIMIT_S} s")

    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp, contextlib.ExitStack() as stack:
        mp.chdir(case_dir)
        for name, value in case_env(case_dir).items():
            mp.setenv(name, value)
        mp.delenv("FER_DEBUG", raising=False)
        previous = signal.signal(signal.SIGALRM, hung)
        stack.callback(signal.signal, signal.SIGALRM, previous)
        stack.callback(signal.alarm, 0)
        signal.alarm(LIMIT_S)
        try:
            code = importlib.import_module(module).main(argv[1:])
        except SystemExit as done:  # argparse's usage errors
            code = done.code if isinstance(done.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def run_case(case: Case, corpus: Path, capsys) -> Ran:
    """Run one case in a fresh folder: in this process, or in its own process and session."""
    case_dir = Path(tempfile.mkdtemp(prefix="bi", dir="/tmp"))  # short: Ray's socket paths
    port = free_port()
    fill = {"d": str(corpus), "c": str(case_dir), "port": str(port)}
    argv = [a.format(**fill) for a in case.argv]
    began = time.monotonic()
    if not case.process:
        code, out, err = in_process(argv, case_dir, capsys)
        return Ran(code, out, err, time.monotonic() - began, case_dir, None, fill)
    env = {**os.environ, **case_env(case_dir)}
    env.pop("FER_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=case_dir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        pytest.fail(f"{case.id}: no answer within {LIMIT_S} s\n{err[-2000:]}")
    return Ran(proc.returncode, out, err, time.monotonic() - began, case_dir, proc.pid, fill)


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.slow(
        reason="its own interpreter imports torch, Ray or MLflow again")] * c.slow)
    for c in CASES])
def test_bad_input_fails_clearly(case: Case, corpus: Path, capsys):
    before = children()
    result = run_case(case, corpus, capsys)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-3000:]
    assert result.code == case.code, output[-3000:]
    name = case.names.format(**result.fill)
    if case.code == 2:
        lines = [line for line in result.stderr.splitlines()
                 if line.startswith("error:") or ": error: " in line]
        assert len(lines) == 1, result.stderr[-3000:]
        assert name in lines[0], lines[0]
        if case.lists:  # every valid value, in the order the command knows them
            assert ", ".join(case.lists()) in lines[0], lines[0]
    else:
        assert name in output, output[-3000:]
    deadline = time.monotonic() + 15  # a local Ray's processes take a few seconds to go
    while ((alive := leftovers(result.case_dir, result.session) + sorted(children() - before))
           and time.monotonic() < deadline):
        time.sleep(0.2)
    assert not alive, alive
    assert running_runs(result.case_dir) == 0
    if case.argv[0] == "tuner.sweep":  # stopped before the MLflow store or a sweep folder existed
        assert not (result.case_dir / "mlflow.db").exists()
        assert not [p for p in (result.case_dir / "rr").glob("*") if p.name != "data_cache"]
    print(f"{case.id}: exit {result.code} in {result.took:.1f} s")
    shutil.rmtree(result.case_dir, ignore_errors=True)


def test_every_command_is_checked_as_its_own_process():
    assert {c.argv[0] for c in CASES if c.process} == {c.argv[0] for c in CASES}


def test_the_corpus_is_large_and_varied():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    commands = {c.argv[0] for c in CASES}
    assert {"tuner.sweep", "fer_core.train", "fer_core.data", "fer_core.data.landmarks",
            "fer_core.explain", "analysis.tables", "tuner.cluster.check"} <= commands


def run_sweep(args: list[str], folder: Path, limit: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(PROJECT)}
    return subprocess.run([sys.executable, "-m", "tuner.sweep", "--smoke-test", "--space", "smoke",
                           "--storage-path", str(folder / "rr"),
                           "--mlflow-uri", f"sqlite:///{folder}/mlflow.db", *args],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=limit)


@pytest.mark.slow(reason="a sweep in its own process, every trial failing through its retries")
def test_a_sweep_whose_every_trial_fails_exits_1_and_lists_them(tmp_path):
    # fail_at_epoch=1 fails before the first checkpoint, so every retry fails again.
    run = run_sweep(["--trials", "1", "--num-cpus", "1", "--set", "fail_at_epoch=1"], tmp_path)
    assert run.returncode == 1, run.stderr[-3000:]
    summary = run.stderr[run.stderr.index("trial(s) FAILED"):]
    assert "1 trial(s) FAILED" in run.stderr
    assert "InjectedFault: fail_at_epoch=1" in summary and "error.txt" in summary
    log = Path(summary.split("log: ")[1].split()[0])
    assert log.is_file() and "InjectedFault" in log.read_text()
    assert running_runs(tmp_path) == 0
    assert "Resume:" in run.stdout


@pytest.mark.slow(reason="a sweep in its own process waits out --pending-timeout")
def test_a_request_no_node_offers_ends_after_the_pending_timeout(tmp_path, ray_runtime):
    # A cluster without autoscaler node types: whether a GPU node will come is not knowable
    # up front, so the sweep waits --pending-timeout seconds, then ends with a message.
    began = time.monotonic()
    run = run_sweep(["--trials", "1", "--address", ray_runtime, "--gpus-per-trial", "1",
                     "--pending-timeout", "5"], tmp_path, limit=LIMIT_S)
    assert run.returncode == 2, run.stderr[-3000:]
    assert "waiting for an autoscaler" in run.stdout
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--gpus-per-trial 1" in errors[0]
    assert "--pending-timeout" in errors[0] and "Traceback" not in run.stderr
    assert time.monotonic() - began < LIMIT_S
    assert running_runs(tmp_path) == 0


def test_a_few_bad_images_never_stop_a_sweep_and_are_listed(corpus, tmp_path):
    from fer_core.config import DataConfig
    from tuner.checks.preflight import PreflightError, PreflightRules, check_data

    root = tmp_path / "mixed"
    shutil.copytree(corpus / "noclass", root)
    rows = list(csv.reader((root / "train.csv").open()))[1:]
    write_list(root, "train", [*rows, ("../bad/zero.jpg", "Disgust"),
                               ("../bad/text.jpg", "Happiness")])
    bad_files(tmp_path / "bad")
    data = DataConfig(dataset="folder", data_root=str(root))
    with pytest.raises(PreflightError, match="no training image of class.*Disgust"):
        check_data(data, tmp_path / "cache", PreflightRules(max_missing_landmarks=1.0))
    summary = check_data(data, tmp_path / "cache",
                         PreflightRules(allow_missing_classes=True, max_missing_landmarks=1.0))
    report = tmp_path / "cache" / "preflight-folder.txt"
    assert "2 unreadable" in summary and str(report) in summary
    listed = report.read_text()
    assert "zero.jpg\tempty file" in listed and "text.jpg\tnot an image" in listed
    with pytest.raises(PreflightError, match="100% of the readable images.*no landmarks"):
        check_data(data, tmp_path / "cache", PreflightRules(allow_missing_classes=True))
