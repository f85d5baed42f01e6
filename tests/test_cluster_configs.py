"""The cluster configs under tuner/cluster/ and their checker (python -m tuner.cluster.check).

Fast: YAML, Ray's own autoscaler schema and config preparation, ``tuner.cli``; no cloud, no
Kubernetes API. Broken copies of the shipped files must fail with a message naming the field.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from tuner.cli import parse_args
from tuner.cluster.check import check_file, main, ray_schema, ray_version
from tuner.cluster.rules import CLUSTER_DIR, CONFIG_FILES, shared_path_problem, sweep_calls

LAUNCHERS = [CLUSTER_DIR / "aws.yaml", CLUSTER_DIR / "gcp.yaml"]
KUBERAY = CLUSTER_DIR / "kuberay"


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def problems(docs: list[dict], tmp_path: Path, name: str = "broken.yaml") -> str:
    """Messages of the checker on ``docs`` written to a file (one string, one per line)."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return "\n".join(str(p) for p in check_file(path))


def replace_in_commands(doc: dict, key: str, old: str, new: str) -> dict:
    doc = copy.deepcopy(doc)
    hits = [c for c in doc[key] if old in c]
    assert hits, f"{old!r} not in {key}: the test no longer edits what it means to"
    doc[key] = [c.replace(old, new) for c in doc[key]]
    return doc


def all_sweep_calls(path: Path) -> list[list[str]]:
    """The flags of every ``python -m tuner.sweep`` in any string of the file."""
    return [call.argv for doc in load(path) for text in _strings(doc)
            for call in sweep_calls(text)]


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


# ---------------------------------------------------------------- the shipped files

@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_config_parses_and_passes_the_checker(path):
    assert load(path), f"{path} has no YAML document"
    assert check_file(path) == []


def test_cli_checks_every_shipped_config_by_default(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(str(p) in out for p in CONFIG_FILES)
    assert "0 problem(s) in 5 file(s)" in out


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_launcher_configs_pass_rays_own_preparation_and_validation(path):
    # What `ray up` does before it contacts the cloud: merge the provider's defaults, validate.
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(load(path)[0]))
    validate_config(prepared)
    assert prepared["docker"]["worker_image"].startswith(f"rayproject/ray:{ray_version()}-")
    assert prepared["available_node_types"]["worker_gpu"]["min_workers"] == 0
    # Ray merges setup_commands into both roles: workers get the MLflow alias and the project,
    # the head also the sweep wrapper.
    assert any("fer-mlflow" in c for c in prepared["worker_setup_commands"])
    assert any("au-guided-fer" in c for c in prepared["worker_setup_commands"])
    assert any("~/fer-sweep" in c for c in prepared["head_setup_commands"])


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_mlflow_alias_points_workers_at_the_head(path, tmp_path):
    # The worker's setup command, as Ray's autoscaler runs it (RAY_HEAD_IP exported), on a copy
    # of a hosts file: the stale alias is replaced by the head's address.
    from ray.autoscaler._private.util import with_head_node_ip

    command = next(c for c in load(path)[0]["setup_commands"] if "fer-mlflow" in c)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.9.9.9 fer-mlflow\n")
    local = command.replace("/etc/hosts", str(hosts)).replace("sudo ", "")
    local = local.replace("/tmp/hosts.fer", str(tmp_path / "hosts.new"))
    subprocess.run(["bash", "-c", with_head_node_ip([local], "10.1.2.3")[0]], check=True)
    assert hosts.read_text() == "127.0.0.1 localhost\n10.1.2.3 fer-mlflow\n"


def test_rayjob_runs_on_the_same_cluster_spec_as_raycluster():
    cluster = load(KUBERAY / "raycluster.yaml")[0]["spec"]
    job = load(KUBERAY / "rayjob.yaml")[0]["spec"]["rayClusterSpec"]
    assert job == cluster


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml", "kuberay/rayjob.yaml"])
def test_sweep_command_lines_parse_with_the_sweep_cli(name):
    calls = all_sweep_calls(CLUSTER_DIR / name)
    assert calls, f"no python -m tuner.sweep in {name}"
    for argv in calls:
        args = parse_args(argv)
        assert args.address == "auto"
        assert args.storage_path.startswith("/mnt/fer/")
        assert args.mlflow_uri == "http://fer-mlflow:5000"
        # The launchers' ~/fer-sweep appends the user's flags after the cluster's.
        assert parse_args([*argv, "--space", "methods", "--resume"]).resume


