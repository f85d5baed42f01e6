"""The end of a sweep: its summary read back from MLflow, attached to the parent run, the best
model registered on request, and the parent run ended with the sweep's status.

Trials the gate skipped as already done are represented by their earlier runs; the gate's
record adds the skips and the budget, the saved prediction its price against the actual hours.
The parent ends KILLED when some trial did not conclude (an interrupted sweep: resumable).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from tuner.cost.estimate import Prediction
from tuner.results.next_steps import report_command
from tuner.results.summary import SUMMARIES, Summary, TrialRow
from tuner.search.gate import GateRecord
from tuner.spec.context import StoragePath, SweepContext
from tuner.tracking import client as runs
from tuner.tracking import outputs, ui
from tuner.tracking import schema as tr

if TYPE_CHECKING:
    from mlflow import MlflowClient


def close_sweep(ctx: SweepContext, status: str, wall_s: float, folder: StoragePath) -> str:
    """Summarise the sweep into its parent run and end that run; the summary's text."""
    target = ctx.target
    client = target.client()
    if status != tr.FINISHED:  # else the callback ended the stragglers when fit() ended
        runs.finish_stragglers(client, target, {})  # KILLED
    trial_runs = runs.sweep_trial_runs(client, target)
    trials = [TrialRow.from_run(r) for r in trial_runs]
    if status == tr.FINISHED and any(t.status == tr.KILLED for t in trials):
        status = tr.KILLED
    record = GateRecord.load(folder)  # None: a sweep started before the gate existed
    summary = summarise(ctx, client, trials, trial_runs, record, folder)
    text = summary.markdown()
    client.log_text(target.parent_run_id, text, tr.SUMMARY_FILES[0])
    client.log_dict(target.parent_run_id, summary.as_dict(), tr.SUMMARY_FILES[1])
    counts = {
        tr.SWEEP_TRIALS: len(trials),
        tr.SWEEP_FINISHED: sum(t.complete for t in trials),
        tr.SWEEP_EARLY_STOPPED: sum(t.early_stopped for t in trials),
        tr.SWEEP_FAILED: sum(t.status == tr.FAILED for t in trials),
        tr.SWEEP_WALL_S: wall_s,
        **(record.metrics() if record else {}),
    }
    best = ui.best_run(trial_runs, ctx.settings.objective)
    if best is not None:  # the parent shows the winner in the runs table without opening it
        best_metrics, best_tags = ui.best_summary(best)
        counts.update(best_metrics)
        runs.set_tags(client, target.parent_run_id, best_tags)
        text += register(ctx, client, best)
    text += f"\nReport:        {report_command(client, target)}"
    runs.log_metrics(client, target.parent_run_id, counts, step=0)
    runs.end_run(client, target.parent_run_id, status)
    return text


def summarise(ctx: SweepContext, client: MlflowClient, trials: list[TrialRow],
              trial_runs: list[Any], record: GateRecord | None, folder: StoragePath) -> Summary:
    """The space's summary of the trials (and the runs reused for skipped ones), with the
    gate's notes and the price against the actual trial-hours."""
    reused = reused_rows(client, record.skipped) if record else []
    space_summary = SUMMARIES.get(_space(ctx.settings.space).summary)
    summary = space_summary(trials + reused, ctx.settings.objective)
    if record:
        summary = summary.with_facts(record.notes(), {"gate": asdict(record)})
    prediction = Prediction.load(folder)
    if prediction is not None:
        actual = trial_hours(trial_runs)
        summary = summary.with_facts([prediction.against(actual, len(trials))], {"estimate": {
            "predicted_trial_hours": prediction.trial_hours, "actual_trial_hours": actual}})
    return summary


def _space(name: str) -> Any:
    from search_spaces import SPACES

    return SPACES.get(name)


def trial_hours(trial_runs: list[Any]) -> float:
    """Summed duration of the sweep's trial runs (start to end, as MLflow recorded them)."""
    ms = sum(r.info.end_time - r.info.start_time for r in trial_runs
             if r.info.end_time and r.info.start_time)
    return ms / 3.6e6


def register(ctx: SweepContext, client: MlflowClient, best: Any) -> str:
    """``--register NAME``: the best trial's model in the Model Registry; a line for the
    summary (a failure is reported there, it does not fail the finished sweep)."""
    from mlflow.exceptions import MlflowException

    name = ctx.settings.register
    if not name:
        return ""
    try:
        uri = outputs.register_best(client, name, best.info.run_id)
    except MlflowException as err:
        return f"\nModel Registry: {name} NOT registered ({err.message})"
    return (f"\nModel Registry: {uri} = the model of {best.info.run_name} "
            f"(run {best.info.run_id})")


def reused_rows(client: MlflowClient, skipped: list[dict[str, Any]]) -> list[TrialRow]:
    """The earlier runs standing in for skipped trials (one deleted since is left out)."""
    from mlflow.exceptions import MlflowException

    rows = []
    for skip in skipped:
        try:
            rows.append(TrialRow.from_run(client.get_run(skip["run_id"]), reused=True))
        except MlflowException as err:
            print(f"note: earlier run {skip['run_id']} is gone ({err.error_code})", flush=True)
    return rows
