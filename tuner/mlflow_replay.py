"""``python -m tuner.mlflow_replay``: see ``tuner.tracking.replay``."""

import sys

from tuner.tracking.replay import main

if __name__ == "__main__":
    sys.exit(main())
