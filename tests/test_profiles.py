"""Tests of smeintl.profiles: golden distances and types, deviation options, hybrid
labels, quadrant rule vs nearest corner (boundaries included), the empirical ideal, the
baseline test and the whole deterministic run."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smeintl.indices import index_arrays
from smeintl.profiles import (
    BaselineResult,
    DeterministicResult,
    baseline_test,
    classify,
    empirical_ideal,
    max_distance,
    pearson_r,
    profile_deviation,
    profile_fit,
    quadrant_codes,
    run_deterministic,
    type_arrays,
)
from smeintl.spec import load_spec, parse_spec

GOLDEN = Path(__file__).parent / "data" / "golden"
RTOL = 1e-12
TYPES = ("independent_international", "independent_domestic", "mnc_follower", "dependent_domestic")


# ---------------------------------------------------------------------------
# fixtures and helpers
def _frac(v) -> float:
    return np.nan if v == "NA" else float(Fraction(v))


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    return pd.read_csv(GOLDEN / "expected_firms.csv", dtype=str, keep_default_na=False).set_index("firm_id")


@pytest.fixture(scope="module")
def gspec():
    return load_spec(GOLDEN / "golden_spec.toml")


@pytest.fixture(scope="module")
def hspec():
    return load_spec()


def _survey(spec, df: pd.DataFrame):
    from smeintl.data import survey_from_frame

    return survey_from_frame(df, spec)


@pytest.fixture(scope="module")
def gframe() -> pd.DataFrame:
    return pd.read_csv(GOLDEN / "survey.csv", dtype={"firm_id": str, "industry": str})


@pytest.fixture(scope="module")
def gsurvey(gspec, gframe):
    return _survey(gspec, gframe)


@pytest.fixture(scope="module")
def gresult(gsurvey) -> DeterministicResult:
    return run_deterministic(gsurvey)


def _hitachi_frame(hspec, n: int, seed: int, outcome: bool = True) -> pd.DataFrame:
    """A random in-range Hitachi survey (for smoke tests)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"firm_id": [f"H{k:03d}" for k in range(n)],
                       "industry": rng.choice(["metal", "electrical", "plastics"], size=n)})
    lat = rng.uniform(0, 1, size=(n, 2))
    for it in hspec.items:
        c = 0 if it.construct == "doi" else 1
        u = np.clip(lat[:, c] + rng.normal(0, 0.15, n), 0, 1)
        if it.reverse:
            u = 1 - u
        if it.scale in ("likert", "stage"):
            v = np.round(it.min + u * (it.max - it.min))
        elif it.scale == "count":
            v = np.round(u * it.cap)
        else:
            v = np.round(u * 100, 1)
        v = v.astype(float)
        v[rng.random(n) < 0.05] = np.nan
        df[it.name] = v
    if outcome:
        df["outcome"] = np.round(5 * lat[:, 0] + 5 * lat[:, 1] + rng.normal(0, 1, n), 2)
    return df


# ---------------------------------------------------------------------------
# golden: distances, fit, types, flags
def test_golden_distances_and_fit(gresult, expected):
    f = gresult.firms.set_index("firm_id")
    for t in TYPES:
        d2 = np.array([_frac(v) for v in expected[f"d2_{t}"]])
        np.testing.assert_allclose(f[f"dist_{t}"].to_numpy(), np.sqrt(d2), rtol=RTOL, atol=0, err_msg=t)
        # corner ideals, unit weights: D_max = sqrt(2)
        np.testing.assert_allclose(f[f"fit_{t}"].to_numpy(), 1 - np.sqrt(d2) / math.sqrt(2), rtol=RTOL, atol=0)


def test_golden_types_and_flags(gresult, expected):
    f = gresult.firms.set_index("firm_id")
    exp_type = [None if v == "NA" else v for v in expected["type"]]
    got = [None if pd.isna(v) else v for v in f["type"]]
    assert got == exp_type
    assert list(f["type"].cat.categories) == list(TYPES)
    for col in ("internationalizing", "independent"):
        exp = [None if v == "NA" else v == "True" for v in expected[col]]
        assert [None if pd.isna(v) else bool(v) for v in f[col]] == exp, col
    assert f["independent"].dtype == "boolean"


