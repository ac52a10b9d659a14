"""The generative model in numpy, shared by simulation (:mod:`smeintl.simulate`), the
posterior predictive and the true-score comparison (:mod:`smeintl.predictive`): each
function loops over the layout's likelihood blocks and asks the block's family; and the
prior draws of ordered cutpoints (:func:`increasing_prior_rows`)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .. import families as fam
from .layout import ItemLayout

__all__ = ["draw_items", "expected_scaled", "expected_raw", "cell_loglik", "posterior_params", "param_names",
           "increasing_prior_rows"]


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
    for b in layout.blocks():
        out[..., b.idx] = b.family.draw(params, lp[..., b.idx], b, layout, rng, standardization)
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

    The scaling is the deterministic method's (before reverse coding), each family's
    :meth:`~smeintl.families.Family.expected`: ordinal (y - min)/(max - min); percent
    y/100; count E[min(y, cap)]/cap (``caps`` replaces the declared caps of the count
    items); binary P(y = 1); continuous (E[y] - min)/(max - min) clipped to [0, 1].
    Reverse coding (1 - v) is applied afterwards by the caller.
    """
    lp = _lp(params, eta, layout)
    out = np.empty(lp.shape, dtype=float)
    for b in layout.blocks():
        out[..., b.idx] = b.family.expected(params, lp[..., b.idx], b, layout, standardization, caps)
    return out


def expected_raw(
    params: Mapping[str, np.ndarray],
    eta: np.ndarray,
    layout: ItemLayout,
    *,
    standardization: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Latent true scores on the raw answer scale, shape (..., F, I), no NaN:
    :func:`expected_scaled` put back as ``min + v * (max - min)`` (counts: ``v * cap``,
    since ``min = 0`` and ``max = cap``), so that :func:`~smeintl.indices.scale_items`
    returns ``v`` and applies the reverse coding itself."""
    v = expected_scaled(params, np.asarray(eta, dtype=float), layout, standardization=standardization)
    return layout.lo + v * (layout.hi - layout.lo)


def cell_loglik(P: Mapping[str, np.ndarray], s, eta: np.ndarray, X: np.ndarray, layout: ItemLayout,
                std: Mapping[str, np.ndarray] | None) -> np.ndarray:
    """Log-likelihood of each firm's observed answers at latent scores ``eta`` (F, Q, C),
    summed over its items -> (F, Q): each block's family kernel (the model's own
    log-density, :mod:`smeintl.families.kernels`), continuous items including the Jacobian
    of their standardization (densities of the raw answers).  A family without a kernel
    gives its own :meth:`~smeintl.families.Family.loglik`.

    ``P``: :func:`posterior_params`; ``s``: one draw (the parameters are shared along
    ``eta``'s second axis, e.g. quadrature nodes) or ``Q`` draws (one per position of
    that axis).  ``tests/test_measurement.py`` checks it against PyMC's log-likelihood
    for every item family."""
    from ..families.kernels import cells_loglik

    F, Q, C = eta.shape
    per_position = np.ndim(s) > 0
    out = np.zeros(F * Q)
    for b in layout.blocks():
        fam = b.family
        if fam.kernel is None:
            lam = P["loading"][s]
            lin = np.take(eta, layout.construct, axis=-1)[..., b.idx] * (layout.sign[b.idx] * lam[..., b.idx])
            out += fam.loglik(P, s, lin, X[:, b.idx], b, layout, std).sum(-1).ravel()
            continue
        f, j, v = fam.observed_cells(layout, b, X, std)
        items = b.idx[j]
        pos = fam.positions(j, v, b)
        c = layout.construct[items]
        if per_position:  # one parameter draw per position q
            for q, sq in enumerate(np.asarray(s)):
                signed = layout.sign * P["loading"][sq]
                lp = cells_loglik(fam.kernel, eta[:, q, :].ravel(), signed, *fam.kernel_params(P, sq, b),
                                  f * C + c, items, j, pos, v)
                out += np.bincount(f * Q + q, weights=lp, minlength=F * Q)
        else:  # one draw for every position: all positions in one call
            signed = layout.sign * P["loading"][s]
            qs = np.arange(Q)
            e = ((f[:, None] * Q + qs) * C + c[:, None]).ravel()
            rep = lambda a: np.repeat(a, Q)  # noqa: E731
            lp = cells_loglik(fam.kernel, eta.ravel(), signed, *fam.kernel_params(P, s, b), e, rep(items),
                              rep(j), rep(pos), rep(v))
            out += np.bincount((f[:, None] * Q + qs).ravel(), weights=lp, minlength=F * Q)
        jac = fam.log_jacobian(j, b, layout, std)
        if jac is not None:  # densities of the raw answers
            out += np.bincount(f, weights=jac, minlength=F).repeat(Q)
    return out.reshape(F, Q)


_STRUCTURE_VARS = ("loading", "corr", "group_sd", "group_mean", "eta")


def param_names(layout: ItemLayout | None = None) -> tuple[str, ...]:
    """Names of the model parameters in a fit (the item families' and the latent structure's)."""
    names = list(_STRUCTURE_VARS[:1])
    for f in fam.families():
        names += [n for n in f.params if n not in names]
    return tuple(names + list(_STRUCTURE_VARS[1:]))


def posterior_params(idata, spec=None, group: str = "posterior") -> dict[str, np.ndarray]:
    """Model parameters as numpy arrays with one leading sample axis (chain x draw stacked)."""
    from .. import compat

    ds = compat.group(compat.as_fit(idata), group)
    out: dict[str, np.ndarray] = {}
    for name in list(param_names()) + [v for v in ds.data_vars if str(v).startswith("cutpoints_")]:
        if name in ds:
            a = ds[name].values
            out[name] = a.reshape((-1,) + a.shape[2:])
    return out


def increasing_prior_rows(model, params: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Prior draws ``params`` of the PyMC ``model``'s ordered variables (the cutpoints) with
    every row that is not increasing redrawn: their prior is the normal prior restricted to
    increasing rows, which PyMC's forward draws ignore.  Exact rejection, since the
    cutpoints' prior does not depend on the other parameters.  Returns the redrawn arrays
    by name."""
    return {rv.name: _increasing_rows(rv, params[rv.name], rng) for rv in _ordered_rvs(model)}


