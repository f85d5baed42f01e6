"""The import rules of docs/architecture.md, read from the source with ``ast`` (nothing imported).

Every import statement counts: at module level, inside a function, or under
``if TYPE_CHECKING``. A function-level import still ties the two modules together (one cannot be
moved or tested without the other), so it may defer a heavy library, never hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fer_core", "tuner", "search_spaces", "analysis")


def project_modules() -> dict[str, Path]:
    """Dotted name → file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = project_modules()


def _owner(name: str) -> str | None:
    """The project module an imported dotted name lives in (None: not the project's)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The project modules ``module`` imports, by any import statement anywhere in it."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name`` mod.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        else:
            continue
        found |= {owner for name in names if (owner := _owner(name)) and owner != module}
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offences(source: str, allowed) -> list[str]:
    """``importer -> imported`` for every import from ``source`` that ``allowed`` refuses."""
    return sorted(f"{m} -> {t}" for m, targets in GRAPH.items() if _in(m, source)
                  for t in targets if not allowed(t))


def test_the_graph_reads_real_imports():
    # A guard for the rules below: a parser that found nothing would pass them all.
    assert "tuner.spec.resolve" in GRAPH["tuner.sweep"]
    assert "fer_core.config" in GRAPH["fer_core.methods.adl"]
    assert "tuner.tracking.schema" in GRAPH["analysis.runs"]


@pytest.mark.parametrize("package", ["tuner", "search_spaces", "analysis"])
def test_fer_core_runs_without_the_tuner_spaces_or_analysis(package):
    assert offences("fer_core", lambda t: not _in(t, package)) == []


def test_tracking_imports_nothing_else_of_the_tuner():
    assert offences("tuner.tracking",
                    lambda t: not _in(t, "tuner") or _in(t, "tuner.tracking")) == []


def test_analysis_reads_the_tuner_only_through_its_tracking_package():
    assert offences("analysis", lambda t: not _in(t, "tuner") or _in(t, "tuner.tracking")) == []


def test_spaces_are_declarations_the_tuner_reads():
    assert offences("search_spaces",
                    lambda t: not (_in(t, "tuner") or _in(t, "analysis"))) == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_among_the_projects_modules():
    assert cycles(GRAPH) == []
