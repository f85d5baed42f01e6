"""Per-AU-region shares (fer_core.xai.regions) on real synthetic faces and their landmarks, and
the report's region figure from known shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.regions import NAMES, regions_figure
from fer_core.config import DataConfig
from fer_core.loaders import build_split
from fer_core.xai.regions import REGIONS, region_masks, region_shares

SIZE = 48


@pytest.fixture(scope="module")
def faces():
    split = build_split(DataConfig(dataset="synthetic", img_size=SIZE, synthetic_n=70), "test")
    samples = [split[i] for i in range(4)]
    return torch.stack([torch.as_tensor(s["landmarks"]) for s in samples]).float()


def test_a_map_on_one_region_puts_its_mass_there(faces):
    masks = region_masks(faces, (SIZE, SIZE))
    assert masks.shape == (4, len(REGIONS), SIZE, SIZE)
    assert bool(masks.flatten(2).any(2).all())  # every region is on every face
    mouth = list(REGIONS).index("mouth")
    only_mouth = masks[:, mouth] & ~masks[:, [k for k in range(len(REGIONS)) if k != mouth]].any(1)
    shares = region_shares(only_mouth.float(), faces, (SIZE, SIZE))
    assert shares.shape == (4, len(REGIONS) + 1)
    assert torch.allclose(shares[:, mouth], torch.ones(4))
    assert torch.allclose(shares[:, -1], torch.zeros(4))  # nothing elsewhere
    # A uniform map: shares are the regions' areas; the outside share closes the sum for
    # disjoint regions only, so it is at most 1.
    flat = region_shares(torch.ones(4, 3, 3), faces, (SIZE, SIZE))
    area = masks.flatten(2).float().mean(2)
    assert torch.allclose(flat[:, :-1], area, atol=1e-6)
    assert bool((flat[:, -1] > 0).all()) and bool((flat[:, -1] < 1).all())


def test_the_figure_has_one_panel_per_expression_and_one_bar_per_arm_and_region():
    rng = np.random.default_rng(0)
    arms = [(label, rng.dirichlet(np.ones(len(NAMES)), size=6)) for label in ("w/o AU", "w/ AU")]
    fig = regions_figure(arms)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 6
    assert all(len(ax.patches) == 2 * len(NAMES) for ax in panels)
    heights = [p.get_height() for p in panels[0].patches[: len(NAMES)]]
    assert heights == pytest.approx(list(arms[0][1][0]))
