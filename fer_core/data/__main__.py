"""``python -m fer_core.data preview --dataset NAME [--root DIR] [-n 16] -o grid.png``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_core.data import DATASETS, SPLITS, build_dataset
from fer_core.data._cli import add_option_argument, parse_options


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_core.data")
    commands = parser.add_subparsers(dest="command", required=True)
    preview = commands.add_parser(
        "preview", help="PNG grid of samples with their landmarks and AU maps"
    )
    preview.add_argument("--dataset", required=True, choices=DATASETS.names())
    preview.add_argument("--root", default=None, help="dataset root (not for synthetic)")
    preview.add_argument("--split", default="train", choices=SPLITS)
    preview.add_argument("-n", type=int, default=16, help="number of samples")
    preview.add_argument("-o", "--out", required=True, help="output PNG file")
    preview.add_argument("--size", type=int, default=160, help="image side in the grid")
    preview.add_argument("--augment", action="store_true", help="show training augmentations")
    preview.add_argument("--seed", type=int, default=0)
    preview.add_argument("--variant", default="reference", help="AU variant (reference, ...)")
    add_option_argument(preview)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    from fer_core.data.preview import save_preview

    dataset = build_dataset(args.dataset, args.split, root=args.root, **parse_options(args.option))
    out = save_preview(
        dataset,
        args.out,
        n=args.n,
        size=args.size,
        augment=args.augment,
        seed=args.seed,
        variant=args.variant,
    )
    print(f"wrote {out} ({min(args.n, len(dataset))} of {len(dataset)} {args.split} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
