"""Command line: ``smeintl <command>``.

User mistakes (bad data, bad spec, a fit that does not match, an output that
exists) print one clear message on stderr and exit with status 2, without a
traceback and without writing anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from .api import DEFAULT_SEED, fit_settings
from .errors import UserError
from .resources import DEFAULT_DATA, DEFAULT_SPEC, bundled_path

EXIT_USAGE = 2

__all__ = ["main", "build_parser", "UserError", "EXIT_USAGE"]


def _spec(path: str | None):
    from .spec import load_spec

    return load_spec(path or bundled_path(DEFAULT_SPEC))


def _survey(path: str | None, spec):
    from .data import load_survey

    return load_survey(path or bundled_path(DEFAULT_DATA), spec)


def _prepare_out(out: Path, force: bool, what: str) -> None:
    """Refuse to write into an existing, non-empty output folder without --force."""
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(f"{out} exists and is not empty; pass --force to overwrite the {what} there")
    out.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
def cmd_validate(args) -> int:
    from .data import DataError, read_table, validate_frame

    spec = _spec(args.spec)
    path = args.data
    try:
        df = read_table(path)
    except DataError as exc:
        raise UserError(str(exc)) from None
    problems = validate_frame(df, spec, source=str(path))
    if problems:
        print(f"{path}: {len(problems)} problem(s) found", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return EXIT_USAGE
    survey = _survey(path, spec)
    miss = survey.missing
    print(f"{path}: valid for spec {spec.name} ({survey.n_firms} firms, {len(spec.items)} items)")
    print(f"  missing answers: {int(miss.sum())} of {miss.size * survey.n_firms} cells")
    for name, n in miss[miss > 0].items():
        print(f"    {name}: {int(n)}")
    return 0


def cmd_indices(args) -> int:
    from .profiles import run_deterministic

    spec = _spec(args.spec)
    survey = _survey(args.data, spec)
    res = run_deterministic(survey, seed=args.seed)
    out = Path(args.out or f"reports/{Path(args.data).stem}-indices")
    _prepare_out(out, args.force, "indices")
    res.firms.to_csv(out / "firms.csv", index=False)
    _write_json(out / "summary.json", res.summary)
    print(res.summary_text())
    print(f"\nwrote {out / 'firms.csv'} and {out / 'summary.json'}")
    return 0


def _fit_kwargs(args, spec) -> dict:
    kw = fit_settings(spec, quick=getattr(args, "quick", False), draws=args.draws, tune=args.tune, chains=args.chains)
    return dict(kw, random_seed=args.seed, sampler=args.sampler)


def cmd_fit(args) -> int:
    from .measurement import MeasurementModel, save_fit, summarize_fit

    spec = _spec(args.spec)
    survey = _survey(args.data, spec)
    out = Path(args.out or f"{Path(args.data).stem}-fit.nc")
    if out.exists() and not args.force:
        raise UserError(f"{out} exists; pass --force to overwrite it")
    model = MeasurementModel(spec, group=not args.no_group)
    kw = _fit_kwargs(args, spec)
    print(
        f"fitting {spec.name} to {survey.n_firms} firms ({model.parameterization} parameterization, "
        f"{kw['chains']} chains x {kw['draws']} draws after {kw['tune']} tuning, seed {args.seed})",
        flush=True,
    )
    t0 = time.perf_counter()
    idata = model.fit(survey, progressbar=not args.no_progress, **kw)
    wall = time.perf_counter() - t0
    save_fit(idata, out, overwrite=args.force)
    summ = summarize_fit(idata, spec)
    print(summ.diagnostics.text())
    print(f"\nwall time {wall:.1f} s; wrote {out}")
    if summ.diagnostics.failed:
        print("WARNING: the fit FAILED its diagnostics; its estimates are not reliable.", file=sys.stderr)
    return 0


def cmd_summary(args) -> int:
    from .measurement import load_fit, summarize_fit

    idata, model = load_fit(args.fit)
    summ = summarize_fit(idata, model.spec, prob=args.prob)
    print(f"fit {args.fit}: spec {model.spec.name}, data {idata.attrs.get('data_source')}, "
          f"seed {idata.attrs.get('random_seed')}, sampler {idata.attrs.get('sampler')}")
    print(summ.text())
    return 0


def cmd_prior_check(args) -> int:
    import numpy as np

    from .indices import index_arrays
    from .measurement import MeasurementModel

    spec = _spec(args.spec)
    survey = _survey(args.data, spec)
    model = MeasurementModel(spec, group=not args.no_group)
    pp = model.prior_predictive(survey, draws=args.draws, random_seed=args.seed)
    Y = pp["items"]
    obs = survey.items[list(spec.item_names)].to_numpy(dtype=float)
    print(f"prior predictive check: {args.draws} draws from the priors of {spec.name}, {survey.n_firms} firms")
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
    """Load a fit and its survey (``--data`` or the file it was made on); refuse a mismatch."""
    from .measurement import load_fit

    idata, model = load_fit(args.fit)
    survey = _survey(args.data or idata.attrs.get("data_source"), model.spec)
    idata, model = load_fit(args.fit, survey=survey)
    return idata, model, survey


def cmd_compare(args) -> int:
    from .predictive import compare, write_comparison

    idata, model, survey = _fit_and_survey(args)
    out = Path(args.out or f"reports/{Path(args.fit).stem}-compare")
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
    for opt, value, least in (("--bootstrap", args.bootstrap, 1), ("--refit-draws", args.refit_draws, 10),
                              ("--refit-tune", args.refit_tune, 0), ("--refit-chains", args.refit_chains, 1)):
        if value is not None and value < least:
            raise UserError(f"{opt} must be at least {least}, got {value}")
    refit = {k: v for k, v in (("draws", args.refit_draws), ("tune", args.refit_tune),
                               ("chains", args.refit_chains), ("sampler", args.refit_sampler)) if v is not None}
    idata, model, survey = _fit_and_survey(args)
    out = Path(args.out or f"reports/{Path(args.fit).stem}-robustness")
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

    return run_pipeline(args)


# ---------------------------------------------------------------------------
def _add_common(p, data=True, data_optional=False):
    if data:
        if data_optional:
            p.add_argument("data", nargs="?", default=None, help=f"survey file (default: bundled {DEFAULT_DATA})")
        else:
            p.add_argument("data", help="survey file (.csv, .xlsx, .sav)")
    p.add_argument("--spec", default=None, help=f"instrument spec (default: {DEFAULT_SPEC})")


def _add_sampling(p):
    p.add_argument("--draws", type=int, default=None, help="draws per chain (default from the spec)")
    p.add_argument("--tune", type=int, default=None, help="tuning steps per chain (default from the spec)")
    p.add_argument("--chains", type=int, default=None, help="number of chains (default from the spec)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--sampler", choices=["pymc", "nutpie", "auto"], default=None, help="NUTS implementation")
    p.add_argument("--no-group", action="store_true", help="switch the industry level off")
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
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("summary", help="parameter tables and diagnostics of a saved fit")
    p.add_argument("fit", help="fit file (.nc) written by 'smeintl fit'")
    p.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("prior-check", help="what the priors imply on the data scale")
    _add_common(p, data_optional=True)
    p.add_argument("--draws", type=int, default=500, help="prior draws (default 500)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--no-group", action="store_true")
    p.set_defaults(func=cmd_prior_check)

    p = sub.add_parser("compare", help="posterior predictive comparison with the deterministic method")
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("--data", default=None, help="survey file (default: the one the fit was made on)")
    p.add_argument("--out", default=None, help="output folder (default reports/<fit>-compare)")
    p.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output folder")
    p.set_defaults(func=cmd_compare)

    from .robustness import DEFAULT_REFIT, MODEL_VARIANTS, PRIOR_REFITS

    p = sub.add_parser("robustness", help="which findings survive reasonable changes to the method")
    p.add_argument("fit", help="fit file (.nc)")
    p.add_argument("--data", default=None, help="survey file (default: the one the fit was made on)")
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
    _add_sampling(p)
    p.set_defaults(func=cmd_run)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    from .data import DataError
    from .spec import SpecError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from .measurement import FitError
    except Exception:  # noqa: BLE001
        FitError = UserError  # type: ignore[misc,assignment]
    try:
        return int(args.func(args) or 0)
    except (UserError, DataError, SpecError, FitError, FileExistsError) as exc:
        print(f"smeintl {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"smeintl {args.command}: interrupted; nothing was left half-written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
