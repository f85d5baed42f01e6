"""A throwaway PostgreSQL cluster on 127.0.0.1, for tests and benchmarks of the team path.

``LocalPostgres`` runs Debian's PostgreSQL server binaries (``initdb`` + ``pg_ctl``) in a fresh
temporary folder, on a free port, with password authentication, and removes everything on
``stop()`` (no process left). PostgreSQL refuses to run as root, so under root the binaries run
as the unprivileged ``postgres`` user through ``runuser`` and the folder is handed to that user.

    with LocalPostgres(databases=("mlflow", "optuna")) as pg:
        pg.uri("mlflow")   # postgresql://fer:<password>@127.0.0.1:<port>/mlflow

This is a development tool, not a way to run the lab's database: the cluster lives in /tmp.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVICE_USER = "postgres"  # Debian's account for the server binaries
DEFAULT_USER = "fer"
START_TIMEOUT_S = 60


class DevDbError(RuntimeError):
    """The throwaway cluster could not be set up, with what to do about it."""


def pg_bin_dir() -> Path:
    """The newest installed PostgreSQL server's ``bin`` folder (``PG_BIN`` overrides it)."""
    if env := os.environ.get("PG_BIN"):
        return Path(env)
    found = sorted(glob.glob(PG_BIN_GLOB), key=lambda p: int(Path(p).parent.name))
    if not found or not (Path(found[-1]) / "initdb").exists():
        raise DevDbError(f"no PostgreSQL server under {PG_BIN_GLOB}: install it "
                         "(apt-get install postgresql) or set PG_BIN to its bin folder")
    return Path(found[-1])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalPostgres:
    """One temporary cluster: ``start()`` (or ``with``), ``uri()``, ``restart()``, ``stop()``."""

    def __init__(self, databases: tuple[str, ...] = ("mlflow",), user: str = DEFAULT_USER,
                 password: str | None = None, port: int | None = None) -> None:
        self.databases = databases
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.port = port or free_port()
        self.bin = pg_bin_dir()
        self.root: Path | None = None
        # Root may not run the server; anyone else runs it as themselves.
        self.as_user = SERVICE_USER if os.geteuid() == 0 else None

    # ------------------------------------------------------------ addresses
    def uri(self, database: str = "mlflow", password: bool = True) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{database}"

    @property
    def data(self) -> Path:
        assert self.root is not None, "start() the cluster first"
        return self.root / "data"

    # ------------------------------------------------------------ lifecycle
    def start(self) -> LocalPostgres:
        # Short path under /tmp: the server's Unix socket path is limited to ~100 characters,
        # and the service user must be able to reach the folder (pytest's tmp_path is 0700).
        self.root = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
        try:
            self._own(self.root)
            pwfile = self.root / "pw"
            pwfile.write_text(self.password + "\n")
            self._own(pwfile)
            self._pg("initdb", "-D", str(self.data), "-U", self.user, "--auth=scram-sha-256",
                     f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8")
            pwfile.unlink()
            self.start_server()
            for name in self.databases:
                self.create_database(name)
        except BaseException:
            self.stop()
            raise
        return self

    def start_server(self) -> None:
        """Start (or start again) the server of an initialised cluster; returns once it
        accepts connections."""
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c max_connections=300")  # throwaway data: speed over durability
        self._pg("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                 "-w", "-t", str(START_TIMEOUT_S), "start")

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients; ``immediate``: like a crash)."""
        if self.root is not None and (self.data / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_s: float = 0.0, mode: str = "fast") -> None:
        """Stop the server, keep it down ``down_s`` seconds, start it again."""
        self.stop_server(mode)
        time.sleep(down_s)
        self.start_server()

    def server_pid(self) -> int | None:
        """The postmaster's pid while the server runs."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError, AssertionError):
            return None

    def stop(self) -> None:
        """Stop the server and delete the cluster's folder."""
        if self.root is None:
            return
        try:
            self.stop_server()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def create_database(self, name: str) -> str:
        """Create database ``name`` (letters, digits, ``_``); its URI."""
        import psycopg2

        if not name.replace("_", "").isalnum():
            raise DevDbError(f"database name {name!r}: use letters, digits and _ only")
        conn = psycopg2.connect(self.uri("postgres"))
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.uri(name)

    # ------------------------------------------------------------ internals
    def _own(self, path: Path) -> None:
        if self.as_user:
            entry = pwd.getpwnam(self.as_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _pg(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              cwd="/tmp")
        if done.returncode != 0:
            log = self.root / "log" if self.root else None
            tail = log.read_text()[-800:] if log and log.exists() else ""
            raise DevDbError(f"{tool} failed (exit {done.returncode}): "
                             f"{(done.stderr or done.stdout).strip()[-800:]} {tail}".strip())
