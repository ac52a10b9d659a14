"""Measurement invariance across groups: the levels of MeasurementModel(invariance=...),
the group deviations' likelihood for every item family, the default level's unchanged
draws, and the recovery of an item whose intercept differs in one group."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from smeintl import compat, load_spec, parse_spec
from smeintl.errors import UserError
from smeintl.measurement import INVARIANCE, MeasurementModel, item_invariance, summarize_fit
from smeintl.simulate import simulate_survey, typical_params

from conftest import BUNDLE_DIR, HITACHI_SEED, QUICK, SPECS


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def _spec(name: str):
    if name == "hitachi":
        return load_spec(BUNDLE_DIR / "hitachi.toml")
    text = (SPECS / f"{name}.toml").read_text()
    # binary_one has no group column: give it one
    return parse_spec(text.replace('group_column = ""', 'group_column = "industry"'), source=f"{name}.toml")


def test_levels_and_their_parameters(hitachi_spec, hitachi_survey):
    from smeintl._compiled import structure_key

    assert INVARIANCE == ("none", "configural", "metric", "scalar", "approximate")
    free = {}
    for level in INVARIANCE:
        model = MeasurementModel(hitachi_spec, invariance=level).build(hitachi_survey)
        free[level] = {v.name for v in model.free_RVs}
        if level in ("none", "scalar"):
            key = structure_key(model)
    assert key == structure_key(MeasurementModel(hitachi_spec).build(hitachi_survey))  # scalar is today's model
    assert free["none"] == free["scalar"] and not {"loading_dev", "intercept_dev"} & free["none"]
    assert free["approximate"] == free["none"] | {"loading_dev", "intercept_dev"}  # group means kept
    # free locations take over the group means
    assert free["configural"] == free["none"] - {"group_sd", "group_z"} | {"loading_dev", "intercept_dev"}
    assert free["metric"] == free["none"] - {"group_sd", "group_z"} | {"intercept_dev"}
    model = MeasurementModel(hitachi_spec, invariance="approximate").build(hitachi_survey)
    G, I = len(hitachi_survey.group_names), len(hitachi_spec.items)
    assert model.named_vars_to_dims["loading_dev"] == ("item", "group")
    assert model.named_vars_to_dims["intercept_dev"] == ("item", "group")
    assert tuple(model["intercept_dev"].shape.eval()) == (I, G)
    with pytest.raises(ValueError, match="invariance must be one of"):
        MeasurementModel(hitachi_spec, invariance="strict")
    with pytest.raises(ValueError, match="needs the group level"):
        MeasurementModel(hitachi_spec, group=False, invariance="approximate")
    cont = load_spec(SPECS / "continuous_two.toml")
    with pytest.raises(ValueError, match="latent parameterization"):
        MeasurementModel(cont, parameterization="marginal", invariance="metric")
    assert MeasurementModel(cont, invariance="approximate").parameterization == "latent"
    assert MeasurementModel(cont, invariance="scalar").parameterization == "marginal"
    one = simulate_survey(hitachi_spec, 12, n_groups=1, random_seed=2).survey
    with pytest.raises(UserError, match="two or more"):
        MeasurementModel(hitachi_spec, invariance="approximate").build(one)
    # the deviations' prior sd is a prior input: another value, the same structure
    wide = parse_spec(hitachi_spec.text + "\n[priors.invariance_sd]\nsigma = 0.3\n", source="wide.toml")
    assert wide.priors["invariance_sd"] == {"sigma": 0.3}
    assert (structure_key(MeasurementModel(wide, invariance="approximate").build(hitachi_survey))
            == structure_key(model))


@pytest.mark.parametrize("spec_name", ["hitachi", "continuous_two", "binary_one"])
@pytest.mark.parametrize("standardized", [False, True])
def test_group_loglik_matches_the_model_for_every_item_family(spec_name, standardized):
    """With group deviations of loadings and locations (approximate invariance, a wide sd
    so that they matter), the per-firm log-likelihood stored for LOO (numpy, each firm with
    its group's parameters) sums to the model's own log-likelihood at prior draws, for
    ordinal, percent, count, binary and continuous items, with missing answers, on plain
    and on standardized scores (whose likelihood carries the deviations through the
    change of variables)."""
    import pymc as pm

    from smeintl.measurement.posterior import add_firm_loglik

    from test_measurement import _model_loglik_per_draw

    spec = _spec(spec_name)
    spec = parse_spec(spec.text + "\n[priors.invariance_sd]\nsigma = 0.5\n", source=spec.source)
    survey = simulate_survey(spec, 30, n_groups=3, missing=0.1, random_seed=1).survey
    mm = MeasurementModel(spec, invariance="approximate", standardized_scores=standardized,
                          latent_parameterization="noncentered")
    model = mm.build(survey, inputs="constant")
    assert ("loading_std" in model.named_vars) == standardized
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = [v.name for v in [*model.free_RVs, *model.deterministics]]
        prior = pm.sample_prior_predictive(draws=8, model=model, var_names=names, random_seed=2)
        post = compat.group(prior, "prior")
        for name in post.data_vars:  # forward draws ignore the ordered transform: order them
            if "cutpoints" in name and not name.endswith("__"):
                post[name].values[...] = np.sort(post[name].values, axis=-1)
        assert float(np.abs(post["intercept_dev"]).max()) > 0.3 and float(np.abs(post["loading_dev"]).max()) > 0.3
        idata = compat.new_fit({"posterior": post})
        ref = _model_loglik_per_draw(mm, model, idata, survey)
    add_firm_loglik(mm, idata, survey)
    got = idata.log_likelihood["responses"].values
    assert np.isfinite(ref).all()
    np.testing.assert_allclose(got.sum(-1), ref, rtol=1e-10)
    # the deviations matter: the common parameters alone give another likelihood
    plain = compat.new_fit({"posterior": post.drop_vars(["loading_dev", "intercept_dev"])})
    add_firm_loglik(mm, plain, survey)
    assert not np.allclose(plain.log_likelihood["responses"].values.sum(-1), ref, rtol=1e-6)


def test_none_gives_the_same_draws_as_before(hitachi_spec, hitachi_survey, hitachi_fit):
    """The default level is today's model: a fit with invariance="none" (and one with
    "scalar") has bit-identical draws to the session's fit made without the argument."""
    for level in ("none", "scalar"):
        fit = _quiet(MeasurementModel(hitachi_spec, invariance=level).fit, hitachi_survey, random_seed=HITACHI_SEED,
                     progressbar=False, **QUICK)
        a, b = compat.group(fit, "posterior"), compat.group(hitachi_fit, "posterior")
        assert set(a.data_vars) == set(b.data_vars)
        for name in b.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        np.testing.assert_array_equal(fit.log_likelihood["responses"].values, hitachi_fit.log_likelihood["responses"].values)
    assert "invariance" not in hitachi_fit.attrs and fit.attrs["invariance"] == "scalar"