def test_deployable_mode_lists_every_placeholder(capsys):
    assert main(["--deployable", str(CLUSTER_DIR / "aws.yaml")]) == 1
    out = capsys.readouterr().out
    for field in ("ImageId", "initialization_commands[1]", "setup_commands[1]"):
        assert field in out and "EDIT_ME" in out


# ---------------------------------------------------------------- broken launcher copies

@pytest.fixture(scope="module")
def aws() -> dict:
    return load(CLUSTER_DIR / "aws.yaml")[0]


def test_schema_error_names_the_field(aws, tmp_path):
    doc = copy.deepcopy(aws)
    doc["available_node_types"]["worker_gpu"]["min_workers"] = "zero"
    doc["max_worker"] = 3  # a typo of max_workers
    out = problems([doc], tmp_path)
    assert "available_node_types.worker_gpu.min_workers" in out
    assert "'zero' is not of type 'integer'" in out
    assert "'max_worker' was unexpected" in out
    assert f"Ray {ray_version()} autoscaler schema" in out
    assert "max_workers" in ray_schema()["properties"]  # the schema file of the installed Ray


def test_launcher_needs_bounds_gpus_and_idle_timeout(aws, tmp_path):
    doc = copy.deepcopy(aws)
    del doc["available_node_types"]["worker_gpu"]["max_workers"]
    doc["available_node_types"]["worker_gpu"]["resources"] = {"CPU": 4}
    del doc["idle_timeout_minutes"]
    out = problems([doc], tmp_path)
    assert "available_node_types.worker_gpu.max_workers: missing" in out
    assert "no worker type declares GPU resources" in out
    assert "idle_timeout_minutes: missing" in out


@pytest.mark.parametrize(("key", "old", "new", "expected"), [
    ("head_start_ray_commands", "--dashboard-host=127.0.0.1", "--dashboard-host=0.0.0.0",
     "--dashboard-host=0.0.0.0 publishes the dashboard"),
    ("worker_start_ray_commands", "RAY_AUTH_MODE=token ray start", "ray start",
     "worker_start_ray_commands[1]: `ray start` without RAY_AUTH_MODE=token"),
    ("head_start_ray_commands", "RAY_AUTH_MODE=token", "RAY_AUTH_MODE=disabled",
     "RAY_AUTH_MODE is not token"),
    ("setup_commands", "pip install", "RAY_AUTH_TOKEN=0123abcd pip install",
     "setup_commands[1]: a Ray token is written inline"),
    ("head_setup_commands", "--storage-path /mnt/fer/ray_results", "--storage-path ray_results",
     "--storage-path ray_results is relative"),
    ("head_setup_commands", "--storage-path /mnt/fer/ray_results",
     "--storage-path hdfs://namenode/ray_results", "hdfs:// is not a storage these clusters"),
    ("head_setup_commands", "--storage-path /mnt/fer/ray_results",
     "--storage-path file:///tmp/ray_results",
     "--storage-path file:///tmp/ray_results is not on a filesystem every node mounts"),
    ("head_setup_commands", "--cache-dir /mnt/fer/data_cache", "--cache-dir s3://fer-bucket/c",
     "--cache-dir s3://fer-bucket/c: a URI, but --cache-dir must be a folder"),
    ("head_setup_commands", "--cache-dir /mnt/fer/data_cache", "--cache-dir /tmp/cache",
     "--cache-dir /tmp/cache is not on a filesystem every node mounts (shared: /mnt/fer)"),
    ("head_setup_commands", "--mlflow-uri http://fer-mlflow:5000",
     "--mlflow-uri sqlite:////home/ray/mlflow.db", "a sqlite store lives on one node"),
    ("head_setup_commands", "--mlflow-uri http://fer-mlflow:5000",
     "--mlflow-uri http://127.0.0.1:5000", "is the driver's loopback"),
    ("head_setup_commands", "--mlflow-uri http://fer-mlflow:5000",
     "--mlflow-uri http://fer:s3cret@fer-mlflow:5000", "a password inside a URI"),
    ("head_setup_commands", "--address auto ", "", "--address missing"),
    ("head_setup_commands", "export TUNE_MAX_PENDING_TRIALS_PG", "export TUNE_MAX",
     "TUNE_MAX_PENDING_TRIALS_PG is not set for the sweep"),
    ("head_setup_commands", "--storage-path", "--storage-pth",
     "does not parse with tuner.cli"),
    ("head_setup_commands", "-m tuner.sweep", "-m tuner.train",
     "no `python -m tuner.sweep` command found"),
])
def test_broken_launcher_copy_fails_naming_the_problem(aws, tmp_path, key, old, new, expected):
    out = problems([replace_in_commands(aws, key, old, new)], tmp_path)
    assert expected in out, out


