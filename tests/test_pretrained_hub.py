"""ImageNet weights through timm's tag and the Hugging Face hub cache, without a network.

The cache is fabricated in the hub's layout (``models--timm--<tag>/snapshots/<hash>/`` and
``refs/main``) from a random-init model's state dict, so loading proves the file was found and
read; ``HF_HUB_OFFLINE`` keeps every call local.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from fer_core.cli import UserError
from fer_core.models import build_backbone, hub

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def fake_cache(root: Path, model: str = "resnet18") -> dict[str, torch.Tensor]:
    """Write ``model``'s random-init weights where the hub cache keeps its default tag."""
    repo = timm.models.get_pretrained_cfg(model).hf_hub_id  # e.g. timm/resnet18.a1_in1k
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "snapshots" / SNAPSHOT).mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(SNAPSHOT)
    state = {k: v.contiguous() for k, v in timm.create_model(model).state_dict().items()}
    save_file(state, str(folder / "snapshots" / SNAPSHOT / "model.safetensors"))
    return state


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hub"


def test_imagenet_loads_from_fabricated_hub_cache(offline_cache):
    saved = fake_cache(offline_cache)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the classifier is dropped with a warning
        backbone = build_backbone("resnet18", pretrained="imagenet")
    loaded = backbone.model.state_dict()
    assert torch.equal(loaded["conv1.weight"], saved["conv1.weight"])
    assert torch.equal(loaded["layer4.1.bn2.running_var"], saved["layer4.1.bn2.running_var"])


def test_hf_home_is_honoured(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake_cache(tmp_path / "hf" / "hub")
    assert hub.hub_cache() == tmp_path / "hf" / "hub"
    assert hub.cached_file("resnet18").name == "model.safetensors"


def test_offline_miss_is_one_line_naming_the_fetch_command(offline_cache):
    with pytest.raises(UserError) as err:
        build_backbone("resnet18", pretrained="imagenet")
    message = str(err.value)
    assert "\n" not in message
    assert "python -m fer_core.weights fetch resnet18" in message
    assert str(offline_cache) in message


def test_sweep_with_imagenet_fails_before_anything_starts(offline_cache):
    from tuner.cli import parse_args
    from tuner.spec.resolve import SweepError, resolve

    with pytest.raises(SweepError, match="fer_core.weights fetch resnet18"):
        resolve(parse_args(["--space", "lambda", "--set", "pretrained=imagenet"]))
    fake_cache(offline_cache)
    resolve(parse_args(["--space", "lambda", "--set", "pretrained=imagenet"]))  # now it passes


def test_fetch_cli_reports_a_cached_model(offline_cache, capsys):
    from fer_core.weights import main

    fake_cache(offline_cache)
    assert main(["fetch", "resnet18", "--cache", str(offline_cache)]) == 0
    out = capsys.readouterr().out
    assert "already cached" in out and f"HF_HUB_CACHE={offline_cache}" in out
