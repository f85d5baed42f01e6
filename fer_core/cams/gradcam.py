"""Gradient-based CAMs on the GAP + fc classifier: GradCAM, GradCAM++ and LayerCAM.

The model and its training are CAM's (same head); only the map differs. Each map needs the
gradient of the class score ``Y_k`` w.r.t. the last feature map ``A``. The backbone runs
without autograd and the head is re-run on a detached ``A`` that requires grad, so
``torch.autograd.grad`` gives ``∂Y_k/∂A`` without touching any parameter's ``.grad`` and
without hooks (the gradient w.r.t. ``A`` depends only on the part of the graph after ``A``).
"""

from __future__ import annotations

import torch

from fer_core.cams.cam import CAM


class GradientCAM(CAM):
    """Shared machinery: feature map + class-score gradient → :meth:`combine`."""

    def activations_and_grads(
        self, x: torch.Tensor, class_idx: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A, ∂Y_k/∂A)``, both ``(B, C, h, w)`` and detached; ``None`` → predicted class."""
        with torch.no_grad():
            feat = self.backbone(x)[self.backbone.last_layer]
        with torch.enable_grad():
            a = feat.detach().requires_grad_(True)
            logits, _ = self.head(a, None)
            if class_idx is None:
                class_idx = logits.argmax(dim=1)
            # Samples are independent through the head, so one backward of the summed
            # scores gives every sample's own gradient.
            score = logits.gather(1, class_idx.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(score, a)
        return a.detach(), grad

    def raw_cams(self, x: torch.Tensor, class_idx: torch.Tensor | None) -> torch.Tensor:
        return self.combine(*self.activations_and_grads(x, class_idx))

    def combine(self, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """``(A, ∂Y/∂A)`` → unnormalised map ``(B, h, w)``."""
        raise NotImplementedError


class GradCAM(GradientCAM):
    """Selvaraju et al., 2017: ``ReLU(Σ_c mean_ij(∂Y/∂A_c) · A_c)``."""

    def combine(self, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        weights = grad.mean(dim=(2, 3), keepdim=True)
        return torch.relu((weights * act).sum(dim=1))


class GradCAMPlusPlus(GradientCAM):
    """Chattopadhay et al., 2018, eq. 19 with the exponential score (as published).

    ``α_ij = g_ij² / (2 g_ij² + Σ_ab A_ab · g_ij³)``, ``w_c = Σ_ij α_ij ReLU(g_ij)``,
    map ``= ReLU(Σ_c w_c A_c)``, on every backbone. Where features can be negative (SiLU/GELU
    CNNs, ViT tokens) ``Σ A`` can be negative, and with it the denominator and α: the formula
    is kept as published there (pytorch-grad-cam does the same), not zeroed, so such channels
    count against a pixel. On post-ReLU features the denominator is positive wherever
    ``g > 0``, so nothing changes there. No ε is added (pytorch-grad-cam adds 1e-6, which moves
    α wherever ``g²`` is small); the reference code's ``α = g²`` was a bug (docs/method.md §6).
    """

    def combine(self, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        g2 = grad * grad
        sum_act = act.sum(dim=(2, 3), keepdim=True)
        denom = 2.0 * g2 + sum_act * g2 * grad
        # α only matters where ReLU(g) > 0; an exactly zero denominator (α undefined) adds
        # nothing rather than an inf/NaN.
        used = (grad > 0) & (denom != 0)
        alpha = torch.where(used, g2 / torch.where(used, denom, 1.0), 0.0)
        weights = (alpha * torch.relu(grad)).sum(dim=(2, 3), keepdim=True)
        return torch.relu((weights * act).sum(dim=1))


class LayerCAM(GradientCAM):
    """Jiang et al., 2021: ``ReLU(Σ_c ReLU(∂Y/∂A_c) ⊙ A_c)`` (pixel-wise weights)."""

    def combine(self, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return torch.relu((torch.relu(grad) * act).sum(dim=1))
