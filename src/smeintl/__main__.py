"""``python -m smeintl``: the command line (:mod:`smeintl.cli`)."""

from .cli import console

console()
