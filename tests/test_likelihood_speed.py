"""Exact checks of the hand-vectorized likelihood pieces that exist for speed."""

import math

import numpy as np
import pytest
import scipy.special


def test_cacheable_digamma_matches_scipy():
    pytest.importorskip("numba")
    from smeintl.families.kernels import _psi_positive
    from smeintl._numba import register

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

    from smeintl.measurement.latent import _centered_scores

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
