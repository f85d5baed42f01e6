"""MLflow tracking of sweeps, one module per job.

- ``schema``: the names (experiment, tags, params, metric families, artifacts, statuses) every
  run follows; ``analysis`` reads runs through it.
- ``redact``: credential redaction of text (URLs, secret-named keys).
- ``passwords``: database URIs as they may be written to disk (no password), and the whole
  URIs this process was given, for the pickles it loads.
- ``client``: ``MlflowClient`` calls by run id, fail-fast HTTP settings; the one place where
  params and tags are redacted before they leave the process.
- ``tracker``: ``TrialTracker``, a trial's queued, background delivery that survives outages.
- ``journal``: the trial's JSONL journal of operations and how each is delivered.
- ``replay``: ``python -m tuner.mlflow_replay``, delivering what journals still hold.
- ``closer``: the driver's Tune callback that ends the runs of trials that could not end them.
- ``server``: ``python -m tuner.mlflow_server``, the team's tracking server.
"""
