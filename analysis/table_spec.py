"""What the paper's tables are, as data: their rows, columns and a built table's cells.

``analysis.tables`` builds a table from runs and ``analysis.render`` writes it out; table
modules such as ``analysis.table4`` add a table and its finishing step. All of them read these
definitions, which import none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analysis.stats import Estimate, PairedTest
from fer_core import metric_names as mn

if TYPE_CHECKING:
    import pandas as pd


def method_labels() -> dict[str, str]:
    """Method name → table label, in Table 1 order, from the CAM methods' declarations
    (``fer_core/methods/``: no torch)."""
    from fer_core.methods import discover

    return discover().labels()


BASELINE_LABEL = "w/o AU"


def method_rows(values: Iterable[str]) -> list[str]:
    """Methods in Table 1 order (the registry's); unregistered names follow, alphabetically."""
    known = list(method_labels())
    present = set(values)
    return [m for m in known if m in present] + sorted(present - set(known))


def layer_rows(values: Iterable[str]) -> list[str]:
    """Layer sets as in Table 3: single layers deepest first, then growing sets (5+4, 5+4+3…)."""
    def key(label: str) -> tuple[int, list[int]]:
        layers = [int(x) for x in label.split("+")]
        return len(layers), [-x for x in layers]

    return sorted(set(values), key=key)


@dataclass(frozen=True)
class Column:
    """One column: ``metric`` over the runs of one arm."""

    header: str
    metric: str
    with_au: bool
    decimals: int = 2


@dataclass(frozen=True)
class TableSpec:
    """One table: rows named by the run column ``row_param``, and its columns.

    With ``baseline_row`` the table has a first row of the w/o AU runs (any ``row_param``) that
    every other row is tested against (Table 3); otherwise each w/ AU column is tested against
    the w/o AU column of the same metric in the same row (Tables 1–2).
    """

    number: int
    title: str
    row_param: str
    row_header: str
    order: Callable[[Iterable[str]], list[str]]
    columns: tuple[Column, ...]
    baseline_row: bool = False
    row_labels: Callable[[], Mapping[str, str]] | None = None
    notes: tuple[str, ...] = ()
    """Extra footnotes (a table's own marks)."""


TABLES: dict[int, TableSpec] = {spec.number: spec for spec in (
    TableSpec(1, "Classification accuracy (CL, %) and CAM-COS without and with AU guidance",
              "method", "Method", method_rows, (
                  Column("CL w/o AU", mn.TEST_CL, False), Column("CL w/ AU", mn.TEST_CL, True),
                  Column("CAM-COS w/o AU", mn.TEST_CAM_COS, False),
                  Column("CAM-COS w/ AU", mn.TEST_CAM_COS, True)),
              row_labels=method_labels),
    TableSpec(2, "ATT-COS at the headline layer without and with AU guidance",
              "method", "Method", method_rows, (
                  Column("ATT-COS w/o AU", mn.TEST_ATT_COS, False),
                  Column("ATT-COS w/ AU", mn.TEST_ATT_COS, True)),
              row_labels=method_labels),
    TableSpec(3, "CL (%) and CAM-COS by the layers aligned with the AU map",
              "layers", "Layers", layer_rows, (
                  Column("CL", mn.TEST_CL, True), Column("CAM-COS", mn.TEST_CAM_COS, True)),
              baseline_row=True),
)}


@dataclass(frozen=True)
class Cell:
    """The runs of one cell reduced to values by seed, their estimate and test."""

    by_seed: dict[int, float]
    estimate: Estimate
    test: PairedTest | None = None
    best: bool = False
    decimals: int | None = None
    """Printed decimals when not the column's (a table whose rows are metrics)."""


@dataclass(frozen=True)
class Table:
    """A built table: row keys in order, cells by (row key, column header), provenance."""

    spec: TableSpec
    rows: list[str]
    cells: dict[tuple[str, str], Cell]
    experiment: str
    run_count: int
    commits: list[str]

    def label(self, row: str) -> str:
        """The row's printed name (``gradcampp`` → ``GradCAM++``)."""
        labels = self.spec.row_labels() if self.spec.row_labels else {}
        return labels.get(row, row)

    def with_au(self, row: str, column: Column) -> bool:
        """Whether the cell shows w/ AU runs (the baseline row never does)."""
        return arm_with_au(self.spec, row, column)


def arm_with_au(spec: TableSpec, row: str, column: Column) -> bool:
    return column.with_au and not (spec.baseline_row and row == BASELINE_LABEL)


FINISHERS: dict[int, Callable[[pd.DataFrame, Table], Table]] = {}
"""Per table number, a step after the generic build (its module registers it; Table 4 adds
its random-map row and marks the best cell in each metric's own direction)."""


def register_table(spec: TableSpec,
                   finish: Callable[[pd.DataFrame, Table], Table] | None = None) -> TableSpec:
    """Add a table (and the step that finishes its generic build) from a module of its own."""
    TABLES[spec.number] = spec
    if finish is not None:
        FINISHERS[spec.number] = finish
    return spec