@pytest.mark.parametrize("storage", ["s3://fer-bucket/ray_results", "gs://fer-bucket/ray_results",
                                     "s3://fer-bucket/r?region=eu-west-1",
                                     "file:///mnt/fer/ray_results"])
def test_tune_storage_may_be_object_storage_or_a_shared_file_uri(aws, tmp_path, storage):
    doc = replace_in_commands(aws, "head_setup_commands", "--storage-path /mnt/fer/ray_results",
                              f"--storage-path {storage}")
    assert problems([doc], tmp_path) == ""


@pytest.mark.parametrize(("flag", "value"), [
    ("--cache-dir", "gs://fer-bucket/cache"), ("--data-root", "s3://fer-bucket/RAF-DB")])
def test_only_the_tune_storage_takes_object_storage(flag, value):
    message = shared_path_problem(flag, value, ["/mnt/fer"])
    assert message and f"{flag} must be a folder" in message and "/mnt/fer" in message
    assert shared_path_problem("--storage-path", value, ["/mnt/fer"], uri_ok=True) is None


def test_public_security_group_rule_fails(aws, tmp_path):
    doc = copy.deepcopy(aws)
    doc["provider"]["security_group"] = {"GroupName": "fer", "IpPermissions": [
        {"FromPort": 22, "ToPort": 22, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"FromPort": 8265, "ToPort": 8265, "IpProtocol": "tcp",
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ]}
    out = problems([doc], tmp_path)
    assert "provider.security_group.IpPermissions[1]: opens ports 8265-8265" in out
    assert "IpPermissions[0]" not in out


def test_token_must_reach_the_nodes(aws, tmp_path):
    doc = copy.deepcopy(aws)
    doc["file_mounts"] = {}
    assert "file_mounts: the Ray token never reaches the nodes" in problems([doc], tmp_path)


def test_shared_paths_need_the_network_mount(aws, tmp_path):
    doc = replace_in_commands(aws, "initialization_commands", "/ /mnt/fer)", "/ /mnt/efs)")
    out = problems([doc], tmp_path)
    assert "--storage-path /mnt/fer/ray_results is not on a filesystem every node mounts" in out


# ---------------------------------------------------------------- broken KubeRay copies

@pytest.fixture(scope="module")
def raycluster() -> dict:
    return load(KUBERAY / "raycluster.yaml")[0]


@pytest.fixture(scope="module")
def rayjob() -> dict:
    return load(KUBERAY / "rayjob.yaml")[0]


def test_worker_group_without_max_replicas_fails(raycluster, tmp_path):
    doc = copy.deepcopy(raycluster)
    del doc["spec"]["workerGroupSpecs"][0]["maxReplicas"]
    out = problems([doc], tmp_path)
    assert "spec.workerGroupSpecs[0].maxReplicas: missing" in out


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda s: s["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]
     ["limits"].pop("nvidia.com/gpu"), "workerGroupSpecs[0].template.spec.containers[0]"
                                      ".resources.limits: no nvidia.com/gpu limit"),
    (lambda s: s.update(enableInTreeAutoscaling=False), "spec.enableInTreeAutoscaling"),
    (lambda s: s.update(authOptions={"mode": "disabled"}), "spec.authOptions.mode: must be token"),
    (lambda s: s.update(rayVersion="2.40.0"), "spec.rayVersion: '2.40.0' is not the Ray"),
    (lambda s: s["headGroupSpec"].update(serviceType="LoadBalancer"),
     "spec.headGroupSpec.serviceType: LoadBalancer publishes the Ray head"),
    (lambda s: s["headGroupSpec"].pop("rayStartParams"), "headGroupSpec.rayStartParams: missing"),
    (lambda s: s["workerGroupSpecs"][0].update(minReplicas=1, replicas=1),
     "no group scales to zero"),
    (lambda s: s["headGroupSpec"]["template"]["spec"]["containers"][0].update(
        env=[{"name": "RAY_AUTH_TOKEN", "value": "0123abcd"}]),
     "containers[0].env[0]: RAY_AUTH_TOKEN is set inline: reference a Secret"),
])
def test_broken_raycluster_copy_fails_naming_the_field(raycluster, tmp_path, edit, expected):
    doc = copy.deepcopy(raycluster)
    edit(doc["spec"])
    out = problems([doc], tmp_path)
    assert expected in out, out


