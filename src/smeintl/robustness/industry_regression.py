"""Check ``industry_regression``: OLS of each index on industry with HC3 errors (robust
Wald test) and ordinal logit (``OrderedModel``) of the binned indices and of every
ordinal item on industry, beside the hierarchical industry means."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .context import RobustnessContext
from .findings import industry_codes
from .result import Check, CheckResult, skip
from .verdict import NOT_ADDRESSED, Verdict, aggregate, any_evaluated, finding_keys, flipped

CHECK_NAME = "industry_regression"
#: bins of a construct index for the ordinal regression: 5 equal-width classes on [0, 1]
INDEX_BINS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)


def _ordinal_lr(y: np.ndarray, g: np.ndarray) -> dict[str, Any]:
    """Ordinal logit of integer categories ``y`` on industry dummies: LR test against the
    thresholds-only model (whose log-likelihood is the multinomial one of the category
    shares)."""
    from scipy import stats
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    ok = np.isfinite(y)
    y, g = y[ok], np.asarray(g, dtype=object)[ok]
    levels = sorted(set(g.tolist()), key=str)
    cats, counts = np.unique(y, return_counts=True)
    out: dict[str, Any] = {"n": int(y.size), "n_categories": int(cats.size), "n_groups": len(levels),
                           "statistic": np.nan, "df": np.nan, "p": np.nan, "note": ""}
    if cats.size < 2 or len(levels) < 2:
        out["note"] = "fewer than 2 categories or industries"
        return out
    X = pd.get_dummies(pd.Series(g, dtype=str), drop_first=True, dtype=float)
    if y.size - X.shape[1] - (cats.size - 1) < 1:
        out["note"] = "too few firms for the parameters"
        return out
    endog = pd.Series(pd.Categorical(y, categories=cats, ordered=True))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            res = OrderedModel(endog, X, distr="logit").fit(method="bfgs", disp=False, maxiter=2000)
        except Exception as exc:  # noqa: BLE001 - report, do not crash
            out["note"] = f"not fitted: {exc}"
            return out
    llnull = float((counts * np.log(counts / counts.sum())).sum())
    lr = max(0.0, 2.0 * (float(res.llf) - llnull))
    df = X.shape[1]
    out.update(statistic=lr, df=df, p=float(stats.chi2.sf(lr, df)))
    if not bool(res.mle_retvals.get("converged", True)):
        out["note"] = "optimizer did not converge (separation?)"
    return out


def _holds_text(differ: dict[str, tuple[str, float]]) -> str:
    """When a group-difference finding holds, by its significance level."""
    if not differ:
        return "The spec declares no group-difference finding (kind groups_differ)."
    alphas = sorted({a for _c, a in differ.values()})
    if len(alphas) == 1:
        return f"A finding holds when p < {alphas[0]:g}."
    return "A finding holds when p < its alpha (" + ", ".join(f"{k}: {a:g}" for k, (_c, a) in differ.items()) + ")."


def check_industry_regression(ctx: RobustnessContext) -> CheckResult:
    """OLS (HC3) and ordinal regressions of the indices and ordinal items on industry."""
    import statsmodels.api as sm
    from scipy import stats

    name = CHECK_NAME
    spec, survey = ctx.spec, ctx.survey
    groups, gnames = industry_codes(survey, spec)
    if groups is None:
        return skip(name, "the survey has no industry column")
    if len(gnames) < 2:
        return skip(name, "the survey has fewer than 2 industries")
    # the group-difference findings: construct and significance level of each
    differ = {f.key: (f.params["construct"], float(f.params["alpha"])) for f in spec.findings_of("groups_differ")}
    industry = np.array([gnames[g] for g in groups], dtype=object)
    ind = ctx.indices().indices
    rows: list[dict[str, Any]] = []
    tests: dict[str, dict[str, float]] = {"ols": {}, "ordinal": {}}
    bayes = None
    if ctx.fit_problem() is None and ctx.fit_group:
        from ..measurement import summarize_fit

        bayes = summarize_fit(ctx.idata, ctx.fit_spec, prob=ctx.prob).group_means
    rank_txt = []
    for c in spec.construct_names:
        y = ind[c].to_numpy(dtype=float)
        ok = np.isfinite(y)
        present = sorted(set(industry[ok].tolist()), key=str)
        sizes = {g: int(((industry == g) & ok).sum()) for g in present}
        if ok.sum() - len(present) < 1 or len(present) < 2:
            rows.append({"kind": "test", "variable": c, "model": "OLS", "note": "too few firms per industry"})
            continue
        D = pd.get_dummies(pd.Series(industry[ok], dtype=str), dtype=float)[present]
        cov = "HC3"
        note = ""
        if min(sizes.values()) < 2:  # leverage 1: HC3 undefined
            cov, note = "HC1", "HC1 instead of HC3: an industry has a single firm (leverage 1)"
        res = sm.OLS(y[ok], D.to_numpy()).fit(cov_type=cov)
        Rm = np.zeros((len(present) - 1, len(present)))
        Rm[:, 0] = -1.0
        Rm[np.arange(len(present) - 1), np.arange(1, len(present))] = 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wt = res.wald_test(Rm, scalar=True, use_f=True)
        p_ols = float(np.squeeze(wt.pvalue))
        tests["ols"][c] = p_ols
        lat = {}
        if bayes is not None:
            bc = bayes[bayes["construct"] == c].set_index("group")
            lat = {g: bc.loc[g] for g in present if g in bc.index}
        for k, g in enumerate(present):
            row = {"kind": "industry mean", "variable": c, "model": f"OLS ({cov})", "industry": g, "n": sizes[g],
                   "estimate": float(res.params[k]), "se": float(res.bse[k])}
            if g in lat:
                row.update(latent_mean=float(lat[g]["mean"]), latent_lo=float(lat[g]["lo"]),
                           latent_hi=float(lat[g]["hi"]))
            rows.append(row)
        if len(lat) >= 3:
            rho = stats.spearmanr([float(res.params[present.index(g)]) for g in lat],
                                  [float(lat[g]["mean"]) for g in lat]).statistic
            rank_txt.append(f"{c}: Spearman {rho:.2f}")
        rows.append({"kind": "test", "variable": c, "model": f"OLS ({cov}) robust Wald F, equal industry means",
                     "n": int(ok.sum()), "statistic": float(np.squeeze(wt.statistic)), "df": len(present) - 1,
                     "p": p_ols, "note": note})
        cat = np.where(ok, np.digitize(y, INDEX_BINS), np.nan)
        o = _ordinal_lr(cat, industry)
        tests["ordinal"][c] = o["p"]
        rows.append({"kind": "test", "variable": c, "model": "ordinal logit of the binned index (5 classes), LR test",
                     "n": o["n"], "statistic": o["statistic"], "df": o["df"], "p": o["p"], "note": o["note"]})
    for it in spec.items:
        if not it.family.ordinal:
            continue
        o = _ordinal_lr(survey.items[it.name].to_numpy(dtype=float), industry)
        rows.append({"kind": "ordinal item", "variable": it.name, "model": "ordinal logit on industry, LR test",
                     "n": o["n"], "statistic": o["statistic"], "df": o["df"], "p": o["p"], "note": o["note"]})
    table = pd.DataFrame(rows)
    for col in ("industry", "n", "estimate", "se", "latent_mean", "latent_lo", "latent_hi", "statistic", "df", "p", "note"):
        if col not in table.columns:
            table[col] = np.nan if col != "note" else ""
    table = table[["kind", "variable", "model", "industry", "n", "estimate", "se", "latent_mean", "latent_lo",
                   "latent_hi", "statistic", "df", "p", "note"]]

    variants: dict[str, dict[str, Verdict]] = {}
    for vname, key in (("industry_regression: OLS HC3", "ols"), ("industry_regression: ordinal logit", "ordinal")):
        cells = {k: NOT_ADDRESSED for k in finding_keys(spec)}
        for fk, (c, alpha) in differ.items():
            p = tests[key].get(c, np.nan)
            if c not in spec.construct_names:
                cells[fk] = Verdict.na(f"the spec has no construct named {c!r}")
            elif not np.isfinite(p):
                cells[fk] = Verdict.na("the test is undefined (too few firms per industry)")
            else:
                cells[fk] = Verdict.of_value(bool(p < alpha), f"p={p:.3g}")
        variants[vname] = cells
    ref = ctx.baseline_det()
    flips = flipped(variants, ref)
    evaluated = any_evaluated(variants)
    passed = (not flips) if evaluated else None
    text = [
        "Industry means of each index by OLS on industry dummies with HC3 standard errors; robust Wald F test of "
        "equal means; ordinal logit (statsmodels OrderedModel) of the index cut into 5 classes at "
        f"{', '.join(f'{b:g}' for b in INDEX_BINS)}, and of every ordinal item, on industry: likelihood-ratio test "
        f"against the thresholds-only model. {_holds_text(differ)}",
    ]
    for c in spec.construct_names:
        if c in tests["ols"]:
            text.append(f"{c}: OLS-HC3 p = {tests['ols'][c]:.3g}; ordinal p = {tests['ordinal'].get(c, np.nan):.3g}")
    if rank_txt:
        text.append("Rank agreement of the OLS industry means with the hierarchical latent industry means: "
                    + "; ".join(rank_txt) + ".")
    elif bayes is None:
        text.append("Hierarchical industry means not shown: "
                    + (ctx.fit_problem() or "the fit has no industry level") + ".")
    text.append("Pass criterion: both tests reach the deterministic ANOVA's verdict for every industry finding"
                + (f"; differs: {', '.join(flips)}" if flips else "") + ".")
    return CheckResult(name, passed, table, "\n".join(text), aggregate(ctx.spec, variants), variants)


CHECK = Check(CHECK_NAME, "OLS (HC3) and ordinal logit of the indices and ordinal items on industry, beside the "
              "hierarchical industry means", check_industry_regression)
