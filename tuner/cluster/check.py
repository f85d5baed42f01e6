"""``python -m tuner.cluster.check [FILES]``: validate cluster configs before anyone pays for them.

- Ray cluster launcher YAMLs: the installed Ray's own autoscaler schema
  (``ray/autoscaler/ray-schema.json``, jsonschema), then node types, start commands, firewall rules.
- KubeRay manifests: the fields KubeRay needs (``ray.io/v1`` RayCluster / RayJob) and the plain
  Kubernetes objects next to them (Service, Deployment, PersistentVolumeClaim).
- The project's rules everywhere: the sweep runs as ``python -m tuner.sweep`` with flags that
  ``tuner.cli`` parses, its storage/cache paths on a filesystem every node mounts (the Tune
  storage may also be ``s3://`` or ``gs://``), an MLflow server the workers can reach,
  ``TUNE_MAX_PENDING_TRIALS_PG`` set, Ray token auth on, no secret written inline, no dashboard
  or server published outside the cluster. Those rules are functions in
  ``tuner.cluster.rules``; this module reads the files, checks the schemas and applies them.

Every problem names the file, the field and the fix. ``--deployable`` also fails on the
``EDIT_ME`` placeholders a user must fill in.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

from fer_core.cli import UserError, cli_main, exit_with
from fer_core.registry import Registry
from tuner.cluster import rules

RAY_API = "ray.io/v1"
SUBMISSION_MODES = ("K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode")


@dataclass(frozen=True)
class Problem:
    """One thing to fix: where it is and what to do."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


@dataclass
class Findings:
    """Problems of one document; ``label`` tells documents of one file apart."""

    file: str
    label: str = ""
    problems: list[Problem] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, f"{self.label}{where}", message))

    def extend(self, found: Iterable[rules.Finding]) -> None:
        for where, message in found:
            self.add(where, message)


Check = Callable[[dict, Findings], None]
DOCUMENTS: Registry[Check] = Registry("cluster document kind")


@lru_cache(maxsize=1)
def ray_version() -> str:
    return importlib.metadata.version("ray")


@lru_cache(maxsize=1)
def ray_schema() -> dict:
    """The autoscaler schema shipped with the installed Ray (found without importing Ray)."""
    spec = importlib.util.find_spec("ray")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("ray is not installed: pip install 'ray[tune]'")
    base = Path(next(iter(spec.submodule_search_locations)))
    return json.loads((base / "autoscaler" / "ray-schema.json").read_text())


def dotted(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every value of a parsed YAML document with its path."""
    yield path, node
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, list) else ())
    for key, value in items:
        yield from walk(value, (*path, key))


def check_everywhere(doc: dict, out: Findings, deployable: bool) -> None:
    """Inline secrets, disabled auth and (``--deployable``) placeholders, in any field."""
    for path, value in walk(doc):
        where = dotted(path) or "<document>"
        if isinstance(value, str):
            for message in rules.inline_secret_problems(value):
                out.add(where, message)
            if deployable and rules.PLACEHOLDER in value:
                out.add(where, f"placeholder {rules.PLACEHOLDER} left: fill it in before deploying")
        elif isinstance(value, dict) and isinstance(value.get("name"), str) and "value" in value:
            message = rules.env_problem(value["name"], value["value"])
            if message:
                out.add(where, message)


# ---------------------------------------------------------------- Ray cluster launcher

@DOCUMENTS.register("launcher")
def check_launcher(doc: dict, out: Findings) -> None:
    """A ``ray up`` config: Ray's schema first, then the project's rules."""
    errors = Draft7Validator(ray_schema()).iter_errors(doc)
    for err in sorted(errors, key=lambda e: dotted(e.absolute_path)):
        out.add(dotted(err.absolute_path) or "<top level>",
                f"Ray {ray_version()} autoscaler schema: {err.message}")
    commands = rules.launcher_commands(doc)
    out.extend(rules.node_type_problems(doc))
    out.extend(rules.start_command_problems(doc, commands))
    out.extend(rules.firewall_problems(doc))
    out.extend(rules.sweep_problems(commands, rules.launcher_shared_roots(doc, commands),
                                    "head_setup_commands"))


# ---------------------------------------------------------------- KubeRay and Kubernetes

def check_header(doc: dict, api: str, out: Findings) -> None:
    if doc.get("apiVersion") != api:
        out.add("apiVersion", f"{doc.get('apiVersion')!r}: {doc.get('kind')} is served as {api}")
    if not (doc.get("metadata") or {}).get("name"):
        out.add("metadata.name", "missing")


def check_containers(pod: Any, where: str, out: Findings) -> list[dict]:
    """The pod template's containers (each needs a name and an image)."""
    spec = (pod.get("spec") if isinstance(pod, dict) else None) or {}
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list) or not containers:
        out.add(f"{where}.spec.containers", "missing: the Ray container (name, image)")
        return []
    for i, container in enumerate(containers):
        for key in ("name", "image"):
            if not isinstance(container, dict) or not container.get(key):
                out.add(f"{where}.spec.containers[{i}].{key}", "missing")
    return [c for c in containers if isinstance(c, dict)]


