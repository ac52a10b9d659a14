"""Tests of smeintl.predictive: the posterior predictive comparison with the deterministic method.

Three layers:

* no fit: the vectorized deterministic functions equal a loop of single calls, exactly;
  the statistics helpers against statsmodels / scipy; the comparison on a *fake* fit
  (posterior = true parameters with jitter, y_rep drawn from the generative model) for
  the bookkeeping (probabilities, findings rows, missing answers, spec variants, files);
* two real fits on simulated data with known truth (module-scoped, nutpie): small noise
  (loadings 4) and more noise (loadings 0.8), n = 200 firms, one firm duplicated with
  most answers blanked: recovery of the true types and shares, intervals that widen
  with noise and with missing answers;
* the shared short fit of the bundled data (``hitachi_fit`` from conftest).

"True type" of a simulated firm: the deterministic method applied to its true scores
(expected item values given the true latent scores and the true item parameters), the
quantity the true-score version estimates.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from smeintl import compat
from smeintl.data import survey_from_frame
from smeintl.indices import index_arrays, scale_items
from smeintl.measurement import ItemLayout, draw_items, expected_scaled, standardization_of
from conftest import HITACHI_FINDINGS as FINDINGS
from smeintl.predictive import (
    OUTPUT_FILES,
    Comparison,
    anova_pvalue,
    cohens_kappa,
    compare,
    pearson_greater_pvalue,
    replicated_items,
    sample_statistics,
    select_draws,
    true_score_items,
    verdict,
    write_comparison,
)
from smeintl.profiles import type_arrays
from smeintl.simulate import simulate_survey, typical_params
from smeintl.spec import ProfileSet, SpecError, load_spec, parse_spec

SPEC = load_spec()
TYPES = SPEC.profiles.type_names
FIT_KW = dict(draws=250, tune=300, chains=2, sampler="nutpie", progressbar=False, log_likelihood=False)
BLANK_ID = "S00001_blank"
#: answers kept for the blanked copy: enough for both indices to be defined (2 of 4
#: sub-dimensions each), 4 of 15 answers
KEEP = ("intl_stage", "coord_foreign_partners", "top_customer_share", "price_bargaining")


# ---------------------------------------------------------------------------
# helpers
def _random_raw(spec, shape, rng, p_missing=0.2):
    """Random raw answers of shape shape + (I,) within each item's range, with NaNs."""
    cols = []
    for it in spec.items:
        if it.scale in ("likert", "stage"):
            v = rng.integers(int(it.min), int(it.max) + 1, shape).astype(float)
        elif it.scale == "count":
            v = rng.integers(0, int(2 * it.cap), shape).astype(float)
        elif it.scale == "binary":
            v = rng.integers(0, 2, shape).astype(float)
        else:
            v = np.round(rng.uniform(it.min, it.max, shape), 2)
            v[rng.random(shape) < 0.2] = it.min
        cols.append(v)
    X = np.stack(cols, axis=-1)
    X[rng.random(X.shape) < p_missing] = np.nan
    return X


def _true_types(spec, sim):
    lay = ItemLayout.from_spec(spec)
    V = expected_scaled(sim.params, sim.eta, lay, standardization=standardization_of(lay))
    ind = index_arrays(lay.lo + V * (lay.hi - lay.lo), spec)["indices"]
    return type_arrays(ind, spec)["type"]


def _fake_idata(spec, survey, params, eta, *, S=40, jitter=0.15, seed=0, group=True, pp=True):
    """A fit-shaped tree: posterior = truth with jitter on eta."""

    rng = np.random.default_rng(seed)
    lay = ItemLayout.from_spec(spec)
    F = survey.n_firms
    chains, draws = 2, S // 2
    post = {}
    dims = {}
    for k, v in params.items():
        if k == "group_mean" and not group:
            continue
        a = np.broadcast_to(np.asarray(v, dtype=float), (chains, draws) + np.shape(v)).copy()
        if k == "loading":
            a = a * np.exp(rng.normal(0, 0.05, a.shape))
        post[k] = a
    post["eta"] = eta[None, None] + rng.normal(0, jitter, (chains, draws) + eta.shape)
    dims["eta"] = ["firm", "construct"]
    dims["loading"] = ["item"]
    coords = {"firm": list(survey.items.index), "construct": list(spec.construct_names), "item": list(spec.item_names)}
    groups = {"posterior": post}
    if pp:
        P = {k: v.reshape((-1,) + v.shape[2:]) for k, v in post.items()}
        Y = draw_items(P, P["eta"], lay, np.random.default_rng(seed + 1), standardization=standardization_of(lay))
        Y = Y.reshape(chains, draws, F, -1)
        groups["posterior_predictive"] = {n: Y[..., k] for k, n in enumerate(spec.item_names)}
        for n in spec.item_names:
            dims[n] = ["firm"]
    idata = compat.fit_from_dict(groups, coords=coords, dims=dims)
    idata.attrs["spec_text"] = spec.text
    idata.attrs["data_hash"] = survey.data_hash
    return idata


