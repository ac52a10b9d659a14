"""The measurement model's likelihood, one fused loop per item family.

Every answer (cell) of the latent parameterization has the linear predictor

    lin = eta[e] * signed[item] + offset[j]

(``e`` indexes the firm's score on the item's construct in the flattened score matrix,
``j`` the item within its family; ``offset`` is the family's intercept, zero for the
ordinal items).  :class:`CellsLogp` takes the scores, the signed loadings, up to three
family parameter vectors and the data, and returns the family's total log-likelihood
together with its gradient with respect to each of the five float inputs, computed in
one pass over the cells.  Its ``L_op`` only scales those gradients.

Why not PyTensor's own graph: written as gathers, elementwise functions and scatters,
the likelihood and its gradient were a few hundred graph nodes, and nutpie's numba
compile of the default instrument's log-density took about 67 s on a cold cache, for
every new model structure.  The kernels below are plain numba functions cached on disk
(``cache=True``), compiled once per machine and shared by every structure and process.

Families and their parameters (``p1``, ``p2``, ``p3``; unused ones are length-one dummies):

``ordinal``     ``p1`` zeros, ``p2`` the padded cutpoints ``[-C, c_1, ..., c_K-1, C]`` of
                every item, flattened, ``pos`` the flat position of the observed
                category's lower cutpoint.  P(y = k) = sigmoid(lin - c_k) - sigmoid(lin - c_k+1).
``percent``     the same ordinal part over the categories 0 %, inside, 100 % (``p1`` the
                intercepts, ``p2`` the padded cutpoints), plus for answers inside the
                Beta(mu = sigmoid(lin), nu = ``p3``) density of the value ``yf``.
``count``       NegativeBinomial(mu = exp(lin), alpha = 1 / ``p2``) of ``yf``.
``binary``      Bernoulli(logit_p = lin) of ``yf``.
``continuous``  Normal(lin, ``p2``) of ``yf`` (the standardized answer).

The densities are PyMC's (``tests/test_kernels.py`` compares value and gradient with
PyMC's distributions and with finite differences).  ``perform`` (PyMC's own sampler,
``pymc.logp`` evaluations) calls the same compiled kernels.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key


FAMILIES = ("ordinal", "percent", "count", "binary", "continuous")
#: stands in for the infinite outer cutpoints of the padded cutpoint vectors (exact in double
#: precision for any linear predictor and cutpoint within +-1e3)
OUTER_CUT = 1e4

# error_model="numpy": a division by zero gives inf or nan instead of raising.  The kernels
# run in nutpie's sampler threads, which hold no Python thread state: an exception there
# (say psi(0) when sigmoid(lin) underflows in early tuning) would crash the process.
_jit = numba.njit(cache=True, fastmath=False, nogil=True, error_model="numpy")


def _psi_positive(x):
    """Digamma for x > 0: upward recurrence to x >= 10, then the asymptotic series
    ln x - 1/(2x) - sum_k B_2k / (2k x^2k) through k = 7 (truncation error < 1e-16)."""
    acc = 0.0
    while x < 10.0:
        acc -= 1.0 / x
        x += 1.0
    r = 1.0 / (x * x)
    s = r * (1.0 / 12 - r * (1.0 / 120 - r * (1.0 / 252 - r * (1.0 / 240 - r * (
        1.0 / 132 - r * (691.0 / 32760 - r / 12.0))))))
    return acc + math.log(x) - 0.5 / x - s


_psi = _jit(_psi_positive)


@_jit
def _log_sigmoid_parts(x):
    """exp(-|x|) and sigmoid(x), without overflow."""
    ex = math.exp(-abs(x))
    s = 1.0 / (1.0 + ex) if x >= 0 else ex / (1.0 + ex)
    return ex, s


@_jit
def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@_jit
def _category_parts(cut):
    """For each position k of the padded cutpoints, log(1 - d) and d / (1 - d) with
    d = exp(cut[k] - cut[k + 1]): the parts of :func:`_ordinal_cell` that depend on the
    category's two cutpoints only, once per call instead of once per answer.  (The last
    position of each item pairs it with the next item's first: never read.)"""
    log1m = np.empty(cut.size)
    ratio = np.empty(cut.size)
    for k in range(cut.size - 1):
        d = math.exp(cut[k] - cut[k + 1])
        log1m[k] = math.log1p(-d)
        ratio[k] = d / (1.0 - d)
    return log1m, ratio


