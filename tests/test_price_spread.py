"""The sweep's printed price: a stopped trial skips the end-of-trial work, and the interval adds
the timing's error to ASHA's spread (tuner.cost.spread, tuner.cost.timing.TrialShape)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.cost import spread
from tuner.cost.estimate import Prediction
from tuner.cost.timing import TRIAL_OVERHEAD_S, ArmCost, TrialShape

COST = ArmCost(step_s=0.5, eval_s_per_image=0.01, build_s=3.0, checkpoint_s=1.0, final_s=20.0,
               weight_bytes=1, running_checkpoint_bytes=1, final_checkpoint_bytes=1,
               device="cpu")
SHAPE = TrialShape(train_batches=10, val_images=100, test_images=200, epochs=4)


def test_a_stopped_trial_pays_no_test_and_no_end_of_trial_work():
    epoch_s = 10 * 0.5 + 100 * 0.01 + 1.0
    finished = SHAPE.seconds(COST)
    assert finished == pytest.approx(3.0 + 4 * epoch_s + TRIAL_OVERHEAD_S + 200 * 0.01 + 20.0)
    stopped = SHAPE.seconds(COST, epochs=1, finished=0.0)
    assert stopped == pytest.approx(3.0 + epoch_s + TRIAL_OVERHEAD_S)
    # Per draw: arrays of mean epochs and finished shares price every draw at once.
    both = SHAPE.seconds(COST, np.array([1.0, 4.0]), np.array([0.0, 1.0]))
    assert both.tolist() == pytest.approx([stopped, finished])


def test_without_asha_the_interval_is_the_timing_error_alone():
    low, high = spread.interval(1.0)
    z = 1.6449  # the normal's 95th percentile: a central 90 % interval
    assert low == pytest.approx(math.exp(-z * spread.TIMING_LOG_SD), rel=0.03)
    assert high == pytest.approx(math.exp(z * spread.TIMING_LOG_SD), rel=0.03)
    assert spread.interval(1.0, log_sd=0.0) == pytest.approx((1.0, 1.0))


def test_asha_draws_and_timing_error_widen_each_other():
    draws = np.linspace(0.5, 1.5, 1000)
    asha_only = spread.interval(draws, log_sd=0.0)
    assert asha_only == pytest.approx((0.55, 1.45), abs=0.01)
    both = spread.interval(draws)
    assert both[0] < asha_only[0] and both[1] > asha_only[1]
    assert both[0] < float(np.median(draws)) < both[1]


def test_a_whole_sweep_is_not_called_a_share_for_float_noise():
    p = Prediction(trials=6.000000000000002, trial_hours=0.6, trial_hours_asha=0.3,
                   device_hours=0.6, device_unit="CPU", wall_clock_h=0.3, disk_bytes=0,
                   device="cpu", lines=(), trial_hours_expected=0.45, trial_hours_low=0.3,
                   trial_hours_high=0.6)
    line = p.against(0.5, trials_run=6)
    assert "trials run" not in line and "predicted 0.450" in line and "inside" in line
    c = p.compare(0.5, 6)
    assert c.share == 1.0 and c.inside and c.error_pct == pytest.approx(-10.0)