def _with_blanked_copy(survey, firm_pos=0, new_id=BLANK_ID):
    """The survey plus a copy of one firm with all answers but KEEP blanked."""
    df = survey.to_frame()
    row = df.iloc[[firm_pos]].copy()
    row[survey.spec.id_column] = new_id
    for it in survey.spec.item_names:
        if it not in KEEP:
            row[it] = np.nan
    return survey_from_frame(pd.concat([df, row], ignore_index=True), survey.spec, source="<test>")


@pytest.fixture(scope="module")
def small_sim():
    p = typical_params(SPEC, n_groups=5, random_seed=1)
    return simulate_survey(SPEC, 60, p, random_seed=1)


@pytest.fixture(scope="module")
def fake(small_sim):
    sim = small_sim
    survey = _with_blanked_copy(sim.survey)
    eta = np.vstack([sim.eta, sim.eta[:1]])
    idata = _fake_idata(SPEC, survey, sim.params, eta)
    return survey, idata, compare(idata, survey)


# ---------------------------------------------------------------------------
# 1. vectorized deterministic functions == loop of single calls (no fit)
@pytest.mark.parametrize(
    "variant",
    ["default", "standardize_squared", "hybrid"],
)
def test_vectorized_deterministic_equals_loop(variant):
    spec = SPEC
    if variant == "standardize_squared":
        spec = SPEC.replace(standardize=True, squared=True)
    elif variant == "hybrid":
        spec = SPEC.replace(hybrid_epsilon=0.05)
    rng = np.random.default_rng(5)
    S, F = 9, 37
    X = _random_raw(spec, (S, F), rng)
    X[:, 3, :] = np.nan  # a firm with no answers (untyped in every draw)
    ia = index_arrays(X, spec)
    ta = type_arrays(ia["indices"], spec)
    groups = np.arange(F) % 3
    st = sample_statistics(ia["indices"], ta, spec, groups, ("a", "b", "c"))
    for s in range(S):
        ia1 = index_arrays(X[s], spec)
        ta1 = type_arrays(ia1["indices"], spec)
        for k in ("scaled", "subdimensions", "indices", "sullivan"):
            np.testing.assert_array_equal(ia[k][s], ia1[k])
        for k in ("distance", "fit", "type", "flags", "flag_valid"):
            np.testing.assert_array_equal(ta[k][s], ta1[k])
        st1 = sample_statistics(ia1["indices"], ta1, spec, groups, ("a", "b", "c"))
        assert st1.keys() == st.keys()
        for k in st:
            np.testing.assert_array_equal(st[k][s], st1[k], err_msg=k)
    assert (ta["type"][:, 3] == -1).all()


def test_vectorized_statistics_equal_loop():
    rng = np.random.default_rng(2)
    S, F = 6, 25
    x = rng.random((S, F))
    y = 0.3 * x + rng.random((S, F))
    x[:, 4] = np.nan
    g = np.arange(F) % 4
    p = anova_pvalue(x, g)
    r, pr = pearson_greater_pvalue(x, y)
    a = rng.integers(0, 4, F)
    b = rng.integers(-1, 4, (S, F))
    kap = cohens_kappa(a[None], b, 4)
    for s in range(S):
        assert p[s] == anova_pvalue(x[s], g)
        r1, p1 = pearson_greater_pvalue(x[s], y[s])
        assert r[s] == r1 and pr[s] == p1
        assert kap[s] == cohens_kappa(a, b[s], 4)


