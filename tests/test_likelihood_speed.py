"""Exact checks of the hand-vectorized likelihood pieces that exist for speed."""

import math

import numpy as np
import pytest
import scipy.special


def test_ordinal_observed_matches_pymc_ordered_logistic():
    import pymc as pm
    import pytensor.tensor as pt

    from smeintl.measurement import _ordinal_observed

    rng = np.random.default_rng(3)
    n_items, K, N = 3, 5, 400
    cut = np.sort(rng.normal(0, 2, size=(n_items, K - 1)), axis=1)
    j = rng.integers(0, n_items, N)
    lin = rng.normal(0, 3, N)
    lin[:5] = [40.0, -40.0, 0.0, 8.0, -8.0]  # far tails stay finite and exact
    y = rng.integers(0, K, N)
    y[:5] = [0, K - 1, 2, 0, K - 1]
    with pm.Model() as m:
        ref = pm.OrderedLogistic("ref", eta=lin, cutpoints=cut[j], observed=y, compute_p=False)
        new = _ordinal_observed(pm, pt, "new", pt.as_tensor(lin), pt.as_tensor(cut), j, y, n_items, K)
    got = pm.logp(new, y).eval()
    want = pm.logp(ref, y).eval()
    assert np.isfinite(got).all()
    keep = np.isfinite(want)  # PyMC's probabilities underflow to 0 in the far tail ...
    assert not keep[1]
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-9, atol=1e-12)
    # ... where the log-space form stays exact: log sigmoid(lin - c_{K-1})
    np.testing.assert_allclose(got[1], -np.logaddexp(0.0, cut[j[1], -1] - lin[1]), rtol=1e-12)
    # the gradient with respect to the cutpoints agrees as well (away from PyMC's underflow)
    c = pt.matrix("c")
    j, y, lin = j[5:], y[5:], lin[5:]
    with pm.Model():
        a = _ordinal_observed(pm, pt, "a", pt.as_tensor(lin), c, j, y, n_items, K)
        b = pm.OrderedLogistic("b", eta=lin, cutpoints=c[j], observed=y, compute_p=False)
    ga = pt.grad(pm.logp(a, y).sum(), c).eval({c: cut})
    gb = pt.grad(pm.logp(b, y).sum(), c).eval({c: cut})
    assert np.isfinite(gb).all()
    np.testing.assert_allclose(ga, gb, rtol=1e-8, atol=1e-10)


def test_ordinal_observed_derivative_at_zero_and_close_cutpoints():
    """The derivative is right where the linear predictor equals a cutpoint (a kink of
    |a| in the formula), and the log-probability has the documented absolute error of
    about 1e-16 / gap when two cutpoints nearly coincide."""
    import pymc as pm
    import pytensor.tensor as pt

    from smeintl.measurement import _ordinal_observed

    lin = pt.vector("lin")
    gap = np.array([1.0, 1.0, 1e-6, 1e-8])
    cut = np.stack([np.zeros(4), gap], axis=1)  # two cutpoints per item: 0 and the gap
    j, y = np.arange(4), np.array([1, 0, 1, 1])  # middle category: (0, gap); first: below 0
    with pm.Model():
        d = _ordinal_observed(pm, pt, "d", lin, pt.as_tensor(cut), j, y, 4, 3)
    lp = pm.logp(d, y)
    at = {lin: np.array([0.0, 0.0, 0.5, -0.3])}
    got = lp.eval(at)
    grad = pt.grad(lp.sum(), lin).eval(at)

    def exact(x, lo, hi):
        return math.log(scipy.special.expit(x - lo) - scipy.special.expit(x - hi))

    def dexact(x, lo, hi, h=1e-6):
        return (exact(x + h, lo, hi) - exact(x - h, lo, hi)) / (2 * h)

    bounds = [(0.0, 1.0), (-1e4, 0.0), (0.0, 1e-6), (0.0, 1e-8)]
    want = [exact(x, lo, hi) for x, (lo, hi) in zip(at[lin], bounds)]
    for k in range(4):
        assert abs(got[k] - want[k]) <= 1e-12 + 2e-16 / gap[k], (k, got[k], want[k])
    # at lin = 0 = c_0: d/dlin log P(y = 1) and log P(y = 0) = log sigmoid(-lin), i.e. -1/2
    assert grad[1] == pytest.approx(-0.5, abs=1e-12)
    assert grad[0] == pytest.approx(dexact(0.0, 0.0, 1.0), abs=1e-6)


def test_cacheable_digamma_matches_scipy():
    pytest.importorskip("numba")
    from smeintl._numba import _psi_positive, register

    assert register()
    x = np.concatenate([np.geomspace(1e-8, 1e8, 400), [0.5, 1.0, 2.0, 9.999, 10.0, 10.001]])
    got = np.array([_psi_positive(float(v)) for v in x])
    np.testing.assert_allclose(got, scipy.special.digamma(x), rtol=2e-14, atol=1e-13)


def test_registered_digamma_in_a_numba_compiled_graph():
    pytest.importorskip("numba")
    import pytensor
    import pytensor.tensor as pt

    from smeintl._numba import register

    register()
    x = pt.vector("x")
    f = pytensor.function([x], pt.psi(x), mode="NUMBA")
    v = np.array([-2.5, -0.3, 0.0, -1.0, 1e-3, 0.7, 3.0, 55.0, 1e6])
    got = f(v)
    want = scipy.special.digamma(v)
    assert got[2] == -math.inf and math.isnan(got[3])
    keep = np.isfinite(want)
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-13, atol=1e-13)


def test_centered_scores_density_matches_mvnormal():
    import pymc as pm
    import pytensor.tensor as pt
    import scipy.stats

    from smeintl.measurement import _centered_scores

    rng = np.random.default_rng(5)
    F = 30
    R = np.array([[1.0, 0.4, -0.2], [0.4, 1.0, 0.1], [-0.2, 0.1, 1.0]])
    L = np.linalg.cholesky(R)
    mu = rng.normal(size=(F, 3))
    x = rng.normal(size=(F, 3))
    names = ["a", "b", "c"]
    with pm.Model(coords={"firm": range(F), "construct": names}) as m:
        _centered_scores(pm, pt, pt.as_tensor(mu), pt.as_tensor(L), names)
    lp = m.compile_logp(vars=[m[f"eta_{n}"] for n in names], sum=True)
    got = lp({f"eta_{n}": x[:, c] for c, n in enumerate(names)})
    want = sum(scipy.stats.multivariate_normal(mu[f], R).logpdf(x[f]) for f in range(F))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    draws = pm.draw(m["eta"], draws=4000, random_seed=1)  # forward draws have correlation R
    dev = (draws - mu).reshape(-1, 3)
    np.testing.assert_allclose(np.corrcoef(dev.T), R, atol=0.02)
