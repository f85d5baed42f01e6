"""evaluate_xai end to end on real synthetic face files: keys, determinism, the fixed
subsample, chance baselines and the forward-pass count."""

from __future__ import annotations

import math

import pytest
import torch

from fer_core.cams import build_method
from fer_core.cli import UserError
from fer_core.config import DataConfig, MethodConfig, ModelConfig
from fer_core.loaders import build_loader, build_split
from fer_core.metric_names import xai_keys
from fer_core.xai.evaluate import XaiConfig, evaluate_xai, run_xai, select_images
from fer_core.xai.names import CONTROLS, METRICS, PREFIX

CFG = XaiConfig(n_images=4, seed=3, steps=4, road_percentiles=(50.0,), mprt_steps=2)


@pytest.fixture(scope="module")
def split():
    return build_split(DataConfig(dataset="synthetic", img_size=32, synthetic_n=200), "test")


def _model(method: str = "gradcam"):
    torch.manual_seed(0)
    return build_method(MethodConfig(method=method),
                        ModelConfig(backbone="resnet18", output_stride=16), img_size=32).eval()


def test_the_subsample_is_fixed_by_the_seed_and_skips_unusable_images(split):
    x, labels, au = select_images(split, 6, seed=1, au_variant="reference")
    again = select_images(build_loader(DataConfig(dataset="synthetic", img_size=32,
                                                  synthetic_n=200), "test", 8), 6, 1, "reference")
    assert torch.equal(x, again[0]) and torch.equal(labels, again[1])
    assert len(x) == 6 and bool((labels != 0).all()) and bool((au.amax(dim=(1, 2)) > 0).all())
    other = select_images(split, 6, seed=2, au_variant="reference")[0]
    assert not torch.equal(x, other)


def test_evaluate_xai_logs_every_metric_its_controls_and_the_cascade(split):
    scores = evaluate_xai(_model(), split, CFG, layers=(4, 5))
    for metric in METRICS:
        assert math.isfinite(scores[metric.key]), metric.key
        for control in CONTROLS:
            assert math.isfinite(scores[metric.control_key(control)]), (metric, control)
    # The documented set (fer_core.metric_names.xai_keys) is exactly what was logged.
    assert set(scores) == set(xai_keys((4, 5), ("head", "l5")))
    # The AU map is the ceiling of localisation against itself.
    assert scores["test_xai_pointing_game_au"] == 1.0 and scores["test_xai_au_auc_au"] > 0.99
    assert {"test_xai_mprt_head", "test_xai_mprt_l5"} <= set(scores)
    assert "test_xai_mprt_l4" not in scores  # mprt_steps=2
    assert "test_xai_au_auc_att_l4" in scores and "test_xai_au_auc_att_l5" in scores
    assert scores["test_xai_n_images"] == 4.0
    assert all(k.startswith(PREFIX) and isinstance(v, float) for k, v in scores.items())
    assert 0 <= scores["test_xai_deletion"] <= 1 and 0 <= scores["test_xai_pointing_game"] <= 1
    repeat = evaluate_xai(_model(), split, CFG, layers=(4, 5))
    assert all(repeat[k] == scores[k] or k == "test_xai_time_s" for k in scores)


def test_forward_passes_are_counted_per_group(split):
    x, labels, au = select_images(split, 4, 0, "reference")
    result = run_xai(_model("cam"), x, labels, au, CFG)
    n, steps = 4, CFG.steps
    # The model's map and three controls: two curves of steps + 1 images each.
    assert result.passes["deletion_insertion"] == 4 * 2 * (steps + 1) * n
    assert result.passes["road"] == 4 * 2 * len(CFG.road_percentiles) * n
    assert result.passes["confidence"] == (1 + 4) * n
    assert result.passes["maps"] == n and result.passes["localisation"] == 0
    assert result.passes["sanity"] == 2 * n
    off = run_xai(_model("cam"), x, labels, au,
                  XaiConfig(n_images=4, steps=4, road_percentiles=(50.0,), mprt_steps=0,
                            controls=()))
    assert off.passes["deletion_insertion"] == 2 * (steps + 1) * n and "sanity" not in off.passes
    assert "au_auc_random" not in off.values


def test_attention_only_methods_use_the_headline_attention(split):
    torch.manual_seed(0)
    model = build_method(MethodConfig(method="apvit", apvit_depth=1, apvit_k=8),
                         ModelConfig(backbone="ir_tiny"), img_size=32).eval()
    scores = evaluate_xai(model, split, XaiConfig(n_images=2, steps=2, road_percentiles=(50.0,),
                                                  mprt_steps=1))
    assert math.isfinite(scores["test_xai_au_auc"]) and "test_xai_mprt_head" in scores


@pytest.mark.parametrize(("field", "value", "message"), [
    ("n_images", 0, "n_images=0 is invalid"),
    ("road_percentiles", (100.0,), "road_percentiles"),
    ("au_threshold", 0.0, "au_threshold"),
    ("baseline", "zeros", "baseline='zeros' is invalid: use one of mean, blur, rise, road"),
    ("controls", ("middle",), "controls"),
])
def test_config_errors_name_the_field_and_the_fix(field, value, message):
    with pytest.raises(UserError, match=message):
        XaiConfig(**{field: value})
