"""Bayesian measurement model: items as indicators of correlated latent constructs.

One generalized latent variable model is built from a :class:`~smeintl.spec.Spec`.
Each firm f has latent scores eta_f (one per construct).  Each item i loads on its
construct c(i) with a positive loading lambda_i; reverse-coded items get the sign
s_i = -1, so the linear predictor of item i for firm f is

    lp_fi = s_i * lambda_i * eta_{f, c(i)}  (+ an intercept where the family has one)

and the likelihood follows the item's scale type:

=================  ===========================================================
likert, stage      ordered logistic (graded response) with per-item cutpoints
                   over the *full declared* range: categories nobody chose keep
                   their cutpoints in place through the prior
percent            ordered beta (Kubinec 2022): ordered logistic over
                   {0, interior, 100} with two cutpoints, and Beta(mu, phi) for
                   interior answers with logit(mu) = intercept + lp
count              negative binomial, log link: log mu = intercept + lp
binary             Bernoulli, logit link
continuous         Normal on the internally standardized item
=================  ===========================================================

Identification: latent variance fixed to 1 within group, loadings positive
(LogNormal prior), latent correlation with an LKJ prior.  Group (industry) latent
means are partially pooled, non-centred and sum-to-zero: mu_g = tau * z_g with
z ~ ZeroSumNormal(1).  Latent scores are non-centred: eta_f = mu_{g(f)} + L z_f
with L the Cholesky factor of the latent correlation and z_f ~ N(0, I).

From ``STANDARDIZE_AT`` firms (``standardized_scores="auto"``) the item parameters are
sampled on the latent scores standardized by their own sample mean and sd across firms
(loading * sd, intercepts and cutpoints moved by sign * loading * mean, with their priors
moved along): the same posterior, without the ridges along which the intercepts and
cutpoints trade off against the mean of all scores and the loadings against their spread.

Item non-response: each family's likelihood runs over observed cells only.

All-continuous instruments use the *marginal* parameterization: the latent scores
are integrated out (y_f ~ MvNormal(a + Lambda mu_g, Lambda R Lambda' + Psi) on each
firm's observed items), so the cost does not grow with a per-firm parameter vector;
latent scores are drawn afterwards from their exact conditional normal.

The generative side (:func:`draw_items`, :func:`expected_scaled`) is plain numpy and
shared by simulation (:mod:`smeintl.simulate`), the posterior predictive and the
true-score comparison (:mod:`smeintl.predictive`).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .spec import ORDINAL_SCALES, Spec, parse_spec

__all__ = [
    "MeasurementModel",
    "ItemLayout",
    "Diagnostics",
    "FitError",
    "diagnose",
    "draw_items",
    "expected_scaled",
    "posterior_params",
    "load_fit",
    "save_fit",
    "summarize_fit",
    "versions",
    "THRESHOLDS",
]

#: diagnostic thresholds: a fit failing any of them is marked failed
THRESHOLDS = {"rhat": 1.01, "ess_bulk": 400, "ess_tail": 400, "divergences": 0, "ebfmi": 0.3}


class FitError(RuntimeError):
    """A fit file cannot be used with the spec or data given."""


# ---------------------------------------------------------------------------
# item layout: numeric arrays derived from the spec
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemLayout:
    """Numeric description of the items of a spec (one entry per item, spec order)."""

    names: tuple[str, ...]
    scales: tuple[str, ...]
    construct: np.ndarray  # (I,) construct index
    sign: np.ndarray  # (I,) +1, or -1 for reverse-coded items
    lo: np.ndarray
    hi: np.ndarray
    constructs: tuple[str, ...]

    @classmethod
    def from_spec(cls, spec: Spec) -> "ItemLayout":
        cn = spec.construct_names
        return cls(
            names=spec.item_names,
            scales=tuple(i.scale for i in spec.items),
            construct=np.array([cn.index(i.construct) for i in spec.items], dtype=int),
            sign=np.array([-1.0 if i.reverse else 1.0 for i in spec.items]),
            lo=np.array([i.min for i in spec.items], dtype=float),
            hi=np.array([i.max for i in spec.items], dtype=float),
            constructs=cn,
        )

    def family(self, family: str) -> np.ndarray:
        """Indices of the items of one likelihood family."""
        if family == "ordinal":
            return np.array([k for k, s in enumerate(self.scales) if s in ORDINAL_SCALES], dtype=int)
        return np.array([k for k, s in enumerate(self.scales) if s == family], dtype=int)

    def ordinal_groups(self) -> dict[int, np.ndarray]:
        """Ordinal items grouped by their number of categories K."""
        out: dict[int, list[int]] = {}
        for k in self.family("ordinal"):
            K = int(round(self.hi[k] - self.lo[k])) + 1
            out.setdefault(K, []).append(int(k))
        return {K: np.array(v, dtype=int) for K, v in sorted(out.items())}

    @property
    def n_categories(self) -> np.ndarray:
        return np.round(self.hi - self.lo).astype(int) + 1

    @property
    def all_continuous(self) -> bool:
        return all(s == "continuous" for s in self.scales)


def standardization_of(layout: "ItemLayout") -> dict[str, np.ndarray] | None:
    """Centre and scale of the continuous items: midpoint and range / 6 of the declared range."""
    idx = layout.family("continuous")
    if not idx.size:
        return None
    return {"mean": (layout.lo[idx] + layout.hi[idx]) / 2.0, "sd": (layout.hi[idx] - layout.lo[idx]) / 6.0}


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def _default_cutpoint_means(K: int) -> np.ndarray:
    """Logits of the cumulative shares of K equiprobable categories."""
    return _logit(np.arange(1, K) / K)


# ---------------------------------------------------------------------------
# generative model in numpy (shared by simulation and predictive checks)
# ---------------------------------------------------------------------------
def _lp(params: Mapping[str, np.ndarray], eta: np.ndarray, layout: ItemLayout) -> np.ndarray:
    """Linear predictor s_i * lambda_i * eta_{f,c(i)}: shape (..., F, I)."""
    lam = np.asarray(params["loading"])  # (..., I)
    e = np.take(eta, layout.construct, axis=-1)  # (..., F, I)
    return e * (layout.sign * lam)[..., None, :]



def draw_items(
    params: Mapping[str, np.ndarray],
    eta: np.ndarray,
    layout: ItemLayout,
    rng: np.random.Generator,
    *,
    standardization: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Draw raw item answers from the generative model.

    ``params`` holds arrays with matching leading (sample) axes, ``eta`` has shape
    (..., F, C).  Returns (..., F, I) answers on each item's raw scale (categories as
    min..max, percent 0-100, counts, 0/1, continuous on the original scale).
    """
    lp = _lp(params, eta, layout)
    out = np.empty(lp.shape, dtype=float)
    for K, idx in layout.ordinal_groups().items():
        cut = np.asarray(params[f"cutpoints_{K}"])  # (..., n, K-1)
        p_ge = _sigmoid(lp[..., idx][..., None] - cut[..., None, :, :])  # P(y >= k+1)
        u = rng.random(lp[..., idx].shape)
        cat = (u[..., None] < p_ge).sum(-1)
        out[..., idx] = layout.lo[idx] + cat
    idx = layout.family("percent")
    if idx.size:
        a = np.asarray(params["pct_intercept"])[..., None, :]
        cut = np.asarray(params["pct_cutpoints"])[..., None, :, :]
        phi = np.asarray(params["pct_precision"])[..., None, :]
        lin = lp[..., idx] + a
        p_gt0 = _sigmoid(lin - cut[..., 0])
        p_one = _sigmoid(lin - cut[..., 1])
        u = rng.random(lin.shape)
        mu = _sigmoid(lin)
        mu = np.clip(mu, 1e-9, 1 - 1e-9)
        inner = rng.beta(mu * phi, (1 - mu) * phi)
        v = np.where(u < 1 - p_gt0, 0.0, np.where(u < 1 - p_one, inner, 1.0))
        out[..., idx] = layout.lo[idx] + v * (layout.hi[idx] - layout.lo[idx])
    idx = layout.family("count")
    if idx.size:
        a = np.asarray(params["count_intercept"])[..., None, :]
        inv = np.asarray(params["count_inv_dispersion"])[..., None, :]
        mu = np.exp(np.clip(lp[..., idx] + a, -30, 15))
        # negative binomial as a gamma-Poisson mixture with shape alpha = 1 / inv
        alpha = 1.0 / np.maximum(inv, 1e-9)
        lam = rng.gamma(alpha, mu / alpha)
        out[..., idx] = rng.poisson(lam)
    idx = layout.family("binary")
    if idx.size:
        a = np.asarray(params["binary_intercept"])[..., None, :]
        out[..., idx] = (rng.random(lp[..., idx].shape) < _sigmoid(lp[..., idx] + a)).astype(float)
    idx = layout.family("continuous")
    if idx.size:
        a = np.asarray(params["cont_intercept"])[..., None, :]
        sd = np.asarray(params["cont_sigma"])[..., None, :]
        z = lp[..., idx] + a + sd * rng.standard_normal(lp[..., idx].shape)
        if standardization is not None:
            z = z * standardization["sd"] + standardization["mean"]
        out[..., idx] = z
    return out


