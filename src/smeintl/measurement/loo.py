"""Leave-one-firm-out cross-validation of a fit with the firm's latent scores integrated
out (Merkle, Furr & Rabe-Hesketh 2019), and the comparison of fits of the same data.

A fit stores each firm's log-likelihood given its own latent scores (``responses``): PSIS
on that is often unreliable, since each firm's scores are informed by its answers alone.
Integrated over the scores, ``log p(y_f | theta) = log int p(y_f | eta, theta)
N(eta | mu_g(f), R) d eta`` predicts a new firm of the same group, and PSIS-LOO over
the firms is then well behaved.  :func:`fit_loo` gives it for one fit (what
:class:`~smeintl.measurement.FitSummary` reports), :func:`compare_models` for several
fits of the same data (ArviZ's comparison with stacking weights).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import threading
import time
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .. import compat
from .latent import INTEGRATED

__all__ = ["INTEGRATED", "INTEGRATION_NODES", "INTEGRATION_CHECK_NODES", "INTEGRATED_MAX_DRAWS", "MAX_CONSTRUCTS", "KHAT_BAD",
           "FitLoo", "integrated_loglik", "integrated_fit", "fit_loo", "compare_models"]

#: integrated LOO: Gauss-Hermite nodes per construct and the most draws used
INTEGRATION_NODES = 15
#: nodes of the convergence check of the quadrature (on a few draws)
INTEGRATION_CHECK_NODES = 25
INTEGRATED_MAX_DRAWS = 1000
#: the product grid has ``nodes ** constructs`` points: implemented up to this many constructs
MAX_CONSTRUCTS = 3
#: a firm's PSIS-LOO term is unreliable above this Pareto k
KHAT_BAD = 0.7


#: integrated log-likelihoods computed in this process, by a hash of all they depend on (the
#: fit's posterior draws, the answers and groups, the spec, the standardization, the nodes, the
#: scale and the draws): the model comparison of ``smeintl run`` and the report's LOO of the same
#: fit compute it once.  At most :data:`MEMO_BYTES` of results are kept, the oldest dropped first.
_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()
_MEMO_LOCK = threading.Lock()
MEMO_BYTES = 256 * 2**20


def _memo_key(post, spec, X, codes, std, sel, *options) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((spec.hash, options)).encode())
    arrays = [(f"post.{n}", post[n].values) for n in sorted(post.data_vars)]
    arrays += [("X", X), ("codes", np.zeros(0) if codes is None else codes), ("sel", sel)]
    arrays += [(f"std.{k}", np.asarray(v)) for k, v in sorted((std or {}).items())]
    for name, a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{name}{a.dtype}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _memo_put(key: str, value: np.ndarray) -> None:
    with _MEMO_LOCK:
        _MEMO[key] = value
        while sum(v.nbytes for v in _MEMO.values()) > MEMO_BYTES and len(_MEMO) > 1:
            _MEMO.popitem(last=False)


def _observed(fit, spec, survey=None) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """The answers (F, I; spec order), the firm ids and the firms' group codes (None
    without) of a fit: from ``survey`` when given (checked against the fit's firms), else
    from the fit's ``observed_data``."""
    names = list(spec.item_names)
    firms = [str(f) for f in compat.group(fit, "posterior")["eta"].coords["firm"].values]
    if survey is not None:
        if firms != [str(f) for f in survey.items.index]:
            raise ValueError("the fit's firms are not the survey's (same ids, same order)")
        return survey.items[names].to_numpy(dtype=float), firms, survey.groups
    obs = compat.group(fit, "observed_data")
    if [str(f) for f in obs.coords["firm"].values] != firms:
        raise ValueError("the fit's observed data and latent scores have different firms")
    missing = [n for n in names if n not in obs.data_vars]
    if missing:
        raise ValueError(f"the fit's observed data lack the item(s) {missing}")
    X = np.stack([np.asarray(obs[n].values, dtype=float) for n in names], axis=1)
    groups = np.asarray(obs["group"].values, dtype=np.int64) if "group" in obs.data_vars else None
    return X, firms, groups


def integrated_loglik(fit, spec=None, survey=None, *, nodes: int = INTEGRATION_NODES, scale: float = 1.0,
                      draws: np.ndarray | None = None, group: bool = True) -> np.ndarray:
    """Per-firm log-likelihood with the firm's latent scores integrated out, ``(S, F)``:
    ``log p(y_f | theta) = log int p(y_f | eta, theta) N(eta | mu_g(f), R) d eta``.

    Adaptive Gauss-Hermite quadrature: ``nodes`` points per construct (product grid),
    centred on the posterior mean of the firm's ``eta`` (over all draws) with the
    posterior covariance times ``scale^2``.  The quadrature integrates against that
    normal proposal, so it is exact as the nodes grow whatever the centring; on the
    bundled data 15 nodes differ from 31 by about 0.001 on average per firm and draw,
    by at most ~0.1.  ``theta`` per draw: item parameters (each firm's group's, where the
    fit has group deviations), latent correlation ``R`` and group means ``mu_g`` (0
    without them, or with ``group=False``).  ``draws``: the draws (chain-major stacked
    indices) at which to evaluate, default all; returns ``(len(draws), F)``.  The answers
    and groups come from ``survey`` or, without it, from the fit's ``observed_data``; the
    spec from the fit when not given.  A fit with the marginal or quadrature
    parameterization already stores this quantity as ``responses``.  The same inputs give the
    same values, computed once per process (:data:`MEMO_BYTES`).
    """
    from numpy.polynomial.hermite_e import hermegauss
    from scipy.special import logsumexp

    from ..spec import parse_spec
    from .generative import posterior_params
    from .invariance import cell_loglik_by_group, deviations, params_by_group
    from .io import fit_standardization
    from .layout import ItemLayout, standardization_of

    fit = compat.as_fit(fit)
    spec = spec or parse_spec(fit.attrs["spec_text"])
    lay = ItemLayout.from_spec(spec)
    P = posterior_params(fit, spec)
    X, _firms, codes = _observed(fit, spec, survey)
    std = fit_standardization(fit) or standardization_of(lay)
    eta_d = P["eta"]  # (S, F, C)
    S, F, C = eta_d.shape
    if C > MAX_CONSTRUCTS:
        raise ValueError(f"integrated log-likelihood implemented for up to {MAX_CONSTRUCTS} constructs, got {C}")
    m = eta_d.mean(0)
    dev = eta_d - m
    V = np.einsum("sfc,sfd->fcd", dev, dev) / max(S - 1, 1) * scale**2 + 1e-9 * np.eye(C)
    Lf = np.linalg.cholesky(V)  # (F, C, C)
    x, w = hermegauss(int(nodes))
    w = w / w.sum()
    Zq = np.array(list(itertools.product(x, repeat=C)))  # (Q, C)
    logw = np.log(np.array([np.prod(t) for t in itertools.product(w, repeat=C)]))
    eta_q = m[:, None, :] + np.einsum("fcd,qd->fqc", Lf, Zq)  # (F, Q, C)
    log_q = (-0.5 * (Zq**2).sum(-1))[None, :] - np.log(np.diagonal(Lf, axis1=1, axis2=2)).sum(-1)[:, None] \
        - 0.5 * C * np.log(2 * np.pi)
    gidx = codes if group and "group_mean" in P and codes is not None else None
    devs = deviations(fit)
    if devs and codes is None:
        raise ValueError("the fit has group deviations of its item parameters but no group codes")
    by_group = params_by_group(P, devs, lay, compat.group(fit, "posterior").sizes["group"] if devs else 0)
    sel = np.arange(S) if draws is None else np.asarray(draws, dtype=int)
    key = _memo_key(compat.group(fit, "posterior"), spec, X, codes, std, sel, int(nodes), float(scale), bool(group))
    with _MEMO_LOCK:
        known = _MEMO.get(key)
    if known is not None:
        return known.copy()
    out = np.empty((sel.size, F))

    def one(j: int) -> None:
        s = sel[j]
        R = P["corr"][s] if C > 1 else np.ones((1, 1))
        Lr = np.linalg.cholesky(R)
        mu = P["group_mean"][s][gidx] if gidx is not None else np.zeros((F, C))
        d = eta_q - mu[:, None, :]
        u = np.linalg.solve(Lr, d.reshape(-1, C).T).T.reshape(d.shape)
        log_p = -0.5 * (u**2).sum(-1) - np.log(np.diag(Lr)).sum() - 0.5 * C * np.log(2 * np.pi)
        ll = cell_loglik_by_group(P, by_group, s, eta_q, X, codes, lay, std)
        out[j] = logsumexp(logw[None, :] + ll + log_p - log_q, axis=1)

    # draws are independent and numpy's ufuncs release the GIL: one thread per core
    # (the values do not depend on the number of threads)
    workers = min(os.cpu_count() or 1, 8, sel.size)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, range(sel.size)))
    else:
        for j in range(sel.size):
            one(j)
    _memo_put(key, out.copy())
    return out


