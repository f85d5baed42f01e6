"""Run a study: its jobs in order, each a sweep started (or resumed) through its command line.

State lives in ``<storage>/<study name>/study.json`` (the MLflow ids and each job's sweeps) and
in MLflow (what is done). A job whose trials are all done is skipped; one whose last sweep was
stopped (Ctrl-C, SIGTERM, a crash) is resumed with ``tuner.sweep --resume``; one whose last
sweep concluded without every trial (a budget stop) or cannot be restored gets a new sweep, in
which the finished trials are reused, not trained again. SIGTERM is an ordinary stop, as Ctrl-C
is (``tuner.checks.signals``): Tune ends the sweep gracefully (trials checkpointed, runs closed)
and the study exits 143.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fer_core import atomic
from fer_core.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, UserError
from tuner.checks.signals import Stop, sigterm_kept
from tuner.study.parts import Job, StudyPlan
from tuner.study.progress import PartProgress, done_trials, spent_hours, study_lines

STATE_FILE = "study.json"
STOPPED = {EXIT_INTERRUPTED: "interrupted", EXIT_TERMINATED: "SIGTERM"}
"""A sweep's exit code when a signal stopped it → why the study stopped."""
ROLE_STUDY = "study"
TAG_STUDY = "study.name"


@dataclass
class StudyState:
    """What a resume needs besides MLflow: the study's run and the sweeps of each job."""

    name: str
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    sweeps: dict[str, list[str]] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        atomic.write_text(folder / STATE_FILE, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, folder: Path) -> StudyState | None:
        path = folder / STATE_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None


