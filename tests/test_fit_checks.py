"""Model checks of a fit (smeintl.measurement.fit_checks): item, pair and global posterior
predictive p-values for every family, the pictures and the report section.

The default suite checks the bundled fit (every family but continuous), one small
all-continuous and one small ordinal survey, each simulated with and without a
cross-loading that the model leaves out; the slow tests fit the Holzinger-Swineford
three-factor CFA and compare with lavaan's fit indices.
"""

from __future__ import annotations

import json
import time
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

from smeintl import plots
from smeintl.data import survey_from_frame
from smeintl.families import family_of
from smeintl.measurement import MeasurementModel
from smeintl.measurement.fit_checks import FitChecks, fit_checks, pairwise_spearman, two_sided_ppp
from smeintl.spec import parse_spec

FIT = dict(draws=250, tune=300, chains=2, random_seed=5, progressbar=False)


# ---------------------------------------------------------------------------- small surveys
def _spec(scale: str) -> str:
    rng = "min = 0\nmax = 10\n" if scale == "continuous" else "min = 1\nmax = 5\n"
    items = "".join(f'\n[[items]]\nname = "x{k}"\nconstruct = "{"f1" if k <= 3 else "f2"}"\nscale = "{scale}"\n{rng}'
                    for k in range(1, 7))
    return ('[instrument]\nname = "checks"\nid_column = "id"\ngroup_column = ""\noutcome_column = ""\n'
            'extra_columns = []\n\n[[constructs]]\nname = "f1"\n\n[[constructs]]\nname = "f2"\n' + items)


