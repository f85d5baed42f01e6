"""docs/method.md against the code: the tables it shows are the tables the code uses, and every
``docs/method.md §N`` citation in the repository points at a section that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fer_core import CLASSES
from fer_core.au import AU_NAMES, AU_REGIONS, VARIANTS
from fer_core.au.codebook import Centre, HalfAxis
from fer_core.config import ExperimentConfig
from fer_core.data import affectnet, rafdb

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "method.md"
SOURCE_DIRS = ("fer_core", "tuner", "search_spaces", "analysis", "bench", "tests", "docs")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _section(number: int) -> str:
    """The body of ``## <number>. ...`` up to the next level-2 heading."""
    match = re.search(rf"^## {number}\. .*?(?=^## |\Z)", _text(), flags=re.M | re.S)
    assert match, f"docs/method.md has no section '## {number}.'"
    return match.group(0)


def _rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row in ``text`` (separator rows excluded)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _ids(cell: str) -> tuple[int, ...]:
    if cell == "–":
        return ()
    if cell == "0–19":
        return tuple(range(20))
    return tuple(int(v) for v in cell.split(","))


def test_class_table_matches_the_class_order_and_the_dataset_codes():
    rows = [r for r in _rows(_section(1)) if r[0].isdigit()]
    assert [(int(r[0]), r[1]) for r in rows] == list(enumerate(CLASSES))
    assert {int(r[2]): r[1] for r in rows} == rafdb.LABEL_CODES
    assert {int(r[3]): r[1] for r in rows} == affectnet.LABEL_CODES


def test_au_codebook_table_matches_au_names():
    rows = [r for r in _rows(_section(2)) if r[0].isdigit()]
    assert [(int(r[0]), r[1]) for r in rows] == list(enumerate(AU_NAMES))


def test_expression_table_matches_every_variant():
    rows = [r for r in _rows(_section(2)) if r[0] in CLASSES]
    assert [r[0] for r in rows] == list(CLASSES)
    header = next(r for r in _rows(_section(2)) if r[0] == "class")
    variants = [cell.split("`")[1] for cell in header[1:]]
    assert sorted(variants) == sorted(VARIANTS)
    for col, variant in enumerate(variants, start=1):
        assert tuple(_ids(r[col]) for r in rows) == VARIANTS[variant], variant


def _points(pair: tuple[int, int]) -> str:
    return f"lm{pair[0]}" if pair[0] == pair[1] else f"mid(lm{pair[0]}, lm{pair[1]})"


def _centre(c: Centre) -> str:
    text = _points(c.xs) if c.xs == c.ys else f"x of {_points(c.xs)}, y of {_points(c.ys)}"
    if c.dx or c.dy:
        text += f" + ({c.dx:g}, {c.dy:g})"
    return text


def _half(h: HalfAxis, axis: str) -> str:
    parts = [f"½·Δ{axis}({h.span[0]}, {h.span[1]})"] if h.span is not None else []
    if h.fixed:
        parts.append(f"{h.fixed:g}")
    text = " + ".join(parts)
    return text + (f", at least {h.minimum:g}" if h.minimum else "")


def test_geometry_table_is_the_region_table():
    """Each row written from ``AU_REGIONS`` in the doc's notation must be in §3, and only those."""
    expected = []
    for au, region in enumerate(AU_REGIONS):
        for k, ell in enumerate(region):
            which = "ab"[k] if len(region) > 1 else "–"
            expected.append([str(au), AU_NAMES[au], which, _centre(ell.centre),
                             _half(ell.rx, "x"), _half(ell.ry, "y")])
    rows = [r for r in _rows(_section(3)) if r[0].isdigit()]
    assert rows == expected


def _default_rows() -> list[list[str]]:
    """The rows of every ``| field | default | meaning |`` table."""
    rows, in_table = [], False
    for line in _text().splitlines():
        cells = _rows(line)
        if not line.startswith("|"):
            in_table = False
        elif cells and cells[0] == ["field", "default", "meaning"]:
            in_table = True
        elif in_table and cells:
            rows.append(cells[0])
    return rows


def test_documented_defaults_are_the_config_defaults():
    defaults = ExperimentConfig().to_flat()
    rows = _default_rows()
    assert len(rows) >= 30, "the option tables of §5-§8 went missing"
    for row in rows:
        name = row[0].strip("`")
        assert name in defaults, f"docs/method.md documents {name}, which is not a config field"
        parsed = ExperimentConfig.from_flat({name: row[1]}).to_flat()[name]
        assert parsed == defaults[name], f"docs/method.md says {name}={row[1]}"


def _repo_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in SOURCE_DIRS:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".yaml")]
    return files


def test_every_citation_points_at_an_existing_section():
    sections = {int(n) for n in re.findall(r"^## (\d+)\. ", _text(), flags=re.M)}
    assert sections == set(range(1, 12))
    cited = 0
    for path in _repo_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for first, last in re.findall(r"docs/method\.md §(\d+)(?:\s*[–-]\s*(\d+))?", text):
            cited += 1
            for number in {int(first), int(last or first)}:
                assert number in sections, f"{path.relative_to(ROOT)} cites §{number}"
    assert cited >= 30, f"only {cited} citations found: did the citation pattern change?"


@pytest.mark.parametrize("needle", ["PROTOCOL" + " §", "shared/" + "PROTOCOL", "../" + "shared"])
def test_nothing_cites_a_document_outside_the_repository(needle):
    offenders = [str(p.relative_to(ROOT)) for p in _repo_files()
                 if needle in p.read_text(encoding="utf-8", errors="replace")]
    assert offenders == []
