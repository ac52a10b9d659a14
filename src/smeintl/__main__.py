"""``python -m smeintl``: the command line (:mod:`smeintl.cli`)."""

import sys

from .cli import main

sys.exit(main())
