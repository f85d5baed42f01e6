"""Preemption is an ordinary stop: SIGTERM to a sweep's driver or to a trial's worker.

A batch scheduler, Kubernetes or a preemptible machine stops a job with SIGTERM. The driver
ends as on Ctrl-C (the closing summary, the resume command, every run closed) with exit status
143 and one line saying why, and no native crash dump; a worker stopped under its trial (a node
draining) stops the trial cleanly and Tune retries it from its last checkpoint. Each is tested
on real processes: a sweep driver with its own local Ray, or a small program for the parts.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest
from fault_runs import (
    NATIVE_DUMP,
    driver,
    driver_env,
    resume_argv,
    runs_of,
    sweep_argv,
    training_worker,
    trial_folders,
    wait_for,
)

from fer_core.cli import EXIT_TERMINATED
from tuner.checks.signals import SIGTERM_LINE
from tuner.tracking import schema as tr


def python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=driver_env(),
                          capture_output=True, text=True, timeout=timeout)


def no_native_dump(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(mark in line for mark in NATIVE_DUMP)]


# ---------------------------------------------------------------- the parts, in small programs
def test_sigterm_outside_fit_ends_the_command_with_143_and_one_line():
    done = python("""
        import os, signal, time
        from fer_core.cli import cli_main
        from tuner.checks.signals import Stop

        @cli_main()
        def main(argv):
            with Stop():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)  # the stop arrives here
            return 0

        raise SystemExit(main([]))
    """)
    assert done.returncode == EXIT_TERMINATED, done.stderr
    assert done.stderr.strip() == "stopped by SIGTERM"


@pytest.mark.slow(reason="starts a local Ray in an interpreter of its own")
def test_ray_init_inside_sigterm_kept_leaves_sigterm_to_the_program():
    done = python("""
        import os, signal, time
        import ray
        from tuner.checks.signals import sigterm_kept

        signal.signal(signal.SIGTERM, lambda *a: print("the program's handler", flush=True))
        with sigterm_kept():
            ray.init(num_cpus=1, include_dashboard=False)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        ray.shutdown()
        print("exited normally", flush=True)
    """, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the program's handler" in done.stdout and "exited normally" in done.stdout
    assert not no_native_dump(done.stderr), done.stderr[-3000:]


def test_a_trial_thread_stops_cleanly_when_its_process_exits_under_it():
    # What a worker does on SIGTERM (Ray exits it): the trial's thread, busy inside torch,
    # stops at its next line, its finally runs, and the process ends without an abort.
    done = python("""
        import sys, threading, time
        import torch
        from tuner.checks.signals import WorkerStopping, stopped_at_exit

        def trial():
            with stopped_at_exit():
                try:
                    a = torch.randn(300, 300)
                    while True:
                        a = torch.tanh(a @ a)
                except WorkerStopping:
                    print("trial stopped", flush=True)
                    raise
                finally:
                    print("trial finally ran", flush=True)

        threading.Thread(target=trial, daemon=True).start()
        time.sleep(2)
        sys.exit(1)
    """)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "trial stopped" in done.stdout and "trial finally ran" in done.stdout
    assert not no_native_dump(done.stderr), done.stderr[-3000:]


# ---------------------------------------------------------------- a sweep's driver
@pytest.mark.slow(reason="a smoke sweep stopped by SIGTERM, then resumed: two drivers")
def test_sigterm_to_the_driver_stops_the_sweep_as_ctrl_c_and_resume_finishes(tmp_path,
                                                                           record_property):
    argv = sweep_argv(tmp_path, "t", "--trials", "2", "--set", "epochs=4")
    with driver(argv, tmp_path) as d:
        wait_for(lambda: training_worker(d, tmp_path, "t"), "a trial's first epoch", d)
        d.proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = d.wait()
        stop_s = time.monotonic() - began
    assert code == EXIT_TERMINATED, d.tail()
    assert f"{SIGTERM_LINE}: the Resume line above continues the sweep" in d.err
    assert f"python -m tuner.sweep --resume --name t --storage-path {tmp_path / 'rr'}" in d.out
    assert "best trial per arm" in d.out  # the closing summary
    assert not no_native_dump(d.err), d.tail()
    parents, trials = runs_of(tmp_path)
    assert trials and tr.RUNNING not in {r.info.status for r in parents + trials}

    began = time.monotonic()
    with driver(resume_argv(tmp_path, "t"), tmp_path, log="resume") as again:
        assert again.wait() == 0, again.tail()
    record_property("stop_s", round(stop_s, 1))
    record_property("resume_s", round(time.monotonic() - began, 1))
    parents, trials = runs_of(tmp_path)
    assert {r.info.status for r in parents + trials} == {tr.FINISHED}
    per_trial = Counter(r.data.tags[tr.TAG_TRIAL_ID] for r in trials)
    assert len(per_trial) == len(trial_folders(tmp_path, "t")) == 2
    assert set(per_trial.values()) == {1}  # one run per trial


# ---------------------------------------------------------------- a trial's worker
@pytest.mark.slow(reason="a smoke sweep whose trial worker is stopped by SIGTERM and retried")
def test_sigterm_to_a_trial_worker_retries_the_trial_without_a_crash_dump(tmp_path,
                                                                          record_property):
    argv = sweep_argv(tmp_path, "w", "--trials", "1", "--set", "epochs=6")
    with driver(argv, tmp_path) as d:
        folder, worker = wait_for(lambda: training_worker(d, tmp_path, "w"),
                                  "a trial's first epoch", d)
        worker.send_signal(signal.SIGTERM)  # a node draining
        began = time.monotonic()
        assert d.wait() == 0, d.tail()
    record_property("retry_to_end_s", round(time.monotonic() - began, 1))
    assert not no_native_dump(d.err + d.out), d.tail()
    assert "The process receives a SIGTERM" in (folder / "error.txt").read_text()
    _, (run,) = runs_of(tmp_path)
    assert run.info.status == tr.FINISHED
    assert run.data.tags[tr.TAG_ATTEMPTS] == "2"  # the retry reopened the same run
    from helpers import metric_steps

    assert metric_steps(f"sqlite:///{tmp_path}/mlflow.db", run.info.run_id) == [1, 2, 3, 4, 5, 6]
