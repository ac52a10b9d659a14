"""The full parameter table of a fit (``smeintl.measurement.summary.parameter_table``):
every parameter of every item family present, continuous items in their data units
from the fit's stored standardization, intervals, R-hat and ESS, and its CSV and JSON
exports; on a short fit with every family and on the fit files of both stacks."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smeintl import compat
from smeintl import families as fam
from smeintl.measurement import ItemLayout, fit_standardization, is_score_variable, load_fit, posterior_params
from smeintl.measurement.summary import (
    BLOCKS,
    PARAMETER_COLUMNS,
    parameter_rows,
    parameter_table,
    summarize_fit,
)
from smeintl.spec import parse_spec

FITS = sorted((Path(__file__).parent / "data" / "fits").glob("*.nc"))

#: two constructs; one item of every family, two continuous items (one reverse-coded),
#: two ordinal items with different numbers of categories (one reverse-coded)
SPEC_TEXT = """
[instrument]
name = "every_family"
description = "Items of every family on two constructs"
group_column = "industry"
outcome_column = ""
extra_columns = []

[[constructs]]
name = "doi"
flag = "internationalizing"
subdimensions = ["a", "b"]

[[constructs]]
name = "independence"
flag = "independent"
subdimensions = ["c", "d"]

[[items]]
name = "stage5"
construct = "doi"
subdimension = "a"
scale = "likert"
min = 1
max = 5

[[items]]
name = "export_pct"
construct = "doi"
subdimension = "a"
scale = "percent"

[[items]]
name = "n_countries"
construct = "doi"
subdimension = "b"
scale = "count"
cap = 10

[[items]]
name = "sales"
construct = "doi"
subdimension = "b"
scale = "continuous"
min = 0
max = 60

[[items]]
name = "own_product"
construct = "independence"
subdimension = "c"
scale = "binary"

[[items]]
name = "margin"
construct = "independence"
subdimension = "c"
scale = "continuous"
min = -20
max = 40
reverse = true

[[items]]
name = "dependence"
construct = "independence"
subdimension = "d"
scale = "likert"
min = 1
max = 4
reverse = true

[profiles]
dimensions = ["doi", "independence"]
thresholds = { doi = 0.5, independence = 0.5 }

[[profiles.types]]
name = "high"
coords = [1.0, 1.0]

