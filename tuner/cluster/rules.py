"""The project's rules for cluster configs, as small functions over strings and mappings.

``tuner.cluster.check`` parses the YAML documents, validates their schema, and applies these;
a rule returns messages (or ``(field, message)`` pairs), each naming the fix.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from tuner.cli import parse_args

CLUSTER_DIR = Path(__file__).resolve().parent
CONFIG_FILES = (
    CLUSTER_DIR / "aws.yaml",
    CLUSTER_DIR / "gcp.yaml",
    CLUSTER_DIR / "kuberay" / "mlflow.yaml",
    CLUSTER_DIR / "kuberay" / "raycluster.yaml",
    CLUSTER_DIR / "kuberay" / "rayjob.yaml",
)
"""Every config shipped here; the checker's default input."""


PLACEHOLDER = "EDIT_ME"
LAUNCHER_COMMANDS = ("initialization_commands", "setup_commands", "head_setup_commands",
                     "worker_setup_commands", "head_start_ray_commands",
                     "worker_start_ray_commands")
SWEEP_MODULE = "tuner.sweep"
PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"
TOKEN_FILE = ".ray/auth_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
URI_SCHEMES_SWEEP_KEEPS: frozenset[str] = frozenset({"s3", "gs"})
"""Object-storage ``--storage-path`` schemes the configs may use: ``tuner.sweep`` passes a URI to
Tune untouched and keeps its own files there through ``pyarrow.fs``. ``file://`` is checked as
the path it names; data, caches and Optuna's SQLite file stay on the shared filesystem."""
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


def shared_path_problem(flag: str, value: str | None, roots: Sequence[str],
                        uri_ok: bool = False) -> str | None:
    """Checkpoints, caches and resume need a place every node sees.

    ``uri_ok``: the flag also takes object storage (``--storage-path``, see
    ``URI_SCHEMES_SWEEP_KEEPS``); every other flag names plain files.
    """
    shared = ", ".join(roots) or "none found"
    if not value:
        return f"{flag} missing: set an absolute path on the shared filesystem ({shared})"
    scheme = urlparse(value).scheme if "://" in value else ""
    path = value
    if scheme == "file":
        path = urlparse(value).path  # a local path written as a URI: the same rules
    elif scheme and uri_ok and scheme in URI_SCHEMES_SWEEP_KEEPS:
        return None
    elif scheme and uri_ok:
        keeps = ", ".join(f"{s}://" for s in sorted(URI_SCHEMES_SWEEP_KEEPS))
        return (f"{flag} {value}: {scheme}:// is not a storage these clusters are set up for; "
                f"use {keeps} or the shared filesystem ({shared})")
    elif scheme:
        return (f"{flag} {value}: a URI, but {flag} must be a folder (its files are opened as "
                f"plain files on every node); use the shared filesystem ({shared})")
    if not PurePosixPath(path).is_absolute():
        return (f"{flag} {value} is relative: trials run in their own folders on other nodes; "
                f"use an absolute path on the shared filesystem ({shared})")
    if not under_any(path, roots):
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


# ---------------------------------------------------------------- rules over whole commands

Finding = tuple[str, str]
"""``(field, message)``: where in the document, and what to do."""


