"""Whether seeds resolve a claim, and how many the observed spread asks for; the price interval."""

from __future__ import annotations

from tuner.cost.asha import epochs_interval, expected_epochs
from tuner.cost.estimate import Prediction
from tuner.study import power


def test_clear_gain_is_resolved_and_needs_few_seeds():
    claim = power.gained("gain", "test_att_cos", {0: 0.45, 1: 0.46, 2: 0.44},
                         {0: 0.63, 1: 0.65, 2: 0.62})
    assert claim.resolved and claim.seeds_needed is not None and claim.seeds_needed <= 3
    assert "resolved with 3 seeds" in claim.line()


def test_noisy_gain_asks_for_more_seeds_than_it_has():
    claim = power.gained("gain", "test_att_cos", {0: 0.50, 1: 0.40, 2: 0.45},
                         {0: 0.49, 1: 0.48, 2: 0.47})
    assert not claim.resolved and claim.seeds_needed is not None and claim.seeds_needed > 3
    assert "NOT resolved" in claim.line()


def test_loss_in_the_wrong_direction_resolves_at_no_seed_count():
    claim = power.gained("gain", "test_att_cos", {0: 0.6, 1: 0.6, 2: 0.61},
                         {0: 0.5, 1: 0.52, 2: 0.5})
    assert claim.seeds_needed is None and "no seed count" in claim.line()


def test_accuracy_kept_within_the_margin():
    kept = power.kept("kept", "test_cl", {0: 90.0, 1: 91.0, 2: 90.5}, {0: 90.2, 1: 91.1, 2: 90.4})
    lost = power.kept("kept", "test_cl", {0: 90.0, 1: 91.0, 2: 90.5}, {0: 86.0, 1: 87.0, 2: 86.0})
    assert kept.resolved and not lost.resolved and lost.seeds_needed is None


def test_seeds_for_falls_as_the_effect_grows():
    assert power.seeds_for(1.0, 1.0) > power.seeds_for(2.0, 1.0) >= 2
    assert power.seeds_for(-1.0, 1.0) is None


def test_asha_interval_holds_the_expectation():
    low, high = epochs_interval(10, 1, 2.0, searched=6, references=2)
    assert 1.0 <= low <= expected_epochs(10, 1, 2.0, 6, 2) <= high <= 10.0


def test_interrupted_sweep_compares_its_share_of_the_prediction():
    p = Prediction(trials=6, trial_hours=0.6, trial_hours_asha=0.3, device_hours=0.6,
                   device_unit="CPU", wall_clock_h=0.3, disk_bytes=0, device="cpu", lines=(),
                   trial_hours_expected=0.45, trial_hours_low=0.3, trial_hours_high=0.6)
    line = p.against(0.15, trials_run=2)
    assert "predicted 0.150" in line and "2 of 6 trials run" in line and "(+0 %)" in line
    assert "inside" in p.against(0.4) and "OUTSIDE" in p.against(0.9)
