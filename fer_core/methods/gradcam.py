"""GradCAM, GradCAM++ and LayerCAM: gradient-based maps on CAM's classifier.

Its network: ``fer_core/cams/gradcam.py``."""

from __future__ import annotations

from fer_core.methods import declare_method

GRADCAM = declare_method("gradcam", label="GradCAM", rank=30,
                         impl="fer_core.cams.gradcam:GradCAM")
GRADCAMPP = declare_method("gradcampp", label="GradCAM++", rank=40,
                           impl="fer_core.cams.gradcam:GradCAMPlusPlus")
LAYERCAM = declare_method("layercam", label="LayerCAM", rank=50,
                          impl="fer_core.cams.gradcam:LayerCAM")
