"""Can deletion/insertion tell a trained CAM from a random map? One number per baseline.

    python bench/xai_baselines.py [--seeds 0 1 2] [--n-images 24] [--baselines mean blur rise road]

For each seed a resnet18 CAM is trained briefly at the demo size (``search_spaces.sizes.LAPTOP``:
48 px, output stride 16, expressions at 0.6-1 of full strength; here 600 synthetic images and
4 epochs, ``fer_core.xai.demo_models.DEMO``, λ = 0), then every baseline of
:mod:`fer_core.xai.baselines` scores the true-class CAM and a uniform random map on the same
``--n-images`` test images. Printed per baseline: the mean deletion and insertion AUC of the CAM
and of the random map, the gap (random − CAM for deletion, CAM − random for insertion: positive
means the CAM is better), the gap's spread over seeds (standard deviation of the per-seed gaps)
and its 95 % bootstrap interval over the pooled images. A baseline that removes no information
shows a gap near 0 for every seed. Trained weights are reused from the cache
(``fer_core.xai.demo_models.cache_path``).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fer_core.engine import Trainer
from fer_core.xai import baselines as bl
from fer_core.xai.common import explanation_maps, probability_fn, random_maps
from fer_core.xai.demo_models import DEMO, train
from fer_core.xai.evaluate import select_images
from fer_core.xai.faithfulness import deletion_insertion
from fer_core.xai.intervals import bootstrap_interval

SMALL = {**DEMO, "lambda_au": 0.0}


def gaps(trainer: Trainer, n_images: int, names: list[str], seed: int) -> dict[str, dict]:
    """Per baseline: per-image CAM and random AUCs on ``n_images`` test images."""
    model = trainer.model.eval()
    x, labels, _ = select_images(trainer.loaders["test"], n_images, 0, "reference")
    maps = explanation_maps(model, x, labels)
    noise = random_maps(maps, torch.Generator().manual_seed(seed))
    probs = probability_fn(model)
    out = {}
    for name in names:
        fill = bl.baseline(name, bl.BaselineParams(seed=seed))
        cam = deletion_insertion(probs, x, maps, labels, fill=fill)
        rnd = deletion_insertion(probs, x, noise, labels, fill=fill)
        out[name] = {k: (cam[k].numpy(), rnd[k].numpy()) for k in ("deletion", "insertion")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-images", type=int, default=24)
    parser.add_argument("--baselines", nargs="+", default=bl.BASELINES.names())
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    per_seed = []
    for seed in args.seeds:
        trainer = train({**SMALL, "seed": seed})
        print(f"seed {seed}: test CL {trainer.evaluate('test')['cl']:.1f} %", flush=True)
        per_seed.append(gaps(trainer, args.n_images, args.baselines, seed))
    print("| baseline | metric | CAM | random | gap (CAM better > 0) | gap sd over seeds | "
          "gap 95 % CI over images |")
    print("|---|---|---|---|---|---|---|")
    for name in args.baselines:
        for metric, sign in (("deletion", -1.0), ("insertion", 1.0)):
            cam = np.concatenate([s[name][metric][0] for s in per_seed])
            rnd = np.concatenate([s[name][metric][1] for s in per_seed])
            seed_gaps = [sign * float(np.mean(s[name][metric][0] - s[name][metric][1]))
                         for s in per_seed]
            low, high = bootstrap_interval(sign * (cam - rnd))
            spread = np.std(seed_gaps, ddof=1) if len(seed_gaps) > 1 else float("nan")
            print(f"| {name} | {metric} | {cam.mean():.3f} | {rnd.mean():.3f} | "
                  f"{np.mean(seed_gaps):+.3f} | {spread:.3f} | "
                  f"[{low:+.3f}, {high:+.3f}] |")


if __name__ == "__main__":
    main()
