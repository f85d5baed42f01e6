"""``python -m fer_core.data preview --dataset NAME [--root DIR] [-n 16] -o grid.png``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fer_core.cli import UserError, at_least, check_choice, cli_main, exit_with
from fer_core.config import AU_VARIANTS
from fer_core.data import DATASETS, SPLITS, build_dataset
from fer_core.data._cli import add_option_argument, parse_options, with_options
from fer_core.data.io import NoReadableImage


@cli_main()
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
    from fer_core.overlay import check_format

    check_format(args.out)  # before the dataset is read
    at_least("-n", args.n, 1, "samples in the grid")
    at_least("--size", args.size, 16, "pixels")
    check_choice("--variant", args.variant, AU_VARIANTS)
    dataset = with_options(build_dataset, f"dataset {args.dataset!r}", args.dataset, args.split,
                           root=args.root, **parse_options(args.option))
    if len(dataset) == 0:
        raise UserError(f"the {args.split} split of {args.dataset} ({args.root}) has no image "
                        "file left; the skipped files are listed in its bad-image report")
    try:
        out = save_preview(dataset, args.out, n=args.n, size=args.size, augment=args.augment,
                           seed=args.seed, variant=args.variant)
    except NoReadableImage as err:
        raise UserError(f"{args.dataset} {args.split} split ({args.root}): {err}") from None
    print(f"wrote {out} ({min(args.n, len(dataset))} of {len(dataset)} {args.split} samples)")
    return 0


if __name__ == "__main__":
    exit_with(main())
