"""The ``fer_core`` and ``analysis`` command lines answer ``--help`` and a usage error without
importing torch, timm, Ray or MLflow (seconds each here): one fresh process imports each CLI
module in turn, runs its ``main`` on both, and reports what got imported after each."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("torch", "timm", "ray", "mlflow")

CASES = {  # module -> its usage errors (an unknown name, a value out of range, a missing path)
    "fer_core.train": [["--set", "lambda_au=-1"], ["--set", "nosuch=1"],
                       ["--set", "wildcat_kmax=2"],  # a CAM method's own hyperparameter
                       ["--set", "method=nosuch"]],
    "fer_core.explain": [["no_such_photo.png", "--checkpoint", "x.pt", "-o", "out.png"]],
    "fer_core.data.__main__": [["preview", "--dataset", "nosuch", "-o", "grid.png"]],
    "fer_core.data.landmarks": [["--dataset", "rafdb", "--root", "no_such_folder"]],
    "analysis.tables": [["--experiment", "demo", "--table", "9"]],
    "analysis.figures": [["--experiment", "demo", "--figure", "nosuch", "-o", "figures"]],
    "analysis.report": [["--experiment", "demo", "--figure", "nosuch"]],
    "analysis.shortcut": [["--experiment", "demo", "--format", "nosuch"]],
    "fer_core.shortcut_eval": [["--images", "0"]],
    "fer_core.xai_reliability": [["--images", "1"]],
    "fer_core.weights": [["nosuch"]],
}

PROGRAM = textwrap.dedent("""
    import contextlib, importlib, io, json, sys
    cases, heavy = json.loads(sys.argv[1]), sys.argv[2].split(",")
    report = {}
    for module, usage_errors in cases.items():
        main = importlib.import_module(module).main
        codes = []
        for argv in (["--help"], *usage_errors):
            with contextlib.redirect_stdout(io.StringIO()), \\
                    contextlib.redirect_stderr(io.StringIO()):
                try:
                    codes.append(main(argv))
                except SystemExit as done:
                    codes.append(done.code)
        report[module] = {"codes": codes, "heavy": [h for h in heavy if h in sys.modules]}
    print(json.dumps(report))
""")


def test_cli_modules_answer_help_and_usage_errors_without_heavy_imports(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROGRAM, json.dumps(CASES), ",".join(HEAVY)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(report) == list(CASES)
    for module, seen in report.items():
        # --help, then each usage error
        assert seen["codes"] == [0] + [2] * len(CASES[module]), (module, seen)
        assert seen["heavy"] == [], f"{module} imported {seen['heavy']}"
