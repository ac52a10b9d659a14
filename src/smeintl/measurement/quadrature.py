"""The latent scores integrated out by quadrature (``MeasurementModel(parameterization="quadrature")``).

For an instrument with one construct, a firm's likelihood given the item parameters
``theta`` and its group's latent mean ``mu_g`` is

    p(y_f | theta) = int prod_i p(y_fi | eta, theta) N(eta | mu_g, 1) d eta.

The model evaluates it on a fixed grid: :data:`POINTS` equally spaced points ``x_q`` on
``[-HALF_WIDTH, HALF_WIDTH]`` (``eta = mu_g + x_q``) with weights proportional to the
standard normal density, normalized to sum to one, which is mirt's default for one
factor (61 points on [-6, 6]).  On an equally spaced grid this is the trapezoidal rule,
which converges geometrically for a smooth integrand: the error is about
``exp(-2 pi^2 s^2 / h^2)`` for a firm whose posterior sd of the score is ``s`` (grid
spacing ``h`` = 0.2), below 1e-13 at ``s`` = 0.5 and 1e-4 at ``s`` = 0.15; the prior
mass beyond 6 sd (2e-9) is left out.  Every fit checks its grid against a finer and
wider one (:data:`CHECK_POINTS` on ``[-CHECK_HALF_WIDTH, CHECK_HALF_WIDTH]``) at a few
draws and flags a fit whose per-firm log-likelihood moves by more than :data:`TOLERANCE`.

Firms of one group with the same answers (missing answers included) have the same
likelihood: the model evaluates each distinct row of answers once and weights its log by
the number of firms (:func:`answer_rows`), so a test of five binary items costs at most
32 rows per group whatever the number of examinees.

Only the item parameters, group means and group sds are sampled.  The latent scores are
drawn afterwards, for each draw, from their exact conditional distribution given the
answers and that draw's parameters, tabulated on the grid with the log density
interpolated linearly between the points (:func:`draw_on_grid`: a piecewise exponential
density, drawn exactly); the per-firm log-likelihood the fit stores (``responses``) is
the integrated one, as for the marginal parameterization.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["POINTS", "HALF_WIDTH", "CHECK_POINTS", "CHECK_HALF_WIDTH", "TOLERANCE", "grid", "answer_rows",
           "distinct_answers", "draw_on_grid", "RowTable", "quadrature_likelihood", "add_quadrature",
           "quadrature_problem"]

#: points of the grid and its half width in latent sd (mirt's default for one factor)
POINTS = 61
HALF_WIDTH = 6.0
#: the finer and wider grid each fit is checked against
CHECK_POINTS = 161
CHECK_HALF_WIDTH = 8.0
#: a fit whose per-firm integrated log-likelihood differs by more than this between the
#: two grids (at any of the checked draws) is flagged
TOLERANCE = 0.01
#: draws the check uses (evenly spaced)
CHECK_DRAWS = 10


def grid(points: int = POINTS, half_width: float = HALF_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """``(x, log_w)``: the equally spaced points and the log weights (standard normal
    density, normalized to sum to one)."""
    x = np.linspace(-half_width, half_width, int(points))
    lw = -0.5 * x**2
    lw = lw - (np.log(np.sum(np.exp(lw - lw.max()))) + lw.max())
    return x, lw


def answer_rows(X: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of answers ``X`` (F, I; NaN missing) within each group:
    ``(rows, inverse, counts)`` with ``rows`` the first firm of each distinct row (in the
    order of first appearance), ``inverse`` each firm's row (F,) and ``counts`` the firms
    per row."""
    X = np.asarray(X, dtype=float)
    F = X.shape[0]
    g = np.zeros(F) if groups is None else np.asarray(groups, dtype=float)
    key = np.column_stack([g, np.where(np.isnan(X), np.inf, X)])
    _, first, inverse, counts = np.unique(key, axis=0, return_index=True, return_inverse=True, return_counts=True)
    inverse = np.asarray(inverse).reshape(-1)
    order = np.argsort(first, kind="stable")  # rows in the order the firms first give them
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return first[order], rank[inverse], counts[order]