def check_head(head: Any, where: str, out: Findings) -> None:
    if not isinstance(head, dict):
        out.add(where, "missing: the head pod's spec")
        return
    if not isinstance(head.get("rayStartParams"), dict):
        out.add(f"{where}.rayStartParams", "missing (an empty map is fine): KubeRay requires it")
    check_containers(head.get("template"), f"{where}.template", out)
    service = ((head.get("headService") or {}).get("spec") or {}).get("type")
    for key, value in (("serviceType", head.get("serviceType")),
                       ("headService.spec.type", service)):
        if value not in (None, "ClusterIP"):
            out.add(f"{where}.{key}", f"{value} publishes the Ray head (its dashboard runs "
                                      "jobs) outside the cluster: keep ClusterIP and use "
                                      "kubectl port-forward")
    if head.get("enableIngress"):
        out.add(f"{where}.enableIngress", "an Ingress publishes the dashboard: remove it")


def check_worker_group(group: Any, where: str, out: Findings) -> None:
    if not isinstance(group, dict):
        out.add(where, "not a worker group mapping")
        return
    if not group.get("groupName"):
        out.add(f"{where}.groupName", "missing")
    counts = {key: group.get(key) for key in ("minReplicas", "replicas", "maxReplicas")}
    for key, value in counts.items():
        if not isinstance(value, int) or value < 0:
            out.add(f"{where}.{key}", "missing or negative: set it explicitly (autoscaling bounds)")
    if all(isinstance(v, int) for v in counts.values()) and not (
            counts["minReplicas"] <= counts["replicas"] <= counts["maxReplicas"]):
        out.add(where, "needs minReplicas <= replicas <= maxReplicas")
    if not isinstance(group.get("rayStartParams"), dict):
        out.add(f"{where}.rayStartParams", "missing (an empty map is fine): KubeRay requires it")
    containers = check_containers(group.get("template"), f"{where}.template", out)
    if containers and rules.k8s_gpus(containers[0]) < 1:
        out.add(f"{where}.template.spec.containers[0].resources.limits",
                "no nvidia.com/gpu limit: trials (--gpus-per-trial) need GPU workers")


def check_cluster_spec(spec: dict, where: str, out: Findings) -> None:
    """A RayCluster spec (also a RayJob's rayClusterSpec)."""
    if str(spec.get("rayVersion")) != ray_version():
        out.add(f"{where}.rayVersion", f"{spec.get('rayVersion')!r} is not the Ray this project "
                                       f"runs ({ray_version()}): pin the same in images and here")
    if spec.get("enableInTreeAutoscaling") is not True:
        out.add(f"{where}.enableInTreeAutoscaling",
                "must be true: the autoscaler adds GPU workers while trials are pending")
    if (spec.get("authOptions") or {}).get("mode") != "token":
        out.add(f"{where}.authOptions.mode", "must be token: Ray token auth stays on (KubeRay "
                                             "sets RAY_AUTH_TOKEN from a Secret)")
    check_head(spec.get("headGroupSpec"), f"{where}.headGroupSpec", out)
    groups = spec.get("workerGroupSpecs")
    if not isinstance(groups, list) or not groups:
        out.add(f"{where}.workerGroupSpecs", "no worker group: trials need GPU workers")
        return
    for i, group in enumerate(groups):
        check_worker_group(group, f"{where}.workerGroupSpecs[{i}]", out)
    if not any(isinstance(g, dict) and g.get("minReplicas") == 0 for g in groups):
        out.add(f"{where}.workerGroupSpecs", "no group scales to zero (minReplicas 0): idle GPU "
                                             "workers would keep running between sweeps")


@DOCUMENTS.register("RayCluster")
def check_raycluster(doc: dict, out: Findings) -> None:
    check_header(doc, RAY_API, out)
    if not isinstance(doc.get("spec"), dict):
        out.add("spec", "missing")
        return
    check_cluster_spec(doc["spec"], "spec", out)


