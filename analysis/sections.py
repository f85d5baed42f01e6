"""Report sections beyond the paper's tables and figures, one module each.

A section is data: a title and a function of the selected runs that builds a table
(``analysis.table_spec.Table``, so every format of ``analysis.render`` writes it), returns
``None`` when the runs carry none of its metrics (the report then has no such section), or
raises :class:`~fer_core.cli.UserError` saying why it cannot be made (the report names the reason).
A module declares ``SECTION = register(Section(...))``; ``analysis.report`` imports the modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fer_core.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from analysis.table_spec import Table


@dataclass(frozen=True)
class Section:
    """A report section: its name, heading and builder (runs, experiment) → table or None."""

    name: str
    title: str
    build: Callable[[pd.DataFrame, str], Table | None]


SECTIONS: Registry[Section] = Registry("report section")
register = SECTIONS.add
