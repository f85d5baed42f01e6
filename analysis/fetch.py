"""Read an experiment's trial runs out of a tracking store as one wide frame.

The frame has the columns ``mlflow.search_runs`` would give (``run_id``, ``status``,
``params.<key>``, ``metrics.<key>``, ``tags.<key>``), for the active runs tagged
``sweep.role=trial``. Two readers, picked by the URI's scheme:

- a database URI (``sqlite:///…``, ``postgresql://…``, ``mysql://…``) is read with four plain
  SQL selects over MLflow's own table definitions. MLflow's search builds an ORM object per
  param, tag and metric row, which is most of the time of an analysis over 10,000 runs; the
  selects read the same rows into pandas directly.
- anything else (an ``http(s)://`` server, a ``file:`` store) goes through ``MlflowClient``.

Neither touches MLflow's process-wide tracking URI: setting it, even to put it back, pins it
over a later ``MLFLOW_TRACKING_URI`` for the rest of the process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fer_core.cli import MissingPath, UserError
from tuner.tracking import schema as tr

if TYPE_CHECKING:
    import pandas as pd

DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
PAGE = 1000  # runs per MlflowClient.search_runs page (the REST API's bound is 50,000)


def _scheme(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0].lower()


def _missing(experiment: str, uri: str, names: list[str]) -> UserError:
    return UserError(f"no MLflow experiment {experiment!r} at {uri}; experiments there: {names}")


def _wide(runs: pd.DataFrame, params: pd.DataFrame, metrics: pd.DataFrame,
          tags: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (run_id, status) joined with the long (run_id, key, value) tables, pivoted."""
    frame = runs.set_index("run_id")
    for prefix, long in (("params", params), ("metrics", metrics), ("tags", tags)):
        if long.empty:
            continue
        wide = long.pivot(index="run_id", columns="key", values="value")
        wide.columns = [f"{prefix}.{key}" for key in wide.columns]
        frame = frame.join(wide)
    return frame.reset_index()


def from_database(experiment: str, uri: str) -> pd.DataFrame:
    """The trial runs of ``experiment`` read with plain selects from MLflow's database."""
    import pandas as pd
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels import models as m

    if _scheme(uri) == "sqlite":
        path = Path(uri.split(":///", 1)[-1])
        if not path.is_file():  # connecting would create an empty database there
            raise MissingPath(f"no MLflow store at {path} (from {uri})")
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            ex = m.SqlExperiment.__table__
            found = conn.execute(sa.select(ex.c.experiment_id).where(
                ex.c.name == experiment, ex.c.lifecycle_stage == "active")).first()
            if found is None:
                names = sorted(conn.execute(sa.select(ex.c.name)).scalars())
                raise _missing(experiment, uri, names)
            run, tag = m.SqlRun.__table__, m.SqlTag.__table__
            trials = (sa.select(run.c.run_uuid)
                      .join(tag, tag.c.run_uuid == run.c.run_uuid)
                      .where(run.c.experiment_id == found.experiment_id,
                             run.c.lifecycle_stage == "active",
                             tag.c.key == tr.TAG_ROLE, tag.c.value == tr.ROLE_TRIAL))
            runs = pd.read_sql(sa.select(run.c.run_uuid.label("run_id"), run.c.status)
                               .where(run.c.run_uuid.in_(trials)), conn)

            def long(table: sa.Table, *extra: sa.ColumnElement) -> pd.DataFrame:
                return pd.read_sql(sa.select(table.c.run_uuid.label("run_id"), table.c.key,
                                             table.c.value, *extra)
                                   .where(table.c.run_uuid.in_(trials)), conn)

            params = long(m.SqlParam.__table__)
            latest = m.SqlLatestMetric.__table__
            metrics = long(latest, latest.c.is_nan)
            tags = long(tag)
    except sa.exc.OperationalError as err:  # not an MLflow database, or not reachable
        raise UserError(f"cannot read MLflow's tables at {uri}: {err.orig}") from err
    finally:
        engine.dispose()
    # MLflow stores NaN as 0 with the is_nan flag set.
    nan = metrics.pop("is_nan").astype(bool)
    metrics["value"] = metrics["value"].astype(float).mask(nan)
    return _wide(runs, params, metrics, tags)


def from_client(experiment: str, uri: str) -> pd.DataFrame:
    """The trial runs of ``experiment`` through ``MlflowClient`` (any store MLflow reads)."""
    import mlflow
    import pandas as pd

    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise _missing(experiment, uri, sorted(e.name for e in client.search_experiments()))
    rows, params, metrics, tags = [], [], [], []
    token = None
    while True:
        page = client.search_runs([found.experiment_id],
                                  tr.tag_filter({tr.TAG_ROLE: tr.ROLE_TRIAL}),
                                  max_results=PAGE, page_token=token)
        for run in page:
            rid = run.info.run_id
            rows.append((rid, run.info.status))
            params += [(rid, k, v) for k, v in run.data.params.items()]
            metrics += [(rid, k, float(v)) for k, v in run.data.metrics.items()]
            tags += [(rid, k, v) for k, v in run.data.tags.items()]
        token = page.token
        if not token:
            break
    columns = ["run_id", "key", "value"]
    return _wide(pd.DataFrame(rows, columns=["run_id", "status"]),
                 pd.DataFrame(params, columns=columns), pd.DataFrame(metrics, columns=columns),
                 pd.DataFrame(tags, columns=columns))


READERS: dict[str, Callable[[str, str], pd.DataFrame]] = {s: from_database for s in DB_SCHEMES}


def trial_runs(experiment: str, uri: str | None = None) -> pd.DataFrame:
    """The wide frame of ``experiment``'s trial runs at ``uri`` (default: MLflow's URI)."""
    import mlflow

    uri = uri or mlflow.get_tracking_uri()
    return READERS.get(_scheme(uri), from_client)(experiment, uri)
