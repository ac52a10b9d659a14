"""Check ``factor_analysis``: statsmodels ML factor analysis (oblimin-rotated
exploratory, and one factor per construct) beside the Bayesian standardized loadings;
complementarity from the correlation of the one-factor scores."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from .context import MIN_FIRMS, RobustnessContext
from .findings import det_verdicts, finding_rows
from .result import Check, CheckResult, skip
from .verdict import aggregate, na_verdicts

CHECK_NAME = "factor_analysis"


def _ml_factor(R: np.ndarray, n_factor: int, nobs: int, seed: int):
    from statsmodels.multivariate.factor import Factor

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = Factor(corr=R, n_factor=n_factor, method="ml", nobs=nobs).fit(rng=seed)
        if n_factor > 1:
            res.rotate("oblimin")
    L = _real(res.loadings, "loadings")
    T = _real(getattr(res, "rotation_matrix", np.eye(n_factor)), "rotation matrix")
    return L, T.T @ T


def _real(values, what: str) -> np.ndarray:
    """A real array from statsmodels' factor analysis: its oblique rotation can come back
    complex with a rounding-size imaginary part (statsmodels 0.15), dropped here; a larger
    one is an error, not something to cast away."""
    a = np.asarray(values)
    if np.iscomplexobj(a):
        if np.abs(a.imag).max(initial=0.0) > 1e-8 * max(1.0, float(np.abs(a.real).max(initial=0.0))):
            raise ValueError(f"the factor analysis' {what} are complex (imaginary part up to "
                             f"{np.abs(a.imag).max():.2g})")
        a = a.real
    return np.asarray(a, dtype=float)


def check_factor_analysis(ctx: RobustnessContext) -> CheckResult:
    """Maximum-likelihood factor analysis (statsmodels) beside the Bayesian loadings."""
    name = CHECK_NAME
    spec = ctx.spec
    S = ctx.indices().scaled  # scaled, reverse-coded items (F, I)
    F, I = S.shape
    if F < MIN_FIRMS["factor_analysis"] or F <= I:
        return skip(name, f"too few firms ({F}) for a factor analysis of {I} items: need more firms than items "
                           f"and at least {MIN_FIRMS['factor_analysis']}")
    var = S.var(ddof=1)
    const = [c for c in S.columns if not (var[c] > 0)]
    cols = [c for c in S.columns if c not in const]
    R = S[cols].corr(min_periods=3)
    method = "pairwise-complete Pearson correlations"
    nobs = int((S[cols].notna().astype(int).T @ S[cols].notna().astype(int)).to_numpy().min())
    if R.isna().to_numpy().any() or np.linalg.eigvalsh(R.to_numpy()).min() <= 1e-8:
        cc = S[cols].dropna()
        if len(cc) <= len(cols):
            return skip(name, f"the pairwise correlation matrix is not positive definite and only {len(cc)} firms "
                               f"have every item (need more than {len(cols)})")
        R, method, nobs = cc.corr(), "Pearson correlations over the complete cases", len(cc)
    Rv = R.to_numpy()
    cn = spec.construct_names
    C = len(cn)
    item_c = np.array([cn.index(spec.item(c).construct) for c in cols])
    seed = int(ctx.seed) % (2**32)

    # exploratory: C factors, oblimin, matched to the constructs (permutation and signs)
    L, phi = _ml_factor(Rv, C, nobs, seed)
    best = None
    for perm in itertools.permutations(range(C)):
        signs = np.array([1.0 if L[item_c == c, perm[c]].sum() >= 0 else -1.0 for c in range(C)])
        score = sum(signs[c] * L[item_c == c, perm[c]].sum() for c in range(C))
        if best is None or score > best[0]:
            best = (score, perm, signs)
    _s, perm, signs = best
    Lm = L[:, list(perm)] * signs[None, :]
    phim = phi[np.ix_(perm, perm)] * np.outer(signs, signs)
    primary = np.argmax(np.abs(Lm), axis=1)

    # confirmatory-like: one factor per construct; Thurstone regression factor scores
    one = np.full(len(cols), np.nan)
    scores = np.full((F, C), np.nan)
    notes = []
    for c in range(C):
        idx = np.flatnonzero(item_c == c)
        if idx.size < 3:
            notes.append(f"construct {cn[c]!r} has {idx.size} items: no one-factor model (needs 3)")
            continue
        lc, _ = _ml_factor(Rv[np.ix_(idx, idx)], 1, nobs, seed)
        lc = lc[:, 0] * (1.0 if lc[:, 0].sum() >= 0 else -1.0)
        one[idx] = lc
        Z = S[[cols[k] for k in idx]]
        Z = ((Z - Z.mean()) / Z.std(ddof=1)).to_numpy()
        w = np.linalg.solve(Rv[np.ix_(idx, idx)], lc)
        scores[:, c] = np.where(np.isnan(Z).any(axis=1), np.nan, np.nan_to_num(Z) @ w)

    table = pd.DataFrame({"item": cols, "construct": [cn[c] for c in item_c],
                          "scale": [spec.item(c).scale for c in cols]})
    for c in range(C):
        table[f"efa_{cn[c]}"] = Lm[:, c]
    table["efa_primary"] = [cn[c] for c in primary]
    table["efa_matches"] = primary == item_c
    table["ml_one_factor"] = one
    bayes_txt = ""
    prob = ctx.fit_problem()
    if prob is None:
        from ..measurement import summarize_fit

        lo = summarize_fit(ctx.idata, ctx.fit_spec, prob=ctx.prob).loadings
        b = lo.reindex(cols)
        table["bayes_std_mean"] = b["std_mean"].to_numpy()
        table["bayes_std_lo"] = b["std_lo"].to_numpy()
        table["bayes_std_hi"] = b["std_hi"].to_numpy()
        table["ml_in_bayes_interval"] = (one >= table["bayes_std_lo"]) & (one <= table["bayes_std_hi"])
        ok = np.isfinite(one) & np.isfinite(table["bayes_std_mean"].to_numpy())
        r = float(np.corrcoef(one[ok], table["bayes_std_mean"].to_numpy()[ok])[0, 1]) if ok.sum() >= 3 else float("nan")
        inside = int(table["ml_in_bayes_interval"].sum())
        bayes_txt = (f"Bayesian standardized loadings (latent-response scale) vs one-factor ML loadings (Pearson "
                     f"correlations of the scaled items, attenuated for coarse items): correlation over items "
                     f"{r:.2f}; the ML loading lies in the Bayesian {100 * ctx.prob:g}% interval for {inside} of "
                     f"{len(cols)} items.")
        if C > 1 and "corr" in ctx.idata.posterior:
            a, bb = 0, 1
            pc = float(ctx.idata.posterior["corr"].values[..., a, bb].mean())
            bayes_txt += f" Factor correlation (oblimin) {phim[a, bb]:.2f} vs posterior mean latent correlation {pc:.2f}."
    else:
        bayes_txt = f"Bayesian loadings not shown: {prob}."
    if const:
        notes.append(f"items constant over the firms left out: {', '.join(const)}")
    n_match = int((primary == item_c).sum())
    one_pos = bool(np.all(one[np.isfinite(one)] > 0))
    passed = bool(n_match == len(cols) and one_pos)

    # the positive-correlation findings from the factor scores, by their rule (findings.finding_table)
    corr_findings = spec.findings_of("positive_correlation")
    rows = finding_rows(spec, ctx.survey, scores)
    cells = det_verdicts(rows, scores, spec, only=[f.key for f in corr_findings])
    if C < 2:
        cells = na_verdicts(ctx.spec, "one construct")
    text = [
        f"ML factor analysis of {len(cols)} scaled items ({method}, n = {nobs}); "
        + (f"{C} factors, oblimin rotation, matched to the constructs: " if C > 1 else "one factor: ")
        + f"{n_match} of {len(cols)} items load most on their declared construct.",
        f"One factor per construct: {'all loadings positive' if one_pos else 'NOT all loadings positive'} "
        f"(the model's loadings are positive after reverse coding).",
        bayes_txt,
        _correlation_text(corr_findings, cells),
        *notes,
        "Pass criterion: every item's exploratory factor is its construct and every one-factor loading is positive.",
    ]
    variants = {"factor_analysis: factor scores": cells}
    return CheckResult(name, passed, table, "\n".join(t for t in text if t), aggregate(ctx.spec, variants),
                       variants)


def _correlation_text(findings, cells) -> str:
    """The verdicts of the positive-correlation findings on the factor scores ("" when the
    spec declares none)."""
    if not findings:
        return ""
    one = len(findings) == 1
    parts = [("" if one else f"{f.key} ({' and '.join(f.params['constructs'])}): ")
             + (cells[f.key].text() if f.key in cells else "") for f in findings]
    return ("Complementarity: Pearson correlation of the one-factor (regression) scores, firms with every item of "
            + ("both constructs: " if one else "the two constructs: ") + "; ".join(parts) + ".")


CHECK = Check(CHECK_NAME, "ML factor analysis (exploratory, oblimin; one factor per construct) beside the Bayesian "
              "loadings; complementarity from the one-factor scores", check_factor_analysis)
