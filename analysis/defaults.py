"""The report's default selection: which runs each table and Fig. 5 use when a sweep ran several
AU-guided settings (a searched sweep such as the default ``lambda_layers`` does).

A table cell must show one model, so where the selected runs hold several λ / layer-set
settings, one is chosen by a fixed rule and named in the caption:

- Tables 1–2 and 4 (per method): the w/o AU column is the λ = 0 runs; the w/ AU column is the
  paper's setting (λ = 4 at layer 5, ``search_spaces.sizes.PAPER_POINT``) when it ran, otherwise
  the setting with the best mean validation CL (``best_val_cl``: what each trial selects its model
  on; never a test metric).
- Table 3 (per layer set): the runs at the paper's λ = 4 when that layer set ran with it,
  otherwise the layer set's λ with the best mean validation CL. The caption lists each row's λ
  and, when they differ, names the sweep that compares layer sets at one λ.
- Fig. 5 (in ``analysis.figures``): the w/ AU runs of layer set 5 when present, otherwise of the
  layer set with the most λ values; the λ = 0 baseline whatever its (unused) layer set.

A selection already narrowed to one setting (``--where lambda_au=… --where layers=…``) is used
as it is. A table refuses only when one of the arms it compares has no run at all, and then
names the sweep that makes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fer_core import metric_names as mn
from fer_core.cli import UserError

if TYPE_CHECKING:  # pandas is imported where frames are built, so the CLIs answer at once
    import pandas as pd


def paper_point() -> tuple[float, str]:
    """The paper's (λ, layer set) as the runs hold them (``search_spaces.sizes.PAPER_POINT``;
    read on use: the search spaces import Ray)."""
    from search_spaces.sizes import PAPER_POINT

    return float(PAPER_POINT["lambda_au"]), str(PAPER_POINT["layers"])

VALIDATED_BY = mn.BEST_VAL_CL
SWEEP = "python -m tuner.sweep --space {space}"


class NoArm(UserError):
    """A compared arm has no run in the selection; the message names the sweep that makes it."""


def _layers(runs: pd.DataFrame) -> pd.Series:
    import pandas as pd

    return runs["layers"].astype(str) if "layers" in runs else pd.Series("", index=runs.index)


def _settings(au: pd.DataFrame) -> dict[tuple[float, str], pd.DataFrame]:
    keys = list(zip(au["lambda_au"].astype(float), _layers(au), strict=True))
    return {key: au[[k == key for k in keys]] for key in sorted(set(keys))}


def _validated(group: pd.DataFrame) -> float:
    import numpy as np

    if VALIDATED_BY not in group:
        return -np.inf
    values = group[VALIDATED_BY].astype(float)
    return float(values.mean()) if np.isfinite(values).any() else -np.inf


def _best(groups: dict, preferred: Callable[[tuple[float, str]], bool]) -> tuple[object, str]:
    """The key of the preferred setting if it ran, else of the best validated one; and why."""
    for key in groups:
        if preferred(key):
            return key, "paper"
    # ties: the smaller λ, then the layer label (a fixed, documented order)
    return max(groups, key=lambda k: (_validated(groups[k]), -k[0], k[1])), "validated"


def _fmt(lam: float, layers: str) -> str:
    return f"λ = {lam:g} at layer{'s' if '+' in layers else ''} {layers}" if layers else \
        f"λ = {lam:g}"


def _need(runs: pd.DataFrame, with_au: bool, space: str, table: str) -> None:
    if not (runs["with_au"].astype(bool) == with_au).any():
        arm = "w/ AU (λ > 0)" if with_au else "w/o AU (λ = 0)"
        raise NoArm(f"{table} compares against the {arm} runs and the selection has none; "
                    f"{SWEEP.format(space=space)} makes them")


def method_tables(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Tables 1–2: λ = 0 runs and, per method, one w/ AU setting; the caption's note."""
    import pandas as pd

    _need(runs, False, "methods", "Tables 1–2")
    _need(runs, True, "methods", "Tables 1–2")
    au = runs[runs["with_au"].astype(bool)]
    methods = au["method"].astype(str) if "method" in au else pd.Series("", index=au.index)
    kept, notes = [runs[~runs["with_au"].astype(bool)]], []
    for method, group in au.groupby(methods, sort=True):
        settings = _settings(group)
        key, why = _best(settings, lambda k: k == paper_point())
        kept.append(settings[key])
        if len(settings) > 1:
            reason = ("the paper's setting" if why == "paper" else
                      f"the best validation CL of {len(settings)} settings")
            notes.append(f"{method}: {_fmt(*key)}, {reason}")
    chosen = pd.concat(kept).sort_index()
    return chosen, ("w/ AU = " + "; ".join(notes)) if notes else ""


def layer_table(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Table 3: λ = 0 runs and, per layer set, one λ; the caption's note."""
    import pandas as pd

    _need(runs, False, "layers", "Table 3")
    _need(runs, True, "layers", "Table 3")
    au = runs[runs["with_au"].astype(bool)]
    kept, picked, mixed = [runs[~runs["with_au"].astype(bool)]], {}, False
    paper_lambda = paper_point()[0]
    for layers, group in au.groupby(_layers(au), sort=True):
        by_lambda = {(lam, layers): g for lam, g in group.groupby(group["lambda_au"]
                                                                   .astype(float))}
        key, _ = _best(by_lambda, lambda k: k[0] == paper_lambda)
        kept.append(by_lambda[key])
        picked[layers] = key[0]
        mixed |= len(by_lambda) > 1
    chosen = pd.concat(kept).sort_index()
    lambdas = set(picked.values())
    if len(lambdas) == 1 and not mixed:
        return chosen, ""
    if len(lambdas) == 1:
        return chosen, f"w/ AU: λ = {lambdas.pop():g} in every row"
    each = ", ".join(f"{layers}: {lam:g}" for layers, lam in picked.items())
    return chosen, (f"λ per layer set ({each}; λ = {paper_lambda:g} where it ran, else the best "
                    f"validation CL); rows differ in λ too: {SWEEP.format(space='layers')} "
                    f"compares layer sets at one λ")


def lambda_curve(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Fig. 5: the λ = 0 runs and the w/ AU runs of one layer set; the title's note."""
    au = runs[runs["with_au"].astype(bool)]
    layers = _layers(au)
    if layers.nunique() <= 1:
        return runs, ""
    counts = {label: au.loc[layers == label, "lambda_au"].nunique() for label in set(layers)}
    paper_layers = paper_point()[1]
    label = paper_layers if paper_layers in counts else max(
        sorted(counts), key=lambda k: counts[k])
    kept = runs[~runs["with_au"].astype(bool) | (_layers(runs) == label)]
    note = f"layer{'s' if '+' in label else ''} {label}"
    if counts[label] < 2:
        note += f"; one λ: {SWEEP.format(space='lambda')} draws the curve"
    return kept, note


TABLE_DEFAULTS: dict[int, Callable[[pd.DataFrame], tuple[pd.DataFrame, str]]] = {
    1: method_tables, 2: method_tables, 3: layer_table, 4: method_tables}
"""Table number → its default selection (tables not listed use the runs as selected); Table 4
compares the same arms as Tables 1–2."""
