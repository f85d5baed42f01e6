"""`python -m fer_core.explain IMAGE --faithfulness`: one photo's deletion and insertion curves,
with the shared trained model and the real dlib landmark model."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from fer_core.explain import main
from fer_core.inference import load_model
from fer_core.xai.curves import curves_figure, image_curves

AUC_LINE = re.compile(r"^deletion AUC (\d\.\d{4}), insertion AUC (\d\.\d{4}) \((\w+)\)$")


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    path = tmp_path_factory.mktemp("faithfulness") / "astronaut.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_cli_draws_the_curves_of_one_image(trained_model, face, tmp_path, capsys):
    out = tmp_path / "explained.png"
    assert main([str(face), "--checkpoint", str(trained_model["selected"]), "-o", str(out),
                 "--faithfulness", "--class", "Happiness"]) == 0
    lines = capsys.readouterr().out.splitlines()
    found = [m for line in lines if (m := AUC_LINE.match(line))]
    assert len(found) == 1 and found[0][3] == "Happiness"
    deletion, insertion = float(found[0][1]), float(found[0][2])
    assert 0.0 <= deletion <= 1.0 and 0.0 <= insertion <= 1.0
    curves_png = tmp_path / "explained_faithfulness.png"
    assert f"wrote {curves_png}" in lines
    image = cv2.imread(str(curves_png))
    assert image is not None and image.shape[1] > image.shape[0] > 100
    assert cv2.imread(str(out)) is not None  # the explanation figure is still written


def test_curves_start_and_end_where_the_definition_says(trained_model):
    loaded = load_model(trained_model["selected"])
    size = loaded.img_size
    x = np.random.default_rng(0).normal(size=(1, 3, size, size)).astype(np.float32)
    curves = image_curves(loaded.model, torch.from_numpy(x), target=3, steps=8)
    assert len(curves.fractions) == 9 and curves.fractions[-1] == 1.0
    # Deletion ends where insertion starts (the blurred image), and the reverse.
    assert curves.deletion[-1] == pytest.approx(curves.insertion[0], abs=1e-6)
    assert curves.deletion[0] == pytest.approx(curves.insertion[-1], abs=1e-6)
    fig = curves_figure(curves, "noise")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith(f"Deletion: AUC {curves.deletion_auc:.3f}")
    assert titles[1].startswith(f"Insertion: AUC {curves.insertion_auc:.3f}")
