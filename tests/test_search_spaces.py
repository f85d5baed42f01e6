"""Search spaces and the searcher/scheduler wrappers (no Ray runtime needed)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.sample import Domain, Function

from fer_core.cams import METHODS
from search_spaces import SPACES
from tuner.plan import check_config, fixed_values
from tuner.searchers import (
    SCHEDULERS,
    SEARCHERS,
    ReferenceASHA,
    SweepSearcher,
    split_references,
)
from tuner.tracking import schema as tr

EXPECTED = {"lambda_layers", "methods", "lambda", "layers", "pareto", "smoke"}


def test_every_named_space_is_registered():
    assert set(SPACES.names()) == EXPECTED
    with pytest.raises(KeyError, match="lambda_layers"):  # the error lists the valid names
        SPACES.get("lamda_layers")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_space_is_consistent(name):
    space = SPACES.get(name)
    assert space.searcher in SEARCHERS and space.scheduler in SCHEDULERS
    metrics = space.metric if space.multi_objective else (space.metric,)
    assert all(tr.is_trial_metric(m) and not m.startswith("test_") for m in metrics)
    grids = [k for k, v in space.params.items() if isinstance(v, dict) and "grid_search" in v]
    domains = [k for k, v in space.params.items()
               if isinstance(v, Domain) and not isinstance(v, Function)]  # sampled, not derived
    if space.searcher.startswith("optuna"):
        assert domains and not grids  # OptunaSearch refuses grid_search
    else:
        assert grids and not domains
    # Every point the space can produce is a valid config with the space's pinned sizes.
    for values in fixed_values(space.params):
        check_config({**space.overrides, **values}, name)
    for point in space.reference_points:
        check_config({**space.overrides, **point}, name)


def test_methods_space_reads_the_registry():
    grid = SPACES.get("methods").params["method"]["grid_search"]
    assert grid == METHODS.names() and len(grid) >= 2
    assert SPACES.get("methods").params["lambda_au"]["grid_search"] == [0.0, 4.0]


def test_lambda_layers_declares_baseline_and_paper_layer_sets():
    space = SPACES.get("lambda_layers")
    assert space.reference_points == ({"lambda_au": 0.0, "layers": "5"},
                                      {"lambda_au": 4.0, "layers": "5"})
    lam = space.params["lambda_au"]
    assert (lam.lower, lam.upper) == (0.1, 20.0)
    assert set(space.params["layers"].categories) == {
        "5", "4", "3", "2", "1", "5+4", "5+4+3", "5+4+3+2", "5+4+3+2+1"}
    assert space.scheduler == "asha" and space.searcher == "optuna"


def _optuna(metric="val_att_cos", mode="max"):
    inner = OptunaSearch(metric=metric, mode=mode, seed=0)
    params = {"lambda_au": SPACES.get("smoke").params["lambda_au"]}
    return inner, params


def test_sweep_searcher_runs_reference_first_and_pairs_seeds():
    inner, params = _optuna()
    searcher = SweepSearcher(inner, seeds=[3, 4], reference_points=[{"lambda_au": 0.0}])
    searcher.set_search_properties(None, None, params)
    configs = [searcher.suggest(f"t{i}") for i in range(6)]
    assert configs[0] == {"lambda_au": 0.0, "seed": 3}
    assert configs[1] == {"lambda_au": 0.0, "seed": 4}
    assert configs[2]["lambda_au"] == configs[3]["lambda_au"] > 0  # one config, two seeds
    assert [c["seed"] for c in configs[2:]] == [3, 4, 3, 4]
    assert configs[4]["lambda_au"] != configs[2]["lambda_au"]


def test_sweep_searcher_tells_optuna_pruned_for_early_stops_and_means_over_seeds():
    inner, params = _optuna()
    searcher = SweepSearcher(inner, seeds=[0, 1])
    searcher.set_search_properties(None, None, params)
    for i in range(4):
        searcher.suggest(f"t{i}")
    final = {tr.KEY_IS_FINAL: 1.0}
    searcher.on_trial_complete("t0", {"val_att_cos": 0.6, **final})
    searcher.on_trial_complete("t1", {"val_att_cos": 0.8, **final})
    searcher.on_trial_complete("t2", {"val_att_cos": 0.9, **final})
    searcher.on_trial_result("t3", {"val_att_cos": 0.1, "training_iteration": 1})
    searcher.on_trial_complete("t3", {"val_att_cos": 0.1})  # ASHA-stopped: no is_final
    trials = inner._ot_study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED"]
    assert math.isclose(trials[0].value, 0.7)  # the mean over the two seeds


def test_reference_points_inside_the_domain_go_to_optuna():
    space = SPACES.get("lambda_layers")
    inside, outside = split_references(space.reference_points, space.params)
    assert outside == [{"lambda_au": 0.0, "layers": "5"}]  # λ = 0 is below the log range
    assert inside == [{"lambda_au": 4.0, "layers": "5"}]


def test_sweep_searcher_survives_save_and_restore(tmp_path):
    inner, params = _optuna()
    searcher = SweepSearcher(inner, seeds=[0, 1], reference_points=[{"lambda_au": 0.0}])
    searcher.set_search_properties(None, None, params)
    searcher.suggest("a")
    searcher.save(str(tmp_path / "s.pkl"))
    fresh = SweepSearcher(OptunaSearch(metric="val_att_cos", mode="max"), seeds=[0])
    fresh.restore(str(tmp_path / "s.pkl"))
    assert fresh.suggest("b") == {"lambda_au": 0.0, "seed": 1}  # the pair continues
    assert fresh.suggest("c")["lambda_au"] > 0


def _trial(config):
    return SimpleNamespace(trial_id=str(id(config)), config=config)


def test_reference_asha_never_stops_the_baseline():
    sched = ReferenceASHA([{"lambda_au": 0.0}], time_attr="epoch", metric="val_att_cos",
                          mode="max", max_t=4, grace_period=1, reduction_factor=2)
    good = [_trial({"lambda_au": 4.0 + i}) for i in range(3)]
    base = _trial({"lambda_au": 0.0})
    for t in [*good, base]:
        sched.on_trial_add(None, t)
    for t in good:
        sched.on_trial_result(None, t, {"epoch": 1, "val_att_cos": 0.9})
    worse = _trial({"lambda_au": 9.0})
    sched.on_trial_add(None, worse)
    assert sched.on_trial_result(None, worse, {"epoch": 1, "val_att_cos": 0.1}) == \
        TrialScheduler.STOP
    assert sched.on_trial_result(None, base, {"epoch": 1, "val_att_cos": 0.1}) == \
        TrialScheduler.CONTINUE
    # At max_t every trial stops (it has finished).
    assert sched.on_trial_result(None, base, {"epoch": 4, "val_att_cos": 0.1}) == \
        TrialScheduler.STOP