def test_golden_subdimension_profiles(gresult, expected):
    f = gresult.firms.set_index("firm_id")
    for t in ("high", "low"):
        d2 = np.array([_frac(v) for v in expected[f"subd2_{t}"]])
        np.testing.assert_allclose(f[f"subdist_{t}"].to_numpy(), np.sqrt(d2), rtol=RTOL, atol=0)
    assert [None if pd.isna(v) else v for v in f["subtype"]] == [None if v == "NA" else v for v in expected["subtype"]]


def test_golden_firm_table_columns(gresult, gspec):
    cols = list(gresult.firms.columns)
    assert cols[:2] == ["firm_id", "industry"]
    for it in gspec.item_names:
        assert f"s_{it}" in cols
    for c in ["stage", "perf", "dep", "tech", "doi", "independence", "sullivan_doi", "sullivan_independence",
              "type", "internationalizing", "independent", "subtype", "outcome", "empirical_dist", "empirical_top"]:
        assert c in cols
    assert len(gresult.firms) == 6


def test_golden_summary(gresult):
    s = gresult.summary
    json.dumps(s)  # JSON-serializable
    assert s["n_firms"] == 6
    t = s["types"]
    assert t["names"] == list(TYPES)
    assert t["counts"] == {"independent_international": 2, "independent_domestic": 0, "mnc_follower": 1,
                           "dependent_domestic": 2}
    assert t["n_typed"] == 5 and t["n_untyped"] == 1
    assert t["shares"]["independent_international"] == pytest.approx(2 / 5)
    assert t["shares"]["independent_domestic"] == 0
    by = s["types_by_industry"]
    assert set(by) == {"A", "B", "C"}
    assert by["A"]["counts"]["independent_international"] == 2
    assert by["B"]["counts"] == {"independent_international": 0, "independent_domestic": 0, "mnc_follower": 1,
                                 "dependent_domestic": 2}
    assert by["C"]["n"] == 1 and by["C"]["n_typed"] == 0 and set(by["C"]["counts"]) == set(TYPES)
    assert by["C"]["shares"]["mnc_follower"] is None
    fl = s["flags"]
    assert (fl["internationalizing"]["count"], fl["internationalizing"]["n"]) == (4, 6)
    assert (fl["independent"]["count"], fl["independent"]["n"]) == (2, 5)
    ind = s["indices"]["by_industry"]
    assert ind["A"]["doi"]["mean"] == pytest.approx(121 / 160, rel=RTOL)
    assert ind["B"]["doi"]["mean"] == pytest.approx(1 / 4, rel=RTOL)
    assert ind["C"]["doi"]["mean"] == 1.0 and ind["C"]["doi"]["sd"] is None
    assert ind["A"]["independence"]["mean"] == pytest.approx(33 / 40, rel=RTOL)
    assert ind["C"]["independence"]["n"] == 0 and ind["C"]["independence"]["mean"] is None
    assert s["subtypes"]["counts"] == {"high": 2, "low": 2} and s["subtypes"]["n_untyped"] == 2
    assert set(s["alpha"]) == {"doi", "independence"}
    assert s["quadrant_agreement"] == {"n": 5, "agree": 5}
    # outcome: empirical ideal = F2 alone, underpowered baseline
    o = s["outcome"]
    assert o["available"]
    emp = o["relation"]["empirical"]
    assert emp["calibration_firms"] == ["F2"] and emp["n_valid"] == 5 and emp["n_test"] == 4
    np.testing.assert_allclose(emp["ideal"], [39 / 40, 73 / 80], rtol=RTOL)
    b = o["baseline"]
    assert b["underpowered"] is True and b["p_uniform"] is None and b["p_calibration"] is None
    assert b["verdict"].startswith("no verdict")
    assert "fewer than 20" in b["reason"] and "fewer than 3" in b["reason"]
    text = gresult.summary_text()
    assert "independent_international" in text and "no verdict" in text and "Cronbach" in text


