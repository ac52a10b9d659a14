"""The global checks of :func:`~smeintl.measurement.fit_checks.fit_checks` (see that module for
what each compares): replicated surveys of new firms from the posterior, and per draw the
all-continuous instruments' likelihood-ratio discrepancy, SRMR, BRMSEA, BCFI and BTLI, or the
other instruments' rank-based and pairwise-table discrepancies; and the helpers they share
with the item and pair checks (``pairwise_spearman``, intervals)."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import compat
from ..spec import Spec
from .generative import draw_items
from .layout import ItemLayout

__all__ = ["GLOBAL_CHECKS", "pairwise_spearman"]

#: the global checks, in the order of the table, with what each compares
GLOBAL_CHECKS: dict[str, str] = {
    "chi2": "likelihood-ratio discrepancy against the saturated normal model (complete cases)",
    "rank_lr": "likelihood-ratio discrepancy of the items' normal scores (rank-based) against the model-implied "
               "correlations",
    "pairwise_g2": "sum over item pairs of the G² of their bivariate tables against the model-implied ones, "
                   "association part",
    "srmr": "standardized root mean square residual, per posterior draw",
    "srmr_adjusted": "SRMR per draw with the posterior spread of the residuals removed (as BRMSEA removes pD)",
    "brmsea": "Bayesian RMSEA (Hoofs et al. 2018; Garnier-Villarreal and Jorgensen 2020)",
    "bcfi": "Bayesian CFI against the independence model (Garnier-Villarreal and Jorgensen 2020)",
    "btli": "Bayesian TLI against the independence model (Garnier-Villarreal and Jorgensen 2020)",
}


def _upper_ppp(rep: np.ndarray, obs: np.ndarray) -> float:
    """``P(D_rep >= D_obs)`` over the draws where both are finite."""
    ok = np.isfinite(rep) & np.isfinite(obs)
    return float(np.mean(rep[ok] >= obs[ok])) if ok.any() else float("nan")


def _interval(a: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = (1.0 - prob) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanmean(a, axis=axis), np.nanquantile(a, lo, axis=axis), np.nanquantile(a, 1.0 - lo, axis=axis))


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (NaN where either is constant)."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, (x * y).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


def pairwise_spearman(data: np.ndarray, mask: np.ndarray, pairs: Sequence[tuple[int, int]],
                      min_n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rank correlations (Pearson correlations of average ranks, so ties are
    handled) of the item ``pairs`` over the firms answering both.

    ``data``: (..., F, I) answers; ``mask``: (F, I) which cells count (answered).
    Returns the correlations (..., n_pairs) and the number of firms per pair; NaN where
    fewer than ``min_n`` firms answer both or an item is constant on them.  Pairs sharing
    one set of firms share their ranks (complete data: one ranking per item)."""
    from scipy.stats import rankdata

    data = np.asarray(data, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    out = np.full(data.shape[:-2] + (len(pairs),), np.nan)
    n_pair = np.zeros(len(pairs), dtype=int)
    keys = []
    for a, b in pairs:
        m = mask[:, a] & mask[:, b]
        keys.append(m.tobytes())
    order = sorted(range(len(pairs)), key=lambda k: keys[k])
    current, ranks = None, {}
    for k in order:
        a, b = pairs[k]
        if keys[k] != current:  # one set of firms at a time: the ranks of the last one are dropped
            current, ranks = keys[k], {}
        m = mask[:, a] & mask[:, b]
        n_pair[k] = int(m.sum())
        if n_pair[k] < min_n:
            continue
        for j in (a, b):
            if j not in ranks:
                ranks[j] = rankdata(data[..., m, j], axis=-1)
        out[..., k] = _pearson(ranks[a], ranks[b])
    return out, n_pair


# ---------------------------------------------------------------------------- population replicates
def _latent_draws(P, g, n_firms: int, C: int, rng) -> np.ndarray:
    """Latent scores of ``n_firms`` new firms per draw from the population model: the
    group mean of each firm's group (``g``; none where the fit has no group level) plus
    correlated standard normal scores, (S, n_firms, C)."""
    S = P["loading"].shape[0]
    R = P["corr"] if "corr" in P else np.ones((S, 1, 1))
    L = np.linalg.cholesky(R)
    eta = np.einsum("sij,sfj->sfi", L, rng.standard_normal((S, n_firms, C)))
    if g is not None and "group_mean" in P:
        eta = eta + P["group_mean"][:, g]
    return eta


def _global_row(check: str, values: np.ndarray, prob: float, ppp: float = np.nan, replicated: float = np.nan,
                note: str = "") -> dict[str, Any]:
    values = np.asarray(values, dtype=float)
    m, lo, hi = _interval(values, prob)
    if values.size == 1:  # a point value: no interval
        lo = hi = np.nan
    return {"check": check, "statistic": GLOBAL_CHECKS[check], "estimate": float(m), "lower": float(lo),
            "upper": float(hi), "replicated": float(replicated), "ppp": float(ppp), "note": note}


_GLOBAL_COLUMNS = ["check", "statistic", "estimate", "lower", "upper", "replicated", "ppp", "note"]


# ---------------------------------------------------------------------------- all-continuous
def _moments(Z: np.ndarray, g: np.ndarray, G: int) -> tuple[np.ndarray, np.ndarray]:
    """Group means (..., G, p) and the pooled within-group covariance (..., p, p), divisor n."""
    n = Z.shape[-2]
    oh = np.zeros((n, G))
    oh[np.arange(n), g] = 1.0
    counts = oh.sum(0)
    means = np.einsum("...np,ng->...gp", Z, oh) / counts[:, None]
    C = Z - means[..., g, :]
    return means, np.einsum("...ni,...nj->...ij", C, C) / n


def _wishart(L: np.ndarray, df: int, rng) -> np.ndarray:
    """Wishart(df, L L') draws, one per leading row of the Cholesky factors ``L`` (S, p, p),
    by Bartlett's decomposition."""
    S, p, _ = L.shape
    A = np.tril(rng.standard_normal((S, p, p)), k=-1)
    idx = np.arange(p)
    A[:, idx, idx] = np.sqrt(rng.chisquare(df - idx, size=(S, p)))
    LA = L @ A
    return LA @ LA.transpose(0, 2, 1)


def _lr(Sigma, mu, means, SW, w, n) -> np.ndarray:
    """-2 (log L(model) - log L(saturated)) per draw: ``n [tr(Sigma^-1 S_W) + sum_g w_g
    (ybar_g - mu_g)' Sigma^-1 (ybar_g - mu_g) + log|Sigma| - log|S_W| - p]``."""
    p = Sigma.shape[-1]
    Sinv = np.linalg.inv(Sigma)
    d = means - mu
    quad = np.einsum("...gi,...ij,...gj,g->...", d, Sinv, d, w)
    tr = np.einsum("...ij,...ji->...", Sinv, SW)
    return n * (tr + quad + np.linalg.slogdet(Sigma)[1] - np.linalg.slogdet(SW)[1] - p)


def _residuals(S: np.ndarray, Sigma: np.ndarray) -> np.ndarray:
    """Bentler's standardized covariance residuals ``(s_ij - sigma_ij) / sqrt(s_ii s_jj)``,
    i <= j (lavaan's ``srmr`` without a mean structure), broadcast over leading axes: (..., p(p+1)/2)."""
    p = S.shape[-1]
    d = np.sqrt(np.diagonal(S, axis1=-2, axis2=-1))
    E = (S - Sigma) / (d[..., :, None] * d[..., None, :])
    iu = np.triu_indices(p)
    return E[..., iu[0], iu[1]]


def _srmr_adjusted(sq: np.ndarray, spread: float) -> np.ndarray:
    """Per draw, ``sqrt(max(0, mean squared residual - spread))``: ``spread`` is the
    posterior variance of the residuals averaged over them, by which the mean squared
    residual of a draw exceeds that of the posterior mean on average (the SRMR analogue of
    subtracting pD from the discrepancy)."""
    return np.sqrt(np.maximum(sq - spread, 0.0))


def _p_loo(ll: np.ndarray) -> float:
    """PSIS-LOO's effective number of parameters of pointwise log-likelihoods (S, n)."""
    S, n = ll.shape
    tree = compat.fit_from_dict({"posterior": {"draw_index": np.arange(S, dtype=float)[None]},
                                 "log_likelihood": {"obs": ll[None]}}, dims={"obs": ["obs_id"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(compat.loo(tree, "obs").p_loo)


def _continuous_global(fit, lay: ItemLayout, P, X, g, std, rng, prob, pd_method, notes):
    if std is None:
        raise ValueError("the fit has no standardization of its continuous items (attrs['standardization'])")
    S, p, C = P["loading"].shape[0], X.shape[1], len(lay.constructs)
    Z = (X - std["mean"]) / std["sd"]
    cc = np.isfinite(Z).all(axis=1)
    n = int(cc.sum())
    if n <= p + 1:
        raise ValueError(f"only {n} firms answer every item: too few for the likelihood-ratio check of {p} items")
    if n < Z.shape[0]:
        notes.append(f"the global checks use the {n} of {Z.shape[0]} firms that answer every item (complete cases)")
    Zc = Z[cc]
    if g is None:
        gc, G, used = np.zeros(n, dtype=int), 1, np.zeros(1, dtype=int)
    else:
        used, gc = np.unique(g[cc], return_inverse=True)
        G = used.size
    counts = np.bincount(gc, minlength=G).astype(float)
    w = counts / n
    onehot = np.zeros((p, C))
    onehot[np.arange(p), lay.construct] = 1.0
    Lam = onehot[None] * (P["loading"] * lay.sign)[:, :, None]  # (S, p, C)
    R = P["corr"] if "corr" in P else np.ones((S, 1, 1))
    Sigma = Lam @ R @ Lam.transpose(0, 2, 1) + np.einsum("si,ij->sij", P["cont_sigma"] ** 2, np.eye(p))
    mu = np.broadcast_to(P["cont_intercept"][:, None, :], (S, G, p)).copy()
    if g is not None:
        mu = mu + np.einsum("sic,sgc->sgi", Lam, P["group_mean"][:, used])
    means, SW = _moments(Zc, gc, G)
    d_obs = _lr(Sigma, mu, means[None], SW[None], w, n)
    # replicated: the complete-case firms (same groups) drawn from the draw's marginal normal, through
    # their sufficient statistics (group means normal, n S_W Wishart with n - G degrees of freedom)
    Lc = np.linalg.cholesky(Sigma)
    means_r = mu + np.einsum("sij,sgj->sgi", Lc, rng.standard_normal((S, G, p))) / np.sqrt(counts)[None, :, None]
    SW_r = _wishart(Lc, n - G, rng) / n
    d_rep = _lr(Sigma, mu, means_r, SW_r, w, n)

    E_obs = _residuals(SW[None], Sigma)  # (S, p(p+1)/2)
    s_obs = np.sqrt(np.mean(E_obs**2, axis=-1))
    s_rep = np.sqrt(np.mean(_residuals(SW_r, Sigma) ** 2, axis=-1))
    s_point = float(np.sqrt(np.mean(_residuals(SW, Sigma.mean(axis=0)) ** 2)))
    s_adj = _srmr_adjusted(np.mean(E_obs**2, axis=-1), float(np.mean(E_obs.var(axis=0))))

    # the independence (null) model: exact posterior under p(mean, var) ~ 1/var per item
    dfw = n - G
    ybar = means  # (G, p)
    ssw = np.diagonal(SW) * n  # (p,)
    sig2 = ssw[None, :] / rng.chisquare(dfw, size=(S, p))
    m0 = ybar[None] + np.sqrt(sig2[:, None, :] / counts[None, :, None]) * rng.standard_normal((S, G, p))
    Sigma0 = np.einsum("si,ij->sij", sig2, np.eye(p))
    d_null = _lr(Sigma0, m0, means[None], SW[None], w, n)

    p_star = G * p + p * (p + 1) // 2
    n_free = 3 * p + C * (C - 1) // 2 + (C * (G - 1) + C if g is not None else 0)
    n_free_null = G * p + p
    if pd_method == "loo":
        Sinv, logdet = np.linalg.inv(Sigma), np.linalg.slogdet(Sigma)[1]
        ll, ll0 = np.empty((S, n)), np.empty((S, n))
        step = max(1, int(4e6 // (n * p)))  # draws per batch: a few tens of MB
        for a in range(0, S, step):
            b = slice(a, min(S, a + step))
            diff = Zc[None] - mu[b][:, gc, :]
            ll[b] = -0.5 * (np.einsum("sni,sij,snj->sn", diff, Sinv[b], diff) + logdet[b][:, None]
                            + p * np.log(2 * np.pi))
            diff0 = Zc[None] - m0[b][:, gc, :]
            ll0[b] = -0.5 * ((diff0**2 / sig2[b][:, None, :]).sum(-1) + np.log(sig2[b]).sum(-1)[:, None]
                             + p * np.log(2 * np.pi))
        pd_h, pd_0 = _p_loo(ll), _p_loo(ll0)
    else:
        pd_h, pd_0 = float(n_free), float(n_free_null)
    df_h, df_0 = p_star - pd_h, p_star - pd_0
    if df_h <= 0:
        notes.append(f"p* = {p_star} sample moments do not exceed pD = {pd_h:.1f}: BRMSEA, BCFI and BTLI are undefined")
    chi_h, chi_0 = d_obs - pd_h, d_null - pd_0
    with np.errstate(invalid="ignore", divide="ignore"):
        brmsea = np.sqrt(np.maximum(chi_h - df_h, 0.0) / (df_h * n))
        bcfi = 1.0 - np.maximum(chi_h - df_h, 0.0) / (chi_0 - df_0)
        btli = (chi_0 / df_0 - chi_h / df_h) / (chi_0 / df_0 - 1.0)
    rows = [
        _global_row("chi2", d_obs, prob, _upper_ppp(d_rep, d_obs), float(np.mean(d_rep)),
                    f"realized discrepancy; replicated mean {np.mean(d_rep):.1f}; p* = {p_star}, pD = {pd_h:.1f}, "
                    f"df = p* - pD = {df_h:.1f}"),
        _global_row("srmr", s_obs, prob, _upper_ppp(s_rep, s_obs), float(np.mean(s_rep)),
                    "each draw's model-implied covariance vs the sample covariance (divisor n)"),
        _global_row("srmr_adjusted", s_adj, prob,
                    note=f"at the posterior mean of the implied covariance: {s_point:.3f} (comparable with "
                         "lavaan's SRMR)"),
        _global_row("brmsea", brmsea, prob, note=f"chi2 = D - pD, df = {df_h:.1f}, N = {n}"),
        _global_row("bcfi", bcfi, prob, note=f"independence model: pD = {pd_0:.1f}, df = {df_0:.1f}"),
        _global_row("btli", btli, prob, note="independence model as for BCFI"),
    ]
    per_draw = {"d_obs": d_obs, "d_rep": d_rep, "srmr": s_obs, "srmr_rep": s_rep, "srmr_adjusted": s_adj,
                "d_null": d_null, "brmsea": brmsea, "bcfi": bcfi, "btli": btli}
    extra = {"srmr_point": s_point, "n_complete": n, "groups": int(G), "p_star": int(p_star), "pd": float(pd_h),
             "pd_null": float(pd_0),
             "pd_method": pd_method, "n_free_parameters": int(n_free), "n_free_parameters_null": int(n_free_null),
             "replicates": "marginal normal of each draw (new latent scores), complete-case firms",
             "null_model": "independent normal items (means per group, one variance per item), "
                           "exact posterior under p(mean, variance) ~ 1 / variance"}
    return pd.DataFrame(rows, columns=_GLOBAL_COLUMNS), per_draw, extra


# ---------------------------------------------------------------------------- other instruments
def _codes(spec: Spec, X, mask, V) -> tuple[np.ndarray, np.ndarray]:
    """Cells of every answer of ``V`` (..., F, I) per item's family, and the number of cells per item."""
    out = np.empty(V.shape, dtype=np.int64)
    k_cells = np.zeros(len(spec.items), dtype=int)
    for k, it in enumerate(spec.items):
        out[..., k], k_cells[k] = it.family.check_cells(V[..., k], it, X[mask[:, k], k])
    return out, k_cells


def _coarsen(codes: np.ndarray, k: int, m: int | None) -> np.ndarray:
    """A map of ``k`` ordered cells onto at most ``m`` groups of adjacent cells with about
    equal shares of the observed ``codes`` (cells without an answer join a neighbour)."""
    if not m or k <= m:
        return np.arange(k)
    counts = np.bincount(codes[codes >= 0], minlength=k).astype(float)
    cum = np.cumsum(counts) / max(counts.sum(), 1.0)
    # cell c joins group floor(m * share of answers below its middle)
    mid = cum - counts / max(counts.sum(), 1.0) / 2.0
    g = np.minimum((mid * m).astype(int), m - 1)
    return np.unique(g, return_inverse=True)[1]


def _normal_scores(V: np.ndarray) -> np.ndarray:
    """Each column's van der Waerden normal scores over the rows (axis -2; ties share their
    average rank): ``Phi^-1((rank - 1/2) / n)``."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    return ndtri((rankdata(V, axis=-2) - 0.5) / V.shape[-2])


def _correlation(Z: np.ndarray) -> np.ndarray:
    """Correlation matrices of the columns of ``Z`` (..., n, p) (NaN for a constant column)."""
    Z = Z - Z.mean(axis=-2, keepdims=True)
    C = np.einsum("...ni,...nj->...ij", Z, Z)
    d = np.sqrt(np.diagonal(C, axis1=-2, axis2=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return C / (d[..., :, None] * d[..., None, :])


def _rank_lr(Rm: np.ndarray, R: np.ndarray, n: int) -> np.ndarray:
    """The normal likelihood-ratio discrepancy of the correlation matrix ``R`` of ``n``
    firms' normal scores against ``Rm``: ``n [tr(Rm^-1 R) + log|Rm| - log|R| - p]``
    (NaN where a matrix is not positive definite)."""
    p = R.shape[-1]
    with np.errstate(invalid="ignore"):
        s_m, ld_m = np.linalg.slogdet(Rm)
        s_r, ld_r = np.linalg.slogdet(R)
        tr = np.einsum("...ij,...ji->...", np.linalg.inv(Rm), R)
        return np.where((s_m > 0) & (s_r > 0), n * (tr + ld_m - ld_r - p), np.nan)


def _tables(ca: np.ndarray, cb: np.ndarray, kb: int, kab: int) -> np.ndarray:
    """Counts of the bivariate table of cells ``ca``, ``cb`` (B, n; -1 left out) per leading row: (B, kab)."""
    B = ca.shape[0]
    ok = (ca >= 0) & (cb >= 0)
    flat = (np.arange(B)[:, None] * kab + ca * kb + cb)[ok]
    return np.bincount(flat, minlength=B * kab).reshape(B, kab).astype(float)


def _g2(O: np.ndarray, E: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * np.where(O > 0, O * np.log(O / E), 0.0).sum(axis=-1)


def _g2_association(O: np.ndarray, E: np.ndarray, ka: int, kb: int) -> np.ndarray:
    """The G² of the bivariate tables ``O`` against ``E`` (B, ka kb) less the G² of their two
    univariate margins: the part of the misfit in the association of the two items (each
    item's own distribution is what the item checks compare, and the fit has tuned the
    margins to the observed data, which would hide a misfit in the associations)."""
    Ot, Et = O.reshape(-1, ka, kb), E.reshape(-1, ka, kb)
    return _g2(O, E) - _g2(Ot.sum(-1), Et.sum(-1)) - _g2(Ot.sum(-2), Et.sum(-2))

#: added to every cell of a model-implied bivariate table before it is normalized
TABLE_SMOOTHING = 0.5


def _pairwise_global(lay: ItemLayout, spec: Spec, P, X, mask, g, grouped, std, rng, prob, pairs, n_model,
                     table_cells, notes):
    S, F, C = P["loading"].shape[0], X.shape[0], len(lay.constructs)
    r_obs, _ = pairwise_spearman(X, mask, pairs)
    codes_obs, k_cells = _codes(spec, X, mask, X)
    maps = [_coarsen(codes_obs[:, k][mask[:, k]], int(k_cells[k]), table_cells) for k in range(X.shape[1])]
    k_cells = np.array([int(mp.max()) + 1 for mp in maps])

    def coarse(codes):
        out = np.full(codes.shape, -1, dtype=np.int64)
        for k, mp in enumerate(maps):
            ok = codes[..., k] >= 0
            out[..., k][ok] = mp[codes[..., k][ok]]
        return out

    codes_obs = coarse(codes_obs)
    g_model = np.resize(g, n_model)
    sq, sq_rep = np.empty(S), np.empty(S)
    R1, R2 = np.empty((S, len(pairs))), np.empty((S, len(pairs)))
    half = n_model // 2
    g2_obs, g2_rep = np.zeros(S), np.zeros(S)
    # the rank likelihood ratio: the firms answering every item, their items' normal scores
    cc = mask.all(axis=1)
    n_cc = int(cc.sum())
    use_lr = n_cc > X.shape[1] + 1
    lr_obs, lr_rep = np.full(S, np.nan), np.full(S, np.nan)
    if use_lr:
        R_obs = _correlation(_normal_scores(X[cc]))
        use_lr = bool(np.isfinite(R_obs).all())
    batch = max(1, int(2e6 // max(1, (n_model + F) * X.shape[1])))
    for a0 in range(0, S, batch):
        sl = slice(a0, min(S, a0 + batch))
        Pb = {k: v[sl] for k, v in P.items()}
        # the model: a large simulated sample per draw (complete); a replicate of the survey (its missingness)
        Ym = draw_items(Pb, _latent_draws(Pb, g_model if grouped else None, n_model, C, rng), lay, rng,
                        standardization=std)
        Yr = draw_items(Pb, _latent_draws(Pb, g if grouped else None, F, C, rng), lay, rng, standardization=std)
        Yr[:, ~mask] = np.nan
        # the draw's population correlations from two independent halves of the simulated firms:
        # (r - r_1)(r - r_2) estimates (r - rho)^2 without the simulation's own noise
        full = np.ones((half, X.shape[1]), dtype=bool)
        r1, _ = pairwise_spearman(Ym[:, :half], full, pairs)
        r2, _ = pairwise_spearman(Ym[:, half:2 * half], full, pairs)
        R1[sl], R2[sl] = r1, r2
        if use_lr:
            Rm = _correlation(_normal_scores(Ym))
            lr_obs[sl] = _rank_lr(Rm, R_obs[None], n_cc)
            lr_rep[sl] = _rank_lr(Rm, _correlation(_normal_scores(Yr[:, cc])), n_cc)
        r_rep, _ = pairwise_spearman(Yr, mask, pairs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sq[sl] = np.nanmean((r_obs[None] - r1) * (r_obs[None] - r2), axis=-1)
            sq_rep[sl] = np.nanmean((r_rep - r1) * (r_rep - r2), axis=-1)
        cm, cr = coarse(_codes(spec, X, mask, Ym)[0]), coarse(_codes(spec, X, mask, Yr)[0])
        for a, b in pairs:
            kb, kab = int(k_cells[b]), int(k_cells[a] * k_cells[b])
            O = _tables(codes_obs[None, :, a], codes_obs[None, :, b], kb, kab)[0]
            n_ab = O.sum()
            if n_ab == 0:
                continue
            M = _tables(cm[..., a], cm[..., b], kb, kab)
            E = n_ab * (M + TABLE_SMOOTHING) / (M.sum(-1, keepdims=True) + TABLE_SMOOTHING * kab)
            ka = int(k_cells[a])
            g2_obs[sl] += _g2_association(O[None], E, ka, kb)
            g2_rep[sl] += _g2_association(_tables(cr[..., a], cr[..., b], kb, kab), E, ka, kb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        srmr, srmr_rep = np.sqrt(np.maximum(sq, 0.0)), np.sqrt(np.maximum(sq_rep, 0.0))
        rho = np.nanmean((R1 + R2) / 2.0, axis=0)  # the model-implied correlations, averaged over the draws
        point = float(np.sqrt(np.nanmean((r_obs - rho) ** 2)))
        # the posterior variance of each implied correlation: the covariance of the two halves over the draws
        spread = float(np.nanmean(np.nanmean((R1 - np.nanmean(R1, 0)) * (R2 - np.nanmean(R2, 0)), axis=0)))
    s_adj = _srmr_adjusted(sq, spread)
    p = X.shape[1]
    if not use_lr:
        notes.append(f"the rank likelihood ratio needs more than {p + 1} firms answering every item, each item "
                     f"varying among them ({n_cc} answer every item)")
    elif n_cc < F:
        notes.append(f"the rank likelihood ratio uses the {n_cc} of {F} firms that answer every item")
    rows = [
        _global_row("rank_lr", lr_obs, prob, _upper_ppp(lr_rep, lr_obs), float(np.nanmean(lr_rep)),
                    f"normal scores of the {n_cc} firms answering every item; model-implied correlations from "
                    f"{n_model} simulated firms per draw; {p * (p - 1) // 2} correlations"),
        _global_row("pairwise_g2", g2_obs, prob, _upper_ppp(g2_rep, g2_obs), float(np.mean(g2_rep)),
                    f"association part (table less its margins) of {len(pairs)} item pairs' tables, "
                    f"{'cells as they are' if not table_cells else f'at most {table_cells} cells per item'}; "
                    f"expected tables from {n_model} simulated firms per draw (+{TABLE_SMOOTHING:g} per cell)"),
        _global_row("srmr", srmr, prob, _upper_ppp(srmr_rep, srmr), float(np.mean(srmr_rep)),
                    "Spearman correlations, observed vs each draw's model-implied ones (simulated; the "
                    "simulation's noise removed)"),
        _global_row("srmr_adjusted", s_adj, prob,
                    note=f"at the model-implied correlations averaged over the draws: {point:.3f}"),
    ]
    per_draw = {"d_obs": lr_obs, "d_rep": lr_rep, "g2_obs": g2_obs, "g2_rep": g2_rep, "srmr": srmr,
                "srmr_rep": srmr_rep, "srmr_adjusted": s_adj}
    extra = {"srmr_point": point, "model_firms": int(n_model), "n_pairs": len(pairs), "n_complete": n_cc,
             "cells": {n: int(k) for n, k in zip(lay.names, k_cells)},
             "replicates": "population model of each draw (new latent scores), the survey's firms, groups and "
                           "missing answers",
             "table_smoothing": TABLE_SMOOTHING, "table_cells": table_cells}
    return pd.DataFrame(rows, columns=_GLOBAL_COLUMNS), per_draw, extra
