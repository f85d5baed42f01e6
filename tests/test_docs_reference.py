"""The site's generated references cover the code: every command, every flag, every public name.

The hooks that write the reference pages at build time (``docs/hooks/``) are called here directly:
the checks read the parsers and modules themselves, not the generator's own lists, so a command,
flag or name that the generator leaves out fails a test.
"""

from __future__ import annotations

import argparse
import html
import importlib
import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / "docs" / "hooks"
COMMAND_PACKAGES = ("fer_core", "tuner", "analysis")
HEADLINE_API = {
    "ExperimentConfig", "Trainer", "register_method", "build_backbone", "render_au_maps",
    "FERMetrics", "load_model", "evaluate_xai", "build_dataset", "Explainer",
}
"""The names a reader comes for first: each must have an entry and its own docstring."""


def load_hook(name: str) -> ModuleType:
    # The hooks are files that MkDocs loads by path, not modules of an installed package.
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", HOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cli():
    return load_hook("cli_reference")


@pytest.fixture(scope="module")
def api():
    return load_hook("api_reference")


def command_modules() -> dict[str, Path]:
    """``python -m X`` for every module of the packages that runs as a program."""
    found = {}
    for package in COMMAND_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            parts = path.relative_to(ROOT).with_suffix("").parts
            if path.name == "__main__.py":
                found[f"python -m {'.'.join(parts[:-1])}"] = path
            elif re.search(r"^if __name__ == [\"']__main__[\"']:", text, flags=re.M):
                found[f"python -m {'.'.join(parts)}"] = path
    return found


def all_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from all_parsers(sub)


def test_every_command_of_the_packages_has_an_entry(cli):
    documented = {entry.command for entry in cli.COMMANDS} | set(cli.ALIASES)
    missing = sorted(set(command_modules()) - documented)
    assert not missing, (f"commands without an entry in docs/hooks/cli_reference.py COMMANDS: "
                         f"{missing}")
    assert "python -m tuner.sweep" in documented and len(cli.COMMANDS) >= 10


def test_every_flag_default_and_help_is_in_the_reference(cli):
    for entry in cli.COMMANDS:
        parser = cli.build_parser(entry)
        page = cli.parser_markdown(parser)
        assert parser.prog == entry.command
        for each in all_parsers(parser):
            assert f"`{each.prog}`" in page, f"{each.prog}: no section"
            for action in each._actions:
                if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                    continue
                if action.help is argparse.SUPPRESS:
                    continue
                names = action.option_strings or [action.metavar or action.dest]
                for name in names:
                    assert f"`{name}`" in page, f"{each.prog}: {name} has no entry"
                row = next(line for line in page.splitlines()
                           if line.startswith(f"| `{names[0]}`"))
                if action.help:
                    first_word = re.sub(r"%\(\w+\)s", "", action.help).split()[0]
                    assert first_word.strip("`*_[]|") in html.unescape(row.replace("\\", "")), (
                        f"{each.prog} {names[0]}: help missing from {row!r}")
                if action.nargs != 0 and action.default not in (None, [], ()) \
                        and not action.required and action.default is not argparse.SUPPRESS:
                    assert f"`{action.default}`" in row, (
                        f"{each.prog} {names[0]}: default {action.default!r} not in {row!r}")


def test_a_command_whose_parser_cannot_be_built_fails_loudly(cli):
    broken = [
        cli.Command("python -m fer_core.nowhere", "fer_core.nowhere", "main"),
        cli.Command("python -m fer_core.train", "fer_core.train", "no_such_factory"),
        cli.Command("python -m fer_core.cli", "fer_core.cli", "debugging"),  # not a parser
    ]
    for entry in broken:
        with pytest.raises(cli.ParserBuildError, match=re.escape(entry.command)):
            cli.build_parser(entry)
        with pytest.raises(cli.ParserBuildError):
            cli.cli_markdown((cli.COMMANDS[0], entry))


def test_a_main_is_stopped_where_it_parses(cli, tmp_path, monkeypatch):
    # fer_core.train's main would train after parsing; taking its parser must not.
    monkeypatch.chdir(tmp_path)
    entry = next(e for e in cli.COMMANDS if e.module == "fer_core.train")
    parser = cli.build_parser(entry)
    assert any("--set" in a.option_strings for a in parser._actions)
    assert list(tmp_path.iterdir()) == []
    assert argparse.ArgumentParser.parse_known_args is not cli._capture


def test_every_public_name_of_fer_core_has_an_entry(api):
    page = api.api_markdown()
    modules = api.api_modules()
    assert {"fer_core.config", "fer_core.engine", "fer_core.au", "fer_core.metrics",
            "fer_core.models", "fer_core.cams"} <= set(modules)
    seen = set()
    for module in modules:
        mod = importlib.import_module(module)
        for name in api.public_names(module):
            assert hasattr(mod, name), f"{module}.__all__ names {name}, which it lacks"
            assert f"::: {api.target(module, name)}\n" in page, f"{module}.{name}: no entry"
            seen.add(name)
    assert HEADLINE_API <= seen, f"not documented: {sorted(HEADLINE_API - seen)}"


def test_every_module_declaring_all_is_in_the_reference(api):
    for path in sorted((ROOT / "fer_core").rglob("*.py")):
        if "__all__" not in path.read_text(encoding="utf-8"):
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if path.name == "__init__.py" else parts)
        if hasattr(importlib.import_module(module), "__all__"):
            assert module in api.api_modules(), module


def test_the_headline_names_have_their_own_docstrings(api):
    for module, name, _ in api.entries():
        if name not in HEADLINE_API:
            continue
        obj = getattr(importlib.import_module(module), name)
        doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
        generated = inspect.isclass(obj) and (doc or "").startswith(f"{obj.__name__}(")
        assert doc and not generated, f"{module}.{name} has no docstring of its own"