@_jit
def _ordinal_cell(lin, lo, hi, log1m_d, r):
    """log(sigmoid(lin - lo) - sigmoid(lin - hi)) and its derivatives in a = lin - lo, b = lin - hi.

    log sigmoid(a) + log sigmoid(-b) + log(1 - d),  d = exp(b - a) = exp(lo - hi),
        = (a - |a|)/2 - (b + |b|)/2 + log(1 - d) - log((1 + exp(-|a|)) (1 + exp(-|b|))),

    two exponentials and one logarithm per answer, which the derivatives reuse; ``log1m_d``
    = log(1 - d) and ``r`` = d / (1 - d) come from :func:`_category_parts`.  Exact in both
    tails (where PyMC's difference of probabilities underflows).  ``(a - |a|)/2`` rather
    than ``min(a, 0)`` gives the right derivative at ``a = 0``."""
    a = lin - lo
    b = lin - hi
    ea, sa = _log_sigmoid_parts(a)
    eb, sb = _log_sigmoid_parts(b)
    lp = 0.5 * (a - b - abs(a) - abs(b)) + log1m_d - math.log((1.0 + ea) * (1.0 + eb))
    return lp, 1.0 - sa + r, -sb - r


@_jit
def _lgamma_psi(v):
    """lgamma and digamma of each per-item parameter (the Beta precision, the negative
    binomial's alpha), once per call instead of once per cell."""
    lg = np.empty(v.size)
    psi = np.empty(v.size)
    for k in range(v.size):
        lg[k] = math.lgamma(v[k])
        psi[k] = _psi(v[k])
    return lg, psi


@_jit
def _lin(eta, signed, p1, e, it, j):
    """A cell's score x, signed loading s and linear predictor x * s + p1[j]."""
    x = eta[e]
    s = signed[it]
    return x, s, x * s + p1[j]


# Each family's loop writes, for every cell i, its log-likelihood lp[i] and the local
# derivatives the gradient needs: dl[i] = d lp / d lin, d2a[i] and d2b[i] = d lp / d p2 at
# positions k2[i] and k2[i] + 1, d3[i] = d lp / d p3[j[i]].  _scatter turns them into the
# gradient with respect to eta, signed, p1, p2 and p3 for any weights g (the gradient of
# whatever the log-likelihood enters): one pass over the cells with the transcendental
# work, one cheap pass of multiply-adds.
@_jit
def _ordinal(eta, signed, p1, p2, p3, e, it, j, pos, yf, lp, dl, d2a, d2b, d3, k2):
    log1m_d, ratio = _category_parts(p2)
    for i in range(e.size):
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], j[i])
        k = pos[i]
        v, da, db = _ordinal_cell(lin, p2[k], p2[k + 1], log1m_d[k], ratio[k])
        lp[i] = v
        dl[i] = da + db
        d2a[i] = -da
        d2b[i] = -db
        d3[i] = 0.0
        k2[i] = k


