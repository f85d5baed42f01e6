"""Explanation figures: what a model saw and where it looked, one image or a grid of images.

Panels (the paper's Fig. 4, plus the probabilities): the face crop with its 68 landmarks, the AU
map and the CAM of the predicted (or a chosen) class, the attention of each reported layer
(all three as heat overlays on the crop), and a bar chart of the 7 class probabilities. Figures
are built with matplotlib's object API and returned, so callers save them and tests read their
axes; nothing here touches pyplot or a display.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fer_core import CLASSES
from fer_core.cli import UserError

HEAT_ALPHA = 0.5
"""Opacity of CAM / attention overlays: the face stays visible under the hottest regions."""
PANEL_INCHES = 2.4
MAX_PIXELS = 60_000
"""Cap on a saved figure's side: Agg refuses images of 2**16 px or more (very long grids)."""


@dataclass
class ExplainedFace:
    """One explained image, every array in the same ``D × D`` display frame."""

    name: str
    image: np.ndarray
    """``D × D × 3`` float RGB in ``[0, 1]``: the model's input (face crop), at display size."""
    probs: np.ndarray
    """``(7,)`` class probabilities, ``fer_core.CLASSES`` order."""
    method: str
    landmarks: np.ndarray | None = None
    """``(68, 2)`` ``(x, y)`` display pixels; None when no face was found (whole image used)."""
    au_map: np.ndarray | None = None
    """AU map of the explained class in ``[0, 1]``; None when it has none (see ``au_note``)."""
    au_note: str = ""
    cam: np.ndarray | None = None
    """CAM of the explained class in ``[0, 1]``; None for attention-only methods (APViT)."""
    attention: dict[int, np.ndarray] = field(default_factory=dict)
    explained: int | None = None
    """The class the AU map and CAM show; None: the predicted class."""

    @property
    def pred(self) -> int:
        return int(np.argmax(self.probs))

    @property
    def target(self) -> int:
        """The class the AU map and CAM panels show."""
        return self.pred if self.explained is None else self.explained

    @property
    def face_found(self) -> bool:
        return self.landmarks is not None

    @property
    def headline(self) -> str:
        return f"{CLASSES[self.pred]} ({self.probs[self.pred]:.2f})"


@dataclass
class FailedImage:
    """An image of a folder that could not be explained, and why."""

    name: str
    reason: str


Column = tuple[str, int | None]
"""A panel kind and, for attention, its layer."""


def _show(ax: Axes, face: ExplainedFace, heat: np.ndarray | None = None,
          alpha: float | np.ndarray = HEAT_ALPHA) -> None:
    ax.imshow(face.image)
    if heat is not None:
        ax.imshow(heat, cmap="jet", vmin=0.0, vmax=1.0, alpha=alpha)
    ax.set_xticks([])
    ax.set_yticks([])


def _message(ax: Axes, text: str) -> None:
    """A panel that says why it is empty (kept as a frame so grid rows stay aligned)."""
    ax.text(0.5, 0.5, textwrap.fill(text, 26), ha="center", va="center", fontsize=8,
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_face(ax: Axes, face: ExplainedFace, _: int | None) -> None:
    _show(ax, face)
    if face.landmarks is None:
        ax.set_title("whole image (no face)", fontsize=9)
        return
    ax.scatter(face.landmarks[:, 0], face.landmarks[:, 1], s=4, c="lime", linewidths=0)
    ax.set_title("face + landmarks", fontsize=9)


def _draw_au(ax: Axes, face: ExplainedFace, _: int | None) -> None:
    ax.set_title(f"AU map: {CLASSES[face.target]}", fontsize=9)
    if face.au_map is None:
        _message(ax, face.au_note or "no AU map")
        return
    # Opacity follows the map: outside the AU regions the face shows through untouched.
    _show(ax, face, face.au_map, alpha=HEAT_ALPHA * face.au_map)


def _draw_cam(ax: Axes, face: ExplainedFace, _: int | None) -> None:
    ax.set_title(f"CAM ({face.method}): {CLASSES[face.target]}", fontsize=9)
    if face.cam is None:
        _message(ax, f"no CAM: {face.method} is attention-only")
        return
    _show(ax, face, face.cam)


def _draw_attention(ax: Axes, face: ExplainedFace, layer: int | None) -> None:
    ax.set_title(f"attention layer {layer}", fontsize=9)
    _show(ax, face, face.attention[layer])


def _draw_probs(ax: Axes, face: ExplainedFace, _: int | None) -> None:
    colours = ["tab:orange" if k == face.pred else "tab:blue" for k in range(len(CLASSES))]
    ax.barh(range(len(CLASSES)), face.probs, color=colours)
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=7)
    ax.invert_yaxis()  # Neutral on top, as in the printed list
    ax.set_xlim(0.0, 1.0)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title("probabilities", fontsize=9)


PANELS: dict[str, Callable[[Axes, ExplainedFace, int | None], None]] = {
    "face": _draw_face,
    "au": _draw_au,
    "cam": _draw_cam,
    "attention": _draw_attention,
    "probs": _draw_probs,
}
"""Panel kind → drawer, in figure order."""


def columns(face: ExplainedFace, with_au: bool) -> list[Column]:
    """The panels of ``face``'s row: face, AU map (if ``with_au``), CAM, attention, probs."""
    cols: list[Column] = [("face", None)]
    if with_au:
        cols.append(("au", None))
    cols.append(("cam", None))
    cols += [("attention", layer) for layer in face.attention]
    return cols + [("probs", None)]


def _new_figure(rows: int, cols: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(PANEL_INCHES * cols, PANEL_INCHES * rows + 0.4), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def explanation_figure(face: ExplainedFace) -> Figure:
    """One row of panels for one image; without a face the AU map panel is left out."""
    cols = columns(face, with_au=face.face_found)
    fig, axes = _new_figure(1, len(cols))
    for ax, (kind, layer) in zip(axes[0], cols, strict=True):
        PANELS[kind](ax, face, layer)
    fig.suptitle(f"{face.name}: {face.headline}", fontsize=11)
    return fig


def grid_figure(items: Sequence[ExplainedFace | FailedImage]) -> Figure:
    """One row per image (failed images say why); columns as :func:`columns` with the AU map."""
    explained = [item for item in items if isinstance(item, ExplainedFace)]
    cols = columns(explained[0], with_au=True) if explained else [("face", None)]
    fig, axes = _new_figure(max(1, len(items)), len(cols))
    for row, item in zip(axes, items, strict=False):
        if isinstance(item, FailedImage):
            _message(row[0], item.reason)
            for ax in row[1:]:
                ax.axis("off")
            row[0].set_ylabel(item.name, fontsize=8)
            continue
        for ax, (kind, layer) in zip(row, cols, strict=True):
            if kind == "au" and not item.face_found:
                ax.set_title("AU map", fontsize=9)
                _message(ax, "no landmarks")
            else:
                PANELS[kind](ax, item, layer)
        row[0].set_ylabel(f"{item.name}\n{item.headline}", fontsize=8)
    return fig


def save_figure(fig: Figure, out: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` in the format its suffix names (PNG, PDF, SVG, ...); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dpi = min(dpi, int(MAX_PIXELS / max(fig.get_size_inches())))
    fig.savefig(out, dpi=dpi)
    return out


def check_format(out: str | os.PathLike) -> None:
    """Fail early, before any work, when ``out``'s suffix is not a format matplotlib writes."""
    formats = Figure().canvas.get_supported_filetypes()
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise UserError(f"cannot write {out}: unknown figure format {suffix!r}; use one of "
                         f"{', '.join(sorted(formats))} (e.g. out.png or out.pdf)")