def test_golden_empirical_columns(gresult):
    f = gresult.firms.set_index("firm_id")
    assert f["empirical_top"].tolist() == [False, True, False, False, False, False]
    ideal = np.array([39 / 40, 73 / 80])
    np.testing.assert_allclose(
        f.loc["F1", "empirical_dist"], np.hypot(43 / 80 - ideal[0], 59 / 80 - ideal[1]), rtol=RTOL
    )
    assert np.isnan(f.loc["F6", "empirical_dist"])


def test_hybrid_labelling(gsurvey, gspec):
    res = run_deterministic(gsurvey, spec=gspec.replace(hybrid_epsilon=0.0))
    f = res.firms.set_index("firm_id")
    assert f.loc["F5", "type"] == "hybrid"  # exact tie mnc_follower / dependent_domestic
    assert f.loc["F1", "type"] == "independent_international"
    assert "hybrid" in res.summary["types"]["counts"] and res.summary["types"]["counts"]["hybrid"] == 1
    # a wide epsilon: F1's two nearest (181/640 vs 229/640) within 0.1 in distance
    res = run_deterministic(gsurvey, spec=gspec.replace(hybrid_epsilon=0.1))
    assert res.firms.set_index("firm_id").loc["F1", "type"] == "hybrid"
    assert res.firms.set_index("firm_id").loc["F3", "type"] == "dependent_domestic"  # 0.1 vs 0.9


def test_standardize_and_squared_options(gsurvey, gspec, gresult):
    sq = run_deterministic(gsurvey, spec=gspec.replace(squared=True)).firms
    for t in TYPES:
        np.testing.assert_allclose(sq[f"dist_{t}"], gresult.firms[f"dist_{t}"] ** 2, rtol=RTOL)
        np.testing.assert_allclose(sq[f"fit_{t}"], gresult.firms[f"fit_{t}"], rtol=RTOL)  # fit: plain distance
    z = run_deterministic(gsurvey, spec=gspec.replace(standardize=True)).firms
    P = gresult.firms[["doi", "independence"]].to_numpy()
    ok = ~np.isnan(P).any(axis=1)
    mean, sd = P[ok].mean(axis=0), P[ok].std(axis=0, ddof=1)
    for k, t in enumerate(TYPES):
        corner = np.array([[1, 1], [0, 1], [1, 0], [0, 0]][k], dtype=float)
        d = np.sqrt((((P - mean) / sd - (corner - mean) / sd) ** 2).sum(axis=1))
        np.testing.assert_allclose(z[f"dist_{t}"], d, rtol=RTOL)
        np.testing.assert_allclose(z[f"fit_{t}"], gresult.firms[f"fit_{t}"], rtol=RTOL)


# ---------------------------------------------------------------------------
# deviation, fit, classify
def test_profile_deviation_by_hand():
    X = np.array([[0.2, 0.6], [1.0, 0.0], [np.nan, 0.5]])
    ideals = np.array([[0.0, 1.0], [0.5, 0.5]])
    w = np.array([[1.0, 2.0], [3.0, 1.0]])
    D = profile_deviation(X, ideals, w)
    assert D.shape == (3, 2)
    np.testing.assert_allclose(D[0], [math.sqrt(0.04 + 2 * 0.16), math.sqrt(3 * 0.09 + 0.01)], rtol=RTOL)
    np.testing.assert_allclose(D[1], [math.sqrt(1 + 2), math.sqrt(3 * 0.25 + 0.25)], rtol=RTOL)
    assert np.isnan(D[2]).all()
    np.testing.assert_allclose(profile_deviation(X, ideals, w, squared=True), D**2, rtol=RTOL)
    # default weights 1; a single ideal as a 1-D vector
    np.testing.assert_allclose(profile_deviation(X[:2], [0.0, 0.0])[:, 0], [math.hypot(0.2, 0.6), 1.0], rtol=RTOL)


