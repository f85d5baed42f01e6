"""The preview CLI: a PNG grid of samples with their landmarks and AU maps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.data import build_dataset
from fer_core.data.__main__ import main
from fer_core.data.preview import pick_indices, preview_figure


def test_pick_indices_shows_every_class() -> None:
    labels = np.repeat(np.arange(7), [30, 2, 5, 1, 9, 3, 4])
    picked = pick_indices(labels, len(labels), 14, seed=0)
    assert len(set(picked)) == 14 and set(labels[picked]) == set(range(7))
    assert pick_indices(labels, len(labels), 14, seed=0) == picked
    assert len(pick_indices(None, 5, 16)) == 5


def test_preview_cli_writes_a_grid_with_au_overlays(tmp_path: Path) -> None:
    grid = tmp_path / "grid.png"
    common = ["preview", "--dataset", "synthetic", "--root", str(tmp_path / "cache"), "-n", "8"]
    common += ["--option", "n=14", "--option", "size=64", "--size", "96"]
    assert main([*common, "-o", str(grid)]) == 0
    assert main([*common, "--augment", "-o", str(tmp_path / "aug.png")]) == 0
    image = cv2.imread(str(grid))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 300
    # The AU heat overlay (jet: saturated reds/blues) and lime landmarks are drawn on the faces.
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    lime = (np.abs(hsv[..., 0].astype(int) - 60) < 8) & (hsv[..., 1] > 200) & (hsv[..., 2] > 200)
    assert lime.sum() > 8 * 30
    assert (tmp_path / "aug.png").stat().st_size > 0


def test_each_cell_has_its_au_map_unless_invalid(tmp_path: Path) -> None:
    dataset = build_dataset("synthetic", "train", root=str(tmp_path), n=14, size=64)
    fig = preview_figure(dataset, n=9, size=64)
    cells = [a for a in fig.axes if a.get_title()]
    assert len(cells) == 9
    for axis in cells:
        invalid = axis.get_title().startswith("Neutral")
        assert axis.get_title().endswith("(no AU map)") == invalid
        assert len(axis.images) == (1 if invalid else 2)  # image (+ AU heat overlay)
        assert len(axis.collections[0].get_offsets()) == 68  # the landmarks


def test_preview_cli_rejects_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["preview", "--dataset", "fer2013", "-o", str(tmp_path / "x.png")])
