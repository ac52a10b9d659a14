"""Check ``bootstrap``: firm bootstrap (stratified by industry, seeded) of the type and
flag shares with percentile intervals; the deterministic method re-run on every resample."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..predictive import sample_statistics
from ..profiles import type_arrays
from .context import MIN_FIRMS, RobustnessContext
from .findings import finding_rows, industry_codes, replicated_verdicts
from .result import Check, CheckResult, skip
from .verdict import aggregate, any_evaluated, flipped

CHECK_NAME = "bootstrap"


def check_bootstrap(ctx: RobustnessContext) -> CheckResult:
    """Firm bootstrap (stratified by industry) of the shares, with percentile intervals."""
    name = CHECK_NAME
    F = ctx.n_firms
    if F < MIN_FIRMS["bootstrap"]:
        return skip(name, f"too few firms ({F}) for a firm bootstrap: need at least {MIN_FIRMS['bootstrap']}")
    B = int(ctx.bootstrap_draws)
    if B < 1:
        raise ValueError(f"bootstrap_draws must be at least 1, got {B}")
    spec, survey = ctx.spec, ctx.survey
    groups, gnames = industry_codes(survey, spec)
    rng = np.random.default_rng([int(ctx.seed), 20190601])
    if groups is not None:
        idx = np.empty((B, F), dtype=np.int64)
        for g in range(len(gnames)):
            pos = np.flatnonzero(groups == g)
            if pos.size:
                idx[:, pos] = pos[rng.integers(0, pos.size, size=(B, pos.size))]
        how = "firms resampled with replacement within each industry (every industry keeps its size)"
    else:
        idx = rng.integers(0, F, size=(B, F))
        how = "firms resampled with replacement"
    ind = ctx.indices().indices.to_numpy()
    rep = ind[idx]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        rep_ta = type_arrays(rep, spec)
        ta = type_arrays(ind, spec)
        st_obs = sample_statistics(ind, ta, spec, groups, gnames)
        st_rep = sample_statistics(rep, rep_ta, spec, groups, gnames)
    frows = finding_rows(spec, survey, ind, ta, rep, rep_ta)
    cells = replicated_verdicts(frows)
    lo_q, hi_q = (1 - ctx.prob) / 2, (1 + ctx.prob) / 2
    rows = []
    for k in st_obs:
        if not (k.startswith("share_") or k.startswith("count_") or (k.startswith("mean_") and "[" not in k
                                                                       and not k.startswith("mean_dist"))):
            continue
        r = np.asarray(st_rep[k], dtype=float)
        r = r[np.isfinite(r)]
        rows.append({"statistic": k, "observed": float(st_obs[k]), "boot_mean": float(r.mean()) if r.size else np.nan,
                     "boot_sd": float(r.std(ddof=1)) if r.size > 1 else np.nan,
                     "lo": float(np.quantile(r, lo_q)) if r.size else np.nan,
                     "hi": float(np.quantile(r, hi_q)) if r.size else np.nan, "B": B})
    table = pd.DataFrame(rows)
    ref = ctx.baseline_det()
    variants = {f"{name}: firms": cells}
    flips = flipped(variants, ref)
    evaluated = any_evaluated(variants)
    passed = (not flips) if evaluated else None
    pct = f"{100 * ctx.prob:g}%"
    lines = [f"Firm bootstrap, B = {B}, seed {ctx.seed}: {how}; the deterministic method re-run on every resample. "
             f"{pct} percentile intervals of the shares in the table; each cell is the share of resamples in which "
             "the finding holds (holds when >= 0.5)."]
    for r in rows:
        if r["statistic"].startswith("share_"):
            lines.append(f"{r['statistic']}: {r['observed']:.3f} ({pct} interval {r['lo']:.3f} to {r['hi']:.3f})")
    lines.append("Pass criterion: the bootstrap majority agrees with the deterministic verdict of every finding"
                 + (f"; differs: {', '.join(flips)}" if flips else "") + ".")
    return CheckResult(name, passed, table, "\n".join(lines), aggregate(ctx.spec, variants), variants)


CHECK = Check(CHECK_NAME, "firm bootstrap (stratified by industry, seeded) of the type and flag shares with "
              "percentile intervals", check_bootstrap)
