"""tuner.cost.asha: the expected epochs of a searched trial under ASHA, against Ray's own scheduler
run on the same arrivals, and against the closed form for many trials."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from tuner.cost.asha import asha_epochs, asha_finished, expected_epochs, rungs, stop_draws
from tuner.search.wrappers import ReferenceASHA


def test_rungs_are_placed_as_rays_asha_places_them():
    assert rungs(10, 1, 2) == [1, 2, 4, 8]
    assert rungs(8, 1, 2) == [1, 2, 4]  # the last epoch is not a rung: the trial ends there
    assert rungs(20, 2, 3) == [2, 6, 18]


def ray_epochs(scores, references, epochs, grace, reduction):
    """Epochs each trial trains under Ray's (reference-aware) ASHA, trials run one by one."""
    asha = ReferenceASHA([{"ref": True}], time_attr="training_iteration", metric="score",
                         mode="max", max_t=epochs, grace_period=grace,
                         reduction_factor=reduction)
    trained = []
    for i, score in enumerate(scores):
        trial = Trial("__fake", config={"ref": i < references}, stub=True)
        asha.on_trial_add(None, trial)
        for epoch in range(1, epochs + 1):
            action = asha.on_trial_result(None, trial, {"training_iteration": epoch,
                                                        "score": score})
            if action == TrialScheduler.STOP:
                break
        trained.append(epoch)
    return trained[references:]


def test_the_simulation_matches_rays_scheduler_on_random_arrivals():
    rng = np.random.default_rng(3)
    runs = [ray_epochs(rng.random(6).tolist(), 2, 10, 1, 2) for _ in range(300)]
    observed = float(np.mean(runs))
    assert expected_epochs(10, 1, 2, searched=4, references=2) == pytest.approx(observed,
                                                                                 abs=0.35)


def test_few_trials_cost_more_than_the_closed_form_many_trials_approach_it():
    few = expected_epochs(10, 1, 2, searched=4, references=2)
    many = expected_epochs(10, 1, 2, searched=2000, references=0)
    assert few > 1.5 * asha_epochs(10, 1, 2)  # little to compare with: most go on
    assert many == pytest.approx(asha_epochs(10, 1, 2), rel=0.1)
    assert expected_epochs(10, 1, 2, searched=0) == 10.0


def test_the_finished_share_matches_rays_scheduler():
    # Only trials that train every epoch test and save at the end: their share is priced too.
    rng = np.random.default_rng(5)
    runs = [ray_epochs(rng.random(6).tolist(), 2, 10, 1, 2) for _ in range(300)]
    observed = float(np.mean([e == 10 for run in runs for e in run]))
    draws = stop_draws(10, 1, 2, searched=4, references=2)
    assert draws.shape[1] == 2 and float(draws[:, 1].mean()) == pytest.approx(observed, abs=0.06)
    assert ((draws[:, 1] >= 0) & (draws[:, 1] <= 1)).all()
    # Every searched trial finished in a draw means every one trained all epochs.
    assert (draws[draws[:, 1] == 1, 0] == 10).all()
    assert asha_finished(10, 1, 2) == pytest.approx(1 / 16)  # rungs 1, 2, 4, 8
    assert stop_draws(10, 1, 2, searched=0).tolist() == [[10.0, 1.0]]
