"""Scale-free default priors and the light spec, on one small all-continuous instrument.

Continuous items are modelled on their sample standardization, so the results do not
depend on the units of the answers or on the declared range; the group level is
dropped when the survey has one group.  The fits share one compiled structure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smeintl.data import survey_from_frame
from smeintl.measurement import ItemLayout, MeasurementModel, expected_scaled, fit_standardization, standardization_of
from smeintl.measurement import summarize_fit
from smeintl.simulate import simulate_survey, truth_on_fit_scale, typical_params
from smeintl.spec import parse_spec

FIT = dict(draws=300, tune=300, chains=2, random_seed=11, progressbar=False)


def _spec(hi: float = 10.0, group: str = "") -> str:
    items = "".join(
        f'\n[[items]]\nname = "x{k}"\nconstruct = "{"f1" if k <= 3 else "f2"}"\nscale = "continuous"\n'
        f"min = 0\nmax = {hi:g}\n" for k in range(1, 7))
    return (f'[instrument]\nname = "cfa"\nid_column = "id"\ngroup_column = "{group}"\noutcome_column = ""\n'
            f'extra_columns = []\n\n[[constructs]]\nname = "f1"\n\n[[constructs]]\nname = "f2"\n' + items)


def _frame(scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    F = 150
    eta = rng.multivariate_normal([0, 0], [[1, 0.4], [0.4, 1]], F)
    out = {"id": [f"p{f}" for f in range(F)], "school": rng.choice(["Pasteur", "Grant-White"], F)}
    for k, lam in enumerate([0.8, 0.7, 0.6, 0.8, 0.7, 0.6]):
        z = lam * eta[:, k // 3] + np.sqrt(1 - lam**2) * rng.standard_normal(F)
        out[f"x{k + 1}"] = scale * np.round(5 + 2 * z, 2)
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def fits():
    spec = parse_spec(_spec(), "cfa.toml")
    spec10 = parse_spec(_spec(100.0), "cfa100.toml")
    a = MeasurementModel(spec).fit(survey_from_frame(_frame(), spec), **FIT)
    b = MeasurementModel(spec10).fit(survey_from_frame(_frame(10.0), spec10), **FIT)
    c = MeasurementModel(spec10).fit(survey_from_frame(_frame(), spec10), **FIT)
    return spec, spec10, a, b, c


def test_units_do_not_change_the_standardized_results(fits):
    spec, spec10, a, b, _ = fits
    sa, sb = summarize_fit(a, spec), summarize_fit(b, spec10)
    # the same standardized loadings within Monte Carlo error (sd of a posterior mean from ~300 ESS)
    np.testing.assert_allclose(sb.loadings["std_mean"], sa.loadings["std_mean"], atol=0.03)
    # the data-unit loadings (model loading x the item's sd) scale with the units
    da = sa.loadings["mean"].to_numpy() * fit_standardization(a)["sd"]
    db = sb.loadings["mean"].to_numpy() * fit_standardization(b)["sd"]
    np.testing.assert_allclose(db / da, 10.0, rtol=0.05)
    np.testing.assert_allclose(fit_standardization(b)["sd"], 10 * fit_standardization(a)["sd"], rtol=1e-12)


def test_declared_range_does_not_act_as_a_prior(fits):
    _, _, a, _, c = fits
    # the same answers declared 0-10 and 0-100: the same model inputs, the same draws
    np.testing.assert_array_equal(a.posterior["loading"].values, c.posterior["loading"].values)
    np.testing.assert_array_equal(a.posterior["cont_sigma"].values, c.posterior["cont_sigma"].values)


def test_one_group_has_no_group_level():
    spec = parse_spec(_spec(group="school"), "cfa.toml")
    frame = _frame()
    frame["school"] = "Pasteur"
    survey = survey_from_frame(frame, spec)
    assert survey.group_names == ("Pasteur",)
    model = MeasurementModel(spec)
    assert model.group and not model.for_survey(survey).group
    fit = model.fit(survey, **FIT)
    assert "group_sd" not in fit.posterior and "group_mean" not in fit.posterior
    assert int(fit.attrs["group"]) == 0
    two = frame.assign(school=np.where(np.arange(len(frame)) % 2, "Pasteur", "Grant-White"))
    assert model.for_survey(survey_from_frame(two, spec)) is model


def test_constant_continuous_item_is_refused():
    from smeintl.errors import UserError

    spec = parse_spec(_spec(), "cfa.toml")
    frame = _frame().assign(x2=3.0)
    with pytest.raises(UserError, match="'x2': fewer than two distinct answers"):
        standardization_of(ItemLayout.from_spec(spec), frame[list(spec.item_names)].to_numpy())


def test_truth_on_fit_scale_gives_the_same_expected_answers():
    spec = parse_spec(_spec(), "cfa.toml")
    lay = ItemLayout.from_spec(spec)
    p = typical_params(spec, n_groups=0, correlation=0.3, random_seed=2)
    sim = simulate_survey(spec, 300, p, n_groups=1, random_seed=2)
    X = sim.survey.items.to_numpy(float)

    class _Fit:  # what truth_on_fit_scale reads of a fit: the standardization in its attrs
        attrs = {"standardization": __import__("json").dumps(
            {k: v.tolist() for k, v in standardization_of(lay, X).items()})}

    q = truth_on_fit_scale(spec, sim.params, _Fit())
    a = expected_scaled(sim.params, sim.eta, lay, standardization=standardization_of(lay))
    b = expected_scaled(q, sim.eta, lay, standardization=standardization_of(lay, X))
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert not np.allclose(q["loading"], sim.params["loading"])
