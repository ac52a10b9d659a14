"""Evaluation of the headline findings an instrument declares (``[[findings]]`` in the
spec, :mod:`smeintl.spec_findings`): one evaluator per kind of finding
(:data:`EVALUATORS`), the findings table (:func:`finding_table`, one row per declared
finding in spec order) and the statistics the evaluators use (ANOVA and one-sided
Pearson p-values vectorized over draws, the plain-words :func:`verdict`).

:func:`smeintl.predictive.compare` and the robustness checks both build their findings
through :func:`finding_table`, so they apply the same rules.  The operational
definitions are in ``docs/findings.md``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .profiles import flag_name, pearson_r
from .spec import Finding, Spec

__all__ = [
    "FINDING_COLUMNS",
    "EVALUATORS",
    "FindingInputs",
    "finding_table",
    "verdict",
    "anova_pvalue",
    "pearson_greater_pvalue",
    "quantiles",
]

#: the columns of the findings table (``findings.csv``), in order
FINDING_COLUMNS: tuple[str, ...] = (
    "finding",
    "definition",
    "deterministic",
    "posterior_probability",
    "verdict",
    "replicated_probability",
    "deterministic_value",
    "deterministic_quantity",
    "posterior_median",
    "posterior_lo",
    "posterior_hi",
    "posterior_quantity",
    "note",
)


def verdict(p: float, reason: str | None = None) -> str:
    """Plain-words verdict from the posterior probability that a finding holds.

    ``p >= 0.95`` holds; ``0.75 <= p < 0.95`` probably holds; ``0.25 < p < 0.75``
    uncertain; ``0.05 <= p <= 0.25`` probably does not hold; ``p < 0.05`` does not hold.
    NaN gives ``reason`` (e.g. "not estimable: ...").
    """
    if p is None or not np.isfinite(p):
        return reason or "not estimable"
    if p >= 0.95:
        word = "holds"
    elif p >= 0.75:
        word = "probably holds"
    elif p > 0.25:
        word = "uncertain"
    elif p >= 0.05:
        word = "probably does not hold"
    else:
        word = "does not hold"
    return f"{word} (probability {p:.2f})"


# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------
def anova_pvalue(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """One-way ANOVA (equal variances) p-value of ``values`` ``(..., F)`` on integer
    ``groups`` ``(F,)``, over the finite values; groups without values are dropped.
    NaN with fewer than 2 groups or no residual degrees of freedom; vectorized over
    leading axes (the same F test as ``statsmodels.stats.oneway.anova_oneway`` with
    ``use_var='equal'``)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    g = np.asarray(groups)
    ok = np.isfinite(v)
    levels = np.unique(g)
    N = ok.sum(axis=-1)
    tot = np.where(ok, v, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        grand = tot / N
        ssb = np.zeros(v.shape[:-1])
        ssw = np.zeros(v.shape[:-1])
        G = np.zeros(v.shape[:-1], dtype=int)
        for lv in levels:
            m = ok & (g == lv)
            n = m.sum(axis=-1)
            mean = np.where(n > 0, np.where(m, v, 0.0).sum(axis=-1) / np.maximum(n, 1), 0.0)
            ssb += n * (mean - grand) ** 2
            ssw += np.where(m, (v - mean[..., None]) ** 2, 0.0).sum(axis=-1)
            G += n > 0
        dfb, dfw = G - 1, N - G
        valid = (dfb >= 1) & (dfw >= 1)
        Fstat = (ssb / np.maximum(dfb, 1)) / (ssw / np.maximum(dfw, 1))
        p = stats.f.sf(Fstat, np.maximum(dfb, 1), np.maximum(dfw, 1))
    p = np.where(valid & np.isfinite(Fstat), p, np.where(valid & (ssw == 0) & (ssb > 0), 0.0, np.nan))
    return p[()] if p.ndim == 0 else p


def pearson_greater_pvalue(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r over the pairs present and its one-sided p-value for r > 0 (t test with
    n - 2 df, as ``scipy.stats.pearsonr(alternative='greater')``); vectorized over
    leading axes.  Returns ``(r, p)``."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    r = pearson_r(x, y)
    n = (np.isfinite(x) & np.isfinite(y)).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = r * np.sqrt((n - 2) / np.maximum(1.0 - r**2, 0.0))
        p = stats.t.sf(t, np.maximum(n - 2, 1))
    p = np.where(np.isfinite(r) & (n >= 3), p, np.nan)
    return r, (p[()] if np.ndim(p) == 0 else p)


def quantiles(a: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(median, lo, hi)`` over ``axis``, NaN-aware: the equal-tailed ``prob`` interval
    (quantiles ``(1 - prob) / 2`` and ``(1 + prob) / 2``) and the 0.5 quantile."""
    q = [(1.0 - prob) / 2.0, 0.5, (1.0 + prob) / 2.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, med, hi = np.nanquantile(np.asarray(a, dtype=float), q, axis=axis)
    return med, lo, hi


def _prob(cond: np.ndarray, valid: np.ndarray | None = None) -> float:
    cond = np.asarray(cond, dtype=bool)
    if valid is not None:
        cond = cond[np.asarray(valid, dtype=bool)]
    return float(cond.mean()) if cond.size else float("nan")


def _anova_statsmodels(v: np.ndarray, groups: np.ndarray) -> float:
    from statsmodels.stats.oneway import anova_oneway

    ok = np.isfinite(v)
    g = np.asarray(groups)[ok]
    data = [v[ok][g == lv] for lv in np.unique(g)]
    data = [d for d in data if d.size]
    if len(data) < 2 or ok.sum() - len(data) < 1:
        return float("nan")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = anova_oneway(data, use_var="equal")
    return float(res.pvalue)


def _pearson_scipy(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan"), float("nan")
    res = stats.pearsonr(x[ok], y[ok], alternative="greater")
    return float(res.statistic), float(res.pvalue)


# ---------------------------------------------------------------------------
# the evaluators, one per kind
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FindingInputs:
    """What an evaluator reads: the spec (constructs, thresholds' flags, types), the
    interval probability, deterministic indices ``obs_ind`` (F, C) and replicated ones
    ``rep_ind`` (S, F, C), the :func:`~smeintl.predictive.sample_statistics` of the
    observed, replicated and true-score versions, the posterior parameters ``P`` (per
    draw; empty without a fit) and the industry codes and names."""

    spec: Spec
    prob: float
    obs_ind: np.ndarray
    rep_ind: np.ndarray
    st_obs: Mapping[str, Any]
    st_rep: Mapping[str, Any]
    st_true: Mapping[str, Any]
    P: Mapping[str, Any]
    groups: np.ndarray | None
    gnames: Sequence[str]


def _row(x: FindingInputs, f: Finding, det=None, p=np.nan, p_rep=np.nan, det_value=np.nan, det_q="", post=None,
         post_q="", note="") -> dict[str, Any]:
    if post is not None and np.size(post):
        med, lo, hi = quantiles(np.asarray(post, dtype=float), x.prob)
        med, lo, hi = float(med), float(lo), float(hi)
    else:
        med = lo = hi = float("nan")
    return {
        "finding": f.key,
        "definition": f.definition,
        "deterministic": None if det is None else bool(det),
        "posterior_probability": float(p),
        "verdict": verdict(p, note or None),
        "replicated_probability": float(p_rep),
        "deterministic_value": float(det_value),
        "deterministic_quantity": det_q,
        "posterior_median": med,
        "posterior_lo": lo,
        "posterior_hi": hi,
        "posterior_quantity": post_q,
        "note": note,
    }


def _lacking_construct(name: str) -> str:
    return f"not applicable: the spec has no construct named {name!r}"


def _share_row(x: FindingInputs, f: Finding, holds: Callable[[Any], Any]) -> dict[str, Any]:
    """A share finding: ``holds(share)`` on the share of firms flagged on the construct."""
    c = f.params["construct"]
    if c not in x.spec.construct_names:
        return _row(x, f, note=_lacking_construct(c))
    key = f"share_{flag_name(c, x.spec)}"
    o, t, r = x.st_obs[key], x.st_true[key], x.st_rep[key]
    return _row(x, f, det=holds(o) if np.isfinite(o) else None, p=_prob(holds(t), np.isfinite(t)),
                p_rep=_prob(holds(r), np.isfinite(r)), det_value=o, det_q=key, post=t, post_q=f"{key} (true score)")


def share_above(x: FindingInputs, f: Finding) -> dict[str, Any]:
    """``share_above``: the share of firms flagged on ``construct`` is > ``share``."""
    thr = f.params["share"]
    return _share_row(x, f, lambda v: v > thr)


def share_between(x: FindingInputs, f: Finding) -> dict[str, Any]:
    """``share_between``: the share of firms flagged on ``construct`` lies in ``range``."""
    lo, hi = f.params["range"]
    return _share_row(x, f, lambda v: (v >= lo) & (v <= hi))


def no_type(x: FindingInputs, f: Finding) -> dict[str, Any]:
    """``no_type``: no firm's nearest ideal type is ``type`` (count == 0)."""
    t = f.params["type"]
    if t not in x.spec.profiles.type_names:
        return _row(x, f, note=f"not applicable: the spec declares no ideal type named {t!r}")
    key = f"count_{t}"
    o, tr, r = x.st_obs[key], x.st_true[key], x.st_rep[key]
    return _row(x, f, det=o == 0, p=_prob(tr == 0), p_rep=_prob(r == 0), det_value=o, det_q=key, post=tr,
                post_q=f"{key} (true score)")


def groups_differ(x: FindingInputs, f: Finding) -> dict[str, Any]:
    """``groups_differ``: one-way ANOVA of the ``construct`` index on industry, p <
    ``alpha``; posterior: latent Cohen's f of the industry means > ``min_effect_f``."""
    c, alpha, min_f = f.params["construct"], f.params["alpha"], f.params["min_effect_f"]
    cn = x.spec.construct_names
    if c not in cn:
        return _row(x, f, note=_lacking_construct(c))
    j = cn.index(c)
    if x.groups is None or len(x.gnames) < 2:
        return _row(x, f, note="not estimable: the survey has fewer than 2 industries (or no industry column)")
    det_p = _anova_statsmodels(x.obs_ind[:, j], x.groups)
    rep_p = anova_pvalue(x.rep_ind[..., j], x.groups)
    p_rep = _prob(rep_p < alpha, np.isfinite(rep_p))
    det = None if not np.isfinite(det_p) else det_p < alpha
    if "group_mean" not in x.P:
        return _row(x, f, det=det, p_rep=p_rep, det_value=det_p, det_q="ANOVA p",
                    note="not estimable: the fit has no industry level (group=False)")
    gm = np.asarray(x.P["group_mean"], dtype=float)[..., j]  # (S, G)
    fval = np.sqrt(((gm - gm.mean(axis=-1, keepdims=True)) ** 2).mean(axis=-1))
    return _row(x, f, det=det, p=_prob(fval > min_f), p_rep=p_rep, det_value=det_p, det_q="ANOVA p",
                post=fval, post_q="latent Cohen's f of the industry means")


def positive_correlation(x: FindingInputs, f: Finding) -> dict[str, Any]:
    """``positive_correlation``: Pearson r of the two ``constructs`` > 0 with one-sided p
    < ``alpha``; posterior: their latent correlation > 0."""
    (ca, cb), alpha = f.params["constructs"], f.params["alpha"]
    cn = x.spec.construct_names
    if ca not in cn or cb not in cn:
        return _row(x, f, note=f"not applicable: the spec needs constructs named {ca!r} and {cb!r}")
    a, b = cn.index(ca), cn.index(cb)
    r_obs, p_obs = _pearson_scipy(x.obs_ind[:, a], x.obs_ind[:, b])
    r_rep, p_rep_ = pearson_greater_pvalue(x.rep_ind[..., a], x.rep_ind[..., b])
    det = None if not np.isfinite(p_obs) else (r_obs > 0) and (p_obs < alpha)
    p_rep = _prob((r_rep > 0) & (p_rep_ < alpha), np.isfinite(p_rep_))
    note = f"deterministic r = {r_obs:.3f}, one-sided p = {p_obs:.3g}" if np.isfinite(p_obs) else ""
    if "corr" in x.P:
        corr = np.asarray(x.P["corr"], dtype=float)[:, a, b]
        return _row(x, f, det=det, p=_prob(corr > 0), p_rep=p_rep, det_value=r_obs, det_q="Pearson r", post=corr,
                    post_q="latent correlation", note=note)
    return _row(x, f, det=det, p_rep=p_rep, det_value=r_obs, det_q="Pearson r",
                note="not estimable: the fit has no latent correlation")


#: the evaluator of each kind of finding (:data:`smeintl.spec.FINDING_KINDS`)
EVALUATORS: dict[str, Callable[[FindingInputs, Finding], dict[str, Any]]] = {
    "share_above": share_above,
    "share_between": share_between,
    "no_type": no_type,
    "groups_differ": groups_differ,
    "positive_correlation": positive_correlation,
}


def finding_table(spec, prob, obs_ind, rep_ind, st_obs, st_rep, st_true, P, groups, gnames, idata) -> pd.DataFrame:
    """The findings table: one row per finding the spec declares (``spec.findings``, in
    order; no rows, the same columns, when it declares none), evaluated by the kind's
    evaluator (:data:`EVALUATORS`).  ``obs_ind`` (F, C) deterministic indices, ``rep_ind``
    (S, F, C) replicated indices, ``st_obs`` / ``st_rep`` / ``st_true`` the
    :func:`~smeintl.predictive.sample_statistics` of observed, replicated and true-score
    indices, ``P`` the posterior parameters per draw, ``groups`` / ``gnames`` the
    industry codes and labels, ``idata`` the fit (or None: with an empty ``P`` the
    posterior columns of the fit-dependent kinds are then left empty).  Used by
    :func:`~smeintl.predictive.compare` and by the robustness checks, so both apply the
    same finding rules (``docs/findings.md``).
    """
    x = FindingInputs(spec, float(prob), obs_ind, rep_ind, st_obs, st_rep, st_true, P, groups, tuple(gnames))
    rows = [EVALUATORS[f.kind](x, f) for f in spec.findings]
    return pd.DataFrame(rows, columns=list(FINDING_COLUMNS))
