"""The main job (``smeintl run``): survey file to a complete report folder.

Steps: validate the data, deterministic method, fit, diagnostics, predictive
comparison, report.  Everything is written to a temporary folder next to the
target and renamed at the end, so an interrupted or failed run leaves no half
report; an existing report folder is never overwritten without ``--force``; the
input data are only read.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["run_pipeline", "atomic_folder", "Steps"]


@contextmanager
def atomic_folder(target: Path, *, force: bool = False):
    """Yield a temporary folder that replaces ``target`` only when the block succeeds."""
    target = Path(target)
    if target.exists() and not force:
        from .cli import UserError

        raise UserError(f"{target} exists; pass --force to overwrite it (nothing was written)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is meant to be shared
    if target.exists():
        old = target.with_name(f".{target.name}.old-{time.time_ns()}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


class Steps:
    """Announces each step, times it, and records the timings for the manifest."""

    def __init__(self, total: int, stream=sys.stdout):
        self.total = total
        self.k = 0
        self.timings: dict[str, float] = {}
        self.stream = stream

    @contextmanager
    def step(self, name: str):
        self.k += 1
        print(f"[{self.k}/{self.total}] {name} ...", file=self.stream, flush=True)
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.timings[name] = round(dt, 3)
        print(f"[{self.k}/{self.total}] {name} done ({dt:.1f} s)", file=self.stream, flush=True)


def default_out(data_path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{data_path.stem}-{stamp}"


def run_pipeline(args: Any) -> int:
    """Run every step of the analysis; see the module docstring."""
    import signal

    from .cli import DEFAULT_DATA, DEFAULT_SPEC, _repo_default
    from .data import load_survey
    from .measurement import MeasurementModel, save_fit, summarize_fit, versions
    from .predictive import compare, write_comparison
    from .profiles import run_deterministic
    from .spec import load_spec

    def _terminate(signum, frame):  # SIGTERM: clean up like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    t_all = time.perf_counter()
    spec_path = Path(args.spec) if args.spec else _repo_default(DEFAULT_SPEC)
    data_path = Path(args.data) if args.data else _repo_default(DEFAULT_DATA)
    out = Path(args.out) if args.out else default_out(data_path)
    spec = load_spec(spec_path)
    quick = bool(getattr(args, "quick", False))
    skip_robustness = bool(getattr(args, "no_robustness", False))
    s = spec.sampler
    fit_kw = dict(
        draws=args.draws or (s["quick_draws"] if quick else s["draws"]),
        tune=args.tune if args.tune is not None else (s["quick_tune"] if quick else s["tune"]),
        chains=args.chains or (s["quick_chains"] if quick else s["chains"]),
        random_seed=args.seed,
        sampler=args.sampler,
    )
    steps = Steps(total=7)
    with atomic_folder(out, force=args.force) as tmp:
        with steps.step("validate the data"):
            survey = load_survey(data_path, spec)
            print(f"    {survey.n_firms} firms, {len(survey.group_names)} industries, "
                  f"{int(survey.missing.sum())} missing answers", flush=True)
        with steps.step("deterministic ideal-profile method"):
            det = run_deterministic(survey)
            det.firms.to_csv(tmp / "firms.csv", index=False)
            (tmp / "summary.json").write_text(json.dumps(det.summary, indent=2, default=str) + "\n")
        with steps.step("fit the measurement model"):
            model = MeasurementModel(spec, group=not getattr(args, "no_group", False))
            print(f"    {model.parameterization} parameterization, {fit_kw['chains']} chains x "
                  f"{fit_kw['draws']} draws after {fit_kw['tune']} tuning, seed {args.seed}"
                  + (" (quick run)" if quick else ""), flush=True)
            refit_compile = None
            if not skip_robustness and not quick:
                from .robustness import start_refit_compile

                # cold cache: the robustness refits' models compile on the second core meanwhile
                # (the process ends with the run: it is a daemon, and Ctrl-C reaches it too)
                refit_compile = start_refit_compile(model, survey)
                if refit_compile is not None:
                    print("    compile cache cold: the robustness refits' models compile in a second process meanwhile",
                          flush=True)
            idata = model.fit(survey, progressbar=not getattr(args, "no_progress", False), **fit_kw)
            save_fit(idata, tmp / "fit.nc")
        with steps.step("diagnostics and parameter tables"):
            fit_summary = summarize_fit(idata, spec)
            diag = fit_summary.diagnostics
            print("    " + diag.text().replace("\n", "\n    "), flush=True)
            _write_tables(tmp, fit_summary)
        with steps.step("posterior predictive comparison"):
            comparison = compare(idata, survey, spec)
            write_comparison(comparison, tmp)
        robustness = None
        with steps.step("robustness checks"):
            if skip_robustness:
                print("    skipped (--no-robustness)", flush=True)
            else:
                from .robustness import CHECKS, REFIT_CHECKS, run_robustness, write_robustness

                checks = [c for c in CHECKS if c not in REFIT_CHECKS] if quick else None
                if quick:
                    print(f"    quick run: skipping the checks that refit the model ({', '.join(REFIT_CHECKS)})",
                          flush=True)
                robustness = run_robustness(idata, survey, spec, checks=checks, seed=args.seed,
                                            progress=not getattr(args, "no_progress", False),
                                            refit_compile=refit_compile)
                write_robustness(robustness, tmp / "robustness")
        manifest = {
            "smeintl_report": 1,
            "spec_source": str(spec_path),
            "spec_hash": spec.hash,
            "spec_text": spec.text,
            "data_source": str(data_path),
            "data_hash": survey.data_hash,
            "seed": args.seed,
            "quick": quick,
            "sampler": idata.attrs.get("sampler"),
            "parameterization": idata.attrs.get("parameterization"),
            "fit_settings": {k: v for k, v in fit_kw.items() if k != "random_seed"},
            "diagnostics": diag.to_dict(),
            "diagnostics_verdict": "FAILED" if diag.failed else "passed",
            "robustness": "skipped" if robustness is None else "run",
            "versions": versions(),
            "timings_s": {},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with steps.step("write the report"):
            from .report import write_report

            manifest["timings_s"] = dict(steps.timings)
            write_report(tmp, spec=spec, survey=survey, det=det, idata=idata, fit_summary=fit_summary,
                         comparison=comparison, robustness=robustness, manifest=manifest, quick=quick)
        manifest["timings_s"] = steps.timings | {"total": round(time.perf_counter() - t_all, 3)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    print()
    print(comparison.text())
    if diag.failed:
        print("\nWARNING: the fit FAILED its diagnostics; see the warning at the top of the report.", file=sys.stderr)
    print(f"\nreport written to {out} (open {out / 'index.html'})")
    return 0


def _write_tables(folder: Path, fit_summary) -> None:
    fit_summary.loadings.to_csv(folder / "loadings.csv")
    fit_summary.cutpoints.to_csv(folder / "cutpoints.csv", index=False)
    fit_summary.correlation.to_csv(folder / "latent_correlation.csv", index=False)
    fit_summary.group_means.to_csv(folder / "industry_means.csv", index=False)
    fit_summary.latent_scores.to_csv(folder / "latent_scores.csv", index=False)
    fit_summary.reliability.to_csv(folder / "reliability.csv", index=False)