def expected_scaled(
    params: Mapping[str, np.ndarray],
    eta: np.ndarray,
    layout: ItemLayout,
    *,
    standardization: Mapping[str, np.ndarray] | None = None,
    caps: np.ndarray | None = None,
) -> np.ndarray:
    """Expected *scaled* item value E[v_fi | eta_f, item parameters], shape (..., F, I).

    The scaling is the deterministic method's (before reverse coding):
    ordinal (y - min)/(max - min); percent y/100; count E[min(y, cap)]/cap;
    binary P(y = 1); continuous (E[y] - min)/(max - min) clipped to [0, 1].
    Reverse coding (1 - v) is applied afterwards by the caller through
    :func:`smeintl.indices.scale_items` conventions, see :func:`true_scores`.
    """
    lp = _lp(params, eta, layout)
    out = np.empty(lp.shape, dtype=float)
    for K, idx in layout.ordinal_groups().items():
        cut = np.asarray(params[f"cutpoints_{K}"])
        p_ge = _sigmoid(lp[..., idx][..., None] - cut[..., None, :, :])  # (..., F, n, K-1)
        # E[category] = sum_k P(y >= k)
        out[..., idx] = p_ge.sum(-1) / (K - 1)
    idx = layout.family("percent")
    if idx.size:
        a = np.asarray(params["pct_intercept"])[..., None, :]
        cut = np.asarray(params["pct_cutpoints"])[..., None, :, :]
        lin = lp[..., idx] + a
        p_gt0 = _sigmoid(lin - cut[..., 0])
        p_one = _sigmoid(lin - cut[..., 1])
        out[..., idx] = p_one + (p_gt0 - p_one) * _sigmoid(lin)
    idx = layout.family("count")
    if idx.size:
        from scipy import stats

        a = np.asarray(params["count_intercept"])[..., None, :]
        inv = np.maximum(np.asarray(params["count_inv_dispersion"])[..., None, :], 1e-9)
        mu = np.exp(np.clip(lp[..., idx] + a, -30, 15))
        n = 1.0 / inv
        p = n / (n + mu)
        cap = layout.hi[idx] if caps is None else caps
        res = np.zeros(mu.shape)
        for j, c in enumerate(np.asarray(cap, dtype=int)):
            ks = np.arange(c)
            # E[min(Y, c)] = sum_{k=0}^{c-1} P(Y > k)
            sf = stats.nbinom.sf(ks, n[..., j, None], p[..., j, None])
            res[..., j] = sf.sum(-1) / c
        out[..., idx] = res
    idx = layout.family("binary")
    if idx.size:
        a = np.asarray(params["binary_intercept"])[..., None, :]
        out[..., idx] = _sigmoid(lp[..., idx] + a)
    idx = layout.family("continuous")
    if idx.size:
        a = np.asarray(params["cont_intercept"])[..., None, :]
        m = lp[..., idx] + a
        if standardization is not None:
            m = m * standardization["sd"] + standardization["mean"]
        out[..., idx] = np.clip((m - layout.lo[idx]) / (layout.hi[idx] - layout.lo[idx]), 0.0, 1.0)
    return out


# ---------------------------------------------------------------------------
# the PyMC model
# ---------------------------------------------------------------------------
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


class _Inputs:
    """The data arrays and prior settings of one model, packed into three shared vectors.

    Every value enters the graph as a slice of ``inputs_int`` or ``inputs_float`` between
    offsets held in ``inputs_offsets``, never as a constant.  A model's graph then depends
    on its structure only: new data or new priors of the same structure give the same
    graph (PyTensor's disk cache serves them, and :mod:`smeintl._compiled` reuses one
    compiled nutpie model for all of them).  Packed, because nutpie's compiled wrapper
    unpacks each shared variable separately: 30 separate ones made every compile of the
    default instrument about 15 s longer than these three.

    ``shared=False`` makes every input a constant instead: PyTensor's C backend (PyMC's
    own sampler) runs one thunk per operation, and the slices cost it more than the
    compile they save (study throughput 226 -> 204 fits per hour on one worker).
    """

    def __init__(self, shared: bool = True):
        import pytensor

        self.shared = bool(shared)
        self.pack = {"int": pytensor.shared(np.zeros(0, dtype=np.int64), name="inputs_int"),
                     "float": pytensor.shared(np.zeros(0, dtype=np.float64), name="inputs_float")}
        self.offsets = pytensor.shared(np.zeros(0, dtype=np.int64), name="inputs_offsets")
        self._parts: dict[str, list[np.ndarray]] = {"int": [], "float": []}
        self._bounds: list[int] = []
        self.names: list[str] = []

    def add(self, name: str, value, dtype=None):
        """``value`` as a symbolic input (its shape is kept when it has two or more axes)."""
        if name in self.names:
            raise ValueError(f"duplicate model input {name!r}")
        v = np.asarray(value, dtype=dtype)
        if not self.shared:
            import pytensor.tensor as pt

            self.names.append(name)
            return pt.as_tensor(v)
        kind = "int" if v.dtype.kind in "iub" else "float"
        flat = v.astype(np.int64 if kind == "int" else np.float64).ravel()
        k = len(self.names)
        start = sum(p.size for p in self._parts[kind])
        self._parts[kind].append(flat)
        self._bounds += [start, start + flat.size]
        self.names.append(name)
        # values are set as they come, so the graph can be evaluated at any point of the build
        self.pack[kind].set_value(np.concatenate(self._parts[kind]))
        self.offsets.set_value(np.asarray(self._bounds, dtype=np.int64))
        x = self.pack[kind][self.offsets[2 * k]:self.offsets[2 * k + 1]]
        if v.ndim == 0:
            return x[0]
        return x if v.ndim == 1 else x.reshape(v.shape)

    def prior(self, name: str, key: str, value):
        return self.add(f"prior_{name}_{key}", value, dtype=float)


#: prior families with a location parameter ``mu``, which the standardized item
#: parameterization shifts (see ``MeasurementModel._standardized``)
LOCATION_DISTS = ("Normal", "StudentT", "Logistic", "Laplace")


def _shifted(pm, dist, name: str, mu, shift=None, *, dims=None, **params):
    """``dist(name, mu=mu, ...)``; with ``shift`` (a tensor broadcasting against ``mu``) the
    free variable is ``<name>_std = name + shift``, drawn with its location moved by the
    shift, and ``name`` is reported as a deterministic (``MeasurementModel._standardized``).
    Returns the free variable."""
    if shift is None:
        return dist(name, mu=mu, dims=dims, **params)
    free = dist(f"{name}_std", mu=mu + shift, dims=dims, **params)
    pm.Deterministic(name, free - shift, dims=dims)
    return free


def _prior(pm, name: str, entry: Mapping[str, Any], inputs: _Inputs, *, shift=None, **kwargs):
    """The prior ``entry`` of variable ``name``; with ``shift`` see :func:`_shifted`."""
    params = {k: inputs.prior(name, k, v) for k, v in entry.items() if k != "dist"}
    dist = getattr(pm, str(entry.get("dist", "Normal")))
    if shift is None:
        return dist(name, **params, **kwargs)
    return _shifted(pm, dist, name, params.pop("mu"), shift, **params, **kwargs)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import log_expit

    return log_expit(x)


def _ordered_logp(lin: np.ndarray, cut: np.ndarray, k: np.ndarray) -> np.ndarray:
    """log P(y = k) of an ordered logit, only for the observed category, in log space as
    the PyMC model computes it: with a = c_{k+1} - lin and b = c_k - lin (c_0 = -inf,
    c_K = +inf), log(sigmoid(a) - sigmoid(b)) = log sigmoid(a) + log sigmoid(-b) +
    log(1 - exp(c_k - c_{k+1})).

    ``lin`` (F, Q, n); ``cut`` (n, K-1), or (Q, n, K-1) for cutpoints that vary along
    ``lin``'s second axis (one set per draw); ``k`` (F, 1, n) ints."""
    edge = np.full(cut.shape[:-1] + (1,), np.inf)
    cpad = np.concatenate([-edge, cut, edge], axis=-1)  # (..., n, K + 1)
    j = np.arange(cut.shape[-2])
    if cut.ndim == 2:
        lo, hi = cpad[j, k], cpad[j, k + 1]  # (F, 1, n): gathered before broadcasting against lin
    else:
        q = np.arange(cut.shape[0])[:, None]
        lo, hi = cpad[q, j, k], cpad[q, j, k + 1]  # (F, Q, n)
    with np.errstate(divide="ignore", over="ignore"):
        gap = np.log1p(-np.exp(lo - hi))  # 0 at the open ends
        return _log_sigmoid(hi - lin) + _log_sigmoid(lin - lo) + gap