@_jit
def _percent(eta, signed, p1, p2, p3, e, it, j, pos, yf, lp, dl, d2a, d2b, d3, k2):
    """Ordinal category (0 %, inside, 100 %; padded width 4 per item) plus the Beta value inside."""
    lg_phi, psi_phi = _lgamma_psi(p3)
    log1m_d, ratio = _category_parts(p2)
    for i in range(e.size):
        jj = j[i]
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], jj)
        k = pos[i]
        v, da, db = _ordinal_cell(lin, p2[k], p2[k + 1], log1m_d[k], ratio[k])
        d = da + db
        g3 = 0.0
        if k - 4 * jj == 1:  # inside (0, 1): Beta(mu * phi, (1 - mu) * phi)
            phi = p3[jj]
            _, mu = _log_sigmoid_parts(lin)
            al = mu * phi
            be = (1.0 - mu) * phi
            lv = math.log(yf[i])
            l1v = math.log1p(-yf[i])
            v += (al - 1.0) * lv + (be - 1.0) * l1v - math.lgamma(al) - math.lgamma(be) + lg_phi[jj]
            d_al = psi_phi[jj] - _psi(al) + lv
            d_be = psi_phi[jj] - _psi(be) + l1v
            d += phi * (d_al - d_be) * mu * (1.0 - mu)
            g3 = mu * d_al + (1.0 - mu) * d_be
        lp[i] = v
        dl[i] = d
        d2a[i] = -da
        d2b[i] = -db
        d3[i] = g3
        k2[i] = k


@_jit
def _count(eta, signed, p1, p2, p3, e, it, j, pos, yf, lp, dl, d2a, d2b, d3, k2):
    """NegativeBinomial(mu = exp(lin), alpha = 1 / p2[j]); with t = lin - log(alpha),
    log p = lgamma(y + alpha) - lgamma(alpha) - lgamma(y + 1) - alpha softplus(t) + y (t - softplus(t))."""
    alpha = 1.0 / p2
    log_alpha = np.log(alpha)
    lg_alpha, psi_alpha = _lgamma_psi(alpha)
    for i in range(e.size):
        jj = j[i]
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], jj)
        y = yf[i]
        al = alpha[jj]
        t = lin - log_alpha[jj]
        sp = _softplus(t)
        _, sig = _log_sigmoid_parts(t)
        lp[i] = math.lgamma(y + al) - lg_alpha[jj] - math.lgamma(y + 1.0) - al * sp + y * (t - sp)
        d = y - (al + y) * sig
        d_al = _psi(y + al) - psi_alpha[jj] - sp - d / al
        dl[i] = d
        d2a[i] = -al * al * d_al  # d alpha / d p2 = -alpha^2
        d2b[i] = 0.0
        d3[i] = 0.0
        k2[i] = jj


@_jit
def _binary(eta, signed, p1, p2, p3, e, it, j, pos, yf, lp, dl, d2a, d2b, d3, k2):
    """Bernoulli(logit_p = lin): log p = y lin - softplus(lin)."""
    for i in range(e.size):
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], j[i])
        _, sig = _log_sigmoid_parts(lin)
        lp[i] = yf[i] * lin - _softplus(lin)
        dl[i] = yf[i] - sig
        d2a[i] = 0.0
        d2b[i] = 0.0
        d3[i] = 0.0
        k2[i] = 0


@_jit
def _continuous(eta, signed, p1, p2, p3, e, it, j, pos, yf, lp, dl, d2a, d2b, d3, k2):
    """Normal(lin, p2[j]) of the standardized answer."""
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    for i in range(e.size):
        jj = j[i]
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], jj)
        sd = p2[jj]
        z = (yf[i] - lin) / sd
        lp[i] = -0.5 * z * z - math.log(sd) - half_log_2pi
        dl[i] = z / sd
        d2a[i] = (z * z - 1.0) / sd
        d2b[i] = 0.0
        d3[i] = 0.0
        k2[i] = jj


@_jit
def _scatter(g, dl, d2a, d2b, d3, k2, eta, signed, e, it, j, g_eta, g_sig, g1, g2, g3):
    """Add the weighted local derivatives of every cell (see above) into the gradients."""
    for i in range(e.size):
        w = g[i]
        d = w * dl[i]
        g_eta[e[i]] += d * signed[it[i]]
        g_sig[it[i]] += d * eta[e[i]]
        g1[j[i]] += d
        if d2a[i] != 0.0:
            g2[k2[i]] += w * d2a[i]
        if d2b[i] != 0.0:
            g2[k2[i] + 1] += w * d2b[i]
        if d3[i] != 0.0:
            g3[j[i]] += w * d3[i]


