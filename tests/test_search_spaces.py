"""Search spaces and the searcher/scheduler wrappers (no Ray runtime needed)."""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.sample import Categorical, Float, Function

import search_spaces
from fer_core.cams import METHODS
from search_spaces import SPACES
from search_spaces.params import Grid, fixed_values, sampled_fields, to_tune
from tuner.results.summary import SUMMARIES
from tuner.search.searchers import SCHEDULERS, SEARCHERS
from tuner.search.wrappers import ReferenceASHA, SweepSearcher, split_references
from tuner.spec.resolve import SweepError, check_config, check_space
from tuner.tracking import schema as tr


def test_every_space_module_is_registered_under_its_name():
    declared = {}
    for info in pkgutil.iter_modules(search_spaces.__path__):
        module = importlib.import_module(f"search_spaces.{info.name}")
        if isinstance(getattr(module, "SPACE", None), search_spaces.SweepSpace):
            declared[module.SPACE.name] = module.SPACE
    assert declared and {n: SPACES.get(n) for n in SPACES} == declared  # no list to keep
    name = SPACES.names()[0]
    with pytest.raises(KeyError, match=", ".join(SPACES.names())):  # the error lists them all
        SPACES.get(name + "x")


@pytest.mark.parametrize("name", SPACES.names())
def test_space_is_consistent(name):
    space = SPACES.get(name)
    check_space(space)  # its metric, searcher, scheduler, summary and arm
    grids = [k for k, v in space.params.items() if isinstance(v, Grid)]
    domains = list(sampled_fields(space.params))  # sampled, not derived
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
    grid = SPACES.get("methods").params["method"].values
    assert list(grid) == METHODS.names() and len(grid) >= 2
    assert SPACES.get("methods").params["lambda_au"].values == (0.0, 4.0)


def test_a_space_becomes_tunes_param_space_only_when_the_sweep_starts():
    tune_space = to_tune(SPACES.get("methods").params)
    assert tune_space["method"] == {"grid_search": METHODS.names()}
    assert isinstance(tune_space["backbone"], Function)  # derived: Tune computes it per trial
    assert tune_space["backbone"].func({"method": "tscam"}) == "deit_tiny_patch16_224"
    searched = to_tune(SPACES.get("lambda_layers").params)
    assert isinstance(searched["lambda_au"], Float) and searched["lambda_au"].lower == 0.1
    assert isinstance(searched["layers"], Categorical) and "5+4" in searched["layers"].categories


def test_a_space_written_with_tunes_own_objects_is_refused_in_one_line():
    from ray import tune

    space = SPACES.get("lambda")
    for value in (tune.grid_search([0.0, 1.0]), tune.loguniform(0.1, 2.0)):
        with pytest.raises(ValueError, match=r"params \['lambda_au'\] are Ray Tune objects; "
                                             r"declare them with search_spaces.params") as err:
            dataclasses.replace(space, params={**space.params, "lambda_au": value})
        assert "\n" not in str(err.value)


def test_lambda_layers_declares_baseline_and_paper_layer_sets():
    space = SPACES.get("lambda_layers")
    assert space.reference_points == ({"lambda_au": 0.0, "layers": "5"},
                                      {"lambda_au": 4.0, "layers": "5"})
    lam = space.params["lambda_au"]
    assert (lam.lower, lam.upper) == (0.1, 20.0)
    assert set(space.params["layers"].categories) == {
        "5", "4", "3", "2", "1", "5+4", "5+4+3", "5+4+3+2", "5+4+3+2+1"}
    assert space.scheduler == "asha" and space.searcher == "optuna"


@pytest.mark.parametrize("profile", [None, "smoke"])
def test_shortcut_space_resolves_to_four_cued_arms_without_augmentation(tmp_path, profile):
    from tuner.cli import parse_args
    from tuner.spec.resolve import resolve

    argv = ["--space", "shortcut", "--seeds", "3", "--estimate"]
    spec = resolve(parse_args(argv + (["--profile", profile] if profile else [])), tmp_path)
    points = list(fixed_values(spec.params))
    assert sorted((p["shortcut"], p["lambda_au"]) for p in points) == [
        (0.0, 0.0), (0.0, 4.0), (1.0, 0.0), (1.0, 4.0)]  # p = 0: the control, no cue seen
    # A profile replaces the sizes, never what the measurement needs.
    assert all(p["augment"] is False and p["shortcut_images"] == 48 and p["layers"] == "5"
               for p in points)
    assert spec.settings.seeds == 3 and spec.settings.scheduler == "fifo"
    assert spec.base["img_size"] == (32 if profile else 48)
    space = SPACES.get("shortcut")
    assert space.default_trials == 4 and space.objective == SPACES.get("lambda").objective
    assert "\nshortcut " in "\n" + search_spaces.listing()


def test_shortcut_space_on_real_faces_is_refused_before_anything_starts(tmp_path):
    from tuner.cli import parse_args
    from tuner.spec.resolve import resolve

    argv = ["--space", "shortcut", "--dataset", "rafdb", "--data-root", str(tmp_path),
            "--estimate"]
    with pytest.raises(SweepError, match="shortcut_images=48: the shortcut cue exists in the "
                                         "synthetic dataset only, not in 'rafdb'"):
        resolve(parse_args(argv), tmp_path)