def cell_loglik(P: Mapping[str, np.ndarray], s, eta: np.ndarray, X: np.ndarray, layout: ItemLayout,
                std: Mapping[str, np.ndarray] | None) -> np.ndarray:
    """Log-likelihood of each firm's observed answers at latent scores ``eta`` (F, Q, C),
    summed over its items -> (F, Q): the densities of the latent parameterization of
    :class:`MeasurementModel` in numpy, continuous items including the Jacobian of their
    standardization (densities of the raw answers).

    ``P``: :func:`posterior_params`; ``s``: one draw (the parameters are shared along
    ``eta``'s second axis, e.g. quadrature nodes) or ``Q`` draws (one per position of
    that axis).  ``tests/test_measurement.py`` checks it against PyMC's log-likelihood
    for every item family."""
    from scipy.special import expit, gammaln

    lay = layout
    lam = P["loading"][s]
    lin = np.take(eta, lay.construct, axis=-1) * (lay.sign * lam)  # (F, Q, I)
    out = np.zeros(eta.shape[:2])
    for K, idx in lay.ordinal_groups().items():
        y = X[:, idx]
        obs = ~np.isnan(y)
        k = np.where(obs, y - lay.lo[idx], 0).astype(int)[:, None, :]
        lp = _ordered_logp(lin[..., idx], P[f"cutpoints_{K}"][s], k)
        out += np.where(obs[:, None, :], lp, 0.0).sum(-1)
    idx = lay.family("percent")
    if idx.size:
        y = X[:, idx]
        obs = ~np.isnan(y)
        v = (np.where(obs, y, 0.0) - lay.lo[idx]) / (lay.hi[idx] - lay.lo[idx])
        cat = np.where(v <= 0, 0, np.where(v >= 1, 2, 1))
        linp = lin[..., idx] + P["pct_intercept"][s]
        lp = _ordered_logp(linp, P["pct_cutpoints"][s], cat[:, None, :])
        inner = obs & (cat == 1)
        phi = P["pct_precision"][s]
        mu = np.clip(expit(linp), 1e-12, 1 - 1e-12)  # no overflow warning in the far tails
        a, b = mu * phi, (1.0 - mu) * phi
        vv = np.clip(np.where(inner, v, 0.5), 1e-12, 1 - 1e-12)[:, None, :]
        lb = gammaln(phi) - gammaln(a) - gammaln(b) + (a - 1.0) * np.log(vv) + (b - 1.0) * np.log1p(-vv)
        out += np.where(obs[:, None, :], lp, 0.0).sum(-1) + np.where(inner[:, None, :], lb, 0.0).sum(-1)
    idx = lay.family("count")
    if idx.size:
        y = X[:, idx]
        obs = ~np.isnan(y)
        yy = np.where(obs, y, 0.0)[:, None, :]
        mu = np.exp(lin[..., idx] + P["count_intercept"][s])
        al = 1.0 / P["count_inv_dispersion"][s]
        lp = (gammaln(yy + al) - gammaln(al) - gammaln(yy + 1.0) + al * (np.log(al) - np.log(al + mu))
              + yy * (np.log(mu) - np.log(al + mu)))
        out += np.where(obs[:, None, :], lp, 0.0).sum(-1)
    idx = lay.family("binary")
    if idx.size:
        y = X[:, idx]
        obs = ~np.isnan(y)
        x = lin[..., idx] + P["binary_intercept"][s]
        yy = np.where(obs, y, 0.0)[:, None, :]
        lp = yy * _log_sigmoid(x) + (1.0 - yy) * _log_sigmoid(-x)
        out += np.where(obs[:, None, :], lp, 0.0).sum(-1)
    idx = lay.family("continuous")
    if idx.size:
        y = X[:, idx]
        obs = ~np.isnan(y)
        z = (np.where(obs, y, 0.0) - std["mean"]) / std["sd"]
        m = lin[..., idx] + P["cont_intercept"][s]
        sd = P["cont_sigma"][s]
        lp = -0.5 * ((z[:, None, :] - m) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi) - np.log(std["sd"])
        out += np.where(obs[:, None, :], lp, 0.0).sum(-1)
    return out


#: ``mass_matrix="auto"``: nutpie's low-rank mass matrix adaptation from this many firms
#: (measured better at 300 and 1,000 firms, worse at 41 and 100; see ``MeasurementModel.fit``)
LOW_RANK_MIN_FIRMS = 200

#: ``target_accept="auto"`` per sampler.  Bundled data, nutpie, 4 x 1000 draws, nine seeds:
#: at 0.9 sampling took 15-23 s (about 50 leapfrog steps), min bulk ESS 620-920, and three
#: fits failed a diagnostic (two with one divergence, one with R-hat 1.013); at 0.95 it took
#: 16-27 s (about 59 steps), ESS 427-662, and five failed (R-hat 1.010-1.018 on the industry
#: sd or means, no divergences); at 0.8 two of three fits had a divergence.  PyMC's NUTS
#: had 69 divergences at 0.9 on the same data.
AUTO_TARGET_ACCEPT: dict[str, float] = {"nutpie": 0.9, "pymc": 0.95}
#: ... and with nutpie from this many firms, where the likelihood dominates and the scores
#: are split (``latent_parameterization``): measured without a divergence at 0.8 in every
#: run of the default instrument at 2,000 and 10,000 firms (ninth round); at 0.9 a 10,000-firm
#: fit of 2 x (250 + 250) sampled 559 s, at 0.8 322 s.
LARGE_FIRMS = 2000
AUTO_TARGET_ACCEPT_LARGE: dict[str, float] = {"nutpie": 0.8, "pymc": 0.95}


def no_traces():
    """A context in which PyTensor records no stack trace for the nodes it creates.

    The traces only serve PyTensor's error messages about a user's own graph.  Without
    them, building the default instrument's model takes 0.26 instead of 0.32 s and
    compiling its initial-point function 0.45 instead of 0.86 s (every fit does both).
    """
    import pytensor

    return pytensor.config.change_flags(traceback__limit=0)


def resolve_target_accept(value, sampler: str, n_firms: int | None = None) -> float:
    """``value`` as a number: ``"auto"`` (or None) is :data:`AUTO_TARGET_ACCEPT` of ``sampler``,
    or :data:`AUTO_TARGET_ACCEPT_LARGE` from :data:`LARGE_FIRMS` firms."""
    from .spec import valid_target_accept

    if value is None or value == "auto":
        large = n_firms is not None and n_firms >= LARGE_FIRMS
        return (AUTO_TARGET_ACCEPT_LARGE if large else AUTO_TARGET_ACCEPT)[sampler]
    if not valid_target_accept(value):
        raise ValueError(f"target_accept must be 'auto' or a number in (0, 1), got {value!r}")
    return float(value)