_FILL = {"ordinal": _ordinal, "percent": _percent, "count": _count, "binary": _binary,
         "continuous": _continuous}


def _floats(*vs):
    return [np.ascontiguousarray(v, dtype=float) for v in vs]


def _ints(*vs):
    return [np.ascontiguousarray(v, dtype=np.int64) for v in vs]


def cells_parts(family: str, eta, signed, p1, p2, p3, e, it, j, pos, yf):
    """``(lp, dl, d2a, d2b, d3, k2)``: each cell's log-likelihood and local derivatives
    (numpy in, numpy out; the kernel the Op runs)."""
    n = np.size(e)
    out = [np.empty(n) for _ in range(5)] + [np.empty(n, dtype=np.int64)]
    _FILL[family](*_floats(eta, signed, p1, p2, p3), *_ints(e, it, j, pos), *_floats(yf), *out)
    return tuple(out)


def cells_loglik(family: str, eta, signed, p1, p2, p3, e, it, j, pos, yf) -> np.ndarray:
    """Each cell's log-likelihood (numpy): the family's one implementation, as the model
    evaluates it."""
    return cells_parts(family, eta, signed, p1, p2, p3, e, it, j, pos, yf)[0]


def scatter(g, parts, eta, signed, p1, p2, p3, e, it, j) -> tuple[np.ndarray, ...]:
    """The gradient with respect to (eta, signed, p1, p2, p3) of ``sum(g * lp)`` from the
    cells' local derivatives ``parts`` (:func:`cells_parts`)."""
    grads = [np.zeros(np.shape(v)) for v in (eta, signed, p1, p2, p3)]
    _lp, dl, d2a, d2b, d3, k2 = parts
    _scatter(*_floats(g, dl, d2a, d2b, d3), *_ints(k2), *_floats(eta, signed), *_ints(e, it, j), *grads)
    return tuple(grads)


def _kernel(family):
    """``kernel(eta, signed, p1, p2, p3, e, item, j, pos, yf) -> (total, g_eta, g_signed,
    g_p1, g_p2, g_p3)`` (total a length-one array): the family's summed log-likelihood and
    its gradient (tests, and the reference for the Op)."""

    def kernel(eta, signed, p1, p2, p3, e, it, j, pos, yf):
        parts = cells_parts(family, eta, signed, p1, p2, p3, e, it, j, pos, yf)
        grads = scatter(np.ones(np.size(e)), parts, eta, signed, p1, p2, p3, e, it, j)
        return (np.array([parts[0].sum()]), *grads)

    return kernel


KERNELS = {name: _kernel(name) for name in _FILL}


def _source_version() -> int:
    """Changes with this file: part of the compiled graph's cache key."""
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return int(digest[:12], 16)


_VERSION = _source_version()


