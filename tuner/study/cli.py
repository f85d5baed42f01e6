"""``python -m tuner.study``: parse the command line, then one of: estimate, fetch, run.

Reading the command line and checking the study's names import neither torch nor Ray nor
MLflow; the chosen action imports what it needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from fer_core.cli import cli_main
from tuner.study.args import StudyArgs, parse

__all__ = ["StudyArgs", "main", "parse"]


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    from tuner.study.parts import StudyPlan

    plan = StudyPlan.build(args)  # every name checked: one line for a bad one
    if args.fetch_weights:
        from tuner.study.price import fetch_weights

        return fetch_weights(plan, args.cache)
    if args.estimate:
        from tuner.study.price import run_estimate

        print(run_estimate(plan, args.gpu), flush=True)
        return 0
    from tuner.study.runner import run

    return run(plan)
