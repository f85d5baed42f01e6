"""Train / val / test selection: a seeded, stratified validation hold-out out of train.

Datasets ship a train and a test part (some also a val part). By default the validation split is
held out of train, per class, so it has train's class balance and train and val never share an
image. ``val_from_test=True`` reproduces the reference implementation, which validated (and
selected its model) on the test split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_core.cli import UserError

SOURCE_SPLITS = ("train", "val", "test")


def stratified_holdout(
    labels: Sequence[int] | np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..n-1`` into ``(keep, holdout)``, stratified by label.

    Each class gives ``round(fraction * n_c)`` of its items to the hold-out, and at least one when
    it has two or more items and ``fraction > 0`` (so small classes still get validated). The
    choice depends only on ``labels``, ``fraction`` and ``seed``. Both index arrays are sorted.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for label in np.unique(labels):  # sorted: the draw order is fixed by the seed
        members = np.flatnonzero(labels == label)
        k = int(round(fraction * len(members)))
        if fraction > 0 and len(members) >= 2:
            k = min(max(k, 1), len(members) - 1)
        held.append(rng.permutation(members)[:k])
    holdout = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(labels)), holdout)
    return keep, holdout


def select_split(
    source_splits: Sequence[str],
    labels: Sequence[int],
    split: str,
    *,
    val_fraction: float = 0.1,
    val_from_test: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Positions of the items of ``split`` given each item's shipped split and label.

    - ``test``: the shipped test items.
    - ``val``: the shipped test items if ``val_from_test``; else the shipped val items if any;
      else a stratified hold-out of ``val_fraction`` of the shipped train items.
    - ``train``: the shipped train items minus that hold-out.
    """
    source = np.asarray(source_splits)
    unknown = set(source.tolist()) - set(SOURCE_SPLITS)
    if unknown:
        raise ValueError(f"unknown source splits {sorted(unknown)}; valid: {SOURCE_SPLITS}")
    train = np.flatnonzero(source == "train")
    if split == "test":
        return np.flatnonzero(source == "test")
    shipped_val = np.flatnonzero(source == "val")
    if val_from_test or len(shipped_val):
        if split == "val":
            return np.flatnonzero(source == "test") if val_from_test else shipped_val
        return train
    if split == "val" and val_fraction == 0:
        raise UserError(
            "the val split is empty with val_fraction=0: use val_fraction > 0 (a hold-out of "
            "train) or val_from_test=True (validate on test, as the reference did)"
        )
    keep, holdout = stratified_holdout(np.asarray(labels)[train], val_fraction, seed)
    return train[holdout] if split == "val" else train[keep]
