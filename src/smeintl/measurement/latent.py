"""The latent structure's pieces: the LKJ correlation through canonical partial
correlations, the scores' centred, non-centred and split parameterizations, and the
sufficient statistics of the marginal (all-continuous) likelihood."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["INTEGRATED", "answer_scores", "lkj_cpc_alpha", "marginal_likelihood"]

#: parameterizations that integrate the scores out of the likelihood: the stored per-firm
#: log-likelihood (``responses``) is already integrated over them, and the scores are drawn
#: after sampling, given each draw of the parameters
INTEGRATED = ("marginal", "quadrature")


def lkj_cpc_alpha(C: int, eta: float) -> np.ndarray:
    """Beta parameters of the canonical partial correlations under LKJ(eta).

    With the vine construction of Lewandowski, Kurowicka & Joe (2009), the partial
    correlations of column i (0-based) are independent, (cpc + 1) / 2 ~
    Beta(a_i, a_i) with a_i = eta + (C - 2 - i) / 2; for C = 2 this is the familiar
    (r + 1) / 2 ~ Beta(eta, eta).  Returned in the order of the strictly lower
    triangle, column by column.
    """
    out = []
    for i in range(C - 1):
        out += [eta + (C - 2 - i) / 2.0] * (C - 1 - i)
    return np.array(out)


def _lkj_cholesky(pm, pt, C: int, eta):
    """Cholesky factor of a C x C correlation matrix with an LKJ(eta) prior.

    Built from canonical partial correlations (a closed-form map, no matrix
    decomposition in the gradient): L[0, 0] = 1, L[j, i] = z[j, i] * sqrt(1 -
    sum_{k<i} L[j, k]^2), L[j, j] = sqrt(1 - sum_{k<j} L[j, k]^2).
    """
    offsets = lkj_cpc_alpha(C, 0.0)
    alpha = eta + offsets  # lkj_cpc_alpha is eta plus offsets; eta may be a shared variable
    u = pm.Beta("corr_cpc", alpha=alpha, beta=alpha, shape=len(offsets))
    z = 2.0 * u - 1.0
    L = pt.zeros((C, C))
    L = pt.set_subtensor(L[0, 0], 1.0)
    k = 0
    rows: dict[int, list] = {j: [] for j in range(C)}
    for i in range(C - 1):
        for j in range(i + 1, C):
            prev = rows[j]
            rem = 1.0 - sum(x**2 for x in prev) if prev else 1.0
            val = z[k] * pt.sqrt(rem)
            rows[j].append(val)
            L = pt.set_subtensor(L[j, i], val)
            k += 1
    for j in range(1, C):
        L = pt.set_subtensor(L[j, j], pt.sqrt(1.0 - sum(x**2 for x in rows[j])))
    return L


def _pattern_groups(Z: np.ndarray, groups: np.ndarray):
    """Yield (observed columns, group, rows) for each missingness pattern x group."""
    obs = ~np.isnan(Z)
    keys: dict[tuple[bytes, int], list[int]] = {}
    for f in range(Z.shape[0]):
        if obs[f].any():
            keys.setdefault((obs[f].tobytes(), int(groups[f])), []).append(f)
    for (key, g), rows in keys.items():
        yield np.nonzero(np.frombuffer(key, dtype=bool))[0], g, np.asarray(rows)


def _pattern_statistics(Z: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    """Zero-padded sufficient statistics per missingness pattern x group (``B`` blocks,
    ``P`` patterns): ``observed`` (P, I) pattern masks, per block ``pattern`` (B,),
    ``first_row`` (B,) (a firm of the block, for its group mean), ``n`` (B,), ``s1``
    (B, I) sums of the answers; per pattern ``n_pattern`` (P,) and ``s2_pattern``
    (P, I, I) sums of cross products (unobserved cells count as 0)."""
    I = Z.shape[1]
    patterns: dict[bytes, int] = {}
    masks, pat, first, n, s1 = [], [], [], [], []
    s2: list[np.ndarray] = []
    n_pat: list[float] = []
    for cols, _g, rows in _pattern_groups(Z, groups):
        mask = np.zeros(I, dtype=bool)
        mask[cols] = True
        key = mask.tobytes()
        if key not in patterns:
            patterns[key] = len(masks)
            masks.append(mask)
            s2.append(np.zeros((I, I)))
            n_pat.append(0.0)
        p = patterns[key]
        Zs = np.where(mask, Z[rows], 0.0)
        pat.append(p)
        first.append(int(rows[0]))
        n.append(float(rows.size))
        s1.append(Zs.sum(0))
        s2[p] += Zs.T @ Zs
        n_pat[p] += float(rows.size)
    return {"observed": np.array(masks, dtype=bool).reshape(-1, I), "pattern": np.array(pat, dtype=int),
            "first_row": np.array(first, dtype=int), "n": np.array(n), "s1": np.array(s1).reshape(-1, I),
            "s2_pattern": np.array(s2).reshape(-1, I, I), "n_pattern": np.array(n_pat)}


def _normal_chain(mu_f, chol, n_constructs: int, column):
    """The multivariate normal eta_f ~ MvNormal(mu_f, L L') as a chain of univariate normals,
    eta_c | eta_<c ~ Normal(mu_c + sum_k<c L_ck z_k, L_cc) with z_k = (eta_k - mean_k) / L_kk.
    ``column(c, mean, sigma)`` returns construct c's column of scores (a free variable, or
    a given column whose density it records); returns the columns."""
    zs, cols = [], []
    for c in range(n_constructs):
        mean = mu_f[:, c]
        for k in range(c):
            mean = mean + chol[c, k] * zs[k]
        e = column(c, mean, chol[c, c])
        zs.append((e - mean) / chol[c, c])
        cols.append(e)
    return cols


def _centered_scores(pm, pt, mu_f, chol, constructs: Sequence[str]):
    """Latent scores eta_f ~ MvNormal(mu_f, L L') for every firm, sampled centred.

    Written as a chain of univariate normals (:func:`_normal_chain`), one free variable
    ``eta_<construct>`` per construct (its density is exactly the multivariate normal's).  PyMC's ``MvNormal`` with
    a (firm, construct) mean solves one triangular system per firm: about 10 ms of extra
    gradient time at 10,000 firms against next to nothing here.  ``eta`` stacks the columns.
    """
    cols = _normal_chain(mu_f, chol, len(constructs),
                         lambda c, mean, sigma: pm.Normal(f"eta_{constructs[c]}", mean, sigma, dims="firm"))
    return pm.Deterministic("eta", pt.stack(cols, axis=1), dims=("firm", "construct"))


def _split_scores(pm, pt, mu_f, chol, constructs: Sequence[str], n_firms: int):
    """Latent scores eta_f ~ MvNormal(mu_f, L L') sampled as each construct's sample mean,
    log sample sd and standardized shape: eta_c = mean_c + sd_c * (u_c - mean(u_c)) / sd(u_c).

    Free: ``eta_u`` (firm, construct) ~ Normal(0, 1), whose standardized columns are uniform
    on the sphere of standardized vectors; ``eta_mean`` and ``eta_logsd`` (flat).  The
    density of eta enters as a potential, with the log-Jacobian of eta's polar coordinates,
    (F - 2) log sd per construct, plus log sd for sampling sd on the log scale:

        log p(eta(mean, log sd, u)) + (F - 1) log sd + sum log N(u | 0, 1)

    whose margin in eta is exactly the multivariate normal.  With many firms the scores'
    mean and spread are then coordinates of their own, which the data pin to about
    1/sqrt(F), instead of a direction shared by every score (see ``MeasurementModel._standardized``).
    Returns eta, the standardized scores, and each construct's sample mean and sd.
    """
    u = pm.Normal("eta_u", 0.0, 1.0, dims=("firm", "construct"))
    loc = pm.Flat("eta_mean", dims="construct")
    logsd = pm.Flat("eta_logsd", dims="construct")
    sd = pt.exp(logsd)
    shape = (u - u.mean(axis=0)) / u.std(axis=0)
    eta = pm.Deterministic("eta", loc + sd * shape, dims=("firm", "construct"))
    logps = []

    def column(c, mean, sigma):
        logps.append(pm.logp(pm.Normal.dist(mean, sigma), eta[:, c]).sum())
        return eta[:, c]

    _normal_chain(mu_f, chol, len(constructs), column)
    pm.Potential("eta_prior", sum(logps) + (n_firms - 1) * logsd.sum())
    return eta, shape, loc, sd


def answer_scores(X: np.ndarray, layout) -> np.ndarray:
    """Each firm's standardized score per construct from its answers alone: the mean, over
    the construct's items the firm answered, of each answer's normal score (the normal
    quantile of its mid-rank among the item's answers, ties sharing a rank; reversed for
    reverse-coded items), standardized across firms.  ``X``: (firm, item) answers in the
    layout's item order, NaN where missing; ``layout``: the instrument's
    :class:`~smeintl.measurement.ItemLayout`.  Standardized over the firms that answered
    a construct's items; a firm without answers there scores 0, the construct's mean.

    Rank-based, so every item family is read alike, and oriented as the loadings are.
    The split scores start here (:func:`split_start`): with thousands of firms a start
    unrelated to the answers lies hundreds of thousands of log-density units from the
    posterior, and a chain can end its warm-up there.
    """
    from scipy.stats import norm, rankdata

    X = np.asarray(X, dtype=float)
    F = X.shape[0]
    observed = ~np.isnan(X)
    Z = np.zeros_like(X)
    for i in range(X.shape[1]):
        o = observed[:, i]
        if o.any():
            Z[o, i] = layout.sign[i] * norm.ppf((rankdata(X[o, i]) - 0.5) / o.sum())
    out = np.zeros((F, len(layout.constructs)))
    for c in range(out.shape[1]):
        items = np.asarray(layout.construct) == c
        n = observed[:, items].sum(axis=1)
        answered = n > 0
        mean = Z[answered][:, items].sum(axis=1) / n[answered]
        sd = mean.std()
        if sd > 0:
            out[answered, c] = (mean - mean.mean()) / sd
    return out


def split_start(X: np.ndarray, layout) -> dict[str, np.ndarray]:
    """The sampler's start of the split scores (:func:`_split_scores`): their free ``eta_u``
    at :func:`answer_scores`, to which the sampler adds its jitter."""
    return {"eta_u": answer_scores(X, layout)}


def marginal_likelihood(pm, pt, inp, lay, pri, X, mu_f, chol, loading, std, group_codes):
    """All-continuous items with the latent scores integrated out, through sufficient
    statistics (``MeasurementModel(parameterization="marginal")``; ``lay``: the item
    layout, ``pri``: the spec's priors, ``mu_f``: each firm's group means, None without
    the group level).

    For the firms of one missingness pattern p (observed items o) and group g,
    y_f ~ MvNormal(m_g, S_p) with m_g = a_o + Lambda_o mu_g and S_p = Lambda_o R
    Lambda_o' + Psi_o, so the log-likelihood needs only n, sum y and sum y y' per
    (pattern, group): the cost per gradient does not grow with the number of firms.

    The patterns are batched rather than looped over: each pattern's covariance is
    the full item covariance with the unobserved rows and columns replaced by those
    of the identity (same determinant and, on the observed block, same inverse as the
    observed submatrix), and the sufficient statistics are zero-padded.  The graph
    therefore has the same few nodes whatever the number of patterns, which keeps
    compile times short (a Python loop over about 100 pattern x group blocks made
    nutpie's numba compile of a 500-firm, 6-item instrument take 7 to over 15 minutes
    on new data; batched, it compiles and samples in about 75 s).
    """
    from ..families.model import prior

    I = X.shape[1]
    C = len(lay.constructs)
    a = pm.Normal("cont_intercept", 0.0, 1.0, dims="cont_item")
    sd = prior(pm, "cont_sigma", pri["residual_sd"], inp, dims="cont_item")
    Z = (X - std["mean"]) / std["sd"]
    onehot = np.zeros((I, C))
    onehot[np.arange(I), lay.construct] = 1.0
    Lam = onehot * (loading * lay.sign)[:, None]  # (I, C)
    R = chol @ chol.T
    cov = Lam @ R @ Lam.T + pt.diag(sd**2)

    st = _pattern_statistics(Z, group_codes)
    O = st["observed"].astype(float)  # (P, I)
    M = O[:, :, None] * O[:, None, :]
    S = M * cov[None] + (1.0 - M) * np.eye(I)[None]  # (P, I, I)
    Sinv = pt.linalg.inv(S)
    if O.shape[0] == 1:
        # one pattern (e.g. no missing answers): the log-determinant of the one matrix, whose
        # gradient is an inverse.  Through the Cholesky factor (below) nutpie's compile of the
        # three-factor CFA took 4 s longer and its sampling a quarter longer (benchmarks/RESULTS.md)
        logdet = pt.linalg.slogdet(S[0])[1][None]  # (1,)
    else:
        # log-determinant through the Cholesky factor (PyTensor's batched slogdet rewrite fails)
        logdet = 2.0 * pt.sum(pt.log(pt.diagonal(pt.linalg.cholesky(S), axis1=-2, axis2=-1)), axis=-1)  # (P,)
    Ob = O[st["pattern"]]  # (B, I)
    m = a[None, :] + (mu_f[st["first_row"]] @ Lam.T if mu_f is not None else 0.0)
    m = m * Ob  # (B, I): zero where unobserved
    Sb = Sinv[st["pattern"]]  # (B, I, I)
    n = st["n"]
    quad = (pt.sum(Sinv * st["s2_pattern"])
            - 2.0 * pt.sum(Sb * m[:, :, None] * st["s1"][:, None, :])
            + pt.sum(Sb * (n[:, None, None] * m[:, :, None] * m[:, None, :])))
    n_p = st["n_pattern"]
    total = -0.5 * (pt.sum(n_p * logdet) + float(np.sum(n_p * O.sum(1))) * np.log(2 * np.pi) + quad)
    pm.Potential("marginal_loglik", total)
