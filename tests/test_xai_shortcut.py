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


def _fit(model, x, labels, steps: int, seed: int = 0):
    """Adam on fixed images (no augmentation): what the model can learn from them alone."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (32,))
        loss = torch.nn.functional.cross_entropy(model(x[idx]).logits, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.slow(reason="trains two CNNs 100 steps each and scores both (2-9 min, 2 cores)")
def test_reliance_separates_a_model_trained_on_the_cue_alone_from_one_without_it():
    from fer_core.cams import build_method
    from fer_core.config import MethodConfig, ModelConfig
    from fer_core.xai.evaluate import select_images
    from fer_core.xai.shortcut import measure

    split = build_split(DataConfig(dataset="synthetic", img_size=SIZE, synthetic_n=700), "train")
    x, faces, _ = select_images(split, 240, 0, "reference")
    test_x, test_labels = x[200:], faces[200:]
    x, faces = x[:200], faces[:200]

    def fresh():
        torch.manual_seed(0)
        return build_method(MethodConfig(method="cam"),
                            ModelConfig(backbone="resnet18", output_stride=16), img_size=SIZE)

    # The cue alone: labels drawn independently of the faces, each image carrying its label's
    # square, so the square is all there is to learn.
    cue_labels = torch.randint(0, 7, (len(x),), generator=torch.Generator().manual_seed(1))
    cue_model = _fit(fresh(), paint(x, cue_labels, cue_labels), cue_labels, 100)
    # No cue: the faces and their true labels only.
    plain_model = _fit(fresh(), x, faces, 100)

    cue = measure(cue_model, test_x, test_labels, layers=(5,))
    plain = measure(plain_model, test_x, test_labels, layers=(5,))
    # Reliance: with the square the model is right far above chance (1/7), without it near
    # chance, and a square moved to another class's spot takes the prediction with it. (100
    # steps on a 4 px square at 48 px reach ~60 %, not all the way: measured 62.5 / 12.5 %.)
    assert cue["acc_in_place"] >= 45 and cue["follows"] >= 35
    assert cue["acc_removed"] <= 25 and cue["reliance"] > 0.3
    # Its map points at the square far above a uniform map's share.
    assert cue["cam_mass_ratio"] > 2 and cue["att_l5_mass_ratio"] > 1
    # Without the cue in training, painting it in changes next to nothing.
    assert abs(plain["acc_in_place"] - plain["acc_removed"]) <= 10
    assert plain["follows"] <= 30 and abs(plain["reliance"]) < 0.1


def test_a_trial_with_shortcut_images_logs_every_shortcut_metric():
    import math

    from fer_core import metric_names as mn
    from fer_core.config import ExperimentConfig
    from fer_core.engine import Trainer
    from tuner.tracking import schema as tr

    cfg = ExperimentConfig.from_flat(dict(
        img_size=32, synthetic_n=70, epochs=1, max_train_batches=2, batch_size=16,
        output_stride=16, shortcut=1.0, augment=False, shortcut_images=4, xai_images=0))
    trainer = Trainer(cfg, progress=False)
    final = trainer.fit()
    logged = tr.metric_values(final)  # what a sweep trial sends to MLflow
    got = {k: v for k, v in logged.items() if k.startswith(mn.SHORTCUT_PREFIX)}
    # Exactly the documented names (fer_core.metric_names), at the aligned/headline layer 5.
    assert trainer.eval_layers == (5,)
    assert set(got) == set(mn.shortcut_keys((5,)))
    assert "test_shortcut_att_l5_mass_ratio" in got and "test_shortcut_rho" in got
    assert all(math.isfinite(v) for v in got.values()), got
    assert got["test_shortcut_n_images"] == 4
    assert all(mn.is_final(k) for k in got)  # analysis reads them as results
    # Without it, none (and the count 0 is the default).
    off = Trainer(cfg.replace(shortcut_images=0), progress=False).xai_metrics(trainer.model)
    assert off == {}
