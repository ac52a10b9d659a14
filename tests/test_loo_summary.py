"""The leave-one-firm-out LOO with the latent scores integrated out: in a fit's summary
(computed on first access), and comparing fits of the same data (compare_models)."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest

from smeintl import compat, load_spec
from smeintl.errors import UserError
from smeintl.measurement import FitLoo, MeasurementModel, compare_models, fit_loo, summarize_fit

from conftest import SPECS


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def test_summary_loo_is_lazy_and_reported(hitachi_fit, hitachi_spec, hitachi_survey):
    t0 = time.perf_counter()
    s = _quiet(summarize_fit, hitachi_fit, hitachi_spec)
    assert "value" not in s._loo_cache  # nothing computed yet
    assert time.perf_counter() - t0 < 5
    loo = _quiet(lambda: s.loo)
    assert isinstance(loo, FitLoo) and s.loo is loo  # kept
    F = hitachi_survey.n_firms
    assert np.isfinite([loo.elpd, loo.se, loo.p_loo]).all() and loo.se > 0 and 0 < loo.p_loo < 200
    assert loo.pareto_k.shape == (F,) and sum(loo.k_counts().values()) == F
    assert loo.firms == tuple(str(f) for f in hitachi_survey.items.index)
    assert [f for f, _ in loo.flagged()] == [loo.firms[i] for i in np.argsort(-loo.pareto_k) if loo.pareto_k[i] > 0.7]
    # the same numbers as the robustness check's integrated LOO (its survey instead of the fit's observed data)
    from smeintl.robustness.loo import integrated_idata

    integ, _ = integrated_idata(hitachi_fit, hitachi_spec, hitachi_survey, True, "latent")
    ref = _quiet(compat.loo, integ, "responses")
    assert loo.elpd == pytest.approx(ref.elpd, rel=1e-12) and loo.se == pytest.approx(ref.se, rel=1e-12)
    text = s.text()
    assert "Leave-one-firm-out LOO, latent scores integrated out" in text and f"elpd_loo {loo.elpd:.1f}" in text
    assert text.index("Leave-one-firm-out") < text.index("Parameters:")
    doc = json.loads(s.to_json())  # strict JSON
    meta = doc["metadata"]["loo"]
    assert meta["elpd_loo"] == pytest.approx(loo.elpd) and meta["pareto_k"] == loo.k_counts()
    assert [d["firm"] for d in meta["firms_pareto_k_gt_0_7"]] == [f for f, _ in loo.flagged()]
    assert doc["metadata"]["invariance"] == "none"
    off = _quiet(summarize_fit, hitachi_fit, hitachi_spec, loo=False)
    assert off.loo is None and "loo=False" in off.loo_note and "loo=False" in off.text()
    assert off.to_dict()["metadata"]["loo"] == {"note": off.loo_note}


def test_loo_of_a_fit_without_observed_data_says_why(hitachi_fit, hitachi_spec):
    fit = compat.as_fit(hitachi_fit).copy()
    compat.drop_group(fit, "observed_data")
    s = _quiet(summarize_fit, fit, hitachi_spec)
    assert s.loo is None and "observed_data" in s.loo_note


def _two_factor(n_firms: int, corr: float, seed: int):
    from smeintl.simulate import simulate_survey, typical_params

    spec = load_spec(SPECS / "continuous_two.toml")
    truth = typical_params(spec, n_groups=3, correlation=corr, random_seed=seed)
    return spec, simulate_survey(spec, n_firms, truth, n_groups=3, random_seed=seed).survey


@pytest.mark.slow
def test_compare_models_prefers_two_constructs_on_two_factor_data():
    """Two correlated constructs (r = 0.3), three continuous items each: the two-construct
    spec predicts left-out firms better than one construct for all six items, by more
    than two standard errors of the difference (marginal fits: the stored log-likelihood
    is already integrated).  About two minutes here: two new model structures to compile."""
    from smeintl.data import survey_from_frame
    from smeintl.robustness import spec_variant

    spec, survey = _two_factor(150, 0.3, 4)
    one, why = spec_variant(spec, "one_construct")
    assert one is not None, why
    kw = dict(draws=300, tune=300, chains=2, random_seed=1, progressbar=False)
    survey_one = survey_from_frame(survey.to_frame(), one, source="one.csv")
    fits = {"two": _quiet(MeasurementModel(spec).fit, survey, **kw),
            "one": _quiet(MeasurementModel(one).fit, survey_one, **kw)}
    assert fits["two"].attrs["data_hash"] == fits["one"].attrs["data_hash"]
    table = compare_models(fits)
    assert list(table.columns) == ["rank", "elpd_loo", "se", "elpd_diff", "dse", "p_loo", "weight", "max_pareto_k",
                                   "n_pareto_k_gt_0_7"]
    assert list(table.index) == ["two", "one"] and table.loc["two", "rank"] == 0
    assert table.loc["two", "elpd_diff"] == 0 and table.loc["one", "elpd_diff"] > 2 * table.loc["one", "dse"]
    assert table["elpd_loo"]["two"] - table["elpd_loo"]["one"] == pytest.approx(table.loc["one", "elpd_diff"], rel=1e-6)
    assert table["weight"].sum() == pytest.approx(1.0) and table.loc["two", "weight"] > 0.5
    assert fit_loo(fits["two"]).method == "marginal likelihood, exact"


def test_compare_models_refuses_fits_of_other_data(hitachi_fit):
    other = compat.as_fit(hitachi_fit).copy()
    other.attrs["data_hash"] = "0" * 64
    with pytest.raises(UserError, match=r"not made on the same data.*'b'.*data hash 000000000000"):
        compare_models({"a": hitachi_fit, "b": other})
    with pytest.raises(UserError, match="two or more"):
        compare_models({"a": hitachi_fit})


def test_compare_models_table_of_equal_fits(hitachi_fit):
    """The same posterior under two names: equal elpd, no difference, weights summing to 1."""
    table = _quiet(compare_models, {"a": hitachi_fit, "b": compat.as_fit(hitachi_fit).copy()})
    assert set(table.index) == {"a", "b"} and sorted(table["rank"]) == [0, 1]
    assert table["elpd_loo"]["a"] == table["elpd_loo"]["b"] and (table["elpd_diff"] == 0).all()
    assert table["weight"].sum() == pytest.approx(1.0)


def test_integrated_loglik_is_computed_once_per_process_for_the_same_inputs(hitachi_fit, hitachi_spec,
                                                                            hitachi_survey, monkeypatch):
    """The model comparison (answers from the survey) and the report's LOO (answers from the
    fit's observed data) of one fit share the computation; other draws, nodes or posterior
    values are computed anew."""
    from smeintl.measurement import invariance, loo

    calls = []
    real = invariance.cell_loglik_by_group
    monkeypatch.setattr(invariance, "cell_loglik_by_group", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(loo, "_MEMO", type(loo._MEMO)())
    sel = np.arange(0, 40, 4)
    first = loo.integrated_loglik(hitachi_fit, hitachi_spec, hitachi_survey, draws=sel)
    assert len(calls) == sel.size
    again = loo.integrated_loglik(hitachi_fit, hitachi_spec, None, draws=sel)  # answers from observed_data
    assert len(calls) == sel.size
    np.testing.assert_array_equal(again, first)
    again[:] = 0  # the caller's copy: the memo keeps its own
    np.testing.assert_array_equal(loo.integrated_loglik(hitachi_fit, hitachi_spec, draws=sel), first)
    loo.integrated_loglik(hitachi_fit, hitachi_spec, draws=sel, nodes=11)
    assert len(calls) == 2 * sel.size
    fit = compat.as_fit(hitachi_fit)
    post = compat.group(fit, "posterior")
    moved = post.assign(loading=post["loading"] * 1.01)
    other = compat.new_fit({"posterior": moved, "observed_data": compat.group(fit, "observed_data")})
    other.attrs.update(fit.attrs)
    changed = loo.integrated_loglik(other, hitachi_spec, hitachi_survey, draws=sel)
    assert len(calls) == 3 * sel.size and not np.array_equal(changed, first)
