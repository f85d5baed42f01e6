from fer_core.cli import exit_with
from tuner.study.cli import main

exit_with(main())
