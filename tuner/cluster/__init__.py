"""Cluster configs for sweeps at scale (Ray cluster launcher on AWS/GCP, KubeRay) and their checker.

``python -m tuner.cluster.check [FILES]`` validates them: the launcher YAMLs against the installed
Ray's autoscaler schema, the KubeRay manifests against the fields KubeRay needs, and all of them
against the project's own rules (shared storage, reachable MLflow, token auth, nothing public).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

CLUSTER_DIR = Path(__file__).resolve().parent
CONFIG_FILES = (
    CLUSTER_DIR / "aws.yaml",
    CLUSTER_DIR / "gcp.yaml",
    CLUSTER_DIR / "kuberay" / "mlflow.yaml",
    CLUSTER_DIR / "kuberay" / "raycluster.yaml",
    CLUSTER_DIR / "kuberay" / "rayjob.yaml",
)
"""Every config shipped here; the checker's default input."""


# The rules a cluster config must follow, as small functions over its strings and mappings;
# tuner.cluster.check applies them to parsed YAML documents.

PLACEHOLDER = "EDIT_ME"
LAUNCHER_COMMANDS = ("initialization_commands", "setup_commands", "head_setup_commands",
                     "worker_setup_commands", "head_start_ray_commands",
                     "worker_start_ray_commands")
SWEEP_MODULE = "tuner.sweep"
PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"
TOKEN_FILE = ".ray/auth_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
URI_SCHEMES_SWEEP_KEEPS: frozenset[str] = frozenset()
"""Remote ``--storage-path`` schemes ``tuner.sweep`` passes to Tune untouched. Empty today:
``tuner.sweep.storage_root`` resolves the flag as a local folder, so ``s3://b/x`` would become
``./s3:/b/x`` on the head. Add ``s3``/``gs`` here once it keeps URIs."""
SECRET_ENV_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|CREDENTIAL", re.I)
SECRET_TEXT = {
    "an AWS access key id": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a password inside a URI": re.compile(r"://[^/\s:@'\"]+:[^/\s@'\"]+@"),
    # A literal value; RAY_AUTH_TOKEN=$(cat file) or =$VAR reads it at run time.
    "a Ray token": re.compile(r"RAY_AUTH_TOKEN=['\"]?(?!\$)[^\s'\"]"),
}
STARTS_RAY = re.compile(r"\bray\s+start\b")
HEAD_START = re.compile(r"\bray\s+start\b[^;&|]*--head\b")
AUTH_TOKEN_MODE = re.compile(r"\bRAY_AUTH_MODE=token\b")
AUTH_DISABLED = re.compile(r"\bRAY_AUTH_MODE=(?!token\b)\w+")
DASHBOARD_HOST = re.compile(r"--dashboard-host[= ]+['\"]?([^\s'\";]+)")
SHELL_OPERATORS = set("();<>|&")


def inline_secret_problems(text: str) -> list[str]:
    found = [f"{what} is written inline: keep it in a Secret / secret manager / local file"
             for what, pattern in SECRET_TEXT.items() if pattern.search(text)]
    if AUTH_DISABLED.search(text):
        found.append("RAY_AUTH_MODE is not token: Ray token auth must stay on in clusters")
    return found


def env_problem(name: str, value: Any) -> str | None:
    """A container env entry that writes a secret or turns auth off."""
    if name == "RAY_AUTH_MODE" and value != "token":
        return f"RAY_AUTH_MODE={value}: Ray token auth must stay on in clusters"
    names_a_file = name.upper().endswith(("_PATH", "_FILE", "_DIR"))
    if SECRET_ENV_NAME.search(name) and not names_a_file and isinstance(value, str) and value:
        return f"{name} is set inline: reference a Secret (valueFrom.secretKeyRef)"
    return None


def shell_tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: fall back to words
        return text.split()


def until_operator(tokens: Sequence[str]) -> list[str]:
    out = []
    for token in tokens:
        if set(token) <= SHELL_OPERATORS:
            break
        out.append(token)
    return out


@dataclass(frozen=True)
class SweepCall:
    """One ``python -m tuner.sweep`` found in a shell command (maybe inside a quoted script)."""

    argv: list[str]
    context: str
    """The whole command it came from (where environment variables are set)."""


def sweep_calls(text: str, context: str | None = None) -> list[SweepCall]:
    calls = []
    tokens = shell_tokens(text)
    for i, token in enumerate(tokens):
        if token == SWEEP_MODULE and i > 0 and tokens[i - 1] == "-m":
            argv = [t for t in until_operator(tokens[i + 1:]) if t not in ("$@", "$*")]
            calls.append(SweepCall(argv, context or text))
        elif SWEEP_MODULE in token and token != SWEEP_MODULE:
            calls.extend(sweep_calls(token, context or text))  # a script line written by printf
    return calls


