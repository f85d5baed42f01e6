"""The CAM method registry (a module of its own so method files can import it cyclefree)."""

from fer_core.registry import Registry

METHODS: Registry = Registry("CAM method")
"""Method name → :class:`~fer_core.cams.base.CamMethod` subclass."""
