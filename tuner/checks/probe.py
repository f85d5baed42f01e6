"""Connections and resources checked in seconds, before a sweep creates anything.

- The MLflow store answers (``tuner.tracking.reach.check_mlflow_uri``).
- A Ray ``--address`` must accept a connection on its GCS port before ``ray.init`` is called:
  Ray itself retries an address that does not answer for a long time.
- A trial's request (``--cpus-per-trial``, ``--gpus-per-trial``) must fit on one node of the
  cluster, or on one node type of its autoscaler when the cluster publishes its node types.
  When neither is knowable, ``tuner.checks.pending.PendingWatch`` ends a sweep whose trials all stay
  pending for ``--pending-timeout`` seconds (default :data:`PENDING_TIMEOUT_S`) instead of
  waiting forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from tuner.tracking.reach import ProbeError, tcp_error

PENDING_TIMEOUT_S = 600.0
"""Default ``--pending-timeout``: long enough for a cloud autoscaler to launch a node."""

START_CLUSTER = ("start one with `ray start --head --port=6379` and pass --address HOST:6379, "
                 "or leave --address out to start a local Ray runtime")


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