def test_profile_deviation_standardized_by_hand():
    X = np.array([[0.0, 0.0], [0.5, 1.0], [1.0, 0.5], [np.nan, 0.3]])
    ideal = np.array([[1.0, 1.0]])
    D = profile_deviation(X, ideal, standardize=True)
    C = X[:3]
    m, s = C.mean(axis=0), C.std(axis=0, ddof=1)  # complete profiles only
    np.testing.assert_allclose(D[:3, 0], np.sqrt((((C - m) / s - (ideal[0] - m) / s) ** 2).sum(axis=1)), rtol=RTOL)
    assert np.isnan(D[3, 0])


def test_profile_fit_and_max_distance():
    ideals = np.array([[1.0, 1.0], [0.5, 0.25], [0.0, 1.0]])
    w = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 1.0]])
    Dm = max_distance(ideals, w)
    np.testing.assert_allclose(Dm, [math.sqrt(2), math.sqrt(0.25 + 2 * 0.75**2), math.sqrt(2)], rtol=RTOL)
    X = np.array([[0.0, 0.0], [0.5, 0.25], [1.0, 1.0]])
    fit = profile_fit(profile_deviation(X, ideals, w), ideals, w)
    np.testing.assert_allclose(fit[0, 0], 0.0, atol=1e-15)  # farthest corner
    np.testing.assert_allclose(fit[1, 1], 1.0)  # at the ideal
    assert ((fit >= -1e-15) & (fit <= 1 + 1e-15)).all()
    fit_sq = profile_fit(profile_deviation(X, ideals, w, squared=True), ideals, w, squared=True)
    np.testing.assert_allclose(fit_sq, 1 - (1 - fit) ** 2, rtol=1e-12, atol=1e-15)


def test_classify_ties_hybrid_nan():
    D = np.array([[0.3, 0.3, 0.5], [0.5, 0.2, 0.21], [0.1, np.nan, 0.4], [0.4, 0.1, 0.9]])
    np.testing.assert_array_equal(classify(D), [0, 1, -1, 1])
    np.testing.assert_array_equal(classify(D, hybrid_epsilon=0.0), [3, 1, -1, 1])
    np.testing.assert_array_equal(classify(D, hybrid_epsilon=0.02), [3, 3, -1, 1])
    np.testing.assert_array_equal(classify(D, hybrid_epsilon=0.31), [3, 3, -1, 3])
    assert classify(D).dtype == np.int64


def test_profile_functions_broadcast_equal_loop(hspec):
    rng = np.random.default_rng(5)
    F, J = 12, 2
    X = rng.uniform(size=(3, 4, F, J))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[1, 2, 3] = [0.5, 0.7]  # boundary point
    I = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    W = np.array([[1.0, 2.0]] * 4)
    for kw in ({}, {"standardize": True}, {"squared": True}, {"standardize": True, "squared": True}):
        D = profile_deviation(X, I, W, **kw)
        fit = profile_fit(D, I, W, squared=kw.get("squared", False))
        codes = classify(D, hybrid_epsilon=0.05)
        assert D.shape == (3, 4, F, 4) and codes.shape == (3, 4, F)
        for a in range(3):
            for b in range(4):
                np.testing.assert_array_equal(D[a, b], profile_deviation(X[a, b], I, W, **kw))
                np.testing.assert_array_equal(fit[a, b], profile_fit(D[a, b], I, W, squared=kw.get("squared", False)))
                np.testing.assert_array_equal(codes[a, b], classify(D[a, b], hybrid_epsilon=0.05))
    # per-draw ideals (..., K, J) broadcast too
    Id = rng.uniform(size=(3, 4, 4, J))
    D = profile_deviation(X, Id, W)
    for a in range(3):
        for b in range(4):
            np.testing.assert_array_equal(D[a, b], profile_deviation(X[a, b], Id[a, b], W))
    # the spec-level wrappers
    indices = rng.uniform(size=(3, 4, F, 2))
    indices[0, 0, 0, 1] = np.nan
    ta = type_arrays(indices, hspec)
    q = quadrant_codes(indices, hspec)
    for a in range(3):
        for b in range(4):
            one = type_arrays(indices[a, b], hspec)
            for k in ("distance", "fit", "type", "flags", "flag_valid", "internationalizing", "independent"):
                np.testing.assert_array_equal(ta[k][a, b], one[k], err_msg=k)
            np.testing.assert_array_equal(q[a, b], quadrant_codes(indices[a, b], hspec))


