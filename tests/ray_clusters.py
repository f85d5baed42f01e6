"""Real multi-node Ray clusters on one machine, for fault and autoscaling tests.

Every cluster gets its own short temp dir (Ray's unix socket paths are length-limited), its own
free ports, and ``RAY_TMPDIR`` pointing inside it, so that Ray's "current cluster" address file
is not the machine-wide one other users' ``--address auto`` reads. Stopping touches only what
was started here: ``Cluster.shutdown()``, or the processes whose command line names our temp
dir. ``ray stop`` is never used: it ends every Ray process on the machine.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import ray
from helpers import free_port
from ray.cluster_utils import Cluster

T = TypeVar("T")

FAKE_WORKER_TYPE = "cpu_1"



def short_tempdir(prefix: str) -> Path:
    """A fresh folder directly under /tmp: Ray's socket paths must stay under ~107 bytes.

    Removed when the cluster stops, and once more when this process exits: an empty session
    folder was seen to reappear after the cluster's teardown, during the next test.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.25) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:  # gone meanwhile, or not ours to read
        return ""


def parent_pid(pid: int) -> int:
    """The parent of ``pid`` (Linux ``/proc``; the test machines and CI run Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces


def ancestors(pid: int) -> list[int]:
    """``pid``'s parent, grandparent, ... up to init."""
    found = []
    while pid > 1:
        try:
            pid = parent_pid(pid)
        except OSError:
            break
        found.append(pid)
    return found


def _environ(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def processes_under(folder: Path) -> list[int]:
    """Pids of live processes that belong to the Ray cluster living in ``folder``.

    Matched by command line (``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` rename
    themselves but keep arguments naming the session folder) or by environment: Ray workers
    overwrite their whole command line (``ray::IDLE``) but inherit ``RAY_TMPDIR=<folder>``.
    """
    needle = str(folder)
    pids = (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    return [pid for pid in pids
            if pid != os.getpid() and (needle in _cmdline(pid) or
                                       f"RAY_TMPDIR={needle} " in f"{_environ(pid)} ")]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped by its parent


def kill_processes_under(folder: Path, grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL, every process that names ``folder``; returns how many survived."""
    pids = processes_under(folder)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [p for p in pids if _alive(p)]
        if not pids:
            break
    return len(pids)


@contextmanager
def private_ray_tmpdir(folder: Path) -> Iterator[None]:
    """Point ``RAY_TMPDIR`` (Ray's address file, default temp dir) into ``folder`` meanwhile."""
    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(folder)
    (folder / "ray").mkdir(exist_ok=True)  # where Ray writes that address file
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old


# ---------------------------------------------------------------- ray.cluster_utils.Cluster
@contextmanager
def local_cluster(workers: int = 2, cpus_per_worker: int = 1, prefix: str = "rc",
                  system_config: dict[str, Any] | None = None) -> Iterator[Cluster]:
    """A head with 0 CPUs (it schedules nothing) and ``workers`` raylets with 1 CPU each.

    The test process does not connect to it: drivers (the sweep CLI) do, with ``--address
    cluster.address``. ``system_config`` goes to the head (e.g. faster node health checks).
    Everything is stopped and the temp dir removed on exit, even on failure.
    """
    temp = short_tempdir(prefix)
    with private_ray_tmpdir(temp):
        cluster = None
        try:
            cluster = Cluster(initialize_head=True, head_node_args=dict(
                num_cpus=0, gcs_server_port=free_port(), temp_dir=str(temp),
                include_dashboard=False, _system_config=system_config or {}))
            for _ in range(workers):
                cluster.add_node(num_cpus=cpus_per_worker)
            yield cluster
        finally:
            if cluster is not None:
                cluster.shutdown()
            kill_processes_under(temp)  # anything a killed driver left behind
            shutil.rmtree(temp, ignore_errors=True)


def raylet_pid(node: Any) -> int:
    """The pid of a ``Cluster`` node's raylet."""
    return node.all_processes[ray._private.ray_constants.PROCESS_TYPE_RAYLET][0].process.pid


def node_running_pid(cluster: Cluster, pid: int) -> Any:
    """The worker node whose raylet started process ``pid`` (a Ray worker, e.g. a trial)."""
    chain = set(ancestors(pid))
    for node in cluster.worker_nodes:
        if raylet_pid(node) in chain:
            return node
    raise LookupError(f"process {pid} is not a worker of any of the cluster's worker nodes")


# ---------------------------------------------------------------- fake autoscaling head
@dataclass
class FakeAutoscalingCluster:
    """A 0-CPU head started by ``ray start --head`` with the ``fake_multinode`` provider."""

    temp: Path
    gcs_port: int
    max_workers: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def config(self, idle_timeout_minutes: float) -> dict[str, Any]:
        """The autoscaling config: one 1-CPU worker type, 0..max_workers nodes."""
        return {
            "cluster_name": f"fake-{self.gcs_port}",
            "max_workers": self.max_workers,
            "idle_timeout_minutes": idle_timeout_minutes,
            "upscaling_speed": float(self.max_workers),
            "provider": {
                "type": "fake_multinode",
                "use_node_id_as_ip": True,
                "disable_node_updaters": True,
                "disable_launch_config_check": True,
                "gcs_address": self.address,
            },
            "available_node_types": {
                "ray.head.default": {"resources": {"CPU": 0}, "node_config": {},
                                     "max_workers": 0},
                FAKE_WORKER_TYPE: {"resources": {"CPU": 1}, "node_config": {},
                                   "min_workers": 0, "max_workers": self.max_workers},
            },
            "head_node_type": "ray.head.default",
            # Keys the autoscaler reads although nothing is synced or run on fake nodes.
            "auth": {}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
            "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
            "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
            "worker_setup_commands": [], "head_start_ray_commands": [],
            "worker_start_ray_commands": [],
        }


@contextmanager
def fake_autoscaling_cluster(max_workers: int = 3, idle_timeout_minutes: float = 0.1,
                             prefix: str = "fa") -> Iterator[FakeAutoscalingCluster]:
    """Start the head (its autoscaler adds and removes fake 1-CPU nodes on demand); stop it.

    ``ray.cluster_utils.AutoscalingCluster`` is not used: its ``start()`` runs
    ``ray stop --force``. Stopping here kills only the processes naming our temp dir.
    """
    temp = short_tempdir(prefix)
    cluster = FakeAutoscalingCluster(temp, free_port(), max_workers)
    cfg = cluster.config(idle_timeout_minutes)
    config_file = temp / "autoscaling.json"
    config_file.write_text(json.dumps(cfg))
    # A 1 s autoscaler loop (default 5 s) keeps the test short.
    cluster.env = dict(os.environ, RAY_FAKE_CLUSTER="1", RAY_TMPDIR=str(temp),
                       AUTOSCALER_UPDATE_INTERVAL_S="1")
    try:
        started = subprocess.run(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
             f"--port={cluster.gcs_port}", "--num-cpus=0", f"--temp-dir={temp}",
             "--include-dashboard=false", f"--autoscaling-config={config_file}",
             "--disable-usage-stats",
             f"--dashboard-agent-listen-port={free_port()}",
             f"--metrics-export-port={free_port()}"],
            env=cluster.env, capture_output=True, text=True, timeout=180)
        if started.returncode != 0:
            raise RuntimeError(f"ray start --head failed ({started.returncode}):\n"
                               f"{started.stderr[-3000:]}")
        yield cluster
    finally:
        kill_processes_under(temp)
        shutil.rmtree(temp, ignore_errors=True)