def test_statistics_match_statsmodels_and_scipy():
    from scipy import stats
    from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa
    from statsmodels.stats.oneway import anova_oneway

    rng = np.random.default_rng(3)
    F = 40
    g = rng.integers(0, 4, F)
    v = rng.normal(g * 0.3, 1.0)
    ref = anova_oneway([v[g == k] for k in range(4)], use_var="equal").pvalue
    assert anova_pvalue(v, g) == pytest.approx(ref, rel=1e-10)
    y = 0.4 * v + rng.normal(size=F)
    r, p = pearson_greater_pvalue(v, y)
    res = stats.pearsonr(v, y, alternative="greater")
    assert r == pytest.approx(res.statistic, rel=1e-12) and p == pytest.approx(res.pvalue, rel=1e-8)
    a = rng.integers(0, 3, F)
    b = np.where(rng.random(F) < 0.7, a, rng.integers(0, 3, F))
    table = np.zeros((3, 3))
    np.add.at(table, (a, b), 1)
    assert cohens_kappa(a, b, 3) == pytest.approx(sm_kappa(table).kappa, rel=1e-12)
    assert np.isnan(cohens_kappa(np.zeros(5, int), np.zeros(5, int), 3))  # both constant: undefined


def test_select_draws_and_verdict_words():
    np.testing.assert_array_equal(select_draws(10, None), np.arange(10))
    np.testing.assert_array_equal(select_draws(10, 50), np.arange(10))
    sel = select_draws(1000, 100)
    assert sel.size == 100 and sel[0] == 0 and sel[-1] == 999 and (np.diff(sel) > 0).all()
    assert verdict(0.97).startswith("holds")
    assert verdict(0.8).startswith("probably holds")
    assert verdict(0.5).startswith("uncertain")
    assert verdict(0.1).startswith("probably does not hold")
    assert verdict(0.01).startswith("does not hold")
    assert verdict(float("nan"), "not estimable: x") == "not estimable: x"


# ---------------------------------------------------------------------------
# 2. the comparison on a fake fit (no sampling)
def test_true_score_items_are_expected_values_on_the_raw_scale(small_sim):
    sim = small_sim
    idata = _fake_idata(SPEC, sim.survey, sim.params, sim.eta, S=6)
    T = true_score_items(idata, SPEC)
    assert T.shape == (6, sim.survey.n_firms, len(SPEC.items)) and np.isfinite(T).all()
    from smeintl.measurement import posterior_params

    P = posterior_params(idata)
    lay = ItemLayout.from_spec(SPEC)
    V = expected_scaled(P, P["eta"], lay)
    rev = np.array([it.reverse for it in SPEC.items])
    np.testing.assert_allclose(scale_items(T, SPEC), np.where(rev, 1 - V, V), atol=1e-12)
    # thinning selects the same draws
    np.testing.assert_array_equal(true_score_items(idata, SPEC, draws=np.array([1, 4])), T[[1, 4]])


def test_replicated_items_keep_the_missingness(fake):
    survey, idata, _ = fake
    Y = replicated_items(idata, survey)
    X = survey.items.to_numpy(dtype=float)
    assert Y.shape == (40,) + X.shape
    np.testing.assert_array_equal(np.isnan(Y), np.broadcast_to(np.isnan(X), Y.shape))
    # without a posterior predictive group, y_rep is drawn here, seeded
    idata2 = _fake_idata(SPEC, survey, *_truth_of(fake), pp=False)
    Y1 = replicated_items(idata2, survey, random_seed=4)
    np.testing.assert_array_equal(Y1, replicated_items(idata2, survey, random_seed=4))
    np.testing.assert_array_equal(np.isnan(Y1), np.isnan(Y))


def _truth_of(fake):
    survey, idata, _ = fake
    from smeintl.measurement import posterior_params

    P = posterior_params(idata)
    params = {k: v[0] for k, v in P.items() if k != "eta"}
    return params, P["eta"].mean(0)


