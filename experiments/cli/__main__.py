"""``python -m experiments.cli`` is ``slmsim``."""

import sys

from experiments.cli import main

sys.exit(main())
