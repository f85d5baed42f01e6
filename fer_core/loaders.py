"""DataLoaders for one experiment: dataset registry + joint transforms, per split."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import torch
from torch.utils.data import DataLoader, Dataset

from fer_core.config import DataConfig
from fer_core.data import build_dataset
from fer_core.data.transforms import build_transforms

SYNTHETIC_EVAL_FRACTION = 5  # synthetic val/test hold a fifth of the train count each


def dataset_options(cfg: DataConfig, split: str, cache_dir: str | None = None) -> dict[str, Any]:
    """The registry options of ``cfg.dataset`` for one split.

    Data seeds never follow the trial seed: arms paired by seed must see the same images.
    ``cache_dir`` is where generated data is cached (the synthetic splits); file datasets keep
    their landmark cache next to their images and do not take it.
    """
    if cfg.dataset == "synthetic":
        n = cfg.synthetic_n
        if split != "train":
            n = max(7, n // SYNTHETIC_EVAL_FRACTION)
        return {"size": cfg.img_size, "n": n, "shortcut": cfg.shortcut, "cache_dir": cache_dir,
                "intensity": (cfg.synthetic_intensity, 1.0)}
    return {"val_fraction": cfg.val_fraction, "val_from_test": cfg.val_from_test,
            "seed": cfg.split_seed}


class Transformed(Dataset):
    """A raw dataset seen through a joint (image + landmarks) transform."""

    def __init__(self, base: Dataset, transform: Callable[[dict], dict]) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict:
        return self.transform(self.base[index])


def build_split(cfg: DataConfig, split: str, cache_dir: str | None = None) -> Dataset:
    """One split through the joint transforms; ``cache_dir``: see ``dataset_options``."""
    raw = build_dataset(cfg.dataset, split, root=cfg.data_root,
                        **dataset_options(cfg, split, cache_dir))
    return Transformed(raw, build_transforms(train=split == "train" and cfg.augment,
                                             size=cfg.img_size))


def build_loader(
    cfg: DataConfig, split: str, batch_size: int, seed: int = 0, dataset: Dataset | None = None,
    cache_dir: str | None = None,
) -> DataLoader:
    """A loader over ``split``; training shuffles with a seeded generator (resumable order)."""
    dataset = dataset if dataset is not None else build_split(cfg, split, cache_dir)
    train = split == "train"
    generator = torch.Generator().manual_seed(seed) if train else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        drop_last=train and len(dataset) > batch_size,  # type: ignore[arg-type]
        generator=generator,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        worker_init_fn=_one_thread_per_worker,
    )


def _one_thread_per_worker(_worker_id: int) -> None:
    """A loader worker is one process per core: OpenCV's own thread pool would oversubscribe."""
    cv2.setNumThreads(1)
