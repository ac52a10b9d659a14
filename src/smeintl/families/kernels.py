"""The measurement model's likelihood, one fused loop per item family.

Every answer (cell) of the latent parameterization has the linear predictor

    lin = eta[e] * signed[item] + offset[j]

(``e`` indexes the firm's score on the item's construct in the flattened score matrix,
``j`` the item within its family; ``offset`` is the family's intercept, zero for the
ordinal items).  :class:`CellsLogp` takes the scores, the signed loadings, up to three
family parameter vectors and the data, and returns the family's total log-likelihood
together with its gradient with respect to each of the five float inputs, computed in
one pass over the cells.  Its ``pullback`` (the gradient) only scales those gradients.

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

from ..compat import op_methods
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


# Each family's loop writes every cell's log-likelihood lp[i] and adds its gradient with
# respect to eta, signed, p1, p2 and p3, weighted by w[i] (all weights 1 when w is None:
# the gradient of the total; numba compiles that case without the weights), in one pass.
@_jit
def _weight(w, i):
    if w is None:
        return 1.0
    return w[i]


@_jit
def _add_lin(g_eta, g_sig, g1, e, it, j, dl, s, x):
    """Add d logp / d lin = ``dl`` of a cell with lin = x * s + p1[j] to the score, loading
    and intercept gradients."""
    g_eta[e] += dl * s
    g_sig[it] += dl * x
    g1[j] += dl


@_jit
def _ordinal(eta, signed, p1, p2, p3, e, it, j, pos, yf, w, lp, g_eta, g_sig, g1, g2, g3):
    log1m_d, ratio = _category_parts(p2)
    for i in range(e.size):
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], j[i])
        k = pos[i]
        v, da, db = _ordinal_cell(lin, p2[k], p2[k + 1], log1m_d[k], ratio[k])
        lp[i] = v
        wi = _weight(w, i)
        _add_lin(g_eta, g_sig, g1, e[i], it[i], j[i], wi * (da + db), s, x)
        g2[k] -= wi * da
        g2[k + 1] -= wi * db


@_jit
def _percent(eta, signed, p1, p2, p3, e, it, j, pos, yf, w, lp, g_eta, g_sig, g1, g2, g3):
    """Ordinal category (0 %, inside, 100 %; padded width 4 per item) plus the Beta value inside."""
    lg_phi, psi_phi = _lgamma_psi(p3)
    log1m_d, ratio = _category_parts(p2)
    for i in range(e.size):
        jj = j[i]
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], jj)
        k = pos[i]
        v, da, db = _ordinal_cell(lin, p2[k], p2[k + 1], log1m_d[k], ratio[k])
        wi = _weight(w, i)
        dl = da + db
        g2[k] -= wi * da
        g2[k + 1] -= wi * db
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
            dl += phi * (d_al - d_be) * mu * (1.0 - mu)
            g3[jj] += wi * (mu * d_al + (1.0 - mu) * d_be)
        lp[i] = v
        _add_lin(g_eta, g_sig, g1, e[i], it[i], jj, wi * dl, s, x)


@_jit
def _count(eta, signed, p1, p2, p3, e, it, j, pos, yf, w, lp, g_eta, g_sig, g1, g2, g3):
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
        wi = _weight(w, i)
        dl = y - (al + y) * sig
        d_al = _psi(y + al) - psi_alpha[jj] - sp - dl / al
        g2[jj] -= wi * al * al * d_al  # d alpha / d p2 = -alpha^2
        _add_lin(g_eta, g_sig, g1, e[i], it[i], jj, wi * dl, s, x)


@_jit
def _binary(eta, signed, p1, p2, p3, e, it, j, pos, yf, w, lp, g_eta, g_sig, g1, g2, g3):
    """Bernoulli(logit_p = lin): log p = y lin - softplus(lin)."""
    for i in range(e.size):
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], j[i])
        _, sig = _log_sigmoid_parts(lin)
        lp[i] = yf[i] * lin - _softplus(lin)
        _add_lin(g_eta, g_sig, g1, e[i], it[i], j[i], _weight(w, i) * (yf[i] - sig), s, x)


@_jit
def _continuous(eta, signed, p1, p2, p3, e, it, j, pos, yf, w, lp, g_eta, g_sig, g1, g2, g3):
    """Normal(lin, p2[j]) of the standardized answer."""
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    for i in range(e.size):
        jj = j[i]
        x, s, lin = _lin(eta, signed, p1, e[i], it[i], jj)
        sd = p2[jj]
        z = (yf[i] - lin) / sd
        lp[i] = -0.5 * z * z - math.log(sd) - half_log_2pi
        wi = _weight(w, i)
        g2[jj] += wi * (z * z - 1.0) / sd
        _add_lin(g_eta, g_sig, g1, e[i], it[i], jj, wi * z / sd, s, x)


_FILL = {"ordinal": _ordinal, "percent": _percent, "count": _count, "binary": _binary,
         "continuous": _continuous}


def _floats(*vs):
    return [np.ascontiguousarray(v, dtype=float) for v in vs]


def _ints(*vs):
    return [np.ascontiguousarray(v, dtype=np.int64) for v in vs]


def cells_eval(family: str, eta, signed, p1, p2, p3, e, it, j, pos, yf, w=None) -> tuple[np.ndarray, ...]:
    """``(lp, g_eta, g_signed, g_p1, g_p2, g_p3)``: each cell's log-likelihood and the
    gradient of ``sum(w * lp)`` (of the total without ``w``), numpy in, numpy out: the
    family's one implementation, which the Ops run."""
    lp = np.empty(np.size(e))
    grads = [np.zeros(np.shape(v)) for v in (eta, signed, p1, p2, p3)]
    w = None if w is None else np.ascontiguousarray(np.broadcast_to(np.asarray(w, dtype=float), lp.shape))
    _FILL[family](*_floats(eta, signed, p1, p2, p3), *_ints(e, it, j, pos), *_floats(yf), w, lp, *grads)
    return (lp, *grads)


