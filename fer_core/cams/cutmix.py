"""CutMix (Yun et al., 2019) on a CAM model, with the AU maps mixed like the images.

In training, with probability ``cutmix_prob``: ``λ ~ Beta(β, β)``, a box of area ``(1 − λ)``
of the image centred at a uniform random point (clipped at the borders) is pasted from a
shuffled copy of the batch; ``λ`` is then corrected to the area actually kept. The AU maps
get the same box (scaled to their own size), so the guidance always matches the pixels.

Validity of a mixed map: ``valid_a AND valid_b`` whenever both sources contribute pixels
(an invalid source's map is all zeros, which would wrongly say "no AU here" for a face with
failed landmarks); a source that contributes no pixel (empty box, or a box covering the
image) does not affect validity. The model and the CAM are CAM's.
"""

from __future__ import annotations

import torch

from fer_core.cams.cam import CAM
from fer_core.losses import MixedLabels


def cutmix_box(
    h: int, w: int, lam: float, generator: torch.Generator | None = None
) -> tuple[int, int, int, int]:
    """A box ``(y0, y1, x0, x1)`` of area ≈ ``(1 − lam)·h·w``, centre uniform, clipped."""
    cut = (1.0 - lam) ** 0.5
    ch, cw = int(h * cut), int(w * cut)
    cy = int(torch.randint(h, (1,), generator=generator))
    cx = int(torch.randint(w, (1,), generator=generator))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    return y0, y1, x0, x1


def _scaled(
    box: tuple[int, int, int, int], src: tuple[int, int], dst: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The same box in a ``dst``-sized map (AU maps may have another resolution)."""
    if src == dst:
        return box
    y0, y1, x0, x1 = box
    sy, sx = dst[0] / src[0], dst[1] / src[1]
    return round(y0 * sy), round(y1 * sy), round(x0 * sx), round(x1 * sx)


class CutMix(CAM):
    """CAM trained on CutMix batches; ``prepare_batch`` returns ``(labels_a, labels_b, lam)``."""

    def prepare_batch(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        au_maps: torch.Tensor | None,
        valid: torch.Tensor | None,
    ) -> tuple[torch.Tensor, MixedLabels | torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Mix a training batch (see the module docstring); identity in eval mode."""
        cfg = self.params
        if not self.training or float(torch.rand(())) >= cfg.cutmix_prob:
            return x, labels, au_maps, valid
        beta = torch.distributions.Beta(cfg.cutmix_beta, cfg.cutmix_beta)
        lam = float(beta.sample())
        perm = torch.randperm(x.shape[0], device=x.device)
        h, w = x.shape[-2:]
        y0, y1, x0, x1 = cutmix_box(h, w, lam)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
        pasted = (y1 - y0) * (x1 - x0)
        lam = 1.0 - pasted / float(h * w)  # area-corrected after clipping
        if au_maps is not None:
            my0, my1, mx0, mx1 = _scaled((y0, y1, x0, x1), (h, w), tuple(au_maps.shape[-2:]))
            au_maps = au_maps.clone()
            au_maps[..., my0:my1, mx0:mx1] = au_maps[perm][..., my0:my1, mx0:mx1]
        if valid is not None:
            keeps_a, uses_b = lam > 0.0, pasted > 0
            valid = (valid | (not keeps_a)) & (valid[perm] | (not uses_b))
        return x, (labels, labels[perm], lam), au_maps, valid