def test_type_arrays_nan_safe(hspec):
    ind = np.array([[0.7, np.nan], [np.nan, np.nan], [0.2, 0.9]])
    ta = type_arrays(ind, hspec)
    np.testing.assert_array_equal(ta["type"], [-1, -1, 1])
    np.testing.assert_array_equal(ta["internationalizing"], [True, False, False])
    np.testing.assert_array_equal(ta["independent"], [False, False, True])
    np.testing.assert_array_equal(ta["flag_valid"], [[True, False], [False, False], [True, True]])
    assert ta["flag_names"] == ("internationalizing", "independent")
    assert ta["type_names"] == TYPES
    assert np.isnan(ta["distance"][:2]).all()


# ---------------------------------------------------------------------------
# quadrant rule vs nearest corner
def _reordered(spec, order):
    types = tuple(spec.profiles.types[k] for k in order)
    return spec.replace(profiles=spec.profiles.__class__(spec.profiles.dimensions, types))


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2), (2, 0, 3, 1)])
def test_quadrant_agrees_with_nearest_corner(hspec, order):
    spec = _reordered(hspec, order)
    rng = np.random.default_rng(42)
    random_pts = rng.uniform(size=(5000, 2))
    grid = np.array([[a, b] for a in (0, 0.25, 0.5, 0.75, 1) for b in (0, 0.1, 0.5, 0.9, 1)])  # exact boundaries
    for pts in (random_pts, grid):
        ta = type_arrays(pts, spec)
        np.testing.assert_array_equal(quadrant_codes(pts, spec), ta["type"])
    # the exact centre: all four corners tie -> the first declared type
    assert quadrant_codes(np.array([[0.5, 0.5]]), spec)[0] == 0
    assert type_arrays(np.array([[0.5, 0.5]]), spec)["type"][0] == 0


def test_quadrant_flags_boundary_convention(hspec):
    """With the Hitachi order the quadrant type equals the corner given by the >= flags,
    boundaries included; in another order it agrees off the boundaries (measure zero)."""
    corner_of = {tuple(t.coords): k for k, t in enumerate(hspec.profiles.types)}
    grid = np.array([[a, b] for a in (0, 0.3, 0.5, 0.8, 1) for b in (0, 0.2, 0.5, 0.6, 1)])
    ta = type_arrays(grid, hspec)
    by_flags = [corner_of[(float(i), float(d))] for i, d in zip(ta["internationalizing"], ta["independent"])]
    np.testing.assert_array_equal(quadrant_codes(grid, hspec), by_flags)
    other = _reordered(hspec, (3, 2, 1, 0))
    corner_of = {tuple(t.coords): k for k, t in enumerate(other.profiles.types)}
    ta = type_arrays(grid, other)
    by_flags = np.array([corner_of[(float(i), float(d))] for i, d in zip(ta["internationalizing"], ta["independent"])])
    off = (grid != 0.5).all(axis=1)
    np.testing.assert_array_equal(quadrant_codes(grid, other)[off], by_flags[off])
    assert (quadrant_codes(grid, other)[~off] != by_flags[~off]).any()  # documented boundary difference


def test_quadrant_agrees_with_standardized_nearest_off_boundary(hspec):
    rng = np.random.default_rng(8)
    pts = rng.beta(2, 5, size=(2000, 2))
    spec = hspec.replace(standardize=True)
    np.testing.assert_array_equal(quadrant_codes(pts, spec), type_arrays(pts, spec)["type"])


