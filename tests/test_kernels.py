"""The fused likelihood kernels (smeintl.families.kernels) against PyMC's own distributions:
value and gradient of every item family, the far tails, and the Op in compiled graphs."""

import math

import numpy as np
import pytest
import scipy.special

pm = pytest.importorskip("pymc")
pt = pytest.importorskip("pytensor.tensor")

from smeintl.families import kernels as _kernels  # noqa: E402
from smeintl.families.kernels import OUTER_CUT, cells_logp  # noqa: E402

F, C, I, N = 30, 2, 4, 300


def _cells(rng, n=N):
    e = rng.integers(0, F * C, n)
    item = rng.integers(0, I, n)
    return e, item, item.copy()  # every item its own family-local index


def _pad(cut):
    outer = np.full((cut.shape[0], 1), OUTER_CUT)
    return np.concatenate([-outer, cut, outer], axis=1).ravel()


def _reference(rng, family):
    """Random inputs, the kernel's inputs, and PyMC's log-density of the same cells as a
    function of the symbolic parameters (eta, signed, p1, cutpoints or p2, p3)."""
    e, item, j = _cells(rng)
    eta = rng.normal(0, 1.5, F * C)
    signed = rng.uniform(0.3, 2.0, I) * rng.choice([-1, 1], I)
    p1 = rng.normal(0, 0.5, I)
    sym = {k: pt.vector(k) for k in ("eta", "signed", "p1", "p2", "p3")}
    lin = sym["eta"][e] * sym["signed"][item] + sym["p1"][j]
    pos = np.zeros(N, dtype=int)
    yf = np.zeros(N)
    p3 = np.zeros(1)
    if family in ("ordinal", "percent"):
        K = 5 if family == "ordinal" else 3
        cut = np.sort(rng.normal(0, 1.5, (I, K - 1)), axis=1)
        y = rng.integers(0, K, N)
        pos = j * (K + 1) + y
        p2 = cut.ravel()
        cmat = sym["p2"].reshape((I, K - 1))
        lp = pm.logp(pm.OrderedLogistic.dist(eta=lin, cutpoints=cmat[j]), y)
        if family == "percent":
            p3 = rng.uniform(2, 30, I)
            inside = y == 1
            yf = np.where(inside, rng.uniform(0.01, 0.99, N), 0.5)
            mu = pm.math.sigmoid(lin)
            beta = pm.logp(pm.Beta.dist(mu=mu, nu=sym["p3"][j]), yf)
            lp = lp + pt.switch(inside, beta, 0.0)
        kernel_p2 = _pad(cut)
    elif family == "count":
        p2 = rng.uniform(0.05, 2.0, I)
        yf = rng.poisson(3.0, N).astype(float)
        lp = pm.logp(pm.NegativeBinomial.dist(mu=pt.exp(lin), alpha=1.0 / sym["p2"][j]), yf)
        kernel_p2 = p2
    elif family == "binary":
        p2 = np.zeros(1)
        yf = rng.integers(0, 2, N).astype(float)
        lp = pm.logp(pm.Bernoulli.dist(logit_p=lin), yf)
        kernel_p2 = p2
    else:
        p2 = rng.uniform(0.3, 2.0, I)
        yf = rng.normal(0, 1.5, N)
        lp = pm.logp(pm.Normal.dist(mu=lin, sigma=sym["p2"][j]), yf)
        kernel_p2 = p2
    values = {"eta": eta, "signed": signed, "p1": p1, "p2": p2, "p3": p3}
    kernel_in = (eta, signed, p1, kernel_p2, p3, e, item, j, pos, yf)
    return values, sym, pt.sum(lp), kernel_in


