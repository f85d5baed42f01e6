"""Localisation metrics against the AU map: oracle maps, their negation, chance, ties."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from fer_core.au import render_au_maps
from fer_core.config import DataConfig
from fer_core.loaders import build_split
from fer_core.xai import localisation as lo
from fer_core.xai.common import average_ranks


@pytest.fixture(scope="module")
def au_maps() -> torch.Tensor:
    """Real AU maps: the rendered maps of 12 synthetic test faces (no Neutral), 32 px."""
    ds = build_split(DataConfig(dataset="synthetic", img_size=32, synthetic_n=200), "test")
    samples = [s for s in (ds[i] for i in range(len(ds))) if s["label"] != 0][:12]
    points = torch.stack([s["landmarks"] for s in samples])
    labels = torch.tensor([s["label"] for s in samples])
    maps, valid = render_au_maps(points, labels, (32, 32))
    assert bool(valid.all())
    return maps


def test_region_threshold_is_relative_and_validated(au_maps):
    loose, tight = lo.au_region(au_maps, 0.2), lo.au_region(au_maps, 0.8)
    assert bool((tight <= loose).all()) and tight.sum() < loose.sum()
    assert bool(lo.au_region(au_maps * 0.3, 0.5).eq(lo.au_region(au_maps, 0.5)).all())
    with pytest.raises(ValueError, match="threshold must be in"):
        lo.au_region(au_maps, 1.5)


def test_the_au_mask_itself_scores_perfectly(au_maps):
    region = lo.au_region(au_maps)
    mask = region.float()
    assert lo.pointing_game(mask, region).tolist() == [1.0] * len(mask)
    assert torch.allclose(lo.relevance_mass(mask, region), torch.ones(len(mask)))
    assert torch.allclose(lo.relevance_rank(mask, region), torch.ones(len(mask)))
    assert torch.allclose(lo.au_auc(mask, region), torch.ones(len(mask)))
    # With k equal to the region's share, the top-k pixels are the region.
    share = float(region[0].float().mean()) * 100
    assert float(lo.topk_iou(mask[:1], region[:1], share)) == pytest.approx(1.0, abs=0.02)
    # The continuous AU map itself also points inside and ranks the region first.
    assert lo.pointing_game(au_maps, region).tolist() == [1.0] * len(mask)
    assert torch.allclose(lo.au_auc(au_maps, region), torch.ones(len(mask)))


def test_the_negated_mask_scores_zero(au_maps):
    region = lo.au_region(au_maps)
    negated = 1.0 - region.float()
    assert lo.pointing_game(negated, region).sum() == 0
    assert torch.allclose(lo.relevance_mass(negated, region), torch.zeros(len(region)))
    assert torch.allclose(lo.relevance_rank(negated, region), torch.zeros(len(region)))
    assert torch.allclose(lo.au_auc(negated, region), torch.zeros(len(region)))
    assert lo.topk_iou(negated, region).max() == 0


def test_random_maps_score_chance(au_maps):
    torch.manual_seed(0)
    maps = au_maps.repeat(20, 1, 1)
    region = lo.au_region(maps)
    share = region.float().mean(dim=(1, 2))
    noise = torch.rand(maps.shape)  # at full resolution: no upsampling smoothness
    assert float(lo.au_auc(noise, region).mean()) == pytest.approx(0.5, abs=0.02)
    assert float((lo.relevance_mass(noise, region) - share).mean()) == pytest.approx(0, abs=0.01)
    assert float((lo.relevance_rank(noise, region) - share).mean()) == pytest.approx(0, abs=0.01)
    assert float(lo.pointing_game(noise, region).mean()) == pytest.approx(float(share.mean()),
                                                                           abs=0.06)


def test_a_flat_map_misses_and_ranks_at_chance(au_maps):
    region = lo.au_region(au_maps)
    flat = torch.zeros(len(region), 4, 4)
    assert lo.pointing_game(flat, region).sum() == 0
    assert torch.allclose(lo.au_auc(flat, region), torch.full((len(region),), 0.5))
    assert torch.allclose(lo.relevance_rank(flat, region), region.float().mean(dim=(1, 2)))
    assert lo.relevance_mass(flat, region).sum() == 0


def test_low_resolution_maps_are_upsampled_to_the_au_map(au_maps):
    region = lo.au_region(au_maps)
    small = torch.nn.functional.adaptive_avg_pool2d(au_maps[:, None], 4)[:, 0]
    assert float(lo.au_auc(small, region).mean()) > 0.8
    with pytest.raises(ValueError, match="must share B"):
        lo.au_auc(small[:2], region)


def test_average_ranks_and_auc_match_scipy():
    torch.manual_seed(1)
    values = torch.randint(0, 5, (3, 40)).float() / 4  # maps live in [0, 1]; many ties
    expected = torch.from_numpy(stats.rankdata(values.numpy(), axis=1))
    assert torch.allclose(average_ranks(values), expected.double())
    region = torch.rand(3, 8, 5) > 0.6
    maps = values.view(3, 8, 5)
    for auc, m, r in zip(lo.au_auc(maps, region), maps, region, strict=True):
        pos, neg = m[r].numpy(), m[~r].numpy()
        u = stats.mannwhitneyu(pos, neg).statistic
        assert float(auc) == pytest.approx(u / (len(pos) * len(neg)), abs=1e-6)


def test_auc_is_nan_without_negatives():
    full = torch.ones(1, 4, 4, dtype=torch.bool)
    assert math.isnan(float(lo.au_auc(torch.rand(1, 4, 4), full)[0]))
