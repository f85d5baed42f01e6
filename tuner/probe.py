"""Connections and resources checked in seconds, before a sweep creates anything.

- An MLflow tracking URI that names a server (``http(s)://``, a database) must accept a TCP
  connection now; a ``sqlite:///`` store's folder must exist. MLflow's own client retries a dead
  server for minutes; later outages keep the sweep's buffered delivery.
- A Ray ``--address`` must accept a connection on its GCS port before ``ray.init`` is called:
  Ray itself retries an address that does not answer for a long time.
- A trial's request (``--cpus-per-trial``, ``--gpus-per-trial``) must fit on one node of the
  cluster, or on one node type of its autoscaler when the cluster publishes its node types.
  When neither is knowable, ``tuner.pending.PendingWatch`` ends a sweep whose trials all stay
  pending for ``--pending-timeout`` seconds (default :data:`PENDING_TIMEOUT_S`) instead of
  waiting forever.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fer_core.cli import UserError

CONNECT_TIMEOUT_S = 5.0
PENDING_TIMEOUT_S = 600.0
"""Default ``--pending-timeout``: long enough for a cloud autoscaler to launch a node."""

DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mssql": 1433}
START_CLUSTER = ("start one with `ray start --head --port=6379` and pass --address HOST:6379, "
                 "or leave --address out to start a local Ray runtime")


class ProbeError(UserError):
    """Something the sweep needs does not answer, or can never hold a trial."""


def tcp_error(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why nothing accepts a TCP connection at ``host:port`` (None when something does)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as err:
        return err.strerror or str(err)


def where(uri: str) -> str:
    """``scheme://host:port`` of a URI, without user, password or query (safe to print)."""
    parts = urlsplit(uri)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def check_mlflow_uri(uri: str | None, flag: str = "--mlflow-uri") -> None:
    """Raise :class:`ProbeError` when the tracking store at ``uri`` cannot be reached now."""
    if not uri:
        return
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        path = Path(uri.split(":///", 1)[-1]) if ":///" in uri else None
        if path is not None and str(path) != ":memory:" and not path.parent.is_dir():
            raise ProbeError(f"{flag} {uri}: folder {path.parent} does not exist; create it or "
                             "point the URI at an existing folder")
        return
    if scheme in ("http", "https") or scheme in DB_PORTS:
        default = {"http": 80, "https": 443, **DB_PORTS}[scheme]
        try:
            port = parts.port or default
        except ValueError:
            raise ProbeError(f"{flag} {where(uri)}: the port is not a number") from None
        if not parts.hostname:
            raise ProbeError(f"{flag} {uri!r}: no host name; e.g. http://127.0.0.1:5000")
        problem = tcp_error(parts.hostname, port)
        if problem:
            hint = ("start one with `python -m tuner.mlflow_server` (or pass "
                    "--mlflow-uri sqlite:///mlflow.db for a local store)")
            raise ProbeError(f"{flag} {where(uri)}: no MLflow server answers at "
                             f"{parts.hostname}:{port} ({problem}); {hint}")


def check_ray_address(address: str | None) -> None:
    """Raise :class:`ProbeError` within seconds when a ``HOST:PORT`` or ``ray://`` address
    does not accept connections (``auto`` is resolved by Ray itself, which fails fast)."""
    if not address or address in ("auto", "local"):
        return
    text = address if "://" in address else f"tcp://{address}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise ProbeError(f"--address {address!r}: write it as HOST:PORT (the head's GCS port, "
                         f"6379 by default), ray://HOST:10001 or auto; {START_CLUSTER}")
    problem = tcp_error(host, port)
    if problem:
        raise ProbeError(f"--address {address}: no Ray cluster answers at {host}:{port} "
                         f"({problem}); {START_CLUSTER}")


@dataclass(frozen=True)
class Request:
    """One trial's resources."""

    cpu: float
    gpu: float

    def fits(self, resources: dict[str, float]) -> bool:
        return (resources.get("CPU", 0.0) >= self.cpu - 1e-9
                and resources.get("GPU", 0.0) >= self.gpu - 1e-9)

    def flags(self) -> str:
        return f"--cpus-per-trial {self.cpu:g} --gpus-per-trial {self.gpu:g}"


def _node_types() -> list[dict[str, float]] | None:
    """Per-node resources of the autoscaler's node types (None: no autoscaler config known)."""
    try:
        from ray._private.state import state  # the published autoscaler config; private API

        config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - older/newer Ray without it: treat as not knowable
        return None
    if config is None or not config.node_group_configs:
        return None
    return [dict(group.resources) for group in config.node_group_configs if group.max_count != 0]


def describe(nodes: list[dict[str, float]]) -> str:
    parts = [f"{n.get('CPU', 0):g} CPU/{n.get('GPU', 0):g} GPU" for n in nodes[:6]]
    more = f" and {len(nodes) - 6} more" if len(nodes) > 6 else ""
    return ", ".join(parts) + more or "none"


def check_resources(request: Request, local: bool) -> str | None:
    """Raise :class:`ProbeError` when no node (or autoscaler node type) can hold one trial.

    Returns a note when the answer is not knowable (the pending watch then applies), else None.
    Call after ``ray.init``; ``local`` says the sweep started this runtime (no autoscaler)."""
    import ray

    alive = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    if any(request.fits(n) for n in alive):
        return None
    types = None if local else _node_types()
    if types is not None and any(request.fits(t) for t in types):
        return None  # the autoscaler can launch a node that holds it
    if local or types is not None:
        what = "this machine's Ray runtime" if local else "the autoscaler's node types"
        nodes = alive if local else types
        raise ProbeError(f"{request.flags()}: no node can ever hold one trial; {what}: "
                         f"{describe(nodes)}; lower the request (fractions share a GPU)"
                         + ("" if local or request.gpu == 0 else " or add GPU nodes"))
    return (f"no node of the cluster holds {request.flags()} now (nodes: {describe(alive)}); "
            "waiting for an autoscaler")
