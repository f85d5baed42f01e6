"""A sweep trial restored from its final checkpoint: its stored result again, nothing run twice.

Tune restores a trial from its latest checkpoint when its process dies after the final report
but before the trial returns (or when a killed sweep resumes). That checkpoint holds the test
result, not the weights (they are the run's logged model), so the restored trial must report
the stored result with the is-final key, end its MLflow run FINISHED, and neither train, test
nor log anything again. Real Ray (the module's local runtime) and a real sqlite MLflow store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import metric_steps, sweep_target
from mlflow import MlflowClient
from ray import tune

from fer_core.checkpoint import CHECKPOINT_FILE
from tuner.spec.context import SweepContext
from tuner.tracking import outputs
from tuner.tracking import schema as tr
from tuner.trainable import train_trial

PINNED = dict(synthetic_n=28, img_size=32, batch_size=14, epochs=1, lambda_au=2.0, layers="5",
              device="cpu", max_train_batches=1)


@pytest.mark.slow(reason="a trial on real Ray, crashed and restored")
def test_a_trial_restored_from_its_final_checkpoint_repeats_nothing(ray_runtime, tmp_path):
    # Defined here, not at module level: Ray's workers cannot import this test module, and a
    # local function travels by value.
    def crash_after_the_final_report(config: dict, context: SweepContext) -> None:
        """The sweep's trainable, failing once after it returned (the first attempt has no
        checkpoint: one epoch, so its only checkpoint is the final one)."""
        first_attempt = tune.get_checkpoint() is None
        train_trial(config, context)
        if first_attempt:
            raise RuntimeError("the trial's process died after its final report")

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    target = sweep_target(uri, "restore")
    context = SweepContext(PINNED, target, cache_dir=str(tmp_path / "cache"))
    tuner = tune.Tuner(
        tune.with_parameters(crash_after_the_final_report, context=context),
        param_space={"seed": 0},
        run_config=tune.RunConfig(
            name="r", storage_path=str(tmp_path / "ray_results"),
            failure_config=tune.FailureConfig(max_failures=1),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
    )
    (result,) = tuner.fit()
    assert result.error is None  # the retry succeeded: it did not raise again

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([target.experiment_id],
                                filter_string=f"tags.`{tr.TAG_ROLE}` = '{tr.ROLE_TRIAL}'")
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags[tr.TAG_ATTEMPTS] == "2"  # the restored attempt reopened the run
    assert run.data.tags[tr.TAG_EARLY_STOPPED] == "false"
    # Tune got the stored final result again, with the key the searchers read
    assert result.metrics[tr.KEY_IS_FINAL] == 1.0
    assert result.metrics["test_cl"] == run.data.metrics["test_cl"]
    assert result.metrics[tr.KEY_RUN_ID] == run_id
    # ... and nothing ran or was logged twice: one epoch, one test, one model
    assert metric_steps(uri, run_id, "val_cl") == [1]
    assert metric_steps(uri, run_id, "test_cl") == [1]
    assert len(client.get_run(run_id).outputs.model_outputs) == 1
    assert len(client.search_logged_models(experiment_ids=[target.experiment_id])) == 1
    assert len(client.list_artifacts(run_id, tr.ARTIFACT_MATRICES)) == 4
    # no model/selected.pt any more (read on disk: MLflow's listing of runs:/<id>/model looks
    # for the logged model in the default store, not this one)
    own = Path(run.info.artifact_uri.removeprefix("file://"))
    assert sorted(p.name for p in own.iterdir()) == [tr.ARTIFACT_MATRICES]
    # The kept checkpoint is the final one: the result, no weights
    checkpoint = result.checkpoint
    assert checkpoint is not None
    with checkpoint.as_directory() as folder:
        state = torch.load(f"{folder}/{CHECKPOINT_FILE}", weights_only=False)
    assert state["finished"] and state["final"]["test_cl"] == run.data.metrics["test_cl"]
    assert {"best_state", "model", "optimizer"}.isdisjoint(state)
    assert outputs.run_model_id(client, run_id) is not None
