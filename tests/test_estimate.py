"""``python -m tuner.sweep --estimate``: a price for every space, and nothing started."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import ray

from fer_core.config import ExperimentConfig
from fer_core.engine import Trainer
from search_spaces import SPACES
from tuner.cli import parse_args
from tuner.cost.estimate import (
    ESTIMATE_FILE,
    QUICK,
    WEIGHT_COPIES_PER_FINISHED_TRIAL,
    Prediction,
    arms,
    asha_epochs,
    final_key,
    measure,
    measure_arms,
    save_selected_model,
    wall_clock_s,
)
from tuner.cost.pricing import spare_cores
from tuner.spec.context import StoragePath
from tuner.spec.resolve import resolve
from tuner.sweep import main


def test_asha_expected_epochs_follow_its_rungs():
    # rungs at 1 and 2 of 3 epochs: all run 1, half run 2, a quarter run 3
    assert asha_epochs(3, 1, 2.0) == pytest.approx(1.75)
    # rungs 1, 3, 9, 27, 81 of 100 with η = 3
    expected = 1 + 2 / 3 + 6 / 9 + 18 / 27 + 54 / 81 + 19 / 243
    assert asha_epochs(100, 1, 3.0) == pytest.approx(expected)
    assert asha_epochs(1, 1, 2.0) == 1.0  # nothing to stop


def test_wall_clock_fills_free_slots_in_order():
    assert wall_clock_s([3.0, 1.0, 1.0, 1.0], 2) == 3.0
    assert wall_clock_s([1.0] * 5, 2) == 3.0
    assert wall_clock_s([2.0, 2.0], 8) == 2.0


def test_arms_count_every_trial_of_the_default_sweep():
    resolved = resolve(parse_args(["--space", "lambda_layers", "--seeds", "3"]))
    found = arms(resolved)
    assert sum(a.trials for a in found) == pytest.approx(6 * 3)
    # the two reference points (λ=0 and λ=4 at layer 5) differ in cost: the AU term
    assert sum(a.trials for a in found if a.reference) == 2 * 3
    assert len({a.config["layers"] for a in found if not a.reference}) == 9


def test_grid_arms_merge_points_of_equal_cost():
    resolved = resolve(parse_args(["--space", "lambda"]))
    found = arms(resolved)
    # λ's value does not change a step: the 9-point λ grid is two arms, λ=0 and λ>0
    assert sorted(a.trials for a in found) == [1, 8]


def test_measure_sizes_checkpoints_from_state_dicts(tmp_path):
    resolved = resolve(parse_args(["--space", "smoke"]))
    flat = {**arms(resolved)[0].config, "device": "cpu"}
    cost, shape = measure(flat, str(tmp_path), steps=1)
    assert cost.step_s > 0 and cost.eval_s_per_image > 0
    # resnet18's weights, 7 classes: ~11.2 M float32 parameters (+ BatchNorm buffers)
    assert 44e6 < cost.weight_bytes < 46e6
    # running: model + SGD momentum; finished: the test result, no weights (the MLflow model
    # holds them)
    assert cost.running_checkpoint_bytes > 1.9 * cost.weight_bytes
    assert 0 < cost.final_checkpoint_bytes < 0.01 * cost.weight_bytes
    assert shape.epochs == 2 and shape.train_batches == 2
    # What a finished trial writes besides its checkpoint holds its weights this many times
    trainer = Trainer(ExperimentConfig.from_flat(flat), progress=False, cache_dir=str(tmp_path))
    save_selected_model(trainer, tmp_path / "written")
    large = [f.stat().st_size for f in (tmp_path / "written").rglob("*") if f.is_file()
             and f.stat().st_size > 0.5 * cost.weight_bytes]
    assert len(large) == WEIGHT_COPIES_PER_FINISHED_TRIAL
    assert all(size < 1.05 * cost.weight_bytes for size in large)


def test_quick_timing_shares_the_end_of_trial_work_between_lambda_arms(tmp_path):
    from tuner.checks.data import prepare_data

    resolved = resolve(parse_args(["--space", "smoke"]))
    prepare_data(ExperimentConfig.from_flat(resolved.base), str(tmp_path))
    every = arms(resolved)
    assert len({final_key(a.config) for a in every}) == 1 < len(every)  # λ=0 and λ>0 arms
    measured = measure_arms(resolved, str(tmp_path), None, QUICK)
    timed = measured[:QUICK.max_arms]
    # Timed once: the second arm's end-of-trial seconds are the first's, its steps its own.
    assert len({c.final_s for _, c, _ in timed}) == 1 and timed[0][1].final_s > 0
    assert all(c.step_s > 0 and c.eval_s_per_image > 0 for _, c, _ in timed)
    # A given final cost is used as it is (no XAI pass), and a capped validation pass is
    # divided by the images it saw.
    flat = {**every[0].config, "device": "cpu"}
    cost, shape = measure(flat, str(tmp_path), steps=1, eval_batches=1, final_s=123.0)
    assert cost.final_s == 123.0 and shape.val_images > 0


HEAVY_ESTIMATES = {  # spaces whose --estimate times many networks: ~1 min each on 2 cores
    "methods": "times one arm of every CAM method's network (55-80 s on 2 cores)",
    "layers": "times an arm per layer set (23-40 s on 2 cores, over a minute when busy)",
}


OTHER_ESTIMATE = "times every arm of its space (6-10 s); the fast tier prices the smoke space"


@pytest.mark.parametrize("space", [
    name if name == "smoke" else
    pytest.param(name, marks=pytest.mark.slow(reason=HEAVY_ESTIMATES.get(name, OTHER_ESTIMATE)))
    for name in SPACES])
def test_estimate_prints_a_price_and_starts_nothing(space, tmp_path, monkeypatch, capsys,
                                                  no_ray):
    monkeypatch.chdir(tmp_path)
    storage, db = tmp_path / "ray_results", tmp_path / "mlflow.db"
    assert not ray.is_initialized()
    argv = ["--space", space, "--smoke-test", "--estimate", "--storage-path", str(storage),
            "--mlflow-uri", f"sqlite:///{db}", "--optuna-storage", f"sqlite:///{tmp_path}/o.db"]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("estimated_trial_hours=") and float(out[-1].split("=")[1]) > 0
    text = "\n".join(out)
    for line in ("trial-hours:", "device-hours:", "wall clock:", "ASHA:", "disk:"):
        assert line in text
    assert not ray.is_initialized()
    assert os.listdir(tmp_path) == []  # no MLflow store, no sweep folder, no Optuna study


def test_prediction_round_trips_and_compares(tmp_path):
    p = Prediction(6, 0.5, 0.3, 0.5, "CPU", 0.25, 3e8, "cpu", ("a",))
    folder = StoragePath.parse(tmp_path)
    p.save(folder)
    assert (Path(tmp_path) / ESTIMATE_FILE).exists()
    assert Prediction.load(folder) == p
    assert "actual 0.400 (+25 %)" in p.against(0.4)
    # With ASHA's expected cost (tuner.cost.asha) that is the prediction, the range beside it.
    q = replace(p, trial_hours_expected=0.36)
    assert q.against(0.4) == ("trial-hours: predicted 0.360 (range 0.300–0.500), actual 0.400 "
                              "(-10 %)")


@pytest.mark.slow(reason="resolves a sweep, which builds its networks")
def test_spare_cores_are_those_no_trial_can_take():
    settings = resolve(parse_args(["--space", "smoke", "--max-concurrent", "1"])).settings
    assert spare_cores(2, 2.0, settings) == 1  # 1 trial of 1 CPU on 2 cores
    assert spare_cores(2, 1.0, settings) == 1  # Ray given 1 CPU of 2 (--num-cpus 1)
    two = replace(settings, max_concurrent=2)
    assert spare_cores(2, 2.0, two) == 0  # the default sweep here: timed before the trials
    assert spare_cores(8, 2.0, two) == 6
    assert spare_cores(2, 8.0, two) == 0  # Ray told of more CPUs than there are cores
    assert spare_cores(8, 8.0, replace(settings, resources_gpu=1.0)) == 0  # shares the GPU


# 1 trial at a time: timed beside the trials on a core they leave free; 2 (the smoke space's
# default): on this 2-core machine, timed before them. That one is the session's smoke sweep.
@pytest.mark.slow(reason="a smoke sweep end to end on real Ray")
@pytest.mark.parametrize("concurrent", [1, 2])
def test_sweep_records_its_prediction_and_reports_it(ray_runtime, tmp_path, monkeypatch, capsys,
                                                     request, concurrent):
    if concurrent == SPACES.get("smoke").max_concurrent:
        sweep = request.getfixturevalue("smoke_sweep")
        assert sweep.code == 0
        storage, out = sweep.storage, sweep.stdout
    else:
        monkeypatch.chdir(tmp_path)
        storage = tmp_path / "ray_results"
        assert main(["--space", "smoke", "--name", "s", "--storage-path", str(storage),
                     # One store name per case: a passed test's tmp_path is removed (pyproject's
                     # retention policy), the next case gets the same folder, and MLflow keeps
                     # the first file's engine open.
                     "--mlflow-uri", f"sqlite:///{tmp_path}/mlflow{concurrent}.db",
                     "--max-concurrent", str(concurrent)]) == 0
        out = capsys.readouterr().out
    prediction = Prediction.load(StoragePath.parse(storage / "s"))
    assert prediction is not None and prediction.trial_hours > 0
    assert prediction.beside_trials == (len(os.sched_getaffinity(0)) - concurrent >= 1)
    # The summary sets the expected hours (ASHA simulated) against the actual ones.
    expected = prediction.trial_hours_expected or prediction.trial_hours
    assert f"trial-hours: predicted {expected:.3f}" in out
    actual = float(out.split("trial-hours: predicted")[1].split(", actual ")[1].split()[0])
    assert actual > 0
