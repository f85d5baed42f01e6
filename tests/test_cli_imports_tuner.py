"""The tuner's command lines answer ``--help`` and usage errors without the heavy libraries.

Each case runs in a fresh interpreter (a test process has torch and Ray loaded long before):
it imports the command's module, runs its ``main`` on the arguments, and reports which of
torch, timm, Ray and MLflow ended up in ``sys.modules``. They belong to the functions that do
the work (train, sweep, talk to MLflow), not to reading a command line.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "timm", "ray", "mlflow")

PROBE = """
import json, sys
from {module} import main
try:
    code = main({argv!r})
except SystemExit as stop:  # argparse's --help and usage errors
    code = stop.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(json.dumps({{"code": code, "heavy": sorted({{m.split(".")[0] for m in heavy}})}}))
"""


def probe(module: str, argv: list[str], cwd) -> dict:
    """``main(argv)`` of ``module`` in a fresh interpreter: its exit code, the heavy imports."""
    code = PROBE.format(module=module, argv=argv, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


CASES = [
    ("tuner.sweep", ["--help"], 0),
    ("tuner.sweep", ["--estimate", "--trials", "0"], 2),  # not a positive number
    ("tuner.sweep", ["--max-missing-landmarks", "2"], 2),  # a share is in [0, 1]
    ("tuner.sweep", ["--scheduler", "hyperband"], 2),
    ("tuner.sweep", ["--resume", "--name", "nosuch", "--storage-path", "{tmp}"], 2),
    ("tuner.sweep", ["--set", "epochs"], 2),  # KEY=VALUE
    # The spaces, the CAM methods' names and hyperparameters: declared without Ray or torch.
    ("tuner.sweep", ["--list"], 0),
    ("tuner.sweep", ["--space", "nosuch"], 2),
    ("tuner.sweep", ["--set", "nosuch=1"], 2),  # unknown field: the valid ones listed
    ("tuner.sweep", ["--set", "lambda_au=-1"], 2),  # a value out of range
    ("tuner.sweep", ["--space", "methods", "--set", "method=nosuch"], 2),
    ("tuner.sweep", ["--set", "wildcat_kmax=2"], 2),  # a method's own hyperparameter
    ("tuner.sweep", ["--metric", "test_cl"], 2),
    ("tuner.sweep", ["--dataset", "rafdb", "--data-root", "{tmp}/nowhere"], 2),  # missing path
    ("tuner.sweep", ["--set", "pretrained={tmp}/nowhere.pt"], 2),
    ("tuner.sweep", ["--storage-path", "s3://bucket/sweeps"], 2),  # no --cache-dir
    ("tuner.cluster.check", ["--help"], 0),
    ("tuner.cluster.check", ["{tmp}/nowhere.yaml"], 2),
    ("tuner.study.cli", ["--help"], 0),
    ("tuner.study.cli", ["paper", "--seeds", "0"], 2),  # not a positive number
    ("tuner.study.cli", ["nosuch"], 2),  # an unknown study: the valid names listed
    ("tuner.study.cli", ["paper", "--profile", "huge"], 2),  # an unknown profile, likewise
    ("tuner.study.cli", ["paper", "--set", "nosuch=1"], 2),  # checked by each part's sweep
    ("tuner.study.cli", ["paper", "--set", "lambda_au=-1"], 2),
    ("tuner.study.cli", ["paper", "--dataset", "nosuch"], 2),
    ("tuner.study.cli", ["paper", "--dataset", "rafdb", "--dataset", "affectnet",
                     "--data-root", "{tmp}"], 2),  # several datasets: DATASET=PATH
    ("tuner.mlflow_server", ["--help"], 0),
    ("tuner.mlflow_server", ["--port", "99999"], 2),
    ("tuner.mlflow_replay", ["--help"], 0),
    ("tuner.mlflow_replay", ["{tmp}/nowhere.jsonl"], 2),
]


@pytest.mark.parametrize(("module", "argv", "code"), CASES,
                         ids=[f"{m}:{' '.join(a)}" for m, a, _ in CASES])
def test_reading_the_command_line_imports_no_heavy_library(tmp_path, module, argv, code):
    argv = [a.format(tmp=tmp_path) for a in argv]
    result = probe(module, argv, tmp_path)
    assert result["code"] == code
    assert result["heavy"] == []


def test_the_probe_sees_a_heavy_import(tmp_path):
    # The check above could pass by never looking: a command that does import MLflow must show.
    code = PROBE.format(module="tuner.tracking.client", argv=None, heavy=HEAVY)
    code = code.replace("from tuner.tracking.client import main", "import mlflow\nmain = print")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1])["heavy"] == ["mlflow"]
