"""``python -m tuner.mlflow_replay``: see ``tuner.tracking.replay``."""

from fer_core.cli import exit_with
from tuner.tracking.replay import main

if __name__ == "__main__":
    exit_with(main())