def test_quadrant_needs_all_corners(hspec):
    types = hspec.profiles.types[:3]
    spec = hspec.replace(profiles=hspec.profiles.__class__(hspec.profiles.dimensions, types))
    with pytest.raises(ValueError, match="corner"):
        quadrant_codes(np.array([[0.2, 0.3]]), spec)
    t = hspec.profiles.types[0].__class__("middle", (0.5, 0.5), (1.0, 1.0))
    spec = hspec.replace(profiles=hspec.profiles.__class__(hspec.profiles.dimensions, hspec.profiles.types + (t,)))
    with pytest.raises(ValueError, match="corner"):
        quadrant_codes(np.array([[0.2, 0.3]]), spec)


# ---------------------------------------------------------------------------
# empirical ideal
def test_empirical_ideal_ties_by_firm_id():
    P = np.array([[0.1, 0.1], [0.9, 0.9], [0.5, 0.5], [0.2, 0.8], [0.3, 0.3]] + [[0.4, 0.4]] * 15)
    y = np.array([9.0, 9.0, 9.0, 1.0, 2.0] + [0.0] * 15)
    ids = ["F7", "F3", "F5", "F1", "F2"] + [f"G{k:02d}" for k in range(15)]
    emp = empirical_ideal(P, y, ids, top_share=0.1)  # n = 20 -> 2 firms: F3 and F5 (ties by id)
    assert emp.n_valid == 20 and emp.n_top == 2
    assert emp.top_ids == ("F3", "F5")
    np.testing.assert_allclose(emp.ideal, [0.7, 0.7], rtol=RTOL)
    np.testing.assert_array_equal(emp.top_mask[:3], [False, True, True])
    assert emp.test_mask.sum() == 18 and not (emp.test_mask & emp.top_mask).any()


def test_empirical_ideal_counts_and_exclusions():
    rng = np.random.default_rng(1)
    P = rng.uniform(size=(33, 2))
    y = rng.normal(size=33)
    P[0, 1] = np.nan  # incomplete profile
    y[1] = np.nan  # no outcome
    y[2] = 100.0  # the best outcome, but incomplete -> not eligible
    P[2, 0] = np.nan
    emp = empirical_ideal(P, y, None, top_share=0.1)
    assert emp.n_valid == 30 and emp.n_top == 3  # ceil(0.1 * 30) = 3, not 4
    assert not emp.top_mask[[0, 1, 2]].any() and not emp.valid_mask[[0, 1, 2]].any()
    best = np.argsort(-np.where(emp.valid_mask, y, -np.inf))[:3]
    np.testing.assert_array_equal(np.flatnonzero(emp.top_mask), np.sort(best))
    np.testing.assert_allclose(emp.ideal, P[best].mean(axis=0), rtol=RTOL)
    assert empirical_ideal(P[:5], y[:5], None, 0.1).n_top == 1  # at least one firm


def test_empirical_ideal_broadcasts():
    rng = np.random.default_rng(2)
    P = rng.uniform(size=(3, 4, 25, 2))
    P[rng.random(P.shape) < 0.1] = np.nan
    y = rng.integers(0, 5, size=25).astype(float)  # many ties
    ids = [f"X{k:02d}" for k in rng.permutation(25)]
    emp = empirical_ideal(P, y, ids, 0.2)
    assert emp.ideal.shape == (3, 4, 2) and emp.top_mask.shape == (3, 4, 25)
    for a in range(3):
        for b in range(4):
            one = empirical_ideal(P[a, b], y, ids, 0.2)
            np.testing.assert_array_equal(emp.ideal[a, b], one.ideal)
            np.testing.assert_array_equal(emp.top_mask[a, b], one.top_mask)
            np.testing.assert_array_equal(emp.test_mask[a, b], one.test_mask)
            assert emp.n_top[a, b] == one.n_top


