"""Command line: ``smeintl <command>``.

One exception boundary (:func:`main`): user mistakes (bad data, bad spec, a fit that
does not match, an output that exists or cannot be written, a number out of range)
print one clear message on stderr and exit with status 2, without a traceback and
without writing anything; Ctrl-C or SIGTERM at any moment prints "interrupted" and
exits with status 130, leaving no partial output; a closed pipe (``smeintl validate
data.csv | head -1``) ends quietly (status 141); anything else is a bug in smeintl:
a traceback, the line "this is a bug in smeintl; please report it", status 1
(:mod:`smeintl.exits`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

from .api import DEFAULT_SEED, check_invariance, ensure_writable, fit_settings, read_spec
from .errors import UserError, check_interrupted, interrupt_signals
from .exits import (
    EXIT_BROKEN_PIPE,
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    handle,
    quiet_foreign_warnings,
)
from .resources import DEFAULT_DATA, DEFAULT_SPEC, bundled, resolve
from .spec_checks import MAX_SEED


__all__ = ["main", "build_parser", "UserError", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE", "EXIT_BUG"]


def _spec(path: str | None):
    return read_spec(path)


def _spec_of(args):
    """The instrument of a command that reads a data file: built from ``--model`` and the
    data (the inferred scales printed on stderr), else read from ``--spec``."""
    if getattr(args, "model", None) is None:
        return _spec(args.spec)
    return _model_spec(args, show=sys.stderr).spec


def _model_file(arg: str) -> Path | None:
    """The file ``--model`` names, None when it is the syntax itself."""
    try:
        p = Path(arg)
        return p if p.is_file() else None
    except (OSError, ValueError):
        return None


def _model_spec(args, show=None):
    """The spec built from ``--model`` (with ``--scale``, ``--id-column``, ``--group-column``)
    on the data file (:func:`smeintl.syntax.spec_from_model`); the table of the items'
    scales is printed on ``show`` (a stream; None: not printed)."""
    from .data import read_table
    from .syntax import format_scales, load_model_text, spec_from_model

    data = resolve(args.data) if args.data else bundled(DEFAULT_DATA)
    model_file = _model_file(args.model)
    text = load_model_text(args.model)
    frame = read_table(data, **_read_options(args))
    built = spec_from_model(
        text, frame, scales=args.scale or (), name=model_file.stem if model_file else "model",
        id_column=args.id_column, group_column=args.group_column,
        source=f"<model {model_file}>" if model_file else "<model syntax>",
        model_source=str(model_file) if model_file else "--model",
    )
    if show is not None:
        print(f"scales of the items, inferred from {data} (give one with --scale ITEM=SCALE[:RANGE], e.g. "
              f"x5=likert:1-7):\n{format_scales(built.scales)}", file=show, flush=True)
    return built


def _read_options(args) -> dict:
    """``sheet`` and ``encoding`` of the data file, from --sheet and --encoding."""
    sheet = getattr(args, "sheet", None)
    return {"sheet": 0 if sheet is None else sheet, "encoding": getattr(args, "encoding", None)}


def _survey(path: str | None, spec, args=None):
    from .data import load_survey

    return load_survey(resolve(path) if path else bundled(DEFAULT_DATA), spec, **(_read_options(args) if args else {}))


def _check_out_folder(out: Path, force: bool, what: str) -> None:
    """Before any work: refuse an output folder that is a file, that exists with files in it
    (without --force), or that cannot be written."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UserError(f"{out} is a file, not a folder; give a folder for --out (nothing was written)")
        if any(out.iterdir()) and not force:
            raise UserError(f"{out} exists and is not empty; pass --force to overwrite the {what} there")
    ensure_writable(out, what=f"the {what} into {out}")


