"""``fer_core.cli.cli_main``: a user's mistake is one ``error:`` line and exit 2; a bug keeps its
traceback and exits 1, wherever it is raised (inside training too)."""

from __future__ import annotations

import pytest

from fer_core import engine
from fer_core.cli import (
    BUG_LINE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    MissingPath,
    UnknownName,
    UserError,
    cli_main,
    on_given_path,
)
from fer_core.registry import Registry
from fer_core.train import main as train_main

TINY = dict(synthetic_n=28, img_size=32, batch_size=14, epochs=1)


def command(raise_it):
    """A CLI ``main(argv)`` that raises what ``raise_it(argv)`` returns."""

    @cli_main()
    def main(argv=None):
        raise raise_it(argv)

    return main


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_a_user_error_is_one_line_and_exit_2(capsys):
    assert command(lambda argv: UserError("--n 0: use a value >= 1"))([]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert error_lines(err) == ["error: --n 0: use a value >= 1"] and "Traceback" not in err


@pytest.mark.parametrize("bug", [ValueError("bad shape"), KeyError("layer4"),
                                 FileNotFoundError(2, "No such file", "/opt/model/x.bin"),
                                 RuntimeError("boom")], ids=lambda e: type(e).__name__)
def test_any_other_exception_is_a_bug_with_its_traceback_and_exit_1(bug, capsys):
    assert command(lambda argv: bug)(["--root", "/data/raf"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and type(bug).__name__ in err
    assert err.rstrip().endswith(BUG_LINE)


def test_an_os_error_on_a_path_the_user_gave_is_a_usage_error(tmp_path, capsys):
    given = tmp_path / "raf"
    inside = FileNotFoundError(2, "No such file or directory", str(given / "EmoLabel" / "x.txt"))
    assert command(lambda argv: inside)(["--root", str(given)]) == EXIT_USAGE
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"{given}/EmoLabel/x.txt" in lines[0]
    # `--set data_root=DIR` and sqlite URIs name paths too; a folder above a given output is
    # about it (its creation failed); the working folder above every relative path is not.
    assert on_given_path(inside, ["--set", f"data_root={given}"])
    assert on_given_path(FileNotFoundError(2, "x", str(tmp_path / "s.db")),
                         [f"sqlite:///{tmp_path}/s.db"])
    assert on_given_path(PermissionError(13, "x", str(tmp_path)), ["-o", str(given / "g.png")])
    assert not on_given_path(PermissionError(13, "x", "/"), ["-o", "/g.png"])
    assert not on_given_path(FileNotFoundError(2, "x", "/opt/other"), ["--root", str(given)])
    assert not on_given_path(KeyError("x"), [str(given)])


def test_ctrl_c_exits_130(capsys):
    assert command(lambda argv: KeyboardInterrupt())([]) == EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


def test_a_registry_unknown_name_is_a_user_error_and_a_key_error(capsys):
    registry = Registry("dataset")
    registry.register("rafdb")(object)
    with pytest.raises(KeyError) as raised:
        registry.get("raf")
    assert isinstance(raised.value, UserError) and isinstance(raised.value, UnknownName)
    assert str(raised.value) == "unknown dataset 'raf'; valid names: rafdb"  # no quotes around
    assert command(lambda argv: raised.value)([]) == EXIT_USAGE
    assert isinstance(MissingPath("x"), FileNotFoundError) and str(MissingPath("no x")) == "no x"


def test_a_key_error_raised_inside_training_ends_train_with_its_traceback(tmp_path, capsys,
                                                                           monkeypatch):
    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))

    def broken(self, epoch):
        raise KeyError("val_cl")  # a bug: a metric name the loop expects is missing

    monkeypatch.setattr(engine.Trainer, "run_epoch", broken)
    argv = [f"--set={k}={v}" for k, v in TINY.items()] + ["--out", str(tmp_path / "run"),
                                                          "--no-progress"]
    assert train_main(argv) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: 'val_cl'" in err
    assert "in broken" in err  # the frame that raised it is shown
    assert err.rstrip().endswith(BUG_LINE)


def test_bad_input_to_train_stays_a_usage_error(tmp_path, capsys):
    out = ["--out", str(tmp_path / "run")]
    assert train_main(["--set", "lambda_au=-1", *out]) == EXIT_USAGE
    assert train_main(["--set", "method=nosuch", *out]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 2 and "Traceback" not in err
    assert "lambda_au=-1" in err and "'nosuch'" in err


HOOK = '''
"""Test hook: every Python process started with this folder on PYTHONPATH gets a
fer_core.engine whose Trainer.run_epoch raises a KeyError (a bug inside a trial)."""
import importlib.abc
import importlib.machinery
import sys


class BreakRunEpoch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "fer_core.engine":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)

            def broken(self, epoch):
                raise KeyError("val_cl")

            module.Trainer.run_epoch = broken

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, BreakRunEpoch())
'''


@pytest.mark.slow(reason="a smoke sweep: Ray's start, a trial worker importing torch (minutes)")
def test_a_key_error_inside_a_sweep_trial_is_reported_with_its_traceback(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    project = Path(__file__).resolve().parents[1]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": f"{hook}{os.pathsep}{project}"}
    env.pop("FER_DEBUG", None)
    run = subprocess.run([sys.executable, "-m", "tuner.sweep", "--smoke-test", "--space", "smoke",
                          "--storage-path", str(tmp_path / "rr"), "--trials", "1",
                          "--num-cpus", "1", "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow.db"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == EXIT_FAILED, run.stderr[-3000:]
    errors = list((tmp_path / "rr").rglob("error.txt"))
    assert errors, run.stderr[-3000:]
    trace = errors[0].read_text()
    assert "KeyError: 'val_cl'" in trace and "in broken" in trace  # the trial's own traceback
    assert "FAILED" in run.stderr and "KeyError" in run.stderr