def cells_loglik(family: str, eta, signed, p1, p2, p3, e, it, j, pos, yf) -> np.ndarray:
    """Each cell's log-likelihood (numpy), as the model evaluates it."""
    return cells_eval(family, eta, signed, p1, p2, p3, e, it, j, pos, yf)[0]


def _kernel(family):
    """``kernel(eta, signed, p1, p2, p3, e, item, j, pos, yf) -> (total, g_eta, g_signed,
    g_p1, g_p2, g_p3)`` (total a length-one array): the family's summed log-likelihood and
    its gradient (tests, and the reference for the Ops)."""

    def kernel(eta, signed, p1, p2, p3, e, it, j, pos, yf):
        lp, *grads = cells_eval(family, eta, signed, p1, p2, p3, e, it, j, pos, yf)
        return (np.array([lp.sum()]), *grads)

    return kernel


KERNELS = {name: _kernel(name) for name in _FILL}


def _source_version() -> int:
    """Changes with this file: part of the compiled graph's cache key."""
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return int(digest[:12], 16)


_VERSION = _source_version()


def _uniform(g):
    """The scalar ``c`` where the gradient ``g`` reaching a vector of cell log-likelihoods is
    ``c`` in every cell (as for a log-likelihood that is summed: ``second(lp, c)``), else None."""
    from pytensor.scalar.basic import Second
    from pytensor.tensor.basic import Alloc
    from pytensor.tensor.elemwise import Elemwise

    node = g.owner
    if node is None:
        return None
    if isinstance(node.op, Elemwise) and isinstance(node.op.scalar_op, Second):
        c = node.inputs[1]
        if all(c.type.broadcastable):
            return c.reshape(())
    if isinstance(node.op, Alloc) and node.inputs[0].ndim == 0:
        return node.inputs[0]
    return None