def _frame(scale: str, cross: float, seed: int, F: int = 300) -> pd.DataFrame:
    """Two correlated factors, three items each; ``cross``: item x4 (of f2) also loads on f1."""
    rng = np.random.default_rng(seed)
    eta = rng.multivariate_normal([0, 0], [[1, 0.3], [0.3, 1]], F)
    out: dict[str, object] = {"id": [f"p{f}" for f in range(F)]}
    for k in range(6):
        lin = 0.8 * eta[:, k // 3] + (cross * eta[:, 0] if k == 3 else 0.0)
        if scale == "continuous":
            out[f"x{k + 1}"] = np.round(5 + 1.5 * (lin + 0.6 * rng.standard_normal(F)), 3)
        else:  # the ordered logit the model fits, cutpoints -2, -0.7, 0.7, 2
            out[f"x{k + 1}"] = 1 + np.searchsorted([-2.0, -0.7, 0.7, 2.0], 1.8 * lin + rng.logistic(size=F))
    return pd.DataFrame(out)


def _fit(scale: str, cross: float, seed: int):
    spec = parse_spec(_spec(scale), f"{scale}.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec, MeasurementModel(spec).fit(survey_from_frame(_frame(scale, cross, seed), spec), **FIT)


@pytest.fixture(scope="module")
def continuous_fits():
    spec, right = _fit("continuous", 0.0, 5)
    _, wrong = _fit("continuous", 0.6, 5)
    return spec, right, wrong


@pytest.fixture(scope="module")
def ordinal_fits():
    spec, right = _fit("likert", 0.0, 12)
    _, wrong = _fit("likert", 1.2, 12)
    return spec, right, wrong


@pytest.fixture(scope="module")
def bundled_checks(hitachi_fit, hitachi_spec):
    t = time.perf_counter()
    checks = fit_checks(hitachi_fit, hitachi_spec, seed=3)
    return checks, time.perf_counter() - t


def _common_shape_checks(checks: FitChecks, spec) -> None:
    I = len(spec.items)
    n_stats = sum(len(it.family.check_statistic_names(it)) for it in spec.items)
    assert len(checks.items) == n_stats
    assert list(dict.fromkeys(checks.items["item"])) == list(spec.item_names)
    assert len(checks.pairs) == I * (I - 1) // 2
    for tab in (checks.items, checks.pairs):
        p = tab["ppp"].dropna()
        assert len(p) and ((p >= 0) & (p <= 1)).all()
        assert (tab["flagged"] == (tab["ppp"] < checks.alpha)).all()
    g = checks.global_checks.set_index("check")
    assert 0 <= checks.global_ppp <= 1
    assert ((g["lower"] <= g["estimate"]) | g["lower"].isna()).all()
    assert ((g["estimate"] <= g["upper"]) | g["upper"].isna()).all()
    n = checks.settings["n_draws"]
    for key in ("d_obs", "d_rep", "srmr", "srmr_rep", "srmr_adjusted"):
        assert checks.draws[key].shape in ((n,), (checks.settings.get("n_draws_global", n),))
    res = checks.residual_matrix()
    assert res.shape == (I, I) and np.allclose(res.to_numpy(), res.to_numpy().T, equal_nan=True)
    np.testing.assert_allclose(checks.pairs["residual"], checks.pairs["observed"] - checks.pairs["replicated"])
    s = checks.summary()
    assert list(s["level"]) == ["global"] * len(g) + ["item", "pair"]
    d = checks.to_dict()
    json.dumps(d)  # plain values only
    assert len(d["items"]) == len(checks.items) and d["method"] == checks.method
    text = checks.text()
    assert "Global" in text and "Item pairs" in text
    for fn in plots.CHECK_FIGURES.values():
        assert isinstance(fn(checks), Figure)


# ---------------------------------------------------------------------------- pieces
def test_two_sided_ppp():
    rep = np.arange(100.0)[:, None] * np.ones((1, 3))
    obs = np.array([-1.0, 49.5, 200.0])
    np.testing.assert_allclose(two_sided_ppp(rep, obs), [0.0, 1.0, 0.0])
    np.testing.assert_allclose(two_sided_ppp(rep, np.array([9.0, 89.0, np.nan]))[:2], [0.2, 0.22])
    assert np.isnan(two_sided_ppp(rep, np.array([1.0, 1.0, np.nan]))[2])
    # a statistic the same in the data and every replicate is no evidence against the model
    assert two_sided_ppp(np.zeros((10, 1)), np.zeros(1))[0] == 1.0


def test_pairwise_spearman_matches_scipy_with_ties_and_missing():
    rng = np.random.default_rng(1)
    X = rng.integers(1, 6, size=(80, 3)).astype(float)
    X[:, 1] += X[:, 0]
    X[rng.random(X.shape) < 0.15] = np.nan
    pairs = [(0, 1), (0, 2), (1, 2)]
    r, n = pairwise_spearman(X, np.isfinite(X), pairs)
    for k, (a, b) in enumerate(pairs):
        m = np.isfinite(X[:, a]) & np.isfinite(X[:, b])
        assert n[k] == m.sum()
        assert r[k] == pytest.approx(stats.spearmanr(X[m, a], X[m, b]).statistic, abs=1e-12)
    # a stack of surveys: one correlation per survey
    stack = np.stack([X, X[::-1]])
    rs, _ = pairwise_spearman(stack, np.isfinite(X), pairs)
    assert rs.shape == (2, 3) and np.allclose(rs[0], r)


def test_family_statistics_and_cells():
    from smeintl.spec import Item

    def item(scale, lo, hi):
        return Item("q", "c", "c", scale, float(lo), float(hi))

    v = np.array([[1, 2, 2, 5, 5, 5], [1, 1, 1, 1, 1, 2]], dtype=float)
    it = item("likert", 1, 5)
    st = family_of("likert").check_statistics(v, it)
    assert family_of("likert").check_statistic_names(it) == ["share =1", "share =2", "share =3", "share =4",
                                                             "share =5", "mean", "sd"]
    np.testing.assert_allclose(st[0], [1 / 6, 2 / 6, 0, 0, 3 / 6, 20 / 6, np.std(v[0], ddof=1)])
    codes, k = family_of("likert").check_cells(np.array([1, 5, np.nan]), it, v[0])
    assert k == 5 and codes.tolist() == [0, 4, -1]
    b = item("binary", 0, 1)
    assert family_of("binary").check_statistics(np.array([0, 1, 1, 1.0]), b).tolist() == [0.75]
    pc = item("percent", 0, 100)
    np.testing.assert_allclose(family_of("percent").check_statistics(np.array([0, 0, 50, 100.0]), pc)[:3],
                               [0.5, 0.25, 37.5])
    assert family_of("percent").check_cells(np.array([0, 3, 100.0]), pc, None)[0].tolist() == [0, 1, 2]
    ct = item("count", 0, 10)
    assert family_of("count").check_statistic_names(ct) == ["share =0", "mean", "sd"]
    assert family_of("count").check_statistics(np.array([0, 0, 3, 5.0]), ct)[0] == 0.5
    codes, k = family_of("count").check_cells(np.array([0, 1, 40, np.nan]), ct, None)
    assert codes[0] == 0 and codes[2] == k - 1 and codes[3] == -1
    cn = item("continuous", 0, 10)
    obs = np.arange(100.0)
    codes, k = family_of("continuous").check_cells(obs, cn, obs)
    assert k == 5 and np.bincount(codes).tolist() == [20] * 5
    assert family_of("continuous").check_statistic_names(cn) == ["mean", "sd", "skewness"]


# ---------------------------------------------------------------------------- the bundled fit
def test_checks_of_the_bundled_fit(bundled_checks, hitachi_fit, hitachi_spec):
    checks, seconds = bundled_checks
    assert checks.method == "pairwise"
    assert list(checks.global_checks["check"]) == ["rank_lr", "pairwise_g2", "srmr", "srmr_adjusted"]
    assert checks.global_check == "rank_lr" and checks.draws["g2_obs"].shape == checks.draws["d_obs"].shape
    # the bundled survey has missing answers: the rank likelihood ratio uses the complete cases and says so
    assert checks.settings["n_complete"] < 41 and any("answer every item" in n for n in checks.notes)
    _common_shape_checks(checks, hitachi_spec)
    # every family's statistics are there
    stats_of = checks.items.groupby("item")["statistic"].apply(list)
    assert stats_of["intl_stage"][:5] == ["share =0", "share =1", "share =2", "share =3", "share =4"]
    assert stats_of["export_share"] == ["share =0", "share =100", "mean", "sd"]
    assert stats_of["n_countries"] == ["share =0", "mean", "sd"]
    # the synthetic data's DOI items go together more than the model says
    top = checks.pairs.sort_values("residual", ascending=False).iloc[0]
    assert {top.item_a, top.item_b} <= {"intl_stage", "export_share", "n_countries"} and top.flagged
    # the spec stored in the fit gives the same checks; the same seed the same numbers
    again = fit_checks(hitachi_fit, seed=3)
    pd.testing.assert_frame_equal(again.global_checks, checks.global_checks)
    pd.testing.assert_frame_equal(again.items, checks.items)
    assert seconds < 30  # a few seconds on an idle machine (41 firms, 15 items, 500 draws)


def test_report_section(bundled_checks, hitachi_spec):
    from smeintl.report import REPORT_SECTIONS
    from smeintl.report.blocks import _Builder
    from smeintl.report.render import _render_md

    keys = [s.key for s in REPORT_SECTIONS]
    assert keys.index("checks") == keys.index("model") + 1
    section = REPORT_SECTIONS[keys.index("checks")]
    checks, _ = bundled_checks
    b = _Builder()
    inputs = SimpleNamespace(spec=hitachi_spec, checks=checks)
    assert section.applies(inputs)
    section.render(b, inputs)
    md = _render_md("t", "s", b.blocks)
    assert "Global checks" in md and "pairwise_g2" in md and "How to read" in md
    assert "figures/residual_correlations.png" in md
    assert plots.CHECK_CAPTIONS["residual_correlations"] in md
    assert set(b.figures) == {"residual_correlations"}
    # without checks the section says so
    none = SimpleNamespace(spec=hitachi_spec, checks=None)
    assert not section.applies(none) and section.absent == "The model checks were not run."
    assert not section.applies(SimpleNamespace(spec=hitachi_spec))  # report inputs without the field
    b2 = _Builder()
    section.render(b2, none)
    assert "not run" in _render_md("t", "s", b2.blocks)


def test_checks_need_the_predictive_groups(hitachi_fit):
    from smeintl import compat

    post = compat.group(hitachi_fit, "posterior")
    with pytest.raises(ValueError, match="posterior_predictive"):
        fit_checks(compat.new_fit({"posterior": post}, hitachi_fit.attrs), seed=1)


# ---------------------------------------------------------------------------- misspecification
def test_continuous_checks_find_a_left_out_cross_loading(continuous_fits):
    spec, right, wrong = continuous_fits
    good, bad = fit_checks(right, seed=1), fit_checks(wrong, seed=1)
    for c in (good, bad):
        assert c.method == "normal"
        _common_shape_checks(c, spec)
        g = c.global_checks.set_index("check")
        assert list(g.index) == ["chi2", "srmr", "srmr_adjusted", "brmsea", "bcfi", "btli"]
        # p* = 6 means + 21 covariances; 19 free parameters, pD close to it
        assert c.settings["p_star"] == 27 and c.settings["n_free_parameters"] == 19
        assert abs(c.settings["pd"] - 19) < 4 and abs(c.settings["pd_null"] - 12) < 3
    assert good.global_ppp > 0.05
    assert bad.global_ppp < 0.05
    gg, gb = good.global_checks.set_index("check"), bad.global_checks.set_index("check")
    assert gb.loc["brmsea", "estimate"] > gg.loc["brmsea", "estimate"] + 0.05
    assert gb.loc["bcfi", "estimate"] < gg.loc["bcfi", "estimate"]
    assert gb.loc["srmr", "estimate"] > gg.loc["srmr", "estimate"]
    assert gg.loc["bcfi", "upper"] <= 1.0 + 1e-12
    # the same checks with pD counted
    counted = fit_checks(right, seed=1, pd_method="count")
    assert counted.settings["pd"] == 19 and counted.settings["pd_null"] == 12


def test_ordinal_checks_find_a_left_out_cross_loading(ordinal_fits):
    spec, right, wrong = ordinal_fits
    good, bad = fit_checks(right, seed=1), fit_checks(wrong, seed=1)
    for c in (good, bad):
        assert c.method == "pairwise"
        _common_shape_checks(c, spec)
        assert set(c.settings["cells"].values()) == {2}
    assert good.global_ppp > 0.05
    assert bad.global_ppp < 0.05
    gg, gb = good.global_checks.set_index("check"), bad.global_checks.set_index("check")
    assert gb.loc["srmr", "ppp"] < 0.05 < gg.loc["srmr", "ppp"]
    # the full tables: more cells per item
    full = fit_checks(right, seed=1, table_cells=None, global_draws=50)
    assert set(full.settings["cells"].values()) == {5}


# ---------------------------------------------------------------------------- Holzinger-Swineford
@pytest.mark.slow
def test_holzinger_swineford_against_lavaan():
    """lavaan's ML fit of the three-factor CFA: chi-square 85.3 on 24 df, RMSEA 0.092,
    CFI 0.931, TLI 0.896, SRMR 0.065."""
    from semopy.examples import holzinger39

    from smeintl.syntax import spec_from_model

    frame = holzinger39.get_data().reset_index(drop=True)
    built = spec_from_model("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9", frame,
                            scales={f"x{k}": "continuous" for k in range(1, 10)}, id_column="id")
    survey = survey_from_frame(frame, built.spec, source="holzinger39")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = MeasurementModel(built.spec, group=False).fit(survey, draws=1000, tune=1000, chains=2, random_seed=1,
                                                            progressbar=False)
    c = fit_checks(fit, seed=1, max_draws=None)
    g = c.global_checks.set_index("check")
    assert c.global_ppp < 0.05
    # SRMR: the point value is lavaan's; the per-draw values less their posterior spread bracket it
    assert c.settings["srmr_point"] == pytest.approx(0.065, abs=0.003)
    assert g.loc["srmr_adjusted", "lower"] < 0.065 < g.loc["srmr_adjusted", "upper"]
    # each draw's own SRMR is larger than the point value (the residuals of a draw add its spread)
    assert g.loc["srmr", "estimate"] > c.settings["srmr_point"]
    for key, ml in (("brmsea", 0.092), ("bcfi", 0.931), ("btli", 0.896)):
        assert g.loc[key, "lower"] < ml < g.loc[key, "upper"], key
    assert abs(c.settings["pd"] - 30) < 3 and c.settings["p_star"] == 54
