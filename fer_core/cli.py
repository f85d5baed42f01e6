"""What every command line of the project does with errors.

A user's mistake (a missing file, an unknown name, a value out of range) ends the command with
one line ``error: ...`` on stderr and exit status 2; the traceback is shown only when debugging
(``FER_DEBUG=1`` in the environment). Ctrl-C ends with status 130. A bug still shows its traceback.

The project raises ``ValueError`` (config and argument checks), ``KeyError`` (registries: an
unknown name, with the valid ones listed), ``FileNotFoundError`` (dataset layouts) and
:class:`UserError` for such mistakes; :func:`cli_main` turns them into that one line.
"""

from __future__ import annotations

import difflib
import functools
import gc
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, TypeVar

DEBUG_ENV = "FER_DEBUG"
"""Set to 1 to see the traceback behind an ``error:`` line."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Exit codes shared by every CLI (see the README's exit-code table)."""


class UserError(ValueError):
    """A mistake in the command's input; its message names the value and the fix.

    A ``ValueError`` so that library callers catching bad values keep working; the CLI wrapper
    tells it apart from every other ``ValueError``, which is a bug."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError, ValueError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
    PermissionError, FileExistsError,
)

F = TypeVar("F", bound=Callable[..., int])


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def message(err: BaseException) -> str:
    """The error's text (a ``KeyError`` would otherwise print its quotes)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if isinstance(err, OSError) and err.filename and str(err.filename) not in text:
        text = f"{err.filename}: {err.strerror or text}"
    return text.strip() or type(err).__name__


def fail(err: BaseException, code: int = EXIT_USAGE) -> int:
    """Print ``err`` as the command's one ``error:`` line (its traceback first when debugging).

    Lines after the first (e.g. a dataset's expected layout) follow as they are: the first line
    alone says what is wrong and names the value."""
    if debugging():
        traceback.print_exception(err)
    first, _, rest = message(err).partition("\n")
    print(f"error: {first}" + (f"\n{rest}" if rest else ""), file=sys.stderr, flush=True)
    return code


def cli_main(extra: Iterable[type[BaseException]] = ()) -> Callable[[F], F]:
    """Decorator for a ``main(argv) -> int``: user errors become one ``error:`` line and exit 2,
    Ctrl-C exits 130. ``extra`` adds exception types the command treats as user errors."""
    handled = (*USER_ERRORS, *extra)

    def wrap(main: F) -> F:
        @functools.wraps(main)
        def run(*args: Any, **kwargs: Any) -> int:
            try:
                return main(*args, **kwargs)
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr, flush=True)
                return EXIT_INTERRUPTED
            except handled as err:
                return fail(err)

        return run  # type: ignore[return-value]

    return wrap


def exit_with(code: int) -> NoReturn:
    """End a command's process with ``code`` (its ``__main__`` block), skipping the
    interpreter's last garbage collection.

    That collection walks every object torch, Ray and MLflow created, ~2.4 s after a sweep here,
    for a process about to end. ``gc.freeze`` moves them out of its reach; objects are still
    freed by reference counting and ``atexit`` handlers still run. Only ``__main__`` calls it:
    a process that goes on (a test calling ``main``) keeps collecting."""
    gc.freeze()
    sys.exit(code)


def closest(name: str, valid: Sequence[str], n: int = 3) -> str:
    """``"; did you mean a, b?"`` for the names of ``valid`` close to ``name`` ('' if none)."""
    close = difflib.get_close_matches(name, list(valid), n=n, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def check_choice(flag: str, value: Any, valid: Sequence[Any]) -> Any:
    """``value`` if it is one of ``valid``, else a :class:`UserError` listing them."""
    if value not in valid:
        hint = closest(str(value), [str(v) for v in valid])
        raise UserError(f"{flag} {value!r} is not valid{hint}; valid: "
                        f"{', '.join(map(str, valid))}")
    return value


def at_least(flag: str, value: float | None, low: float, why: str = "") -> float | None:
    """``value`` if None or ``>= low``, else a :class:`UserError` naming the flag and bound."""
    if value is not None and not value >= low:  # `not >=` also refuses NaN
        raise UserError(f"{flag} {value:g}: use a value >= {low:g}" + (f" ({why})" if why else ""))
    return value


def check_device(flag: str, name: str) -> str:
    """A torch device name that can be used here, else a :class:`UserError` (checked before
    any model is built: a bad name or a missing GPU otherwise surfaces deep inside torch).
    ``flag`` is how the user gave it: ``--device`` or ``--set device=``."""
    if name == "auto":
        return name
    import torch

    sep = "" if flag.endswith("=") else " "
    given = f"{flag}{sep}{name}"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"{given} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"{given}: no CUDA GPU is visible on this machine; "
                            f"use {flag}{sep}cpu (or auto)")
        if device.index is not None and device.index >= count:
            raise UserError(f"{given}: this machine has {count} CUDA GPU(s) "
                            f"(cuda:0..cuda:{count - 1})")
    elif device.type not in ("cpu", "mps"):
        raise UserError(f"{given}: unsupported device type; use auto, cpu or cuda")
    return name


def _number(kind: Callable[[str], Any], low: float, strict: bool,
            high: float | None = None) -> Callable[[str], Any]:
    """An ``argparse`` type: ``kind(text)`` that is > ``low`` (``strict``) or >= ``low``, and
    <= ``high`` when given."""
    bound = f"> {low:g}" if strict else f">= {low:g}"
    if high is not None:
        bound += f" and <= {high:g}"

    def parse(text: str) -> Any:
        import argparse

        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not (value > low if strict else value >= low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text}: use a value {bound}")
        return value

    parse.__name__ = f"{kind.__name__} {bound}"
    return parse


positive_int = _number(int, 1, strict=False)
"""``argparse`` type: a whole number >= 1 (counts: trials, seeds, workers, samples)."""
non_negative_int = _number(int, 0, strict=False)
positive_float = _number(float, 0, strict=True)
"""``argparse`` type: a number > 0 (CPUs per trial)."""
non_negative_float = _number(float, 0, strict=False)
share = _number(float, 0, strict=False, high=1)
"""``argparse`` type: a share in [0, 1]."""
"""``argparse`` type: a number >= 0 (GPUs per trial)."""
