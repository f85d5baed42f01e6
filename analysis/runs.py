"""The trials of an MLflow experiment as one tidy DataFrame (one row per trial).

Runs are read by ``analysis.fetch`` from any tracking URI, through the names of the schema in
``tuner.tracking.schema`` (child runs: tag ``sweep.role=trial``; parent runs are not trials).

Column schema of :func:`load_runs`
==================================

Run columns (always present, in this order)
    ``run_id`` (str), ``status`` (str: FINISHED, FAILED, KILLED or RUNNING), ``early_stopped``
    (bool: ASHA stopped the trial before its last epoch), ``arm`` (str, the sweep's arm label),
    ``sweep`` (str, the sweep name), ``space`` (str, the sweep's named space, e.g. ``lambda``),
    ``git_commit`` (str, ``""`` when not recorded), ``seed``
    (int), ``with_au`` (bool: ``lambda_au > 0``).
Config columns
    Every param of the child run (``ExperimentConfig.to_flat()`` names: ``method``,
    ``backbone``, ``lambda_au``, ``layers`` …), typed back from MLflow's text per column: ``bool``
    when every value is True/False, ``int`` when every value is an integer, ``float`` when every
    value is a number, else ``str``; ``"None"`` becomes ``None``. Layer-set params (``layers``,
    ``adl_layers``) always stay ``str``: ``"5"`` is the label of a set, like ``"5+4"``.
Metric columns (float, NaN when absent)
    Every final metric (families ``test``, ``test_xai`` and ``test_shortcut`` of
    ``fer_core.metric_names``: ``test_cl``, ``test_att_cos``, ``test_att_cos_l<k>``,
    ``test_cam_cos``, ``test_n_invalid``, ``test_xai_<name>``, ``test_shortcut_<name>``), plus
    ``best_val_cl`` and ``best_epoch`` (the model selected on validation CL). Per-epoch curves
    are not columns: they are series, not results.

By default only FINISHED trials that were not early-stopped are kept, since only they carry test
metrics of a fully trained model.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from analysis.fetch import trial_runs
from fer_core import metric_names as mn
from tuner.tracking import schema as tr

if TYPE_CHECKING:
    import pandas as pd

RUN_COLUMNS = ("run_id", "status", "early_stopped", "arm", "sweep", "space", "git_commit",
               "seed", "with_au")
TEXT_PARAMS = frozenset({"layers", "adl_layers"})
"""Params that are labels even when they look like numbers."""


def _parse(text: object) -> object:
    import pandas as pd

    if text is None or (isinstance(text, float) and pd.isna(text)) or text == "None":
        return None
    return text


def _typed(values: pd.Series, name: str) -> pd.Series:
    """One param column typed back from text (see the module docstring)."""
    import pandas as pd

    raw = values.map(_parse)
    present = [v for v in raw if v is not None]
    if name in TEXT_PARAMS or not present:
        return raw
    if all(v in ("True", "False") for v in present):
        return raw.map(lambda v: None if v is None else v == "True")
    for kind in (int, float):
        try:
            converted = [None if v is None else kind(v) for v in raw]
        except ValueError:
            continue
        if kind is int and None in converted:
            return pd.Series(converted, index=raw.index, dtype="Int64")
        return pd.Series(converted, index=raw.index, dtype=kind)
    return raw


def _empty() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})


def tidy(found: pd.DataFrame) -> pd.DataFrame:
    """The schema's frame out of ``analysis.fetch.trial_runs`` output (trial runs, any status)."""
    import pandas as pd

    if found.empty:
        return _empty()

    def tag(key: str, default: str = "") -> pd.Series:
        column = f"tags.{key}"
        return found[column].fillna(default) if column in found else pd.Series(default,
                                                                               index=found.index)

    params = {c[len("params."):]: _typed(found[c], c[len("params."):])
              for c in sorted(found.columns) if c.startswith("params.")}
    names = [c[len("metrics."):] for c in sorted(found.columns) if c.startswith("metrics.")]
    metrics = {name: found[f"metrics.{name}"].astype(float) for name in names
               if mn.is_final(name) or name in mn.SELECTION_METRICS}
    lambda_au = params.get("lambda_au", pd.Series(0.0, index=found.index)).astype(float)
    seed = params.get("seed", pd.Series(pd.NA, index=found.index))
    frame = pd.DataFrame({
        "run_id": found["run_id"], "status": found["status"],
        "early_stopped": tag(tr.TAG_EARLY_STOPPED, "false") == "true",
        "arm": tag(tr.TAG_ARM), "sweep": tag(tr.TAG_SWEEP), "space": tag(tr.TAG_SPACE),
        "git_commit": tag(tr.TAG_GIT_COMMIT),
        "seed": seed, "with_au": lambda_au > 0,
    })
    rest = {k: v for k, v in params.items() if k not in frame}
    return pd.concat([frame, pd.DataFrame(rest), pd.DataFrame(metrics)], axis=1)


def load_runs(
    experiment: str,
    tracking_uri: str | None = None,
    include_failed: bool = False,
    include_early_stopped: bool = False,
) -> pd.DataFrame:
    """Every trial (child run) of ``experiment`` as one row; columns in the module docstring.

    ``include_failed`` keeps runs whose status is not FINISHED (FAILED, KILLED, or RUNNING in a
    live sweep); ``include_early_stopped`` keeps trials ASHA stopped before their last epoch.
    Raises :class:`~fer_core.cli.UserError` when the experiment does not exist in the store.
    """
    import pandas as pd

    found = trial_runs(experiment, tracking_uri)
    frame = tidy(found)
    keep = pd.Series(True, index=frame.index)
    if not include_failed:
        keep &= frame["status"] == tr.FINISHED
    if not include_early_stopped:
        keep &= ~frame["early_stopped"].astype(bool)
    return frame[keep].reset_index(drop=True)


def add_source_args(parser: argparse.ArgumentParser) -> None:
    """The runs an ``analysis`` command reads: ``--experiment``, ``--mlflow-uri``, ``--where``."""
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument("--mlflow-uri", default=None, help="tracking URI (default: MLflow's)")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep only runs with this value (repeatable; config fields, "
                             "space=NAME, sweep=NAME)")
