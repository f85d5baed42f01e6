"""``python -m tuner`` is ``python -m tuner.sweep``."""

import sys

from tuner.sweep import main

sys.exit(main())
