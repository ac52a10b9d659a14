"""Errors of smeintl that are the user's to fix, and how an interruption is noticed.

Kept apart from the command line so that every layer (the Python API, the main job,
the commands) can raise them without importing :mod:`smeintl.cli`.

**Interruptions.**  Ctrl-C raises ``KeyboardInterrupt`` wherever Python happens to be,
and some places swallow it: PyMC and nutpie stop sampling and return the draws so far,
and a ``KeyboardInterrupt`` raised inside a garbage-collection callback (weak
references, finalizers; frequent while matplotlib draws) is printed as "Exception
ignored" and dropped.  Inside :func:`interrupt_signals` (the command line runs every
command in it) SIGINT and SIGTERM therefore also *record* the interruption, raise
``KeyboardInterrupt`` again every second until the command has stopped, and
:func:`check_interrupted` (called before any output is put in place) raises it once
more where it was swallowed.  An interrupted command never leaves a result behind that
was computed from half a run.

**Suggestions.**  :func:`did_you_mean` names the known name closest to a mistyped one
(a column of a data file, a key of a spec or study file).
"""

from __future__ import annotations

import _thread
import difflib
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

__all__ = ["UserError", "interrupt_signals", "interrupted", "check_interrupted", "stop_interrupting",
           "deferred_interrupts", "did_you_mean"]


class UserError(Exception):
    """A mistake the user can fix; printed without a traceback.

    The command line prints its message and exits with status 2; in Python it is an
    ordinary exception whose message says what to change.
    """


def did_you_mean(name: Any, known: Iterable[str], *, cutoff: float = 0.75) -> str:
    """`` (did you mean 'reverse'?)`` for the name in ``known`` closest to ``name``
    (case ignored, :func:`difflib.get_close_matches` with ``cutoff``); ``""`` when none is
    close enough or ``name`` is not a string."""
    if not isinstance(name, str):
        return ""
    lower = {str(k).lower(): str(k) for k in known}
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=cutoff)
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


# ---------------------------------------------------------------------------
# interruptions
# ---------------------------------------------------------------------------
class _State:
    depth = 0  # nesting of interrupt_signals
    signum: int | None = None  # the first signal received (SIGINT or SIGTERM), None: none
    quiet = False  # the command is stopping: record further signals, raise nothing
    deferred = False  # inside deferred_interrupts: record signals, raise nothing yet
    repeater: threading.Thread | None = None
    stop = threading.Event()
    lock = threading.Lock()


#: seconds between the repeated KeyboardInterrupts after the first signal
REPEAT_S = 1.0


def interrupted() -> bool:
    """True when SIGINT or SIGTERM arrived inside :func:`interrupt_signals`."""
    return _State.signum is not None


def check_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` when an interruption was received (even if a library
    swallowed the first ``KeyboardInterrupt``); call it before putting output in place."""
    if _State.signum is not None and not _State.quiet:
        raise KeyboardInterrupt


def _repeat() -> None:
    while not _State.stop.wait(REPEAT_S):
        with _State.lock:
            if _State.stop.is_set():
                return
            if not _State.deferred:
                _thread.interrupt_main()


def _handler(signum, frame):  # noqa: ARG001 - the signal module's signature
    if _State.signum is None:
        _State.signum = signum
        if _State.repeater is None and not _State.quiet:
            _State.stop.clear()
            _State.repeater = threading.Thread(target=_repeat, name="smeintl-interrupt", daemon=True)
            _State.repeater.start()
    if not (_State.quiet or _State.deferred):
        raise KeyboardInterrupt


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Signals arriving in the block are recorded but raise nothing inside it: for steps
    that must not be split (replacing a folder by another is two renames)."""
    previous = _State.deferred
    _State.deferred = True
    try:
        yield
    finally:
        _State.deferred = previous


def stop_interrupting() -> None:
    """The command is stopping: no more repeated ``KeyboardInterrupt``s, further signals
    are only recorded (so that cleanup runs to its end)."""
    _State.quiet = True
    with _State.lock:
        _State.stop.set()
    t = _State.repeater
    if t is not None and t is not threading.current_thread():
        t.join(timeout=5)
    _State.repeater = None
    _flush_pending()


def _step() -> None:
    return None


def _flush_pending() -> None:
    # a signal simulated just before the repeater stopped (``_thread.interrupt_main``) runs
    # its (now quiet) handler when the interpreter next checks for pending calls: at a
    # Python function call or a backward jump, not in a C call (Python 3.13 no longer ran it
    # inside ``signal.getsignal``, so it ran later under the restored default handler and
    # the process died by SIGINT after printing 'interrupted').  Python-level calls make
    # sure it runs here, while the handler is still ours.
    for _ in range(200):
        _step()


def _unraisable(hook):
    def quiet_hook(unraisable):
        if _State.signum is not None:
            # a KeyboardInterrupt is recorded and raised again by the repeater and
            # check_interrupted; anything else is the cleanup of an object the interrupt
            # left half-built (a file whose constructor was cut short), abandoned with the run
            return
        hook(unraisable)

    return quiet_hook


@contextmanager
def interrupt_signals(*, sigterm: bool = True) -> Iterator[None]:
    """Handle SIGINT (and SIGTERM unless ``sigterm`` is False) as described in the module
    docstring for the block.

    The command line handles both; the Python API (:func:`smeintl.analyze`,
    ``Analysis.write_report``) only SIGINT, so that a host process keeps its own SIGTERM.
    A signal that is ignored (SIG_IGN, e.g. SIGINT of a background job) stays ignored.
    Nested uses share the outer one's state.  Outside the main thread (where Python
    cannot install signal handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer = _State.depth == 0
    if outer:
        _State.signum, _State.quiet = None, False
        _State.stop.clear()
    wanted = (signal.SIGINT, signal.SIGTERM) if sigterm else (signal.SIGINT,)
    previous = {s: signal.getsignal(s) for s in wanted}
    previous = {s: h for s, h in previous.items() if h is not signal.SIG_IGN}
    hook = sys.unraisablehook
    _State.depth += 1
    try:
        for s in previous:
            signal.signal(s, _handler)
        sys.unraisablehook = _unraisable(hook)
        yield
    finally:
        _State.depth -= 1
        if outer:
            stop_interrupting()
        for s, h in previous.items():
            if h is not None:  # None: a handler not installed from Python; nothing to restore
                signal.signal(s, h)
        sys.unraisablehook = hook
        if outer:
            _State.quiet = False
            _State.signum = None
