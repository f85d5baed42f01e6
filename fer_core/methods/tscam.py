"""TS-CAM (Gao et al., 2021): token semantic coupled attention maps on a ViT/DeiT.

Its network: ``fer_core/cams/tscam.py``."""

from __future__ import annotations

from fer_core.methods import declare_method

METHOD = declare_method("tscam", label="TS-CAM", rank=100,
                        impl="fer_core.cams.tscam:TSCAM")
