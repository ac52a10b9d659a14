"""The model-comparison refits of ``smeintl run`` started ahead, in a second process.

The refits of ``model_comparison`` (:func:`.refit.comparison_plan`) depend on the data, the
specs, the seed, the refit settings and what the fit will be (its spec, group level,
invariance and parameterization), not on the fit's draws.  :func:`start` runs them in a
second process while the main one fits the model: each compile of a model structure keeps
one core busy for 10-15 s, and the main fit's compile leaves the other core idle.  The second
process runs at a lower priority (:data:`NICE`), so the main fit keeps the cores it would have
alone and the refits take what it leaves.
:meth:`Ahead.fits` hands the refits to the check when the fit being checked is the one they
were started for (the same attrs, data, specs, seed, settings and models; otherwise the check
refits in its own process, as without them).  The refits are the ones the check would make:
the same seeds give the same draws in either process (``tests/test_ahead.py``).

:meth:`Ahead.close` stops the second process and removes its folder; an interrupted or failed
run calls it on the way out.  The second process ignores Ctrl-C (its parent stops it), writes
nothing to the console, and stops by itself between two refits once its parent is gone.  It is
a new interpreter that imports smeintl from the parent's ``sys.path`` and nothing else: unlike
:mod:`multiprocessing`'s spawn, it does not run the caller's script again, so a script that
calls :func:`smeintl.analyze` needs no ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

__all__ = ["Ahead", "start", "start_if_worthwhile", "fit_attrs_ahead", "KEYS"]

#: the fit's attrs on which the refits depend
KEYS = ("spec_text", "group", "invariance", "parameterization")
#: the second process's niceness (added to the main process's)
NICE = 10


def fit_attrs_ahead(model, survey) -> dict[str, Any]:
    """What a fit of ``model`` (a :class:`~smeintl.measurement.MeasurementModel`) on ``survey``
    will record under :data:`KEYS`, before it is made."""
    m = model.for_survey(survey)
    a = {"spec_text": m.spec.text, "group": int(m.group), "parameterization": m.parameterization}
    if m.invariance != "none":
        a["invariance"] = m.invariance
    return a


def _key(attrs: Mapping[str, Any], survey, spec, seed, refit_kwargs, models) -> str:
    return json.dumps({"attrs": {k: str(attrs.get(k)) for k in KEYS}, "data": survey.data_hash, "spec": spec.hash,
                       "seed": int(seed), "refit": {k: str(v) for k, v in sorted(dict(refit_kwargs or {}).items())},
                       "models": list(models)}, sort_keys=True)


def _context(attrs, survey, spec, seed, refit_kwargs, models):
    from .context import RobustnessContext

    # the refits read the fit's attrs only: a stand-in for the fit that carries them
    return RobustnessContext(idata=SimpleNamespace(attrs=dict(attrs)), survey=survey, spec=spec, seed=int(seed),
                             refit_kwargs=dict(refit_kwargs or {}), progress=False, models=tuple(models))


#: the second process's program: the parent's import path, then :func:`_run`
_CHILD = ("import json, sys; sys.path[:] = json.loads(sys.argv[3]); "
          "from smeintl.robustness.ahead import _run; _run(sys.argv[1], int(sys.argv[2]))")


def _run(folder: str, parent: int) -> None:
    """The second process: every refit of the plan (its inputs in ``inputs.pickle``), each
    written to ``<model>.nc`` (or its error to ``<model>.json``), then ``done``."""
    import pickle
    import warnings

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (ignored from the start, see start): the parent stops this one
    # below the main process: its fit keeps the cores it would have alone, these refits take
    # what it leaves (its compile leaves a core idle, and so do most of the steps after it)
    if hasattr(os, "nice"):  # POSIX
        os.nice(NICE)
    warnings.simplefilter("ignore")
    from ..measurement.io import save_fit
    from .refit import comparison_plan, refit_offsets

    out = Path(folder)
    ctx = _context(*pickle.loads((out / "inputs.pickle").read_bytes()))
    plan, _ = comparison_plan(ctx)
    offset = refit_offsets(plan)
    for m, (surv, sv, group) in plan:
        if os.getppid() != parent:  # the parent is gone: nobody will read these
            shutil.rmtree(out, ignore_errors=True)
            return
        if not _claim(out, m):  # the check took it (Ahead.take): it refits it in its own process
            continue
        t0 = time.perf_counter()
        try:
            fit = ctx.refit(sv, surv, group=group, offset=offset[m])
            save_fit(fit, out / f"{m}.nc")
            info = {"seconds": time.perf_counter() - t0}
        except Exception as exc:  # noqa: BLE001 - the check refits it in its own process and says why it failed
            info = {"error": f"{type(exc).__name__}: {exc}"}
        (out / f"{m}.json").write_text(json.dumps(info))
    (out / "done").write_text("")


def _claim(folder: Path, model: str) -> bool:
    """Claim ``model``'s refit for the calling process: True for the first process to ask."""
    try:
        os.close(os.open(Path(folder) / f"{model}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


class Ahead:
    """The refits running (or run) in a second process; see the module docstring."""

    def __init__(self, process: subprocess.Popen | None, folder: Path, key: str):
        self.process, self.folder, self.key = process, Path(folder), key

    def matches(self, ctx) -> bool:
        """Whether the refits were started for ``ctx``'s fit (and the process was started)."""
        attrs = getattr(ctx.idata, "attrs", None) or {}
        return self.process is not None and self.key == _key(attrs, ctx.survey, ctx.spec, ctx.seed, ctx.refit_kwargs,
                                                             ctx.models)

    def take(self, model: str) -> bool:
        """Take ``model``'s refit from the second process if it has not started it (True: the
        caller refits it, and the second process skips it).  The check takes the refits left
        at the end of the plan while the second process works through it from the front, so
        that the two processes share the refits that remain once the fit is done."""
        return self.process is not None and self.folder.is_dir() and _claim(self.folder, model)

    def fits(self, ctx, models: Sequence[str]) -> dict[str, tuple[Any, float]]:
        """``{model: (fit, seconds)}`` of the refits made for ``ctx``'s fit (waits for the second
        process); empty when they were made for another fit, or when the process failed.
        A model whose refit failed there, or that was taken (:meth:`take`), is left out."""
        from .. import compat

        if not self.matches(ctx):
            return {}
        self.process.wait()
        if not (self.folder / "done").exists():
            return {}
        got = {}
        for m in models:
            info_path, fit_path = self.folder / f"{m}.json", self.folder / f"{m}.nc"
            if fit_path.exists() and info_path.exists():
                got[m] = (compat.read_fit(str(fit_path)), float(json.loads(info_path.read_text())["seconds"]))
        return got

    def close(self) -> None:
        """Stop the second process (if it still runs) and remove its folder."""
        p, self.process = self.process, None
        if p is not None:
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "Ahead":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start(model, survey, spec, *, seed: int, refit_kwargs: Mapping[str, Any] | None = None,
          models: Sequence[str] | None = None) -> Ahead:
    """Start the model-comparison refits of a fit of ``model`` on ``survey`` (evaluated with
    ``spec``) in a second process; see the module docstring."""
    import pickle

    from .context import MODEL_VARIANTS

    models = tuple(MODEL_VARIANTS if models is None else models)
    attrs = fit_attrs_ahead(model, survey)
    folder = Path(tempfile.mkdtemp(prefix="smeintl-refits-"))
    try:  # the inputs go through a file: start() then only sends a path, and returns at once
        (folder / "inputs.pickle").write_bytes(
            pickle.dumps((attrs, survey, spec, int(seed), dict(refit_kwargs or {}), models)))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    argv = [sys.executable, "-c", _CHILD, str(folder), str(os.getpid()), json.dumps(sys.path)]
    # started with Ctrl-C ignored, so that the new interpreter ignores it from its first line
    # (a Ctrl-C during its imports would otherwise print a traceback); the parent's handler
    # is back right after (a Ctrl-C in those milliseconds is lost)
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, close_fds=True)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        if main and before is not None:
            signal.signal(signal.SIGINT, before)
    return Ahead(process, folder, _key(attrs, survey, spec, seed, refit_kwargs, models))


def start_if_worthwhile(stack, model, survey, spec, *, seed: int, say) -> Ahead | None:
    """:func:`start` for ``smeintl run``, on two or more cores and enough firms to refit, its
    :meth:`Ahead.close` on ``stack`` (an :class:`contextlib.ExitStack`); ``say`` tells the
    console.  None where it is not started: the check then refits after the fit."""
    from .context import MIN_FIRMS

    if (os.cpu_count() or 1) < 2 or survey.n_firms < MIN_FIRMS["model"]:
        return None
    try:
        ahead = stack.enter_context(start(model, survey, spec, seed=seed))
    except OSError as exc:  # no second process here: the check refits afterwards, as without one
        say(f"    (the model-comparison refits will run after the fit: no second process, {exc})")
        return None
    say("    the model-comparison refits run meanwhile in a second process")
    return ahead
