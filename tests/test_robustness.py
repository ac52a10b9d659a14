"""Robustness and sensitivity checks (smeintl.robustness).

The cheap checks run fully on the bundled data; the refit checks run once, with tiny
sampler settings, in one module-scoped result shared by the tests below.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import HITACHI_FINDINGS as FINDINGS

#: tiny refits for the default suite (real sampling, but short)
TINY = dict(draws=60, tune=100, chains=2, sampler="pymc")
KEYS = [f.key for f in FINDINGS]
CELL_WORDS = ("holds", "does not hold", "probably holds", "probably does not hold", "uncertain", "n/a")


@pytest.fixture(scope="module")
def result(hitachi_fit, hitachi_survey):
    """Every check on the bundled data; refits shared (prior refits forced so the
    refit path runs; model comparison with the two LOO-comparable alternatives)."""
    from smeintl.robustness import run_robustness

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_robustness(
            hitachi_fit,
            hitachi_survey,
            bootstrap_draws=300,
            refit_kwargs=TINY,
            models=("no_industry", "one_construct"),
            prior_refits="always",
            progress=False,
        )


@pytest.fixture(scope="module")
def no_fit_result(hitachi_survey):
    """The cheap checks without a fit (deterministic and frequentist only)."""
    from smeintl.robustness import CHECK_NAMES, run_robustness

    cheap = [n for n in CHECK_NAMES if n not in ("prior_sensitivity", "model_comparison")]
    return run_robustness(None, hitachi_survey, checks=cheap, bootstrap_draws=200, progress=False)


def _survey_subset(survey, rows=None, drop_firm_columns=()):
    from smeintl.data import Survey

    firms, items = survey.firms, survey.items
    if rows is not None:
        firms, items = firms.iloc[rows], items.iloc[rows]
    return Survey(survey.spec, firms.drop(columns=list(drop_firm_columns)).copy(), items.copy(), survey.source)


# ---------------------------------------------------------------------------
# registry, matrix, text, files
# ---------------------------------------------------------------------------
def test_registry_names():
    from smeintl.robustness import CHECK_NAMES, CHECKS

    assert CHECK_NAMES == (
        "factor_analysis", "industry_regression", "thresholds", "weights", "profiles",
        "leave_one_item_out", "leave_one_subdimension_out", "bootstrap", "prior_sensitivity",
        "model_comparison",
    )
    assert all(callable(CHECKS[n]) for n in CHECK_NAMES)


def test_every_check_runs_on_the_bundled_data(result):
    from smeintl.robustness import CHECK_NAMES

    assert [c.name for c in result.checks] == list(CHECK_NAMES)
    for c in result.checks:
        assert c.passed is not None, f"{c.name} did not run: {c.text}"
        assert isinstance(c.passed, bool)
        assert isinstance(c.table, pd.DataFrame) and len(c.table), c.name
        assert c.text.strip(), c.name
        assert c.variants, c.name
        assert set(c.findings) == set(KEYS), c.name
    assert not result.notes, result.notes


def test_matrix_one_row_per_finding_and_a_column_per_variant(result):
    m = result.matrix
    assert list(m.index) == KEYS
    assert m.index.name == "finding"
    variant_cols = [v for c in result.checks for v in c.variants]
    assert list(m.columns) == ["baseline: deterministic", "baseline: posterior", *variant_cols, "agreement"]
    assert len(variant_cols) == len(set(variant_cols))
    for col in m.columns[:-1]:
        for cell in m[col]:
            assert isinstance(cell, str) and cell.startswith(CELL_WORDS), (col, cell)
    for cell in m["agreement"]:
        assert "agree" in cell or cell == "no variant evaluated"
    # the cells carry the values: e.g. the share of independent firms
    assert m.loc["most_independent", "baseline: deterministic"].startswith("holds (0.")


def test_matrix_cells_match_the_check_variants(result):
    for c in result.checks:
        for v, cells in c.variants.items():
            for k, (holds, text) in cells.items():
                assert result.matrix.loc[k, v] == text
                assert holds is None or isinstance(holds, bool)
                if holds is None:
                    assert text.startswith("n/a")


def test_text_prints_the_matrix_and_every_check(result):
    t = result.text()
    for c in result.checks:
        assert f"[{c.name}]" in t
    for k in KEYS:
        assert k in t
    s = result.summary()
    assert list(s.index) == KEYS
    assert list(s.columns)[:2] == ["deterministic", "posterior"]


def test_write_robustness(result, tmp_path):
    from smeintl.robustness import output_names, write_robustness

    paths = write_robustness(result, tmp_path / "out")
    names = [p.name for p in paths]
    assert names == output_names([c.name for c in result.checks])
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    back = pd.read_csv(tmp_path / "out" / "robustness.csv", index_col="finding")
    assert list(back.index) == KEYS
    assert list(back.columns) == list(result.matrix.columns)
    fa = pd.read_csv(tmp_path / "out" / "factor_analysis.csv")
    assert len(fa) == 15


def test_unknown_check_and_bad_arguments(hitachi_survey):
    from smeintl.robustness import run_robustness

    with pytest.raises(ValueError, match="unknown check"):
        run_robustness(None, hitachi_survey, checks=["nope"], progress=False)
    with pytest.raises(ValueError, match="bootstrap_draws"):
        run_robustness(None, hitachi_survey, checks=["bootstrap"], bootstrap_draws=0, progress=False)
    with pytest.raises(ValueError, match="model variant"):
        run_robustness(None, hitachi_survey, checks=["model_comparison"], models=("x",), progress=False)


# ---------------------------------------------------------------------------
# frequentist counterparts
# ---------------------------------------------------------------------------
def test_factor_analysis(result, hitachi_spec):
    c = result.check("factor_analysis")
    t = c.table
    assert list(t["item"]) == list(hitachi_spec.item_names)
    for col in ("efa_doi", "efa_independence", "efa_primary", "ml_one_factor", "bayes_std_mean", "bayes_std_lo"):
        assert col in t.columns
    assert t["efa_matches"].mean() >= 0.8  # the synthetic data were generated with this structure
    assert (t["ml_one_factor"] > 0).all()
    assert c.variants["factor_analysis: factor scores"]["complementary"][0] is not None
    assert c.variants["factor_analysis: factor scores"]["most_independent"][1].startswith("n/a")


def test_industry_regression(result, hitachi_survey):
    c = result.check("industry_regression")
    t = c.table
    tests = t[t["kind"] == "test"]
    assert len(tests) == 4  # OLS and ordinal, two constructs
    assert tests["p"].between(0, 1).all()
    means = t[t["kind"] == "industry mean"]
    assert len(means) == 2 * len(hitachi_survey.group_names)
    assert means["latent_mean"].notna().all()  # hierarchical means beside the OLS ones
    # the OLS means are the industry means of the index
    ind = result.matrix  # noqa: F841 - the matrix has the variant columns
    for v in ("industry_regression: OLS HC3", "industry_regression: ordinal logit"):
        cells = c.variants[v]
        assert cells["industries_differ_doi"][0] is not None
        assert cells["industries_differ_independence"][1].startswith(("holds (p=", "does not hold (p="))
    assert (t["kind"] == "ordinal item").sum() == 9


def test_industry_means_equal_group_means(hitachi_survey):
    from smeintl.indices import compute_indices
    from smeintl.robustness import RobustnessContext, check_industry_regression

    ctx = RobustnessContext(None, hitachi_survey, hitachi_survey.spec, progress=False)
    c = check_industry_regression(ctx)
    ind = compute_indices(hitachi_survey).indices
    g = hitachi_survey.firms["industry"].astype(str)
    means = c.table[(c.table["kind"] == "industry mean") & (c.table["variable"] == "doi")]
    for r in means.itertuples():
        assert math.isclose(r.estimate, ind["doi"][g == r.industry].mean(), rel_tol=1e-9)
    assert "Hierarchical industry means not shown" in c.text


# ---------------------------------------------------------------------------
# method sensitivity of the deterministic typology
# ---------------------------------------------------------------------------
def test_thresholds(result):
    c = result.check("thresholds")
    assert list(c.variants) == ["thresholds: 0.4", "thresholds: 0.5", "thresholds: 0.6"]
    sh = c.table.set_index("variant")["share_independent"]
    assert sh["0.4"] >= sh["0.5"] >= sh["0.6"]
    # the spec's own thresholds are 0.5: that variant is the baseline
    base = result.matrix["baseline: deterministic"]
    for k in KEYS:
        assert c.variants["thresholds: 0.5"][k][1] == base[k]
    assert "quadrant_count_mnc_follower" in c.table.columns


def test_weights(result, hitachi_spec):
    c = result.check("weights")
    assert list(c.variants) == ["weights: equal", "weights: by item count", "weights: spec"]
    w = c.table.set_index("variant")["weights"]
    counts = [len(hitachi_spec.items_of(subdimension=s)) for s in hitachi_spec.construct("doi").subdimensions]
    assert w["by item count"].startswith("doi: " + ", ".join(str(n) for n in counts))
    assert "equal here" in c.text


def test_profiles_with_outcome(result):
    c = result.check("profiles")
    assert list(c.variants) == ["profiles: sub-dimension types", "profiles: 2-D + empirical ideal",
                                "profiles: 2-D standardized"]
    emp = c.variants["profiles: 2-D + empirical ideal"]
    assert all(h is not None for h, _ in emp.values())
    row = c.table.set_index("variant").loc["2-D + empirical ideal"]
    assert row["count_empirical"] > 0
    assert "doi=" in row["ideal"]


def test_profiles_without_outcome_says_why(hitachi_survey):
    from smeintl.robustness import run_robustness

    survey = _survey_subset(hitachi_survey, drop_firm_columns=["outcome"])
    res = run_robustness(None, survey, checks=["profiles"], progress=False)
    c = res.check("profiles")
    cells = c.variants["profiles: 2-D + empirical ideal"]
    assert all(t.startswith("n/a: no outcome column") for _h, t in cells.values())
    assert res.matrix.loc["most_independent", "profiles: 2-D + empirical ideal"].startswith("n/a: no outcome column")
    # the other definitions still run
    assert c.variants["profiles: sub-dimension types"]["no_mnc_followers"][0] is not None


def test_leave_one_item_out(result, hitachi_spec):
    c = result.check("leave_one_item_out")
    assert len(c.variants) == len(hitachi_spec.items)
    t = c.table.set_index("item")
    # intl_stage is the only item of the 'stage' sub-dimension: it goes with it
    assert t.loc["intl_stage", "subdimension_dropped"] == "stage"
    assert t.loc["export_share", "subdimension_dropped"] == ""


def test_leave_one_subdimension_out(result, hitachi_spec):
    c = result.check("leave_one_subdimension_out")
    assert list(c.variants) == [f"leave_one_subdimension_out: without {s}" for s in hitachi_spec.subdimension_names]


def test_spec_variants_roundtrip_and_validate(hitachi_spec):
    from smeintl.robustness import spec_to_toml, spec_variant
    from smeintl.spec import parse_spec

    back = parse_spec(spec_to_toml(hitachi_spec))
    for f in dataclasses.fields(hitachi_spec):
        if f.name not in ("text", "source", "_raw"):
            assert getattr(back, f.name) == getattr(hitachi_spec, f.name), f.name
    v, _ = spec_variant(hitachi_spec, "drop_item", "n_customers")
    assert "diversity" not in v.subdimension_names
    assert "diversity" not in v.subdimension_profiles.dimensions
    assert len(v.construct("independence").subdimension_weights) == 3
    v, _ = spec_variant(hitachi_spec, "priors", 2.0)
    assert v.priors["loading"]["sigma"] == 2 * hitachi_spec.priors["loading"]["sigma"]
    pr = hitachi_spec.priors["precision"]
    assert math.isclose(v.priors["precision"]["alpha"] / v.priors["precision"]["beta"], pr["alpha"] / pr["beta"])
    assert v.priors["lkj_eta"]["eta"] == hitachi_spec.priors["lkj_eta"]["eta"] / 2
    one, _ = spec_variant(hitachi_spec, "one_construct")
    assert len(one.constructs) == 1 and one.subdimension_names == hitachi_spec.subdimension_names
    none, reason = spec_variant(parse_spec(spec_to_toml(one)), "one_construct")
    assert none is None and "single construct" in reason


def test_all_ordinal_survey(hitachi_spec, hitachi_survey):
    from smeintl.robustness import spec_variant
    from smeintl.robustness.variants import ordinal_survey as _ordinal_survey

    spec_ord, _ = spec_variant(hitachi_spec, "all_ordinal")
    assert all(it.scale in ("likert", "stage") for it in spec_ord.items)
    sv = _ordinal_survey(spec_ord, hitachi_survey)
    x = sv.items["export_share"]
    raw = hitachi_survey.items["export_share"]
    assert x.isna().equals(raw.isna())
    ok = raw.notna()
    assert np.array_equal(x[ok], np.floor(4 * raw[ok] / 100 + 0.5))
    # reverse-coded items keep their raw direction (the reverse flag is applied by the method)
    assert spec_ord.item("top_customer_share").reverse
    assert sv.items["intl_stage"].equals(hitachi_survey.items["intl_stage"])


# ---------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------
def test_bootstrap_intervals(result):
    c = result.check("bootstrap")
    t = c.table.set_index("statistic")
    for k in ("share_internationalizing", "share_independent", "share_mnc_follower"):
        assert t.loc[k, "lo"] <= t.loc[k, "observed"] + 1e-12 or k == "share_mnc_follower"
        assert t.loc[k, "lo"] <= t.loc[k, "hi"]
    assert (t["B"] == 300).all()
    p = c.variants["bootstrap: firms"]["most_independent"]
    assert p[0] is True and p[1].startswith(("holds (", "probably holds ("))


def test_bootstrap_reproducible(hitachi_survey):
    from smeintl.robustness import RobustnessContext, check_bootstrap

    def boot(seed):
        ctx = RobustnessContext(None, hitachi_survey, hitachi_survey.spec, seed=seed, bootstrap_draws=200,
                                progress=False)
        return check_bootstrap(ctx)

    a, b, c = boot(1), boot(1), boot(2)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.variants == b.variants
    assert not a.table[["lo", "hi", "boot_mean"]].equals(c.table[["lo", "hi", "boot_mean"]])


# ---------------------------------------------------------------------------
# checks that cannot run say why
# ---------------------------------------------------------------------------
def test_too_few_firms_says_why(hitachi_fit, hitachi_survey):
    from smeintl.robustness import run_robustness

    tiny = _survey_subset(hitachi_survey, rows=list(range(8)))
    res = run_robustness(hitachi_fit, tiny, checks=["factor_analysis", "bootstrap", "prior_sensitivity",
                                                     "model_comparison", "thresholds"], progress=False)
    for name in ("factor_analysis", "bootstrap", "prior_sensitivity", "model_comparison"):
        c = res.check(name)
        assert c.passed is None, name
        assert "too few firms (8)" in c.text, (name, c.text)
        col = res.matrix[name]
        assert all(cell.startswith("n/a: too few firms (8)") for cell in col)
    # the deterministic checks still run on 8 firms
    assert res.check("thresholds").passed is not None
    # the given fit was made on other data: the posterior baseline says so
    assert res.matrix["baseline: posterior"].str.contains("different data").all()


def test_without_a_fit(no_fit_result):
    res = no_fit_result
    assert all(c.passed is not None for c in res.checks)
    assert res.matrix["baseline: posterior"].str.startswith("n/a: no fit given").all()
    fa = res.check("factor_analysis")
    assert "bayes_std_mean" not in fa.table.columns
    assert "no fit given" in fa.text


def test_model_checks_without_a_fit_say_why(hitachi_survey):
    from smeintl.robustness import run_robustness

    res = run_robustness(None, hitachi_survey, checks=["prior_sensitivity", "model_comparison"], progress=False)
    for c in res.checks:
        assert c.passed is None and "no fit given" in c.text


# ---------------------------------------------------------------------------
# model sensitivity (shared tiny refits)
# ---------------------------------------------------------------------------
def test_prior_sensitivity(result, hitachi_spec):
    c = result.check("prior_sensitivity")
    assert c.reference == "posterior"
    t = c.table
    sens = t[t["kind"] == "sensitivity"].set_index("quantity")
    for it in hitachi_spec.item_names:
        assert f"loading[{it}]" in sens.index
    assert "corr[doi,independence]" in sens.index and "group_sd[doi]" in sens.index
    assert (sens["prior"] >= 0).all() and (sens["likelihood"] >= 0).all()
    kh = t[t["kind"] == "k-hat"]
    assert len(kh) == 4 and kh["prior"].notna().all()
    assert "k-hat" in c.text
    refits = [v for v in c.variants if v.endswith("(refit)")]
    assert refits == ["prior_sensitivity: priors sd x2 (refit)", "prior_sensitivity: priors sd /2 (refit)"]
    for v in refits:
        assert c.variants[v]["most_independent"][0] is not None
    for v in ("prior_sensitivity: prior^0.5 (importance)", "prior_sensitivity: prior^2 (importance)"):
        assert v in c.variants


def test_model_comparison(result):
    c = result.check("model_comparison")
    t = c.table.set_index("model")
    assert list(t.index) == ["reference", "no_industry", "one_construct"]
    assert t["in_loo"].all()
    for col in ("elpd_loo", "se", "elpd_diff", "dse", "max_pareto_k", "integrated_elpd_loo", "integrated_elpd_diff"):
        assert t[col].notna().all(), col
    assert "same observations on the same scale" in c.text
    assert "compared on what they imply for the findings, not by LOO" in c.text
    one = c.variants["model_comparison: one construct"]
    assert one["complementary"][1].startswith("n/a: a one-construct model")
    assert one["most_independent"][0] is not None
    noind = c.variants["model_comparison: no industry"]
    assert noind["industries_differ_doi"][0] is None
    assert noind["complementary"][0] is not None


def test_failed_refit_is_reported_not_raised(hitachi_fit, hitachi_survey, monkeypatch):
    from smeintl.robustness import RobustnessContext, check_model_comparison

    small = hitachi_fit.isel(draw=slice(0, 40))
    small.attrs.update(hitachi_fit.attrs)

    def boom(self, *a, **k):
        raise RuntimeError("sampler exploded")

    monkeypatch.setattr(RobustnessContext, "refit", boom)
    ctx = RobustnessContext(small, hitachi_survey, hitachi_survey.spec, models=("no_industry",), progress=False)
    c = check_model_comparison(ctx)
    cells = c.variants["model_comparison: no industry"]
    assert all(t.startswith("n/a: the refit failed: RuntimeError: sampler exploded") for _h, t in cells.values())
    assert "not computed (fewer than two comparable fits)" in c.text
    assert c.passed is None


def test_cell_loglik_at_one_draw_equals_the_stored_loglik(hitachi_fit, hitachi_spec, hitachi_survey):
    """The integrated LOO evaluates ``cell_loglik`` at one draw over quadrature nodes; at
    the posterior latent scores that mode gives the fit's stored per-firm log-likelihood
    (computed per draw, and checked against PyMC's in ``test_measurement.py``)."""
    from smeintl.measurement import ItemLayout, cell_loglik, posterior_params

    P = posterior_params(hitachi_fit, hitachi_spec)
    lay = ItemLayout.from_spec(hitachi_spec)
    X = hitachi_survey.items[list(lay.names)].to_numpy(float)
    resp = hitachi_fit.log_likelihood["responses"].values.reshape(-1, X.shape[0])
    for s in (0, resp.shape[0] // 2, resp.shape[0] - 1):
        ll = cell_loglik(P, s, P["eta"][s][:, None, :], X, lay, None)[:, 0]
        np.testing.assert_allclose(ll, resp[s], rtol=0, atol=1e-10)


def test_integrated_loglik_converges(hitachi_fit, hitachi_spec, hitachi_survey):
    """The adaptive Gauss-Hermite quadrature of the integrated LOO has converged."""
    from smeintl.predictive import select_draws
    from smeintl.robustness import integrated_loglik

    n = hitachi_fit.posterior.sizes["chain"] * hitachi_fit.posterior.sizes["draw"]
    sel = select_draws(n, 10)
    a = integrated_loglik(hitachi_fit, hitachi_spec, hitachi_survey, group=True, draws=sel)
    b = integrated_loglik(hitachi_fit, hitachi_spec, hitachi_survey, group=True, nodes=31, draws=sel)
    assert a.shape == (sel.size, hitachi_survey.n_firms)
    assert np.isfinite(a).all()
    # single (draw, firm) terms may move by ~0.1 (0.34 for one of 410 terms on PyMC 6 / Python
    # 3.13, whose draws differ); on average the quadrature has converged
    assert np.abs(a - b).max() < 0.5
    assert np.abs(a - b).mean() < 0.01


@pytest.mark.slow
def test_default_suite_with_all_ordinal_model(hitachi_fit, hitachi_survey):
    """The default model variants (all-ordinal included) and default refit settings."""
    from smeintl.robustness import run_robustness

    res = run_robustness(hitachi_fit, hitachi_survey, checks=["model_comparison"], progress=False)
    c = res.check("model_comparison")
    t = c.table.set_index("model")
    assert "all_ordinal" in t.index
    assert not bool(t.loc["all_ordinal", "in_loo"])
    assert t.loc["all_ordinal", "observations"].startswith("different")
    cells = c.variants["model_comparison: all ordinal"]
    assert all(h is not None for h, _ in cells.values())


@pytest.mark.parametrize("spec_name", ["hitachi", "continuous_two", "binary_one"])
def test_vectorized_log_prior_matches_pymc(spec_name):
    """The power-scaling check's log prior, vectorized over the draws, equals PyMC's
    ``compute_log_prior`` summed over the same variables, draw by draw."""
    import pymc as pm

    from conftest import BUNDLE_DIR, SPECS
    from smeintl import compat
    from smeintl import load_spec
    from smeintl.measurement import MeasurementModel, is_score_variable
    from smeintl.robustness.prior_sensitivity import _log_prior_vectorized
    from smeintl.simulate import simulate_survey

    spec = load_spec(BUNDLE_DIR / "hitachi.toml" if spec_name == "hitachi" else SPECS / f"{spec_name}.toml")
    survey = simulate_survey(spec, 30, n_groups=3, random_seed=4).survey
    model = MeasurementModel(spec, parameterization="latent").build(survey)
    names = [v.name for v in model.free_RVs if v.name != "group_z" and not is_score_variable(v.name)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = compat.group(pm.sample_prior_predictive(draws=6, model=model,
                                                        var_names=[v.name for v in model.free_RVs], random_seed=5),
                             "prior")
        for name in prior.data_vars:  # forward draws ignore the ordered transform: order them
            if "cutpoints" in name:
                prior[name].values[...] = np.sort(prior[name].values, axis=-1)
        want = pm.compute_log_prior(compat.to_arviz(compat.new_fit({"posterior": prior})), model=model, var_names=names,
                                    extend_inferencedata=False, progressbar=False)
    want = sum(want[v].sum([d for d in want[v].dims if d not in ("chain", "draw")]) for v in want.data_vars)
    got = _log_prior_vectorized(prior, model, names)
    assert got.dims == ("chain", "draw") and got.shape == (1, 6)
    assert np.isfinite(got.values).all()
    np.testing.assert_allclose(got.values, want.values, rtol=1e-10)