[[profiles.types]]
name = "low"
coords = [0.0, 0.0]
"""


@pytest.fixture(scope="module")
def every_family():
    """A short real fit (PyMC's NUTS, 2 x 100 draws) of an instrument with every family."""
    from smeintl.measurement import MeasurementModel
    from smeintl.simulate import simulate_survey

    spec = parse_spec(SPEC_TEXT, source="every_family.toml")
    survey = simulate_survey(spec, 120, n_groups=3, random_seed=5).survey
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = MeasurementModel(spec).fit(survey, random_seed=6, draws=100, tune=200, chains=2, sampler="pymc",
                                         progressbar=False)
    return spec, fit



@pytest.fixture(scope="module")
def all_fits(every_family):
    """(name, fit, spec) of the every-family fit and of each fit file in tests/data/fits."""
    spec, fit = every_family
    out = [("every_family", fit, spec)]
    for path in FITS:
        f, model = load_fit(path)
        out.append((path.stem, f, model.spec))
    return out


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


#: posterior variables that are not reported parameters: the sampler's transformed
#: variables, the free variables on standardized scores, the latent scores and the
#: internal parameterizations of the correlation and the group means
def _internal(name: str) -> bool:
    return (name.endswith("__") or name.endswith("_std") or is_score_variable(name)
            or name in ("eta", "corr_cpc", "group_z", "group_c"))


def test_the_fits_cover_every_family(every_family):
    spec, _ = every_family
    present = {b.family.name for b in ItemLayout.from_spec(spec).blocks()}
    assert present == {f.name for f in fam.families()}, "the every-family fit misses a registered family"


@pytest.mark.parametrize("k", range(1 + len(FITS)), ids=["every_family"] + [p.stem for p in FITS])
def test_every_posterior_parameter_has_its_rows(all_fits, k):
    name, fit, spec = all_fits[k]
    table = _quiet(parameter_table, fit, spec)
    assert tuple(table.columns) == PARAMETER_COLUMNS
    post = compat.group(fit, "posterior")
    # every reported posterior variable is in the table: a family's new parameter that
    # its parameter_rows leaves out fails here
    reported = {str(v) for v in post.data_vars if not _internal(str(v))}
    missing = reported - set(table["variable"].dropna())
    assert not missing, f"{name}: posterior variables without rows: {sorted(missing)}"
    # ... with one row per value (loadings: in their units and standardized)
    lay = ItemLayout.from_spec(spec)
    n_items, C = len(lay.names), len(lay.constructs)
    count = table["variable"].value_counts()
    assert count["loading"] == 2 * n_items
    assert (table.loc[table["variable"] == "loading", "scale"] == "standardized").sum() == n_items
    for block in lay.blocks():
        for pname in block.family.param_names(block):
            per_draw = int(np.prod(post[pname].shape[2:]))
            assert count[pname] == per_draw, (name, pname)
            assert (table.loc[table["variable"] == pname, "item"].isin([lay.names[i] for i in block.idx])).all()
    if C > 1:
        assert count["corr"] == C * (C - 1) // 2
    if "group_mean" in post:
        G = post.sizes["group"]
        assert count["group_mean"] == G * C and count["group_sd"] == C
        gm = table[table["block"] == "group_mean"]
        assert set(gm["group"]) == {str(g) for g in post["group"].values}
    assert (table["block"] == "omega").sum() == C
    # every item has its loading, its family's rows and its construct
    items = table[table["item"].notna()]
    assert set(items["item"]) == set(lay.names)
    for item, construct in zip(lay.names, (lay.constructs[c] for c in lay.construct)):
        assert (items.loc[items["item"] == item, "construct"] == construct).all()
    # blocks in the documented order
    order = [b for b in BLOCKS if b in set(table["block"])]
    assert list(dict.fromkeys(table["block"])) == order


def test_rows_per_family(every_family):
    spec, fit = every_family
    table = _quiet(parameter_table, fit, spec)
    by = lambda item: table[table["item"] == item].set_index(["block", "op", "rhs", "scale"])  # noqa: E731
    stage = by("stage5")
    assert [r for r in stage.index if r[0] == "threshold"] == [("threshold", "|", f"t{k}", "logit") for k in (1, 2, 3, 4)]
    assert ("loading", "=~", "stage5", "logit") in stage.index
    assert ("loading", "=~", "stage5", "standardized") in stage.index
    pct = by("export_pct")
    assert {("intercept", "~1", "", "logit"), ("threshold", "|", "zero", "logit"), ("threshold", "|", "one", "logit"),
            ("precision", "~~", "export_pct", "natural")} <= set(pct.index)
    cnt = by("n_countries")
    assert {("loading", "=~", "n_countries", "log"), ("intercept", "~1", "", "log"),
            ("dispersion", "~~", "n_countries", "natural")} <= set(cnt.index)
    assert by("own_product").index.tolist() == [("loading", "=~", "own_product", "logit"),
                                                ("loading", "=~", "own_product", "standardized"),
                                                ("intercept", "~1", "", "logit")]
    for item in ("sales", "margin"):
        assert set(by(item).index) == {("loading", "=~", item, "data"), ("loading", "=~", item, "standardized"),
                                       ("intercept", "~1", "", "data"), ("residual_sd", "~~", item, "data")}
    # the percent cutpoints and the ordinal thresholds are ordered
    for item in ("stage5", "dependence", "export_pct"):
        assert np.all(np.diff(table.loc[(table["item"] == item) & (table["block"] == "threshold"), "mean"]) > 0)
    # reverse-coded items load negatively, the others positively
    lo = table[(table["block"] == "loading")].set_index(["item", "scale"])["mean"]
    for item in spec.item_names:
        sign = -1 if spec.item(item).reverse else 1
        assert (sign * lo.loc[item] > 0).all(), item
    std = table[(table["block"] == "loading") & (table["scale"] == "standardized")]
    assert (std["lower"] > -1).all() and (std["upper"] < 1).all()
    corr = table[table["block"] == "correlation"]
    assert corr[["lhs", "op", "rhs"]].values.tolist() == [["doi", "~~", "independence"]]


def test_continuous_items_in_data_units(every_family):
    """Per draw: loading_data = sign * loading_z * sd, intercept_data = intercept_z * sd +
    mean, residual sd_data = sigma_z * sd, with the standardization stored in the fit
    (here replaced by a known one): read from the fit, never recomputed."""
    spec, fit = every_family
    lay = ItemLayout.from_spec(spec)
    P = posterior_params(fit, spec)
    cont = lay.family("continuous")
    known = {"mean": [100.0, -5.0], "sd": [2.5, 0.25]}
    other = fit.copy()
    other.attrs = dict(fit.attrs) | {"standardization": json.dumps(known)}
    for f in (fit, other):
        std = fit_standardization(f)
        rows = {(r.block, r.item, r.scale): r for r in parameter_rows(f, spec)}
        table = _quiet(parameter_table, f, spec).set_index(["block", "item", "scale"])
        for j, k in enumerate(cont):
            item, sd, mean = lay.names[k], std["sd"][j], std["mean"][j]
            expect = {
                ("loading", "data"): lay.sign[k] * P["loading"][:, k] * sd,
                ("intercept", "data"): P["cont_intercept"][:, j] * sd + mean,
                ("residual_sd", "data"): P["cont_sigma"][:, j] * sd,
            }
            for (block, scale), want in expect.items():
                got = rows[(block, item, scale)].draws
                np.testing.assert_array_equal(got, want)
                row = table.loc[(block, item, scale)]
                assert row["mean"] == pytest.approx(want.mean(), rel=1e-12)
                assert row["sd"] == pytest.approx(want.std(ddof=1), rel=1e-12)
                lo, hi = np.quantile(want, [0.05, 0.95])
                assert row["lower"] == pytest.approx(lo, rel=1e-12) and row["upper"] == pytest.approx(hi, rel=1e-12)
    # the standardization moves the continuous items' data-unit rows only
    a = _quiet(parameter_table, fit, spec)
    b = _quiet(parameter_table, other, spec)
    moved = (a["scale"] == "data").to_numpy()
    assert moved.sum() == 3 * cont.size
    np.testing.assert_array_equal(a.loc[~moved, "mean"], b.loc[~moved, "mean"])
    assert not np.isclose(a.loc[moved, "mean"], b.loc[moved, "mean"]).any()
    # the known standardization: loading in data units is the standardized one times sd
    sales = b[(b["item"] == "sales") & (b["block"] == "loading") & (b["scale"] == "data")]
    assert sales["mean"].item() == pytest.approx(P["loading"][:, cont[0]].mean() * 2.5, rel=1e-12)
    margin = b[(b["item"] == "margin") & (b["block"] == "intercept")]
    assert margin["mean"].item() == pytest.approx(P["cont_intercept"][:, 1].mean() * 0.25 - 5.0, rel=1e-12)


@pytest.mark.parametrize("k", range(1 + len(FITS)), ids=["every_family"] + [p.stem for p in FITS])
def test_intervals_and_diagnostics(all_fits, k):
    name, fit, spec = all_fits[k]
    table = _quiet(parameter_table, fit, spec, prob=0.8)
    assert np.isfinite(table[["mean", "sd", "lower", "upper", "rhat", "ess_bulk"]].to_numpy()).all(), name
    assert ((table["lower"] <= table["mean"]) & (table["mean"] <= table["upper"])).all(), name
    assert (table["sd"] > 0).all() and (table["ess_bulk"] > 0).all() and (table["rhat"] > 0.9).all()
    # a wider interval contains the narrower one
    wide = _quiet(parameter_table, fit, spec, prob=0.95)
    assert ((wide["lower"] <= table["lower"]) & (table["upper"] <= wide["upper"])).all()
    # R-hat and ESS of the rows of a posterior variable are ArviZ's on that variable
    post = compat.group(fit, "posterior")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = np.asarray(compat.rhat(post[["loading"]])["loading"].values)
        ess = np.asarray(compat.ess(post[["loading"]], method="bulk")["loading"].values)
    raw = table[(table["variable"] == "loading") & (table["scale"] != "standardized")]
    # the same draws up to sign (exactly), or scaled to data units (where rounding may break
    # the tie of the two draws either side of the median in the folded R-hat)
    exact = (raw["scale"] != "data").to_numpy()
    np.testing.assert_allclose(raw["rhat"][exact], rhat[exact], rtol=1e-10)
    np.testing.assert_allclose(raw["ess_bulk"][exact], ess[exact], rtol=1e-10)
    np.testing.assert_allclose(raw["rhat"], rhat, rtol=1e-3)
    np.testing.assert_allclose(raw["ess_bulk"], ess, rtol=1e-3)
    with pytest.raises(ValueError, match="prob"):
        parameter_table(fit, spec, prob=1.0)


@pytest.mark.parametrize("k", range(1 + len(FITS)), ids=["every_family"] + [p.stem for p in FITS])
def test_summary_csv_and_json_round_trip(all_fits, k, tmp_path):
    name, fit, spec = all_fits[k]
    s = _quiet(summarize_fit, fit, spec, prob=0.8)
    table = s.to_frame()
    pd.testing.assert_frame_equal(table, _quiet(parameter_table, fit, spec, prob=0.8))
    num_cols = ["mean", "sd", "lower", "upper", "rhat", "ess_bulk"]
    text_cols = [c for c in PARAMETER_COLUMNS if c not in num_cols]
    assert all(pd.api.types.is_float_dtype(table[c]) for c in num_cols)

    def same(back: pd.DataFrame):
        assert list(back.columns) == list(PARAMETER_COLUMNS)
        assert len(back) == len(table)
        for c in text_cols:
            assert back[c].fillna("").astype(str).tolist() == table[c].fillna("").astype(str).tolist(), c
        np.testing.assert_array_equal(back[num_cols].to_numpy(dtype=float), table[num_cols].to_numpy(dtype=float))

    csv = s.to_csv()
    same(pd.read_csv(io.StringIO(csv)))
    s.to_csv(tmp_path / "p.csv")
    same(pd.read_csv(tmp_path / "p.csv"))
    buf = io.StringIO()
    s.to_csv(buf)
    assert buf.getvalue() == csv

    doc = json.loads(s.to_json())
    meta = doc["metadata"]
    assert meta["spec"] == spec.name and meta["prob"] == 0.8
    assert meta["data_hash"] == fit.attrs["data_hash"] and meta["seed"] == int(fit.attrs["random_seed"])
    assert meta["chains"] * meta["draws"] == posterior_params(fit, spec)["loading"].shape[0]
    assert doc["columns"] == list(PARAMETER_COLUMNS)
    same(pd.DataFrame(doc["parameters"], columns=doc["columns"]))
    s.to_json(tmp_path / "p.json", indent=1)
    assert json.loads((tmp_path / "p.json").read_text()) == doc
    std = fit_standardization(fit)
    if std is not None:
        assert [v["sd"] for v in meta["standardization"].values()] == pytest.approx(list(std["sd"]))


def test_text_groups_the_table_by_block(every_family):
    spec, fit = every_family
    s = _quiet(summarize_fit, fit, spec)
    text = s.text()
    assert text.startswith(s.diagnostics.text())
    positions = [text.index(BLOCKS[b].split("\n")[0] + ("" if "\n" in BLOCKS[b] else ":")) for b in BLOCKS]
    assert positions == sorted(positions)
    assert "Loadings" in text and "doi =~ stage5" in text and "stage5 | t4" in text and "margin ~~ margin" in text
    assert "doi ~1 [G1]" in text and "independence := omega_latent_response" in text
    assert "posterior probability of a positive correlation" in text
    assert "Latent scores: 240 rows" in text
    assert "5%" in text and "95%" in text


def test_a_new_family_gets_rows_from_the_defaults():
    """A family that defines no table rows of its own: loadings on its link scale and
    standardized, its first parameter as the intercept, any other listed per value."""

    class Extra(fam.Family):
        name = "extra_test"
        params = ("extra_intercept", "extra_shape")
        prefix = "extra"

    lay = ItemLayout(names=("a", "b"), scales=("x", "x"), construct=np.array([0, 0]), sign=np.array([1.0, -1.0]),
                     lo=np.zeros(2), hi=np.ones(2), constructs=("f",))
    block = fam.Block(Extra(), "extra", np.array([0, 1]))
    rng = np.random.default_rng(0)
    P = {"loading": rng.uniform(0.5, 2, (7, 2)), "extra_intercept": rng.normal(size=(7, 2)),
         "extra_shape": rng.normal(size=(7, 2, 3))}
    rows = Extra().parameter_rows(P, block, lay, None)
    keys = [(r.block, r.lhs, r.op, r.rhs, r.scale) for r in rows]
    assert keys[:4] == [("loading", "f", "=~", "a", "logit"), ("loading", "f", "=~", "b", "logit"),
                        ("loading", "f", "=~", "a", "standardized"), ("loading", "f", "=~", "b", "standardized")]
    assert keys[4:6] == [("intercept", "a", "~1", "", "logit"), ("intercept", "b", "~1", "", "logit")]
    assert [k for k in keys if k[0] == "extra_shape"] == [
        ("extra_shape", it, ":=", f"extra_shape[{c}]", "natural") for c in range(3) for it in ("a", "b")]
    np.testing.assert_array_equal(rows[1].draws, -P["loading"][:, 1])
    std = rows[3].draws
    np.testing.assert_allclose(std, -P["loading"][:, 1] / np.sqrt(P["loading"][:, 1] ** 2 + np.pi**2 / 3))
    np.testing.assert_array_equal(rows[-1].draws, P["extra_shape"][:, 1, 2])
