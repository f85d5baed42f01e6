"""Draw docs/img/overview.png: synthetic faces, their AU maps, and the CAM of a model trained
without and with AU guidance.

    python docs/img/overview.py -o docs/img/overview.png    # trains two small models, then draws

Two resnet18 CAM models are trained from scratch on the same synthetic faces at the laptop sizes
of the default sweep (``search_spaces/sizes.py``) except the image side (64 px, output stride
16: 4×4 maps at layer 5), the faces (600) and the epochs (2 instead of 10, so that the picture
is made in minutes on a busy laptop), one with λ = 0 and one with λ = 4 at layer 5, both seed 0.
Each row is a test face the models never saw, rendered again at a larger size for display (the
generator draws the same face at any size); the models see it at their own input size. Each
model's test CL and ATT-COS are printed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from fer_core import CLASSES  # noqa: E402
from fer_core.au import render_au_maps  # noqa: E402
from fer_core.cams import upsample_cams  # noqa: E402
from fer_core.config import ExperimentConfig  # noqa: E402
from fer_core.data import build_dataset  # noqa: E402
from fer_core.data.transforms import build_transforms  # noqa: E402
from fer_core.engine import Trainer  # noqa: E402
from fer_core.inference import explain_batch, load_model  # noqa: E402

SIZES = dict(dataset="synthetic", backbone="resnet18", img_size=64, output_stride=16,
             synthetic_n=600, synthetic_intensity=0.6, epochs=2, batch_size=32, lr=0.05,
             layers="5", seed=0, xai_images=0)
ARMS = {"CAM, λ = 0 (no AU guidance)": 0.0, "CAM, λ = 4 at layer 5 (AU-guided)": 4.0}
ROWS = ("Happiness", "Surprise", "Anger")
DISPLAY = 192


def train(lambda_au: float, folder: Path) -> Path:
    """Train one arm and return the folder of its checkpoint (best validation CL); an arm
    already trained in ``folder`` is reused."""
    out = folder / f"lambda{lambda_au:g}"
    if (out / "checkpoint.pt").is_file():
        print(f"λ = {lambda_au:g}: reusing {out}", flush=True)
        return out
    trainer = Trainer(ExperimentConfig.from_flat({**SIZES, "lambda_au": lambda_au}),
                      cache_dir=str(folder / "cache"), progress=False)
    metrics = trainer.fit()
    print(f"λ = {lambda_au:g}: test CL {metrics['test_cl']:.1f} %, "
          f"test ATT-COS {metrics['test_att_cos']:.3f}", flush=True)
    trainer.save_checkpoint(str(out))
    return out


def faces(cache: Path) -> list[dict]:
    """The first test face of each class in ``ROWS``, at display size."""
    test = build_dataset("synthetic", "test", cache_dir=cache, size=DISPLAY, n=280, seed=0,
                         intensity=(SIZES["synthetic_intensity"], 1.0))
    wanted = [CLASSES.index(name) for name in ROWS]
    found = {}
    for i in range(len(test)):
        sample = test[i]
        if sample["label"] in wanted and sample["label"] not in found:
            found[sample["label"]] = sample
    return [found[label] for label in wanted]


def draw(samples: list[dict], checkpoints: dict[str, Path], out: Path) -> None:
    models = {title: load_model(path) for title, path in checkpoints.items()}
    to_model = build_transforms(train=False, size=SIZES["img_size"])
    fig, axes = plt.subplots(len(samples), 2 + len(models),
                             figsize=(2.3 * (2 + len(models)), 2.4 * len(samples)))
    for r, (row, sample) in enumerate(zip(axes, samples, strict=True)):
        label = torch.tensor([sample["label"]])
        image = sample["image"].astype(np.float32) / 255.0
        points = torch.from_numpy(sample["landmarks"])[None]
        au, _ = render_au_maps(points, label, DISPLAY, "reference")
        panels = [("face and its 68 landmarks", None), ("AU map A", au[0].numpy())]
        x = to_model(dict(sample))["image"][None]
        for title, loaded in models.items():
            cam = explain_batch(loaded, x, label).cams
            panels.append((title, upsample_cams(cam, (DISPLAY, DISPLAY))[0].numpy()))
        for ax, (title, heat) in zip(row, panels, strict=True):
            ax.imshow(image)
            if heat is None:
                ax.scatter(*sample["landmarks"].T, s=3, c="lime")
            else:
                ax.imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
            ax.set_axis_off()
            ax.set_title(title if r == 0 else "", fontsize=8)
        row[0].text(-8, DISPLAY / 2, CLASSES[sample["label"]], rotation=90, va="center",
                    ha="right", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/img/overview.png"))
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the data and models here (default: a temporary folder); a "
                             "second run reuses them and only draws")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="fer-overview-") as tmp:
        folder = args.work or Path(tmp)
        checkpoints = {title: train(lam, folder) for title, lam in ARMS.items()}
        draw(faces(folder / "cache"), checkpoints, args.out)


if __name__ == "__main__":
    main()