def test_comparison_tables(fake, tmp_path):
    survey, idata, comp = fake
    assert isinstance(comp, Comparison)
    ft = comp.firm_types
    F = survey.n_firms
    assert list(ft.columns[: 2 + 2 * len(TYPES)]) == (
        ["firm_id", "deterministic_type"] + [f"p_{t}" for t in TYPES] + [f"p_{t}_rep" for t in TYPES]
    )
    assert len(ft) == F and list(ft.firm_id) == list(survey.items.index)
    pt = ft[[f"p_{t}" for t in TYPES]].to_numpy()
    pr = ft[[f"p_{t}_rep" for t in TYPES]].to_numpy()
    np.testing.assert_allclose(pt.sum(1), 1.0)
    np.testing.assert_allclose(pr.sum(1), 1.0)
    # p_wrong = 1 - P(deterministic type)
    for row in ft.itertuples(index=False):
        assert row.p_wrong == pytest.approx(1 - getattr(row, f"p_{row.deterministic_type}"))
    # the deterministic column is the deterministic method's own typing
    from smeintl.profiles import run_deterministic

    det = run_deterministic(survey)
    assert list(ft.deterministic_type) == [str(t) for t in det.firms["type"]]
    # intervals: one row per firm and quantity; the deterministic value is the method's
    fi = comp.firm_intervals
    assert len(fi) == F * (2 + len(TYPES))
    doi = fi[fi.quantity == "doi"].set_index("firm_id")
    np.testing.assert_allclose(doi.deterministic.to_numpy(), det.firms["doi"].to_numpy())
    assert (doi.true_lo <= doi.true_median).all() and (doi.true_median <= doi.true_hi).all()
    # sample statistics
    ss = comp.sample_stats.set_index("statistic")
    for name in ["share_internationalizing", "share_independent", "mean_deviation", "mean_doi[G1]",
                 "mean_independence[G5]"] + [f"count_{t}" for t in TYPES] + [f"share_{t}" for t in TYPES]:
        assert name in ss.index, name
    assert ss.loc["share_internationalizing", "deterministic"] == pytest.approx(
        det.summary["flags"]["internationalizing"]["share"])
    assert ((ss.ppp >= 0) & (ss.ppp <= 1)).all()
    # findings: one row per finding, probabilities in [0, 1]
    fd = comp.findings
    assert list(fd.columns[:5]) == ["finding", "definition", "deterministic", "posterior_probability", "verdict"]
    assert list(fd.finding) == [f.key for f in FINDINGS]
    assert fd.posterior_probability.between(0, 1).all()
    assert fd.replicated_probability.between(0, 1).all()
    # agreement
    a = comp.agreement
    assert 0 <= a["share_agree"] <= 1 and a["kappa_lo"] <= a["kappa"] <= a["kappa_hi"]
    assert a["n_firms"] == F and a["prob"] == 0.9
    assert comp.true_types.shape == (40, F) and comp.rep_indices.shape == (40, F, 2)
    text = comp.text()
    for f in FINDINGS:
        assert f.title in text
    assert "kappa" in text
    paths = write_comparison(comp, tmp_path / "out")
    assert [p.name for p in paths] == list(OUTPUT_FILES) and all(p.exists() for p in paths)
    back = pd.read_csv(paths[0])
    assert list(back.columns) == list(ft.columns)
    back = pd.read_csv(paths[3])
    assert list(back.columns[:5]) == ["finding", "definition", "deterministic", "posterior_probability", "verdict"]
    assert json.loads(paths[4].read_text())["n_firms"] == F


def test_missing_answers_widen_intervals_fake(fake):
    survey, _, comp = fake
    fi = comp.firm_intervals.set_index(["firm_id", "quantity"])
    for q in ("doi", "independence"):
        full, blank = fi.loc[("S00001", q)], fi.loc[(BLANK_ID, q)]
        # (the fake fit's latent draws ignore the answers, so only the replicated
        # version can show the loss of information here)
        # the replicated index of 1-2 answers varies more than that of all answers
        assert blank.rep_hi - blank.rep_lo > full.rep_hi - full.rep_lo