def under_any(path: str, roots: Sequence[str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(root) for root in roots)


def shared_path_problem(flag: str, value: str | None, roots: Sequence[str]) -> str | None:
    """Checkpoints, caches and resume need a place every node sees."""
    shared = ", ".join(roots) or "none found"
    if not value:
        return f"{flag} missing: set an absolute path on the shared filesystem ({shared})"
    scheme = urlparse(value).scheme
    if "://" in value and scheme in URI_SCHEMES_SWEEP_KEEPS:
        return None
    if "://" in value:
        return (f"{flag} {value}: tuner.sweep takes it as a local folder (storage_root), so a "
                f"URI becomes a relative path on the head; use the shared filesystem ({shared})")
    if not PurePosixPath(value).is_absolute():
        return (f"{flag} {value} is relative: trials run in their own folders on other nodes; "
                f"use an absolute path on the shared filesystem ({shared})")
    if not under_any(value, roots):
        return (f"{flag} {value} is not on a filesystem every node mounts (shared: {shared}): "
                "trials on other nodes, and a resume on a new head, must see it")
    return None


def mlflow_uri_problem(uri: str | None) -> str | None:
    """Trials on worker nodes log to this URI themselves."""
    if not uri:
        return ("--mlflow-uri missing: the default is a SQLite file on the head that trials on "
                "workers cannot reach; use the team MLflow server (http://fer-mlflow:5000)")
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return (f"--mlflow-uri {uri}: a {parsed.scheme or 'file'} store lives on one node; "
                "trials on workers need the MLflow server's http(s) URI")
    if parsed.hostname in (*LOOPBACK, "0.0.0.0"):
        return f"--mlflow-uri {uri} is the driver's loopback: trials on workers cannot reach it"
    return None


def network_mounts(text: str) -> list[str]:
    """Mount points of ``mount ... host:/export /point`` commands (network filesystems)."""
    tokens = shell_tokens(text)
    points = []
    for i, token in enumerate(tokens):
        if token != "mount":
            continue
        positional, skip = [], False
        for arg in until_operator(tokens[i + 1:]):
            if skip or arg.startswith("-"):
                skip = arg in ("-t", "-o") and not skip
                continue
            positional.append(arg)
        if len(positional) == 2 and ":" in positional[0] and positional[1].startswith("/"):
            points.append(positional[1])
    return points


def docker_binds(option: str) -> list[tuple[str, str]]:
    """``(host, container)`` of ``-v host:container[:mode]`` run options."""
    tokens = option.split()
    return [tuple(tokens[i + 1].split(":")[:2]) for i, t in enumerate(tokens[:-1])
            if t in ("-v", "--volume") and tokens[i + 1].count(":") >= 1]


def dashboard_host(text: str) -> str | None:
    match = DASHBOARD_HOST.search(text)
    return match.group(1) if match else None


def public_non_ssh(rule: dict) -> bool:
    cidrs = [r.get("CidrIp") for r in rule.get("IpRanges") or []]
    cidrs += [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges") or []]
    ssh_only = rule.get("FromPort") == 22 and rule.get("ToPort") == 22
    return not ssh_only and any(c in ("0.0.0.0/0", "::/0") for c in cidrs)


def gpus(node_type: Any) -> float:
    """GPUs a launcher node type declares (0 when absent or not a number)."""
    resources = node_type.get("resources") if isinstance(node_type, dict) else None
    value = resources.get("GPU", 0) if isinstance(resources, dict) else 0
    return float(value) if isinstance(value, (int, float)) else 0.0


def k8s_gpus(container: dict) -> float:
    limits = (container.get("resources") or {}).get("limits") or {}
    try:
        return float(limits.get("nvidia.com/gpu", 0))
    except (TypeError, ValueError):
        return 0.0


def pod_claim_mounts(pod: Any) -> set[str]:
    """Mount paths of PersistentVolumeClaims in a pod template's first (Ray) container."""
    spec = (pod.get("spec") if isinstance(pod, dict) else None) or {}
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    claims = {v.get("name") for v in volumes if v.get("persistentVolumeClaim")}
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)] or [{}]
    return {m["mountPath"] for m in containers[0].get("volumeMounts") or []
            if isinstance(m, dict) and m.get("name") in claims and m.get("mountPath")}


def k8s_shared_roots(cluster: dict) -> list[str]:
    """Claim mounts that the head (the driver) and every worker group have in common."""
    pods = [(cluster.get("headGroupSpec") or {}).get("template")]
    pods += [g.get("template") for g in cluster.get("workerGroupSpecs") or []
             if isinstance(g, dict)]
    common = set.intersection(*(pod_claim_mounts(pod) for pod in pods))
    return sorted(common)


def launcher_commands(doc: dict) -> list[tuple[str, str]]:
    """``(field, command)`` of every shell command in a launcher config."""
    found = []
    sections = [(key, doc.get(key)) for key in LAUNCHER_COMMANDS]
    for name, node_type in (doc.get("available_node_types") or {}).items():
        if isinstance(node_type, dict):
            for key in ("initialization_commands", "worker_setup_commands"):
                sections.append((f"available_node_types.{name}.{key}", node_type.get(key)))
    for key, commands in sections:
        for i, command in enumerate(commands if isinstance(commands, list) else []):
            if isinstance(command, str):
                found.append((f"{key}[{i}]", command))
    return found


def launcher_shared_roots(doc: dict, commands: Sequence[tuple[str, str]]) -> list[str]:
    """Network mounts made by the commands, seen from inside the container if Docker is used."""
    mounts = [point for _, text in commands for point in network_mounts(text)]
    docker = doc.get("docker") or {}
    if not isinstance(docker, dict) or not any(
            docker.get(k) for k in ("image", "head_image", "worker_image")):
        return mounts
    binds = [bind for option in docker.get("run_options") or [] if isinstance(option, str)
             for bind in docker_binds(option)]
    return [inside for host, inside in binds if under_any(host, mounts)]
