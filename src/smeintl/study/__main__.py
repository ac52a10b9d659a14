"""``python -m smeintl.study STUDY.toml [--out DIR] [--scheduler ADDRESS] [--workers N]``."""

import sys

from smeintl.study.cli import study_main

sys.exit(study_main())