class MeasurementModel:
    """Generalized latent variable model of a spec's items.

    Parameters
    ----------
    spec : Spec
        The instrument: items, constructs, priors and sampler defaults.
    group : bool
        Partially pooled latent means per level of ``spec.group_column``
        (industry); ``False`` switches the level off.
    parameterization : {"auto", "latent", "marginal"}
        ``"marginal"`` integrates the latent scores out (all-continuous
        instruments only); ``"auto"`` picks it where possible.
    group_parameterization : {"auto", "centered", "noncentered"}
        How the group means are sampled (the same model); ``"auto"``: see ``CENTER_GROUPS_AT``.
    latent_parameterization : {"auto", "centered", "noncentered", "split"}
        How the latent scores are sampled (the same model); ``"split"``: centred, as each
        construct's sample mean, log sd and standardized shape (:func:`_split_scores`;
        implies standardized scores).  ``"auto"``: see ``CENTER_LATENT_AT``; split where
        the scores are centred and standardized.
    standardized_scores : {"auto", True, False}
        Sample the item parameters on the latent scores standardized by their sample
        mean and sd (the same model; see :meth:`_standardized`); ``"auto"``: from
        ``STANDARDIZE_AT`` firms, where the priors allow.  Latent parameterization only.

    Nothing is built or sampled in the constructor; :meth:`fit` returns the fit.
    """

    def __init__(self, spec: Spec, *, group: bool = True, parameterization: str = "auto",
                 group_parameterization: str = "auto", latent_parameterization: str = "auto",
                 standardized_scores: bool | str = "auto"):
        if parameterization not in ("auto", "latent", "marginal"):
            raise ValueError(f"parameterization must be 'auto', 'latent' or 'marginal', got {parameterization!r}")
        self.spec = spec
        self.layout = ItemLayout.from_spec(spec)
        self.group = bool(group) and spec.group_column is not None
        if parameterization == "marginal" and not self.layout.all_continuous:
            raise ValueError(
                "the marginal parameterization needs an all-continuous instrument; "
                f"this spec has scales {sorted(set(self.layout.scales))}"
            )
        if parameterization == "auto":
            parameterization = "marginal" if self.layout.all_continuous else "latent"
        self.parameterization = parameterization
        if group_parameterization not in ("auto", "centered", "noncentered"):
            raise ValueError("group_parameterization must be 'auto', 'centered' or 'noncentered', "
                             f"got {group_parameterization!r}")
        self.group_parameterization = group_parameterization
        if latent_parameterization not in ("auto", "centered", "noncentered", "split"):
            raise ValueError("latent_parameterization must be 'auto', 'centered', 'noncentered' or 'split', "
                             f"got {latent_parameterization!r}")
        self.latent_parameterization = latent_parameterization
        if standardized_scores not in ("auto", True, False):
            raise ValueError(f"standardized_scores must be 'auto', True or False, got {standardized_scores!r}")
        if latent_parameterization == "split":
            # the split scores are the standardized scores' own coordinates
            if standardized_scores is False:
                raise ValueError("latent_parameterization='split' samples standardized scores: it cannot be "
                                 "combined with standardized_scores=False")
            standardized_scores = True
        self._check_priors()
        if standardized_scores is True and not self._standardizable():
            raise ValueError("standardized_scores=True needs a LogNormal loading prior and an intercept prior with a "
                             f"location 'mu' ({', '.join(LOCATION_DISTS)}); got loading "
                             f"{self.spec.priors['loading'].get('dist')!r}, intercept "
                             f"{self.spec.priors['intercept'].get('dist', 'Normal')!r}")
        self.standardized_scores = standardized_scores

    #: groups at least this large get centred group means under ``group_parameterization="auto"``
    CENTER_GROUPS_AT = 25

    def _group_centered(self, gidx: np.ndarray, G: int) -> bool:
        if self.group_parameterization != "auto":
            return self.group_parameterization == "centered"
        sizes = np.bincount(gidx, minlength=G)
        return bool(sizes.min() >= self.CENTER_GROUPS_AT)

    #: ``latent_parameterization="auto"`` samples the latent scores centred when every group
    #: (or the whole sample, without groups) has this many firms ...
    CENTER_LATENT_AT = 200
    #: ... and every construct has this many items (enough answers to pin each firm's score)
    CENTER_LATENT_ITEMS = 6

    def _latent_centered(self, gidx: np.ndarray, G: int) -> bool:
        """Centred latent scores (eta ~ MvNormal(group mean, R)) or non-centred (eta = mean + L z).

        Non-centred scores move jointly with their group mean: with thousands of firms per
        group that coupling makes the sampler take long trajectories.  Centred, the group
        mean given the scores is pinned down by the many firms and each score is informed
        by the firm's own answers.  With few items per construct each score is vague and
        centred scores form a funnel with the loadings, so the automatic choice also asks
        for ``CENTER_LATENT_ITEMS`` items per construct.  Measured on the default instrument
        (1,000 firms in 5 groups, nutpie, 2 x 500 draws): min bulk ESS 191 centred vs 127
        non-centred at the same number of leapfrog steps."""
        if self.latent_parameterization != "auto":
            return self.latent_parameterization == "centered"
        sizes = np.bincount(gidx, minlength=max(G, 1))
        items = np.bincount(self.layout.construct, minlength=len(self.layout.constructs))
        return bool(sizes.min() >= self.CENTER_LATENT_AT and items.min() >= self.CENTER_LATENT_ITEMS)

    def _latent_choice(self, gidx: np.ndarray, G: int) -> str:
        """"centered", "noncentered" or "split" (centred scores sampled as their sample
        mean, log sd and standardized shape, :func:`_split_scores`; ``"auto"`` takes it
        where the scores are centred and the item parameters standardized)."""
        if self.latent_parameterization in ("noncentered", "centered", "split"):
            return self.latent_parameterization
        if not self._latent_centered(gidx, G):
            return "noncentered"
        return "split" if self._standardized(len(gidx)) else "centered"

    #: ``standardized_scores="auto"`` samples the item parameters on the sample-standardized
    #: scores from this many firms
    STANDARDIZE_AT = 200

    def _standardizable(self) -> bool:
        pri = self.spec.priors
        return (pri["loading"].get("dist") == "LogNormal"
                and pri["intercept"].get("dist", "Normal") in LOCATION_DISTS and "mu" in pri["intercept"])

    def _standardized(self, n_firms: int) -> bool:
        """Whether the item parameters are sampled relative to the sample of latent scores.

        With many firms the likelihood pins each item's linear predictor, so the item
        intercepts and cutpoints trade off exactly against the mean of all latent scores and
        the loadings against their spread; only the scores' population prior (mean 0, sd 1)
        holds these directions, as loosely as one over the square root of the number of
        firms.  A diagonal mass matrix cannot follow such ridges (with centred scores the
        sample mean and sd are best sampled as coordinates of their own: :func:`_split_scores`).
        Standardized, the items
        see the scores centred and scaled by their own sample mean and sd across firms, and
        the free item parameters are those on that scale:

            loading_std = loading * sd(eta_c),   shift_i = sign_i * loading_i * mean(eta_c)
            cutpoints_std = cutpoints - shift,   intercept_std = intercept + shift

        The priors move with them (a LogNormal loading's log-location by log sd(eta_c), a
        location prior's ``mu`` by the shift), so the model is the same posterior over the
        reported parameters, exactly: a change of variables, not a new prior.  The reported
        ``loading``, ``cutpoints_*`` and intercepts are deterministic functions of the
        standardized ones.  (The loadings' change of scale adds log sd(eta_c) per item to
        the free variables' log prior; :func:`smeintl.robustness` evaluates the analyst's
        priors on a model without it.)
        """
        if self.standardized_scores != "auto":
            return bool(self.standardized_scores)
        return n_firms >= self.STANDARDIZE_AT and self._standardizable()

    def _standardized_items(self, pm, pt, eta, lp_pri, split=None):
        """Standardized scores for the likelihood, the loadings (free ``loading_std``,
        reported ``loading``) and the per-item shift of intercepts and cutpoints (see
        :meth:`_standardized`).  ``split``: the standardized scores, sample means and sds
        where the scores are sampled that way (:func:`_split_scores`)."""
        lay = self.layout
        inp = self._inputs
        if split is None:
            mean, sd = eta.mean(axis=0), eta.std(axis=0)
            standardized = (eta - mean) / sd
        else:
            standardized, mean, sd = split
        params = {k: inp.prior("loading", k, v) for k, v in lp_pri.items() if k != "dist"}
        params["mu"] = params["mu"] + pt.log(sd)[lay.construct]
        loading_std = pm.LogNormal("loading_std", **params, dims="item")
        loading = pm.Deterministic("loading", loading_std / sd[lay.construct], dims="item")
        shift = lay.sign * loading * mean[lay.construct]
        return standardized, loading_std, shift

    # ---------------------------------------------------------------- helpers
    def _check_priors(self) -> None:
        dists = {self.spec.priors[k].get("dist") for k in ("loading", "loading_count", "loading_continuous")}
        if len(dists) != 1:
            raise ValueError(
                f"priors.loading, priors.loading_count and priors.loading_continuous must use one distribution, got {dists}"
            )

    def _loading_prior_arrays(self) -> dict[str, np.ndarray]:
        pri = self.spec.priors
        key = {"count": "loading_count", "continuous": "loading_continuous"}
        entries = [pri[key.get(s, "loading")] for s in self.layout.scales]
        names = [k for k in entries[0] if k != "dist"]
        return {"dist": entries[0]["dist"], **{n: np.array([float(e[n]) for e in entries]) for n in names}}

    def coords(self, survey) -> dict[str, list]:
        lay = self.layout
        c: dict[str, list] = {
            "firm": list(map(str, survey.items.index)),
            "item": list(lay.names),
            "construct": list(lay.constructs),
        }
        for K, idx in lay.ordinal_groups().items():
            c[f"ordinal{K}_item"] = [lay.names[k] for k in idx]
            c[f"cut{K}"] = list(range(1, K))
        for fam, pre in (("percent", "pct"), ("count", "count"), ("binary", "binary"), ("continuous", "cont")):
            idx = lay.family(fam)
            if idx.size:
                c[f"{pre}_item"] = [lay.names[k] for k in idx]
        if lay.family("percent").size:
            c["pct_cut"] = ["zero", "one"]
        if len(lay.constructs) > 1:
            c["construct_"] = list(lay.constructs)
        if self.group:
            c["group"] = list(survey.group_names)
        return c

    def _standardization(self, survey=None) -> dict[str, np.ndarray] | None:
        """Continuous items are modelled on z = (y - centre) / (range / 6) with the
        centre and range of the *declared* scale (data-independent, so priors and
        simulated truths mean the same thing on every data set)."""
        return standardization_of(self.layout)

    # ---------------------------------------------------------------- build
    def build(self, survey, *, inputs: str = "shared"):
        """Build the PyMC model for a survey (no sampling).

        ``inputs="shared"`` (default): data and prior settings are inputs of the graph (see
        ``_Inputs``), so every survey and prior of this structure gives the same graph;
        ``"constant"``: they are constants, which PyMC's own sampler runs faster.
        """
        if inputs not in ("shared", "constant"):
            raise ValueError(f"inputs must be 'shared' or 'constant', got {inputs!r}")
        import pymc as pm
        import pytensor.tensor as pt

        lay = self.layout
        pri = self.spec.priors
        X = survey.items[list(lay.names)].to_numpy(dtype=float)
        F, I = X.shape
        C = len(lay.constructs)
        coords = self.coords(survey)
        std = self._standardization(survey)
        self._group_codes = np.asarray(survey.groups, dtype=int) if self.group else np.zeros(F, dtype=int)

        inp = self._inputs = _Inputs(shared=inputs == "shared")
        self._standardized_used = self.parameterization == "latent" and self._standardized(F)
        with pm.Model(coords=coords) as model:
            lp_pri = self._loading_prior_arrays()
            # on standardized scores the loadings are drawn after the scores (see _standardized)
            loading = None if self._standardized_used else _prior(pm, "loading", lp_pri, inp, dims="item")
            # latent correlation (LKJ prior through canonical partial correlations)
            if C > 1:
                chol = _lkj_cholesky(pm, pt, C, inp.prior("lkj", "eta", float(pri["lkj_eta"]["eta"])))
                pm.Deterministic("corr", chol @ chol.T, dims=("construct", "construct_"))
            else:
                chol = pt.ones((1, 1))
            # group means
            if self.group:
                G = len(survey.group_names)
                gidx = np.asarray(survey.groups, dtype=int)
                gidx_data = inp.add("data_group", gidx)
                tau = _prior(pm, "group_sd", pri["group_sd"], inp, dims="construct")
                # ZeroSumNormal constrains its *last* axes: groups go last, then transpose.
                if self._group_centered(gidx, G):
                    # many firms per group: the data pin each mean down, centred mixes better
                    gc = pm.ZeroSumNormal("group_c", sigma=tau[:, None], dims=("construct", "group"),
                                          n_zerosum_axes=1)
                    gmean = pm.Deterministic("group_mean", gc.T, dims=("group", "construct"))
                else:
                    gz = pm.ZeroSumNormal("group_z", sigma=1.0, dims=("construct", "group"), n_zerosum_axes=1)
                    gmean = pm.Deterministic("group_mean", gz.T * tau, dims=("group", "construct"))
                mu_f = gmean[gidx_data]
            else:
                G = 0
                mu_f = pt.zeros((F, C))

            if self.parameterization == "latent":
                self._latent_used = self._latent_choice(self._group_codes, G)
                split = None
                if self._latent_used == "split":
                    eta, *split = _split_scores(pm, pt, mu_f, chol, lay.constructs, F)
                elif self._latent_used == "centered":
                    eta = _centered_scores(pm, pt, mu_f, chol, lay.constructs)
                else:
                    z = pm.Normal("z", 0.0, 1.0, dims=("firm", "construct"))
                    eta = pm.Deterministic("eta", mu_f + z @ chol.T, dims=("firm", "construct"))
                if self._standardized_used:
                    eta, loading, shift = self._standardized_items(pm, pt, eta, lp_pri, split)
                else:
                    shift = None
                self._likelihoods(pm, pt, X, eta, loading, std, shift=shift)
            else:
                self._marginal_likelihood(pm, pt, X, mu_f, chol, loading, std)
        model._smeintl_std = std  # type: ignore[attr-defined]
        return model

    def _likelihoods(self, pm, pt, X, eta, loading, std, shift=None):
        """One potential per item family (ordinal groups by number of categories, percent,
        count, binary, continuous): the family's total log-likelihood from a fused numba
        kernel, :func:`smeintl._kernels.cells_logp`, whose gradient the kernel computes in
        the same pass.  Each answer's linear predictor is ``eta[f, c(item)] * loading *
        sign + intercept``; the data (cell indices and answers) are model inputs.

        ``shift`` (per item, or None): ``eta`` are the standardized scores and ``loading``
        the standardized loadings; intercepts and cutpoints are drawn shifted (see
        :meth:`_standardized`)."""
        from ._kernels import OUTER_CUT, cells_logp, ordered_transform

        lay = self.layout
        pri = self.spec.priors
        inp = self._inputs
        C = len(lay.constructs)
        eta_flat = eta.reshape((-1,))
        signed = loading * lay.sign
        dummy = np.zeros(1)

        def cells(idx):
            sub = X[:, idx]
            f, j = np.nonzero(~np.isnan(sub))
            return f, j, sub[f, j]

        def family(kind, name, idx, f, j, p1, p2, p3=dummy, pos=None, y=None):
            items = idx[j]
            data = {"eta": f * C + lay.construct[items], "item": items, "j": j,
                    "pos": np.zeros(f.size, dtype=int) if pos is None else pos}
            ints = [inp.add(f"data_{name}_{k}", v, dtype=np.int64) for k, v in data.items()]
            yf = inp.add(f"data_{name}_y", np.zeros(f.size) if y is None else y, dtype=np.float64)
            pm.Potential(f"y_{name}", cells_logp(kind, eta_flat, signed, p1, p2, p3, *ints, yf))

        def padded(cut, n_items):
            outer = np.full((n_items, 1), OUTER_CUT)
            return pt.concatenate([-outer, cut, outer], axis=1).reshape((-1,))

        def shifted(idx):
            return None if shift is None else shift[idx]

        for K, idx in lay.ordinal_groups().items():
            # cutpoints move against the linear predictor: cutpoints_std = cutpoints - shift
            cut = _shifted(
                pm, pm.Normal, f"cutpoints_{K}",
                np.tile(_default_cutpoint_means(K), (idx.size, 1)),
                None if shift is None else -shift[idx][:, None],
                sigma=inp.prior(f"cutpoints_{K}", "sigma", float(pri["cutpoint_sd"]["sigma"])),
                dims=(f"ordinal{K}_item", f"cut{K}"),
                transform=ordered_transform(),
            )
            f, j, y = cells(idx)
            if f.size:
                y = (y - lay.lo[idx][j]).astype(int)
                family("ordinal", f"ordinal{K}", idx, f, j, np.zeros(idx.size), padded(cut, idx.size),
                       pos=j * (K + 1) + y)
        idx = lay.family("percent")
        if idx.size:
            a = _prior(pm, "pct_intercept", pri["intercept"], inp, dims="pct_item", shift=shifted(idx))
            pc = pri["percent_cutpoints"]
            mu0 = np.tile(np.asarray(pc["mu"], dtype=float), (idx.size, 1))
            cut = pm.Normal(
                "pct_cutpoints",
                mu=inp.prior("pct_cutpoints", "mu", mu0),
                sigma=inp.prior("pct_cutpoints", "sigma", float(pc["sigma"])),
                dims=("pct_item", "pct_cut"),
                transform=ordered_transform(),
            )
            phi = _prior(pm, "pct_precision", pri["precision"], inp, dims="pct_item")
            f, j, y = cells(idx)
            v = (y - lay.lo[idx][j]) / (lay.hi[idx][j] - lay.lo[idx][j])
            cat = np.where(v <= 0, 0, np.where(v >= 1, 2, 1))
            # the Beta part reads the value only inside (0, 1)
            family("percent", "percent", idx, f, j, a, padded(cut, idx.size), phi, pos=j * 4 + cat,
                   y=np.where(cat == 1, v, 0.5))
        idx = lay.family("count")
        if idx.size:
            caps = lay.hi[idx]
            a = _shifted(
                pm, pm.Normal, "count_intercept", np.log(np.maximum(caps / 2.0, 1.0)), shifted(idx),
                sigma=inp.prior("count_intercept", "sigma", float(pri["count_intercept_sd"]["sigma"])),
                dims="count_item",
            )
            inv = _prior(pm, "count_inv_dispersion", pri["inv_dispersion"], inp, dims="count_item")
            f, j, y = cells(idx)
            family("count", "count", idx, f, j, a, inv, y=y)
        idx = lay.family("binary")
        if idx.size:
            a = _prior(pm, "binary_intercept", pri["intercept"], inp, dims="binary_item", shift=shifted(idx))
            f, j, y = cells(idx)
            family("binary", "binary", idx, f, j, a, dummy, y=y)
        idx = lay.family("continuous")
        if idx.size:
            a = _shifted(pm, pm.Normal, "cont_intercept", 0.0, shifted(idx), sigma=1.0, dims="cont_item")
            sd = _prior(pm, "cont_sigma", pri["residual_sd"], inp, dims="cont_item")
            f, j, y = cells(idx)
            family("continuous", "continuous", idx, f, j, a, sd, y=(y - std["mean"][j]) / std["sd"][j])

    def _marginal_likelihood(self, pm, pt, X, mu_f, chol, loading, std):
        """Latent scores integrated out, through sufficient statistics.

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
        inp = self._inputs
        lay = self.layout
        pri = self.spec.priors
        I = X.shape[1]
        C = len(lay.constructs)
        a = pm.Normal("cont_intercept", 0.0, 1.0, dims="cont_item")
        sd = _prior(pm, "cont_sigma", pri["residual_sd"], inp, dims="cont_item")
        Z = (X - std["mean"]) / std["sd"]
        onehot = np.zeros((I, C))
        onehot[np.arange(I), lay.construct] = 1.0
        Lam = onehot * (loading * lay.sign)[:, None]  # (I, C)
        R = chol @ chol.T
        cov = Lam @ R @ Lam.T + pt.diag(sd**2)

        st = _pattern_statistics(Z, self._group_codes)
        O = st["observed"].astype(float)  # (P, I)
        M = O[:, :, None] * O[:, None, :]
        S = M * cov[None] + (1.0 - M) * np.eye(I)[None]  # (P, I, I)
        Sinv = pt.linalg.inv(S)
        # log-determinant through the Cholesky factor (PyTensor's batched slogdet rewrite fails)
        logdet = 2.0 * pt.sum(pt.log(pt.diagonal(pt.linalg.cholesky(S), axis1=-2, axis2=-1)), axis=-1)  # (P,)
        Ob = O[st["pattern"]]  # (B, I)
        m = a[None, :] + (mu_f[st["first_row"]] @ Lam.T if self.group else 0.0)
        m = m * Ob  # (B, I): zero where unobserved
        Sb = Sinv[st["pattern"]]  # (B, I, I)
        n = st["n"]
        quad = (pt.sum(Sinv * st["s2_pattern"])
                - 2.0 * pt.sum(Sb * m[:, :, None] * st["s1"][:, None, :])
                + pt.sum(Sb * (n[:, None, None] * m[:, :, None] * m[:, None, :])))
        n_p = st["n_pattern"]
        total = -0.5 * (pt.sum(n_p * logdet) + float(np.sum(n_p * O.sum(1))) * np.log(2 * np.pi) + quad)
        pm.Potential("marginal_loglik", total)

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        survey,
        *,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int = 0,
        sampler: str | None = None,
        target_accept: float | str | None = None,
        cores: int | None = None,
        progressbar: bool = True,
        log_likelihood: bool = True,
        posterior_predictive: bool = True,
        mass_matrix: str = "auto",
    ):
        """Sample the posterior and return an :class:`arviz.InferenceData`.

        The result holds the posterior (with latent scores ``eta``), a posterior
        predictive survey for every item, the per-firm log-likelihood (``responses``: the sum over each firm's observed answers),
        the observed data, and attrs recording the spec text, data hash, seed,
        sampler, mass matrix, package versions and the diagnostics verdict.

        ``target_accept``: a number in (0, 1), or ``"auto"`` (:data:`AUTO_TARGET_ACCEPT`:
        0.9 with nutpie, 0.95 with PyMC's NUTS; with nutpie 0.8 from :data:`LARGE_FIRMS`
        firms); default the spec's ``[sampler]``.  The attrs record the number used.

        ``mass_matrix``: ``"diag"`` (diagonal), ``"low_rank"`` (nutpie's diagonal plus
        low-rank adaptation, nutpie only) or ``"auto"``: low-rank with nutpie from
        :data:`LOW_RANK_MIN_FIRMS` firms.  With many firms the item intercepts and
        cutpoints all trade off against the mean of the latent scores, a direction
        that a diagonal mass matrix cannot follow (default instrument, 1,000 firms,
        2 x 400 draws: min bulk ESS 15 diagonal, 132 low-rank; 300 firms: 39 vs
        239); with few firms the group sd's geometry dominates and the diagonal mixes
        better (41 firms, 4 x 1000: 656 vs 234; 100 firms: 203 vs 84).
        """
        import pymc as pm

        if random_seed is None:
            raise ValueError("random_seed is required: every fit takes an explicit seed")
        s = self.spec.sampler
        draws = int(draws or s["draws"])
        tune = int(tune if tune is not None else s["tune"])
        chains = int(chains or s["chains"])
        sampler = sampler or s["sampler"]
        if sampler == "auto":
            sampler = auto_sampler()
        if sampler not in ("pymc", "nutpie"):
            raise ValueError(f"sampler must be 'pymc', 'nutpie' or 'auto', got {sampler!r}")
        target_accept = resolve_target_accept(target_accept or s["target_accept"], sampler, survey.n_firms)
        if mass_matrix not in ("auto", "diag", "low_rank"):
            raise ValueError(f"mass_matrix must be 'auto', 'diag' or 'low_rank', got {mass_matrix!r}")
        if mass_matrix == "low_rank" and sampler != "nutpie":
            raise ValueError("mass_matrix='low_rank' needs the nutpie sampler; PyMC's NUTS adapts a diagonal one")
        if mass_matrix == "auto":
            mass_matrix = "low_rank" if sampler == "nutpie" and survey.n_firms >= LOW_RANK_MIN_FIRMS else "diag"
        self._mass_matrix_used = mass_matrix
        t0 = time.perf_counter()
        # nutpie: one compiled model per structure (_compiled); PyMC NUTS: constants run faster
        with no_traces():
            model = self.build(survey, inputs="shared" if sampler == "nutpie" else "constant")
        t_build = time.perf_counter() - t0
        with model, warnings.catch_warnings(), no_traces():
            warnings.filterwarnings("ignore", category=UserWarning, module="pymc")
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            t1 = time.perf_counter()
            timing: dict[str, Any] = {}
            if sampler == "nutpie":
                from . import _compiled
                from ._numba import register

                register()  # disk-cacheable digamma: the compiled model is reused across processes
                # one compiled model per structure in this process (data and priors are inputs)
                idata, timing = _compiled.sample(model, draws=draws, tune=tune, chains=chains,
                                                 target_accept=target_accept, random_seed=int(random_seed),
                                                 progressbar=progressbar, low_rank=mass_matrix == "low_rank")
            else:
                idata = pm.sample(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    random_seed=int(random_seed),
                    progressbar=progressbar,
                    compute_convergence_checks=False,
                    # chains run one after another by default: on small machines PyMC's
                    # multiprocess sampling was measured 5-50x slower than sequential chains
                    cores=cores if cores is not None else 1,
                    target_accept=target_accept,
                )
            t_sample = time.perf_counter() - t1
            if log_likelihood and self.parameterization == "latent":
                self._add_firm_loglik(idata, survey)
        std = getattr(model, "_smeintl_std", None)
        if self.parameterization == "marginal":
            if log_likelihood:
                self._add_marginal_loglik(idata, survey, std)
            self._add_marginal_eta(idata, survey, std, random_seed)
        if posterior_predictive:
            self._add_posterior_predictive(idata, survey, std, random_seed)
        self._add_observed(idata, survey)
        diag = diagnose(idata)
        idata.attrs.update(
            self._attrs(survey, random_seed, sampler, draws, tune, chains, target_accept, std)
            | {
                "diagnostics": json.dumps(diag.to_dict()),
                "failed": int(diag.failed),
                "timing": json.dumps({"build_s": t_build, "sample_s": t_sample, **timing}),
            }
        )
        return idata

    def compile(self, survey) -> dict[str, Any]:
        """Compile this model for nutpie on ``survey`` without sampling.

        Any later nutpie fit of the same structure (same instrument, options and number
        of firms per group; data and priors may differ), in this process or another,
        then loads it from the disk caches instead of compiling it.  ``smeintl run``
        compiles the robustness refits' models this way in a second process while the
        main fit compiles and samples.  Returns ``{"compile_s", "compile_reused"}``.
        """
        if not _has_nutpie():
            raise RuntimeError("compiling for nutpie needs nutpie installed")
        from . import _compiled
        from ._numba import register

        with no_traces():
            model = self.build(survey, inputs="shared")
        register()
        with model, warnings.catch_warnings(), no_traces():
            warnings.simplefilter("ignore")
            _compiled_model, reused, seconds = _compiled.compiled_model(model)
        return {"compile_s": seconds, "compile_reused": reused}

    def compiled_on_disk(self, survey) -> bool:
        """Whether a nutpie fit on ``survey`` finds its compiled model in this process or
        in the disk caches (see :meth:`compile`); builds the model (a fraction of a second)."""
        from . import _compiled

        with no_traces(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _compiled.on_disk(self.build(survey, inputs="shared"))

    # ---------------------------------------------------------------- fit parts
    def _attrs(self, survey, seed, sampler, draws, tune, chains, target_accept, std) -> dict[str, Any]:
        a = {
            "smeintl_fit": 1,
            "spec_text": self.spec.text,
            "spec_source": str(self.spec.source),
            "spec_hash": self.spec.hash,
            "data_hash": survey.data_hash,
            "data_source": str(survey.source),
            "random_seed": int(seed),
            "sampler": sampler,
            "parameterization": self.parameterization,
            "group": int(self.group),
            "group_parameterization": self.group_parameterization,
            # resolved: what the sampler actually saw
            "latent_parameterization": getattr(self, "_latent_used", self.latent_parameterization),
            "mass_matrix": getattr(self, "_mass_matrix_used", "diag"),
            "standardized_scores": int(getattr(self, "_standardized_used", False)),
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "target_accept": target_accept,
            "versions": json.dumps(versions()),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if std is not None:
            a["standardization"] = json.dumps({k: v.tolist() for k, v in std.items()})
        return a

    def _add_firm_loglik(self, idata, survey) -> None:
        """Per-firm log-likelihood (sum over the firm's observed answers), for LOO:
        :func:`cell_loglik` at each draw's latent scores, in batches of draws."""
        import xarray as xr

        post = idata.posterior
        P = posterior_params(idata, self.spec)
        X = survey.items[list(self.layout.names)].to_numpy(dtype=float)
        std = standardization_of(self.layout)
        S, F = P["eta"].shape[:2]
        total = np.empty((S, F))
        batch = max(1, int(4e5 // max(1, F * X.shape[1])))  # cells per batch: a few MB per array
        for a in range(0, S, batch):
            sel = np.arange(a, min(S, a + batch))
            total[sel] = cell_loglik(P, sel, P["eta"][sel].transpose(1, 0, 2), X, self.layout, std).T
        nc, nd = post.sizes["chain"], post.sizes["draw"]
        da = xr.DataArray(
            total.reshape(nc, nd, F),
            dims=("chain", "draw", "firm"),
            coords={"chain": post.chain, "draw": post.draw, "firm": list(survey.items.index)},
        )
        idata.add_groups({"log_likelihood": xr.Dataset({"responses": da})})

    def _marginal_setup(self, idata, survey, std):
        """Posterior, parameters, standardized answers, item-construct map and latent correlations."""
        lay = self.layout
        P = posterior_params(idata, self.spec)
        S, C = P["loading"].shape[0], len(lay.constructs)
        X = survey.items[list(lay.names)].to_numpy(dtype=float)
        Z = (X - std["mean"]) / std["sd"]
        onehot = np.zeros((X.shape[1], C))
        onehot[np.arange(X.shape[1]), lay.construct] = 1.0
        R = P["corr"] if C > 1 else np.ones((S, 1, 1))
        return idata.posterior, P, Z, onehot, R

    def _add_marginal_loglik(self, idata, survey, std) -> None:
        """Per-firm marginal log-likelihood (MvNormal on the firm's observed items)."""
        import xarray as xr
        from scipy import stats

        lay = self.layout
        post, P, Z, onehot, R = self._marginal_setup(idata, survey, std)
        nc, nd = post.sizes["chain"], post.sizes["draw"]
        S, (F, I) = P["loading"].shape[0], Z.shape
        groups = np.asarray(survey.groups, dtype=int) if self.group else np.zeros(F, dtype=int)
        out = np.zeros((S, F))
        parts = list(_pattern_groups(Z, groups))
        for s in range(S):
            Lam = onehot * (P["loading"][s] * lay.sign)[:, None]
            cov = Lam @ R[s] @ Lam.T + np.diag(P["cont_sigma"][s] ** 2)
            for cols, g, rows in parts:
                m = P["cont_intercept"][s][cols]
                if self.group:
                    m = m + Lam[cols] @ P["group_mean"][s, g]
                out[s, rows] = stats.multivariate_normal(m, cov[np.ix_(cols, cols)]).logpdf(Z[np.ix_(rows, cols)])
        # the Jacobian of the standardization, so the values are densities of the raw answers
        out -= (np.log(std["sd"])[None, :] * (~np.isnan(Z))).sum(1)[None, :]
        da = xr.DataArray(
            out.reshape(nc, nd, F),
            dims=("chain", "draw", "firm"),
            coords={"chain": post.chain, "draw": post.draw, "firm": list(survey.items.index)},
        )
        idata.add_groups({"log_likelihood": xr.Dataset({"responses": da})})

    def _add_marginal_eta(self, idata, survey, std, seed) -> None:
        """Draw latent scores from their exact conditional normal given y and parameters."""
        import xarray as xr

        lay = self.layout
        post, P, Z, onehot, R = self._marginal_setup(idata, survey, std)
        nc, nd = post.sizes["chain"], post.sizes["draw"]
        S, (F, I), C = P["loading"].shape[0], Z.shape, len(lay.constructs)
        obs = ~np.isnan(Z)
        rng = np.random.default_rng([int(seed), 2])
        mu_f = P["group_mean"][:, np.asarray(survey.groups)] if self.group else np.zeros((S, F, C))
        eta = np.empty((S, F, C))
        patterns: dict[bytes, np.ndarray] = {}
        for f in range(F):
            patterns.setdefault(obs[f].tobytes(), []).append(f)  # type: ignore[attr-defined]
        Zf = np.nan_to_num(Z)
        for s in range(S):
            Lam = onehot * (P["loading"][s] * lay.sign)[:, None]
            Rinv = np.linalg.inv(R[s])
            psi = P["cont_sigma"][s] ** 2
            resid = (Zf - P["cont_intercept"][s]) / psi  # (F, I)
            prior_part = mu_f[s] @ Rinv.T  # (F, C)
            for key, firms in patterns.items():
                o = np.frombuffer(key, dtype=bool)
                rows = np.asarray(firms)
                prec = Rinv + Lam[o].T @ (Lam[o] / psi[o][:, None])
                cov = np.linalg.inv(prec)
                m = (prior_part[rows] + resid[np.ix_(rows, np.nonzero(o)[0])] @ Lam[o]) @ cov.T
                chol = np.linalg.cholesky((cov + cov.T) / 2)
                eta[s, rows] = m + rng.standard_normal((rows.size, C)) @ chol.T
        da = xr.DataArray(
            eta.reshape(nc, nd, F, C),
            dims=("chain", "draw", "firm", "construct"),
            coords={"chain": post.chain, "draw": post.draw, "firm": list(survey.items.index),
                    "construct": list(lay.constructs)},
        )
        idata.posterior["eta"] = da

    def _add_posterior_predictive(self, idata, survey, std, seed) -> None:
        """Replicated surveys y_rep, one per posterior draw, every firm and item."""
        import xarray as xr

        post = idata.posterior
        nc, nd = post.sizes["chain"], post.sizes["draw"]
        P = posterior_params(idata, self.spec)
        rng = np.random.default_rng([int(seed), 1])
        Y = draw_items(P, P["eta"], self.layout, rng, standardization=std)
        F = Y.shape[1]
        Y = Y.reshape(nc, nd, F, -1)
        ds = xr.Dataset(
            {
                name: xr.DataArray(Y[..., k].astype(np.float32), dims=("chain", "draw", "firm"))
                for k, name in enumerate(self.layout.names)
            },
            coords={"chain": post.chain, "draw": post.draw, "firm": list(survey.items.index)},
        )
        if "posterior_predictive" in idata.groups():
            del idata.posterior_predictive
        idata.add_groups({"posterior_predictive": ds})

    def _add_observed(self, idata, survey) -> None:
        import xarray as xr

        X = survey.items[list(self.layout.names)]
        ds = xr.Dataset(
            {name: xr.DataArray(X[name].to_numpy(dtype=float), dims=("firm",)) for name in self.layout.names},
            coords={"firm": list(X.index)},
        )
        if self.group:
            ds["group"] = xr.DataArray(np.asarray(survey.groups, dtype=int), dims=("firm",))
        if "observed_data" in idata.groups():
            del idata.observed_data
        idata.add_groups({"observed_data": ds})

    # ---------------------------------------------------------------- prior predictive
    def prior_predictive(self, survey, *, draws: int = 500, random_seed: int = 0) -> dict[str, Any]:
        """Draw surveys from the prior predictive (same firms, groups and missingness).

        Returns a dict with ``params`` (prior draws), ``eta`` and ``items`` (draws, F, I).
        """
        import pymc as pm

        # the same model without the change of variables: the split scores' mean and log sd
        # have flat densities, which cannot be drawn forward
        plain = MeasurementModel(self.spec, group=self.group, parameterization=self.parameterization,
                                 group_parameterization=self.group_parameterization, standardized_scores=False)
        model = plain.build(survey)
        names = [v.name for v in model.free_RVs] + [d.name for d in model.deterministics]
        with model, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pri = pm.sample_prior_predictive(draws=draws, var_names=names, random_seed=int(random_seed))
        P = posterior_params(pri, self.spec, group="prior")
        std = getattr(model, "_smeintl_std", None)
        if "eta" not in P:
            rng0 = np.random.default_rng([int(random_seed), 3])
            C = len(self.layout.constructs)
            R = P["corr"] if C > 1 else np.ones((draws, 1, 1))
            L = np.linalg.cholesky(R)
            z = rng0.standard_normal((draws, survey.n_firms, C))
            mu = P["group_mean"][:, np.asarray(survey.groups)] if self.group else 0.0
            P["eta"] = mu + np.einsum("sij,sfj->sfi", L, z)
        rng = np.random.default_rng([int(random_seed), 4])
        Y = draw_items(P, P["eta"], self.layout, rng, standardization=std)
        return {"params": P, "eta": P["eta"], "items": Y}


# ---------------------------------------------------------------------------
# posterior access, diagnostics, summaries, persistence
# ---------------------------------------------------------------------------
_PARAM_VARS = (
    "loading",
    "pct_intercept",
    "pct_cutpoints",
    "pct_precision",
    "count_intercept",
    "count_inv_dispersion",
    "binary_intercept",
    "cont_intercept",
    "cont_sigma",
    "corr",
    "group_sd",
    "group_mean",
    "eta",
)


def posterior_params(idata, spec: Spec | None = None, group: str = "posterior") -> dict[str, np.ndarray]:
    """Model parameters as numpy arrays with one leading sample axis (chain x draw stacked)."""
    ds = getattr(idata, group)
    out: dict[str, np.ndarray] = {}
    for name in list(_PARAM_VARS) + [v for v in ds.data_vars if str(v).startswith("cutpoints_")]:
        if name in ds:
            a = ds[name].values
            out[name] = a.reshape((-1,) + a.shape[2:])
    return out


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of a fit and the verdict against :data:`THRESHOLDS`."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_ebfmi: float
    n_draws: int
    worst: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_rhat": self.max_rhat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "divergences": self.divergences,
            "min_ebfmi": self.min_ebfmi,
            "n_draws": self.n_draws,
            "worst": self.worst,
            "problems": list(self.problems),
            "failed": self.failed,
            "thresholds": THRESHOLDS,
        }

    def text(self) -> str:
        head = (
            "DIAGNOSTICS FAILED - do not trust this fit:" if self.failed else "Diagnostics passed:"
        )
        lines = [
            head,
            f"  max R-hat       {self.max_rhat:8.4f}  (threshold {THRESHOLDS['rhat']})",
            f"  min bulk ESS    {self.min_ess_bulk:8.0f}  (threshold {THRESHOLDS['ess_bulk']})",
            f"  min tail ESS    {self.min_ess_tail:8.0f}  (threshold {THRESHOLDS['ess_tail']})",
            f"  divergences     {self.divergences:8d}  (threshold 0)",
            f"  min E-BFMI      {self.min_ebfmi:8.3f}  (threshold {THRESHOLDS['ebfmi']})",
        ]
        lines += [f"  ! {p}" for p in self.problems]
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Diagnostics":
        return cls(
            float(d["max_rhat"]),
            float(d["min_ess_bulk"]),
            float(d["min_ess_tail"]),
            int(d["divergences"]),
            float(d["min_ebfmi"]),
            int(d.get("n_draws", 0)),
            dict(d.get("worst", {})),
            tuple(d.get("problems", ())),
        )


_DIAG_SKIP = ("corr_cpc", "group_z", "group_c")


def is_score_variable(name: str) -> bool:
    """Whether a free variable holds the per-firm latent scores: ``z`` (non-centred), the
    centred columns ``eta_<construct>``, or the split scores' ``eta_u``, ``eta_mean`` and
    ``eta_logsd`` (all imply the deterministic ``eta``)."""
    return name == "z" or name.startswith("eta_")


def diagnose(idata, var_names: list[str] | None = None) -> Diagnostics:
    """R-hat, bulk/tail ESS, divergences and E-BFMI of a fit, with a pass/fail verdict.

    Checked over every reported parameter (loadings, cutpoints, intercepts,
    correlation, group means and sds, latent scores ``eta``); the internal
    non-centred variables are implied by these.
    """
    import arviz as az

    post = idata.posterior
    if var_names is None:
        # the centred scores' per-construct columns eta_<construct> duplicate eta; the item
        # parameters on standardized scores (<name>_std) are implied by the reported ones
        var_names = [v for v in post.data_vars if v not in _DIAG_SKIP and not str(v).endswith(("__", "_std"))
                     and not is_score_variable(str(v))]
    sub = post[var_names]
    # the diagonal of a correlation matrix is constant 1: leave it out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(sub)
        essb = az.ess(sub, method="bulk")
        esst = az.ess(sub, method="tail")

    def extreme(ds, fn):
        best_v, best_n = None, ""
        for name, da in ds.data_vars.items():
            vals = np.asarray(da.values, dtype=float).ravel()
            vals = vals[np.isfinite(vals)]
            if not vals.size:
                continue
            v = fn(vals)
            if best_v is None or (fn is np.max and v > best_v) or (fn is np.min and v < best_v):
                best_v, best_n = float(v), str(name)
        return (best_v if best_v is not None else float("nan")), best_n

    max_rhat, w_rhat = extreme(rhat, np.max)
    min_essb, w_essb = extreme(essb, np.min)
    min_esst, w_esst = extreme(esst, np.min)
    ss = getattr(idata, "sample_stats", None)
    div = int(ss["diverging"].values.sum()) if ss is not None and "diverging" in ss else 0
    try:
        ebfmi = float(np.min(az.bfmi(idata)))
    except Exception:  # noqa: BLE001 - samplers without energy stats
        ebfmi = float("nan")
    n_draws = int(post.sizes["chain"] * post.sizes["draw"])
    problems = []
    if not (max_rhat <= THRESHOLDS["rhat"]):
        # how many values of the worst variable are over: a few of 20,000 latent scores is
        # another picture than every loading
        # (no finite R-hat at all, e.g. one chain: no worst variable)
        vals = np.asarray(rhat[w_rhat].values if w_rhat else [], dtype=float).ravel()
        vals = vals[np.isfinite(vals)]
        share = f"; {int((vals > THRESHOLDS['rhat']).sum())} of {vals.size} values over" if vals.size > 1 else ""
        problems.append(f"R-hat {max_rhat:.3f} > {THRESHOLDS['rhat']} (worst: {w_rhat}{share}): chains disagree")
    if not (min_essb >= THRESHOLDS["ess_bulk"]):
        problems.append(f"bulk ESS {min_essb:.0f} < {THRESHOLDS['ess_bulk']} (worst: {w_essb}): too few effective draws")
    if not (min_esst >= THRESHOLDS["ess_tail"]):
        problems.append(f"tail ESS {min_esst:.0f} < {THRESHOLDS['ess_tail']} (worst: {w_esst}): intervals unreliable")
    if div > THRESHOLDS["divergences"]:
        problems.append(f"{div} divergent transitions: the sampler missed part of the posterior")
    if np.isfinite(ebfmi) and ebfmi < THRESHOLDS["ebfmi"]:
        problems.append(f"E-BFMI {ebfmi:.2f} < {THRESHOLDS['ebfmi']}: poor exploration of the energy")
    return Diagnostics(
        max_rhat, min_essb, min_esst, div, ebfmi, n_draws,
        {"rhat": w_rhat, "ess_bulk": w_essb, "ess_tail": w_esst}, tuple(problems),
    )


def fit_diagnostics(idata) -> Diagnostics:
    """The diagnostics stored in a fit's attrs (computed at fit time)."""
    if "diagnostics" in idata.attrs:
        return Diagnostics.from_dict(json.loads(idata.attrs["diagnostics"]))
    return diagnose(idata)


def versions() -> dict[str, str]:
    """Versions of the packages a fit depends on."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("smeintl", "pymc", "pytensor", "arviz", "numpy", "scipy", "pandas", "xarray", "nutpie"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def auto_sampler() -> str:
    """What ``sampler = "auto"`` means: nutpie where installed, else PyMC's NUTS."""
    return "nutpie" if _has_nutpie() else "pymc"


def _has_nutpie() -> bool:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return True


def save_fit(idata, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a fit to one netCDF file (atomically: temp file, then rename)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    idata.to_netcdf(str(tmp), engine="h5netcdf")
    tmp.replace(path)
    return path


def load_fit(path: str | Path, spec: Spec | None = None, survey=None):
    """Read a fit; refuse it when its spec or data hash differ from those given.

    Returns ``(idata, model)`` where ``model`` is the :class:`MeasurementModel`
    rebuilt from the spec text stored in the file.
    """
    import arviz as az

    path = Path(path)
    if not path.exists():
        raise FitError(f"{path}: file not found")
    try:
        idata = az.from_netcdf(str(path), engine="h5netcdf")
    except Exception as exc:  # noqa: BLE001
        raise FitError(f"{path}: not a readable fit file ({exc})") from None
    if "spec_text" not in idata.attrs:
        raise FitError(f"{path}: not an smeintl fit (no spec in its attributes)")
    stored = parse_spec(idata.attrs["spec_text"], source=f"{path} (stored spec)")
    if spec is not None and spec.hash != stored.hash:
        raise FitError(
            f"{path}: the fit was made with a different spec (stored hash {stored.hash[:12]}, "
            f"given {spec.source} hash {spec.hash[:12]}); refit or pass the matching spec"
        )
    if survey is not None and survey.data_hash != idata.attrs.get("data_hash"):
        raise FitError(
            f"{path}: the fit was made on different data (stored data hash {str(idata.attrs.get('data_hash'))[:12]}, "
            f"given {survey.source} hash {survey.data_hash[:12]}); refit on this data"
        )
    model = MeasurementModel(
        stored,
        group=bool(int(idata.attrs.get("group", 1))),
        parameterization=str(idata.attrs.get("parameterization", "auto")),
        group_parameterization=str(idata.attrs.get("group_parameterization", "auto")),
        latent_parameterization=str(idata.attrs.get("latent_parameterization", "noncentered")),
        standardized_scores=bool(int(idata.attrs.get("standardized_scores", 0))),
    )
    return idata, model


def fit_standardization(idata) -> dict[str, np.ndarray] | None:
    s = idata.attrs.get("standardization")
    if not s:
        return None
    return {k: np.asarray(v) for k, v in json.loads(s).items()}


# ---------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FitSummary:
    """Parameter tables of a fit (each a DataFrame) and its diagnostics."""

    loadings: pd.DataFrame
    cutpoints: pd.DataFrame
    correlation: pd.DataFrame
    group_means: pd.DataFrame
    latent_scores: pd.DataFrame
    reliability: pd.DataFrame
    diagnostics: Diagnostics

    def text(self) -> str:
        fmt = lambda df: df.to_string(float_format=lambda x: f"{x:.3f}")  # noqa: E731
        parts = [self.diagnostics.text(), "", "Loadings (raw and standardized):", fmt(self.loadings)]
        if len(self.correlation):
            parts += ["", "Latent correlation:", fmt(self.correlation)]
        if len(self.group_means):
            parts += ["", "Group latent means:", fmt(self.group_means)]
        if len(self.reliability):
            parts += ["", "Reliability:", fmt(self.reliability)]
        parts += ["", f"Latent scores: {len(self.latent_scores)} rows (firm x construct); first rows:",
                  fmt(self.latent_scores.head(6))]
        return "\n".join(parts)


def _interval(a: np.ndarray, prob: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    lo = (1 - prob) / 2
    return np.quantile(a, lo, axis=0), np.quantile(a, 1 - lo, axis=0)


def summarize_fit(idata, spec: Spec | None = None, prob: float = 0.9) -> FitSummary:
    """Loadings (raw and standardized), cutpoints, correlation, group means,
    latent scores with ``prob`` intervals and reliability (omega where defined).

    Standardized loadings use the latent-response formulation with within-group
    latent variance 1: lambda / sqrt(lambda^2 + v) with residual variance v = pi^2/3
    for logit-type items (ordinal, percent, binary), sigma^2 for continuous items and
    the lognormal approximation log(1 + 1/mu + 1/alpha) for counts (mu at eta = 0).
    """
    spec = spec or parse_spec(idata.attrs["spec_text"])
    lay = ItemLayout.from_spec(spec)
    P = posterior_params(idata, spec)
    lam = P["loading"]
    resid = np.full(lam.shape, np.pi**2 / 3)
    for fam, key in (("count", "count"), ("continuous", "cont")):
        idx = lay.family(fam)
        if not idx.size:
            continue
        if fam == "continuous":
            resid[:, idx] = P["cont_sigma"] ** 2
        else:
            mu = np.exp(P["count_intercept"])
            resid[:, idx] = np.log1p(1.0 / mu + P["count_inv_dispersion"])
    std = lam / np.sqrt(lam**2 + resid)
    lo, hi = _interval(lam, prob)
    slo, shi = _interval(std, prob)
    loadings = pd.DataFrame(
        {
            "construct": [lay.constructs[c] for c in lay.construct],
            "scale": lay.scales,
            "reverse": lay.sign < 0,
            "mean": lam.mean(0),
            "lo": lo,
            "hi": hi,
            "std_mean": std.mean(0),
            "std_lo": slo,
            "std_hi": shi,
        },
        index=pd.Index(lay.names, name="item"),
    )
    rows = []
    for K, idx in lay.ordinal_groups().items():
        cut = P[f"cutpoints_{K}"]
        for j, k in enumerate(idx):
            for c in range(K - 1):
                v = cut[:, j, c]
                rows.append((lay.names[k], c + 1, v.mean(), *np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])))
    cutpoints = pd.DataFrame(rows, columns=["item", "cutpoint", "mean", "lo", "hi"])
    C = len(lay.constructs)
    crow = []
    if "corr" in P:
        for a in range(C):
            for b in range(a + 1, C):
                v = P["corr"][:, a, b]
                crow.append((lay.constructs[a], lay.constructs[b], v.mean(), *np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2]), float((v > 0).mean())))
    correlation = pd.DataFrame(crow, columns=["construct_a", "construct_b", "mean", "lo", "hi", "p_positive"])
    grows = []
    if "group_mean" in P:
        names = list(idata.posterior["group_mean"].coords["group"].values)
        for g, gname in enumerate(names):
            for c, cname in enumerate(lay.constructs):
                v = P["group_mean"][:, g, c]
                grows.append((gname, cname, v.mean(), *np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])))
    group_means = pd.DataFrame(grows, columns=["group", "construct", "mean", "lo", "hi"])
    eta = P["eta"]
    firms = list(idata.posterior["eta"].coords["firm"].values)
    elo, ehi = _interval(eta, prob)
    latent = pd.DataFrame(
        {
            "firm_id": np.repeat(firms, C),
            "construct": np.tile(lay.constructs, len(firms)),
            "mean": eta.mean(0).ravel(),
            "sd": eta.std(0).ravel(),
            "lo": elo.ravel(),
            "hi": ehi.ravel(),
        }
    )
    rel = []
    for c, cname in enumerate(lay.constructs):
        idx = np.nonzero(lay.construct == c)[0]
        if all(lay.scales[k] == "continuous" for k in idx):
            cidx = {k: j for j, k in enumerate(lay.family("continuous"))}
            ls = lam[:, idx].sum(1) ** 2
            ps = P["cont_sigma"][:, [cidx[k] for k in idx]] ** 2
            om = ls / (ls + ps.sum(1))
            rel.append((cname, "omega", om.mean(), *np.quantile(om, [(1 - prob) / 2, (1 + prob) / 2])))
        else:
            # latent-response omega on the standardized loadings
            sl = std[:, idx]
            om = sl.sum(1) ** 2 / (sl.sum(1) ** 2 + (1 - sl**2).sum(1))
            rel.append((cname, "omega_latent_response", om.mean(), *np.quantile(om, [(1 - prob) / 2, (1 + prob) / 2])))
    reliability = pd.DataFrame(rel, columns=["construct", "measure", "mean", "lo", "hi"])
    return FitSummary(loadings, cutpoints, correlation, group_means, latent, reliability, fit_diagnostics(idata))