@pytest.mark.parametrize("family", _kernels.FAMILIES)
def test_kernel_value_and_gradient_match_pymc(family):
    rng = np.random.default_rng(list(_kernels.FAMILIES).index(family))
    values, sym, lp, kernel_in = _reference(rng, family)
    total, *grads = _kernels.KERNELS[family](*kernel_in)
    from pytensor.graph.traversal import graph_inputs

    used = [k for k in sym if k in {v.name for v in graph_inputs([lp]) if v.name}]
    ref = pt.grad(lp, [sym[k] for k in used])
    fn = __import__("pytensor").function([sym[k] for k in used], [lp, *ref], on_unused_input="ignore")
    want = fn(*[values[k] for k in used])
    np.testing.assert_allclose(total[0], want[0], rtol=1e-12)
    by_name = dict(zip(("eta", "signed", "p1", "p2", "p3"), grads))
    if family in ("ordinal", "percent"):  # the kernel's p2 is padded: keep the inner cutpoints
        K1 = values["p2"].size // I
        by_name["p2"] = by_name["p2"].reshape(I, K1 + 2)[:, 1:-1].ravel()
    for k, g in zip(used, want[1:]):
        np.testing.assert_allclose(by_name[k], g, rtol=1e-8, atol=1e-8, err_msg=f"{family}: d/d{k}")


def test_ordinal_kernel_exact_in_the_far_tails():
    """PyMC's probabilities underflow to 0 far from the cutpoints; the kernel stays exact,
    log P(y = K-1) = log sigmoid(lin - c_K-1) and log P(y = 0) = log sigmoid(c_1 - lin)."""
    cut = np.array([[-1.0, 0.5, 2.0]])
    lin = np.array([-40.0, 40.0, 300.0])
    y = np.array([3, 0, 3])
    out = _kernels.KERNELS["ordinal"](lin, np.ones(1), np.zeros(1), _pad(cut), np.zeros(1), np.arange(3),
                           np.zeros(3, dtype=int), np.zeros(3, dtype=int), y, np.zeros(3))
    want = -np.logaddexp(0.0, 2.0 + 40.0) - np.logaddexp(0.0, 40.0 + 1.0) - np.logaddexp(0.0, 2.0 - 300.0)
    assert np.isfinite(out[0][0])
    np.testing.assert_allclose(out[0][0], want, rtol=1e-14)
    # d/dlin: sigmoid(c - lin) for the top category, -sigmoid(lin - c_1) for the bottom one
    np.testing.assert_allclose(out[1], [scipy.special.expit(2.0 + 40.0), -scipy.special.expit(40.0 + 1.0),
                                        scipy.special.expit(2.0 - 300.0)], rtol=1e-12, atol=1e-15)


def test_ordinal_kernel_at_a_cutpoint_and_with_close_cutpoints():
    """Right where the linear predictor equals a cutpoint (a kink of |a| in the formula),
    and the documented absolute error of about 1e-16 / gap when two cutpoints nearly coincide."""
    gap = np.array([1.0, 1.0, 1e-6, 1e-8])
    cut = np.stack([np.zeros(4), gap], axis=1)  # two cutpoints per item: 0 and the gap
    lin = np.array([0.0, 0.0, 0.5, -0.3])
    y = np.array([1, 0, 1, 1])  # middle category: (0, gap); first: below 0
    j = np.arange(4)

    def exact(x, lo, hi):
        return math.log(scipy.special.expit(x - lo) - scipy.special.expit(x - hi))

    bounds = [(0.0, 1.0), (-OUTER_CUT, 0.0), (0.0, 1e-6), (0.0, 1e-8)]
    for k in range(4):
        out = _kernels.KERNELS["ordinal"](lin[k:k + 1], np.ones(1), np.zeros(4), _pad(cut), np.zeros(1), np.zeros(1, dtype=int),
                               np.zeros(1, dtype=int), j[k:k + 1], j[k:k + 1] * 4 + y[k:k + 1], np.zeros(1))
        want = exact(lin[k], *bounds[k])
        assert abs(out[0][0] - want) <= 1e-12 + 2e-16 / gap[k], (k, out[0][0], want)
        if k == 1:  # log P(y = 0) = log sigmoid(-lin): derivative -1/2 at lin = 0
            assert out[1][0] == pytest.approx(-0.5, abs=1e-12)
        if k == 0:
            h = 1e-6
            assert out[1][0] == pytest.approx((exact(h, 0, 1) - exact(-h, 0, 1)) / (2 * h), abs=1e-6)


