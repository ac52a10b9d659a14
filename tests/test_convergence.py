"""The batched R-hat and ESS of many scalars (``smeintl.measurement.convergence``) against
ArviZ's own, scalar by scalar, on whichever stack runs the tests."""

import warnings

import numpy as np
import pytest
import xarray as xr

from smeintl import compat
from smeintl.measurement import convergence as cv
from smeintl.measurement import diagnose


def _ar(rng, chains, draws, n, phi):
    e = rng.normal(size=(chains, draws, n))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def _cases():
    rng = np.random.default_rng(3)
    shifted = rng.normal(size=(2, 100, 40))
    shifted[1] += 0.5
    odd_nan = rng.normal(size=(2, 101, 3))
    odd_nan[:, :, 1] = 2.0  # constant
    odd_nan[0, 5, 2] = np.nan
    return {
        "independent": rng.normal(size=(2, 900, 200)),
        "ar 0.9": _ar(rng, 4, 500, 150, 0.9),  # a long initial positive sequence, monotone steps
        "ar 0.99": _ar(rng, 2, 301, 60, 0.99),  # chains far apart: R-hat well over 1.01
        "antithetic": _ar(rng, 3, 200, 150, -0.7),  # negative lag-one autocorrelation
        "shifted chains": shifted,
        "ties": rng.integers(0, 3, size=(2, 50, 80)).astype(float),
        "five draws": rng.normal(size=(2, 5, 60)),
        "four draws": rng.normal(size=(3, 4, 60)),
        "one chain": _ar(rng, 1, 400, 40, 0.5),
        "odd draws": _ar(rng, 2, 451, 60, 0.3),
        "constant and nan": odd_nan,
    }


CASES = _cases()


@pytest.mark.parametrize("case", list(CASES))
def test_batched_rhat_and_ess_are_arviz_s(case):
    """Each scalar's R-hat, bulk ESS and tail ESS (5% and 95%) equal ArviZ's to 1e-9,
    NaN where ArviZ gives NaN (one chain for R-hat, a non-finite draw)."""
    x = CASES[case]
    ds = xr.Dataset({"v": (("chain", "draw", "s"), x)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = {"rhat": compat.rhat(ds)["v"].values,
               "ess_bulk": compat.ess(ds, method="bulk")["v"].values,
               "ess_tail": compat.ess(ds, method="tail", prob=cv.TAIL_PROB)["v"].values}
    got = cv.convergence(x)
    for k, want in ref.items():
        want = np.asarray(want, dtype=float)
        assert got[k].shape == want.shape
        np.testing.assert_array_equal(np.isnan(got[k]), np.isnan(want), err_msg=f"{case}: {k}")
        np.testing.assert_allclose(got[k], want, rtol=1e-9, equal_nan=True, err_msg=f"{case}: {k}")


def test_chunks_and_batch_shape(monkeypatch):
    """Scalars split over several chunks come back in place, in the batch's own shape."""
    x = CASES["ar 0.9"][:, :, :150].reshape(4, 500, 50, 3)
    whole = cv.convergence(x)
    monkeypatch.setattr(cv, "CHUNK", 7)
    parts = cv.convergence(x)
    for k in whole:
        assert whole[k].shape == (50, 3)
        np.testing.assert_array_equal(parts[k], whole[k])
    with pytest.raises(ValueError, match="expected \\(chain, draw, ...\\) draws"):
        cv.convergence(np.zeros(5))


def test_diagnose_takes_the_scores_from_the_batched_formulas(monkeypatch):
    """``diagnose`` gives the per-firm scores the batched values (the same as ArviZ's) and
    the model parameters ArviZ's; its verdict is the one ArviZ's values give."""
    rng = np.random.default_rng(5)
    eta = _ar(rng, 2, 600, 60, 0.6).reshape(2, 600, 30, 2)
    eta[1, :, 0, 0] += 1.0
    fit = compat.fit_from_dict({"posterior": {"eta": eta, "group_sd": rng.normal(size=(2, 600))},
                                "sample_stats": {"diverging": np.zeros((2, 600), dtype=bool)}},
                               dims={"eta": ["firm", "construct"]})
    seen = []
    real = cv.convergence
    monkeypatch.setattr(cv, "convergence", lambda x, **kw: seen.append(np.shape(x)) or real(x, **kw))
    d = diagnose(fit)
    assert seen == [(2, 600, 30, 2)]  # the scores alone, in one call
    ds = compat.group(fit, "posterior")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = np.asarray(compat.rhat(ds)["eta"].values)
        eb = np.asarray(compat.ess(ds, method="bulk")["eta"].values)
        et = np.asarray(compat.ess(ds, method="tail", prob=cv.TAIL_PROB)["eta"].values)
    assert d.scores["n"] == 60 and d.scores["n_over"] == int((r > 1.01).sum()) >= 1
    assert np.isclose(d.scores["max_rhat"], r.max(), rtol=1e-12)
    assert np.isclose(d.min_ess_bulk, min(eb.min(), float(compat.ess(ds[["group_sd"]])["group_sd"])), rtol=1e-12)
    assert np.isclose(d.min_ess_tail, min(et.min(), float(compat.ess(ds[["group_sd"]], method="tail",
                                                                      prob=cv.TAIL_PROB)["group_sd"])), rtol=1e-12)
