"""The quadrature parameterization: one construct's latent scores integrated out on a grid
(``smeintl.measurement.quadrature``).

The model's log-density is checked against the same quantity in numpy and against SciPy's
adaptive integration; the scores' draws against an exact distribution; a real fit recovers
the parameters it was simulated from (a multi-seed recovery study is in
``test_recovery.py``, slow)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

from smeintl import load_spec
from smeintl.measurement import Diagnostics, MeasurementModel, cell_loglik, diagnose, fit_loo
from smeintl.measurement.quadrature import (
    POINTS,
    RowTable,
    answer_rows,
    draw_on_grid,
    grid,
    quadrature_problem,
)
from smeintl.simulate import simulate_survey, typical_params

SPECS = Path(__file__).resolve().parent / "data" / "specs"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def irt_spec():
    return load_spec(SPECS / "irt_grouped.toml")


def _simulated(spec, n, seed, groups=3, loading=1.5, missing=0.03):
    truth = typical_params(spec, n_groups=groups, random_seed=seed, loading=loading)
    return truth, simulate_survey(spec, n, truth, n_groups=groups, missing=missing, random_seed=seed)


def test_answer_rows_groups_and_missing():
    X = np.array([[1, 0, np.nan], [1, 0, np.nan], [1, 0, 1], [0, 0, 1], [1, 0, np.nan], [1, 0, 1]])
    g = np.array([0, 0, 0, 0, 1, 0])
    rows, inverse, counts = answer_rows(X, g)
    # rows in the order the firms first give them; firm 4 has firm 0's answers in another group
    assert rows.tolist() == [0, 2, 3, 4]
    assert inverse.tolist() == [0, 0, 1, 2, 3, 1]
    assert counts.tolist() == [2, 2, 1, 1]
    np.testing.assert_array_equal(X[rows][inverse], X)
    # without groups firm 4 joins firm 0's row
    rows, inverse, counts = answer_rows(X, None)
    assert rows.tolist() == [0, 2, 3] and counts.tolist() == [3, 2, 1]


def test_grid_weights_are_the_normal_density():
    x, lw = grid()
    assert x.size == POINTS and np.isclose(np.exp(lw).sum(), 1.0)
    # the trapezoidal rule on the normal density: the mean exactly, the variance up to the
    # tails beyond 6 sd left out (4e-8)
    assert abs(np.sum(np.exp(lw) * x)) < 1e-14
    assert abs(np.sum(np.exp(lw) * x**2) - 1.0) < 1e-7


def test_draw_on_grid_is_exact_for_a_piecewise_exponential_density():
    # log density linear between the points: a Laplace density (kink at the point 0),
    # truncated to the grid; drawing is exact, so a KS test against its CDF passes
    x = np.linspace(-3.0, 3.0, 31)
    lp = -2.0 * np.abs(x - 0.4)
    rng = np.random.default_rng(7)
    n = 100_000
    u = rng.random((n, 2))
    draws = draw_on_grid(lp[None, :], x, u, np.zeros(n, dtype=np.int64))
    lo, hi, b = -3.0, 3.0, 0.5
    base = stats.laplace(loc=0.4, scale=b)
    trunc = lambda t: (base.cdf(t) - base.cdf(lo)) / (base.cdf(hi) - base.cdf(lo))  # noqa: E731
    assert stats.kstest(draws, trunc).pvalue > 0.01
    # and a second row picked by `which`: the draws follow their own row
    lp2 = np.stack([lp, -0.5 * x**2])
    d2 = draw_on_grid(lp2, x, u[:20000], np.ones(20000, dtype=np.int64))
    assert abs(d2.mean()) < 0.03 and abs(d2.std() - 1.0) < 0.03


def _model_point(model, survey, seed):
    """A random point of the model, the potential's value there and the parameters as
    ``posterior_params`` gives them (one draw)."""
    m = model.build(survey)
    rng = np.random.default_rng(seed)
    ip = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in m.initial_point().items()}
    names = ["loading", "binary_intercept", "cutpoints_4", "group_mean"]
    outs = m.replace_rvs_by_values([m["quadrature_loglik"], *[m[n] for n in names]])
    fn = m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore")
    pot, *vals = fn(ip)
    return float(pot), {n: np.asarray(v)[None] for n, v in zip(names, vals)}


def test_quadrature_likelihood_matches_numpy_and_adaptive_integration(irt_spec):
    _, sim = _simulated(irt_spec, 300, seed=5)
    survey = sim.survey
    model = MeasurementModel(irt_spec, parameterization="quadrature")
    pot, P = _model_point(model, survey, seed=3)
    lay = model.layout
    X = survey.items[list(lay.names)].to_numpy(dtype=float)
    codes = np.asarray(survey.groups)
    rows, inverse, counts = answer_rows(X, codes)
    x, lw = grid()
    table = RowTable(X[rows], codes[rows])
    ll = table.loglik(P, 0, P["group_mean"][0][:, 0], lay, None, x)  # (U, Q)
    per_row = logsumexp(ll + lw[None, :], axis=1)
    # the model's potential is the same sum, row by row times the firms per row
    assert pot == pytest.approx(float(np.sum(counts * per_row)), rel=1e-10)
    # each row against SciPy's adaptive integral over the score
    for u in (0, 1, int(np.argmax(np.isnan(X[rows]).any(1)))):
        mu = P["group_mean"][0][codes[rows[u]], 0]

        def integrand(t, u=u, mu=mu):
            lik = cell_loglik(P, 0, np.array([[[t]]]), X[rows[u]][None, :], lay, None)[0, 0]
            return np.exp(lik) * stats.norm.pdf(t, mu, 1.0)

        exact, _ = integrate.quad(integrand, mu - 10, mu + 10, epsabs=1e-13, epsrel=1e-11, limit=200)
        assert per_row[u] == pytest.approx(np.log(exact), abs=1e-8)


def test_auto_picks_quadrature_where_answers_repeat():
    binary = load_spec(SPECS / "binary_one.toml")
    truth = typical_params(binary, n_groups=1, random_seed=1)
    many = simulate_survey(binary, 2000, truth, n_groups=1, random_seed=1).survey
    few = simulate_survey(binary, 41, truth, n_groups=1, random_seed=1).survey
    model = MeasurementModel(binary)
    assert model.parameterization == "latent"  # resolved per survey
    assert model.for_survey(many).parameterization == "quadrature"
    assert model.for_survey(few).parameterization == "latent"
    assert MeasurementModel(binary, parameterization="latent").for_survey(many).parameterization == "latent"
    # two constructs: never picked, and a clear error when asked for
    hitachi = load_spec(ROOT / "src" / "smeintl" / "bundled" / "hitachi.toml")
    with pytest.raises(ValueError, match="one construct's scores; this spec has 2 constructs"):
        MeasurementModel(hitachi, parameterization="quadrature")


def test_quadrature_refuses_group_specific_item_parameters(irt_spec):
    with pytest.raises(ValueError, match="needs item parameters equal across groups"):
        MeasurementModel(irt_spec, parameterization="quadrature", invariance="metric")


def test_grid_check_flags_a_coarse_grid():
    check = {"points": 61, "check_points": 161, "tolerance": 0.01, "max_abs_error": 0.2}
    assert "moves by 0.2 from 61 to 161 grid points" in quadrature_problem(check)
    assert quadrature_problem(check | {"max_abs_error": 1e-9}) is None


@pytest.fixture(scope="module")
def irt_fit(irt_spec):
    truth, sim = _simulated(irt_spec, 1500, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = MeasurementModel(irt_spec, parameterization="quadrature").fit(
            sim.survey, draws=300, tune=300, chains=2, random_seed=11, progressbar=False, sampler="nutpie")
    return truth, sim, fit


def test_quadrature_fit_recovers_its_parameters(irt_fit):
    truth, sim, fit = irt_fit
    assert fit.attrs["parameterization"] == "quadrature"
    check = json.loads(fit.attrs["quadrature"])
    assert check["max_abs_error"] < 1e-6 and check["rows"] < 1500
    d = diagnose(fit)
    assert d.max_rhat < 1.02 and d.divergences == 0, d.text()
    # each parameter's posterior z-score of the truth: 15 of them, so some beyond 1.96 by
    # chance (0.75 expected; 4 or more with probability 0.005), none beyond 4
    post = fit.posterior
    z = []
    for name in ("loading", "binary_intercept", "cutpoints_4", "group_mean"):
        draws = post[name].values.reshape(post.sizes["chain"] * post.sizes["draw"], -1)
        z.append((draws.mean(0) - np.asarray(truth[name]).reshape(-1)) / draws.std(0))
    z = np.concatenate(z)
    assert z.size == 15
    assert np.max(np.abs(z)) < 4 and np.sum(np.abs(z) > 1.96) <= 3, np.round(z, 2)
    # the scores drawn after the fit follow the true ones (five items: about 0.8 at best)
    eta = post["eta"].mean(("chain", "draw")).values[:, 0]
    assert np.corrcoef(eta, sim.eta[:, 0])[0, 1] > 0.7
    # their posterior sd is the information of five items, not the grid's spacing
    sd = post["eta"].std(("chain", "draw")).values[:, 0]
    assert 0.4 < np.median(sd) < 0.9


def test_diagnostics_fail_a_fit_whose_grid_check_is_over_its_tolerance(irt_fit):
    _, _, fit = irt_fit
    d = diagnose(fit)
    assert not any(p.startswith("quadrature:") for p in d.problems)
    # the scores were drawn after sampling, given each draw: said, not diagnosed again
    assert d.scores is None and d.scores_drawn == "quadrature"
    assert json.loads(fit.attrs["diagnostics"])["scores_drawn"] == "quadrature"  # the fit's own verdict
    assert "drawn given each draw (quadrature)" in d.text()
    assert Diagnostics.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    coarse = fit.copy()
    coarse.attrs["quadrature"] = json.dumps(json.loads(fit.attrs["quadrature"]) | {"max_abs_error": 0.2})
    d = diagnose(coarse)
    assert d.failed and any("moves by 0.2 from 61 to 161 grid points" in p for p in d.problems)


def test_quadrature_fit_stores_what_every_fit_does(irt_fit, irt_spec):
    _, sim, fit = irt_fit
    F = sim.survey.n_firms
    ll = fit.log_likelihood["responses"]
    assert ll.shape == (2, 300, F) and np.isfinite(ll.values).all()
    assert set(irt_spec.item_names) <= set(fit.posterior_predictive.data_vars)
    loo = fit_loo(fit)
    assert loo.method.startswith("quadrature as fitted") and np.isfinite(loo.elpd)
    # firms with the same answers in the same group share their log-likelihood, not their scores
    X = sim.survey.items[list(irt_spec.item_names)].to_numpy(dtype=float)
    rows, inverse, _ = answer_rows(X, np.asarray(sim.survey.groups))
    twins = np.nonzero(inverse == inverse[rows[0]])[0][:2]
    np.testing.assert_array_equal(ll.values[..., twins[0]], ll.values[..., twins[1]])
    eta = fit.posterior["eta"].values[..., 0]
    assert not np.array_equal(eta[..., twins[0]], eta[..., twins[1]])


def test_quadrature_fit_repeats_to_the_bit(irt_fit, irt_spec):
    _, sim, fit = irt_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = MeasurementModel(irt_spec, parameterization="quadrature").fit(
            sim.survey, draws=300, tune=300, chains=2, random_seed=11, progressbar=False, sampler="nutpie")
    np.testing.assert_array_equal(again.posterior["loading"].values, fit.posterior["loading"].values)
    np.testing.assert_array_equal(again.posterior["eta"].values, fit.posterior["eta"].values)


def test_methods_appendix_states_how_the_scores_were_integrated(irt_fit):
    from types import SimpleNamespace

    from smeintl.report.appendix import _integrated_text

    _, _, fit = irt_fit
    text = _integrated_text(fit)
    check = json.loads(fit.attrs["quadrature"])
    assert "parameterization quadrature" in text and f"{check['max_abs_error']:.2g}" in text
    assert "61 equally spaced points" in text
    assert "multivariate normal" in _integrated_text(SimpleNamespace(attrs={"parameterization": "marginal"}))
    assert _integrated_text(SimpleNamespace(attrs={"parameterization": "latent"})) is None


@pytest.mark.slow
def test_quadrature_fit_with_pymcs_own_sampler_agrees_with_nutpie(irt_fit, irt_spec):
    """The quadrature's potential and the draws after sampling do not depend on nutpie:
    PyMC's NUTS on the same survey gives the same posterior (about 70 s: its own compile)."""
    _, sim, fit = irt_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = MeasurementModel(irt_spec, parameterization="quadrature").fit(
            sim.survey, draws=300, tune=300, chains=2, random_seed=11, progressbar=False, sampler="pymc")
    assert other.attrs["parameterization"] == "quadrature" and other.attrs["sampler"] == "pymc"
    assert json.loads(other.attrs["quadrature"])["max_abs_error"] < 1e-6
    assert diagnose(other).max_rhat < 1.02
    for name in ("loading", "binary_intercept", "cutpoints_4", "group_mean"):
        a, b = fit.posterior[name], other.posterior[name]
        # two posteriors of 600 draws each: their means differ by their Monte Carlo errors
        se = np.hypot(a.std(("chain", "draw")), b.std(("chain", "draw"))) / np.sqrt(150)
        diff = np.abs(a.mean(("chain", "draw")) - b.mean(("chain", "draw"))) / se
        assert float(diff.max()) < 4, (name, np.round(diff.values, 2))
    assert other.posterior["eta"].shape == fit.posterior["eta"].shape