def distinct_answers(groups: np.ndarray, item: np.ndarray, value: np.ndarray):
    """The distinct (group, item, answer) of answered cells: ``(group, item, answer,
    which)``, the first three per distinct entry, ``which`` each cell's entry."""
    entries, which = np.unique(np.column_stack([groups, item, value]), axis=0, return_inverse=True)
    return (entries[:, 0].astype(np.int64), entries[:, 1].astype(np.int64), entries[:, 2],
            np.asarray(which, dtype=np.int64).reshape(-1))


def draw_on_grid(lp: np.ndarray, x: np.ndarray, u: np.ndarray, which: np.ndarray | None = None,
                 dens: np.ndarray | None = None) -> np.ndarray:
    """Draws from the densities whose logs (up to a constant) are the rows of ``lp`` (n, Q)
    at the equally spaced points ``x``, interpolated linearly in the log between
    neighbouring points: piecewise exponential densities, drawn exactly by inversion with
    the uniforms ``u`` (m, 2: the segment, the position within it).  Draw i is from row
    ``which[i]`` (default: row i, m = n).  ``dens``: ``exp(lp - max of its row)`` where
    the caller has it."""
    n, Q = lp.shape
    which = np.arange(n) if which is None else np.asarray(which, dtype=np.int64)
    h = float(x[1] - x[0])
    if dens is None:
        dens = np.exp(lp - lp.max(axis=1, keepdims=True))
    d = np.clip(lp[:, 1:] - lp[:, :-1], -700.0, 700.0)
    # each segment's mass, int_0^1 exp(a + d t) dt = (e^b - e^a) / d; near d = 0 the
    # trapezoid (relative error d^2 / 12 there, and at most 1e-16 / 1e-6 from cancellation above)
    small = np.abs(d) < 1e-6
    mass = np.where(small, 0.5 * (dens[:, 1:] + dens[:, :-1]), (dens[:, 1:] - dens[:, :-1]) / np.where(small, 1.0, d))
    cdf = np.cumsum(mass, axis=1)
    cdf /= cdf[:, -1:]
    # every row's cdf lies in (0, 1]: offset row r by 2 r, one sorted search for all draws
    flat = (cdf + 2.0 * np.arange(n)[:, None]).ravel()
    pos = np.searchsorted(flat, u[:, 0] + 2.0 * which)
    k = np.minimum(pos - which * (Q - 1), Q - 2)
    dk, sk = d[which, k], small[which, k]
    with np.errstate(over="ignore", invalid="ignore"):
        t = np.where(sk, u[:, 1], np.log1p(u[:, 1] * np.expm1(dk)) / np.where(sk, 1.0, dk))
    return x[k] + h * np.clip(t, 0.0, 1.0)


class RowTable:
    """The log-likelihood of distinct rows of answers on the grid, through their distinct
    answers: each (group, item, answer) that occurs is evaluated once per point (a
    survey with one answer per row, :func:`~smeintl.measurement.cell_loglik`), and each
    row sums the entries of its answers (a sparse matrix product).  ``Xu`` (U, I; NaN
    missing) the rows, ``gu`` (U,) their group codes."""

    def __init__(self, Xu: np.ndarray, gu: np.ndarray):
        from scipy.sparse import csr_matrix

        U, I = Xu.shape
        r, i = np.nonzero(~np.isnan(Xu))
        self.groups, item, answer, which = distinct_answers(gu[r], i, Xu[r, i])
        E = self.groups.size
        self.X = np.full((E, I), np.nan)
        self.X[np.arange(E), item] = answer
        self.sum = csr_matrix((np.ones(r.size), (r, which)), shape=(U, E))

    def loglik(self, P, s: int, group_mean: np.ndarray, layout, std, x: np.ndarray) -> np.ndarray:
        """(U, Q): each row's log-likelihood at ``eta = group_mean[g] + x_q`` with the
        parameters of draw ``s`` (continuous items with the Jacobian of their
        standardization)."""
        from .generative import cell_loglik

        eta = (np.asarray(group_mean, dtype=float)[self.groups][:, None] + x[None, :])[:, :, None]
        return np.asarray(self.sum @ cell_loglik(P, s, eta, self.X, layout, std))


def _setup(model, idata, survey):
    from .. import compat
    from .generative import posterior_params

    post = compat.group(idata, "posterior")
    P = posterior_params(idata, model.spec)
    X = survey.items[list(model.layout.names)].to_numpy(dtype=float)
    codes = np.asarray(survey.groups, dtype=int) if model.group else np.zeros(X.shape[0], dtype=int)
    rows, inverse, counts = answer_rows(X, codes if model.group else None)
    return post, P, X, codes, rows, inverse, counts