# ---------------------------------------------------------------------------
# baseline test
def _planted(n=120, seed=0, signal=True):
    rng = np.random.default_rng(seed)
    P = rng.uniform(size=(n, 2))
    d = np.hypot(P[:, 0] - 0.9, P[:, 1] - 0.8)
    y = (-3 * d if signal else 0) + rng.normal(0, 0.3, n)
    return P, y, [f"P{k:03d}" for k in range(n)]


def test_baseline_p_value_formula_and_recomputation():
    P, y, ids = _planted()
    B = 199
    res = baseline_test(P, y, ids, draws=B, seed=123)
    assert isinstance(res, BaselineResult) and not res.underpowered
    assert res.r_uniform.shape == (B,) and res.r_calibration.shape == (B,)
    assert res.p_uniform == (1 + np.sum(res.r_uniform <= res.r_obs)) / (B + 1)
    assert res.p_calibration == (1 + np.sum(res.r_calibration <= res.r_obs)) / (B + 1)
    # recompute every draw with plain loops (the documented draw order)
    emp = empirical_ideal(P, y, ids, 0.1)
    test = emp.test_mask
    r_obs = np.corrcoef(np.hypot(*(P[test] - emp.ideal).T), y[test])[0, 1]
    assert res.r_obs == pytest.approx(r_obs, rel=1e-12)
    rng = np.random.default_rng(123)
    U = rng.random((B, 2))
    keys = rng.random((B, len(y)))
    for b in range(B):
        d = np.hypot(*(P[test] - U[b]).T)
        assert res.r_uniform[b] == pytest.approx(np.corrcoef(d, y[test])[0, 1], rel=1e-10, abs=1e-12)
        cal = np.argsort(keys[b])[: emp.n_top]
        rest = np.setdiff1d(np.arange(len(y)), cal)
        d = np.hypot(*(P[rest] - P[cal].mean(axis=0)).T)
        assert res.r_calibration[b] == pytest.approx(np.corrcoef(d, y[rest])[0, 1], rel=1e-10, abs=1e-12)


def test_baseline_reproducible_with_seed():
    P, y, ids = _planted(signal=False)
    a = baseline_test(P, y, ids, draws=99, seed=7)
    b = baseline_test(P, y, ids, draws=99, seed=7)
    c = baseline_test(P, y, ids, draws=99, seed=8)
    np.testing.assert_array_equal(a.r_uniform, b.r_uniform)
    np.testing.assert_array_equal(a.r_calibration, b.r_calibration)
    assert (a.p_uniform, a.p_calibration) == (b.p_uniform, b.p_calibration)
    assert not np.array_equal(a.r_uniform, c.r_uniform)
    json.dumps(a.to_dict())


def test_baseline_planted_ideal_is_supported():
    P, y, ids = _planted(n=200, seed=3)
    res = baseline_test(P, y, ids, draws=199, seed=1)
    assert res.r_obs < -0.5
    assert res.p_uniform <= 0.05 and res.p_calibration <= 0.05
    assert res.verdict.startswith("supported")


def test_baseline_underpowered_refusal():
    P, y, ids = _planted(n=22)  # n_top = 3, test = 19 < 20
    res = baseline_test(P, y, ids, draws=50, seed=1)
    assert res.underpowered and res.p_uniform is None and res.p_calibration is None
    assert "test sample has 19 firms" in res.reason and res.verdict.startswith("no verdict")
    assert res.r_uniform.size == 0
    res = baseline_test(P[:20], y[:20], ids[:20], draws=50, seed=1, min_test_firms=5)  # n_top = 2 < 3
    assert res.underpowered and "calibration set has 2 firms" in res.reason
    res = baseline_test(P, y, ids, draws=50, seed=1, min_test_firms=19)
    assert not res.underpowered and res.n_test == 19 and res.n_calibration == 3


