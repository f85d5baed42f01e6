"""Named sweep spaces (``SPACES``), one module each; ``python -m tuner.sweep --list`` shows them."""

from importlib import import_module

from search_spaces.base import SPACES, SweepSpace, arm_au, arm_by

# Importing a module registers its space; this order is the order --list prints.
MODULES = ("lambda_layers", "methods", "lambda_grid", "layers", "pareto", "smoke")
for _module in MODULES:
    import_module(f"search_spaces.{_module}")

__all__ = ["SPACES", "SweepSpace", "arm_au", "arm_by"]
