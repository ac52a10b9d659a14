"""The stack-dependent functions of :mod:`smeintl.compat` mean the same on both stacks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from smeintl import compat


def _fit(seed=0, chains=2, draws=500, firms=30, shift=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(chains, draws))
    y = rng.normal(size=(chains, draws))
    mu = rng.normal(size=(chains, draws, 1)) * 0.1 + shift
    obs = rng.normal(size=firms)
    ll = -0.5 * (obs[None, None, :] - mu) ** 2 - 0.5 * np.log(2 * np.pi)
    return compat.fit_from_dict(
        {"posterior": {"x": x, "y": y, "mu": mu[..., 0]},
         "log_likelihood": {"responses": ll},
         "log_prior": {"prior": -0.5 * x ** 2},
         "sample_stats": {"energy": rng.normal(size=(chains, draws)).cumsum(1) * 0.05 + rng.normal(size=(chains, draws))},
         "observed_data": {"obs": obs}},
        dims={"responses": ["firm"], "obs": ["firm"]}, coords={"firm": [f"f{i}" for i in range(firms)]},
        attrs={"note": "synthetic"})


def test_tree_groups_and_attrs():
    fit = _fit()
    assert compat.group_names(fit) == ["posterior", "log_likelihood", "log_prior", "sample_stats", "observed_data"]
    assert fit.attrs["note"] == "synthetic"
    post = compat.group(fit, "posterior")
    assert post["x"].dims == ("chain", "draw") and list(post.chain.values) == [0, 1]
    assert compat.group(fit, "observed_data")["obs"].dims == ("firm",)
    compat.set_group(fit, "posterior", post.assign(z=post["x"] * 2))
    assert "z" in compat.group(fit, "posterior")
    compat.drop_group(fit, "log_prior")
    assert not compat.has_group(fit, "log_prior")
    with pytest.raises(KeyError, match="no 'prior' group"):
        compat.group(fit, "prior")
    with pytest.raises(TypeError, match="expected a fit"):
        compat.as_fit({"posterior": 1})


def test_psis_weights_are_normalized_and_k_tells_the_tail():
    rng = np.random.default_rng(1)
    light = rng.normal(size=4000) * 0.3
    lw, k = compat.psis_log_weights(light)
    assert lw.shape == light.shape and abs(logsumexp(lw)) < 1e-8
    assert k < 0.5
    heavy = np.log(rng.pareto(0.5, size=4000) + 1.0)  # ratios with an infinite mean
    _lw, k_heavy = compat.psis_log_weights(heavy)
    assert k_heavy > 1.0


def test_power_scaling_sensitivity_finds_the_variable_the_prior_acts_on():
    sens = compat.psens(_fit(), component="prior", delta=0.01)
    assert set(sens) == {"x", "y", "mu"}
    assert sens["x"] > 0.05 > sens["y"]


def test_loo_and_compare():
    a, b = _fit(seed=2), _fit(seed=2, shift=1.5)
    la = compat.loo(a, var_name="responses")
    assert np.isfinite([la.elpd, la.se, la.p_loo]).all() and la.pareto_k.shape == (30,)
    table = compat.compare({"a": a, "b": b}, var_name="responses")
    assert list(table.columns) == ["rank", "elpd_diff", "dse", "weight"]
    assert table.index[0] == "a" and table.loc["a", "elpd_diff"] == 0 and table.loc["b", "elpd_diff"] > 0
    assert np.isclose(table["weight"].sum(), 1.0)


def test_rhat_ess_bfmi():
    fit = _fit(draws=1000)
    post = compat.group(fit, "posterior")
    r = compat.rhat(post)
    assert float(r["x"]) < 1.01
    assert float(compat.ess(post, method="bulk")["x"]) > 1000
    assert float(compat.ess(post, method="tail")["y"]) > 500
    assert compat.bfmi(fit).shape == (2,)


def test_to_arviz_is_what_this_stacks_arviz_takes():
    out = compat.to_arviz(_fit())
    if compat.arviz_major() >= 1:
        assert out is not None and "posterior" in out.children
    else:
        import arviz as az

        assert isinstance(out, az.InferenceData) and "posterior" in out.groups()
