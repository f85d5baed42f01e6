"""What every command line of the project does with errors.

Exit codes (``docs/errors.md``): 0 done, 1 failed (a bug, or work that ran and failed), 2 a
usage error, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM (a scheduler's stop, a preemption).

A user's mistake ends the command with one line ``error: ...`` on stderr and exit status 2 (the
traceback too when debugging: ``FER_DEBUG=1`` in the environment). Two kinds of exception are a
user's mistake, and only these:

- :class:`UserError` (and its subclasses, e.g. a registry's :class:`UnknownName`), raised where
  input is checked: config values, names, paths, dataset layouts, options;
- an ``OSError`` about a path the user gave: its ``filename`` (or ``filename2``) is a path named
  on the command line, lies under one (a file inside a given folder), or is a folder above one
  (creating a given output path). Paths on the command line are the arguments themselves, the
  part after ``=`` (``--set data_root=DIR``, ``--root=DIR``) and the part after ``://`` of a
  URI (``sqlite:///runs/m.db``), each taken relative to the working folder.

Anything else — a ``ValueError``, ``KeyError`` or ``OSError`` on a path the program chose, raised
anywhere, inside training too — is a bug: its traceback is printed on stderr, followed by one
line saying so, and the exit status is 1. Commands may add exception types of their own that
mean a user's mistake (``cli_main(extra=...)``).
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

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
"""Exit codes shared by every CLI (``docs/errors.md``); 130 and 143 are 128 + the signal."""

BUG_LINE = ("error: internal error (a bug, not a mistake in the input): the traceback above "
            "says where; please report it with that traceback")
"""The line after a bug's traceback."""


class UserError(ValueError):
    """A mistake in the command's input; its message names the value and the fix.

    A ``ValueError`` so that library callers catching bad values keep working; the CLI wrapper
    tells it apart from every other ``ValueError``, which is a bug."""


class UnknownName(UserError, KeyError):
    """An unknown name asked of a registry; the message lists the valid ones.

    Also a ``KeyError``, so that code looking names up with ``try/except KeyError`` keeps
    working."""

    __str__ = BaseException.__str__  # KeyError's would quote the message


class MissingPath(UserError, FileNotFoundError):
    """A file or folder the input names (or a dataset layout needs) is not there; the message
    names it and, for a dataset, its expected layout. Also a ``FileNotFoundError`` for library
    callers that catch that."""

    __str__ = BaseException.__str__  # OSError's would format errno and filename fields


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's ``KeyboardInterrupt`` would be by a command that handles
    SIGTERM as an ordinary stop (``tuner.checks.signals``)."""


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


def crash(err: BaseException) -> int:
    """Print a bug's traceback and the line saying it is one; :data:`EXIT_FAILED`."""
    sys.stdout.flush()
    traceback.print_exception(err)
    print(BUG_LINE, file=sys.stderr, flush=True)
    return EXIT_FAILED


def given_paths(argv: Sequence[str]) -> list[str]:
    """The absolute paths a command line may name (see the module docstring)."""
    found: list[str] = []
    for arg in map(str, argv):
        for text in (arg, arg.partition("=")[2], arg.partition("://")[2]):
            if text.startswith("//"):  # sqlite:////abs/path: the path is /abs/path
                text = text[1:]
            if text and not text.startswith("-"):
                found.append(os.path.abspath(text))
    return found


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _about(failed: str, given: str) -> bool:
    """``failed`` is ``given``, inside it, or a folder above it other than ``/`` and the
    working folder (every relative argument lies below those two)."""
    if failed == given or _inside(failed, given):
        return True
    return _inside(given, failed) and failed not in (os.sep, os.getcwd())


def on_given_path(err: BaseException, argv: Sequence[str]) -> bool:
    """``err`` is an ``OSError`` about a path named on the command line ``argv``."""
    if not isinstance(err, OSError):
        return False
    names = [n for n in (err.filename, err.filename2) if isinstance(n, (str, bytes, os.PathLike))]
    paths = given_paths(argv)
    return any(_about(os.path.abspath(os.fsdecode(n)), p) for n in names for p in paths)


def _argv_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[str]:
    """The command line a ``main(argv=None)`` was called with (``sys.argv`` when None)."""
    argv = args[0] if args else kwargs.get("argv")
    return sys.argv[1:] if argv is None else list(argv)


def cli_main(extra: Iterable[type[BaseException]] = ()) -> Callable[[F], F]:
    """Decorator for a ``main(argv) -> int``: a user's mistake becomes one ``error:`` line and
    exit 2, a bug its traceback and exit 1, Ctrl-C exit 130, SIGTERM (``Terminated``) 143
    (module docstring). ``extra`` adds
    exception types the command treats as a user's mistake."""
    handled = (UserError, *extra)

    def wrap(main: F) -> F:
        @functools.wraps(main)
        def run(*args: Any, **kwargs: Any) -> int:
            try:
                return main(*args, **kwargs)
            except Terminated:
                print("stopped by SIGTERM", file=sys.stderr, flush=True)
                return EXIT_TERMINATED
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr, flush=True)
                return EXIT_INTERRUPTED
            except handled as err:
                return fail(err)
            except OSError as err:
                if on_given_path(err, _argv_of(args, kwargs)):
                    return fail(err)
                return crash(err)
            except Exception as err:  # noqa: BLE001  every other exception is a bug
                return crash(err)

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
"""``argparse`` type: a number >= 0 (GPUs per trial)."""
share = _number(float, 0, strict=False, high=1)
"""``argparse`` type: a share in [0, 1]."""
