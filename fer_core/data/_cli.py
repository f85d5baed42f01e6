"""Helpers shared by the data CLIs: dataset arguments and ``KEY=VALUE`` dataset options."""

from __future__ import annotations

import argparse
import ast
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from fer_core.cli import UserError
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


NOT_OPTIONS = ("root", "transform")  # keyword parameters the CLIs pass themselves


def with_options(build: Callable[..., Any], what: str, *args: Any, **options: Any) -> Any:
    """``build(*args, **options)``; an option ``build`` does not take is a :class:`UserError`
    naming it (instead of Python's ``TypeError`` about keyword arguments)."""
    params = inspect.signature(build).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if n not in NOT_OPTIONS and (
            p.kind is p.KEYWORD_ONLY
            or (p.default is not p.empty and p.kind is p.POSITIONAL_OR_KEYWORD))]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise UserError(f"--option {unknown[0]}: unknown option for {what}; valid options: "
                            f"{', '.join(valid) or '(none)'}")
    try:
        return build(*args, **options)
    except TypeError as err:
        if not any(t in str(err) for t in ("unknown option", "unexpected keyword argument")):
            raise  # a bug, not the user's option
        raise UserError(f"--option: {err}") from None