class CellsLogp(Op):
    """Each cell's log-likelihood of one item family (see the module docstring).

    Inputs: ``eta`` (flattened scores), ``signed`` (signed loadings), ``p1``, ``p2``,
    ``p3`` (float vectors), ``e``, ``item``, ``j``, ``pos`` (integer vectors, one entry
    per cell), ``yf`` (float vector: the answers).  Outputs: the cells' log-likelihood,
    then their local derivatives (``dl``, ``d2a``, ``d2b``, ``d3``, ``k2``: internal, for
    the gradient, which :class:`CellsGrad` scatters with the log-likelihood's gradient)."""

    __props__ = ("family",)

    def __init__(self, family: str):
        if family not in _FILL:
            raise ValueError(f"unknown item family {family!r}; allowed: {', '.join(FAMILIES)}")
        self.family = family

    def make_node(self, eta, signed, p1, p2, p3, e, item, j, pos, yf):
        floats = [pt.as_tensor(v).astype("float64") for v in (eta, signed, p1, p2, p3)]
        ints = [pt.as_tensor(v).astype("int64") for v in (e, item, j, pos)]
        yf = pt.as_tensor(yf).astype("float64")
        for v in [*floats, *ints, yf]:
            if v.type.ndim != 1:
                raise TypeError(f"CellsLogp takes vectors, got {v.type}")
        outputs = [pt.vector(dtype="float64") for _ in range(5)] + [pt.vector(dtype="int64")]
        return Apply(self, [*floats, *ints, yf], outputs)

    def perform(self, node, inputs, output_storage):
        for store, value in zip(output_storage, cells_parts(self.family, *inputs)):
            store[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[5]] * 6

    def connection_pattern(self, node):
        return [[True] + [False] * 5] * 5 + [[False] * 6] * 5

    def L_op(self, inputs, outputs, output_grads):
        eta, signed, p1, p2, p3, e, item, j = inputs[:8]
        grads = CellsGrad()(output_grads[0], *outputs[1:], eta, signed, p1, p2, p3, e, item, j)
        return list(grads) + [disconnected_type() for _ in inputs[5:]]


class CellsGrad(Op):
    """The gradient of ``sum(g * lp)`` with respect to (eta, signed, p1, p2, p3) from the
    cells' local derivatives (:class:`CellsLogp`'s outputs after the first)."""

    __props__ = ()

    def make_node(self, g, dl, d2a, d2b, d3, k2, eta, signed, p1, p2, p3, e, item, j):
        fl = [pt.as_tensor(v).astype("float64") for v in (g, dl, d2a, d2b, d3)]
        k2 = pt.as_tensor(k2).astype("int64")
        par = [pt.as_tensor(v).astype("float64") for v in (eta, signed, p1, p2, p3)]
        ints = [pt.as_tensor(v).astype("int64") for v in (e, item, j)]
        return Apply(self, [*fl, k2, *par, *ints], [v.type() for v in par])

    def perform(self, node, inputs, output_storage):
        g, dl, d2a, d2b, d3, k2, eta, signed, p1, p2, p3, e, item, j = inputs
        grads = scatter(g, (None, dl, d2a, d2b, d3, k2), eta, signed, p1, p2, p3, e, item, j)
        for store, value in zip(output_storage, grads):
            store[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return list(shapes[6:11])


def cells_logp(family: str, eta, signed, p1, p2, p3, e, item, j, pos, yf):
    """The family's total log-likelihood (a scalar graph), see :class:`CellsLogp`."""
    return CellsLogp(family)(eta, signed, p1, p2, p3, e, item, j, pos, yf)[0].sum()


def cells_logp_elementwise(family: str, eta, signed, p1, p2, p3, e, item, j, pos, yf):
    """Each cell's log-likelihood (a vector graph), see :class:`CellsLogp`."""
    return CellsLogp(family)(eta, signed, p1, p2, p3, e, item, j, pos, yf)[0]


@register_funcify_default_op_cache_key(CellsLogp)
def numba_funcify_CellsLogp(op, node, **kwargs):
    fill = _FILL[op.family]

    @numba_basic.numba_njit
    def cells_logp_numba(eta, signed, p1, p2, p3, e, item, j, pos, yf):
        n = e.size
        lp, dl, d2a, d2b, d3 = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
        k2 = np.empty(n, dtype=np.int64)
        fill(eta, signed, p1, p2, p3, e, item, j, pos, yf, lp, dl, d2a, d2b, d3, k2)
        return lp, dl, d2a, d2b, d3, k2

    return cells_logp_numba, _VERSION


@register_funcify_default_op_cache_key(CellsGrad)
def numba_funcify_CellsGrad(op, node, **kwargs):
    @numba_basic.numba_njit
    def cells_grad_numba(g, dl, d2a, d2b, d3, k2, eta, signed, p1, p2, p3, e, item, j):
        g_eta, g_sig = np.zeros(eta.size), np.zeros(signed.size)
        g1, g2, g3 = np.zeros(p1.size), np.zeros(p2.size), np.zeros(p3.size)
        _scatter(g, dl, d2a, d2b, d3, k2, eta, signed, e, item, j, g_eta, g_sig, g1, g2, g3)
        return g_eta, g_sig, g1, g2, g3

    return cells_grad_numba, _VERSION


# ---------------------------------------------------------------------------
# the cutpoints' ordered transform
# ---------------------------------------------------------------------------
@_jit
def _ordered_rows(x):
    """Each row of ``x`` to increasing values: y_0 = x_0, y_k = y_k-1 + exp(x_k)."""
    y = np.empty(x.shape)
    for r in range(x.shape[0]):
        acc = x[r, 0]
        y[r, 0] = acc
        for k in range(1, x.shape[1]):
            acc += math.exp(x[r, k])
            y[r, k] = acc
    return y


@_jit
def _ordered_rows_grad(x, g):
    """The gradient of sum(g * _ordered_rows(x)) with respect to ``x``."""
    out = np.empty(x.shape)
    for r in range(x.shape[0]):
        tail = 0.0
        for k in range(x.shape[1] - 1, 0, -1):
            tail += g[r, k]
            out[r, k] = math.exp(x[r, k]) * tail
        out[r, 0] = tail + g[r, 0]
    return out


class OrderedRows(Op):
    """PyMC's ordered transform (``backward``) of a matrix, row by row, as one operation:
    PyMC writes it as an allocation, two subtensor assignments, an exponential and a
    cumulative sum, each compiled separately (about 8 s of a cold compile); here one cached
    kernel, and one for the gradient (:class:`OrderedRowsGrad`)."""

    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor(x).astype("float64")
        if x.type.ndim != 2:
            raise TypeError(f"OrderedRows takes a matrix, got {x.type}")
        return Apply(self, [x], [pt.matrix(dtype="float64", shape=x.type.shape)])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = _ordered_rows(np.ascontiguousarray(inputs[0], dtype=float))

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]

    def L_op(self, inputs, outputs, output_grads):
        return [OrderedRowsGrad()(inputs[0], output_grads[0])]


