"""What a fit adds after sampling, computed in batches: the same values as the per-draw loops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smeintl import compat, load_spec
from smeintl.measurement import MeasurementModel, standardization_of
from smeintl.measurement.posterior import add_marginal_loglik
from smeintl.simulate import simulate_survey, typical_params

SPECS = Path(__file__).parent / "data" / "specs"


def _posterior(rng, nc, nd, I, C, G):
    """Random parameter draws of a marginal fit (well-conditioned correlations)."""
    import xarray as xr

    A = rng.normal(0, 0.4, (nc, nd, C, C))
    cov = A @ A.transpose(0, 1, 3, 2) + np.eye(C)
    d = np.sqrt(np.einsum("...ii->...i", cov))
    corr = cov / d[..., :, None] / d[..., None, :]
    ds = xr.Dataset({
        "loading": (("chain", "draw", "item"), rng.lognormal(-0.5, 0.3, (nc, nd, I))),
        "cont_intercept": (("chain", "draw", "item"), rng.normal(0, 0.3, (nc, nd, I))),
        "cont_sigma": (("chain", "draw", "item"), rng.lognormal(-0.5, 0.2, (nc, nd, I))),
        "corr": (("chain", "draw", "c1", "c2"), corr),
        "group_mean": (("chain", "draw", "group", "c1"), rng.normal(0, 0.3, (nc, nd, G, C))),
    }, coords={"chain": np.arange(nc), "draw": np.arange(nd)})
    return compat.new_fit({"posterior": ds})


@pytest.mark.parametrize("group", [True, False])
def test_marginal_loglik_in_batches_equals_scipy_per_draw(group):
    """Each firm's stored marginal log-likelihood is SciPy's multivariate normal density of
    its observed (standardized) items, less the standardization's log sd, at every draw:
    with missing answers (several patterns), groups, and more draws than one batch holds."""
    from scipy.stats import multivariate_normal

    spec = load_spec(SPECS / "continuous_two.toml")
    sim = simulate_survey(spec, 90, typical_params(spec, n_groups=3), n_groups=3, missing=0.2, random_seed=21)
    survey = sim.survey
    mm = MeasurementModel(spec, group=group)
    X = survey.items[list(mm.layout.names)].to_numpy(float)
    std = standardization_of(mm.layout, X)
    I, C = X.shape[1], len(mm.layout.constructs)
    nc, nd = 2, 800  # 1,600 draws: several batches of 4e5 / (90 x I) draws
    idata = _posterior(np.random.default_rng(3), nc, nd, I, C, len(survey.group_names))
    add_marginal_loglik(mm, idata, survey, std)
    got = compat.group(idata, "log_likelihood")["responses"].values.reshape(nc * nd, -1)

    post = compat.group(idata, "posterior")
    P = {k: post[k].values.reshape((nc * nd,) + post[k].shape[2:]) for k in post.data_vars}
    Z = (X - std["mean"]) / std["sd"]
    onehot = np.zeros((I, C))
    onehot[np.arange(I), mm.layout.construct] = 1.0
    groups = np.asarray(survey.groups)
    for s in (0, 1, 799, 1599):
        Lam = onehot * (P["loading"][s] * mm.layout.sign)[:, None]
        cov = Lam @ P["corr"][s] @ Lam.T + np.diag(P["cont_sigma"][s] ** 2)
        for f in range(Z.shape[0]):
            o = ~np.isnan(Z[f])
            if not o.any():
                assert got[s, f] == 0.0
                continue
            mean = P["cont_intercept"][s] + (Lam @ P["group_mean"][s, groups[f]] if group else 0.0)
            want = multivariate_normal(mean[o], cov[np.ix_(o, o)]).logpdf(Z[f, o]) - np.log(std["sd"][o]).sum()
            assert got[s, f] == pytest.approx(want, rel=1e-10, abs=1e-10)