@op_methods
class CellsLogp(Op):
    """Each cell's log-likelihood of one item family (see the module docstring).

    Inputs: ``eta`` (flattened scores), ``signed`` (signed loadings), ``p1``, ``p2``,
    ``p3`` (float vectors), ``e``, ``item``, ``j``, ``pos`` (integer vectors, one entry
    per cell), ``yf`` (float vector: the answers).  Outputs: the cells' log-likelihood,
    then the gradient of their total with respect to each float input, computed in the
    same pass.  The gradient of a summed log-likelihood (every cell's weight the same, as
    in the model's log-density) is that total's, scaled; any other weighting is
    computed by :class:`CellsGrad`."""

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
        outputs = [pt.vector(dtype="float64")] + [v.type() for v in floats]
        return Apply(self, [*floats, *ints, yf], outputs)

    def perform(self, node, inputs, output_storage):
        for store, value in zip(output_storage, cells_eval(self.family, *inputs)):
            store[0] = value

    def infer_shape(self, node, shapes):
        return [shapes[5], *shapes[:5]]

    def connection_pattern(self, node):
        return [[True] + [False] * 5] * 5 + [[False] * 6] * 5

    def pullback(self, inputs, outputs, output_grads):
        g = output_grads[0]
        c = _uniform(g)
        if c is not None:
            grads = [c * o for o in outputs[1:]]
        else:
            grads = list(CellsGrad(self.family)(g, *inputs))
        return grads + [disconnected_type() for _ in inputs[5:]]


@op_methods
class CellsGrad(Op):
    """The gradient of ``sum(g * lp)`` with respect to (eta, signed, p1, p2, p3) for any
    weights ``g`` (a second pass of the kernel)."""

    __props__ = ("family",)

    def __init__(self, family: str):
        self.family = family

    def make_node(self, g, eta, signed, p1, p2, p3, e, item, j, pos, yf):
        floats = [pt.as_tensor(v).astype("float64") for v in (eta, signed, p1, p2, p3)]
        ints = [pt.as_tensor(v).astype("int64") for v in (e, item, j, pos)]
        g, yf = (pt.as_tensor(v).astype("float64") for v in (g, yf))
        return Apply(self, [g, *floats, *ints, yf], [v.type() for v in floats])

    def perform(self, node, inputs, output_storage):
        g, *rest = inputs
        for store, value in zip(output_storage, cells_eval(self.family, *rest, w=g)[1:]):
            store[0] = value

    def infer_shape(self, node, shapes):
        return list(shapes[1:6])


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
        lp = np.empty(e.size)
        g_eta, g_sig = np.zeros(eta.size), np.zeros(signed.size)
        g1, g2, g3 = np.zeros(p1.size), np.zeros(p2.size), np.zeros(p3.size)
        fill(eta, signed, p1, p2, p3, e, item, j, pos, yf, None, lp, g_eta, g_sig, g1, g2, g3)
        return lp, g_eta, g_sig, g1, g2, g3

    return cells_logp_numba, _VERSION


@register_funcify_default_op_cache_key(CellsGrad)
def numba_funcify_CellsGrad(op, node, **kwargs):
    fill = _FILL[op.family]

    @numba_basic.numba_njit
    def cells_grad_numba(g, eta, signed, p1, p2, p3, e, item, j, pos, yf):
        lp = np.empty(e.size)
        g_eta, g_sig = np.zeros(eta.size), np.zeros(signed.size)
        g1, g2, g3 = np.zeros(p1.size), np.zeros(p2.size), np.zeros(p3.size)
        fill(eta, signed, p1, p2, p3, e, item, j, pos, yf, g, lp, g_eta, g_sig, g1, g2, g3)
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


@op_methods
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

    def infer_shape(self, node, shapes):
        return [shapes[0]]

    def pullback(self, inputs, outputs, output_grads):
        return [OrderedRowsGrad()(inputs[0], output_grads[0])]


@op_methods
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

    def infer_shape(self, node, shapes):
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
