"""Tests for fer_core.metrics.FERMetrics on small hand-computed cases."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fer_core import CLASSES
from fer_core.losses import resize_maps
from fer_core.metrics import FERMetrics

S2 = 1 / math.sqrt(2)


def _logits_for(pred: list[int], k: int = 7) -> torch.Tensor:
    logits = torch.zeros(len(pred), k)
    logits[torch.arange(len(pred)), torch.tensor(pred)] = 5.0
    return logits


def _nan_equal(a: object, b: object) -> bool:
    """Deep equality where NaN equals NaN (dict results of compute())."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# Maps are 1×2 "images" so every cosine is easy by hand: A = [1, 0] for every image.
A = torch.tensor([[[1.0, 0.0]]])
ATT = {
    "cos1": torch.tensor([[[3.0, 0.0]]]),  # cos 1 (scale does not matter)
    "cos0": torch.tensor([[[0.0, 2.0]]]),  # cos 0
    "cos_s2": torch.tensor([[[1.0, 1.0]]]),  # cos 1/sqrt(2)
}


def _case() -> dict[str, torch.Tensor]:
    """Six images; which enter the cosine averages and with what value:

    0 Happiness valid  cos 1        -> Happiness
    1 Happiness valid  cos 0        -> Happiness          (class mean 0.5)
    2 Surprise  valid  cos 1/sqrt2  -> Surprise           (class mean 0.7071)
    3 Surprise  INVALID cos 1       -> excluded
    4 Neutral   valid  cos 1        -> excluded (Neutral never scored)
    5 Neutral   invalid cos 0       -> excluded
    Macro = (0.5 + 0.7071) / 2 = 0.6036; the image-weighted mean would be 0.5690.
    """
    labels = torch.tensor([1, 1, 2, 2, 0, 0])
    attn = torch.cat([ATT[k] for k in ("cos1", "cos0", "cos_s2", "cos1", "cos1", "cos0")])
    return {
        "logits": _logits_for([1, 2, 2, 2, 0, 1]),
        "labels": labels,
        "attn": attn,
        "au_maps": A.expand(6, 1, 2).clone(),
        "valid": torch.tensor([True, True, True, False, True, False]),
    }


def _update(m: FERMetrics, c: dict[str, torch.Tensor], sl: slice, cams: bool = False) -> None:
    attn = c["attn"][sl]
    m.update(
        c["logits"][sl],
        c["labels"][sl],
        {5: attn, 4: attn * 2},
        c["au_maps"][sl],
        c["valid"][sl],
        cams=attn if cams else None,
    )


def test_cl_and_confusion_streaming_equals_one_shot() -> None:
    c = _case()
    one = FERMetrics(layers=(5, 4))
    _update(one, c, slice(0, 6))
    two = FERMetrics(layers=(5, 4))
    _update(two, c, slice(0, 2))
    _update(two, c, slice(2, 6))
    r = one.compute()
    assert _nan_equal(r, two.compute())

    # preds [1, 2, 2, 2, 0, 1] vs labels [1, 1, 2, 2, 0, 0]: 4 of 6 right, Neutral included.
    assert r["cl"] == pytest.approx(100 * 4 / 6)
    conf = r["confusion"]
    assert len(conf) == 7 and all(len(row) == 7 for row in conf)
    assert conf[0] == pytest.approx([0.5, 0.5, 0, 0, 0, 0, 0])
    assert conf[1] == pytest.approx([0, 0.5, 0.5, 0, 0, 0, 0])
    assert conf[2] == pytest.approx([0, 0, 1.0, 0, 0, 0, 0])
    assert all(conf[k] == [0.0] * 7 for k in range(3, 7))  # no samples: zeros, not NaN
    assert r["n"] == 6 and r["n_invalid"] == 2


