"""TS-CAM (Gao et al., ICCV 2021): token semantic coupled attention maps on a ViT/DeiT.

The patch tokens of the last block (after the ViT's final LayerNorm) form a grid; a 3×3 conv
maps it to ``K`` *semantic maps* and their spatial mean gives the logits (the class token is
not classified, it only serves the attention). The CAM of class ``k`` couples the class-agnostic
*semantic-aware attention* with the class's semantic map::

    A(b)     = Σ_blocks mean_heads softmax(q_cls · kᵀ / √d)[patches]     (h, w)
    CAM_k(b) = S_k(b) ⊙ A(b),     then min-max per image (base class)

Layer taps follow docs/method.md §5 for transformers: layer ``l`` is block ``l``'s patch tokens
as a ``(B, C, h, w)`` grid (before the final norm); the headline layer is the last block.
"""

from __future__ import annotations

import torch
from torch import nn

from fer_core.cams.base import CamMethod, gap, pick
from fer_core.cli import UserError
from fer_core.config import ModelConfig
from fer_core.models import Backbone
from fer_core.models.vit_attention import ClsAttentionRecorder


class TSCAM(CamMethod):
    """ViT/DeiT backbone (``model_cfg.backbone``, e.g. ``deit_small_patch16_224``) + conv head."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.semantic = nn.Conv2d(self.feat_channels, self.num_classes, 3, padding=1)

    def make_backbone(self, model_cfg: ModelConfig, img_size: int | None) -> Backbone:
        backbone = super().make_backbone(model_cfg, img_size)
        if not backbone.is_transformer:
            raise UserError(
                f"tscam needs a ViT/DeiT backbone (patch tokens + attention), got "
                f"{model_cfg.backbone!r}; set backbone to e.g. 'deit_small_patch16_224'"
            )
        return backbone

    def _tokens_normed(self, feat: torch.Tensor) -> torch.Tensor:
        # The head reads the final LayerNorm's output, as the ViT's classifier would; the norm
        # is per token, so applying it to the grid's channel axis is the same thing.
        return self.backbone.model.norm(feat.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def class_maps(self, feat: torch.Tensor) -> torch.Tensor:
        """Semantic maps ``(B, K, h, w)`` from the last block's patch-token grid."""
        return self.semantic(self._tokens_normed(feat))

    def head(self, feat: torch.Tensor, labels: torch.Tensor | None = None):
        return gap(self.class_maps(feat)), {}

    def attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(last block grid (B, C, h, w), attention summed over blocks (B, h, w))``."""
        with ClsAttentionRecorder(self.backbone.model) as rec:
            feat = self.backbone(x)[self.backbone.last_layer]
        attn = rec.stacked().sum(dim=0)
        return feat, attn.reshape(feat.shape[0], *feat.shape[-2:])

    def raw_cams(self, x: torch.Tensor, class_idx: torch.Tensor | None) -> torch.Tensor:
        feat, attn = self.attention(x)
        maps = self.class_maps(feat)
        if class_idx is None:
            class_idx = gap(maps).argmax(dim=1)
        return pick(maps, class_idx) * attn