def _six_items() -> str:
    items = "\n".join(f'[[items]]\nname = "x{k}"\nconstruct = "f"\nscale = "continuous"\nmin = 0\nmax = 10\n'
                      for k in range(1, 7))
    return (f'[instrument]\nname = "six"\ngroup_column = "industry"\noutcome_column = ""\n\n[[constructs]]\n'
            f'name = "f"\n\n{items}')


def _shifted_survey(n_firms: int = 210, shift: float = 3.0, seed: int = 2):
    """Six continuous items of one construct, three groups; item x2's answers in group G1
    moved by ``shift`` times the item's sd (a group difference of its intercept only)."""
    spec = parse_spec(_six_items(), source="six.toml")
    sim = simulate_survey(spec, n_firms, typical_params(spec, n_groups=3, random_seed=seed), n_groups=3,
                          random_seed=seed, outcome=False)
    X = sim.survey.items.to_numpy(dtype=float).copy()
    g = np.asarray(sim.survey.groups)
    X[g == 0, 1] += shift * X[:, 1].std()
    return spec, sim.survey.with_items(X)


@pytest.fixture(scope="module")
def shifted_fit():
    spec, survey = _shifted_survey()
    fit = _quiet(MeasurementModel(spec, invariance="approximate").fit, survey, random_seed=5, draws=300, tune=300,
                 chains=2, progressbar=False)
    return spec, survey, fit


