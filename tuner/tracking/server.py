"""``python -m tuner.mlflow_server``: the team's MLflow tracking server for sweeps.

Starts ``mlflow server`` with a database backend and a proxied artifact store, waits until it
answers ``/health``, prints the ``--mlflow-uri`` to give ``python -m tuner.sweep``, and stops
the server (and its workers) on Ctrl-C or SIGTERM:

    python -m tuner.mlflow_server                        # 127.0.0.1:5000, ./mlflow.db
    python -m tuner.mlflow_server --port 5001 --backend-store-uri postgresql://user@db/mlflow \\
        --artifacts-destination /shared/mlartifacts

Defaults are for one machine: bound to 127.0.0.1 (an MLflow server has no authentication; a
non-loopback ``--host`` prints a warning), one worker (each uses ~0.5-0.9 GB), the server's job
runner off (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``). Any other ``mlflow server`` option
(e.g. ``--allowed-hosts``) is passed through.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fer_core.cli import cli_main
from tuner.tracking.database import DatabaseUnreachable, check_reachable
from tuner.tracking.redact import redact

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5000
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"  # MLflow's own default name for proxied artifacts
READY_TIMEOUT_S = 180.0  # a new sqlite store runs every schema migration first (~10 s here)
STOP_TIMEOUT_S = 20.0
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
STORE_ENV = "MLFLOW_BACKEND_STORE_URI"
"""Where ``mlflow server`` reads its store URI; ``--backend-store-uri`` defaults to it too."""


class ServerError(RuntimeError):
    """A problem that keeps the server from starting, with what to do about it."""


@dataclass(frozen=True)
class ServerConfig:
    """A checked ``mlflow server`` setup; every local path is absolute."""

    backend_store_uri: str
    artifacts_destination: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        """The tracking URI clients use (a wildcard bind is reached through this host's name)."""
        host = socket.gethostname() if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def local_url(self) -> str:
        """Where this machine reaches the server (for the health check)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def command(self) -> list[str]:
        """``mlflow server``'s argv. The store URI is not in it (see ``env``)."""
        return [sys.executable, "-m", "mlflow", "server", "--host", self.host,
                "--port", str(self.port), "--workers", str(self.workers),
                "--artifacts-destination", self.artifacts_destination, *self.extra_args]

    def env(self) -> dict[str, str]:
        """What ``mlflow server`` reads beside its argv: the store URI, which may hold a
        password. Any user of the machine can read a process's argv (``ps``); only its owner
        can read its environment."""
        return {STORE_ENV: self.backend_store_uri}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The warning for a bind beyond this machine, or None for a loopback one."""
    if is_loopback(host):
        return None
    return (f"warning: --host {host} exposes the MLflow server on the network at port {port}, "
            "and MLflow has no authentication of its own: anyone who can reach it can read, "
            "change and delete every run. Keep it on 127.0.0.1 and put a reverse proxy with "
            "authentication and TLS in front (e.g. nginx or Caddy with basic auth; clients then "
            "set MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD), or at least restrict "
            "it with --allowed-hosts and a firewall.")


def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and prove a file can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ServerError(f"cannot write the {what} folder {folder}: {err.strerror or err}; "
                          f"choose a writable location") from None


def check_port(host: str, port: int) -> None:
    """Fail early, and clearly, if something already listens on ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            s.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ServerError(f"port {port} on {host} is in use (another MLflow server?): "
                                  f"pick a free one with --port, or stop what listens "
                                  f"there") from None
            raise ServerError(f"cannot bind {host}:{port}: {err.strerror or err}") from None


def resolve_config(backend_store_uri: str | None, artifacts_destination: str | None,
                   host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, workers: int = 1,
                   extra_args: tuple[str, ...] = (), cwd: Path | None = None) -> ServerConfig:
    """Defaults made absolute and checked: ``sqlite:///<cwd>/mlflow.db`` and ``mlartifacts``
    next to the database (or in ``cwd`` for a server database)."""
    cwd = (cwd or Path.cwd()).resolve()
    if not 1 <= port <= 65535:
        raise ServerError(f"--port {port}: must be 1-65535")
    if workers < 1:
        raise ServerError(f"--workers {workers}: must be at least 1")
    uri = backend_store_uri or f"sqlite:///{cwd / DB_FILE}"
    home = cwd
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        db = db if db.is_absolute() else (cwd / db).resolve()
        uri, home = f"sqlite:///{db}", db.parent
        check_writable(home, "database")
    elif "://" not in uri:
        raise ServerError(f"--backend-store-uri {redact(uri)}: expected a database URI "
                          "such as sqlite:///path/mlflow.db or postgresql://user@host/db")
    dest = artifacts_destination or str(home / ARTIFACTS_DIR)
    if "://" not in dest:
        dest = str((cwd / dest).resolve())
        check_writable(Path(dest), "artifacts")
    check_port(host, port)
    return ServerConfig(uri, dest, host, port, workers, tuple(extra_args))


class MlflowServer:
    """A running ``mlflow server`` in its own process group (so Ctrl-C reaches only us, and
    stopping it takes its workers down too)."""

    def __init__(self, config: ServerConfig, log: IO[bytes] | None = None) -> None:
        self.config = config
        env = {**os.environ, **{k: os.environ.get(k, v) for k, v in SERVER_ENV.items()},
               **config.env()}
        self.proc = subprocess.Popen(config.command(), env=env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def url(self) -> str:
        return self.config.url

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.config.local_url}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S,
                   cancel: threading.Event | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if cancel is not None and cancel.is_set():
                return
            if self.proc.poll() is not None:
                raise ServerError(f"mlflow server exited with code {self.proc.returncode} "
                                  "before answering (its messages are above or in its log)")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"mlflow server did not answer {self.config.local_url}/health "
                                  f"within {timeout:.0f} s")
            time.sleep(0.3)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM the server's process group, SIGKILL it after ``timeout``; its exit code."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        self._signal(signal.SIGKILL)  # workers left behind by a server that died first
        return self.proc.returncode

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def __enter__(self) -> MlflowServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(config: ServerConfig, log: IO[bytes] | None = None,
          timeout: float = READY_TIMEOUT_S) -> MlflowServer:
    """Start the server and return once it answers ``/health``."""
    server = MlflowServer(config, log)
    server.wait_ready(timeout)
    return server


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tuner.mlflow_server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=DEFAULT_HOST,
                   help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    p.add_argument("--backend-store-uri", default=os.environ.get(STORE_ENV) or None,
                   help="runs database (default: $MLFLOW_BACKEND_STORE_URI, else "
                        "sqlite:///<cwd>/mlflow.db, the sweeps' local store; a team: "
                        "postgresql://user@host/db, needs psycopg2; keep a password out of "
                        "the command line with PGPASSWORD or that variable)")
    p.add_argument("--artifacts-destination",
                   help="where uploaded artifacts go (default: mlartifacts/ next to the sqlite "
                        "database, or in the current folder; or s3://..., gs://...)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the setup and print the server command, without starting it")
    return p


