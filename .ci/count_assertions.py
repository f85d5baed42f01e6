"""Count what the tests check: ``assert`` statements, ``pytest.raises``/``pytest.warns``/``fail``
uses and ``np.testing``/``torch.testing`` ``assert_*`` calls.

Run before and after a change to the tests (``python .ci/count_assertions.py [tests]``): a
speed-up must not lower these counts. Also lists the tests whose only checks are ``is not None``
or that check nothing, since those can barely fail.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path


def checks(node: ast.AST) -> Counter:
    """Assertions found under ``node``, by kind."""
    found: Counter = Counter()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert):
            found["assert"] += 1
        elif isinstance(sub, ast.Call):
            func = sub.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("raises", "warns", "fail"):
                found[f"pytest.{name}"] += 1
            elif name.startswith("assert_"):  # np.testing / torch.testing comparisons
                found["assert_* call"] += 1
    return found


def weak(fn: ast.FunctionDef) -> bool:
    """A test checking nothing, or only that something ``is not None``."""
    asserts = [n for n in ast.walk(fn) if isinstance(n, ast.Assert)]
    if any(checks(fn)[k] for k in ("pytest.raises", "pytest.warns", "assert_* call")):
        return False
    return all(isinstance(a.test, ast.Compare) and len(a.test.ops) == 1
               and isinstance(a.test.ops[0], ast.IsNot)
               and isinstance(a.test.comparators[0], ast.Constant)
               and a.test.comparators[0].value is None for a in asserts)


def main(root: str = "tests") -> int:
    total: Counter = Counter()
    for path in sorted(Path(root).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        here = checks(tree)
        total += here
        print(f"{path}: " + ", ".join(f"{k} {v}" for k, v in sorted(here.items())))
        for fn in ast.walk(tree):
            if (isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_") and weak(fn)):
                print(f"  weak: {fn.name} (line {fn.lineno}) checks nothing or only `is not None`")
    print("TOTAL: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items()))
          + f", all {sum(total.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
