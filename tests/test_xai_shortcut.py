"""The shortcut-cue evaluation (fer_core.xai.shortcut): the painted square is the generator's,
attribution to it is measured where it is, and on trained models reliance separates a model
that learned the cue from one that never saw it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_core.config import DataConfig
from fer_core.data.synthetic import SyntheticOptions, generate_split, shortcut_box
from fer_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fer_core.loaders import build_split
from fer_core.xai.shortcut import conditions, cue_attribution, other_class, paint

SIZE = 48


def test_the_painted_square_is_the_generators():
    # A train image carries the square (p = 1); painting the clean test rendering of the same
    # options must give the same pixels inside the box.
    opts = SyntheticOptions(size=SIZE, n=14, shortcut=1.0)
    cued = generate_split("train", opts)
    plain = generate_split("train", SyntheticOptions(size=SIZE, n=14, shortcut=0.0))
    split = build_split(DataConfig(dataset="synthetic", img_size=SIZE, synthetic_n=70), "test")
    assert split[0]["image"].shape == (3, SIZE, SIZE)
    x = torch.from_numpy(((plain["images"] / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)
                         .transpose(0, 3, 1, 2).astype(np.float32))
    labels = torch.as_tensor(plain["labels"])
    painted = paint(x, labels, labels)
    expected = ((cued["images"] / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2)
    for i, label in enumerate(labels.tolist()):
        y0, y1, x0, x1 = shortcut_box(label, SIZE)
        np.testing.assert_allclose(painted[i, :, y0:y1, x0:x1].numpy(),
                                   expected[i, :, y0:y1, x0:x1], atol=1e-5)
    # Outside the box nothing changed.
    assert torch.equal(painted[0, :, SIZE // 2], x[0, :, SIZE // 2])


def test_conditions_move_and_swap_the_square():
    x = torch.zeros(7, 3, SIZE, SIZE)
    labels = torch.arange(7)
    views = conditions(x, labels)
    assert torch.equal(views["removed"], x)
    for name, spot in (("in_place", labels), ("moved", other_class(labels)),
                       ("swapped", other_class(labels))):
        for i in range(7):
            y0, y1, x0, x1 = shortcut_box(int(spot[i]), SIZE)
            assert views[name][i, :, y0:y1, x0:x1].abs().sum() > 0, (name, i)
    # moved keeps the true class's colour, swapped takes the other class's
    y0, _, x0, _ = shortcut_box(1, SIZE)
    own_y, _, own_x, _ = shortcut_box(0, SIZE)
    assert torch.equal(views["moved"][0, :, y0, x0], views["in_place"][0, :, own_y, own_x])
    assert not torch.equal(views["swapped"][0, :, y0, x0], views["moved"][0, :, y0, x0])


def test_attribution_to_the_square():
    labels = torch.tensor([0, 3])
    on_square = torch.zeros(2, SIZE, SIZE)
    for i, label in enumerate(labels.tolist()):
        y0, y1, x0, x1 = shortcut_box(label, SIZE)
        on_square[i, y0:y1, x0:x1] = 1.0
    hit = cue_attribution(on_square, labels, SIZE)
    assert torch.allclose(hit["mass"], torch.ones(2))
    assert bool((hit["mass_ratio"] > 50).all()) and bool((hit["pointing"] == 1).all())
    uniform = cue_attribution(torch.ones(2, 3, 3), labels, SIZE)
    assert torch.allclose(uniform["mass_ratio"], torch.ones(2), atol=1e-5)
    # A 3×3 map whose maximum is the corner cell holding class 0's square points at it.
    corner = torch.zeros(2, 3, 3)
    corner[:, 0, 0] = 1.0
    assert cue_attribution(corner, labels, SIZE)["pointing"].tolist() == [1.0, 0.0]


@pytest.mark.slow  # trains two models at 48 px (~2-4 min on two cores)
def test_reliance_separates_a_model_that_learned_the_cue_from_one_that_never_saw_it(
        tmp_path, monkeypatch):
    from fer_core.shortcut_eval import train_and_measure
    from fer_core.xai.demo_models import DEMO

    monkeypatch.setenv("FER_CACHE", str(tmp_path))
    # The cue alone: faces carry no usable expression at this training length (the face
    # alone stays near chance in 2 epochs), the square is in every train/val image.
    flat = {**DEMO, "synthetic_n": 350, "epochs": 2, "lambda_au": 0.0}
    cue = train_and_measure({**flat, "shortcut": 1.0, "seed": 0}, 21)
    plain = train_and_measure({**flat, "shortcut": 0.0, "seed": 0}, 21)
    # Reliance near total: the square decides, wherever it comes from.
    assert cue["acc_in_place"] >= 90 and cue["follows"] >= 80
    assert cue["acc_in_place"] - cue["acc_removed"] >= 50 and cue["reliance"] > 0.4
    # No cue in training: painting it in changes next to nothing.
    assert abs(plain["acc_in_place"] - plain["acc_removed"]) <= 15
    assert plain["follows"] <= 30 and abs(plain["reliance"]) < 0.1
