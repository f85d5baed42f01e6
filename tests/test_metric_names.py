"""Metric names are defined once (``fer_core.metric_names``) and reach MLflow by family: a loss
term a method adds is logged without any list to edit (real engine, real sqlite store)."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from fer_core import metric_names as mn
from fer_core.config import ExperimentConfig
from fer_core.engine import Callback, Trainer
from tuner.tracking import client as runs
from tuner.tracking import schema as tr
from tuner.tracking.tracker import TrialTracker

# ACoL adds its second branch's cross-entropy to the loss as the term ``acol_b``.
ACOL = dict(method="acol", synthetic_n=28, img_size=32, batch_size=14, epochs=1, lambda_au=2.0,
            layers="5+4", max_train_batches=1)


@pytest.mark.parametrize(("name", "family"), [
    ("train_loss", "train"), ("train_loss_ce", "train"), ("train_loss_acol_b", "train"),
    ("train_cl", "train"), ("val_att_cos_l12", "val"), ("val_cam_cos", "val"),
    ("best_val_cl", "progress"), ("test_n_invalid", "test"), ("test_att_cos_l5", "test"),
    ("test_xai_deletion", "test_xai"), ("test_xai_road_random", "test_xai"),
    ("test_shortcut_reliance", "test_shortcut"),
    ("test_shortcut_att_l5_mass_ratio", "test_shortcut"),
    ("epoch", None), ("is_final", None), (tr.KEY_RUN_ID, None), ("val_loss", None),
    ("train_lossy", None), ("test_", None),
])
def test_every_key_has_one_family_by_pattern(name, family):
    assert mn.family(name) == family
    assert tr.is_trial_metric(name) == (family is not None)


def test_the_named_lists_belong_to_their_families():
    assert all(mn.family(k) in ("train", "val", "progress") for k in mn.EPOCH_METRICS)
    assert all(mn.family(k) in ("test", "progress") for k in mn.FINAL_METRICS)
    assert tr.EPOCH_METRICS is mn.EPOCH_METRICS and tr.KEY_EPOCH == mn.EPOCH


class TrackEpochs(Callback):
    """What the trainable does with the engine's results: the schema's metrics, step = epoch."""

    def __init__(self, tracker: TrialTracker) -> None:
        self.tracker = tracker
        self.keys: set[str] = set()

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        self.keys |= set(metrics)
        self.tracker.log_metrics(tr.metric_values(metrics), step=epoch)

    def on_fit_end(self, trainer: Trainer, final: dict[str, float]) -> None:
        self.keys |= set(final)
        self.tracker.log_metrics(tr.metric_values(final), step=trainer.epoch)


def test_a_new_loss_term_reaches_a_real_store(tmp_path):
    uri = runs.normalize_uri(None, tmp_path)
    client = MlflowClient(tracking_uri=uri)
    exp = runs.ensure_experiment(client, "names", uri)
    parent = runs.start_parent(client, exp, "s", {tr.TAG_SPACE: "methods"}, {})
    target = runs.TrackingTarget(uri, exp, parent, "s", "methods")
    tracker = TrialTracker(target, "t1", tmp_path / "trial")
    tracker.attach("trial_t1", {}, {})
    recorder = TrackEpochs(tracker)
    Trainer(ExperimentConfig.from_flat(ACOL), callbacks=[recorder], progress=False).fit()
    tracker.end(tr.FINISHED)
    assert tracker.close() == 0

    assert "train_loss_acol_b" not in mn.EPOCH_METRICS  # a term no list names
    emitted = recorder.keys - {mn.EPOCH}
    assert {k for k in emitted if mn.family(k) is None} == set()  # the engine uses the names
    (run,) = runs.sweep_trial_runs(client, target)
    assert set(run.data.metrics) == emitted
    history = client.get_metric_history(run.info.run_id, "train_loss_acol_b")
    assert [m.step for m in history] == [1] and history[0].value > 0
