"""APViT (Xue et al., 2023) as a Table 1 method: attention only, no CAM.

The network (IR extractor → attentive patch pooling → ViT with attentive token pooling) lives
in :mod:`fer_core.models.apvit_net`; this module gives it the project's layer numbering and the
:class:`CamMethod` interface. Depth, ``k`` and ``r`` come from the method config
(``apvit_depth``, ``apvit_k``, ``apvit_r``); the extractor/ViT size from ``model_cfg.backbone``,
one of :data:`APVIT_VARIANTS`.

Layers (docs/method.md §5, numbered like the ResNet family): 1 = IR stem (stride 1), 2/3/4 = IR
stages 1/2/3 (strides 2/4/8, i.e. 56/28/14 px grids at 112 px). Layer 4 is the stage-3 map that
APP pools and the ViT reads: it is the last and headline layer (ATT-COS). The ViT's tokens are
not a layer: after pooling they no longer tile the image.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from fer_core.cams.base import CamMethod, MethodOutput
from fer_core.cli import UserError
from fer_core.config import ModelConfig
from fer_core.models import read_state_dict
from fer_core.models.apvit_net import IR50_UNITS, ApViTNet, ApViTOutput

APVIT_IMG_SIZE = 112
"""APViT's input side (docs/method.md §8), used when no ``img_size`` is given."""


@dataclass(frozen=True)
class ApViTVariant:
    """Extractor and ViT size of one APViT variant."""

    ir_units: tuple[int, ...]
    embed_dim: int
    num_heads: int
    mlp_ratio: float


APVIT_VARIANTS: dict[str, ApViTVariant] = {
    # The paper's: IR-50's first three stages + a ViT 768 wide, 8 heads, MLP ratio 3.
    "ir50": ApViTVariant(IR50_UNITS, embed_dim=768, num_heads=8, mlp_ratio=3.0),
    # One unit per stage and a narrow ViT: same structure, for CPU tests and smoke runs.
    "ir_tiny": ApViTVariant((1, 1, 1), embed_dim=64, num_heads=4, mlp_ratio=2.0),
}
"""``model_cfg.backbone`` values accepted by ``apvit``."""


class IRTaps(nn.Module):
    """Backbone-like view of an :class:`ApViTNet`: layer numbers over its IR feature maps."""

    is_transformer = False

    def __init__(self, net: ApViTNet) -> None:
        super().__init__()
        self.net = net
        self.channels = {i + 1: c for i, c in enumerate(net.ir.channels)}
        self.reductions = {i + 1: r for i, r in enumerate(net.ir.reductions)}
        self.last_layer = len(net.ir.channels)

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(range(1, self.last_layer + 1))

    def check_layers(self, layers: Iterable[int]) -> tuple[int, ...]:
        """Validate layer numbers; ``ValueError`` naming the valid ones otherwise."""
        out = tuple(int(v) for v in layers)
        bad = [v for v in out if v not in self.channels]
        if bad:
            raise UserError(
                f"layer(s) {bad} do not exist in apvit: valid layers are 1..{self.last_layer} "
                "(1 = IR stem, 2..4 = IR stages 1..3; 4 feeds the ViT)"
            )
        return out

    def taps(self, out: ApViTOutput, layers: Iterable[int]) -> dict[int, torch.Tensor]:
        """``{layer: (B, C, h, w)}`` for ``layers`` plus the last layer."""
        wanted = sorted(set(self.check_layers(layers)) | {self.last_layer})
        return {v: out.ir_feats[v - 1] for v in wanted}

    def forward(self, x: torch.Tensor, layers: Iterable[int] = ()) -> dict[int, torch.Tensor]:
        return self.taps(self.net(x), layers)


class APViT(CamMethod):
    """IR-50 → APP → pooling ViT → linear classifier; attention maps only (Table 1 "--")."""

    has_cam = False

    def make_backbone(self, model_cfg: ModelConfig, img_size: int | None) -> IRTaps:
        variant = APVIT_VARIANTS.get(model_cfg.backbone)
        if variant is None:
            raise UserError(
                f"apvit builds its own IR extractor + ViT; backbone={model_cfg.backbone!r} is "
                f"not one of its variants: {', '.join(APVIT_VARIANTS)} (the paper's is 'ir50')"
            )
        if model_cfg.output_stride != 32:
            raise UserError(
                f"apvit has a fixed stride (stage 3 at 1/8); use output_stride=32, got "
                f"{model_cfg.output_stride}"
            )
        cfg = self.params
        net = ApViTNet(
            num_classes=self.num_classes,
            img_size=img_size or APVIT_IMG_SIZE,
            ir_units=variant.ir_units,
            depth=cfg.apvit_depth,
            keep_k=cfg.apvit_k,
            keep_r=cfg.apvit_r,
            embed_dim=variant.embed_dim,
            num_heads=variant.num_heads,
            mlp_ratio=variant.mlp_ratio,
        )
        if model_cfg.pretrained is not None:
            # A whole-network state dict (e.g. a previous run's); strict, so a wrong
            # architecture fails loudly instead of training from a half-loaded model.
            net.load_state_dict(read_state_dict(model_cfg.pretrained))
        return IRTaps(net)

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, layers: Iterable[int] = ()
    ) -> MethodOutput:
        out = self.backbone.net(x)
        return MethodOutput(logits=out.logits, feats=self.backbone.taps(out, layers))

    def head(self, feat: torch.Tensor, labels: torch.Tensor | None = None):
        raise NotImplementedError("apvit classifies from the ViT's class token; call forward()")

    def cams(self, x: torch.Tensor, class_idx: torch.Tensor | int | None = None) -> torch.Tensor:
        raise NotImplementedError(
            "APViT has no CAM (Table 1 '--'): it is evaluated by its layer attention only "
            f"(ATT-COS, headline layer {self.headline_layer} = IR stage 3). Check "
            "`method.has_cam` before asking for CAMs."
        )