def serve(config: ServerConfig) -> int:
    """Run until Ctrl-C/SIGTERM (0) or until the server dies on its own (its exit code)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = MlflowServer(config)
    try:
        server.wait_ready(cancel=stop)
        if not stop.is_set():
            print(f"\nMLflow tracking server ready at {config.url} (UI and API)\n"
                  f"  runs:      {redact(config.backend_store_uri)}\n"
                  f"  artifacts: {redact(config.artifacts_destination)}\n"
                  f"Track sweeps here:  python -m tuner.sweep --mlflow-uri {config.url} ...\n"
                  f"Ctrl-C stops the server.", flush=True)
        while not stop.is_set() and server.proc.poll() is None:
            stop.wait(0.5)
    finally:
        code = server.stop()
    if stop.is_set():
        print("MLflow tracking server stopped.", flush=True)
        return 0
    print(f"error: mlflow server exited on its own with code {code}", file=sys.stderr)
    return code or 1


@cli_main()
def main(argv: list[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    try:
        config = resolve_config(args.backend_store_uri, args.artifacts_destination, args.host,
                                args.port, args.workers, tuple(extra))
    except ServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if warning := exposure_warning(config.host, config.port):
        print(warning, file=sys.stderr, flush=True)
    if args.dry_run:
        print(" ".join([f"{k}={redact(v)}" for k, v in config.env().items()]
                       + [redact(part) for part in config.command()]))
        return 0
    try:
        # mlflow server itself retries an unreachable database for ~2 minutes
        check_reachable(config.backend_store_uri, flag="--backend-store-uri")
        return serve(config)
    except (ServerError, DatabaseUnreachable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