def test_inline_token_via_secret_ref_is_fine(raycluster, tmp_path):
    doc = copy.deepcopy(raycluster)
    doc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "RAY_AUTH_TOKEN",
         "valueFrom": {"secretKeyRef": {"name": "fer-ray-token", "key": "auth_token"}}}]
    assert problems([doc], tmp_path) == ""


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda s: s.update(shutdownAfterJobFinishes=False), "spec.shutdownAfterJobFinishes"),
    (lambda s: s.pop("rayClusterSpec"), "spec.rayClusterSpec: missing"),
    (lambda s: s.update(entrypoint="python train.py"), "no `python -m tuner.sweep` command"),
    (lambda s: s.update(entrypoint=s["entrypoint"].replace("--mlflow-uri http://fer-mlflow:5000",
                                                           "")), "--mlflow-uri missing"),
    (lambda s: s["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"].update(
        volumes=[]), "--storage-path /mnt/fer/ray_results is not on a filesystem every node"),
])
def test_broken_rayjob_copy_fails_naming_the_field(rayjob, tmp_path, edit, expected):
    doc = copy.deepcopy(rayjob)
    edit(doc["spec"])
    out = problems([doc], tmp_path)
    assert expected in out, out


def test_public_dashboard_service_and_committed_secret_fail(tmp_path):
    docs = load(KUBERAY / "mlflow.yaml")
    docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ray-dashboard"},
                 "spec": {"type": "LoadBalancer", "ports": [{"port": 8265}]}})
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "fer-ray-token"},
                 "stringData": {"auth_token": "0123abcd"}})
    out = problems(docs, tmp_path)
    assert "Service ray-dashboard: spec.type: LoadBalancer publishes the service" in out
    assert "Secret fer-ray-token: kind: a Secret in a config file is an inline secret" in out
    assert "fer-mlflow" not in out  # the shipped documents are still fine


def test_unknown_kind_and_bad_yaml_are_reported(tmp_path, capsys):
    out = problems([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}],
                   tmp_path)
    assert "unknown cluster document kind 'ConfigMap'" in out and "RayJob" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [unclosed\n")
    assert main([str(bad)]) == 1
    assert "cannot read it as YAML" in capsys.readouterr().out


@pytest.mark.parametrize("corrupt", [
    lambda d: d.update(metadata=[]),
    lambda d: d["spec"].update(workerGroupSpecs=[3]),
    lambda d: d["spec"].update(headGroupSpec="x"),
    lambda d: d["spec"]["workerGroupSpecs"][0].update(template={"spec": {"containers": [7]}}),
])
def test_fields_of_the_wrong_shape_are_reported_not_crashed_on(raycluster, tmp_path, corrupt):
    doc = copy.deepcopy(raycluster)
    corrupt(doc)
    assert problems([doc], tmp_path)  # reported, whatever the wording


@pytest.mark.parametrize("path", LAUNCHERS, ids=lambda p: p.name)
def test_fer_sweep_wrapper_is_a_valid_script_running_the_sweep(path, tmp_path):
    command = next(c for c in load(path)[0]["head_setup_commands"] if "~/fer-sweep" in c)
    script = tmp_path / "fer-sweep"
    subprocess.run(["bash", "-c", command.replace("~/fer-sweep", str(script))], check=True)
    subprocess.run(["bash", "-n", str(script)], check=True)  # syntax only, nothing runs
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n") and 'TUNE_MAX_PENDING_TRIALS_PG="${' in text
    [call] = sweep_calls(text)
    assert text.rstrip().endswith('"$@"')  # the user's flags come last and win
    assert parse_args(call.argv).storage_path == "/mnt/fer/ray_results"
