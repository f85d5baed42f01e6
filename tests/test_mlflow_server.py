"""``python -m tuner.mlflow_server``: a real ``mlflow server`` started, checked and stopped."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port
from mlflow import MlflowClient

from tuner.tracking import client as runs
from tuner.tracking import schema as tr
from tuner.tracking import server
from tuner.tracking.server import main


def listeners(port: int) -> list[str]:
    """Local addresses of the sockets listening on ``port`` (IPv4 and IPv6), from /proc."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


def server_environ(port: int) -> dict[str, str]:
    """The environment of the ``mlflow server`` process serving ``port``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"server" in cmd and b"--port" in cmd and str(port).encode() in cmd:
                raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                return dict(e.decode().split("=", 1) for e in raw if b"=" in e)
        except OSError:
            continue
    raise AssertionError(f"no mlflow server process for port {port}")


@pytest.mark.slow(reason="an MLflow server process and a sweep through it")
def test_cli_serves_on_loopback_only_takes_a_sweep_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tuner.mlflow_server", "--port", str(port)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        lines = []
        deadline = time.monotonic() + 180
        while not any("--mlflow-uri" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        assert f"python -m tuner.sweep --mlflow-uri {url}" in "".join(lines)
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
            assert r.status == 200
        assert listeners(port) == ["127.0.0.1"]  # loopback only, no IPv6 wildcard either
        assert server_environ(port)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"

        # What a sweep does against it: experiment, parent, trial run, metrics, an artifact.
        client = MlflowClient(tracking_uri=url)
        exp = runs.ensure_experiment(client, "team", url)
        parent = runs.start_parent(client, exp, "s", {tr.TAG_SPACE: "smoke"}, {})
        target = runs.TrackingTarget(url, exp, parent, "s", "smoke")
        run_id = runs.attach_trial_run(client, target, "t1", "trial_t1", {}, {"seed": "0"})
        runs.log_metrics(client, run_id, {"val_cl": 50.0}, step=1)
        note = tmp_path / "note.txt"
        note.write_text("selected")
        runs.log_artifacts(client, run_id, {"model": [note]})
        runs.end_run(client, run_id, tr.FINISHED)
        # Runs land in ./mlflow.db, artifacts in ./mlartifacts next to it (the defaults).
        with sqlite3.connect(tmp_path / "mlflow.db") as db:
            assert db.execute("select status from runs where run_uuid = ?",
                              (run_id,)).fetchone() == ("FINISHED",)
        assert [p.read_text() for p in (tmp_path / "mlartifacts").rglob("note.txt")] == [
            "selected"]

        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 0
        assert "stopped" in proc.stdout.read()
        assert listeners(port) == []  # the server and its worker are gone
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_port_in_use_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err and "--port" in err


@pytest.mark.parametrize("flag", ["--artifacts-destination", "--backend-store-uri"])
def test_unwritable_folder_is_a_clear_error(tmp_path, monkeypatch, capsys, flag):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made inside a file (root ignores modes)
    value = str(blocker / "sub") if flag == "--artifacts-destination" else (
        f"sqlite:///{blocker}/sub/mlflow.db")
    assert main([flag, value, "--port", str(free_port()), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the {'artifacts' if 'art' in flag else 'database'} folder" in err
    assert str(blocker / "sub") in err


def test_defaults_and_exposure_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    port = str(free_port())
    assert main(["--port", port, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # loopback: no warning
    assert out.startswith(f"MLFLOW_BACKEND_STORE_URI=sqlite:///{tmp_path}/mlflow.db ")
    assert (f"--host 127.0.0.1 --port {port} --workers 1 "
            f"--artifacts-destination {tmp_path}/mlartifacts") in out
    assert main(["--host", "0.0.0.0", "--port", port, "--dry-run", "--backend-store-uri",
                 "postgresql://fer:S3cret@db.example/mlflow", "--allowed-hosts", "mlflow.lan"]) == 0
    out, err = capsys.readouterr()
    assert "exposes the MLflow server" in err and "reverse proxy with authentication" in err
    assert "postgresql://***@db.example/mlflow" in out and "S3cret" not in out + err
    assert out.rstrip().endswith("--allowed-hosts mlflow.lan")  # passed through


def test_the_store_uri_reaches_the_server_by_its_environment_not_its_argv(tmp_path, monkeypatch,
                                                                           capsys):
    """``ps`` shows every user a process's argv: a password in the store URI must not be there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", "postgresql://fer:S3cret@db.example/mlflow")
    port = str(free_port())
    config = server.resolve_config(server.build_parser().parse_args([]).backend_store_uri,
                                   None, "127.0.0.1", int(port), 1, ())
    assert "S3cret" not in " ".join(config.command())
    assert config.env() == {"MLFLOW_BACKEND_STORE_URI": "postgresql://fer:S3cret@db.example/mlflow"}
    assert main(["--port", port, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MLFLOW_BACKEND_STORE_URI=postgresql://***@db.example/mlflow ")