def test_per_class_cosine_excludes_neutral_and_invalid_and_macro_is_unweighted() -> None:
    c = _case()
    m = FERMetrics(layers=(5, 4))
    _update(m, c, slice(0, 3))
    _update(m, c, slice(3, 6))
    r = m.compute()
    for layer in (5, 4):  # layer 4's attention is layer 5's times 2: same cosines
        per_class = r["att_cos_per_class"][layer]
        assert len(per_class) == 6
        assert per_class[0] == pytest.approx(0.5)  # Happiness
        assert per_class[1] == pytest.approx(S2)  # Surprise: the invalid cos-1 image is out
        assert all(math.isnan(v) for v in per_class[2:])  # no image: NaN, not 0
        macro = (0.5 + S2) / 2
        weighted = (1 + 0 + S2) / 3
        assert abs(macro - weighted) > 0.03  # the case does tell the two apart
        assert r["att_cos"][layer] == pytest.approx(macro)
    assert r["n_scored_per_class"] == [2, 1, 0, 0, 0, 0]


def test_cam_cos_none_without_cams_and_matrix_layout() -> None:
    c = _case()
    m = FERMetrics(layers=(5, 4))
    _update(m, c, slice(0, 6))
    r = m.compute()
    assert r["cam_cos"] is None and r["cam_cos_per_class"] is None
    mat = r["cos_matrix"]
    assert mat["rows"] == list(CLASSES[1:]) + ["average"]
    assert mat["cols"] == ["layer5", "layer4", "cam"]
    assert len(mat["values"]) == 7 and all(len(row) == 3 for row in mat["values"])
    assert mat["values"][0][:2] == pytest.approx([0.5, 0.5])
    assert mat["values"][-1][0] == pytest.approx(r["att_cos"][5])
    assert all(math.isnan(row[2]) for row in mat["values"])  # the cam column has no data

    _update(m, c, slice(0, 6), cams=True)  # CAMs from now on: the CAM column fills in
    r = m.compute()
    assert r["cam_cos_per_class"][:2] == pytest.approx([0.5, S2])
    assert r["cam_cos"] == pytest.approx((0.5 + S2) / 2)
    assert r["cos_matrix"]["values"][-1][2] == pytest.approx(r["cam_cos"])
    json.dumps(r)  # plain python values only


def test_identical_maps_cosine_one_after_upsampling() -> None:
    torch.manual_seed(0)
    att = torch.rand(3, 7, 7)
    au = resize_maps(att, (56, 56))  # A equal to the attention upsampled to A's size
    labels = torch.tensor([1, 3, 6])
    m = FERMetrics(layers=(5,))
    m.update(_logits_for([1, 3, 6]), labels, {5: att}, au, torch.ones(3, dtype=torch.bool), att)
    r = m.compute()
    assert r["cl"] == 100.0
    assert r["att_cos"][5] == pytest.approx(1.0, abs=1e-6)
    assert r["cam_cos"] == pytest.approx(1.0, abs=1e-6)
    per_class = r["att_cos_per_class"][5]
    assert per_class[0] == pytest.approx(1.0) and per_class[2] == pytest.approx(1.0)
    assert per_class[5] == pytest.approx(1.0) and math.isnan(per_class[1])


def test_reset_empty_and_errors() -> None:
    c = _case()
    m = FERMetrics(layers=(5, 4))
    _update(m, c, slice(0, 6))
    m.reset()
    r = m.compute()
    assert r["n"] == 0 and r["n_invalid"] == 0 and math.isnan(r["cl"])
    assert math.isnan(r["att_cos"][5])
    with pytest.raises(ValueError, match=r"lacks layers \[4\]"):
        m.update(c["logits"], c["labels"], {5: c["attn"]}, c["au_maps"], c["valid"])
    with pytest.raises(ValueError, match="logits"):
        m.update(c["logits"][:, :5], c["labels"], None, c["au_maps"], c["valid"])
    with pytest.raises(ValueError, match="unique"):
        FERMetrics(layers=(5, 5))
