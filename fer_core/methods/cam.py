"""CAM (Zhou et al., 2016): GAP + a linear classifier; the CAM weighs the last feature map.

Its network: ``fer_core/cams/cam.py``."""

from __future__ import annotations

from fer_core.methods import declare_method

METHOD = declare_method("cam", label="CAM", rank=10,
                        impl="fer_core.cams.cam:CAM")