def test_untyped_firm(small_sim):
    sim = small_sim
    df = sim.survey.to_frame()
    df.loc[2, ["intl_stage", "export_share", "n_countries", "overseas_growth", "coord_foreign_partners",
               "coord_trade_practice"]] = np.nan  # doi undefined
    survey = survey_from_frame(df, SPEC)
    comp = compare(_fake_idata(SPEC, survey, sim.params, sim.eta, S=20), survey)
    row = comp.firm_types.iloc[2]
    assert pd.isna(row.deterministic_type) and pd.isna(row.p_wrong) and pd.isna(row.modal_type_rep)
    assert np.isnan([row[f"p_{t}_rep"] for t in TYPES]).all()
    assert sum(row[f"p_{t}"] for t in TYPES) == pytest.approx(1.0)  # true scores: every item present
    assert comp.agreement["n_firms"] == survey.n_firms - 1
    assert (comp.rep_types[:, 2] == -1).all() and (comp.true_types[:, 2] >= 0).all()


def test_thinning_is_deterministic(fake):
    survey, idata, _ = fake
    a = compare(idata, survey, max_draws=10)
    b = compare(idata, survey, max_draws=10)
    assert a.n_draws == 10
    pd.testing.assert_frame_equal(a.firm_types, b.firm_types)
    pd.testing.assert_frame_equal(a.findings, b.findings)


def test_spec_variants_and_refusals(small_sim):
    sim = small_sim
    # no group level in the fit: the industry findings are "not estimable", nothing crashes
    idata = _fake_idata(SPEC, sim.survey, sim.params, sim.eta, S=10, group=False)
    fd = compare(idata, sim.survey).findings.set_index("finding")
    for k in ("industries_differ_doi", "industries_differ_independence"):
        assert np.isnan(fd.loc[k, "posterior_probability"])
        assert fd.loc[k, "verdict"].startswith("not estimable")
        assert fd.loc[k, "deterministic"] in (True, False)
    # a spec whose constructs and types are named otherwise (in its findings too; no flag
    # name for the renamed construct): the findings follow the names, the flag is high_<name>
    text = (SPEC.text.replace('"doi"', '"intl"').replace("doi =", "intl =").replace('"mnc_follower"', '"follower"')
            .replace('flag = "internationalizing"', ""))
    other = parse_spec(text, source="<renamed>")
    survey = survey_from_frame(sim.survey.to_frame(), other)
    comp = compare(_fake_idata(other, survey, sim.params, sim.eta, S=10), survey)
    fd = comp.findings.set_index("finding")
    assert list(fd.index) == [f.key for f in FINDINGS]
    assert not fd.verdict.str.startswith("not applicable").any()
    assert fd.loc["about_20pct_internationalizing", "deterministic_quantity"] == "share_high_intl"
    assert fd.loc["most_independent", "posterior_probability"] >= 0
    assert "share_high_intl" in set(comp.sample_stats.statistic)
    # findings naming a type the spec does not declare are refused when the spec is read ...
    with pytest.raises(SpecError, match=r"findings\[2\] \(no_mnc_followers\)\.type: 'mnc_follower' is not a declared"):
        parse_spec(SPEC.text.replace('name = "mnc_follower"', 'name = "follower"'), source="<renamed type>")
    # ... and a spec changed in code keeps the row, not applicable
    types = tuple(t for t in SPEC.profiles.types if t.name != "mnc_follower")
    three = SPEC.replace(profiles=ProfileSet(SPEC.profiles.dimensions, types))
    fd = compare(_fake_idata(SPEC, sim.survey, sim.params, sim.eta, S=4), sim.survey, three).findings
    row = fd.set_index("finding").loc["no_mnc_followers"]
    assert row.verdict == "not applicable: the spec declares no ideal type named 'mnc_follower'"
    assert np.isnan(row.posterior_probability)
    # a fit of other data, or of other items, is refused
    other_data = simulate_survey(SPEC, 60, sim.params, random_seed=99).survey
    with pytest.raises(ValueError, match="different data"):
        compare(_fake_idata(SPEC, sim.survey, sim.params, sim.eta, S=4), other_data)
    narrow = parse_spec(SPEC.text.replace('reverse = true\n', '', 1), source="<narrow>")
    with pytest.raises(ValueError, match="items differ"):
        compare(_fake_idata(SPEC, sim.survey, sim.params, sim.eta, S=4), sim.survey, narrow)
    # profiles may change without a refit
    thr = SPEC.replace(thresholds={"doi": 0.4, "independence": 0.6})
    assert compare(_fake_idata(SPEC, sim.survey, sim.params, sim.eta, S=4), sim.survey, thr).n_draws == 4