def test_op_in_compiled_graphs_and_its_gradient():
    """The Op gives the kernel's value in PyTensor's default and numba backends, and its
    gradient (scaled by the output's gradient) passes PyTensor's finite-difference check."""
    import pytensor
    from pytensor.gradient import verify_grad

    rng = np.random.default_rng(7)
    values, sym, lp, kin = _reference(rng, "percent")
    e, item, j, pos, yf = kin[5:]
    x = [pt.vector(k) for k in ("eta", "signed", "p1", "p2", "p3")]
    out = 2.0 * cells_logp("percent", *x, e, item, j, pos, yf)
    want = 2.0 * _kernels.KERNELS["percent"](*kin)[0][0]
    for mode in (None, "NUMBA"):
        f = pytensor.function(x, out, mode=mode)
        np.testing.assert_allclose(f(*kin[:5]), want, rtol=1e-13)
        g = pytensor.function(x, pytensor.grad(out, x[0]), mode=mode)
        np.testing.assert_allclose(g(*kin[:5]), 2.0 * _kernels.KERNELS["percent"](*kin)[1], rtol=1e-13)
    verify_grad(lambda *v: cells_logp("percent", *v, e, item, j, pos, yf), list(kin[:5]), rng=rng,
                abs_tol=1e-4, rel_tol=1e-4)
    with pytest.raises(ValueError, match="unknown item family 'ordinl'; allowed: ordinal"):
        _kernels.CellsLogp("ordinl")


def test_ordered_transform_matches_pymc():
    """The cutpoints' ordered transform: the same values, gradient and log-Jacobian as PyMC's
    ``ordered``, in both backends, and the forward transform inverts it."""
    import pytensor
    from pymc.distributions.transforms import ordered

    from smeintl.families.kernels import ordered_transform

    rng = np.random.default_rng(11)
    x = rng.normal(0, 1.2, (4, 3))
    g = rng.normal(size=(4, 3))
    v = pt.matrix("v")
    mine, ref = ordered_transform(), ordered
    for mode in (None, "NUMBA"):
        f = pytensor.function([v], [mine.backward(v), pytensor.grad(pt.sum(g * mine.backward(v)), v)], mode=mode)
        r = pytensor.function([v], [ref.backward(v), pytensor.grad(pt.sum(g * ref.backward(v)), v)], mode=mode)
        for got, want in zip(f(x), r(x)):
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    y = mine.backward(v).eval({v: x})
    assert (np.diff(y, axis=1) > 0).all()
    np.testing.assert_allclose(mine.forward(pt.as_tensor(y)).eval(), x, rtol=1e-12)
    np.testing.assert_allclose(mine.log_jac_det(v).eval({v: x}), ref.log_jac_det(v).eval({v: x}))


@pytest.mark.parametrize("family", _kernels.FAMILIES)
def test_elementwise_log_likelihood_and_weighted_gradient(family):
    """Each cell's value as PyMC's distribution gives it, and the gradient of a weighted sum
    of the cells (not a plain total, so CellsGrad computes it) in both backends."""
    import pytensor

    from smeintl.families.kernels import cells_logp_elementwise

    rng = np.random.default_rng(20 + list(_kernels.FAMILIES).index(family))
    values, sym, lp_total, kin = _reference(rng, family)
    e, item, j, pos, yf = kin[5:]
    x = [pt.vector(k) for k in ("eta", "signed", "p1", "p2", "p3")]
    cells = cells_logp_elementwise(family, *x, e, item, j, pos, yf)
    w = rng.uniform(0.2, 3.0, N)
    weighted = pt.sum(pt.as_tensor(w) * cells)
    lp, *unit = _kernels.KERNELS[family](*kin)
    for mode in (None, "NUMBA"):
        f = pytensor.function(x, [cells, *pytensor.grad(weighted, x)], mode=mode, on_unused_input="ignore")
        got, *grads = f(*kin[:5])
        np.testing.assert_allclose(got.sum(), lp[0], rtol=1e-12)
        assert got.shape == (N,)
        ops = {type(n.op).__name__ for n in f.maker.fgraph.toposort()}
        assert "CellsGrad" in ops
        # finite differences of the weighted sum in the scores
        h = 1e-6
        k = int(e[0])
        up, dn = (np.array(kin[0]) for _ in range(2))
        up[k] += h
        dn[k] -= h
        fw = pytensor.function(x, weighted, mode=mode, on_unused_input="ignore")
        fd = (fw(up, *kin[1:5]) - fw(dn, *kin[1:5])) / (2 * h)
        assert grads[0][k] == pytest.approx(fd, rel=1e-5, abs=1e-6)
