"""Profiles: the sizes a sweep runs at, one file each, chosen with ``--profile``."""

from __future__ import annotations

import pytest

from search_spaces.params import fixed_values
from search_spaces.profiles import PROFILES, discover, get_profile
from search_spaces.sizes import LAPTOP, TINY
from tuner.cli import parse_args
from tuner.spec.resolve import SweepError, resolve


def resolved(*argv: str):
    return resolve(parse_args(["--estimate", *argv]))


def test_profiles_are_found_without_a_list():
    discover()
    assert {"laptop", "smoke", "paper"} <= set(PROFILES)
    assert dict(get_profile("laptop").fields) == LAPTOP
    assert dict(get_profile("smoke").fields) == TINY


def test_default_sweep_is_unchanged_and_says_its_profile():
    default = resolved("--space", "lambda_layers")
    laptop = resolved("--space", "lambda_layers", "--profile", "laptop")
    assert default.base == laptop.base == LAPTOP
    assert default.profile.name == "laptop" and not default.profile.explicit
    assert "profile laptop" in laptop.profile.line() and "img_size=48" in laptop.profile.line()


def test_paper_profile_per_dataset_and_set_overrides():
    raf = resolved("--space", "lambda", "--profile", "paper", "--dataset", "rafdb")
    aff = resolved("--space", "lambda", "--profile", "paper", "--dataset", "affectnet",
                   "--set", "epochs=3")
    assert (raf.base["epochs"], raf.base["batch_size"], raf.base["img_size"]) == (100, 32, 224)
    assert raf.base["backbone"] == "resnet50" and raf.base["pretrained"] == "imagenet"
    assert raf.base["lr"] == 0.002 and raf.base["nesterov"] is True
    assert (aff.base["epochs"], aff.base["batch_size"]) == (3, 224)  # --set wins


def test_paper_profile_gives_each_method_its_network():
    methods = resolved("--space", "methods", "--profile", "paper", "--dataset", "rafdb")
    nets = {v["method"]: v for v in fixed_values(methods.plan.params)}
    assert nets["gradcam"]["backbone"] == "resnet50" and nets["gradcam"]["img_size"] == 224
    assert nets["tscam"]["backbone"] == "deit_small_patch16_224"
    assert (nets["apvit"]["backbone"], nets["apvit"]["img_size"]) == ("ir50", 112)


@pytest.mark.parametrize("argv, words", [
    (["--profile", "huge"], ["unknown profile 'huge'", "laptop", "paper", "smoke"]),
    (["--profile", "paper"], ["'synthetic'", "--dataset rafdb or affectnet", "laptop"]),
])
def test_bad_profile_is_one_line_listing_valid_ones(argv, words):
    with pytest.raises(SweepError) as err:
        resolved("--space", "lambda", *argv)
    assert "\n" not in str(err.value)
    for word in words:
        assert word in str(err.value)