def _prepare_out(out: Path, force: bool, what: str) -> None:
    """Refuse to write into an existing, non-empty output folder without --force; create it."""
    _check_out_folder(out, force, what)
    check_interrupted()
    out.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def _write_csv(frame, path: Path, **kw) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, **kw)
    tmp.replace(path)


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
def cmd_validate(args) -> int:
    from .data import DataError, read_table, validate_frame

    spec = _spec_of(args)
    path = resolve(args.data)  # a bare bundled name: the bundled file
    try:
        df = read_table(path, **_read_options(args))
    except DataError as exc:
        raise UserError(str(exc)) from None
    problems = validate_frame(df, spec, source=str(path))
    if problems:
        print(f"{path}: {len(problems)} problem(s) found", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return EXIT_USAGE
    survey = _survey(path, spec, args)
    miss = survey.missing
    print(f"{path}: valid for spec {spec.name} ({survey.n_firms} firms, {len(spec.items)} items)")
    print(f"  missing answers: {int(miss.sum())} of {miss.size * survey.n_firms} cells")
    for name, n in miss[miss > 0].items():
        print(f"    {name}: {int(n)}")
    return 0


def cmd_indices(args) -> int:
    from .profiles import run_deterministic

    spec = _spec_of(args)
    out = Path(args.out or f"reports/{Path(args.data).stem}-indices")
    _check_out_folder(out, args.force, "indices")  # before the work
    survey = _survey(args.data, spec, args)
    res = run_deterministic(survey, seed=args.seed)
    _prepare_out(out, args.force, "indices")
    _write_csv(res.firms, out / "firms.csv", index=False)
    _write_json(out / "summary.json", res.summary)
    print(res.summary_text())
    print(f"\nwrote {out / 'firms.csv'} and {out / 'summary.json'}")
    return 0


def _fit_kwargs(args, spec) -> dict:
    kw = fit_settings(spec, quick=getattr(args, "quick", False), draws=args.draws, tune=args.tune, chains=args.chains)
    return dict(kw, random_seed=args.seed, sampler=args.sampler)


def cmd_fit(args) -> int:
    from .measurement import MeasurementModel, save_fit, summarize_fit

    spec = _spec_of(args)
    out = Path(args.out or f"{Path(args.data).stem}-fit.nc")
    if out.is_dir():
        raise UserError(f"{out} is a folder; give a file name for --out (e.g. {out / 'fit.nc'})")
    if out.exists() and not args.force:
        raise UserError(f"{out} exists; pass --force to overwrite it")
    ensure_writable(out.parent, what=f"the fit file {out}")
    kw = _fit_kwargs(args, spec)
    survey = _survey(args.data, spec, args)
    check_invariance(spec, not args.no_group, args.invariance)
    try:
        model = MeasurementModel(spec, group=not args.no_group, invariance=args.invariance,
                                 parameterization=args.parameterization)
    except ValueError as exc:  # a parameterization the spec cannot take
        raise UserError(f"--parameterization {args.parameterization}: {exc}") from None
    print(
        f"fitting {spec.name} to {survey.n_firms} firms ({model.for_survey(survey).parameterization} parameterization, "
        f"{kw['chains']} chains x {kw['draws']} draws after {kw['tune']} tuning, seed {args.seed})",
        flush=True,
    )
    t0 = time.perf_counter()
    idata = model.fit(survey, progressbar=not args.no_progress, **kw)
    wall = time.perf_counter() - t0
    check_interrupted()  # the samplers return the draws so far on Ctrl-C: never saved as a fit
    save_fit(idata, out, overwrite=args.force)
    summ = summarize_fit(idata, spec)
    print(summ.diagnostics.text())
    print(f"\nwall time {wall:.1f} s; wrote {out}")
    if summ.diagnostics.failed:
        print("WARNING: the fit FAILED its diagnostics; its estimates are not reliable.", file=sys.stderr)
    return 0


def cmd_summary(args) -> int:
    from .measurement import load_fit, summarize_fit

    if args.checks and args.format == "csv":
        raise UserError("--checks goes with --format text or json (the csv is the parameter table; "
                        "'smeintl check FIT --format csv' gives the checks' table)")
    idata, model = load_fit(args.fit)
    summ = summarize_fit(idata, model.spec, prob=args.prob, loo=not args.no_loo, delta=args.delta)
    checks = _fit_checks_of(args, idata, model.spec, prob=args.prob) if args.checks else None
    if args.format == "csv":
        sys.stdout.write(summ.to_csv())
        return 0
    if args.format == "json":
        if checks is None:
            print(summ.to_json(indent=1))
        else:
            print(json.dumps(summ.to_dict() | {"checks": checks.to_dict()}, indent=1, allow_nan=False))
        return 0
    print(f"fit {args.fit}: spec {model.spec.name}, data {idata.attrs.get('data_source')}, "
          f"seed {idata.attrs.get('random_seed')}, sampler {idata.attrs.get('sampler')}")
    print(summ.text())
    if checks is not None:
        print("\n" + checks.text())
    return 0


def _fit_checks_of(args, idata, spec, **kw):
    """The model checks of a loaded fit; a fit without its posterior predictive draws is the
    user's file, refused with its name."""
    from .measurement import fit_checks

    try:
        return fit_checks(idata, spec, seed=args.seed, **kw)
    except ValueError as e:
        raise UserError(f"{args.fit}: {e}") from None


def cmd_check(args) -> int:
    """``smeintl check FIT``: the posterior predictive model checks of a saved fit
    (``docs/checks.md``); ``--out`` also writes their tables and figures."""
    from .measurement import load_fit

    out = Path(args.out) if args.out else None
    if out is not None:
        _check_out_folder(out, args.force, "model checks")  # before the work
    idata, model = load_fit(args.fit)
    checks = _fit_checks_of(args, idata, model.spec, max_draws=args.max_draws, prob=args.prob, alpha=args.alpha)
    if out is not None:
        from . import plots

        _prepare_out(out, args.force, "model checks")
        checks.write_tables(out)
        for name, draw in plots.CHECK_FIGURES.items():
            draw(checks).savefig(out / f"{name}.png", dpi=110)
    if args.format == "csv":
        sys.stdout.write(checks.summary().to_csv(index=False))
    elif args.format == "json":
        print(checks.to_json(indent=1))
    else:
        print(f"fit {args.fit}: spec {model.spec.name}, data {idata.attrs.get('data_source')}")
        print(checks.text())
        if out is not None:
            print(f"\nwrote {out}: summary.csv, global.csv, items.csv, pairs.csv and three figures")
    return 0


def cmd_compare_fits(args) -> int:
    from .measurement import compare_models, load_fit

    if len(args.fits) < 2:
        raise UserError("compare-fits needs two or more fit files")
    names = [Path(p).stem for p in args.fits]
    if len(set(names)) < len(names):  # the same stem in two folders: the paths name them
        names = list(args.fits)
    table = compare_models({n: load_fit(p)[0] for n, p in zip(names, args.fits)})
    if args.format == "csv":
        sys.stdout.write(table.to_csv(index_label="model"))
    elif args.format == "json":
        print(table.reset_index(names="model").to_json(orient="records", indent=1))
    else:
        print("leave-one-firm-out LOO, latent scores integrated out; elpd_diff: how far behind the best "
              "(differences under about 2 dse do not separate the models)")
        print(table.to_string(float_format=lambda x: f"{x:.2f}"))
    return 0


def cmd_prior_check(args) -> int:
    import numpy as np

    from .indices import index_arrays
    from .measurement import MeasurementModel

    spec = _spec_of(args)
    survey = _survey(args.data, spec, args)
    model = MeasurementModel(spec, group=not args.no_group)
    pp = model.prior_predictive(survey, draws=args.draws, random_seed=args.seed)
    Y = pp["items"]
    obs = survey.items[list(spec.item_names)].to_numpy(dtype=float)
    print(f"priors of {spec.name} (docs/priors.md; override in the spec's [priors] table):")
    rows = spec.prior_table()
    w = [max(len(r[k]) for r in rows) for k in range(3)]
    for key, dist, what, used in rows:
        print(f"  {key:{w[0]}s}  {dist:{w[1]}s}  {what:{w[2]}s}  [{used}]")
    std = model.for_survey(survey)._standardization(survey)
    if std is not None:
        cont = [it.name for it in spec.items if it.family.linear]
        print("  continuous items are modelled on (answer - mean) / sd with their sample mean and sd:")
        for name, m, sd in zip(cont, std["mean"], std["sd"]):
            print(f"    {name:24s} mean {m:10.4g}  sd {sd:10.4g}")
    print(f"\nprior predictive check: {args.draws} draws from the priors of {spec.name}, {survey.n_firms} firms")
    print(f"{'item':26s} {'scale':9s} {'obs mean':>9s} {'prior 5%':>9s} {'median':>9s} {'95%':>9s}  {'obs at min':>10s} {'prior at min (90%)':>20s}")
    lo = np.array([i.min for i in spec.items])
    for k, it in enumerate(spec.items):
        m = np.nanmean(Y[..., k], axis=-1)
        at_min = (Y[..., k] <= lo[k]).mean(-1)
        q = np.quantile(m, [0.05, 0.5, 0.95])
        qa = np.quantile(at_min, [0.05, 0.95])
        o = obs[:, k]
        print(f"{it.name:26s} {it.scale:9s} {np.nanmean(o):9.2f} {q[0]:9.2f} {q[1]:9.2f} {q[2]:9.2f}  "
              f"{np.nanmean(o <= lo[k]):10.2f} {qa[0]:9.2f} - {qa[1]:.2f}")
    idx = index_arrays(Y, spec)["indices"]
    print("\nimplied construct indices (share of firms at or above the threshold):")
    for c, name in enumerate(spec.construct_names):
        share = np.nanmean(idx[..., c] >= spec.thresholds[name], axis=-1)
        q = np.quantile(share, [0.05, 0.5, 0.95])
        print(f"  {name:14s} 5% {q[0]:.2f}  median {q[1]:.2f}  95% {q[2]:.2f}")
    print("\nThe priors should allow the observed values without concentrating on them.")
    return 0


def _fit_and_survey(args):
    """Load a fit and its survey (``--data`` or the file it was made on); refuse a mismatch.

    Data whose header lacks the columns of the fit's own instrument are blamed on the fit
    (a fit of another spec), not on the data.
    """
    from .data import read_table, survey_from_frame
    from .measurement import FitError, load_fit

    idata, model = load_fit(args.fit)
    spec = model.spec
    data = args.data or idata.attrs.get("data_source")
    if not data:
        raise FitError(f"{args.fit}: the fit does not name the data it was made on; give them with --data")
    frame = read_table(data, **_read_options(args))
    header = {str(c).strip() for c in frame.columns}
    ids = [spec.id_column] if spec.id_declared or spec.id_column in header else []  # else: numbered by row
    required = [*ids, *([spec.group_column] if spec.group_column else []), *spec.item_names]
    lacking = [c for c in required if c not in header]
    if args.data and lacking:
        shown = ", ".join(lacking[:6]) + (f" and {len(lacking) - 6} more" if len(lacking) > 6 else "")
        raise FitError(
            f"{args.fit}: the fit was made with the instrument {spec.name!r} (the spec stored in the fit), "
            f"and {data} lacks its columns {shown}: the fit is not one of these data; give the fit made on "
            f"{data}, or refit on them (smeintl fit {data} --spec SPEC)"
        )
    survey = survey_from_frame(frame, spec, source=str(data))
    if survey.data_hash != idata.attrs.get("data_hash"):
        raise FitError(
            f"{args.fit}: the fit was made on different data (stored data hash "
            f"{str(idata.attrs.get('data_hash'))[:12]}, given {survey.source} hash {survey.data_hash[:12]}); "
            f"refit on this data"
        )
    return idata, model, survey


def _step_runs(spec, step: str, fit: str) -> None:
    """Refuse, before any folder is made, a step that the fit's spec leaves out."""
    why = spec.skipped_steps().get(step)
    if why:
        raise UserError(f"{fit}: no {'comparison' if step == 'comparison' else 'robustness checks'} to run: "
                        f"{why}; nothing was written")


def cmd_compare(args) -> int:
    from .predictive import compare, write_comparison

    out = Path(args.out or f"reports/{Path(args.fit).stem}-compare")
    _check_out_folder(out, args.force, "comparison")  # before the work
    idata, model, survey = _fit_and_survey(args)
    _step_runs(model.spec, "comparison", args.fit)
    _prepare_out(out, args.force, "comparison")
    comp = compare(idata, survey, model.spec, prob=args.prob)
    write_comparison(comp, out)
    print(comp.text())
    print(f"\nwrote {out}")
    return 0


def cmd_robustness(args) -> int:
    from .robustness import CHECKS, run_robustness, write_robustness

    unknown = [c for c in (args.checks or []) if c not in CHECKS]
    if unknown:
        raise UserError(f"unknown check(s) {', '.join(unknown)}; allowed: {', '.join(CHECKS)}")
    refit = {k: v for k, v in (("draws", args.refit_draws), ("tune", args.refit_tune),
                               ("chains", args.refit_chains), ("sampler", args.refit_sampler)) if v is not None}
    out = Path(args.out or f"reports/{Path(args.fit).stem}-robustness")
    _check_out_folder(out, args.force, "robustness checks")  # before the work
    idata, model, survey = _fit_and_survey(args)
    _step_runs(model.spec, "robustness", args.fit)
    _prepare_out(out, args.force, "robustness checks")
    res = run_robustness(idata, survey, model.spec, checks=args.checks, seed=args.seed,
                         bootstrap_draws=args.bootstrap, progress=not args.no_progress,
                         refit_kwargs=refit, models=tuple(args.models),
                         prior_refits=args.prior_refits)
    write_robustness(res, out)
    print(res.text())
    print(f"\nwrote {out / 'robustness.csv'} and one CSV per check")
    return 0


def cmd_study(args) -> int:
    from .study import cmd_study as _cmd_study

    return _cmd_study(args)


def cmd_run(args) -> int:
    from .pipeline import run_pipeline

    if getattr(args, "model", None) is None:
        return run_pipeline(args)
    return run_pipeline(args, spec=_spec_of(args))


def cmd_spec(args) -> int:
    """``smeintl spec DATA --model ...``: the inferred scales, and the spec file (on stdout,
    or written to ``--out``)."""
    out = Path(args.out) if args.out else None
    if out is not None:
        if out.is_dir():
            raise UserError(f"{out} is a folder; give a file name for --out (e.g. {out / 'spec.toml'})")
        if (out.exists() or out.is_symlink()) and not args.force:
            raise UserError(f"{out} exists; pass --force to overwrite it (nothing was written)")
        ensure_writable(out.parent, what=f"the spec file {out}")
    built = _model_spec(args, show=sys.stdout if out is not None else sys.stderr)
    if out is None:
        print(built.toml, end="")
        return 0
    check_interrupted()
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(built.toml, encoding="utf-8")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"\nwrote {out}: check the items' scales and ranges, mark reverse-coded items (reverse = true), "
          f"then use it with --spec {out}")
    return 0