def sweep_call_problems(call: SweepCall, roots: Sequence[str]) -> list[str]:
    """The flags parse with ``tuner.cli`` and point at shared, reachable places."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parse_args(call.argv)
    except SystemExit:
        reason = (err.getvalue().strip().splitlines() or ["invalid flags"])[-1]
        return [f"the sweep command does not parse with tuner.cli ({reason}); "
                "see `python -m tuner.sweep --help`"]
    found: list[str | None] = []
    if not args.address:
        found.append("--address missing: without it the sweep starts a private local Ray on "
                     "the head instead of using the cluster (use --address auto)")
    optuna = args.optuna_storage or ""
    paths = [("--storage-path", args.storage_path, True), ("--cache-dir", args.cache_dir, True),
             ("--data-root", args.data_root, False),
             ("--optuna-storage", optuna[len("sqlite:///"):], optuna.startswith("sqlite:///"))]
    found += [shared_path_problem(flag, value, roots, uri_ok=flag == "--storage-path")
              for flag, value, required in paths if required or value]
    found.append(mlflow_uri_problem(args.mlflow_uri))
    if f"{PENDING_ENV}=" not in call.context:
        found.append(f"{PENDING_ENV} is not set for the sweep: set it (e.g. to "
                     "--max-concurrent) so the autoscaler sees every pending trial at once")
    return [message for message in found if message]


def sweep_problems(commands: Sequence[tuple[str, str]], roots: Sequence[str],
                   where_missing: str) -> list[Finding]:
    """Every ``python -m tuner.sweep`` in ``(field, command)`` pairs; there must be one."""
    calls = [(where, call) for where, text in commands for call in sweep_calls(text)]
    if not calls:
        return [(where_missing, f"no `python -m {SWEEP_MODULE}` command found: the cluster "
                                "must run the project's sweep entry point")]
    return [(where, message) for where, call in calls
            for message in sweep_call_problems(call, roots)]


def node_type_problems(doc: dict) -> list[Finding]:
    """A launcher's node types: a CPU head, GPU workers with autoscaling bounds, idle timeout."""
    types = doc.get("available_node_types")
    if not isinstance(types, dict) or not types:
        return [("available_node_types", "declare a CPU head type and GPU worker types")]
    found = []
    head = doc.get("head_node_type")
    if head not in types:
        found.append(("head_node_type", f"{head!r} is not one of available_node_types "
                                        f"({', '.join(types)})"))
    elif gpus(types[head]) > 0:
        found.append((f"available_node_types.{head}.resources", "the head has GPUs: keep it a "
                       "CPU node and let the autoscaler add GPU workers"))
    workers = {name: t for name, t in types.items() if name != head and isinstance(t, dict)}
    if not any(gpus(t) > 0 for t in workers.values()):
        found.append(("available_node_types", "no worker type declares GPU resources "
                                              "(resources: {GPU: n}); trials need GPU workers"))
    for name, node_type in workers.items():
        low, high = node_type.get("min_workers"), node_type.get("max_workers")
        for key, value in (("min_workers", low), ("max_workers", high)):
            if not isinstance(value, int):
                found.append((f"available_node_types.{name}.{key}",
                              "missing: set the autoscaler's bounds for this node type"))
        if isinstance(low, int) and isinstance(high, int) and low > high:
            found.append((f"available_node_types.{name}",
                          f"min_workers {low} > max_workers {high}"))
    if not isinstance(doc.get("idle_timeout_minutes"), (int, float)):
        found.append(("idle_timeout_minutes", "missing: idle GPU workers are removed after it"))
    return found


def start_command_problems(doc: dict, commands: Sequence[tuple[str, str]]) -> list[Finding]:
    """``ray start`` lines: a head, token auth on each, a loopback dashboard, the token mounted."""
    found = []
    starts = [(where, text) for where, text in commands if STARTS_RAY.search(text)]
    if not any(HEAD_START.search(text) for _, text in starts):
        found.append(("head_start_ray_commands", "no `ray start --head` command"))
    for where, text in starts:
        if not AUTH_TOKEN_MODE.search(text):
            found.append((where, "`ray start` without RAY_AUTH_MODE=token: Ray token auth must "
                                 "stay on (set it on the same command line)"))
        host = dashboard_host(text)
        if host is not None and host not in LOOPBACK:
            found.append((where, f"--dashboard-host={host} publishes the dashboard (job "
                                 "submission runs code): keep 127.0.0.1 and reach it with "
                                 "`ray dashboard`"))
    mounts = doc.get("file_mounts") or {}
    mounted = any(TOKEN_FILE in str(k) + str(v) for k, v in mounts.items())
    if not mounted and not any("RAY_AUTH_TOKEN_PATH" in text for _, text in commands):
        found.append(("file_mounts", f"the Ray token never reaches the nodes: mount {TOKEN_FILE} "
                                     "(file_mounts) or point RAY_AUTH_TOKEN_PATH at a file"))
    return found


def firewall_problems(doc: dict) -> list[Finding]:
    """Security-group rules that open anything but SSH to the internet."""
    group = (doc.get("provider") or {}).get("security_group") or {}
    return [(f"provider.security_group.IpPermissions[{i}]",
             f"opens ports {rule.get('FromPort')}-{rule.get('ToPort')} to the internet: "
             "only SSH (22) may be public; reach the dashboard and MLflow via SSH tunnels")
            for i, rule in enumerate(group.get("IpPermissions") or [])
            if isinstance(rule, dict) and public_non_ssh(rule)]
