"""Helpers shared by the data CLIs: dataset arguments and ``KEY=VALUE`` dataset options."""

from __future__ import annotations

import argparse
import ast
from collections.abc import Sequence
from typing import Any

from fer_core.config import parse_overrides


def parse_options(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``["images=original", "crop_margin=0.2"]`` → ``{"images": "original", "crop_margin": 0.2}``.

    Values are Python literals when they parse as one (numbers, True/False, None), else strings.
    """
    options: dict[str, Any] = {}
    for key, value in parse_overrides(list(pairs or ())).items():
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    """``--option KEY=VALUE`` (repeatable): extra dataset options, e.g. ``images=original``."""
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset option, repeatable (e.g. images=original, crop_margin=0.3, layout=lists)",
    )
