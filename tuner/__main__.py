"""``python -m tuner`` is ``python -m tuner.sweep``."""

from fer_core.cli import exit_with
from tuner.sweep import main

exit_with(main())