#: forward draws of the cutpoints per round of :func:`_increasing_rows` (rejection)
ORDERED_POOL = 2000


def _ordered_rvs(model) -> list:
    """The PyMC model's free variables with an ordered transform (the cutpoints)."""
    from pymc.distributions.transforms import Ordered

    return [rv for rv in model.free_RVs if isinstance(model.rvs_to_transforms.get(rv), Ordered)]


def _increasing_rows(rv, v: np.ndarray, rng: np.random.Generator, tries: int = 20) -> np.ndarray:
    """Prior draws ``v`` (draws, items, cuts) of an ordered variable ``rv`` with each row
    that is not increasing replaced by an increasing one from further forward draws."""
    import pymc as pm

    v = np.array(v, dtype=float, copy=True)
    bad = ~np.all(np.diff(v, axis=-1) > 0, axis=-1)  # (draws, items)
    for _ in range(tries):
        if not bad.any():
            return v
        extra = np.asarray(pm.draw(rv, draws=ORDERED_POOL, random_seed=rng), dtype=float)
        good = np.all(np.diff(extra, axis=-1) > 0, axis=-1)
        for j in np.flatnonzero(bad.any(axis=0)):
            rows = extra[good[:, j], j]
            need = np.flatnonzero(bad[:, j])[: len(rows)]
            v[need, j] = rows[: len(need)]
            bad[need, j] = False
    items = np.flatnonzero(bad.any(axis=0)).tolist()
    raise ValueError(f"the prior of {rv.name} gives increasing cutpoints too rarely to draw them (item positions "
                     f"{items}, {tries * ORDERED_POOL} forward draws): widen the gaps between the cutpoint means "
                     f"or narrow their sd")