def integrated_fit(fit, spec=None, survey=None, *, group: bool = True, parameterization: str | None = None,
                   check: bool = False):
    """``(fit, (max, mean))``: a fit with the posterior (thinned to at most
    :data:`INTEGRATED_MAX_DRAWS` evenly spaced draws per chain set) and the integrated
    per-firm log-likelihood as ``log_likelihood.responses``; with ``check`` also the
    largest and the mean difference, over up to 10 draws, between the quadrature with
    :data:`INTEGRATION_NODES` and with :data:`INTEGRATION_CHECK_NODES` nodes (else NaN).
    ``parameterization``: the fit's (default its attrs'); a marginal or quadrature fit's
    ``responses`` are already integrated (:data:`INTEGRATED`)."""
    import xarray as xr

    fit = compat.as_fit(fit)
    if parameterization is None:
        parameterization = str(fit.attrs.get("parameterization", "latent"))
    post = compat.group(fit, "posterior")
    nc, nd = int(post.sizes["chain"]), int(post.sizes["draw"])
    keep = np.arange(nd)
    if nc * nd > INTEGRATED_MAX_DRAWS:
        keep = np.unique(np.round(np.linspace(0, nd - 1, max(1, INTEGRATED_MAX_DRAWS // nc))).astype(int))
    sub = post.isel(draw=keep)
    err = (float("nan"), float("nan"))
    if parameterization in INTEGRATED:  # responses are already marginal over the latent scores
        ll = compat.group(fit, "log_likelihood")["responses"].isel(draw=keep)
    else:
        sel = (np.arange(nc)[:, None] * nd + keep[None, :]).ravel()  # chain-major stacked indices
        vals = integrated_loglik(fit, spec, survey, group=group, draws=sel)
        if check:
            few = np.unique(np.round(np.linspace(0, sel.size - 1, min(10, sel.size))).astype(int))
            fine = integrated_loglik(fit, spec, survey, group=group, nodes=INTEGRATION_CHECK_NODES, draws=sel[few])
            err = (float(np.abs(fine - vals[few]).max()), float(np.abs(fine - vals[few]).mean()))
        ll = xr.DataArray(vals.reshape(nc, keep.size, -1), dims=("chain", "draw", "firm"),
                          coords={"chain": sub.chain, "draw": sub.draw, "firm": post["eta"].coords["firm"].values})
    return compat.new_fit({"posterior": sub, "log_likelihood": xr.Dataset({"responses": ll})}), err


@dataclasses.dataclass(frozen=True)
class FitLoo:
    """Leave-one-firm-out PSIS-LOO of a fit with the latent scores integrated out.

    ``elpd`` (expected log predictive density of a left-out firm's answers, summed over
    the firms) with its standard error ``se``; ``p_loo`` (effective number of
    parameters); ``pareto_k`` per firm (``firms``: their ids); ``draws`` used; ``method``
    in words; ``seconds`` it took."""

    elpd: float
    se: float
    p_loo: float
    pareto_k: np.ndarray
    firms: tuple[str, ...]
    draws: int
    method: str
    seconds: float

    def k_counts(self) -> dict[str, int]:
        """Firms per Pareto k range (ArviZ's and the loo package's labels)."""
        k = np.asarray(self.pareto_k, dtype=float)
        return {"good (k <= 0.5)": int((k <= 0.5).sum()), "ok (0.5 < k <= 0.7)": int(((k > 0.5) & (k <= 0.7)).sum()),
                "bad (0.7 < k <= 1)": int(((k > 0.7) & (k <= 1.0)).sum()), "very bad (k > 1)": int((k > 1.0).sum())}

    def flagged(self) -> list[tuple[str, float]]:
        """``(firm, k)`` of the firms whose Pareto k exceeds :data:`KHAT_BAD`, largest first."""
        k = np.asarray(self.pareto_k, dtype=float)
        idx = np.nonzero(k > KHAT_BAD)[0]
        return [(self.firms[i], float(k[i])) for i in idx[np.argsort(-k[idx], kind="stable")]]

    def to_dict(self) -> dict[str, Any]:
        return {"elpd_loo": float(self.elpd), "se": float(self.se), "p_loo": float(self.p_loo),
                "pareto_k": self.k_counts(), "max_pareto_k": float(np.max(self.pareto_k)) if len(self.pareto_k) else None,
                "firms_pareto_k_gt_0_7": [{"firm": f, "k": k} for f, k in self.flagged()],
                "draws": int(self.draws), "method": self.method, "seconds": float(self.seconds)}

    def text(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in self.k_counts().items())
        lines = [f"Leave-one-firm-out LOO, latent scores integrated out ({self.method}; {self.draws} draws):",
                 f"  elpd_loo {self.elpd:.1f} (se {self.se:.1f}), p_loo {self.p_loo:.1f}",
                 f"  Pareto k: {counts}"]
        bad = self.flagged()
        if bad:
            lines.append(f"  firms with k > {KHAT_BAD} (their LOO term is unreliable): "
                         + ", ".join(f"{f} ({k:.2f})" for f, k in bad))
        return "\n".join(lines)


def _method(fit) -> str:
    par = str(compat.as_fit(fit).attrs.get("parameterization", "latent"))
    if par == "marginal":
        return "marginal likelihood, exact"
    if par == "quadrature":
        from .quadrature import HALF_WIDTH, POINTS

        return f"quadrature as fitted, {POINTS} points on +-{HALF_WIDTH:g} sd"
    return f"adaptive Gauss-Hermite, {INTEGRATION_NODES} nodes per construct"


def fit_loo(fit, spec=None) -> FitLoo:
    """The fit's leave-one-firm-out PSIS-LOO with the latent scores integrated out
    (:func:`integrated_fit`: at most :data:`INTEGRATED_MAX_DRAWS` draws; the answers from
    the fit's ``observed_data``)."""
    t0 = time.perf_counter()
    fit = compat.as_fit(fit)
    integ, _ = integrated_fit(fit, spec)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = compat.loo(integ, var_name="responses")
    ll = compat.group(integ, "log_likelihood")["responses"]
    return FitLoo(res.elpd, res.se, res.p_loo, np.asarray(res.pareto_k, dtype=float),
                  tuple(str(f) for f in ll.coords["firm"].values), int(ll.sizes["chain"] * ll.sizes["draw"]),
                  _method(fit), time.perf_counter() - t0)


#: the columns of :func:`compare_models`
COMPARE_COLUMNS = ("rank", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "max_pareto_k",
                   "n_pareto_k_gt_0_7")


def compare_models(fits: Mapping[str, Any]) -> pd.DataFrame:
    """Compare fits of the same data (e.g. two specs, or two invariance levels) by their
    leave-one-firm-out LOO with the latent scores integrated out (:func:`fit_loo`).

    ``fits``: name -> fit (two or more).  Returns a DataFrame indexed by name, best first,
    columns :data:`COMPARE_COLUMNS`: ``rank`` (0 the best), ``elpd_loo`` and its ``se``,
    ``elpd_diff`` (how far the model's elpd is behind the best one's: 0 for the best,
    positive for the others) and ``dse`` (the standard error of that difference, from the
    firms' paired terms), ``p_loo``, ``weight`` (stacking weights, summing to 1), the
    largest Pareto k and the number of firms above 0.7.  A difference smaller than about
    two ``dse`` does not separate the models.

    Raises :class:`~smeintl.errors.UserError` when the fits were not made on the same data
    (their data hashes differ: LOO compares predictions of the same answers only).
    """
    from ..errors import UserError

    fits = {str(k): compat.as_fit(v) for k, v in dict(fits).items()}
    if len(fits) < 2:
        raise UserError(f"compare_models needs two or more fits, got {len(fits)}")
    hashes: dict[str, list[str]] = {}
    for name, f in fits.items():
        hashes.setdefault(str(f.attrs.get("data_hash")), []).append(name)
    if len(hashes) > 1:
        parts = "; ".join(f"{', '.join(map(repr, names))}: data hash {h[:12]}" for h, names in hashes.items())
        raise UserError("the fits were not made on the same data, and LOO compares predictions of the same "
                        f"answers only ({parts}); refit them on one data file")
    integ, loos = {}, {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for name, f in fits.items():
            integ[name], _ = integrated_fit(f)
            loos[name] = compat.loo(integ[name], var_name="responses")
        table = compat.compare(integ, var_name="responses")
    out = pd.DataFrame(index=pd.Index(list(table.index), name="model"))
    out["rank"] = table["rank"].astype(int)
    out["elpd_loo"] = [loos[m].elpd for m in out.index]
    out["se"] = [loos[m].se for m in out.index]
    out["elpd_diff"] = table["elpd_diff"].astype(float)
    out["dse"] = table["dse"].astype(float)
    out["p_loo"] = [loos[m].p_loo for m in out.index]
    out["weight"] = table["weight"].astype(float)
    out["max_pareto_k"] = [float(np.max(loos[m].pareto_k)) for m in out.index]
    out["n_pareto_k_gt_0_7"] = [int((np.asarray(loos[m].pareto_k) > KHAT_BAD).sum()) for m in out.index]
    return out[list(COMPARE_COLUMNS)]
