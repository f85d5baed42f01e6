"""Train and evaluate one configuration without Ray.

    python -m fer_core.train --set lambda_au=4 --set layers=5 --out runs/demo

Writes ``<out>/checkpoint.pt`` after every epoch (``--resume`` continues from it), and
``<out>/metrics.json`` with the per-epoch history and the final test metrics. The arguments,
paths and config values are checked before torch is imported (``docs/errors.md``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from fer_core.checkpoint import CHECKPOINT_FILE
from fer_core.cli import UserError, check_device, cli_main, exit_with
from fer_core.config import ExperimentConfig, parse_overrides

if TYPE_CHECKING:
    from fer_core.engine import Trainer


class EpochPrinter:
    """Prints one line per epoch and checkpoints, so a killed run loses at most one epoch.

    A :class:`fer_core.engine.Callback` by its two hooks rather than by subclassing it, so that
    this module imports torch only when training starts."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_fit_end(self, trainer: Trainer, final: dict[str, float]) -> None:
        """Nothing: ``main`` prints the test metrics."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        if trainer.checkpoint_due(epoch):
            trainer.save_checkpoint(str(self.out))
        print(
            f"epoch {epoch}/{trainer.cfg.train.epochs}  loss {metrics['train_loss']:.3f}  "
            f"val CL {metrics['val_cl']:.2f}  val ATT-COS {metrics['val_att_cos']:.3f}  "
            f"val CAM-COS {metrics['val_cam_cos']:.3f}  ({metrics['epoch_time_s']:.1f}s)",
            flush=True,
        )


@cli_main()
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override a config field (repeatable), e.g. --set lambda_au=4")
    parser.add_argument("--out", default="runs/train", help="output folder (checkpoint, metrics)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true", help="hide per-batch progress bars")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.set)
    out = Path(args.out).resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder for the checkpoint and metrics")
    if args.resume and not (out / CHECKPOINT_FILE).is_file():
        raise UserError(f"--resume: no checkpoint at {out / CHECKPOINT_FILE}; run without "
                        "--resume first, or pass the --out folder of an earlier run")
    cfg = ExperimentConfig.from_flat(overrides)
    check_device("--set device=", cfg.train.device)
    from fer_core.data import DATASETS
    from fer_core.methods import discover

    discover().get(cfg.method.method)  # unknown names list the valid ones before any data
    DATASETS.get(cfg.data.dataset)
    if cfg.data.dataset != "synthetic" and not cfg.data.data_root:
        raise UserError(f"--set dataset={cfg.data.dataset} needs --set data_root=<its folder>")
    from fer_core.engine import Trainer

    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, callbacks=[EpochPrinter(out)], progress=not args.no_progress)
    if args.resume:
        trainer.load_checkpoint(str(out))
        print(f"resumed from {out} at epoch {trainer.epoch}", flush=True)
    final = trainer.fit()
    report = {"config": cfg.to_flat(), "history": trainer.history, "final": final,
              **trainer.final_matrices}
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    print("test: " + "  ".join(f"{k}={v:.4g}" for k, v in sorted(final.items())))
    print(f"wrote {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    exit_with(main())