# ---------------------------------------------------------------------------
# 3. real fits on simulated data with known truth
def _fit(survey):
    from smeintl.measurement import MeasurementModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MeasurementModel(SPEC).fit(survey, random_seed=3, **FIT_KW)


def _sim_fit(loading):
    p = typical_params(SPEC, n_groups=5, loading=loading, random_seed=2)
    sim = simulate_survey(SPEC, 200, p, random_seed=2)
    survey = _with_blanked_copy(sim.survey)
    idata = _fit(survey)
    return sim, survey, compare(idata, survey)


@pytest.fixture(scope="module")
def precise():
    """Small measurement noise: loadings 4 (counts 2.1), 200 firms."""
    return _sim_fit(4.0)


@pytest.fixture(scope="module")
def noisy():
    """More measurement noise: loadings 0.8 (counts 0.43), same firms and design."""
    return _sim_fit(0.8)


def test_recovers_true_types_and_shares(precise):
    sim, survey, comp = precise
    truth = np.array([TYPES[k] for k in _true_types(SPEC, sim)])
    ft = comp.firm_types.iloc[: sim.survey.n_firms]  # without the blanked copy
    assert (ft.modal_type.to_numpy() == truth).mean() >= 0.9
    # the true share of each type lies in its 90% interval (true-score version)
    true_codes = comp.true_types[:, : sim.survey.n_firms]
    for k, t in enumerate(TYPES):
        share = (truth == t).mean()
        draws = (true_codes == k).mean(axis=1)
        lo, hi = np.quantile(draws, [0.05, 0.95])
        assert lo <= share <= hi, (t, share, lo, hi)
    # the probabilities sum to one and the findings are probabilities
    ft = comp.firm_types
    np.testing.assert_allclose(ft[[f"p_{t}" for t in TYPES]].sum(axis=1), 1.0)
    np.testing.assert_allclose(ft[[f"p_{t}_rep" for t in TYPES]].sum(axis=1), 1.0)
    assert list(comp.findings.finding) == [f.key for f in FINDINGS]
    assert comp.findings.posterior_probability.between(0, 1).all()


def test_more_noise_widens_intervals(precise, noisy):
    def widths(comp):
        fi = comp.firm_intervals
        out = {}
        for q in ("doi", "independence"):
            d = fi[(fi.quantity == q) & (fi.firm_id != BLANK_ID)]
            out[q] = float((d.true_hi - d.true_lo).mean())
        ss = comp.sample_stats.set_index("statistic")
        out["shares"] = float((ss.true_hi - ss.true_lo).loc[[f"share_{t}" for t in TYPES]].mean())
        return out

    w0, w1 = widths(precise[2]), widths(noisy[2])
    for k in w0:
        assert w1[k] > w0[k], (k, w0[k], w1[k])
    assert noisy[2].agreement["kappa"] < precise[2].agreement["kappa"]


@pytest.mark.parametrize("which", ["precise", "noisy"])
def test_missing_answers_widen_intervals(which, request):
    _, _, comp = request.getfixturevalue(which)
    fi = comp.firm_intervals.set_index(["firm_id", "quantity"])
    for q in ("doi", "independence"):
        full, blank = fi.loc[("S00001", q)], fi.loc[(BLANK_ID, q)]
        assert blank.true_hi - blank.true_lo > full.true_hi - full.true_lo, q
    # (no such claim for the replicated version: an index of 1-2 answers of a firm near
    # the ceiling piles up at 1, and its interval can be narrower than with all answers)


# ---------------------------------------------------------------------------
# 4. the bundled data (shared short fit from conftest)
def test_bundled_data_comparison(hitachi_fit, hitachi_survey):
    comp = compare(hitachi_fit, hitachi_survey, max_draws=200)
    fd = comp.findings
    assert list(fd.finding) == [f.key for f in FINDINGS]
    assert fd.posterior_probability.dropna().between(0, 1).all()
    assert len(comp.firm_types) == hitachi_survey.n_firms
    p = comp.firm_types[[f"p_{t}" for t in TYPES]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0)
    print(comp.text())
