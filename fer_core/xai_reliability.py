"""How reliable is each interpretability metric at this size and image count?

    python -m fer_core.xai_reliability --seeds 0 1 2 --lambdas 0 4 [--images 24] \\
        [--set KEY=VALUE ...] [--json out.json]

For every λ × seed a model is trained (``fer_core.xai.demo_models.DEMO``), then
:func:`fer_core.xai.reliability.metric_reliability` scores each metric of ``fer_core.xai`` on
``--images`` test images: its value and 95 % image-bootstrap interval, its value for a copy with
redrawn weights and on inputs with a small prediction-keeping noise. Printed per metric
(docs/method.md §7.1): the seed spread (standard deviation of the per-seed values, per λ), the
mean bootstrap half-width, the mean |change| under randomisation and under noise, and three
verdicts: ``reacts`` (randomisation moves it by more than its half-width), ``stable`` (noise
moves it by less) and, with two λ, ``separates`` (the arms differ by more than their seed means'
resolutions combined, √(h₀² + h₁²) with h the half-width over √seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

import numpy as np

from fer_core.cli import UserError, at_least, cli_main, exit_with
from fer_core.xai.demo_models import DEMO, add_study_args, study_overrides, trained_test_batch


def one_model(flat: dict, images: int) -> dict[str, dict[str, float]]:
    from fer_core.xai.evaluate import XaiConfig
    from fer_core.xai.reliability import metric_reliability

    trainer, x, labels, au = trained_test_batch(flat, images)
    cfg = XaiConfig(n_images=images, seed=int(flat["seed"]))
    return metric_reliability(trainer.model, x, labels, au, cfg, seed=int(flat["seed"]))


def verdicts(results: dict[float, list[dict]]) -> list[dict]:
    """One row per metric over ``{λ: [per-seed metric_reliability]}``."""
    from fer_core.xai.names import METRICS

    rows = []
    for metric in METRICS:
        row: dict = {"metric": metric.name}
        widths, random_moves, noise_moves, means, res = [], [], [], {}, {}
        for lam, runs in results.items():
            per = [r[metric.name] for r in runs]
            values = [p["value"] for p in per]
            half = [(p["ci_high"] - p["ci_low"]) / 2 for p in per]
            means[lam] = float(np.nanmean(values))
            res[lam] = float(np.nanmean(half)) / math.sqrt(len(per))
            row[f"mean_l{lam:g}"] = means[lam]
            row[f"seed_sd_l{lam:g}"] = float(np.nanstd(values, ddof=1)) if len(per) > 1 \
                else float("nan")
            widths += half
            random_moves += [abs(p["randomised"] - p["value"]) for p in per]
            noise_moves += [abs(p["perturbed"] - p["value"]) for p in per]
        row["ci95_half_width"] = float(np.nanmean(widths))
        row["randomised_change"] = float(np.nanmean(random_moves))
        row["noise_change"] = float(np.nanmean(noise_moves))
        row["reacts"] = row["randomised_change"] > row["ci95_half_width"]
        row["stable"] = row["noise_change"] < row["ci95_half_width"]
        if len(means) == 2:
            (l0, m0), (l1, m1) = sorted(means.items())
            row["arm_difference"] = m1 - m0
            row["separates"] = abs(m1 - m0) > math.hypot(res[l0], res[l1])
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    keys = [k for k in rows[0] if k != "metric"]
    lines = ["| metric | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for row in rows:
        cells = [(("yes" if v else "no") if isinstance(v, bool) else f"{v:.3f}")
                 for v in (row[k] for k in keys)]
        lines.append(f"| {row['metric']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_core.xai_reliability",
                                     description=__doc__.splitlines()[0])
    add_study_args(parser, images=24)
    parser.add_argument("--shortcut", type=float, default=0.0,
                        help="probability of the shortcut square in train/val images (the "
                             "models of python -m fer_core.shortcut_eval are reused)")
    args = parser.parse_args(argv)
    at_least("--images", args.images, 2, "a bootstrap needs two images")
    if len(args.lambdas) > 2:
        raise UserError(f"--lambdas {args.lambdas}: give one λ, or two arms to separate")
    overrides = study_overrides(args)
    results: dict[float, list[dict]] = {}
    for lam in args.lambdas:
        for seed in args.seeds:
            flat = {**DEMO, **overrides, "lambda_au": lam, "seed": seed}
            if args.shortcut:  # a float, as fer_core.shortcut_eval keys it: its models are reused
                flat["shortcut"] = args.shortcut
            results.setdefault(lam, []).append(one_model(flat, args.images))
            print(f"λ={lam:g} seed={seed} done", file=sys.stderr, flush=True)
    rows = verdicts(results)
    sys.stdout.write(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps({"per_seed": {str(k): v for k, v in results.items()},
                                         "metrics": rows}, indent=1))
    return 0


if __name__ == "__main__":
    exit_with(main())
