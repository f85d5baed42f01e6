"""Layer taps of timm backbones (docs/method.md §5) and local weight loading."""

from __future__ import annotations

import math
from functools import cache

import pytest
import timm
import torch

from fer_core.models import build_backbone

RESNET_CHANNELS = {
    "resnet18": {1: 64, 2: 64, 3: 128, 4: 256, 5: 512},
    "resnet50": {1: 64, 2: 256, 3: 512, 4: 1024, 5: 2048},
}


def _expected_sides(size: int, output_stride: int) -> dict[int, int]:
    """Spatial side per layer: every stride-2 step (conv1, maxpool, layer2..4) rounds up."""
    sides, side, stride = {}, size, 1
    for layer, step in zip(range(1, 6), (2, 2, 2, 2, 2), strict=True):
        if stride * step <= output_stride:
            side, stride = math.ceil(side / step), stride * step
        sides[layer] = side
    return sides


@cache
def _shared(name: str, output_stride: int = 32, img_size: int | None = None):
    """Backbones built once per module: creating them (weight init) dominates test time."""
    return build_backbone(name, output_stride=output_stride, img_size=img_size)


def _no_hooks(module: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               for m in module.modules())


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("size", [112, 224])
def test_resnet_taps_shapes_and_strides(name: str, size: int) -> None:
    bb = _shared(name)
    assert bb.last_layer == 5 and not bb.is_transformer
    assert bb.channels == RESNET_CHANNELS[name]
    assert bb.reductions == {1: 2, 2: 4, 3: 8, 4: 16, 5: 32}
    with torch.no_grad():
        feats = bb(torch.randn(2, 3, size, size), layers=(1, 2, 3, 4, 5))
    assert sorted(feats) == [1, 2, 3, 4, 5]
    sides = _expected_sides(size, 32)
    for layer, f in feats.items():
        assert tuple(f.shape) == (2, bb.channels[layer], sides[layer], sides[layer]), layer
    # The stem is taken after its ReLU, layer 5 after layer4's last ReLU.
    assert feats[1].min() >= 0 and feats[5].min() >= 0
    assert _no_hooks(bb)


def test_last_layer_always_returned() -> None:
    bb = _shared("resnet18")
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 64, 64), layers=(3,))
    assert sorted(feats) == [3, 5]
    with torch.no_grad():
        assert sorted(bb(torch.randn(1, 3, 64, 64))) == [5]


@pytest.mark.parametrize(
    "name, output_stride, side", [("resnet50", 8, 28), ("resnet18", 8, 28), ("resnet18", 16, 14)]
)
def test_output_stride_dilates_last_stages(name: str, output_stride: int, side: int) -> None:
    bb = _shared(name, output_stride)
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 224, 224), layers=(3, 4, 5))
    assert feats[5].shape[-2:] == (side, side)
    assert feats[4].shape[-2:] == (28 if output_stride == 8 else 14,) * 2
    assert feats[3].shape[-2:] == (28, 28)
    assert bb.reductions == {1: 2, 2: 4, 3: 8, 4: min(16, output_stride), 5: output_stride}
    assert bb.channels == RESNET_CHANNELS[name]


def test_deit_blocks_as_grids() -> None:
    bb = _shared("deit_tiny_patch16_224", img_size=112)
    assert bb.is_transformer and bb.last_layer == 12
    assert set(bb.channels.values()) == {192} and set(bb.reductions.values()) == {16}
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        feats = bb(x, layers=range(1, 13))
        tokens = bb.model.forward_features(x)
    assert sorted(feats) == list(range(1, 13))
    for f in feats.values():
        assert tuple(f.shape) == (2, 192, 7, 7)
    # Block 12's grid is the last block's patch tokens (before the final norm), row-major.
    last = bb.model.norm(feats[12].flatten(2).transpose(1, 2))
    torch.testing.assert_close(last, tokens[:, bb.model.num_prefix_tokens:])


def test_bad_layers_name_the_valid_range() -> None:
    bb = _shared("resnet18")
    x = torch.randn(1, 3, 32, 32)
    for bad in (0, 6, -1):
        with pytest.raises(ValueError, match=r"valid layers are 1\.\.5"):
            bb(x, layers=(bad,))
    vit = _shared("deit_tiny_patch16_224", img_size=112)
    with pytest.raises(ValueError, match=r"1\.\.12"):
        vit(torch.randn(1, 3, 112, 112), layers=(13,))


def test_bad_names_and_options() -> None:
    with pytest.raises(ValueError, match="unknown timm model"):
        build_backbone("resnet_does_not_exist")
    with pytest.raises(ValueError, match="output_stride"):
        build_backbone("resnet18", output_stride=4)
    with pytest.raises(ValueError, match="patch stride"):
        build_backbone("deit_tiny_patch16_224", output_stride=8)


def test_local_weights_are_loaded(tmp_path) -> None:
    # A full classifier (1000-class fc) saved as a training checkpoint from DataParallel.
    src = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    with torch.no_grad():
        src.conv1.weight.normal_()
        src.layer4[1].bn2.running_mean.uniform_()
    state = {"module." + k: v for k, v in src.state_dict().items()}
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": state}, path)

    with pytest.warns(UserWarning, match="classifier"):
        bb = build_backbone("resnet18", pretrained=str(path))
    torch.testing.assert_close(bb.model.conv1.weight, src.conv1.weight)
    torch.testing.assert_close(bb.model.layer4[1].bn2.running_mean, src.layer4[1].bn2.running_mean)
    fresh = _shared("resnet18")
    assert not torch.equal(fresh.model.conv1.weight, src.conv1.weight)

    # A bare state dict of the headless model loads without a warning.
    bare = tmp_path / "bare.pth"
    torch.save(bb.model.state_dict(), bare)
    again = build_backbone("resnet18", pretrained=bare)
    torch.testing.assert_close(again.model.conv1.weight, src.conv1.weight)


def test_vit_weights_resample_position_embedding(tmp_path) -> None:
    # Weights of a 112-px model (7×7 grid) loaded into a 224-px one (14×14 grid).
    src = _shared("deit_tiny_patch16_224", img_size=112).model
    path = tmp_path / "deit.pth"
    torch.save({"model": src.state_dict()}, path)
    bb = build_backbone("deit_tiny_patch16_224", pretrained=path)
    assert bb.model.pos_embed.shape == (1, 1 + 196, 192)
    torch.testing.assert_close(bb.model.blocks[3].attn.qkv.weight, src.blocks[3].attn.qkv.weight)
    torch.testing.assert_close(bb.model.pos_embed[:, 0], src.pos_embed[:, 0])  # class token


def test_weight_file_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_backbone("resnet18", pretrained=tmp_path / "missing.pth")
    other = tmp_path / "r50.pth"
    torch.save(timm.create_model("resnet50", pretrained=False, num_classes=0).state_dict(), other)
    with pytest.raises(ValueError, match="do not fit"):
        build_backbone("resnet18", pretrained=other)
    junk = tmp_path / "junk.pth"
    torch.save({"epoch": 1, "lr": 0.1}, junk)
    with pytest.raises(ValueError, match="state dict"):
        build_backbone("resnet18", pretrained=junk)