def add_quadrature(model, idata, survey, std, seed: int, *, log_likelihood: bool = True) -> dict[str, Any]:
    """After sampling a quadrature fit: the latent scores ``eta`` (drawn from their
    conditional distribution per draw, see the module docstring), the integrated per-firm
    log-likelihood ``responses`` (with ``log_likelihood``), and the check of the grid.
    Returns the check and records it in the fit's attrs as ``quadrature`` (JSON), where
    :func:`~smeintl.measurement.diagnose` reads it: the grids and ``max_abs_error``, the
    largest difference of a firm's integrated log-likelihood between them over
    :data:`CHECK_DRAWS` draws."""
    import xarray as xr
    from scipy.special import logsumexp

    from .. import compat

    post, P, X, codes, rows, inverse, counts = _setup(model, idata, survey)
    lay = model.layout
    nc, nd = int(post.sizes["chain"]), int(post.sizes["draw"])
    S, F = nc * nd, X.shape[0]
    Xu, gu = X[rows], codes[rows]
    x, lw = grid()
    # the uniforms of each batch of draws from one generator, in order, outside the threads:
    # the scores do not depend on the number of threads (the batches, on the survey's size only)
    rng = np.random.default_rng([int(seed), 2])
    eta = np.empty((S, F))
    ll_rows = np.empty((S, rows.size))

    table = RowTable(Xu, gu)

    def means(s: int) -> np.ndarray:  # the groups' latent means at draw s
        return P["group_mean"][s][:, 0] if "group_mean" in P else np.zeros(int(gu.max()) + 1 if gu.size else 1)

    U, Q = rows.size, x.size
    # draws in batches of a few hundred MB at most; within a batch one thread per core
    # computes each draw's table (the kernels release the GIL), then the scores are drawn
    # for the whole batch at once
    batch = max(1, int(2e7 // (U * Q + 4 * F)))
    lp = np.empty((min(batch, S), U, Q))
    workers = min(os.cpu_count() or 1, 8, S)

    def some(ks: np.ndarray, draws: np.ndarray) -> None:  # a chunk of draws per task: each table is small
        for k, s in zip(ks, draws):
            lp[k] = table.loglik(P, s, means(s), lay, std, x) + lw[None, :]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for a in range(0, S, batch):
            sel = np.arange(a, min(S, a + batch))
            chunks = np.array_split(np.arange(sel.size), workers)
            list(pool.map(some, chunks, [sel[c] for c in chunks]))
            part = lp[:sel.size]
            top = part.max(axis=2, keepdims=True)
            dens = np.exp(part - top)  # one exponential per point serves the sum and the draws
            ll_rows[sel] = top[..., 0] + np.log(dens.sum(axis=2))
            mu = np.stack([means(s)[codes] for s in sel])  # (b, F)
            which = (np.arange(sel.size)[:, None] * U + inverse[None, :]).ravel()
            u = rng.random((sel.size * F, 2))
            eta[sel] = mu + draw_on_grid(part.reshape(-1, Q), x, u, which, dens.reshape(-1, Q)).reshape(sel.size, F)

    xc, lwc = grid(CHECK_POINTS, CHECK_HALF_WIDTH)
    few = np.unique(np.round(np.linspace(0, S - 1, min(CHECK_DRAWS, S))).astype(int))
    err = 0.0
    for s in few:
        fine = logsumexp(table.loglik(P, s, means(s), lay, std, xc) + lwc[None, :], axis=1)
        err = max(err, float(np.max(np.abs(fine - ll_rows[s]))) if rows.size else 0.0)
    firms = list(survey.items.index)
    da = xr.DataArray(eta.reshape(nc, nd, F, 1), dims=("chain", "draw", "firm", "construct"),
                      coords={"chain": post.chain, "draw": post.draw, "firm": firms,
                              "construct": list(lay.constructs)})
    compat.set_group(idata, "posterior", compat.group(idata, "posterior").assign(eta=da))
    if log_likelihood:
        ll = xr.DataArray(ll_rows[:, inverse].reshape(nc, nd, F), dims=("chain", "draw", "firm"),
                          coords={"chain": post.chain, "draw": post.draw, "firm": firms})
        compat.set_group(idata, "log_likelihood", xr.Dataset({"responses": ll}))
    check = {"points": POINTS, "half_width": HALF_WIDTH, "check_points": CHECK_POINTS,
             "check_half_width": CHECK_HALF_WIDTH, "check_draws": int(few.size), "rows": int(rows.size),
             "max_abs_error": err, "tolerance": TOLERANCE}
    idata.attrs["quadrature"] = json.dumps(check)
    return check


def quadrature_problem(check: dict[str, Any]) -> str | None:
    """The diagnostics' problem for a grid check over :data:`TOLERANCE`, else None."""
    if check["max_abs_error"] <= check["tolerance"]:
        return None
    return (f"quadrature: a firm's integrated log-likelihood moves by {check['max_abs_error']:.3g} from "
            f"{check['points']} to {check['check_points']} grid points (tolerance {check['tolerance']}); the "
            "scores' posterior is narrower than the grid resolves: use parameterization='latent'")


def quadrature_likelihood(pm, pt, inp, lay, pri, X, gmean, G, loading, std, groups):
    """The model's likelihood with one construct's scores integrated out on the grid
    (``lay``: the item layout, ``pri``: the spec's priors, ``gmean``: the group means
    (G, 1) or None without them, ``groups``: the firms' group codes or None).

    Each family's kernel runs once per grid point q and distinct (group, item, answer)
    of the block: its log-likelihood at the score ``mu_g + x_q`` (the table).  Each
    distinct row u of answers (within its group) then sums its answers' entries of the
    table per point, and the model adds ``n_u log sum_q w_q p(y_u | mu_g + x_q)`` with
    ``n_u`` the row's number of firms.  With few categories the table is small (five
    binary items: 10 entries per group and point), so a gradient costs about as much
    as a handful of latent scores would."""
    from .. import families as fam
    from ..families.kernels import cells_logp_elementwise

    rows, _inverse, counts = answer_rows(X, groups)
    Xu = X[rows]
    gu = np.asarray(groups, dtype=np.int64)[rows] if gmean is not None else np.zeros(rows.size, np.int64)
    x, lw = grid()
    Q = x.size
    n_rows = inp.add("data_quad_counts", counts, dtype=np.float64)
    # the scores at every point and group, position q * G + g
    if gmean is None:
        eta, G = pt.as_tensor(x), 1
    else:
        eta = (pt.as_tensor(x)[:, None] + gmean[None, :, 0]).reshape((-1,))
    signed = loading * lay.sign
    ctx = fam.BuildContext(pm=pm, pt=pt, inputs=inp, priors=pri, layout=lay, X=Xu, eta_flat=eta,
                           signed=signed, shift=None, standardization=std, n_constructs=1)
    at_points = pt.zeros((Q, 1)) + (n_rows * 0.0)[None, :]  # (Q, U)
    for block in lay.blocks():
        family = block.family
        p1, p2, p3 = family.build_params(ctx, block)
        u, j, v = family.observed_cells(lay, block, Xu, std)
        eg, ej, ev, which = distinct_answers(gu[u], j, v)
        e = (np.arange(Q)[:, None] * G + eg[None, :]).ravel()
        name = block.key
        e_d, it, jj, pos = (inp.add(f"data_{name}_{k}", a, dtype=np.int64) for k, a in (
            ("eta", e), ("item", np.tile(block.idx[ej], Q)), ("j", np.tile(ej, Q)),
            ("pos", np.tile(np.asarray(family.positions(ej, ev, block)), Q))))
        value = inp.add(f"data_{name}_y", np.tile(ev, Q), dtype=np.float64)
        table = cells_logp_elementwise(family.kernel, eta, signed, p1, p2, p3, e_d, it, jj, pos, value)
        row_d = inp.add(f"data_{name}_row", u, dtype=np.int64)
        entry_d = inp.add(f"data_{name}_entry", which, dtype=np.int64)
        at_points = pt.inc_subtensor(at_points[:, row_d], table.reshape((Q, -1))[:, entry_d])
    per_row = pt.logsumexp(at_points + lw[:, None], axis=0)
    pm.Potential("quadrature_loglik", pt.sum(n_rows * per_row))
