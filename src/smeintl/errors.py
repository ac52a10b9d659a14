"""Errors of smeintl that are the user's to fix.

Kept apart from the command line so that every layer (the Python API, the main job,
the commands) can raise them without importing :mod:`smeintl.cli`.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake the user can fix; printed without a traceback.

    The command line prints its message and exits with status 2; in Python it is an
    ordinary exception whose message says what to change.
    """