def _optuna(metric="val_att_cos", mode="max"):
    inner = OptunaSearch(metric=metric, mode=mode, seed=0)
    params = to_tune({"lambda_au": SPACES.get("smoke").params["lambda_au"]})
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


# ---------------------------------------------------------------- adding and checking a space
NEW_SPACE = """
from search_spaces.base import SweepSpace, arm_by, register
from search_spaces.params import grid
from search_spaces.sizes import TINY

SPACE = register(SweepSpace(
    name="{name}", description="dropped in as one file", reproduces="a test",
    params={{"lambda_au": grid([0.0, 1.0, 2.0])}}, metric="val_cl", mode="max",
    searcher="grid", overrides=TINY, arm=arm_by("lambda_au"), summary="{summary}",
))
"""


@pytest.fixture
def space_package(tmp_path):
    """A copy of ``search_spaces`` on its own import path (the copy and the path go with
    tmp_path): a function writes a new space module into it and returns the PYTHONPATH."""
    root = tmp_path / "pkgs"
    shutil.copytree(Path(search_spaces.__file__).parent, root / "search_spaces",
                    ignore=shutil.ignore_patterns("__pycache__"))

    def add(module: str, **fields: str) -> str:
        (root / "search_spaces" / f"{module}.py").write_text(NEW_SPACE.format(**fields))
        return str(root)

    return add


def run_in(tmp_path: Path, pythonpath: str, *args: str) -> subprocess.CompletedProcess:
    """``python *args`` in tmp_path (not the checkout, which would shadow the copy)."""
    # The copy first; the rest of the project from wherever this process finds it.
    path = os.pathsep.join(p for p in (pythonpath, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_space_is_one_file_found_without_a_list(tmp_path, space_package):
    path = space_package("dropped_in", name="dropped_in", summary="best_per_arm")
    code = ("import search_spaces, sys; from tuner.sweep import main; "
            "print(search_spaces.__file__); print(search_spaces.SPACES.names()); "
            "sys.exit(main(['--list']))")
    done = run_in(tmp_path, path, "-c", code)
    assert done.returncode == 0, done.stderr
    where, names, *listing = done.stdout.splitlines()
    assert where.startswith(path)  # the copy, not the checkout
    assert "'dropped_in'" in names and all(f"'{n}'" in names for n in SPACES)
    row = next(line for line in listing if line.startswith("dropped_in "))
    assert row.split()[1] == "3" and "dropped in as one file" in row  # its 3 grid points
    assert "dropped_in" not in SPACES  # this process's registry is untouched


def test_a_typo_in_a_space_fails_when_the_sweep_is_resolved(tmp_path, space_package):
    path = space_package("typo", name="typo", summary="best_per_arn")
    done = run_in(tmp_path, path, "-m", "tuner.sweep", "--space", "typo", "--smoke-test",
                  "--storage-path", str(tmp_path / "results"))
    assert done.returncode == 2
    valid = ", ".join(SUMMARIES.names())
    assert done.stderr.strip() == (f"error: space 'typo': unknown summary 'best_per_arn'; "
                                   f"valid: {valid}")
    assert not (tmp_path / "results").exists()  # nothing started


def single_objective_space():
    return next(SPACES.get(n) for n in SPACES if not SPACES.get(n).multi_objective)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"summary": "best_per_arn"}, "unknown summary 'best_per_arn'; valid: {summaries}"),
        ({"metric": "val_accuracy"}, "metric 'val_accuracy': use a per-epoch metric, one of"),
        ({"metric": "test_cl"}, "metric 'test_cl': use a per-epoch metric"),
        ({"searcher": "optuna_tpe"}, "unknown searcher 'optuna_tpe'; valid: {searchers}"),
        ({"scheduler": "hyperband"}, "unknown scheduler 'hyperband'; valid: {schedulers}"),
        ({"arm": lambda config: 3}, "arm must return a str label, got 3"),
        ({"arm": lambda config: config["colour"]}, "arm("),
    ],
)
def test_every_name_a_space_gives_is_checked_in_one_line(change, message):
    space = dataclasses.replace(single_objective_space(), **change)
    message = message.format(summaries=", ".join(SUMMARIES.names()),
                             searchers=", ".join(SEARCHERS.names()),
                             schedulers=", ".join(SCHEDULERS.names()))
    with pytest.raises(SweepError) as err:
        check_space(space)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(f"space {space.name!r}: ")


def test_a_space_refuses_bad_values_when_declared():
    space = single_objective_space()
    for change, message in (({"mode": "maximise"}, "'maximise'"),
                            ({"metric": ("val_cl", "val_att_cos")}, "one mode per metric"),
                            ({"reduction_factor": 1.0}, "reduction_factor"),
                            ({"arm": "lambda_au"}, "arm must be a function")):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(space, **change)
