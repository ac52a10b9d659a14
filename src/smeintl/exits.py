"""The command line's exception boundary: what a command's exception becomes.

:func:`handle` turns any exception that ends a command into its exit status and message
(see :mod:`smeintl.cli`): a user mistake (bad data, bad spec, a fit that does not match, an
output that exists or cannot be written, a number out of range) one line on stderr and
:data:`EXIT_USAGE`; an interrupt (Ctrl-C, SIGTERM) the removal of partial output and
:data:`EXIT_INTERRUPTED`; a closed pipe :data:`EXIT_BROKEN_PIPE`, quietly; anything else
the traceback, "this is a bug in smeintl" and :data:`EXIT_BUG`.
:func:`quiet_foreign_warnings` filters the other packages' warnings listed in
:data:`FOREIGN_WARNINGS` while a command runs.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
import traceback
import warnings

from .api import remove_partial_folders
from .errors import UserError, interrupted, stop_interrupting

__all__ = ["EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE", "EXIT_BUG", "FOREIGN_WARNINGS", "handle",
           "quiet_foreign_warnings"]

#: exit status of a user mistake
EXIT_USAGE = 2
#: exit status of an interrupted command (Ctrl-C or SIGTERM)
EXIT_INTERRUPTED = 130
#: exit status when the reader of stdout went away (128 + SIGPIPE, as the shell reports it)
EXIT_BROKEN_PIPE = 141
#: exit status of a bug
EXIT_BUG = 1

#: OSError numbers that are the user's to fix (paths, permissions, space)
_USER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EISDIR,
                errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ENOTEMPTY,
                getattr(errno, "EDQUOT", errno.ENOSPC)}


def _user_message(exc: BaseException) -> str | None:
    """The message of a user mistake, None for anything else (a bug)."""
    from .data import DataError
    from .spec import SpecError

    known: tuple[type, ...] = (UserError, DataError, SpecError, FileExistsError)
    io = sys.modules.get("smeintl.measurement.io")  # loaded when a FitError can have been raised
    if io is not None:
        known = (*known, io.FitError)
    if isinstance(exc, known):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in _USER_ERRNOS and exc.filename is not None:
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
        return f"{where}: {exc.strerror or exc}"
    return None


def _stop() -> None:
    while True:  # a second Ctrl-C while stopping must not escape as a traceback
        try:
            stop_interrupting()
            return
        except KeyboardInterrupt:
            continue


def _quiet_stdout() -> None:
    """The reader of stdout went away: point stdout at /dev/null so that Python's own
    flush at exit does not fail again (the recipe of Python's signal documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured in tests)
        pass


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _collect_abandoned(exc: BaseException) -> None:
    """Finalize now what the interrupt left half-built (held by the frames of its traceback),
    while the signal handling keeps their cleanup errors quiet (see ``errors``)."""
    if exc.__traceback__ is not None:
        traceback.clear_frames(exc.__traceback__)
        exc.__traceback__ = None
    gc.collect()


def handle(exc: BaseException, name: str) -> int:
    if isinstance(exc, KeyboardInterrupt) or interrupted():
        _stop()
        _collect_abandoned(exc)
        remove_partial_folders()
        _say(f"{name}: interrupted; nothing was left half-written")
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    if isinstance(exc, SystemExit):
        raise exc
    message = _user_message(exc)
    if message is not None:
        _say(f"{name}: error: {message}")
        return EXIT_USAGE
    try:
        traceback.print_exception(exc, file=sys.stderr)
    except (OSError, ValueError):
        pass
    _say(f"{name}: this is a bug in smeintl; please report it (with the command and the traceback above)")
    return EXIT_BUG


#: other packages' warnings that say nothing about the user's analysis, each filtered by its
#: category, module and text while a command runs (never all warnings: smeintl's own, such
#: as failed diagnostics, and any other package's stay loud)
FOREIGN_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    # PyTensor looks for a system BLAS to link its C code to, and pip installs have none; the
    # nutpie sampler runs the model through numba, which does not need one
    (UserWarning, r"pytensor\.link\.c\.cmodule", r"PyTensor could not link to a BLAS installation"),
    # ArviZ 0.x announces its coming refactor once a day on import; smeintl runs on ArviZ 1 too
    (FutureWarning, r"arviz", r"\s*ArviZ is undergoing a major refactor"),
)


def quiet_foreign_warnings() -> None:
    for category, module, message in FOREIGN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