class OrderedRowsGrad(Op):
    """The gradient of :class:`OrderedRows` (exp(x_k) times the reverse cumulative sum of g)."""

    __props__ = ()

    def make_node(self, x, g):
        x = pt.as_tensor(x).astype("float64")
        g = pt.as_tensor(g).astype("float64")
        return Apply(self, [x, g], [pt.matrix(dtype="float64", shape=x.type.shape)])

    def perform(self, node, inputs, output_storage):
        x, g = (np.ascontiguousarray(v, dtype=float) for v in inputs)
        output_storage[0][0] = _ordered_rows_grad(x, g)

    def infer_shape(self, fgraph, node, shapes):
        return [shapes[0]]


@register_funcify_default_op_cache_key(OrderedRows)
def numba_funcify_OrderedRows(op, node, **kwargs):
    @numba_basic.numba_njit
    def ordered_rows_numba(x):
        return _ordered_rows(x)

    return ordered_rows_numba, _VERSION


@register_funcify_default_op_cache_key(OrderedRowsGrad)
def numba_funcify_OrderedRowsGrad(op, node, **kwargs):
    @numba_basic.numba_njit
    def ordered_rows_grad_numba(x, g):
        return _ordered_rows_grad(x, g)

    return ordered_rows_grad_numba, _VERSION


def ordered_transform():
    """PyMC's ``ordered`` transform with its ``backward`` (the one in the log-density) as
    :class:`OrderedRows`; ``forward`` and the log-Jacobian are PyMC's."""
    from pymc.distributions.transforms import Ordered

    class _Ordered(Ordered):
        def backward(self, value, *inputs):
            return OrderedRows()(value)

    return _Ordered()
