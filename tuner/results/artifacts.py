"""Files a trial attaches to its MLflow run: the matrices (JSON + PNG).

The selected model is the run's MLflow model (``tuner.trainable.log_selected_model``);
``write_model`` writes the ``selected.pt`` format that earlier versions attached as well, which
``fer_core.inference`` still reads.

Figures use matplotlib's object API (``Figure`` + ``savefig``), never ``pyplot``: trials run in
Ray workers without a display, and no global backend is switched behind anyone's back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from fer_core import CLASSES
from fer_core.heatmap import draw_heatmap
from tuner.tracking import schema as tr


def _json_safe(value: Any) -> Any:
    """NaN/inf → None so the JSON is standard (readable by any tool)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


LABEL_IN_PER_CHAR = 0.085  # a tick label's width per character at 10 pt, in inches


def heatmap_png(values: Sequence[Sequence[float]], rows: Sequence[str], cols: Sequence[str],
                title: str, path: Path, vmax: float = 1.0) -> Path:
    """:func:`draw_heatmap` alone in a PNG file sized to the matrix.

    Margins are set from the labels' lengths rather than by a layout engine: constrained layout
    draws the figure twice, ~0.15 s more per figure for every trial of a sweep.
    """
    left = 0.3 + LABEL_IN_PER_CHAR * max(map(len, rows), default=0)
    bottom = 0.3 + 0.72 * LABEL_IN_PER_CHAR * max(map(len, cols), default=0)  # 45° labels
    top, right = 0.35, 0.2
    width, height = left + right + 1.2 + 0.6 * len(cols), bottom + top + 0.45 * len(rows)
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height)
    draw_heatmap(fig.add_subplot(), values, rows, cols, title, vmax)
    fig.savefig(path, dpi=110)
    return path


def write_matrices(matrices: Mapping[str, Any], out: Path) -> list[Path]:
    """``confusion`` and ``cos_matrix`` (as ``Trainer.final_matrices``) → JSON + PNG files."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    confusion = matrices.get("confusion")
    if confusion is not None:
        path = out / "confusion.json"
        path.write_text(json.dumps({"classes": list(CLASSES), "values": _json_safe(confusion)}))
        files += [path, heatmap_png(confusion, CLASSES, CLASSES,
                                    "confusion (rows: true, row-normalised)",
                                    out / "confusion.png")]
    cos = matrices.get("cos_matrix")
    if cos is not None:
        path = out / "cos_matrix.json"
        path.write_text(json.dumps(_json_safe(cos)))
        files += [path, heatmap_png(cos["values"], cos["rows"], cos["cols"],
                                    "cosine with the AU map", out / "cos_matrix.png")]
    return files


def write_model(state: Mapping[str, torch.Tensor] | None, flat_config: Mapping[str, Any],
                out: Path) -> list[Path]:
    """``out/selected.pt``: weights with the config that built them (``fer_core.inference``
    reads it; sweep trials log an MLflow model instead)."""
    if state is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    path = out / tr.MODEL_FILE
    torch.save({"state_dict": dict(state), "config": dict(flat_config)}, path)
    return [path]
