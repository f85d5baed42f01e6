"""MkDocs hook: the CLI reference page, generated from the commands' own argparse parsers.

Every build imports each command's module, builds its parser and writes one section per
command (and per sub-command): usage, description, and a table of every option with its default
and help. A parser that cannot be built stops the build, naming the command. To document a new
command, add one line to ``COMMANDS``; ``tests/test_docs_reference.py`` fails while a command of
the packages is missing from it.
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
from collections.abc import Iterator
from typing import NamedTuple

PAGE = "reference/cli.md"


class Command(NamedTuple):
    """One command line of the project.

    ``module`` is what ``command`` runs; ``factory`` names a function of it: the command's
    ``main(argv=None)``, whose parser is taken at the moment it parses (nothing after that
    runs), or a function that returns the parser. Pointing at the command's own module keeps an
    entry right when the code behind the command moves."""

    command: str
    module: str
    factory: str


COMMANDS: tuple[Command, ...] = (
    Command("python -m tuner.sweep", "tuner.sweep", "main"),
    Command("python -m tuner.study", "tuner.study.cli", "main"),
    Command("python -m tuner.mlflow_server", "tuner.mlflow_server", "main"),
    Command("python -m tuner.mlflow_replay", "tuner.mlflow_replay", "main"),
    Command("python -m tuner.cluster.check", "tuner.cluster.check", "main"),
    Command("python -m fer_core.train", "fer_core.train", "main"),
    Command("python -m fer_core.explain", "fer_core.explain", "main"),
    Command("python -m fer_core.weights", "fer_core.weights", "main"),
    Command("python -m fer_core.xai_reliability", "fer_core.xai_reliability", "main"),
    Command("python -m fer_core.shortcut_eval", "fer_core.shortcut_eval", "main"),
    Command("python -m fer_core.data", "fer_core.data.__main__", "main"),
    Command("python -m fer_core.data.landmarks", "fer_core.data.landmarks", "main"),
    Command("python -m analysis.tables", "analysis.tables", "main"),
    Command("python -m analysis.figures", "analysis.figures", "main"),
    Command("python -m analysis.report", "analysis.report", "main"),
    Command("python -m analysis.shortcut", "analysis.shortcut", "main"),
)
"""Every command of the project, in the order the reference shows them."""

ALIASES: dict[str, str] = {"python -m tuner": "python -m tuner.sweep"}
"""Commands that are another command under a shorter name."""


class ParserBuildError(RuntimeError):
    """A command whose parser could not be built: the reference would be wrong."""


class _Parsed(BaseException):
    # BaseException: the commands' error handling (fer_core.cli.cli_main) must not catch it.
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def _capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
    raise _Parsed(self)


def build_parser(entry: Command) -> argparse.ArgumentParser:
    """The entry's parser, with ``prog`` set to the command a user types."""
    try:
        factory = getattr(importlib.import_module(entry.module), entry.factory)
    except (ImportError, AttributeError) as err:
        raise ParserBuildError(f"CLI reference: {entry.command}: cannot import "
                               f"{entry.module}.{entry.factory} ({err})") from err
    saved = argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_known_args = _capture  # parse_args goes through it too
    try:
        made = factory()
    except _Parsed as parsed:
        made = parsed.parser
    except Exception as err:
        raise ParserBuildError(f"CLI reference: {entry.command}: {entry.module}."
                               f"{entry.factory}() failed before parsing ({err!r})") from err
    finally:
        argparse.ArgumentParser.parse_known_args = saved
    if not isinstance(made, argparse.ArgumentParser):
        raise ParserBuildError(f"CLI reference: {entry.command}: {entry.module}.{entry.factory}()"
                               f" returned {type(made).__name__}, not an argparse parser")
    _set_prog(made, entry.command)
    return made


def _set_prog(parser: argparse.ArgumentParser, prog: str) -> None:
    parser.prog = prog
    for name, sub in subcommands(parser):
        _set_prog(sub, f"{prog} {name}")


def subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's documented actions (help and sub-command dispatch left out)."""
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
            and a.help is not argparse.SUPPRESS]


def _help_text(action: argparse.Action, prog: str) -> str:
    if not action.help:
        return ""
    # argparse's own placeholders (%(default)s, %(choices)s, ...), filled as --help fills them.
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params["prog"] = prog
    for key, value in params.items():
        if hasattr(value, "__name__"):
            params[key] = value.__name__
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return action.help % params


def _default(action: argparse.Action) -> str:
    if action.nargs == 0:  # a switch: its value is its presence
        return "off" if not action.default else "on"
    if action.required:
        return "required"
    if action.default in (None, argparse.SUPPRESS, [], ()):
        return ""
    return f"`{action.default}`"


def _cell(text: str) -> str:
    text = html.escape(" ".join(text.split()), quote=False)
    for char in "|*[]_`":
        text = text.replace(char, "\\" + char)
    return text


def _names(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{s}`" for s in action.option_strings)
        if action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`"
    else:
        names = f"`{action.metavar or action.dest}`"
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        names += "<br>one of " + ", ".join(f"`{c}`" for c in action.choices)
    return names


def parser_markdown(parser: argparse.ArgumentParser, level: int = 2) -> str:
    """One command's section: usage, description, options table, then its sub-commands."""
    lines = [f"{'#' * level} `{parser.prog}`", "", "```text", parser.format_usage().strip(),
             "```", ""]
    text = inspect.cleandoc(parser.description or "")
    if "\n" in text:  # a module docstring: kept as --help prints it, line breaks and all
        lines += ["```text", text, "```", ""]
    elif text:
        lines += [_cell(text), ""]
    rows = options(parser)
    if rows:
        lines += ["| option | default | meaning |", "|---|---|---|"]
        lines += [f"| {_names(a)} | {_default(a)} | {_cell(_help_text(a, parser.prog))} |"
                  for a in rows]
        lines.append("")
    for _, sub in subcommands(parser):
        lines.append(parser_markdown(sub, level + 1))
    return "\n".join(lines)


def cli_markdown(commands: tuple[Command, ...] = COMMANDS) -> str:
    """The whole CLI reference page."""
    head = ["# Command-line reference", "",
            "Generated from each command's argparse parser when the site is built, so it shows"
            " exactly what `--help` shows. Every command ends with the exit codes of"
            " [Troubleshooting](../troubleshooting.md#exit-codes).", ""]
    head += [f"`{alias}` is `{command}`." for alias, command in ALIASES.items()] + [""]
    return "\n".join(head + [parser_markdown(build_parser(entry)) for entry in commands])


def on_files(files, config):
    """MkDocs event: add the generated page to the site's files."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=cli_markdown()))
    return files
