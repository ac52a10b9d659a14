"""The main job as a Python function: :func:`analyze` and its :class:`Analysis`.

``analyze`` runs the steps of ``smeintl run`` in memory: validate the data, the
deterministic ideal-profile method, the fit of the measurement model, its diagnostics,
the posterior predictive comparison and the robustness checks.  The returned
:class:`Analysis` holds every result; :meth:`Analysis.write_report` writes the report
folder that ``smeintl run`` writes (the command is ``analyze`` followed by
``write_report``), atomically: into a temporary folder next to the target, renamed at the
end, so a failed or interrupted write leaves no half report, and an existing folder is
replaced only with ``force=True``.

    >>> import smeintl
    >>> analysis = smeintl.analyze(quick=True)          # the bundled data and instrument
    >>> analysis.summary()                              # the headline findings
    >>> analysis.write_report("reports/first-look")

Nothing here imports the command line (:mod:`smeintl.cli`), and PyMC and ArviZ are
imported only when a function runs.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import UserError, check_interrupted, deferred_interrupts, interrupt_signals
from .resources import DEFAULT_DATA, DEFAULT_SPEC, bundled, resolve
from .spec_checks import SAMPLER_LEAST

if TYPE_CHECKING:  # pragma: no cover
    from .data import Survey
    from .spec import Spec

__all__ = [
    "analyze",
    "Analysis",
    "DEFAULT_SEED",
    "STEPS",
    "Steps",
    "atomic_folder",
    "ensure_new",
    "ensure_writable",
    "clean_stale_partials",
    "remove_partial_folders",
    "read_spec",
    "fit_settings",
]

#: the default random seed of the main job (``smeintl run --seed``)
DEFAULT_SEED = 20190601

#: the steps of the main job, in order (their names are the keys of the manifest's timings)
STEPS: tuple[str, ...] = (
    "validate the data",
    "deterministic ideal-profile method",
    "fit the measurement model",
    "diagnostics and parameter tables",
    "model checks",
    "posterior predictive comparison",
    "robustness checks",
    "write the report",
)


# ---------------------------------------------------------------------------
# building blocks: the atomic output folder and the step announcements
# ---------------------------------------------------------------------------
#: the file in a partial folder that names the process writing it (removed before the rename)
PARTIAL_MARKER = ".smeintl-partial.json"
#: partial folders without that file (older versions) count as stale after this many seconds
LEGACY_STALE_S = 600
#: the partial folders this process is writing (removed on an interruption by the command line)
_PARTIALS: set[Path] = set()


def ensure_new(target: str | Path, *, force: bool = False) -> Path:
    """Refuse ``target`` before any work is done: an existing folder unless ``force``, with
    ``force`` a folder that is not a report folder (one ``smeintl run`` wrote, or empty), a
    path that is a file, and a place that cannot be written.  Stale partial folders of
    interrupted runs next to it are removed (:func:`clean_stale_partials`)."""
    target = Path(target)
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise UserError(f"{target} is a file, not a report folder; choose another output folder "
                            f"(nothing was written or replaced)")
        if not force:
            raise UserError(f"{target} exists; pass --force to overwrite it (nothing was written)")
        if not _is_report_folder(target):
            raise UserError(f"{target} is not a report folder of smeintl run (no report manifest.json in it) "
                            f"and not empty; --force replaces only report folders; choose another output "
                            f"folder (nothing was written or replaced)")
    ensure_writable(target.parent, what=f"the report folder {target}")
    clean_stale_partials(target.parent)
    return target


def _is_report_folder(folder: Path) -> bool:
    try:
        if not any(folder.iterdir()):
            return True
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "smeintl_report" in manifest


def ensure_writable(folder: str | Path, *, what: str | None = None) -> None:
    """Refuse (:class:`UserError`) a ``folder`` that cannot be created or written into:
    checked on it, or on its nearest existing parent, before any work is done."""
    folder = Path(folder)
    what = what or str(folder)
    probe = folder
    while not (probe.exists() or probe.is_symlink()):
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"cannot write {what}: {probe} is a file, not a folder (nothing was written)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {what}: {probe} is not writable (permission denied or a read-only file "
                        f"system); choose another output folder (nothing was written)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep its folder
    return True


def clean_stale_partials(parent: str | Path, *, stream: Any = None) -> list[Path]:
    """Remove the partial folders (``.NAME.partial-*``) that interrupted runs left in
    ``parent`` and say so on ``stream`` (default sys.stderr); return them.

    A partial folder is stale when the process that wrote it (named in its
    ``.smeintl-partial.json``) no longer runs on this machine, or, without that file (older
    versions), when it was last changed more than 10 minutes ago.  Folders of running
    processes and of other machines are left alone.  A replaced report (``.NAME.old-*``)
    that a killed run left behind is removed when ``NAME`` exists, else renamed back to
    ``NAME``.
    """
    import socket

    parent = Path(parent)
    out = sys.stderr if stream is None else stream
    removed: list[Path] = []
    try:
        entries = [e for e in parent.iterdir() if e.name.startswith(".") and e.is_dir() and not e.is_symlink()]
    except OSError:
        return removed
    host = socket.gethostname()
    now = time.time()
    for e in sorted(entries):
        name = e.name
        if ".partial-" in name:
            try:
                info = json.loads((e / PARTIAL_MARKER).read_text(encoding="utf-8"))
                stale = info.get("host") == host and not _alive(int(info["pid"]))
            except (OSError, ValueError, KeyError, TypeError):
                try:
                    stale = now - e.stat().st_mtime > LEGACY_STALE_S
                except OSError:
                    stale = False
            if stale:
                shutil.rmtree(e, ignore_errors=True)
                if not e.exists():
                    removed.append(e)
                    print(f"note: removed {e}, a partial report folder left by an interrupted run",
                          file=out, flush=True)
        elif ".old-" in name:
            parts = name.split(".old-", 1)
            target = parent / parts[0][1:]
            pid = parts[1].split("-", 1)[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            if target.exists():
                shutil.rmtree(e, ignore_errors=True)
                print(f"note: removed {e}, a replaced report folder left by an interrupted run", file=out,
                      flush=True)
            else:
                e.rename(target)
                print(f"note: {target} restored from {e.name}: a run that was replacing it was killed",
                      file=out, flush=True)
            removed.append(e)
    return removed


def remove_partial_folders() -> None:
    """Remove the partial folders this process is writing (an interrupted command)."""
    for tmp in list(_PARTIALS):
        shutil.rmtree(tmp, ignore_errors=True)
        _PARTIALS.discard(tmp)


@contextmanager
def atomic_folder(target: str | Path, *, force: bool = False):
    """Yield a temporary folder that replaces ``target`` only when the block succeeds.

    The temporary folder (``.NAME.partial-PID-*`` next to ``target``) is removed when the
    block fails or is interrupted, also when the interruption was swallowed on the way
    (:func:`smeintl.errors.check_interrupted` before the rename); the two renames that
    replace an existing folder are not split by a signal.
    """
    import socket

    target = ensure_new(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
    _PARTIALS.add(tmp)
    try:
        (tmp / PARTIAL_MARKER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                      "started": time.time()}), encoding="utf-8")
        yield tmp
        check_interrupted()
        (tmp / PARTIAL_MARKER).unlink()
        tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is meant to be shared
    except BaseException:
        with deferred_interrupts():  # a repeated Ctrl-C must not cut the cleanup short
            shutil.rmtree(tmp, ignore_errors=True)
            _PARTIALS.discard(tmp)
        raise
    old = None
    with deferred_interrupts():
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
            target.rename(old)
        tmp.rename(target)
        _PARTIALS.discard(tmp)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


_STDOUT = object()  # "sys.stdout at the time of use" (pytest and notebooks replace it)


def _stream(log: Any):
    """The stream of the step announcements: ``True`` (or the default) sys.stdout at call
    time, ``False``/``None`` none, else the file-like object given."""
    if log is True or log is _STDOUT:
        return sys.stdout
    if log is None or log is False:
        return None
    return log


class Steps:
    """Announces each step, times it, and records the timings for the manifest.

    ``stream``: where the announcements go (default sys.stdout; None: nowhere, the steps
    are still timed); ``start``: the number of steps already done (a later part of the
    same job continues the count).
    """

    def __init__(self, total: int, stream: Any = _STDOUT, *, start: int = 0):
        self.total = total
        self.k = start
        self.timings: dict[str, float] = {}
        self.stream = _stream(stream)

    def say(self, text: str) -> None:
        """Print a line under the current step (nothing without a stream)."""
        if self.stream is not None:
            print(text, file=self.stream, flush=True)

    @contextmanager
    def step(self, name: str):
        self.k += 1
        self.say(f"[{self.k}/{self.total}] {name} ...")
        t0 = time.perf_counter()
        yield
        check_interrupted()  # a Ctrl-C that a library swallowed (the sampler returns its draws so far)
        dt = time.perf_counter() - t0
        self.timings[name] = round(dt, 3)
        self.say(f"[{self.k}/{self.total}] {name} done ({dt:.1f} s)")




def fit_settings(spec: Spec, *, quick: bool = False, draws: int | None = None, tune: int | None = None,
                 chains: int | None = None) -> dict[str, int]:
    """Draws, tuning steps and chains of the main fit: those given, else the spec's
    ``[sampler]`` settings (its ``quick_*`` ones for a quick run).

    Each must be a whole number, at least 1 (``tune``: 0); :class:`UserError` names the
    setting and where it came from otherwise (0 is refused, not replaced by the default).
    """
    s = spec.sampler
    given = {"draws": draws, "tune": tune, "chains": chains}
    out = {}
    for key, value in given.items():
        skey = f"quick_{key}" if quick else key
        v = value if value is not None else s.get(skey)
        least = SAMPLER_LEAST[key]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < least:
            origin = (f"--{key} / {key}=" if value is not None
                      else f"{skey} in the [sampler] table of the spec {spec.source}")
            raise UserError(f"{key} must be a whole number of at least {least}, got {v!r} (from {origin})")
        out[key] = int(v)
    return out


def read_spec(path: str | Path | None = None) -> Spec:
    """:func:`smeintl.spec.load_spec` with the file's own problems as a
    :class:`~smeintl.spec.SpecError` (a folder, a binary file, no permission) instead of
    an OSError or a decoding error; ``None``: the bundled instrument; a bare name of a
    bundled file not in the working folder: that file (:func:`smeintl.resources.resolve`)."""
    from .spec import SpecError, load_spec

    p = resolve(path) if path is not None else bundled(DEFAULT_SPEC)
    if p.is_dir():
        raise SpecError(str(p), ["is a folder, not a spec file (TOML, e.g. the bundled hitachi.toml)"])
    try:
        return load_spec(p)
    except UnicodeDecodeError as exc:
        raise SpecError(str(p), [f"not a text file (undecodable byte at position {exc.start}); a spec is a "
                                 f"TOML text file in UTF-8, e.g. the bundled hitachi.toml"]) from None
    except OSError as exc:
        raise SpecError(str(p), [f"cannot read the file ({exc.strerror or exc})"]) from None


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _resolve_spec(spec: Any, data: Any) -> Spec:
    from .data import Survey
    from .spec import Spec

    if spec is None:
        return data.spec if isinstance(data, Survey) else read_spec()
    if isinstance(spec, Spec):
        return spec
    if _is_path(spec):
        return read_spec(Path(spec))
    raise TypeError(f"spec must be a path or a Spec (smeintl.load_spec), not {type(spec).__name__}")


def _check_data(data: Any, spec: Spec) -> Any:
    """The survey itself or the path to read it from; refuse a survey of another spec."""
    from .data import Survey

    if data is None:
        return bundled(DEFAULT_DATA)
    if isinstance(data, Survey):
        if data.spec.hash != spec.hash:
            raise UserError(
                f"the survey ({data.source}) was validated against spec {data.spec.name} "
                f"({data.spec.source}, hash {data.spec.hash[:12]}), not the given spec {spec.name} "
                f"({spec.source}, hash {spec.hash[:12]}); pass spec=None or load the data with this spec"
            )
        return data
    if _is_path(data):
        return resolve(data)
    raise TypeError(f"data must be a path or a Survey (smeintl.load_survey), not {type(data).__name__}")


def _file(source: str) -> Path | None:
    """The file a spec or survey was read from; None for one built from text or a frame."""
    return None if not source or source.startswith("<") else Path(source)


# ---------------------------------------------------------------------------
# the analysis
# ---------------------------------------------------------------------------
def analyze(
    data: str | os.PathLike | Survey | None = None,
    *,
    spec: str | os.PathLike | Spec | None = None,
    seed: int = DEFAULT_SEED,
    quick: bool = False,
    group: bool = True,
    invariance: str = "none",
    robustness: bool = True,
    checks: bool = True,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    sampler: str | None = None,
    progress: bool = True,
    log: Any = True,
    sheet: int | str = 0,
    encoding: str | None = None,
) -> Analysis:
    """Run the main job on a survey and return its :class:`Analysis` (nothing is written).

    ``data``: a survey file (.csv, .xlsx, .sav) or a :class:`~smeintl.data.Survey`
    (default: the bundled ``hitachi_synthetic.csv``); ``spec``: an instrument spec
    file or a :class:`~smeintl.spec.Spec` (default: the survey's own spec when ``data`` is
    a Survey, else the bundled ``hitachi.toml``); a Survey validated against
    another spec is refused.  ``seed``: the seed of the fit and the robustness checks;
    ``quick``: the spec's short chains (``quick_*`` sampler settings) and only the
    robustness checks that do not refit the model; ``group``: the industry level of the
    model; ``invariance``: the item parameters across groups
    (:class:`~smeintl.measurement.MeasurementModel`, ``docs/invariance.md``); ``robustness``: run the robustness checks; ``checks``: the posterior predictive
    model checks (:func:`~smeintl.measurement.fit_checks.fit_checks`, ``docs/checks.md``); ``draws``, ``tune``, ``chains``,
    ``sampler``: override the spec's sampler settings; ``progress``: the samplers'
    progress bars; ``log``: where the step announcements go (True: stdout, False: nowhere,
    or a file-like object); ``sheet`` and ``encoding``: how to read the survey file (see
    :func:`smeintl.data.read_table`).

    With the robustness checks that refit the model (not ``quick``) on a machine with two or
    more cores, the model-comparison refits run in a second process while the model is fitted
    (:mod:`smeintl.robustness.ahead`; the same draws as refitting afterwards).

    Raises :class:`~smeintl.data.DataError`, :class:`~smeintl.spec.SpecError`,
    :class:`~smeintl.errors.UserError` (a mismatch of data and spec, a sampler setting
    out of range) for the user's mistakes, and lets KeyboardInterrupt through, also one
    that the samplers swallowed (they stop and return the draws so far): an interrupted
    analysis returns nothing (:func:`smeintl.errors.interrupt_signals`).
    """
    # what the run starts beside itself (the refits ahead) ends with it, however it ends
    with interrupt_signals(sigterm=False), ExitStack() as stack:
        return _analyze(stack, data, spec=spec, seed=seed, quick=quick, group=group, invariance=invariance,
                        robustness=robustness, checks=checks,
                        draws=draws, tune=tune, chains=chains, sampler=sampler, progress=progress, log=log,
                        sheet=sheet, encoding=encoding)


def check_invariance(spec: Spec, group: bool, invariance: str) -> None:
    """Refuse (:class:`~smeintl.errors.UserError`) an invariance level that compares groups
    when the model has no group level (``group=False`` or a spec without a group column)."""
    from .measurement import INVARIANCE

    if invariance not in INVARIANCE:
        raise UserError(f"invariance must be one of {', '.join(INVARIANCE)}, got {invariance!r}")
    if invariance in ("none", "scalar") or (group and spec.group_column is not None):
        return
    raise UserError(f"invariance {invariance!r} compares item parameters across groups: it needs the group level "
                    + ("(group=False / --no-group switches it off)" if not group else
                       f"(the spec {spec.name!r} has no group column; name one, e.g. --group-column)"))


def _analyze(stack: ExitStack, data, *, spec, seed, quick, group, invariance, robustness, checks, draws, tune, chains,
             sampler, progress, log, sheet, encoding) -> Analysis:
    from .data import load_survey
    from . import compat
    from .measurement import MeasurementModel, fit_checks, summarize_fit
    from .predictive import compare
    from .profiles import run_deterministic

    t_all = time.perf_counter()
    spec_obj = _resolve_spec(spec, data)
    source = _check_data(data, spec_obj)
    quick, robustness, group = bool(quick), bool(robustness), bool(group)
    check_invariance(spec_obj, group, invariance)
    fit_kw = fit_settings(spec_obj, quick=quick, draws=draws, tune=tune, chains=chains)
    steps = Steps(total=len(STEPS), stream=log)
    say = steps.say

    with steps.step(STEPS[0]):
        survey = (source if not isinstance(source, Path)
                  else load_survey(source, spec_obj, sheet=sheet, encoding=encoding))
        say(f"    {survey.n_firms} firms, {len(survey.group_names)} industries, "
            f"{int(survey.missing.sum())} missing answers")
    with steps.step(STEPS[1]):
        det = run_deterministic(survey)
    with steps.step(STEPS[2]):
        model = MeasurementModel(spec_obj, group=group, invariance=invariance)
        say(f"    {model.for_survey(survey).parameterization} parameterization, {fit_kw['chains']} chains x "
            f"{fit_kw['draws']} draws after {fit_kw['tune']} tuning, seed {seed}"
            + (" (quick run)" if quick else ""))
        ahead = None
        if robustness and not quick and "robustness" not in spec_obj.skipped_steps():
            from .robustness.ahead import start_if_worthwhile

            ahead = start_if_worthwhile(stack, model, survey, spec_obj, seed=seed, say=say)
        idata = model.fit(survey, progressbar=progress, random_seed=seed, sampler=sampler, **fit_kw)
    with steps.step(STEPS[3]):
        fit_summary = summarize_fit(idata, spec_obj)
        say("    " + fit_summary.diagnostics.text().replace("\n", "\n    "))
    checks_result = None
    with steps.step(STEPS[4]):
        if not checks:
            say("    skipped (model checks not requested)")
        elif not compat.has_group(idata, "posterior_predictive"):
            say("    skipped: the fit has no posterior predictive draws")
        else:
            checks_result = fit_checks(idata, spec_obj, seed=seed)
            say(f"    global {checks_result.global_check} PPP {checks_result.global_ppp:.3f}; "
                f"{len(checks_result.flagged_items())} item statistics and {len(checks_result.flagged_pairs())} "
                f"item pairs with PPP < {checks_result.alpha:g}")
    skipped = spec_obj.skipped_steps()
    comparison = None
    with steps.step(STEPS[5]):
        if "comparison" in skipped:
            say(f"    skipped: {skipped['comparison']}")
        else:
            comparison = compare(idata, survey, spec_obj)
    robustness_result = None
    with steps.step(STEPS[6]):
        if not robustness:
            say("    skipped (robustness checks not requested)")
        elif "robustness" in skipped:
            say(f"    skipped: {skipped['robustness']}")
        else:
            from .robustness import CHECKS, REFIT_CHECKS, run_robustness

            checks = [c for c in CHECKS if c not in REFIT_CHECKS] if quick else None
            if quick:
                say(f"    quick run: skipping the checks that refit the model ({', '.join(REFIT_CHECKS)})")
            robustness_result = run_robustness(idata, survey, spec_obj, checks=checks, seed=seed,
                                               progress=progress, ahead=ahead)

    return Analysis(
        spec=spec_obj,
        survey=survey,
        deterministic=det,
        idata=idata,
        fit_summary=fit_summary,
        comparison=comparison,
        robustness=robustness_result,
        checks=checks_result,
        seed=seed,
        quick=quick,
        group=group,
        fit_settings=dict(fit_kw, sampler=sampler),
        timings=dict(steps.timings),
        seconds=round(time.perf_counter() - t_all, 3),
        spec_path=_file(spec_obj.source),
        data_path=_file(survey.source),
        log=log,
    )


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything :func:`analyze` found.

    ``spec`` and ``survey`` (validated); ``deterministic`` the
    :class:`~smeintl.profiles.DeterministicResult`; ``idata`` the fit (an
    ``xarray.DataTree``, :mod:`smeintl.compat`) and ``fit_summary`` its parameter tables and ``diagnostics``;
    ``comparison`` the :class:`~smeintl.predictive.Comparison`; ``robustness`` the
    :class:`~smeintl.robustness.RobustnessResult` (None when not run); ``checks`` the
    :class:`~smeintl.measurement.FitChecks` (None when not run); ``seed``,
    ``quick``, ``group`` and ``fit_settings`` (draws, tune, chains, sampler as given) the
    settings; ``timings`` seconds per step; ``seconds`` the whole analysis;
    ``spec_path`` / ``data_path`` the files read (None for objects built in memory).

    :meth:`summary` (DataFrame of the headline findings), :meth:`text` (prose),
    :meth:`to_dict` (JSON-ready) and :meth:`write_report` (the ``smeintl run`` folder).
    """

    spec: Spec
    survey: Survey
    deterministic: Any
    idata: Any
    fit_summary: Any
    comparison: Any
    robustness: Any
    seed: int
    quick: bool
    group: bool
    fit_settings: dict[str, Any]
    timings: dict[str, float]
    seconds: float
    spec_path: Path | None = None
    data_path: Path | None = None
    checks: Any = None
    log: Any = field(default=True, repr=False)

    # ---- views -------------------------------------------------------------
    @property
    def diagnostics(self):
        """The fit's convergence diagnostics (``.failed``, ``.text()``, ``.to_dict()``)."""
        return self.fit_summary.diagnostics

    @property
    def failed(self) -> bool:
        """True when the fit failed its convergence diagnostics."""
        return bool(self.diagnostics.failed)

    def summary(self) -> Any:
        """The headline findings: one row per finding (index ``finding``) with its title,
        the deterministic method's verdict, the posterior and replicated probabilities and
        the verdict (:meth:`Comparison.summary <smeintl.predictive.Comparison.summary>`),
        and, when the robustness checks ran, ``robustness``: the variants whose verdict
        equals their baseline's, of those evaluated."""
        if self.comparison is None:
            import pandas as pd

            return pd.DataFrame(columns=["title", "deterministic", "posterior_probability",
                                         "replicated_probability", "verdict"],
                                index=pd.Index([], name="finding"))
        table = self.comparison.summary()
        if self.robustness is not None:
            agreement = self.robustness.summary()["agreement"]
            table["robustness"] = [agreement.get(k) for k in table.index]
        return table

    def text(self) -> str:
        """The analysis in prose: data, the deterministic types, the fit's diagnostics,
        the findings with their probabilities and, when run, the robustness summary."""
        s, sv = self.spec, self.survey
        fs = self.fit_settings
        L = [
            f"Analysis of {sv.source} ({sv.n_firms} firms) with the instrument {s.name} ({s.source}); "
            f"seed {self.seed}" + ("; quick run: short chains, not for conclusions" if self.quick else ""),
            "",
        ]
        t = self.deterministic.summary["types"]
        skipped = s.skipped_steps()
        if "typology" in skipped:
            L.append(f"Deterministic method: indices and flags only; {skipped['typology']}.")
        else:
            parts = []
            for n in t["names"]:
                share = t["shares"][n]
                parts.append(f"{n} {t['counts'][n]}" + ("" if share is None else f" ({100 * share:.0f}%)"))
            shares = ", ".join(parts)
            L.append(f"Deterministic method (nearest ideal type, {t['n_typed']} firms typed): {shares}.")
        L.append("")
        L.append(
            f"Measurement model: {self.idata.attrs.get('parameterization')} parameterization, "
            f"{fs['chains']} chains x {fs['draws']} draws after {fs['tune']} tuning, "
            f"sampler {self.idata.attrs.get('sampler')}."
        )
        L.append(self.diagnostics.text())
        if self.checks is not None:
            c = self.checks
            L.append(f"Model checks: global {c.global_check} PPP {c.global_ppp:.3f}; {len(c.flagged_items())} item "
                     f"statistics and {len(c.flagged_pairs())} item pairs with PPP < {c.alpha:g} (details in "
                     ".checks.text()).")
        L.append("")
        if self.comparison is None:
            L.append(f"Comparison: not run; {skipped.get('comparison', 'not requested')}.")
        else:
            L.append(self.comparison.text())
        L.append("")
        if self.robustness is None:
            L.append("Robustness checks: not run" + (f"; {skipped['robustness']}." if "robustness" in skipped
                                                     else "."))
        else:
            checks = self.robustness.checks
            passed = sum(c.passed is True for c in checks)
            not_passed = [c.name for c in checks if c.passed is False]
            L.append(
                f"Robustness checks: {len(checks)} run, {passed} passed"
                + (f", not passed: {', '.join(not_passed)}" if not_passed else "")
                + " (per finding: the column 'robustness' of summary(); details in .robustness.text())."
            )
        return "\n".join(L)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: settings, provenance, diagnostics and each result's
        ``to_dict()`` (without the per-firm tables and the draws)."""
        rob = self.robustness
        if rob is None:
            rob_d = None
        elif hasattr(rob, "to_dict"):
            rob_d = rob.to_dict()
        else:
            rob_d = {"summary": rob.summary().reset_index().to_dict(orient="records")}
        d = {
            "spec": {"name": self.spec.name, "source": self.spec.source, "hash": self.spec.hash},
            "data": {"source": self.survey.source, "hash": self.survey.data_hash, "n_firms": self.survey.n_firms},
            "seed": self.seed,
            "quick": self.quick,
            "group": self.group,
            "fit_settings": dict(self.fit_settings),
            "sampler": self.idata.attrs.get("sampler"),
            "parameterization": self.idata.attrs.get("parameterization"),
            "diagnostics": self.diagnostics.to_dict(),
            "diagnostics_verdict": "FAILED" if self.failed else "passed",
            "deterministic": self.deterministic.to_dict(),
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "robustness": rob_d,
            "checks": None if self.checks is None else self.checks.to_dict(),
            "skipped": self.spec.skipped_steps(),
            "timings_s": dict(self.timings),
            "seconds": self.seconds,
        }
        return _json_safe(d)

    def manifest(self) -> dict[str, Any]:
        """The provenance of the analysis as written to ``manifest.json`` (timings of the
        analysis's steps; :meth:`write_report` adds its own and the total)."""
        from .measurement import versions

        return {
            "smeintl_report": 1,
            "spec_source": self.spec.source,
            "spec_hash": self.spec.hash,
            "spec_text": self.spec.text,
            "data_source": self.survey.source,
            "data_hash": self.survey.data_hash,
            "seed": self.seed,
            "quick": self.quick,
            "sampler": self.idata.attrs.get("sampler"),
            "parameterization": self.idata.attrs.get("parameterization"),
            "fit_settings": dict(self.fit_settings),
            "diagnostics": self.diagnostics.to_dict(),
            "diagnostics_verdict": "FAILED" if self.failed else "passed",
            "robustness": "skipped" if self.robustness is None else "run",
            "checks": "skipped" if self.checks is None else "run",
            "skipped": self.spec.skipped_steps(),
            "versions": versions(),
            "timings_s": dict(self.timings),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    # ---- the report folder -------------------------------------------------
    def write_report(self, folder: str | Path, *, force: bool = False, log: Any = None) -> Path:
        """Write the report folder of ``smeintl run`` into ``folder`` and return its path:
        ``index.html``, ``report.md`` and ``figures/``, the deterministic ``firms.csv`` and
        ``summary.json``, the fit ``fit.nc`` and its tables, the comparison's files,
        ``robustness/`` (when run) and ``manifest.json``.  Atomic: written to a temporary
        folder next to it and renamed at the end; an existing ``folder`` is refused
        (:class:`~smeintl.errors.UserError`) unless ``force``.  ``log``: where the step
        announcement goes (default: as for :func:`analyze`)."""
        with interrupt_signals(sigterm=False):
            return self._write_report(Path(folder), force=force, log=log)

    def _write_report(self, target: Path, *, force: bool, log: Any) -> Path:
        from .measurement import save_fit
        from .predictive import write_comparison
        from .report import write_report

        steps = Steps(total=len(STEPS), stream=self.log if log is None else log, start=len(STEPS) - 1)
        with atomic_folder(target, force=force) as tmp:
            with steps.step(STEPS[-1]):
                det = self.deterministic
                det.firms.to_csv(tmp / "firms.csv", index=False)
                (tmp / "summary.json").write_text(json.dumps(det.summary, indent=2, default=str) + "\n")
                save_fit(self.idata, tmp / "fit.nc")
                _write_tables(tmp, self.fit_summary)
                if self.comparison is not None:
                    write_comparison(self.comparison, tmp)
                if self.checks is not None:
                    self.checks.write_tables(tmp / "checks")
                if self.robustness is not None:
                    from .robustness import write_robustness

                    write_robustness(self.robustness, tmp / "robustness")
                manifest = self.manifest()
                write_report(tmp, spec=self.spec, survey=self.survey, det=det, idata=self.idata,
                             fit_summary=self.fit_summary, comparison=self.comparison,
                             robustness=self.robustness, checks=self.checks, manifest=manifest,
                             quick=self.quick)
            written = steps.timings[STEPS[-1]]
            manifest["timings_s"] = dict(self.timings) | steps.timings | {"total": round(self.seconds + written, 3)}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        return target


def _write_tables(folder: Path, fit_summary) -> None:
    fit_summary.to_csv(folder / "parameters.csv")  # every parameter, one row each (lavaan-style)
    fit_summary.loadings.to_csv(folder / "loadings.csv")
    fit_summary.cutpoints.to_csv(folder / "cutpoints.csv", index=False)
    fit_summary.correlation.to_csv(folder / "latent_correlation.csv", index=False)
    fit_summary.group_means.to_csv(folder / "industry_means.csv", index=False)
    fit_summary.latent_scores.to_csv(folder / "latent_scores.csv", index=False)
    fit_summary.reliability.to_csv(folder / "reliability.csv", index=False)


def _json_safe(x: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays to Python, NaN and infinities to None."""
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        return _json_safe(x.tolist())
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    try:
        import pandas as pd

        if pd.isna(x):
            return None
    except (TypeError, ValueError):
        pass
    return str(x)
