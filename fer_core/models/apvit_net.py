"""APViT: an IR-50 face CNN feeding a Vision Transformer through two attentive poolings.

Xue et al., "Vision Transformer with Attentive Pooling for Robust Facial Expression Recognition"
(IEEE T-AFFC 2023). Written from scratch from the paper and facts read from its public code:

- Extractor: the face-recognition IR network (face.evoLVe ``bottleneck_IR`` units: BN → 3×3 conv →
  PReLU → 3×3 conv (stride) → BN, plus a 1×1-conv+BN or identity shortcut), stem 3×3 conv + BN +
  PReLU at stride 1, stages of 64/128/256 channels with [3, 4, 14] units. IR-50 has a 4th stage
  (512 channels, 3 units), but APViT reads stage 3 (stride 8: 14×14 at 112 px), so stage 4 is
  not built (it would be dead weight without gradients).
- APP (attentive patch pooling): stage-3 features → 1×1 conv to the ViT width; the score of
  each patch is the sum over channels of ``|projected feature|``; the top-``k`` patches (160 of
  196 at 112 px) are kept in their spatial order. Position embeddings are added before pooling.
- ATP (attentive token pooling): in the second half of the blocks (4 of 8), after the attention
  residual and before the MLP, keep ``max(int(r·n), 1)`` of the ``n`` patch tokens (``r`` = 0.9),
  ranked by the class token's pre-softmax attention logits summed over heads (the official
  code's ``SUM`` rule); the class token is always kept.
- Head: final LayerNorm, class token → linear classifier. Default ViT size: APViT's (width 768,
  8 heads, MLP ratio 3, no qkv bias, LayerNorm eps 1e-6, depth 8).

Pooling has no learnable parameters: ``topk`` indices carry no gradient; gradients flow through
the gathered tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn

IR50_UNITS: tuple[int, int, int] = (3, 4, 14)
"""Units per stage of IR-50's first three stages (the 4th, ``3`` units of 512, is unused)."""

IR_WIDTHS: tuple[int, int, int] = (64, 128, 256)
STEM_WIDTH = 64


def _stride2_size(n: int) -> int:
    """Output side of a 3×3 stride-2 pad-1 conv (and of the 1×1 stride-2 shortcut)."""
    return (n - 1) // 2 + 1


def ir_grid_size(img_size: int, stages: int = 3) -> int:
    """Side of the stage-``stages`` IR feature map for a square ``img_size`` input."""
    side = img_size
    for _ in range(stages):
        side = _stride2_size(side)
    return side


