"""Explain a trained model's prediction on a photo, or on every image of a folder.

    python -m fer_core.explain IMAGE --checkpoint PATH_OR_MLFLOW_URI -o out.png
    python -m fer_core.explain FOLDER --checkpoint runs:/<run id> --mlflow-uri URI -o grid.png

The face is found and its 68 landmarks fitted with dlib on the full image, then cut out as a
square around the landmarks framed like the training faces, and fed to the model through the
evaluation transform (``fer_core.explainer``). One image: prints the prediction and the 7
probabilities (one ``Class p`` line each) and writes the figure of ``fer_core.overlay`` (format
from ``-o``'s suffix). A folder: one grid row per image and a CSV; an unreadable image or one
without a face is recorded there and does not stop the others.

This module reads the arguments and checks them before importing torch, dlib or matplotlib, so
``--help`` and a usage error answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fer_core import CLASSES
from fer_core.cli import MissingPath, UserError, check_device, cli_main, exit_with

if TYPE_CHECKING:
    from fer_core.explainer import Explainer

NO_FACE_EXIT = 2


def __getattr__(name: str) -> object:
    """``fer_core.explain.Explainer`` etc.: the work's names, imported (with torch) on first use."""
    from fer_core import explainer

    try:
        return getattr(explainer, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None

def _run_image(explainer: Explainer, path: Path, out: Path, faithfulness: bool = False) -> int:
    from fer_core.explainer import NoFaceError
    from fer_core.overlay import explanation_figure, save_figure

    try:
        face = explainer.file(path)
    except NoFaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return NO_FACE_EXIT
    how = "face" if face.face_found else "no face found: whole image"
    print(f"{path.name}: predicted {face.headline} [{how}; {face.method}, "
          f"{explainer.loaded.cfg.model.backbone}]")
    for name, p in zip(CLASSES, face.probs, strict=True):
        print(f"{name} {p:.4f}")
    print(f"wrote {save_figure(explanation_figure(face), out)}")
    if faithfulness:
        from fer_core.xai.curves import curves_figure, image_curves

        curves = image_curves(explainer.loaded.model,
                              explainer.last_input.to(explainer.loaded.device), face.target)
        where = out.with_name(f"{out.stem}_faithfulness{out.suffix}")
        print(f"deletion AUC {curves.deletion_auc:.4f}, insertion AUC "
              f"{curves.insertion_auc:.4f} ({CLASSES[face.target]})")
        title = f"{path.name}: {CLASSES[face.target]} ({face.method})"
        print(f"wrote {save_figure(curves_figure(curves, title), where)}")
    return 0


def _run_folder(explainer: Explainer, folder: Path, out: Path, csv_path: Path,
                progress: bool) -> int:
    from fer_core.explainer import IMAGE_SUFFIXES, explain_folder, image_files, write_csv
    from fer_core.overlay import ExplainedFace, FailedImage, grid_figure, save_figure

    files = image_files(folder, exclude=(out, csv_path))
    if not files:
        raise UserError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    items, rows = explain_folder(explainer, files, progress)
    failed = [item for item in items if isinstance(item, FailedImage)]
    whole = sum(isinstance(item, ExplainedFace) and not item.face_found for item in items)
    print(f"{len(items)} images: {len(items) - len(failed)} explained (no face found, whole "
          f"image used: {whole}), {len(failed)} not")
    for item in failed:
        print(f"  {item.name}: {item.reason}")
    print(f"wrote {save_figure(grid_figure(items), out)} and {write_csv(rows, csv_path)}")
    return 0 if len(failed) < len(items) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fer_core.explain",
        description="Predict the expression of a face photo (or every image of a folder) and "
                    "draw the AU map, CAM and layer attention behind it.")
    parser.add_argument("input", type=Path, help="an image file, or a folder of images")
    parser.add_argument("--checkpoint", required=True,
                        help="selected.pt / checkpoint.pt, a run folder, runs:/<run id>[/path], or "
                             "an MLflow model (runs:/<run id>/model, models:/NAME@best)")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help="figure to write; the suffix picks the format (png, pdf, svg)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="folder input: per-image CSV (default: next to -o, suffix .csv)")
    parser.add_argument("--mlflow-uri", default=None, help="tracking URI for runs:/ checkpoints")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--class", dest="target_class", choices=CLASSES, default=None,
                        help="draw the AU map and CAM of this class (default: the predicted one)")
    parser.add_argument("--no-face-ok", action="store_true",
                        help="without a face, classify the whole image resized")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--faithfulness", action="store_true",
                        help="one image: also draw its deletion and insertion curves "
                             "(Petsiuk et al. 2018) to <out>_faithfulness.<suffix>")
    return parser


@cli_main()
def main(argv: Sequence[str] | None = None) -> int:
    """The explain CLI (see the module docstring); returns the exit code."""
    args = build_parser().parse_args(argv)
    if not args.input.exists():
        raise MissingPath(f"{args.input}: missing file or folder")
    from fer_core.overlay import check_format

    check_format(args.out)
    check_device("--device", args.device)
    from fer_core.data.io import BadImage
    from fer_core.explainer import Explainer
    from fer_core.inference import load_model

    loaded = load_model(args.checkpoint, args.mlflow_uri, args.device)  # ModelSourceError: user's
    target = None if args.target_class is None else CLASSES.index(args.target_class)
    explainer = Explainer(loaded, no_face_ok=args.no_face_ok, target_class=target)
    try:
        if args.input.is_dir():
            return _run_folder(explainer, args.input, args.out,
                               args.csv or args.out.with_suffix(".csv"), not args.no_progress)
        return _run_image(explainer, args.input, args.out, args.faithfulness)
    except BadImage as err:
        raise UserError(f"cannot read {err}") from None


if __name__ == "__main__":
    exit_with(main())
