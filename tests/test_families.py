"""Item families as objects: the registry, and a new family (Poisson counts) defined here,
in the tests, that the spec, data validation, deterministic scaling, simulation, the
PyMC model, the fit's log-likelihood and posterior predictive all serve without a change
anywhere outside ``smeintl.families``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from smeintl import families as fam

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "smeintl"


class Poisson(fam.Family):
    """Poisson counts with a log link, log mu = intercept + lambda * eta (test family)."""

    name = "poisson"
    scales = ("poisson",)
    whole_numbers = True
    params = ("poisson_intercept",)
    prefix = "poisson"
    model_text = "Poisson, log link"
    scaling_text = "min(x, max) / max"

    def valid(self, v, item):
        return v >= 0

    def scaling(self, item):
        return 0.0, item.max, item.max, False

    def build(self, ctx, block):
        from smeintl.families.model import shifted

        pm, idx = ctx.pm, block.idx
        a = shifted(pm, pm.Normal, "poisson_intercept", 1.0, ctx.shifted(idx), sigma=1.0, dims="poisson_item")
        f, j, y = ctx.cells(idx)
        lin = ctx.linear_predictor(f, idx[j]) + a[j]
        pm.Poisson("y_poisson", mu=pm.math.exp(lin), observed=y)

    def draw(self, P, lin, block, layout, rng, std):
        return rng.poisson(np.exp(np.clip(lin + np.asarray(P["poisson_intercept"])[..., None, :], -30, 15)))

    def expected(self, P, lin, block, layout, std, caps=None):
        from scipy import stats

        mu = np.exp(lin + np.asarray(P["poisson_intercept"])[..., None, :])
        cap = layout.hi[block.idx].astype(int)
        return np.stack([stats.poisson.sf(np.arange(c), mu[..., j, None]).sum(-1) / c
                         for j, c in enumerate(cap)], axis=-1)

    def loglik(self, P, s, lin, y, block, layout, std):
        from scipy import stats

        obs = ~np.isnan(y)
        mu = np.exp(lin + P["poisson_intercept"][s])
        return np.where(obs[:, None, :], stats.poisson.logpmf(np.where(obs, y, 0)[:, None, :], mu), 0.0)

    def residual_variance(self, P, block):
        return np.log1p(1.0 / np.exp(P["poisson_intercept"]))

    def typical(self, layout, block, rng):
        return {"poisson_intercept": np.full(block.size, 1.0)}


SPEC_TEXT = """
[instrument]
name = "poisson-test"
group_column = "industry"
outcome_column = ""

[[constructs]]
name = "doi"
subdimensions = ["a"]

[[constructs]]
name = "independence"
subdimensions = ["b"]

[[items]]
name = "p1"
construct = "doi"
subdimension = "a"
scale = "poisson"
min = 0
max = 10

[[items]]
name = "p2"
construct = "doi"
subdimension = "a"
scale = "poisson"
min = 0
max = 10

[[items]]
name = "p3"
construct = "doi"
subdimension = "a"
scale = "poisson"
min = 0
max = 10

[[items]]
name = "l1"
construct = "independence"
subdimension = "b"
scale = "likert"
min = 1
max = 5

[[items]]
name = "l2"
construct = "independence"
subdimension = "b"
scale = "likert"
min = 1
max = 5

[[items]]
name = "b1"
construct = "independence"
subdimension = "b"
scale = "binary"

[profiles]
dimensions = ["doi", "independence"]

[[profiles.types]]
name = "high"
coords = [1.0, 1.0]

[[profiles.types]]
name = "low"
coords = [0.0, 0.0]
"""


@pytest.fixture(scope="module")
def poisson_family():
    family = fam.register(Poisson())
    yield family
    fam.unregister("poisson")


@pytest.fixture(scope="module")
def poisson_sim(poisson_family):
    from smeintl.simulate import simulate_survey
    from smeintl.spec import parse_spec

    spec = parse_spec(SPEC_TEXT, source="<poisson-test>")
    return spec, simulate_survey(spec, 300, n_groups=3, random_seed=5, outcome=False, missing=0.02)


def test_registry_order_and_lookup():
    names = [f.name for f in fam.families()][:5]
    assert names == ["ordinal", "percent", "count", "binary", "continuous"]
    assert fam.family_of("likert") is fam.family_of("stage")
    with pytest.raises(KeyError, match="unknown scale type 'likret'"):
        fam.family_of("likret")
    with pytest.raises(ValueError, match="already registered"):
        fam.register(fam.Ordinal())


def test_no_module_outside_families_branches_on_a_scale_name():
    pattern = re.compile(r"""(==|!=|\bin)\s*\(?\s*["'](likert|stage|percent|count|binary|continuous)["']""")
    offenders = []
    for path in SRC.rglob("*.py"):
        if "families" in path.relative_to(SRC).parts:
            continue
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(SRC)}:{k}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_new_family_spec_data_and_scaling(poisson_sim):
    from smeintl.data import survey_from_frame
    from smeintl.indices import scale_items
    from smeintl.spec import parse_spec

    spec, sim = poisson_sim
    assert [i.scale for i in spec.items][:3] == ["poisson"] * 3
    X = sim.survey.items[list(spec.item_names)].to_numpy(dtype=float)
    V = scale_items(X, spec)
    np.testing.assert_allclose(V[:, :3], np.minimum(X[:, :3], 10) / 10)
    # a negative count is refused with the family's own rule, naming row and column
    df = sim.survey.to_frame()
    df.loc[3, "p2"] = -1
    with pytest.raises(Exception, match=r"row 5, column 'p2'.*-1"):
        survey_from_frame(df, spec, source="poisson.csv")
    # an unregistered scale is refused by the spec loader
    with pytest.raises(ValueError, match="unknown scale type 'poison'"):
        parse_spec(SPEC_TEXT.replace('scale = "poisson"', 'scale = "poison"'), source="<x>")


def test_new_family_fit_loglik_and_predictive(poisson_sim):
    """A real short fit of the new family: its parameters, log-likelihood and posterior
    predictive come out of the generic code, and the loadings are recovered."""
    from smeintl.measurement import MeasurementModel, summarize_fit
    from smeintl.simulate import typical_params

    spec, sim = poisson_sim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = MeasurementModel(spec).fit(sim.survey, draws=300, tune=300, chains=2, random_seed=3,
                                           progressbar=False)
    post = idata.posterior
    assert post["poisson_intercept"].shape[-1] == 3
    assert list(post["poisson_intercept"].coords["poisson_item"].values) == ["p1", "p2", "p3"]
    assert idata.log_likelihood["responses"].shape[-1] == 300
    assert np.isfinite(idata.log_likelihood["responses"].values).all()
    rep = idata.posterior_predictive["p1"].values
    assert (rep >= 0).all() and (rep == np.round(rep)).all()
    truth = typical_params(spec, n_groups=3, random_seed=5)
    lam = post["loading"].values.reshape(-1, len(spec.items))
    lo, hi = np.quantile(lam, [0.02, 0.98], axis=0)
    assert ((lo <= truth["loading"]) & (truth["loading"] <= hi)).sum() >= 5, (lo, hi, truth["loading"])
    a = post["poisson_intercept"].values.reshape(-1, 3)
    assert (np.abs(a.mean(0) - 1.0) < 0.3).all(), a.mean(0)
    table = summarize_fit(idata, spec).loadings
    assert ((table["std_mean"] > 0) & (table["std_mean"] < 1)).all()
