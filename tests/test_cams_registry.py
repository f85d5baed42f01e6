"""CAM methods are found, not listed: each module declares its name, label, rank and
hyperparameters, and a method shipped outside the package (an entry point of the group
``fer_core.cams``) reaches the registry, the flat config, ``--set``, the sweep's ``--list`` and
the tables without any other file being edited."""

from __future__ import annotations

import dataclasses
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fer_core.cams
import fer_core.methods
from fer_core.cams import METHODS, CamMethod
from fer_core.cams.registry import ENTRY_POINT_GROUP, register_method
from fer_core.config import ExperimentConfig, field_owners

PLUGIN = "fer_test_plugin_cam"
PLUGIN_SOURCE = '''
"""A CAM whose maps are scaled by a hyperparameter of its own (a test plugin)."""

from dataclasses import dataclass

from fer_core.cams.cam import CAM
from fer_core.cams.registry import register_method
from fer_core.config import check_fractions


@dataclass(frozen=True)
class ScaledParams:
    scaledcam_gain: float = 0.25

    def __post_init__(self) -> None:
        check_fractions(self, "scaledcam_gain")


@register_method("scaledcam", label="Scaled CAM", params=ScaledParams)
class ScaledCAM(CAM):
    def class_maps(self, feat):
        return self.params.scaledcam_gain * super().class_maps(feat)
'''

PROBE = '''
import json
from analysis.tables import TABLES, Table, method_rows
from fer_core.cams import METHODS, build_method
from fer_core.config import ExperimentConfig, ModelConfig, parse_overrides

cfg = ExperimentConfig.from_flat(parse_overrides(["method=scaledcam", "scaledcam_gain=0.5"]))
model = build_method(cfg.method, ModelConfig(backbone="resnet18"), img_size=32)
try:
    ExperimentConfig.from_flat({"scaledcam_gain": "2"})
    error = ""
except ValueError as err:
    error = str(err)
table = Table(TABLES[1], method_rows(METHODS.names()), {}, "e", run_count=0, commits=[])
print(json.dumps({
    "names": METHODS.names(),
    "defaults": ExperimentConfig().to_flat(),
    "set": cfg.to_flat()["scaledcam_gain"],
    "model_gain": model.params.scaledcam_gain,
    "error": error,
    "labels": [table.label(row) for row in table.rows],
}))
'''


def _plugin_env(tmp_path: Path) -> dict[str, str]:
    """A directory with the plugin module and the dist-info an installed package would have:
    on the path of a subprocess, importlib.metadata finds its entry point as it would after
    ``pip install``; nothing is written into the project's own package."""
    (tmp_path / f"{PLUGIN}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    info = tmp_path / f"{PLUGIN}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PLUGIN}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nscaledcam = {PLUGIN}\n")
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow(reason="a fresh interpreter finds the plugin by its entry point, then resolves a "
                         "sweep")
def test_a_plugin_method_reaches_registry_config_sweep_list_and_tables(tmp_path) -> None:
    env = _plugin_env(tmp_path)
    got = json.loads(_run(["-c", PROBE], env).strip().splitlines()[-1])
    names = METHODS.names()  # this process has no plugin: the built-in methods
    assert got["names"] == [*names, "scaledcam"]  # after the paper's methods (default rank)
    assert got["defaults"]["scaledcam_gain"] == 0.25
    assert {k: v for k, v in got["defaults"].items() if k != "scaledcam_gain"} == (
        ExperimentConfig().to_flat())  # every existing field keeps its name and default
    assert got["set"] == 0.5 and got["model_gain"] == 0.5  # --set reaches the method
    assert "scaledcam_gain=2.0" in got["error"] and "[0, 1]" in got["error"]
    assert got["labels"] == [*METHODS.labels().values(), "Scaled CAM"]

    listing = _run(["-m", "tuner.sweep", "--space", "methods", "--list"], env)
    row = next(line for line in listing.splitlines() if line.startswith("methods "))
    assert "scaledcam" in row and all(name in row for name in names)
    assert row.split()[1] == str(2 * (len(names) + 1))  # × {without, with AU}


def test_a_broken_plugin_fails_with_its_name(tmp_path) -> None:
    env = _plugin_env(tmp_path)
    (tmp_path / f"{PLUGIN}.py").write_text("import not_a_module_anywhere\n")
    done = subprocess.run([sys.executable, "-c", "import fer_core.cams"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert f"'scaledcam' = '{PLUGIN}'" in done.stderr and "not_a_module_anywhere" in done.stderr


def test_every_package_module_is_discovered_and_declares_itself() -> None:
    package_modules = {f"fer_core.cams.{m.name}" for m in pkgutil.iter_modules(
        fer_core.cams.__path__)}
    declarations = {f"fer_core.methods.{m.name}" for m in pkgutil.iter_modules(
        fer_core.methods.__path__)}
    # imported by discovery, no list involved
    assert package_modules | declarations <= set(sys.modules)
    for module in package_modules:  # every method class defined in the package is registered
        for obj in vars(sys.modules[module]).values():
            if isinstance(obj, type) and issubclass(obj, CamMethod) and "name" in vars(obj):
                assert METHODS.load(obj.name) is obj
    defaults = ExperimentConfig().method
    owners = field_owners()
    for name in METHODS.names():
        info, klass = METHODS.get(name), METHODS.load(name)
        assert info.label and type(info).__module__ == "fer_core.methods"
        assert klass.__module__ in package_modules and klass.label == info.label
        params = klass.Params()
        assert defaults.params_of(name) == params  # config defaults = the method's own
        for f in dataclasses.fields(params):
            assert owners[f.name][0] == "method"  # a flat field under its own name


def test_names_labels_and_hyperparameters_are_read_without_torch() -> None:
    # What a command line checks (--set keys, method names, values) comes from the
    # declarations; the networks' modules (torch, timm) are imported only to build a model.
    probe = ("import json, sys; from fer_core.config import ExperimentConfig, field_owners; "
             "from fer_core.methods import discover; "
             "cfg = ExperimentConfig.from_flat({'method': 'wildcat', 'wildcat_kmax': '0.3'}); "
             "print(json.dumps([discover().names(), cfg.method.params_of().wildcat_kmax, "
             "'wildcat_kmin' in field_owners(), "
             "sorted(m for m in ('torch', 'timm') if m in sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    names, kmax, has_field, heavy = json.loads(done.stdout.strip().splitlines()[-1])
    assert names == METHODS.names() and kmax == 0.3 and has_field and heavy == []


def test_registration_rejects_a_non_dataclass_params() -> None:
    with pytest.raises(TypeError, match="frozen dataclass"):
        register_method("bad", label="Bad", params=dict)