# ---------------------------------------------------------------------------
def _add_common(p, data=True, data_optional=False):
    if data:
        if data_optional:
            p.add_argument("data", nargs="?", default=None, help=f"survey file (default: bundled {DEFAULT_DATA})")
        else:
            p.add_argument("data", help="survey file (.csv, .xlsx, .sav)")
        _add_reading(p)
    p.add_argument("--spec", default=None, help=f"instrument spec (default: the bundled {DEFAULT_SPEC})")
    _add_model(p)


def _add_model(p, required: bool = False):
    p.add_argument("--model", default=None, metavar="TEXT_OR_FILE",
                   help=("" if required else "instead of --spec: ")
                   + "a lavaan-style measurement model, e.g. 'f1 =~ a + b + c; f2 =~ d + e + f', or a file "
                     "holding one; the items' scales are inferred from the data")
    p.add_argument("--scale", action="append", default=None, metavar="ITEM=SCALE",
                   help="with --model: the scale of an item instead of the inferred one, e.g. x5=likert:1-7, "
                        "x4=count, x3=percent (repeatable)")
    p.add_argument("--id-column", default=None, metavar="NAME",
                   help="with --model: the firms' id column (default: firm_id if there is one, else the rows "
                        "are numbered)")
    p.add_argument("--group-column", default=None, metavar="NAME",
                   help="with --model: the group (industry) column of the model's group level (default: none)")


