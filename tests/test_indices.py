"""Tests of smeintl.indices: hand-computed golden numbers, scaling rules, the half rule,
Cronbach's alpha and the broadcasting contract (leading axes == loop)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smeintl.indices import (
    IndicesResult,
    compute_indices,
    construct_indices,
    cronbach_alpha,
    index_arrays,
    item_matrix,
    min_present,
    scale_items,
    subdimension_scores,
    sullivan_sums,
)
from smeintl.spec import load_spec

GOLDEN = Path(__file__).parent / "data" / "golden"
RTOL = 1e-12


# ---------------------------------------------------------------------------
# fixtures and helpers
def _frac(v) -> float:
    if isinstance(v, str) and v.strip() == "NA":
        return np.nan
    if pd.isna(v):
        return np.nan
    return float(Fraction(str(v)))


def _expected() -> pd.DataFrame:
    return pd.read_csv(GOLDEN / "expected_firms.csv", dtype=str, keep_default_na=False).set_index("firm_id")


def _expected_cols(cols) -> np.ndarray:
    exp = _expected()
    return np.array([[_frac(v) for v in exp[c]] for c in cols]).T


@pytest.fixture(scope="module")
def gspec():
    return load_spec(GOLDEN / "golden_spec.toml")


@pytest.fixture(scope="module")
def gsurvey(gspec):
    from smeintl.data import survey_from_frame

    df = pd.read_csv(GOLDEN / "survey.csv", dtype={"firm_id": str, "industry": str})
    return survey_from_frame(df, gspec)


@pytest.fixture(scope="module")
def hspec():
    return load_spec()


def _random_raw(spec, shape, rng, missing=0.15) -> np.ndarray:
    """Raw answers in range for every item, with NaNs."""
    cols = []
    for it in spec.items:
        if it.scale in ("likert", "stage"):
            v = rng.integers(int(it.min), int(it.max) + 1, size=shape).astype(float)
        elif it.scale == "count":
            v = rng.integers(0, int(it.cap * 1.5) + 1, size=shape).astype(float)
        elif it.scale == "binary":
            v = rng.integers(0, 2, size=shape).astype(float)
        else:
            v = rng.uniform(it.min, it.max, size=shape)
        cols.append(v)
    X = np.stack(cols, axis=-1)
    X[rng.random(X.shape) < missing] = np.nan
    return X


# ---------------------------------------------------------------------------
# golden numbers
def test_golden_scaled_items(gsurvey, gspec):
    res = compute_indices(gsurvey)
    assert isinstance(res, IndicesResult)
    assert list(res.scaled.index) == ["F1", "F2", "F3", "F4", "F5", "F6"]
    assert list(res.scaled.columns) == list(gspec.item_names)
    exp = _expected_cols([f"s_{i}" for i in gspec.item_names])
    np.testing.assert_allclose(res.scaled.to_numpy(), exp, rtol=RTOL, atol=0)


def test_golden_subdimensions_indices_sullivan(gsurvey, gspec):
    res = compute_indices(gsurvey)
    assert list(res.subdimensions.columns) == ["stage", "perf", "dep", "tech"]
    assert list(res.indices.columns) == ["doi", "independence"]
    np.testing.assert_allclose(res.subdimensions.to_numpy(), _expected_cols(gspec.subdimension_names), rtol=RTOL, atol=0)
    np.testing.assert_allclose(res.indices.to_numpy(), _expected_cols(["doi", "independence"]), rtol=RTOL, atol=0)
    np.testing.assert_allclose(
        res.sullivan.to_numpy(), _expected_cols(["sullivan_doi", "sullivan_independence"]), rtol=RTOL, atol=0
    )
    # the cases the golden set was built for
    assert np.isnan(res.subdimensions.loc["F4", "perf"])  # 1 of 3 items present
    assert res.subdimensions.loc["F4", "tech"] == pytest.approx(0.25)  # 2 of 3 present
    assert res.indices.loc["F4", "doi"] == pytest.approx(0.25)  # 1 of 2 sub-dims present
    assert np.isnan(res.sullivan.loc["F4", "doi"])
    assert np.isnan(res.indices.loc["F6", "independence"])
    assert res.indices.loc["F5", "doi"] == 0.5  # exactly on the threshold


def test_index_arrays_matches_compute_indices(gsurvey, gspec):
    arr = index_arrays(gsurvey.items.to_numpy(), gspec)
    res = compute_indices(gsurvey)
    assert set(arr) == {"scaled", "subdimensions", "indices", "sullivan"}
    np.testing.assert_array_equal(arr["scaled"], res.scaled.to_numpy())
    np.testing.assert_array_equal(arr["subdimensions"], res.subdimensions.to_numpy())
    np.testing.assert_array_equal(arr["indices"], res.indices.to_numpy())
    np.testing.assert_array_equal(arr["sullivan"], res.sullivan.to_numpy())


# ---------------------------------------------------------------------------
# scaling rules
def test_scaling_rules_each_scale(gspec):
    # st exp ctry grow top ncust rnd own staff
    X = np.array(
        [
            [3, 25, 15, 2, 75, 40, 3, 1, 60],  # count capped, continuous clipped above
            [0, 100, 10, 5, 0, 20, 1, 0, -5],  # continuous clipped below, reverse of 0 -> 1
            [np.nan] * 9,
        ]
    )
    S = scale_items(X, gspec)
    np.testing.assert_allclose(S[0], [3 / 4, 0.25, 1.0, 1 / 4, 0.25, 1.0, 0.5, 1.0, 1.0], rtol=RTOL)
    np.testing.assert_allclose(S[1], [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0], rtol=RTOL, atol=0)
    assert np.isnan(S[2]).all()


def test_likert_is_not_clipped(gspec):
    # out-of-range answers are the reader's business; scaling shows them, it does not hide them
    X = np.zeros((1, len(gspec.items)))
    X[0, gspec.item_names.index("grow")] = 7
    assert scale_items(X, gspec)[0, gspec.item_names.index("grow")] == pytest.approx(1.5)


def test_hitachi_scaling_matches_spec_comment(hspec):
    rng = np.random.default_rng(3)
    X = _random_raw(hspec, (50,), rng, missing=0.0)
    S = scale_items(X, hspec)
    for j, it in enumerate(hspec.items):
        x = X[:, j]
        if it.scale in ("likert", "stage"):
            v = (x - it.min) / (it.max - it.min)
        elif it.scale == "percent":
            v = x / 100
        elif it.scale == "count":
            v = np.minimum(x, it.cap) / it.cap
        else:
            v = x
        if it.reverse:
            v = 1 - v
        np.testing.assert_allclose(S[:, j], v, rtol=RTOL, err_msg=it.name)
        assert (S[:, j] >= 0).all() and (S[:, j] <= 1).all()


def test_half_rule_min_present():
    assert [min_present(n) for n in (1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3]


def test_subdimension_half_rule_and_weights(gspec):
    S = np.full((4, len(gspec.items)), np.nan)
    i = {n: k for k, n in enumerate(gspec.item_names)}
    S[0, [i["exp"], i["grow"]]] = [0.2, 0.8]  # 2 of 3 perf items: weights 1 and 2
    S[1, i["grow"]] = 0.8  # 1 of 3: missing
    S[2, [i["top"]]] = 0.3  # 1 of 2 dep items: enough
    S[3, [i["rnd"], i["own"], i["staff"]]] = [0.5, 1.0, 0.0]
    sub = subdimension_scores(S, gspec)
    perf, dep, tech = (gspec.subdimension_names.index(n) for n in ("perf", "dep", "tech"))
    assert sub[0, perf] == pytest.approx((0.2 + 2 * 0.8) / 3, rel=RTOL)
    assert np.isnan(sub[1, perf])
    assert sub[2, dep] == pytest.approx(0.3, rel=RTOL)
    assert sub[3, tech] == pytest.approx(0.5, rel=RTOL)


def test_construct_weights_and_sullivan(gspec):
    sub = np.array([[0.2, 0.6, 0.4, 0.8], [np.nan, 0.6, np.nan, np.nan], [np.nan, np.nan, 0.0, 1.0]])
    ind = construct_indices(sub, gspec)
    np.testing.assert_allclose(ind[0], [0.4, (0.4 + 3 * 0.8) / 4], rtol=RTOL)
    assert ind[1, 0] == pytest.approx(0.6) and np.isnan(ind[1, 1])
    assert np.isnan(ind[2, 0]) and ind[2, 1] == pytest.approx(0.75)
    sul = sullivan_sums(sub, gspec)
    np.testing.assert_allclose(sul[0], [0.8, 1.2], rtol=RTOL)
    assert np.isnan(sul[1]).all() and np.isnan(sul[2, 0]) and sul[2, 1] == pytest.approx(1.0)


def test_zero_weight_items_only_give_missing(gspec):
    zero = {"grow", "exp"}
    spec = gspec.replace(
        items=tuple(it.__class__(**{**it.__dict__, "weight": 0.0}) if it.name in zero else it for it in gspec.items)
    )
    perf = spec.subdimension_names.index("perf")
    i = {n: k for k, n in enumerate(spec.item_names)}
    S = np.full((2, len(spec.items)), np.nan)
    S[0, [i["grow"], i["ctry"]]] = [1.0, 0.5]  # only ctry carries weight
    S[1, [i["grow"], i["exp"]]] = [1.0, 0.5]  # enough items present, but all weights zero
    sub = subdimension_scores(S, spec)
    assert sub[0, perf] == pytest.approx(0.5)
    assert np.isnan(sub[1, perf])


def test_shape_errors(gspec):
    with pytest.raises(ValueError, match="columns"):
        scale_items(np.zeros((3, 4)), gspec)
    with pytest.raises(ValueError, match="shape"):
        scale_items(np.zeros(9), gspec)
    with pytest.raises(ValueError):
        construct_indices(np.zeros((2, 3)), gspec)


# ---------------------------------------------------------------------------
# Cronbach's alpha
def test_alpha_hand_computed():
    M = pd.read_csv(GOLDEN / "alpha_example.csv").to_numpy(dtype=float)
    a, n = cronbach_alpha(M)
    assert n == 4
    assert isinstance(a, float) and isinstance(n, int)
    np.testing.assert_allclose(a, 14 / 15, rtol=RTOL)


def test_alpha_degenerate():
    assert np.isnan(cronbach_alpha(np.ones((5, 1)))[0])
    a, n = cronbach_alpha(np.array([[1.0, 2.0], [np.nan, 1.0]]))
    assert n == 1 and np.isnan(a)
    assert np.isnan(cronbach_alpha(np.ones((4, 3)))[0])  # zero total variance


def test_alpha_broadcasts():
    rng = np.random.default_rng(7)
    M = rng.normal(size=(3, 4, 30, 5)) + rng.normal(size=(3, 4, 30, 1))
    M[rng.random(M.shape) < 0.1] = np.nan
    a, n = cronbach_alpha(M)
    assert a.shape == (3, 4) and n.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            aij, nij = cronbach_alpha(M[i, j])
            np.testing.assert_allclose(a[i, j], aij, rtol=1e-14)
            assert n[i, j] == nij


def test_compute_indices_alpha_table(gsurvey, gspec):
    res = compute_indices(gsurvey)
    al = res.alpha
    assert list(al.index) == ["doi", "independence"]
    for c in gspec.constructs:
        items = [i.name for i in gspec.items_of(construct=c.name)]
        a, n = cronbach_alpha(res.scaled[items].to_numpy())
        assert al.loc[c.name, "alpha_items"] == pytest.approx(a, rel=RTOL)
        assert al.loc[c.name, "n_cases_items"] == n
        a, n = cronbach_alpha(res.subdimensions[list(c.subdimensions)].to_numpy())
        assert al.loc[c.name, "alpha_subdimensions"] == pytest.approx(a, rel=RTOL)
        assert al.loc[c.name, "n_cases_subdimensions"] == n
    # complete cases: doi items F1, F2, F3, F5, F6 (F4 misses exp and ctry)
    assert al.loc["doi", "n_cases_items"] == 5
    assert al.loc["independence", "n_cases_subdimensions"] == 5


# ---------------------------------------------------------------------------
# broadcasting contract
@pytest.mark.parametrize("which", ["golden", "hitachi"])
def test_leading_axes_equal_loop(which, gspec, hspec):
    spec = gspec if which == "golden" else hspec
    rng = np.random.default_rng(11)
    F = 9
    X = _random_raw(spec, (3, 4, F), rng, missing=0.3)
    X[0, 1, 2, :] = np.nan  # a firm with no answers in one draw
    X[2, 3, 5, : len(spec.items) // 2 + 1] = np.nan  # a firm missing most of the first construct
    arr = index_arrays(X, spec)
    assert arr["scaled"].shape == (3, 4, F, len(spec.items))
    assert arr["subdimensions"].shape == (3, 4, F, len(spec.subdimension_names))
    assert arr["indices"].shape == (3, 4, F, len(spec.constructs))
    assert arr["sullivan"].shape == (3, 4, F, len(spec.constructs))
    assert np.isnan(arr["indices"]).any()  # NaNs exercised
    for i in range(3):
        for j in range(4):
            one = index_arrays(X[i, j], spec)
            for k in arr:
                np.testing.assert_array_equal(arr[k][i, j], one[k], err_msg=k)
            # and function by function
            np.testing.assert_array_equal(scale_items(X[i, j], spec), arr["scaled"][i, j])
            np.testing.assert_array_equal(subdimension_scores(arr["scaled"][i, j], spec), arr["subdimensions"][i, j])
            np.testing.assert_array_equal(construct_indices(arr["subdimensions"][i, j], spec), arr["indices"][i, j])
            np.testing.assert_array_equal(sullivan_sums(arr["subdimensions"][i, j], spec), arr["sullivan"][i, j])


def test_item_matrix_selects_spec_items(gsurvey, gspec):
    X = item_matrix(gsurvey)
    assert list(X.columns) == list(gspec.item_names)
    narrow = gspec.replace(items=tuple(i for i in gspec.items if i.name != "own"))
    assert "own" not in item_matrix(gsurvey, narrow).columns
    wide = gspec.replace(items=gspec.items + (gspec.items[0].__class__("extra", "doi", "stage", "binary", 0.0, 1.0),))
    with pytest.raises(KeyError, match="extra"):
        item_matrix(gsurvey, wide)


def test_no_pymc_import():
    code = "import sys, smeintl.indices, smeintl.profiles; print('pymc' in sys.modules, 'pytensor' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
