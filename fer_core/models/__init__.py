"""Models: timm backbones with layer taps selected by feature index (docs/method.md §5)."""

from fer_core.models.backbone import Backbone, build_backbone, load_weights, read_state_dict

__all__ = ["Backbone", "build_backbone", "load_weights", "read_state_dict"]
