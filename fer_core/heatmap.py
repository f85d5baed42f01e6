"""A labelled matrix heatmap on a matplotlib ``Axes``: the trials' matrices (``tuner``) and the
analysis' figures draw it alike.

matplotlib's object API only (no ``pyplot``): callers own their figures and backends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes


def draw_heatmap(ax: Axes, values: Sequence[Sequence[float | None]], rows: Sequence[str],
                 cols: Sequence[str], title: str, vmax: float = 1.0, aspect: str = "equal") -> None:
    """A labelled heatmap on ``ax`` with every finite value printed in its cell.

    None/NaN cells stay blank. ``aspect="auto"`` lets the panel's shape set the cells (in a grid
    of panels under constrained layout, equal aspect misplaces the colour bars).
    """
    data = np.array([[math.nan if v is None else float(v) for v in row] for row in values])
    image = ax.imshow(data, vmin=0.0, vmax=vmax, cmap="viridis", aspect=aspect)
    ax.set_xticks(range(len(cols)), labels=list(cols), rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    for (i, j), v in np.ndenumerate(data):
        if math.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v < 0.6 * vmax else "black")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