class IRUnit(nn.Module):
    """One bottleneck-IR unit (pre-activation style residual unit of face-recognition ResNets)."""

    def __init__(self, c_in: int, c_out: int, stride: int, mid_bn: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.BatchNorm2d(c_in),
            nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
        ]
        if mid_bn:  # InsightFace/TFace variant: an extra BN before the PReLU
            layers.append(nn.BatchNorm2d(c_out))
        layers += [
            nn.PReLU(c_out),
            nn.Conv2d(c_out, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.residual = nn.Sequential(*layers)
        if c_in == c_out:
            # A 1×1 max-pool with stride is plain subsampling: identity when stride is 1.
            self.shortcut: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class IRNet(nn.Module):
    """IR stem and stages; returns every level's feature map (stem first)."""

    def __init__(
        self,
        units: tuple[int, ...] = IR50_UNITS,
        widths: tuple[int, ...] = IR_WIDTHS,
        mid_bn: bool = False,
    ) -> None:
        super().__init__()
        if len(units) != len(widths) or any(u < 1 for u in units):
            raise ValueError(
                f"IRNet: units {units} and widths {widths} must have the same length, units ≥ 1"
            )
        self.stem = nn.Sequential(
            nn.Conv2d(3, STEM_WIDTH, 3, 1, 1, bias=False), nn.BatchNorm2d(STEM_WIDTH),
            nn.PReLU(STEM_WIDTH),
        )
        stages = []
        c_in = STEM_WIDTH
        for n_units, c_out in zip(units, widths, strict=True):
            blocks = [IRUnit(c_in, c_out, 2, mid_bn)]
            blocks += [IRUnit(c_out, c_out, 1, mid_bn) for _ in range(n_units - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.channels = (STEM_WIDTH, *widths)
        self.reductions = tuple(2**i for i in range(len(widths) + 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[stem, stage1, stage2, ...]`` feature maps ``(B, C, h, w)``."""
        x = self.stem(x)
        outs = [x]
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


def keep_top_tokens(tokens: torch.Tensor, scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Keep, per sample, the ``keep`` tokens of highest score, in their original order.

    Args:
        tokens: ``(B, N, D)``.
        scores: ``(B, N)``; ties are broken by ``torch.topk``.
        keep: number of tokens to keep, ``1 ≤ keep``; ``keep ≥ N`` returns ``tokens`` unchanged.

    Returns:
        ``(B, min(keep, N), D)``.
    """
    n = tokens.shape[1]
    if keep >= n:
        return tokens
    if keep < 1:
        raise ValueError(f"keep_top_tokens: keep must be ≥ 1, got {keep}")
    idx = scores.topk(keep, dim=1, sorted=False).indices.sort(dim=1).values
    return tokens.gather(1, idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


class PoolingAttention(nn.Module):
    """Multi-head self-attention that also returns the class token's attention logits."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(output (B, N, D), cls logits over patch tokens summed over heads (B, N - 1))``."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(
            2, 0, 3, 1, 4
        ).unbind(0)
        logits = (q * self.scale) @ k.transpose(-2, -1)  # (B, heads, N, N)
        cls_scores = logits[:, :, 0, 1:].sum(dim=1)
        out = (logits.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out), cls_scores


class PoolingBlock(nn.Module):
    """Pre-norm transformer block with optional attentive token pooling (ATP)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        keep_rate: float = 1.0,
        qkv_bias: bool = False,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if not 0.0 < keep_rate <= 1.0:
            raise ValueError(f"PoolingBlock: keep_rate must be in (0, 1], got {keep_rate}")
        norm = partial(nn.LayerNorm, eps=norm_eps)
        self.keep_rate = keep_rate
        self.norm1 = norm(dim)
        self.attn = PoolingAttention(dim, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def kept_tokens(self, n_patches: int) -> int:
        """Patch tokens left after this block's pooling, from ``n_patches``."""
        if self.keep_rate >= 1.0:
            return n_patches
        return max(int(n_patches * self.keep_rate), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn_out, cls_scores = self.attn(self.norm1(x))
        x = x + self.drop_path(attn_out)
        keep = self.kept_tokens(x.shape[1] - 1)
        if keep < x.shape[1] - 1:
            x = torch.cat([x[:, :1], keep_top_tokens(x[:, 1:], cls_scores, keep)], dim=1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


@dataclass(frozen=True)
class ApViTOutput:
    """Logits, the IR feature maps (stem first) and the APP patch scores."""

    logits: torch.Tensor
    ir_feats: list[torch.Tensor]
    patch_scores: torch.Tensor  # (B, h, w): APP's sum |projected feature|


class ApViTNet(nn.Module):
    """IR extractor → APP → ViT with ATP → class-token linear classifier.

    Args:
        num_classes: classifier outputs.
        img_size: square input side (112 in APViT); sets the position-embedding grid. Other
            sizes still run: the embedding is resampled bilinearly to the feature grid.
        ir_units: IR units per stage (IR-50: ``(3, 4, 14)``); the last stage feeds the ViT.
        mid_bn: IR unit variant, see :class:`IRUnit`.
        depth, keep_k, keep_r: ViT blocks, APP's kept patches, ATP's keep rate.
        embed_dim, num_heads, mlp_ratio, qkv_bias: ViT size (APViT's by default).
        drop_path_rate: stochastic depth, linearly increasing over blocks (0 in APViT).
    """

    def __init__(
        self,
        num_classes: int,
        img_size: int = 112,
        ir_units: tuple[int, ...] = IR50_UNITS,
        mid_bn: bool = False,
        depth: int = 8,
        keep_k: int = 160,
        keep_r: float = 0.9,
        embed_dim: int = 768,
        num_heads: int = 8,
        mlp_ratio: float = 3.0,
        qkv_bias: bool = False,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(ir_units) != len(IR_WIDTHS):
            raise ValueError(f"ir_units must give {len(IR_WIDTHS)} stages, got {ir_units}")
        if depth < 1 or keep_k < 1:
            raise ValueError(f"ApViTNet: depth ({depth}) and keep_k ({keep_k}) must be ≥ 1")
        self.ir = IRNet(ir_units, IR_WIDTHS, mid_bn)
        self.keep_k = keep_k
        self.grid = ir_grid_size(img_size, len(ir_units))
        self.proj = nn.Conv2d(IR_WIDTHS[-1], embed_dim, 1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.cls_pos_embed = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, embed_dim))
        # Token pooling in the second half of the blocks: APViT's 8 blocks use [1]*4 + [r]*4.
        rates = [1.0] * (depth - depth // 2) + [keep_r] * (depth // 2)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            PoolingBlock(embed_dim, num_heads, mlp_ratio, rate, qkv_bias, dp)
            for rate, dp in zip(rates, dpr, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_vit()

    def _init_vit(self) -> None:
        for p in (self.cls_token, self.cls_pos_embed, self.pos_embed):
            trunc_normal_(p, std=0.02)
        for m in [*self.blocks.modules(), self.head]:
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def token_counts(self, n_patches: int | None = None) -> list[int]:
        """Patch tokens entering the ViT and after each block, for an input grid of
        ``n_patches`` patches (default: the grid of ``img_size``)."""
        n = min(self.keep_k, self.grid**2 if n_patches is None else n_patches)
        counts = [n]
        for blk in self.blocks:
            n = blk.kept_tokens(n)
            counts.append(n)
        return counts

    def _pos_embed_for(self, h: int, w: int) -> torch.Tensor:
        if h * w == self.pos_embed.shape[1] and h == self.grid:
            return self.pos_embed
        grid = self.pos_embed.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        return grid.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> ApViTOutput:
        ir_feats = self.ir(x)
        proj = self.proj(ir_feats[-1])  # (B, D, h, w)
        b, _, h, w = proj.shape
        scores = proj.abs().sum(dim=1)  # APP score: sum |feature| over channels
        tokens = proj.flatten(2).transpose(1, 2) + self._pos_embed_for(h, w)
        tokens = keep_top_tokens(tokens, scores.flatten(1), self.keep_k)
        cls = (self.cls_token + self.cls_pos_embed).expand(b, -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        for blk in self.blocks:
            tokens = blk(tokens)
        logits = self.head(self.norm(tokens[:, 0]))
        return ApViTOutput(logits=logits, ir_feats=ir_feats, patch_scores=scores)

