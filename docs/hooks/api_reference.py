"""MkDocs hook: the Python API reference page, one mkdocstrings entry per public name.

The public API of ``fer_core`` is every module of the package that declares ``__all__`` (found
by walking the package, so a new one appears without a list to edit), plus ``MODULES_WITHOUT_ALL``,
whose public names are those they define without a leading underscore. Each name becomes a
``::: module.name`` block that mkdocstrings fills from its docstring; ``mkdocs build --strict``
fails on a name it cannot resolve, and ``tests/test_docs_reference.py`` on a public name without
an entry or without a docstring.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from types import ModuleType

PAGE = "reference/api.md"
PACKAGE = "fer_core"

MODULES_WITHOUT_ALL: tuple[str, ...] = (
    "fer_core.engine",      # Trainer
    "fer_core.inference",   # load_model, explain_batch
    "fer_core.explainer",   # Explainer
    "fer_core.cams.registry",  # register_method's parameters
    "fer_core.methods",  # declare_method's parameters
)
"""Modules with public names that declare no ``__all__``."""


def api_modules(package: str = PACKAGE) -> list[str]:
    """The package's modules that declare ``__all__``, then ``MODULES_WITHOUT_ALL``."""
    root = importlib.import_module(package)
    found = [package] if hasattr(root, "__all__") else []
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        if "__all__" in _source(info.name):  # a cheap test before importing it
            if hasattr(importlib.import_module(info.name), "__all__"):
                found.append(info.name)
    return found + [m for m in MODULES_WITHOUT_ALL if m not in found]


def _source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return ""
    with open(spec.origin, encoding="utf-8") as handle:
        return handle.read()


def public_names(module: str) -> list[str]:
    """``__all__``, or else the classes and functions the module defines itself."""
    mod: ModuleType = importlib.import_module(module)
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    return [name for name, obj in vars(mod).items()
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", None) == module]


def target(module: str, name: str) -> str:
    """The dotted path mkdocstrings documents ``module.name`` under: where a class or function
    is defined (packages may export names lazily, which static analysis cannot follow), else
    the exporting module's attribute."""
    obj = getattr(importlib.import_module(module), name)
    home, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and home and qualname:
        return f"{home}.{qualname}"
    return f"{module}.{name}"


def entries() -> list[tuple[str, str, str]]:
    """``(module, name, target)`` for every public name, in page order."""
    return [(module, name, target(module, name))
            for module in api_modules() for name in public_names(module)]


def api_markdown() -> str:
    """The whole API reference page."""
    lines = ["# Python API reference", "",
             "The public names of `fer_core`, the method without Ray, generated from their "
             "docstrings when the site is built. Classes are always in the order of "
             "`fer_core.CLASSES`: 0 Neutral, 1 Happiness, 2 Surprise, 3 Fear, 4 Anger, "
             "5 Disgust, 6 Sadness.", ""]
    current = None
    for module, _name, path in entries():
        if module != current:
            current = module
            doc = inspect.getdoc(importlib.import_module(module)) or ""
            lines += [f"## `{module}`", "", doc.split("\n\n")[0], ""]
        lines.append(f"::: {path}\n")
    return "\n".join(lines)


def on_files(files, config):
    """MkDocs event: add the generated page to the site's files."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=api_markdown()))
    return files