class StudyRun:
    """The study's MLflow run, its state file, and its jobs' sweeps."""

    def __init__(self, plan: StudyPlan) -> None:
        from mlflow import MlflowClient

        from tuner.tracking import client as runs
        from tuner.tracking.provenance import git_commit

        self.plan = plan
        self.uri = runs.normalize_uri(plan.args.mlflow_uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.commit = git_commit()
        self.state = self._open()
        self.devices = plan.args.gpus_per_trial or plan.args.cpus_per_trial or 1.0

    def _open(self) -> StudyState:
        from tuner.tracking import client as runs
        from tuner.tracking import schema as tr
        from tuner.tracking.redact import redact

        folder, args = self.plan.folder, self.plan.args
        state = StudyState.load(folder)
        if args.resume:
            if state is None:
                raise UserError(f"no study {self.plan.name!r} in {folder.parent}: start it "
                                "without --resume (or give its --name / --storage-path)")
            runs.reopen(self.client, state.parent_run_id)
            return state
        if state is not None:
            raise UserError(f"study folder {folder} exists: add --resume to continue it, or "
                            "give another --name")
        experiment_id = runs.ensure_experiment(self.client, self.plan.experiment, self.uri)
        run = self.client.create_run(experiment_id, run_name=self.plan.name, tags={
            tr.TAG_ROLE: ROLE_STUDY, TAG_STUDY: self.plan.study.name, "profile": self.plan.profile,
            tr.TAG_GIT_COMMIT: self.commit, "mlflow.source.name": "python -m tuner.study"})
        runs.log_params(self.client, run.info.run_id, {
            "study": self.plan.study.name, "profile": self.plan.profile, "seeds": args.seeds,
            "datasets": ",".join(d or "default" for d in args.datasets),
            "parts": ",".join(j.key for j in self.plan.jobs)})
        state = StudyState(self.plan.name, experiment_id, run.info.run_id, redact(self.uri))
        state.save(folder)
        return state

    # -- progress -------------------------------------------------------------------------

    def progress(self) -> list[PartProgress]:
        from tuner.tracking.provenance import git_commit

        # Read each time, as each sweep reads it at its start: an edited tree is new code,
        # whose sweeps reuse nothing trained before the edit (tuner.search.dedup).
        self.commit = git_commit()
        done = done_trials(self.client, self.state.experiment_id, self.commit)
        return study_lines(self.plan.jobs, done, self.plan.args.seeds, self.devices)

    def show_progress(self, step: int) -> list[PartProgress]:
        """A line per table, printed and logged to the study's run (metrics and a text)."""
        from tuner.tracking import client as runs

        found = self.progress()
        text = "\n".join(p.line() for p in found)
        print("\n" + text, flush=True)
        metrics: dict[str, float] = {}
        for job, p in zip(self.plan.jobs, found, strict=True):
            metrics[f"study/{job.key}/configurations_done"] = p.configurations_done
            metrics[f"study/{job.key}/device_hours"] = p.hours_done
        runs.log_metrics(self.client, self.state.parent_run_id, metrics, step=step)
        self.client.log_text(self.state.parent_run_id, text + "\n", "study_progress.txt")
        return found

    # -- sweeps ---------------------------------------------------------------------------

    def sweep_parent(self, name: str) -> Any | None:
        from tuner.tracking import schema as tr

        found = self.client.search_runs(
            [self.state.experiment_id],
            tr.tag_filter({tr.TAG_SWEEP: name, tr.TAG_ROLE: tr.ROLE_PARENT}), max_results=1)
        return found[0] if found else None

    def restorable(self, name: str) -> bool:
        """The sweep stopped before it concluded and Tune can restore it."""
        from tuner.tracking import schema as tr

        parent = self.sweep_parent(name)
        folder = Path(self.plan.args.storage_path).resolve() / name
        return (parent is not None and parent.info.status != tr.FINISHED
                and any(folder.glob("experiment_state-*.json")))

    def close_left_running(self, name: str) -> None:
        """End every run of a sweep that cannot be restored (a driver killed early)."""
        from tuner.tracking import client as runs
        from tuner.tracking import schema as tr

        for run in runs.iter_runs(self.client, self.state.experiment_id,
                                  tr.tag_filter({tr.TAG_SWEEP: name})
                                  + f" and attributes.status = '{tr.RUNNING}'"):
            runs.end_run(self.client, run.info.run_id, tr.KILLED)

    def sweep_argv(self, job: Job) -> list[str]:
        """Resume the job's last sweep when it can be, else a new sweep's command line."""
        names = self.state.sweeps.setdefault(job.key, [])
        if names and self.restorable(names[-1]):
            return ["--resume", "--name", names[-1], "--storage-path",
                    str(Path(self.plan.args.storage_path).resolve())]
        if names:
            self.close_left_running(names[-1])
        name = f"{self.plan.name}-{job.key}" + (f"-{len(names) + 1}" if names else "")
        names.append(name)
        self.state.save(self.plan.folder)
        argv = [*job.argv, "--name", name, "--parent-run", self.state.parent_run_id]
        budget = self.budget_left()
        if budget is not None:
            argv += ["--budget-hours", f"{max(budget, 1e-6):.6f}"]
        return argv

    def budget_left(self) -> float | None:
        """Trial-hours left of ``--budget-hours`` (every trial run of the study's sweeps)."""
        if self.plan.args.budget_hours is None:
            return None
        from tuner.tracking import client as runs
        from tuner.tracking import schema as tr

        spent = 0.0
        for names in self.state.sweeps.values():
            for name in names:
                spent += spent_hours(runs.iter_runs(
                    self.client, self.state.experiment_id,
                    tr.tag_filter({tr.TAG_SWEEP: name, tr.TAG_ROLE: tr.ROLE_TRIAL})))
        return self.plan.args.budget_hours - spent

    def end(self, status: str) -> None:
        from tuner.tracking import client as runs

        runs.end_run(self.client, self.state.parent_run_id, status)

    def resume_command(self) -> str:
        args = self.plan.args
        return (f"python -m tuner.study {args.study} --resume --name {self.plan.name}"
                f" --storage-path {args.storage_path}"
                + (f" --mlflow-uri {self.state.tracking_uri}" if args.mlflow_uri else ""))


def run_jobs(study: StudyRun) -> tuple[int, str]:
    """Every job in order; (exit code, why it stopped) when one did not complete."""
    from tuner.sweep import main as sweep_main

    for step, job in enumerate(study.plan.jobs):
        index = study.plan.jobs.index(job)
        if study.progress()[index].complete:
            continue
        left = study.budget_left()
        if left is not None and left <= 0:
            return EXIT_OK, "budget"
        print(f"\n== {job.label}: sweep of space {job.part.space} ==", flush=True)
        rc = sweep_main(study.sweep_argv(job))  # its own Ctrl-C/SIGTERM: exit 130/143
        found = study.show_progress(step)
        if rc in STOPPED:
            return rc, STOPPED[rc]
        if rc != EXIT_OK:
            return rc, "failed"
        if not found[index].complete:
            return EXIT_OK, "budget" if study.plan.args.budget_hours is not None else "incomplete"
    return EXIT_OK, ""


def run(plan: StudyPlan) -> int:
    """Run or resume the study; end in the report, its path printed last."""
    import ray

    from tuner.study.price import require_weights
    from tuner.tracking import schema as tr

    require_weights(plan)  # offline without the weights: one line, before anything starts
    study = StudyRun(plan)
    print(f"study {plan.study.name} ({plan.name}) at profile {plan.profile}: "
          f"{len(plan.jobs)} sweeps, {len(plan.all_trials())} distinct trials; MLflow run "
          f"{study.state.parent_run_id} in experiment {plan.experiment}", flush=True)
    owns_ray = not ray.is_initialized()
    status = tr.KILLED
    stop = Stop()
    try:
        with stop:
            if owns_ray:
                with sigterm_kept():  # SIGTERM stays an ordinary stop, not Ray's crash dump
                    if plan.args.address:
                        ray.init(address=plan.args.address)
                    else:
                        ray.init(num_cpus=plan.args.num_cpus, include_dashboard=False)
            study.show_progress(0)
            rc, why = run_jobs(study)
        if not why:
            from tuner.study.report import write_study_report

            path = write_study_report(study)
            status = tr.FINISHED
            print(f"\nReport: {path}", flush=True)
            return EXIT_OK
        status = tr.FAILED if why == "failed" else tr.KILLED
        more = " --budget-hours MORE" if why == "budget" else ""
        print(f"\nstudy stopped ({why}); continue it with:\n  {study.resume_command()}{more}",
              flush=True)
        return rc
    except KeyboardInterrupt:  # between sweeps (Terminated after a SIGTERM)
        print(f"\nstudy {stop.reason}; continue it with:\n  {study.resume_command()}",
              flush=True)
        return stop.exit_code
    except BaseException:
        status = tr.FAILED
        raise
    finally:
        study.end(status)
        if owns_ray and ray.is_initialized():
            ray.shutdown()
        wait_for_helpers()


def wait_for_helpers(timeout_s: float = 600.0) -> None:
    """Let a sweep's background threads (its cost timing runs in one, as a daemon) finish
    before the interpreter ends: a daemon thread inside torch at interpreter exit aborts the
    process (SIGABRT) instead of exiting with the study's code."""
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.daemon and thread.is_alive() \
                and thread.name == "cost-prediction":
            thread.join(timeout_s)