def test_approximate_invariance_flags_the_shifted_item(shifted_fit):
    """Three groups of 70 firms, six items; x2's intercept is 3 item sds higher in G1:
    P(largest |intercept deviation| > 0.3) is above 0.9 for x2 (its G1 deviation positive)
    and below 0.5 for every other item and for every loading."""
    spec, survey, fit = shifted_fit
    assert fit.attrs["invariance"] == "approximate" and fit.attrs["parameterization"] == "latent"
    table = item_invariance(fit)
    assert list(table.columns) == ["item", "construct", "parameter", "scale", "mean", "lower", "upper", "p_exceeds",
                                   "group", "deviation", "flagged"]
    assert len(table) == 12 and table.attrs["delta"] == 0.3 and table.attrs["groups"] == ["G1", "G2", "G3"]
    p = table.set_index(["parameter", "item"])["p_exceeds"]
    assert p["intercept", "x2"] > 0.9, table
    assert p.drop(("intercept", "x2")).max() < 0.5, table
    row = table[(table.parameter == "intercept") & (table.item == "x2")].iloc[0]
    assert row.group == "G1" and row.deviation > 0.3 and row.flagged and row.scale == "identity"
    assert table["flagged"].sum() == 1
    # a larger delta flags nothing; the option is checked
    assert not item_invariance(fit, delta=5.0)["flagged"].any()
    with pytest.raises(ValueError, match="delta"):
        item_invariance(fit, delta=0)
    # the summary: the invariance table, the deviations in the parameter table, the text and the JSON
    s = _quiet(summarize_fit, fit, spec, loo=False)
    assert s.invariance.equals(table)
    dev_rows = s.parameters[s.parameters["block"].isin(["loading_deviation", "intercept_deviation"])]
    assert len(dev_rows) == 2 * 6 * 3 and set(dev_rows["group"]) == {"G1", "G2", "G3"}
    text = s.text()
    assert "Measurement invariance (approximate)" in text and "flagged items: x2" in text
    doc = json.loads(s.to_json())
    assert doc["metadata"]["invariance"]["delta"] == 0.3
    assert [r["item"] for r in doc["metadata"]["invariance"]["items"] if r["flagged"]] == ["x2"]
    # the posterior predictive follows each group's parameters: x2 is higher in G1
    pp = compat.group(fit, "posterior_predictive")["x2"].values.reshape(-1, survey.n_firms)
    g, x2 = np.asarray(survey.groups), survey.items["x2"].to_numpy(dtype=float)
    observed = x2[g == 0].mean() - x2[g != 0].mean()
    assert pp[:, g == 0].mean() - pp[:, g != 0].mean() == pytest.approx(observed, rel=0.25)
    # a fit without deviations has no table
    with pytest.raises(ValueError, match="no group deviations"):
        item_invariance(compat.new_fit({"posterior": compat.group(fit, "posterior").drop_vars(
            ["loading_dev", "intercept_dev"])}, fit.attrs))


@pytest.mark.slow
def test_levels_compared_by_integrated_loo(shifted_fit):
    """On the shifted data, the levels that let x2's intercept differ by group (metric,
    configural, approximate) predict left-out firms better than scalar invariance."""
    from smeintl.measurement import compare_models

    spec, survey, fit = shifted_fit
    fits = {"approximate": fit}
    for level in ("scalar", "metric", "configural"):
        fits[level] = _quiet(MeasurementModel(spec, invariance=level, parameterization="latent").fit, survey,
                             random_seed=5, draws=300, tune=300, chains=2, progressbar=False)
    table = _quiet(compare_models, fits)
    assert table.index[-1] == "scalar", table
    assert table.loc["scalar", "elpd_diff"] > 2 * table.loc["scalar", "dse"], table
