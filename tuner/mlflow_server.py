"""``python -m tuner.mlflow_server``: see ``tuner.tracking.server``."""

from fer_core.cli import exit_with
from tuner.tracking.server import main

if __name__ == "__main__":
    exit_with(main())
