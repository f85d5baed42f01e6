import json

import pytest

from fer_core.config import ExperimentConfig
from fer_core.engine import Callback, InjectedFault, Trainer
from fer_core.train import main as train_main

TINY = dict(synthetic_n=28, img_size=32, batch_size=14, epochs=2, lambda_au=2.0, layers="5+4")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))


class Recorder(Callback):
    def __init__(self):
        self.epochs, self.final = [], None

    def on_epoch_end(self, trainer, epoch, metrics):
        self.epochs.append(epoch)

    def on_fit_end(self, trainer, final):
        self.final = final


def test_fit_reports_every_epoch_and_tests_the_selected_model():
    rec = Recorder()
    trainer = Trainer(ExperimentConfig.from_flat(TINY), callbacks=[rec], progress=False)
    final = trainer.fit()
    assert rec.epochs == [1, 2] and rec.final == final
    first_max = max(h["val_cl"] for h in trainer.history)
    assert trainer.best_epoch == next(
        int(h["epoch"]) for h in trainer.history if h["val_cl"] == first_max
    )
    for key in ("test_cl", "test_att_cos", "test_att_cos_l4", "test_att_cos_l5", "test_cam_cos"):
        assert key in final
    assert 0.0 <= final["test_cl"] <= 100.0 and -1.0 <= final["test_att_cos"] <= 1.0
    assert trainer.history[-1]["train_loss_align"] > 0
    assert len(trainer.final_matrices["confusion"]) == 7


def test_injected_fault_only_in_a_fresh_run_and_resume_continues(tmp_path):
    cfg = ExperimentConfig.from_flat({**TINY, "epochs": 3, "fail_at_epoch": 2})
    saver = type("Saver", (Callback,), {
        "on_epoch_end": lambda self, t, e, m: t.save_checkpoint(str(tmp_path / "ck"))})()
    with pytest.raises(InjectedFault, match="fail_at_epoch=2"):
        Trainer(cfg, callbacks=[saver], progress=False).fit()
    resumed = Trainer(cfg, progress=False)
    resumed.load_checkpoint(str(tmp_path / "ck"))
    assert resumed.epoch == 1
    rec = Recorder()
    resumed.callbacks.append(rec)
    resumed.fit()
    assert rec.epochs == [2, 3] and [int(h["epoch"]) for h in resumed.history] == [1, 2, 3]


def test_train_cli_writes_metrics_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = [f"--set={k}={v}" for k, v in TINY.items()] + ["--out", str(out), "--no-progress"]
    assert train_main(args) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in report["history"]] == [1.0, 2.0]
    assert "test_cl" in report["final"] and (out / "checkpoint.pt").is_file()
    assert train_main(args + ["--resume"]) == 0  # nothing left to train: tests the selected model
    assert "resumed from" in capsys.readouterr().out
    # A bad value is a user error: one line on stderr and exit status 2 (fer_core.cli).
    assert train_main(["--set", "lambda_au=-1", "--out", str(out)]) == 2
    assert "lambda_au=-1" in capsys.readouterr().err


def test_xai_images_adds_the_interpretability_metrics_of_the_selected_model():
    final = Trainer(
        ExperimentConfig.from_flat({**TINY, "epochs": 1, "xai_images": 2}), progress=False
    ).fit()
    assert final["test_xai_n_images"] == 2
    for key in ("test_xai_pointing_game", "test_xai_deletion", "test_xai_insertion",
                "test_xai_road", "test_xai_mprt", "test_xai_pointing_game_att_l4",
                "test_xai_deletion_random"):
        assert key in final and final[key] == final[key], key  # present and not NaN
    plain = Trainer(ExperimentConfig.from_flat({**TINY, "epochs": 1}), progress=False).fit()
    assert not any(k.startswith("test_xai_") for k in plain)
