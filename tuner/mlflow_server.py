"""``python -m tuner.mlflow_server``: see ``tuner.tracking.server``."""

import sys

from tuner.tracking.server import main

if __name__ == "__main__":
    sys.exit(main())