def test_pearson_r_masked_broadcast():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 30))
    y = rng.normal(size=30)
    mask = rng.random((5, 30)) > 0.3
    r = pearson_r(x, y, mask=mask)
    for k in range(5):
        np.testing.assert_allclose(r[k], np.corrcoef(x[k, mask[k]], y[mask[k]])[0, 1], rtol=1e-12)
    assert np.isnan(pearson_r([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


# ---------------------------------------------------------------------------
# whole runs
def test_run_hitachi_with_outcome(hspec):
    sv = _survey(hspec, _hitachi_frame(hspec, 60, seed=9))
    res = run_deterministic(sv, seed=5)
    s = res.summary
    json.dumps(s)
    assert s["n_firms"] == 60 and s["settings"]["seed"] == 5
    assert sum(s["types"]["counts"].values()) == s["types"]["n_typed"]
    assert not s["outcome"]["baseline"]["underpowered"]
    assert s["outcome"]["baseline"]["n_calibration"] == math.ceil(0.1 * s["outcome"]["relation"]["empirical"]["n_valid"] - 1e-9)
    ols = s["outcome"]["relation"]["empirical"]["ols"]
    assert ols["cov_type"] == "HC1" and ols["industry_dummies"] == 2
    assert {"subdist_independent_international", "subtype"} <= set(res.firms.columns)
    # same seed, same baseline; the spec's seed is the default
    again = run_deterministic(sv, seed=5)
    assert again.summary["outcome"]["baseline"] == s["outcome"]["baseline"]
    assert run_deterministic(sv).summary["settings"]["seed"] == hspec.baseline["seed"]
    # the firm table agrees with the array pipeline
    arr = index_arrays(sv.items.to_numpy(), hspec)
    np.testing.assert_array_equal(res.firms[["doi", "independence"]].to_numpy(), arr["indices"])


def test_run_without_outcome(hspec):
    df = _hitachi_frame(hspec, 30, seed=2, outcome=False)
    res = run_deterministic(_survey(hspec, df))
    o = res.summary["outcome"]
    assert o["available"] is False and "no outcome column" in o["note"]
    assert res.baseline is None and res.empirical is None
    assert "outcome" not in res.firms.columns
    assert "no outcome column" in res.summary_text()


def test_spec_override_thresholds(gsurvey, gspec):
    spec = gspec.replace(thresholds={"doi": 0.6, "independence": 0.5})
    res = run_deterministic(gsurvey, spec=spec)
    f = res.firms.set_index("firm_id")
    assert f["internationalizing"].tolist()[:5] == [False, True, False, False, False]
    assert res.summary["flags"]["internationalizing"]["rule"] == "doi >= 0.6"


ONE_CONSTRUCT = """
[instrument]
name = "one"
extra_columns = []
[[constructs]]
name = "capability"
subdimensions = ["tech", "people"]
[[items]]
name = "a"
construct = "capability"
subdimension = "tech"
scale = "likert"
min = 1
max = 5
[[items]]
name = "b"
construct = "capability"
subdimension = "people"
scale = "binary"
[profiles]
dimensions = ["capability"]
[[profiles.types]]
name = "strong"
coords = [1.0]
[[profiles.types]]
name = "weak"
coords = [0.0]
"""


def test_one_construct_spec():
    spec = parse_spec(ONE_CONSTRUCT)
    df = pd.DataFrame({"firm_id": ["a1", "a2", "a3"], "industry": ["x", "x", "y"],
                       "a": [5.0, 1.0, 3.0], "b": [1.0, 0.0, 0.0]})
    res = run_deterministic(_survey(spec, df))
    f = res.firms.set_index("firm_id")
    np.testing.assert_allclose(f["capability"], [1.0, 0.0, 0.25], rtol=RTOL)
    assert f["type"].tolist() == ["strong", "weak", "weak"]
    assert f["high_capability"].tolist() == [True, False, False]
    assert set(res.summary["flags"]) == {"high_capability"}
    assert res.summary["quadrant_agreement"] == {"n": 3, "agree": 3}
    assert res.summary["outcome"]["available"] is False
    res.summary_text()