def _add_reading(p):
    p.add_argument("--sheet", default=None, metavar="NAME",
                   help="Excel: the sheet with the data, by name or number from 1 (default: the first)")
    p.add_argument("--encoding", default=None, metavar="ENC",
                   help="CSV and SPSS: the file's encoding, e.g. cp932 (Shift-JIS) or latin-1 (default: UTF-8)")


def _add_sampling(p):
    p.add_argument("--draws", type=int, default=None, help="draws per chain (default from the spec)")
    p.add_argument("--tune", type=int, default=None, help="tuning steps per chain (default from the spec)")
    p.add_argument("--chains", type=int, default=None, help="number of chains (default from the spec)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--sampler", choices=["pymc", "nutpie", "auto"], default=None, help="NUTS implementation")
    p.add_argument("--no-group", action="store_true", help="switch the industry level off")
    from .measurement import INVARIANCE

    p.add_argument("--invariance", choices=INVARIANCE, default="none",
                   help="item parameters across groups (docs/invariance.md): none (default: equal), approximate "
                        "(small group deviations, flagged per item), configural, metric, scalar")
    p.add_argument("--no-progress", action="store_true", help="hide the sampler's progress bar")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    ap = argparse.ArgumentParser(
        prog="smeintl",
        description="Internationalization and business-independence indices of small firms: "
        "the deterministic ideal-profile method and Bayesian measurement models.",
    )
    ap.add_argument("--version", action="version", version=f"smeintl {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check a survey file against a spec and report every problem")
    _add_common(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("indices", help="deterministic indices, ideal-profile deviations and types")
    _add_common(p)
    p.add_argument("--out", default=None, help="output folder (default reports/<data>-indices)")
    p.add_argument("--seed", type=int, default=None, help="seed of the baseline test (default from the spec)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output folder")
    p.set_defaults(func=cmd_indices)

    p = sub.add_parser("fit", help="fit the Bayesian measurement model and save it as netCDF")
    _add_common(p)
    p.add_argument("--out", default=None, help="fit file (default <data>-fit.nc)")
    p.add_argument("--force", action="store_true", help="overwrite an existing fit file")
    p.add_argument("--quick", action="store_true", help="short chains for a first look")
    _add_sampling(p)
    from .measurement import PARAMETERIZATIONS

    p.add_argument("--parameterization", choices=PARAMETERIZATIONS, default="auto",
                   help="latent scores sampled per firm (latent), integrated out exactly (marginal: all-continuous "
                        "instruments) or on a grid (quadrature: one construct); auto (default) picks per survey")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("spec", help="write the spec of a lavaan-style model, the items' scales inferred from the data")
    p.add_argument("data", help="survey file (.csv, .xlsx, .sav)")
    _add_reading(p)
    _add_model(p, required=True)
    p.add_argument("--out", default=None, help="spec file to write (default: the spec is printed)")
    p.add_argument("--force", action="store_true", help="overwrite an existing spec file")
    p.set_defaults(func=cmd_spec)

    p = sub.add_parser("summary", help="parameter tables and diagnostics of a saved fit")
    p.add_argument("fit", help="fit file (.nc) written by 'smeintl fit'")
    p.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    p.add_argument("--format", choices=("text", "csv", "json"), default="text",
                   help="text (default): diagnostics and the parameter table by block; csv or json: the "
                        "parameter table, one row per parameter (json with the fit's spec, data hash, seed)")
    p.add_argument("--no-loo", action="store_true",
                   help="leave out the leave-one-firm-out LOO (latent scores integrated out; a few seconds)")
    p.add_argument("--delta", type=float, default=None,
                   help="invariance fits: the group deviation that counts as a difference (default 0.3)")
    p.add_argument("--checks", action="store_true",
                   help="add the posterior predictive model checks (as 'smeintl check'; a few seconds)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the model checks' replicated surveys")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("check", help="does the model fit? posterior predictive checks of a saved fit")
    p.add_argument("fit", help="fit file (.nc) written by 'smeintl fit'")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the replicated surveys")
    p.add_argument("--max-draws", type=int, default=500, help="posterior draws used, evenly spaced (default 500)")
    p.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    p.add_argument("--alpha", type=float, default=0.05, help="flag item statistics and pairs with PPP below it")
    p.add_argument("--format", choices=("text", "csv", "json"), default="text",
                   help="text (default); csv: one row per check; json: every item statistic and pair")
    p.add_argument("--out", default=None, help="also write the tables and figures into this folder")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out folder")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("compare-fits", help="compare fits of the same data (two specs, invariance levels) by LOO")
    p.add_argument("fits", nargs="+", help="two or more fit files (.nc) made on the same data")
    p.add_argument("--format", choices=("text", "csv", "json"), default="text", help="output format (default text)")
    p.set_defaults(func=cmd_compare_fits)

    p = sub.add_parser("prior-check", help="what the priors imply on the data scale")
    _add_common(p, data_optional=True)
    p.add_argument("--draws", type=int, default=500, help="prior draws (default 500)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--no-group", action="store_true")
    p.set_defaults(func=cmd_prior_check)

    p = sub.add_parser("compare", help="posterior predictive comparison with the deterministic method")
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("--data", default=None, help="survey file (default: the one the fit was made on)")
    _add_reading(p)
    p.add_argument("--out", default=None, help="output folder (default reports/<fit>-compare)")
    p.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output folder")
    p.set_defaults(func=cmd_compare)

    from .robustness import DEFAULT_REFIT, MODEL_VARIANTS, PRIOR_REFITS

    p = sub.add_parser("robustness", help="which findings survive reasonable changes to the method")
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("--data", default=None, help="survey file (default: the one the fit was made on)")
    _add_reading(p)
    p.add_argument("--out", default=None, help="output folder (default reports/<fit>-robustness)")
    p.add_argument("--checks", nargs="+", default=None, help="run only these checks (default: all)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the bootstrap and the refits")
    p.add_argument("--bootstrap", type=int, default=2000, help="firm bootstrap replicates (default 2000)")
    p.add_argument("--models", nargs="+", choices=MODEL_VARIANTS, default=list(MODEL_VARIANTS),
                   help="alternative models of the model comparison (default: all)")
    p.add_argument("--prior-refits", choices=PRIOR_REFITS, default="auto",
                   help="refit under wider and narrower priors: auto (when power-scaling is unreliable), "
                        "always, never (default auto)")
    p.add_argument("--refit-draws", type=int, default=None,
                   help=f"draws per chain of every refit (default {DEFAULT_REFIT['draws']})")
    p.add_argument("--refit-tune", type=int, default=None,
                   help=f"tuning steps of every refit (default {DEFAULT_REFIT['tune']})")
    p.add_argument("--refit-chains", type=int, default=None,
                   help=f"chains of every refit (default {DEFAULT_REFIT['chains']})")
    p.add_argument("--refit-sampler", choices=("auto", "pymc", "nutpie"), default=None,
                   help="sampler of the refits (default: the fit spec's)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar of the refits")
    p.add_argument("--force", action="store_true", help="overwrite an existing output folder")
    p.set_defaults(func=cmd_robustness)

    from .study import add_study_arguments

    p = add_study_arguments(sub.add_parser("study", help="simulation study: recovery, SBC, method comparison"))
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("run", help="the main job: survey file to a complete report")
    _add_common(p, data_optional=True)
    p.add_argument("--out", default=None, help="report folder (default reports/<data>)")
    p.add_argument("--force", action="store_true", help="overwrite an existing report folder")
    p.add_argument("--quick", action="store_true", help="short chains for a first look (said in the report)")
    p.add_argument("--no-robustness", action="store_true", help="skip the robustness checks")
    p.add_argument("--no-checks", action="store_true",
                   help="skip the posterior predictive model checks (about 2 s on the bundled data)")
    _add_sampling(p)
    p.set_defaults(func=cmd_run)
    return ap


# ---------------------------------------------------------------------------
# one validation layer for the numbers of every command
# ---------------------------------------------------------------------------
#: (attribute, option, least value): whole-number options and their least value
_WHOLE_NUMBERS = (
    ("draws", "--draws", 1),
    ("tune", "--tune", 0),
    ("chains", "--chains", 1),
    ("seed", "--seed", 0),
    ("bootstrap", "--bootstrap", 1),
    ("refit_draws", "--refit-draws", 10),
    ("refit_tune", "--refit-tune", 0),
    ("refit_chains", "--refit-chains", 1),
    ("workers", "--workers", 1),
    ("max_draws", "--max-draws", 10),
)
#: (attribute, option): probabilities, strictly between 0 and 1
_PROBABILITIES = (("prob", "--prob"), ("alpha", "--alpha"))


#: (attribute, option): the options that only go with --model
_MODEL_ONLY = (("scale", "--scale"), ("id_column", "--id-column"), ("group_column", "--group-column"))


def check_model_options(args: argparse.Namespace) -> None:
    """Refuse (:class:`UserError`) ``--model`` with ``--spec``, and ``--scale``,
    ``--id-column``, ``--group-column`` without ``--model``, before any work."""
    if not hasattr(args, "model"):
        return
    if args.model is None and not hasattr(args, "spec"):
        raise UserError(f"smeintl {args.command} needs the model: --model 'f1 =~ a + b + c; f2 =~ d + e + f', "
                        f"or --model FILE with the model in it")
    if args.model is not None and getattr(args, "spec", None) is not None:
        raise UserError("--spec and --model exclude each other: give the instrument as a spec file (--spec) or "
                        "as a model whose scales are inferred from the data (--model), not both")
    if args.model is None:
        for attr, opt in _MODEL_ONLY:
            if getattr(args, attr, None) is not None:
                raise UserError(f"{opt} goes with --model (a spec file declares its items' scales and its "
                                f"columns itself: edit its [[items]] or its [instrument] table)")


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse (:class:`UserError`) a number option out of its range, before any work:
    ``--draws``, ``--chains`` at least 1 (0 is not "the default"), ``--tune`` and
    ``--seed`` not negative (seeds at most 2**32 - 1), ``--prob`` strictly between 0 and 1,
    and the robustness and study options' own least values."""
    for attr, opt, least in _WHOLE_NUMBERS:
        value = getattr(args, attr, None)
        if value is None:
            continue
        if value < least:
            raise UserError(f"{opt} must be at least {least}, got {value}")
        if attr == "seed" and value > MAX_SEED:
            raise UserError(f"{opt} must be at most {MAX_SEED}, got {value}")
    for attr, opt in _PROBABILITIES:
        value = getattr(args, attr, None)
        if value is not None and not 0 < value < 1:
            raise UserError(f"{opt} must be a probability strictly between 0 and 1 (e.g. 0.9), got {value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    name = f"smeintl {args.command}"
    status = None
    try:
        with interrupt_signals(), warnings.catch_warnings():
            quiet_foreign_warnings()
            try:
                try:
                    check_numbers(args)
                    check_model_options(args)
                    status = int(args.func(args) or 0)
                    check_interrupted()
                    sys.stdout.flush()
                except BaseException as exc:  # noqa: BLE001 - the one boundary
                    status = handle(exc, name)
            except KeyboardInterrupt:  # arrived while handling another exception
                status = handle(KeyboardInterrupt(), name)
    except KeyboardInterrupt:
        # delivered while the signal handling was taken down (a repeated interrupt still
        # pending): the command had already stopped with its status, or not started
        if status is None:
            status = handle(KeyboardInterrupt(), name)
    return status


def console() -> None:
    """The ``smeintl`` program: :func:`main`, then exit with its status.

    An interrupted command (:data:`EXIT_INTERRUPTED`) has removed its partial output and said so by then;
    it exits at once, without the interpreter's teardown: a native sampler thread that the
    interrupt did not stop (nutpie 0.16.11 on Python 3.13) could otherwise still call into
    arrays being freed (the process died by SIGBUS), and a repeated interrupt still pending
    could arrive under Python's default handler (the process died by SIGINT)."""
    status = main()
    if status == EXIT_INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(EXIT_INTERRUPTED)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    console()
