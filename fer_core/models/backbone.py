"""timm backbones with layer taps selected by feature index (docs/method.md §5).

Layer numbers are timm feature indices plus one, which gives the protocol's numbering for free:

* ResNet family: ``feature_info`` is ``[act1, layer1, layer2, layer3, layer4]``, so layer 1 is
  the stem (conv1 + bn1 + act1), 2..5 are ``layer1..layer4``.
* ViT / DeiT: ``feature_info`` has one entry per block, so layer ``l`` is block ``l``'s patch
  tokens (prefix tokens dropped), reshaped by timm to a ``(B, C, h, w)`` grid.

Taps come from ``forward_intermediates(indices=...)``: no forward hooks and no module-path
strings, so a model family is supported as soon as timm implements that method for it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import timm
import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from fer_core.cli import MissingPath, UserError
from fer_core.models.hub import IMAGENET, imagenet_file

# Keys under which training scripts commonly nest a state dict inside a checkpoint.
_NESTED_KEYS = ("state_dict", "model", "model_state", "model_state_dict", "net")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP and torch.compile


class Backbone(nn.Module):
    """A headless timm model whose forward returns the requested layers' feature maps.

    Attributes:
        model: the timm model (``num_classes=0``); exposed for methods that need its parts,
            e.g. a transformer's blocks.
        last_layer: number of the final feature map (5 for ResNets, depth for ViTs).
        channels: ``{layer: channels}``.
        reductions: ``{layer: stride w.r.t. the input}`` (dilation taken into account).
        is_transformer: True for ViT-style token models (patch embedding + blocks).
    """

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        if not hasattr(model, "forward_intermediates"):
            raise UserError(
                f"timm model {name!r} has no forward_intermediates(); layer taps need a model "
                "family that implements it (ResNet, ConvNeXt, EfficientNet, ViT/DeiT, ...)"
            )
        self.model = model
        self.name = name
        info = _feature_info(model)
        self.channels: dict[int, int] = {i + 1: int(f["num_chs"]) for i, f in enumerate(info)}
        self.reductions: dict[int, int] = {i + 1: int(f["reduction"]) for i, f in enumerate(info)}
        self.modules_by_layer: dict[int, str] = {
            i + 1: str(f.get("module", "")) for i, f in enumerate(info)
        }
        self.last_layer: int = len(info)
        self.is_transformer: bool = hasattr(model, "patch_embed") and hasattr(model, "blocks")

    @property
    def layers(self) -> tuple[int, ...]:
        """All valid layer numbers, ``1..last_layer``."""
        return tuple(range(1, self.last_layer + 1))

    def check_layers(self, layers: Iterable[int]) -> tuple[int, ...]:
        """Validate layer numbers; raise ``ValueError`` naming the valid range otherwise."""
        out = tuple(int(v) for v in layers)
        bad = [v for v in out if not 1 <= v <= self.last_layer]
        if bad:
            raise UserError(
                f"layer(s) {bad} do not exist in {self.name}: valid layers are "
                f"1..{self.last_layer} ({self._layer_help()})"
            )
        return out

    def _layer_help(self) -> str:
        if self.is_transformer:
            return "l = the l-th transformer block"
        names = ", ".join(f"{k}={m}" for k, m in self.modules_by_layer.items())
        return names

    def forward(self, x: torch.Tensor, layers: Iterable[int] = ()) -> dict[int, torch.Tensor]:
        """Feature maps ``{layer: (B, C, h, w)}`` for ``layers`` plus :attr:`last_layer`."""
        wanted = sorted(set(self.check_layers(layers)) | {self.last_layer})
        # timm returns the intermediates in ascending index order.
        maps = self.model.forward_intermediates(
            x, indices=[v - 1 for v in wanted], intermediates_only=True
        )
        return dict(zip(wanted, maps, strict=True))

    def wrap_layer(self, layer: int, module: nn.Module) -> None:
        """Apply ``module`` to layer ``layer``'s output inside the network (e.g. ADL).

        The tapped module (named by timm's ``feature_info``, not by a hand-written path) is
        replaced by ``Sequential(original, module)``, so later layers and the tap both see the
        modified features. Parameter names under that module gain a ``.0`` level, so load
        pretrained weights before wrapping (``build_backbone`` does).
        """
        (layer,) = self.check_layers((layer,))
        path = self.modules_by_layer[layer]
        parent_path, _, child = path.rpartition(".")
        parent = self.model.get_submodule(parent_path) if parent_path else self.model
        original = parent.get_submodule(child)
        setattr(parent, child, nn.Sequential(original, module))


def _feature_info(model: nn.Module) -> list[Mapping[str, Any]]:
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ValueError(f"{type(model).__name__} has no feature_info; cannot number its layers")
    # Some timm models hold a FeatureInfo object rather than a list of dicts.
    return list(getattr(info, "info", info))


def build_backbone(
    name: str,
    output_stride: int = 32,
    pretrained: str | os.PathLike | None = None,
    img_size: int | None = None,
) -> Backbone:
    """Create a headless timm model with layer taps.

    Args:
        name: any timm model name implementing ``forward_intermediates``.
        output_stride: 32 (native), 16 or 8 for CNNs; timm replaces the strides of the last
            stages with dilation, so layers 4–5 of a ResNet are 28×28 at 224 px with 8.
            Transformers have a fixed patch stride: only 32 (meaning "native") is accepted.
        pretrained: ``None`` (random init), a local weight file (see :func:`load_weights`),
            or ``"imagenet"``: timm's default pretrained tag for ``name``, read from the
            Hugging Face hub cache (``fer_core.models.hub``).
        img_size: input side for transformers (position embeddings are built for it, and
            resampled from the checkpoint's grid when loading weights); ignored for CNNs.

    Returns:
        A :class:`Backbone`.
    """
    if output_stride not in (8, 16, 32):
        raise UserError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    if not timm.is_model(name):
        raise UserError(
            f"unknown timm model {name!r}; see timm.list_models(), e.g. 'resnet50', "
            "'resnet18', 'deit_small_patch16_224'"
        )
    kwargs: dict[str, Any] = {"pretrained": False, "num_classes": 0}
    is_vit = _is_token_model(name)
    if is_vit:
        if output_stride != 32:
            raise UserError(
                f"output_stride={output_stride} is for CNNs; {name} has a fixed patch stride "
                "(use output_stride=32)"
            )
        if img_size is not None:
            kwargs["img_size"] = int(img_size)
    elif output_stride != 32:
        kwargs["output_stride"] = output_stride
    try:
        model = timm.create_model(name, **kwargs)
    except TypeError as err:  # e.g. a family without a dilation option
        raise UserError(f"cannot build {name} with {kwargs}: {err}") from err
    if pretrained == IMAGENET:  # timm's pretrained tag, through the hub cache
        pretrained = imagenet_file(name)
    if pretrained is not None:
        load_weights(model, pretrained)
    return Backbone(model, name)


def _is_token_model(name: str) -> bool:
    # Decided on a meta-device instance: no memory is allocated, no weights initialised.
    with torch.device("meta"):
        m = timm.create_model(name, pretrained=False, num_classes=0)
    return hasattr(m, "patch_embed") and hasattr(m, "blocks")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file.

    Accepts a checkpoint dict that nests the weights under ``state_dict``/``model``/... and
    strips ``module.`` (DataParallel) and ``_orig_mod.`` (torch.compile) prefixes.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingPath(
            f"pretrained weight file {path!r} does not exist; give a local state-dict file "
            "(the model hub is not used) or pretrained=None for random initialisation"
        )
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        obj: Any = load_file(path)
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in _NESTED_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise UserError(f"{path!r} does not hold a state dict (name → tensor)")
    out = {}
    for k, v in obj.items():
        for prefix in _WRAPPER_PREFIXES:
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a local weight file into a headless timm model.

    Classifier weights (``fc.*``/``head.*``, whatever the class count) are skipped with a
    warning: the backbone has no head, each CAM method builds its own. An absolute position
    embedding of another grid is resampled (bicubic, as timm does). Any other missing or
    unexpected key is an error, so a wrong architecture never loads silently.
    """
    state = read_state_dict(path)
    classifier = model.pretrained_cfg.get("classifier", "fc")
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    own = model.state_dict()
    dropped = [k for k in state if k not in own and k.split(".")[0] in {h.split(".")[0]
                                                                            for h in heads}]
    if dropped:
        warnings.warn(
            f"ignoring classifier weights {dropped} from {os.fspath(path)!r}: the backbone is "
            "headless and each CAM method builds its own head",
            stacklevel=2,
        )
        state = {k: v for k, v in state.items() if k not in dropped}
    pos = state.get("pos_embed")
    if pos is not None and "pos_embed" in own and pos.shape != own["pos_embed"].shape:
        state["pos_embed"] = resample_abs_pos_embed(
            pos,
            new_size=list(model.patch_embed.grid_size),
            num_prefix_tokens=0 if getattr(model, "no_embed_class", False)
            else model.num_prefix_tokens,
        )
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches: same names, another architecture
        raise UserError(f"weights in {os.fspath(path)!r} do not fit the model: {err}") from err
    if missing or unexpected:
        raise UserError(
            f"weights in {os.fspath(path)!r} do not fit {model.pretrained_cfg.get('architecture')}"
            f": missing {missing[:8]}{'...' if len(missing) > 8 else ''}, unexpected "
            f"{unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
