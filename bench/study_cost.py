"""The price of the paper's whole study on the device at hand, from its one declaration.

    python bench/study_cost.py                  # 3 cost arms timed: a few minutes on a CPU
    python bench/study_cost.py --max-arms 12    # more arms timed, the rest cost their mean

Reads ``search_spaces/studies/paper.py`` at the ``paper`` profile for RAF-DB and AffectNet ×
3 seeds, exactly what ``python -m tuner.study paper --profile paper --dataset rafdb --dataset
affectnet --estimate`` prices (``tuner.study.price``): each distinct cost arm timed once on
synthetic images at the paper's sizes, scaled to the published split sizes and epochs. Prints
a line per part and ``study_device_hours=<x>`` last (GPU-hours on a GPU with one GPU per
trial, else hours of one CPU core per trial).
"""

from __future__ import annotations

import argparse

from tuner.study.args import parse
from tuner.study.parts import StudyPlan
from tuner.study.price import run_estimate


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-arms", type=int, default=3, help="cost arms timed at most")
    p.add_argument("--gpus-per-trial", type=float, help="time on this machine's GPU")
    args = p.parse_args(argv)
    study = ["paper", "--profile", "paper", "--dataset", "rafdb", "--dataset", "affectnet",
             "--seeds", "3", "--estimate", "--max-arms", str(args.max_arms)]
    if args.gpus_per_trial:
        study += ["--gpus-per-trial", str(args.gpus_per_trial)]
    print(run_estimate(StudyPlan.build(parse(study))), flush=True)


if __name__ == "__main__":
    main()
