"""Running the checks (:func:`run_robustness`), the findings matrix, and writing the
result (:func:`write_robustness`)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from .. import compat
from ..spec import Spec
from .context import MODEL_VARIANTS, PRIOR_REFITS, RobustnessContext
from .registry import CHECK_NAMES, CHECKS, REGISTRY
from .result import CheckResult, RobustnessResult, skip
from .verdict import NOT_ADDRESSED, Verdict, Verdicts, finding_keys


def run_robustness(
    idata,
    survey,
    spec: Spec | None = None,
    *,
    checks: Sequence[str] | None = None,
    seed: int = 20190601,
    bootstrap_draws: int = 2000,
    refit_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    prob: float = 0.9,
    models: Sequence[str] = MODEL_VARIANTS,
    prior_refits: str = "auto",
    ahead=None,
) -> RobustnessResult:
    """Run robustness checks and build the findings matrix.

    ``idata``: a fit of :class:`~smeintl.measurement.MeasurementModel` on ``survey`` (or
    None: the checks needing a fit then say so); ``spec`` defaults to ``survey.spec``;
    ``checks``: names from :data:`~.registry.CHECKS` (default all, run in registry order);
    ``refit_kwargs``: sampler settings of every refit (default :data:`~.context.DEFAULT_REFIT`);
    ``models``: the alternative models of ``model_comparison``; ``prior_refits``:
    ``"auto"`` (refit with wider and narrower priors when importance weights are
    unreliable), ``"always"`` or ``"never"``; ``ahead``: the model-comparison refits started
    in a second process during the fit (:func:`.ahead.start`), used where they match.  A check that cannot run returns a result
    with ``passed=None`` whose text says why; unexpected errors in one check are caught
    and reported the same way, so the other checks still run.
    """
    spec = spec if spec is not None else survey.spec
    if "robustness" in spec.skipped_steps():
        from ..errors import UserError

        raise UserError(f"{spec.source}: no robustness checks to run: {spec.skipped_steps()['robustness']}")
    idata = compat.as_fit(idata) if idata is not None else None
    names = list(CHECK_NAMES) if checks is None else list(dict.fromkeys(checks))
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECK_NAMES)}")
    if int(bootstrap_draws) < 1:
        raise ValueError(f"bootstrap_draws must be at least 1, got {bootstrap_draws}")
    selected = [c for c in REGISTRY if c.name in names]
    bad = [m for m in models if m not in MODEL_VARIANTS]
    if bad:
        raise ValueError(f"unknown model variant(s) {', '.join(bad)}; known: {', '.join(MODEL_VARIANTS)}")
    if prior_refits not in PRIOR_REFITS:
        raise ValueError(f"prior_refits must be 'auto', 'always' or 'never', got {prior_refits!r}")
    ctx = RobustnessContext(idata=idata, survey=survey, spec=spec, seed=int(seed), bootstrap_draws=int(bootstrap_draws),
                            refit_kwargs=dict(refit_kwargs or {}), progress=progress, prob=float(prob),
                            models=tuple(models), prior_refits=prior_refits, ahead=ahead)
    results = []
    notes = []
    for check in selected:
        t0 = time.perf_counter()
        try:
            res = check.run(ctx)
        except Exception as exc:  # noqa: BLE001 - one failing check must not sink the others
            res = skip(check.name, f"the check failed: {type(exc).__name__}: {exc}", check.reference)
            notes.append(f"{check.name} failed with {type(exc).__name__}: {exc}")
        results.append(replace(res, seconds=time.perf_counter() - t0))
    baselines = {"deterministic": ctx.baseline_det(), "posterior": ctx.baseline_post()}
    matrix = findings_matrix(baselines, results, finding_keys(spec))
    settings = {"n_firms": ctx.n_firms, "seed": ctx.seed, "bootstrap_draws": ctx.bootstrap_draws,
                "refit": ctx.refit_settings(), "prob": ctx.prob, "checks": [c.name for c in selected],
                "models": list(ctx.models), "prior_refits": prior_refits, "fit": ctx.fit_problem() or "usable"}
    return RobustnessResult(tuple(results), matrix, settings, tuple(notes), baselines)


def findings_matrix(baselines: Mapping[str, Verdicts], results: Sequence[CheckResult],
                    keys: Sequence[str]) -> pd.DataFrame:
    """The findings matrix of :class:`~.result.RobustnessResult`: one row per finding key
    (``keys``: the spec's findings in order; no rows when it declares none), the baselines'
    and every variant's verdict texts, and per finding the agreement of the variants with
    their check's baseline."""
    det, post = baselines["deterministic"], baselines["posterior"]
    keys = list(keys)
    cols: dict[str, list[str]] = {
        "baseline: deterministic": [det.get(k, Verdict.na()).text() for k in keys],
        "baseline: posterior": [post.get(k, Verdict.na()).text() for k in keys],
    }
    agree = {k: [0, 0] for k in keys}
    for r in results:
        ref = post if r.reference == "posterior" else det
        if not r.variants:
            cols[r.name] = [Verdict.na(r.text.removeprefix("skipped: ")).text() for _ in keys]
            continue
        for vname, cells in r.variants.items():
            cols[vname] = [cells.get(k, NOT_ADDRESSED).text() for k in keys]
            for k in keys:
                h = cells.get(k, Verdict.na()).holds
                rh = ref.get(k, Verdict.na()).holds
                if h is not None and rh is not None:
                    agree[k][1] += 1
                    agree[k][0] += int(h == rh)
    cols["agreement"] = [f"{agree[k][0]} of {agree[k][1]} variants agree with the baseline" if agree[k][1]
                         else "no variant evaluated" for k in keys]
    return pd.DataFrame(cols, index=pd.Index(keys, name="finding"))


def write_robustness(result: RobustnessResult, out_dir: str | Path) -> list[Path]:
    """Write ``robustness.csv`` (the findings matrix, one row per finding) and one
    ``<check>.csv`` per check (its table) into ``out_dir`` (created if needed); returns
    the paths.  Existing files are replaced: the caller decides the overwrite policy."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    p = d / "robustness.csv"
    result.matrix.to_csv(p, index=True)
    paths.append(p)
    for c in result.checks:
        p = d / f"{c.name}.csv"
        c.table.to_csv(p, index=False)
        paths.append(p)
    return paths
