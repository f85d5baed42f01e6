"""Does AU guidance hide a cue the model relies on? Train with the shortcut cue, then measure.

    python -m fer_core.shortcut_eval --seeds 0 1 2 --lambdas 0 4 --shortcut 1.0 \\
        [--images 48] [--set KEY=VALUE ...] [--json out.json]

For every shortcut probability × λ × seed one model is trained on synthetic faces whose
train/val images carry the class square with that probability (``shortcut``), then
:func:`fer_core.xai.shortcut.measure` scores it on test images with the square painted in:
reliance (accuracy with the square in place, removed, moved, swapped; ``follows``), attribution
to the square (the CAM's and each aligned layer's mass ratio and pointing game) and their
per-image agreement (``rho``). Prints one Markdown table, mean ± standard deviation over seeds
per arm, and writes every per-seed number to ``--json``. docs/method.md §7.2 states what the
numbers answer. Defaults are the CPU demo's sizes with a shorter training (48 px, 600 images,
4 epochs) without training augmentation (``augment=false``); ``--set`` changes any config field.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np

from fer_core.cli import UserError, at_least, cli_main, exit_with
from fer_core.xai.demo_models import DEMO, add_study_args, study_overrides, trained_test_batch

CUE_KEPT = {"augment": False}
"""Train on the evaluation transform: the crop, flips and colour jitter cut, move and recolour
the 4 px square, and with them on no demo model learned it (docs/method.md §7.2)."""

COLUMNS = ("acc_in_place", "acc_removed", "acc_moved", "acc_swapped", "follows", "reliance",
           "cam_mass_ratio", "cam_pointing", "rho")
"""The columns of the printed table (every number is in the JSON)."""


def train_and_measure(flat: dict, images: int) -> dict[str, float]:
    """Train one configuration and measure it on ``images`` test images."""
    from fer_core.xai.shortcut import measure

    trainer, x, labels, _ = trained_test_batch(flat, images)
    layers = trainer.cfg.align.layers if trainer.cfg.align.lambda_au > 0 else (
        trainer.model.headline_layer,)
    return measure(trainer.model, x, labels, layers)


def summarise(results: list[dict]) -> list[dict]:
    """Per (shortcut, λ): mean and standard deviation over seeds of every number."""
    arms: dict[tuple[float, float], list[dict]] = {}
    for r in results:
        arms.setdefault((r["shortcut"], r["lambda_au"]), []).append(r["scores"])
    out = []
    for (shortcut, lam), runs in sorted(arms.items()):
        keys = sorted(set().union(*runs))
        stats = {k: (float(np.nanmean([r[k] for r in runs])),
                     float(np.nanstd([r[k] for r in runs], ddof=1)) if len(runs) > 1
                     else float("nan")) for k in keys}
        out.append({"shortcut": shortcut, "lambda_au": lam, "seeds": len(runs), "stats": stats})
    return out


def markdown(summary: list[dict]) -> str:
    head = "| shortcut | λ | seeds | " + " | ".join(COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for arm in summary:
        cells = [f"{arm['stats'][c][0]:.3f} ± {arm['stats'][c][1]:.3f}" for c in COLUMNS]
        lines.append(f"| {arm['shortcut']:g} | {arm['lambda_au']:g} | {arm['seeds']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_core.shortcut_eval",
                                     description=__doc__.splitlines()[0])
    add_study_args(parser, images=48)
    parser.add_argument("--shortcut", type=float, nargs="+", default=[1.0],
                        help="probabilities of the square in train/val images")
    args = parser.parse_args(argv)
    at_least("--images", args.images, 1)
    for p in args.shortcut:
        if not 0.0 <= p <= 1.0:
            raise UserError(f"--shortcut {p}: use probabilities in [0, 1]")
    overrides = study_overrides(args)
    if overrides.get("dataset", "synthetic") != "synthetic":
        raise UserError("--set dataset=...: the shortcut cue exists in the synthetic dataset only")
    results = []
    for shortcut in args.shortcut:
        for lam in args.lambdas:
            for seed in args.seeds:
                flat = {**DEMO, **CUE_KEPT, **overrides, "shortcut": shortcut,
                        "lambda_au": lam, "seed": seed}
                scores = train_and_measure(flat, args.images)
                results.append({"shortcut": shortcut, "lambda_au": lam, "seed": seed,
                                "scores": scores})
                print(f"shortcut={shortcut:g} λ={lam:g} seed={seed}: " + ", ".join(
                    f"{k}={scores[k]:.3f}" for k in COLUMNS), file=sys.stderr, flush=True)
    summary = summarise(results)
    sys.stdout.write(markdown(summary))
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    exit_with(main())
