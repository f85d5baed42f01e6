"""Per-block class-token attention of a timm ViT/DeiT, recorded during an ordinary forward.

TS-CAM needs, for every block, the softmax attention of the class token over the patch tokens.
timm's blocks use fused ``scaled_dot_product_attention`` and never materialise that matrix, so
we record each block's ``attn.qkv`` output with a forward hook (no timm code is replaced) and
compute only the class-token row from it: ``softmax(q_cls · kᵀ · scale)``, one ``(heads, N)``
row per sample instead of an ``N × N`` matrix. Hooks live only inside the ``with`` block.
"""

from __future__ import annotations

from types import TracebackType

import torch
from timm.layers import Attention
from torch import nn


def cls_attention_from_qkv(
    qkv: torch.Tensor, attn: Attention, num_prefix_tokens: int = 1
) -> torch.Tensor:
    """Class-token → patch attention of one block, averaged over heads.

    Args:
        qkv: the block's ``attn.qkv`` output ``(B, N, 3 · heads · head_dim)``.
        attn: the block's timm :class:`~timm.layers.Attention` (heads, q/k norms, scale).
        num_prefix_tokens: class/register tokens in front of the patch tokens; token 0 is the
            class token.

    Returns:
        ``(B, N - num_prefix_tokens)``: the softmax row of query 0 (over all ``N`` keys, as in
        the forward pass), restricted to the patch keys and averaged over heads.
    """
    b, n, _ = qkv.shape
    q, k, _ = qkv.reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q[:, :, :1]), attn.k_norm(k)
    row = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # (B, heads, 1, N)
    return row[:, :, 0, num_prefix_tokens:].mean(dim=1)


class ClsAttentionRecorder:
    """Context manager recording each block's class-token attention during a forward pass.

    Example::

        with ClsAttentionRecorder(vit) as rec:
            vit.forward_intermediates(x)
        attn = rec.stacked()   # (depth, B, N_patches)
    """

    def __init__(self, vit: nn.Module) -> None:
        blocks = getattr(vit, "blocks", None)
        if blocks is None or not len(blocks):
            raise TypeError(f"{type(vit).__name__} has no transformer blocks to record")
        for i, blk in enumerate(blocks):
            attn = getattr(blk, "attn", None)
            if not isinstance(attn, Attention) or getattr(attn, "gate", None) is not None:
                raise TypeError(
                    f"block {i} of {type(vit).__name__} has attention "
                    f"{type(attn).__name__}; class-token attention is implemented for timm's "
                    "standard (ungated) Attention only, as in ViT and DeiT"
                )
        self._blocks = list(blocks)
        self._prefix = int(getattr(vit, "num_prefix_tokens", 1))
        self._maps: list[torch.Tensor | None] = [None] * len(self._blocks)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, index: int, attn: Attention):
        def record(_module: nn.Module, _inputs: tuple, qkv: torch.Tensor) -> None:
            self._maps[index] = cls_attention_from_qkv(qkv, attn, self._prefix)

        return record

    def __enter__(self) -> ClsAttentionRecorder:
        self._maps = [None] * len(self._blocks)
        self._handles = [
            blk.attn.qkv.register_forward_hook(self._hook(i, blk.attn))
            for i, blk in enumerate(self._blocks)
        ]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def stacked(self) -> torch.Tensor:
        """``(depth, B, N_patches)``; raises if a block did not run inside the context."""
        missing = [i for i, m in enumerate(self._maps) if m is None]
        if missing:
            raise RuntimeError(f"no attention recorded for blocks {missing}; run the forward "
                               "pass inside the ClsAttentionRecorder context")
        return torch.stack(self._maps)  # type: ignore[arg-type]
