"""``fer_core.cli.exit_with``: a command's process ends with its code, its ``atexit`` handlers
run and its output flushed, without the interpreter's last full garbage collection."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=False)


def test_exit_with_keeps_the_code_the_atexit_handlers_and_the_output():
    done = run("""
        import atexit, sys
        from fer_core.cli import exit_with
        atexit.register(lambda: print("atexit ran", flush=True))
        sys.stdout.write("unflushed line\\n")
        exit_with(3)
    """)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == ["unflushed line", "atexit ran"]


def test_exit_with_leaves_the_objects_out_of_the_last_collection():
    # An object in a reference cycle is freed only by a collection: at exit its finalizer runs
    # under sys.exit (the last collection finds it) and not under exit_with.
    program = """
        import gc, sys
        from fer_core.cli import exit_with
        class Cycle:
            def __del__(self):
                sys.stdout.write("collected\\n"); sys.stdout.flush()
        a = Cycle(); a.me = a
        del a
        {end}
    """
    assert "collected" in run(program.format(end="sys.exit(0)")).stdout
    assert "collected" not in run(program.format(end="exit_with(0)")).stdout