@DOCUMENTS.register("RayJob")
def check_rayjob(doc: dict, out: Findings) -> None:
    check_header(doc, RAY_API, out)
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    cluster = spec.get("rayClusterSpec")
    roots: list[str] = []
    if isinstance(cluster, dict):
        check_cluster_spec(cluster, "spec.rayClusterSpec", out)
        roots = rules.k8s_shared_roots(cluster)
    else:
        out.add("spec.rayClusterSpec", "missing: the cluster the sweep runs on")
    if spec.get("clusterSelector") and cluster:
        out.add("spec.clusterSelector", "set together with rayClusterSpec: keep one")
    if spec.get("shutdownAfterJobFinishes") is not True:
        out.add("spec.shutdownAfterJobFinishes",
                "must be true: otherwise the GPU cluster outlives the sweep")
    ttl = spec.get("ttlSecondsAfterFinished")
    if ttl is not None and (not isinstance(ttl, int) or ttl < 0):
        out.add("spec.ttlSecondsAfterFinished", f"{ttl!r}: a number of seconds >= 0")
    if spec.get("submissionMode", "K8sJobMode") not in SUBMISSION_MODES:
        out.add("spec.submissionMode", f"{spec.get('submissionMode')!r}: one of "
                                       f"{', '.join(SUBMISSION_MODES)}")
    entrypoint = spec.get("entrypoint")
    if not isinstance(entrypoint, str) or not entrypoint.strip():
        out.add("spec.entrypoint", f"missing: python -m {rules.SWEEP_MODULE} ...")
        return
    out.extend(rules.sweep_problems([("spec.entrypoint", entrypoint)], roots, "spec.entrypoint"))


@DOCUMENTS.register("Service")
def check_service(doc: dict, out: Findings) -> None:
    check_header(doc, "v1", out)
    spec = doc.get("spec") or {}
    if spec.get("type", "ClusterIP") != "ClusterIP" or spec.get("externalIPs"):
        out.add("spec.type", f"{spec.get('type')} publishes the service outside the cluster: "
                             "keep ClusterIP and reach it with kubectl port-forward")


@DOCUMENTS.register("Deployment")
def check_deployment(doc: dict, out: Findings) -> None:
    check_header(doc, "apps/v1", out)
    check_containers((doc.get("spec") or {}).get("template"), "spec.template", out)


@DOCUMENTS.register("PersistentVolumeClaim")
def check_claim(doc: dict, out: Findings) -> None:
    check_header(doc, "v1", out)
    spec = doc.get("spec") or {}
    if not spec.get("accessModes"):
        out.add("spec.accessModes", "missing (ReadWriteMany for a volume all Ray pods share)")
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        out.add("spec.resources.requests.storage", "missing")


@DOCUMENTS.register("Secret")
def check_secret(doc: dict, out: Findings) -> None:
    out.add("kind", "a Secret in a config file is an inline secret: create it with "
                    "`kubectl create secret generic ...` (see the README) and reference it")


@DOCUMENTS.register("Ingress")
def check_ingress(doc: dict, out: Findings) -> None:
    out.add("kind", "an Ingress publishes a dashboard or server outside the cluster: "
                    "use kubectl port-forward")


# ---------------------------------------------------------------- files and CLI

def document_kind(doc: dict) -> str:
    if "kind" in doc:
        return str(doc["kind"])
    return "launcher" if "provider" in doc else "unknown"


def check_file(path: Path, deployable: bool = False) -> list[Problem]:
    """All problems of one YAML file (one or more documents)."""
    name = str(path)
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as err:
        return [Problem(name, "<file>", f"cannot read it as YAML: {err}")]
    problems: list[Problem] = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            problems.append(Problem(name, f"document {i}", "not a mapping"))
            continue
        kind = document_kind(doc)
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        label = "" if len(docs) == 1 else f"{kind} {meta.get('name')}: "
        out = Findings(name, label)
        try:
            DOCUMENTS.get(kind)(doc, out)
        except KeyError as err:
            out.add("kind", str(err.args[0]))
        except (AttributeError, TypeError) as err:  # a field of the wrong shape somewhere
            out.add("<document>", f"a field has an unexpected shape ({type(err).__name__}: "
                                  f"{err}); compare with the shipped configs")
        check_everywhere(doc, out, deployable)
        problems.extend(out.problems)
    if not docs:
        problems.append(Problem(name, "<file>", "empty"))
    return problems


@cli_main()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tuner.cluster.check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", type=Path,
                   help="YAML files (default: every config under tuner/cluster/)")
    p.add_argument("--deployable", action="store_true",
                   help="also fail on EDIT_ME placeholders (before `ray up` / `kubectl apply`)")
    args = p.parse_args(argv)
    files = args.files or list(rules.CONFIG_FILES)
    for path in files:
        if not path.is_file():
            raise UserError(f"{path}: no such file; pass cluster YAML files (default: every "
                            "config under tuner/cluster/)")
    total = 0
    for path in files:
        problems = check_file(path, args.deployable)
        total += len(problems)
        print(f"{'ok  ' if not problems else 'FAIL'} {path}")
        for problem in problems:
            print(f"  {problem}")
    print(f"{total} problem(s) in {len(files)} file(s)")
    return 1 if total else 0


if __name__ == "__main__":
    exit_with(main())
