"""Spec files refused with one clear message per problem (the spec part of issue 24):
unknown keys in every table (named with the table, the allowed keys and the closest one),
ideal-type coordinates outside [0, 1], the ``[instrument]`` columns, and the sampler,
baseline and prior settings that used to pass the loader and crash (or be ignored) later.

Each bad spec is the bundled ``hitachi.toml`` with one change; every test here
failed before the behaviour it checks was built.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smeintl.cli import main
from smeintl.spec import SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
DATA = BUNDLE_DIR / "hitachi_synthetic.csv"
SPEC = BUNDLE_DIR / "hitachi.toml"
TEXT = SPEC.read_text(encoding="utf-8")

ITEM = "name, label, construct, subdimension, scale, reverse, weight"
SAMPLER = ("draws, tune, chains, target_accept, sampler, quick_draws, quick_tune, quick_chains, large_firms, "
           "large_draws, large_tune, large_chains")
TABLES = "instrument, constructs, items, profiles, subdimension_profiles, empirical, baseline, priors, sampler, findings"


def changed(old: str, new: str, text: str = TEXT) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        parse_spec(text, source="bad.toml")
    assert str(err.value).startswith(f"invalid spec bad.toml: {len(err.value.problems)} problem(s)")
    return err.value.problems


# ---------------------------------------------------------------------------
# 1. unknown keys, one case per table
# ---------------------------------------------------------------------------
#: (old, new, the one problem): each table of the spec with a mistyped key
UNKNOWN_KEYS = [
    ('[instrument]\nname = "hitachi"', '[instrument]\nnmae = "hitachi"',
     "instrument.nmae: unknown key in [instrument] (did you mean 'name'?); allowed: name, description, "
     "id_column, group_column, outcome_column, extra_columns, covariates"),
    ('name = "doi"\nflag', 'name = "doi"\nflags = "x"\nflag',
     "constructs[0].flags: unknown key in [[constructs]] (did you mean 'flag'?); allowed: name, label, flag, "
     "subdimensions, subdimension_weights"),
    # the case: silently not reverse-coded before
    ('scale = "percent"\nreverse = true\nlabel = "Share of sales to the largest',
     'scale = "percent"\nrevers = true\nlabel = "Share of sales to the largest',
     f"items[8] (top_customer_share).revers: unknown key in [[items]] of scale 'percent' (did you mean "
     f"'reverse'?); allowed: {ITEM}, min, max"),
    ('scale = "likert"\nmin = 1\nmax = 5\nlabel = "Overseas', 'scale = "likert"\nmin = 1\nmax = 5\nwieght = 2\nlabel = "Overseas',
     f"items[3] (overseas_growth).wieght: unknown key in [[items]] of scale 'likert' (did you mean 'weight'?); "
     f"allowed: {ITEM}, min, max"),
    # a range key the item's family does not read: a cap on a Likert item was ignored
    ('scale = "likert"\nmin = 1\nmax = 5\nlabel = "Overseas', 'scale = "likert"\nmin = 1\nmax = 5\ncap = 4\nlabel = "Overseas',
     f"items[3] (overseas_growth).cap: unknown key in [[items]] of scale 'likert'; allowed: {ITEM}, min, max"),
    ("scale = \"count\"\ncap = 10", "scale = \"count\"\ncap = 10\nmin = 1",
     f"items[2] (n_countries).min: unknown key in [[items]] of scale 'count'; allowed: {ITEM}, max, cap"),
    ("standardize = false", "standardise = false",
     "profiles.standardise: unknown key in [profiles] (did you mean 'standardize'?); allowed: dimensions, "
     "thresholds, standardize, squared, hybrid_epsilon, types"),
    ('name = "mnc_follower"\ncoords = [1.0, 0.0]\nweights', 'name = "mnc_follower"\ncoords = [1.0, 0.0]\nweight',
     "profiles.types[2] (mnc_follower).weight: unknown key in [[profiles.types]] (did you mean 'weights'?); "
     "allowed: name, coords, weights"),
    ('[subdimension_profiles]\ndimensions', '[subdimension_profiles]\ndimension',
     "subdimension_profiles.dimension: unknown key in [subdimension_profiles] (did you mean 'dimensions'?); "
     "allowed: dimensions, types"),
    ('name = "dependent_domestic"\ncoords = [0.0, 0.0, 0.0, 0.0, 0.0',
     'name = "dependent_domestic"\ncoord = [0.0, 0.0]\ncoords = [0.0, 0.0, 0.0, 0.0, 0.0',
     "subdimension_profiles.types[3] (dependent_domestic).coord: unknown key in "
     "[[subdimension_profiles.types]] (did you mean 'coords'?); allowed: name, coords, weights"),
    ("top_share = 0.1", "top_share = 0.1\ntopshare = 0.2",
     "empirical.topshare: unknown key in [empirical] (did you mean 'top_share'?); allowed: outcome, top_share, "
     "dimensions"),
    ("seed = 20190601", "seeds = 20190601",
     "baseline.seeds: unknown key in [baseline] (did you mean 'seed'?); allowed: draws, seed, min_test_firms, "
     "min_calibration"),
    ('loading = { dist = "LogNormal", mu = 0.0, sigma = 0.5 }', 'loadings = { dist = "LogNormal", sigma = 0.5 }',
     "priors.loadings: unknown key in [priors] (did you mean 'loading'?); allowed: loading, loading_count, "
     "loading_continuous, cutpoint_sd, intercept, percent_cutpoints, precision, count_intercept_sd, "
     "inv_dispersion, residual_sd, lkj_eta, group_sd, invariance_sd"),
    ('loading = { dist = "LogNormal", mu = 0.0, sigma = 0.5 }', 'loading = { dist = "LogNormal", mu = 0.0, sd = 0.5 }',
     "priors.loading.sd: unknown key in [priors] loading, a LogNormal prior; allowed: dist, mu, sigma"),
    ('loading = { dist = "LogNormal", mu = 0.0, sigma = 0.5 }', 'lkj_eta = { eta = 2.0, dist = "LKJ" }',
     "priors.lkj_eta.dist: unknown key in [priors] lkj_eta; allowed: eta"),
    ("[sampler]\ndraws = 1000", "[sampler]\ndraw = 1000",
     f"sampler.draw: unknown key in [sampler] (did you mean 'draws'?); allowed: {SAMPLER}"),
    ("min_effect_f = 0.25\ndefinition = \"\"\"\\\n  As", "min_effect = 0.25\ndefinition = \"\"\"\\\n  As",
     "findings[4] (industries_differ_independence).min_effect: unknown key for kind 'groups_differ' (did you "
     "mean 'min_effect_f'?); allowed: key, title, kind, definition, construct, alpha, min_effect_f"),
    ("[sampler]\n", "[sampeler]\nx = 1\n[sampler]\n",
     f"[sampeler]: unknown table (did you mean 'sampler'?); allowed: {TABLES}"),
]


@pytest.mark.parametrize("old, new, message", UNKNOWN_KEYS, ids=[m.split(":", 1)[0] for _o, _n, m in UNKNOWN_KEYS])
def test_unknown_key_is_refused_with_the_allowed_keys(old, new, message):
    assert problems(changed(old, new)) == [message]


def test_every_unknown_key_is_one_problem():
    text = changed("standardize = false", "standardise = false\nsquare = true")
    text = changed('[instrument]\nname = "hitachi"', '[instrument]\nname = "hitachi"\nlabel = "x"', text)
    found = problems(text)
    assert [p.split(":", 1)[0] for p in found] == ["instrument.label", "profiles.standardise", "profiles.square"]
    assert "unknown key in [instrument]; allowed: name, description" in found[0]  # nothing close: no guess


def test_range_keys_are_those_the_family_reads(tmp_path):
    """Every bundled spec loads (each family's own range keys are allowed) and a binary
    item, whose range is fixed, takes none."""
    for path in [*BUNDLE_DIR.glob("*.toml"), *ROOT.glob("tests/data/**/*.toml")]:
        if not path.name.startswith("study"):
            load_spec(path)
    binary = ROOT / "tests" / "data" / "specs" / "binary_one.toml"
    text = binary.read_text(encoding="utf-8")
    found = problems(text.replace('scale = "binary"', 'scale = "binary"\nmax = 1', 1))
    assert len(found) == 1 and found[0].endswith(f"max: unknown key in [[items]] of scale 'binary'; allowed: {ITEM}")


# ---------------------------------------------------------------------------
# 2. ideal-type coordinates outside [0, 1]
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, message", [
    ('name = "independent_domestic"\ncoords = [0.0, 1.0]', 'name = "independent_domestic"\ncoords = [0.0, 1.5]',
     "profiles.types[1] (independent_domestic).coords: coordinates must be in [0, 1] (the range of the indices "
     "and sub-dimension scores), got independence = 1.5"),
    ('name = "mnc_follower"\ncoords = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]',
     'name = "mnc_follower"\ncoords = [100.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, -0.5]',
     "subdimension_profiles.types[2] (mnc_follower).coords: coordinates must be in [0, 1] (the range of the "
     "indices and sub-dimension scores), got stage = 100.0, bargaining = -0.5"),
])
def test_ideal_coordinates_outside_the_index_range(old, new, message):
    assert problems(changed(old, new)) == [message]


# ---------------------------------------------------------------------------
# 3. sampler and baseline settings
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, message", [
    ("[sampler]\ndraws = 1000", "[sampler]\ndraws = 0", "sampler.draws: must be a whole number of at least 1, got 0"),
    ("[sampler]\ndraws = 1000", "[sampler]\ndraws = 1000.0",
     "sampler.draws: must be a whole number of at least 1, got 1000.0"),
    ("tune = 1000\nchains", "tune = -1\nchains", "sampler.tune: must be a whole number of at least 0, got -1"),
    ("chains = 4", 'chains = "4"', "sampler.chains: must be a whole number of at least 1, got '4'"),
    ("chains = 4", "chains = 4\nquick_draws = 0", "sampler.quick_draws: must be a whole number of at least 1, got 0"),
    ("chains = 4", "chains = 4\nquick_tune = 2.5", "sampler.quick_tune: must be a whole number of at least 0, got 2.5"),
    ("chains = 4", "chains = 4\nquick_chains = true",
     "sampler.quick_chains: must be a whole number of at least 1, got True"),
    ("chains = 4", "chains = 4\nlarge_tune = -1", "sampler.large_tune: must be a whole number of at least 0, got -1"),
    ("chains = 4", "chains = 4\nlarge_firms = 0", "sampler.large_firms: must be a whole number of at least 1, got 0"),
    ('sampler = "auto" ', 'sampler = "nutpi" ',
     "sampler.sampler: must be one of 'auto', 'pymc', 'nutpie', got 'nutpi' (did you mean 'nutpie'?)"),
    ('sampler = "auto" ', 'sampler = "stan" ', "sampler.sampler: must be one of 'auto', 'pymc', 'nutpie', got 'stan'"),
    ('target_accept = "auto"', "target_accept = 0", "sampler.target_accept: must be 'auto' or a number in (0, 1), got 0"),
    ("[baseline]\ndraws = 1000", "[baseline]\ndraws = 0", "baseline.draws: must be a whole number of at least 1, got 0"),
    ("seed = 20190601", "seed = -1", "baseline.seed: must be a whole number of at least 0, got -1"),
    ("seed = 20190601", f"seed = {2**32}", f"baseline.seed: must be a whole number of at most {2**32 - 1}, got {2**32}"),
    ("seed = 20190601", "seed = 1.5", "baseline.seed: must be a whole number of at least 0, got 1.5"),
    ("min_test_firms = 20", "min_test_firms = 0", "baseline.min_test_firms: must be a whole number of at least 1, got 0"),
    ("min_calibration = 3", 'min_calibration = "3"',
     "baseline.min_calibration: must be a whole number of at least 1, got '3'"),
])
def test_sampler_and_baseline_settings(old, new, message):
    assert problems(changed(old, new)) == [message]


def test_spec_and_command_line_refuse_the_same_sampler_numbers_alike(tmp_path):
    """One rule, one wording: the spec's [sampler], fit_settings (Python) and the CLI's
    --draws/--tune/--chains/--seed share least values, the seed bound and the words."""
    from smeintl import UserError, api, cli, spec_checks

    assert api.SAMPLER_LEAST == spec_checks.SAMPLER_LEAST and cli.MAX_SEED == spec_checks.MAX_SEED
    spec = load_spec(SPEC)
    for key, least in spec_checks.SAMPLER_LEAST.items():
        bad = least - 1
        [from_spec] = problems(changed("chains = 4", f"chains = 4\nquick_{key} = {bad}"))
        with pytest.raises(UserError) as err:
            api.fit_settings(spec, **{key: bad})
        words = f"must be a whole number of at least {least}, got {bad}"
        assert from_spec == f"sampler.quick_{key}: {words}" and str(err.value).startswith(f"{key} {words}")
        assert main(["fit", str(DATA), f"--{key}", str(bad), "--out", str(tmp_path / "fit.nc")]) == 2
    assert not (tmp_path / "fit.nc").exists()


# ---------------------------------------------------------------------------
# 4. priors
# ---------------------------------------------------------------------------
LOADING = 'loading = { dist = "LogNormal", mu = 0.0, sigma = 0.5 }'


@pytest.mark.parametrize("new, message", [
    ('loading = { dist = "LogNormall", sigma = 1 }',
     "priors.loading.dist: unknown distribution 'LogNormall' (did you mean 'LogNormal'?); allowed: LogNormal, "
     "HalfNormal, Gamma, InverseGamma, Exponential, HalfCauchy, HalfStudentT, Weibull"),
    ('loading = { dist = "Beta", alpha = 1, beta = 1 }',
     "priors.loading.dist: unknown distribution 'Beta'; allowed: LogNormal, HalfNormal, Gamma"),
    ('intercept = { dist = "Normall", sigma = 1 }',
     "priors.intercept.dist: unknown distribution 'Normall' (did you mean 'Normal'?); allowed: Normal, StudentT, "
     "Logistic, Laplace, Cauchy"),
    ('loading = { dist = "Normal", mu = 0, sigma = 1 }',  # a loading prior with negative values
     "priors.loading.dist: 'Normal' takes negative values too, and loading is positive; allowed: LogNormal, "
     "HalfNormal"),
    ('intercept = { dist = "HalfNormal", sigma = 1 }',
     "priors.intercept.dist: 'HalfNormal' takes positive values only, and intercept may be any real number; "
     "allowed: Normal, StudentT, Logistic, Laplace, Cauchy"),
    ('loading = { dist = [] }', "priors.loading.dist: must be the name of a distribution, got []; allowed: "
                                "LogNormal, HalfNormal"),  # found by the fuzz test: a crash before
    ('loading = { dist = "Gamma", alpha = 2 }',
     "priors.loading.beta: required for a Gamma prior (parameters: alpha, beta)"),
    ('loading = { dist = "LogNormal", mu = "0", sigma = 0.5 }', "priors.loading.mu: must be a number, got '0'"),
    ('loading = { dist = "HalfNormal", sigma = 0 }', "priors.loading.sigma: must be a positive number, got 0"),
    ('percent_cutpoints = { mu = [-2.0], sigma = 2.0 }',
     "priors.percent_cutpoints.mu: must be a list of 2 numbers, got [-2.0]"),
    ("loading = 0.5", "priors.loading: must be a table like { dist = 'Normal', sigma = 1 }, got 0.5"),
])
def test_bad_prior_entries(new, message):
    found = problems(changed(LOADING, new))
    assert found[0].startswith(message), found
    assert len(found) == 1


def test_priors_with_another_distribution_still_load():
    text = changed(LOADING, 'loading = { dist = "HalfNormal", sigma = 1.0 }\n'
                            'intercept = { dist = "StudentT", nu = 4, mu = 0, sigma = 2 }\n'
                            'precision = { alpha = 3.0 }')
    spec = parse_spec(text, source="ok.toml")
    assert spec.priors["loading"] == {"dist": "HalfNormal", "sigma": 1.0}
    assert spec.priors["intercept"] == {"dist": "StudentT", "nu": 4, "mu": 0, "sigma": 2}
    assert spec.priors["precision"] == {"dist": "Gamma", "alpha": 3.0, "beta": 0.1}


# ---------------------------------------------------------------------------
# 5. [instrument], profiles and items: values that crashed or were misread
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, message", [
    ('extra_columns = ["employees"]', 'extra_columns = "employees"',
     "instrument.extra_columns: must be a list of column names (non-empty strings), got 'employees'"),
    ('extra_columns = ["employees"]', "extra_columns = 3",
     "instrument.extra_columns: must be a list of column names (non-empty strings), got 3"),
    ('extra_columns = ["employees"]', 'extra_columns = ["employees", "industry"]',
     "instrument.extra_columns: 'industry' is also the group_column; each firm column once"),
    ('id_column = "firm_id"', "id_column = 7", "instrument.id_column: must be a column name (a non-empty string), got 7"),
    ('group_column = "industry"', "group_column = true",
     'instrument.group_column: must be a column name, or "" (or false) for none, got True'),
    ('name = "hitachi"', "name = 1", "instrument.name: must be a string, got 1"),
    ("standardize = false", 'standardize = "false"', "profiles.standardize: must be true or false, got 'false'"),
    ('dimensions = ["doi", "independence"]\nthresholds', 'dimensions = "doi"\nthresholds',
     "profiles.dimensions: must be a non-empty list of construct names (non-empty strings), got 'doi'"),
    ('dimensions = ["doi", "independence"]\nthresholds', 'dimensions = []\nthresholds',
     "profiles.dimensions: must be a non-empty list of construct names (non-empty strings), got []"),
    ('dimensions = ["doi", "independence"]\nthresholds', 'dimensions = ["doi", "doi"]\nthresholds',
     "profiles.dimensions: duplicate name(s) 'doi'; each construct once"),
    ('dimensions = ["doi", "independence"]\n\n# Baseline', 'dimensions = ["doi", "indepedence"]\n\n# Baseline',
     "empirical.dimensions: 'indepedence' is neither a construct nor a sub-dimension (did you mean 'independence'?)"),
    ('scale = "percent"\nlabel = "Export', 'scale = "percent"\nmax = "100"\nlabel = "Export',
     "items[1] (export_share).max: must be a number, got '100'"),
    ('scale = "percent"\nlabel = "Export', 'scale = "percent"\nmin = 100\nlabel = "Export',
     "items[1] (export_share): 'max' (100) must be greater than 'min' (100)"),
    ('scale = "likert"\nmin = 1\nmax = 5\nlabel = "Overseas', 'scale = "likret"\nmin = 1\nmax = 5\nlabel = "Overseas',
     "items[3] (overseas_growth).scale: unknown scale type 'likret' (did you mean 'likert'?); allowed: likert, stage"),
])
def test_bad_values_are_refused_with_their_key(old, new, message):
    found = problems(changed(old, new))
    assert len(found) == 1 and found[0].startswith(message), found


@pytest.mark.parametrize("table, value", [("instrument", "hitachi"), ("profiles", [1, 2]),
                                          ("subdimension_profiles", 1), ("empirical", [1]), ("baseline", True),
                                          ("priors", "flat"), ("sampler", 5)])
def test_a_table_given_as_a_plain_value(table, value):
    """``sampler = 5`` at the top of the file: one problem (before: a crash for most)."""
    import tomli_w

    text = TEXT.replace(f"\n[{table}]\n", f"\n[old_{table}]\n").replace(f"[[{table}.", f"[[old_{table}.")
    found = [p for p in problems(tomli_w.dumps({table: value}) + text) if not p.startswith(f"[old_{table}]")]
    assert found[0] == f"[{table}]: must be a table, got {value!r}", found
    # what the table held is missing now: the ideal types (and the finding that names one)
    assert all("types" in p for p in found[1:]), found


# ---------------------------------------------------------------------------
# 6. the command line: exit 2, one message, no traceback
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["validate", "indices", "fit", "prior-check"])
def test_bad_spec_on_the_command_line(command, tmp_path, capsys):
    bad = tmp_path / "typo.toml"
    bad.write_text(changed('scale = "percent"\nreverse = true\nlabel = "Share of sales to the largest',
                           'scale = "percent"\nrevers = true\nlabel = "Share of sales to the largest'),
                   encoding="utf-8")
    argv = [command, str(DATA), "--spec", str(bad)]
    if command in ("indices", "fit"):
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"smeintl {command}: error: invalid spec {bad}: 1 problem(s)")
    assert "items[8] (top_customer_share).revers: unknown key" in err and "did you mean 'reverse'?" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# 7. study files: the same checks
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("[studdy]\nx = 1\n", "[studdy]: unknown table (did you mean 'study'?); allowed: study, grid, fit, sbc"),
    ("[study]\nseeds = 2\n", "study.seeds: unknown key in [study] (did you mean 'seed'?); allowed: name, "
                             "description, instrument, seed, replications, kind"),
    ("[grid]\nn_firm = [50]\n", "grid.n_firm: unknown key in [grid] (did you mean 'n_firms'?); allowed: n_firms, "
                                "loading, missing, n_groups, correlation, group_sd, shift_doi, shift_independence"),
    ("[fit]\nwarmup = 10\n", "fit.warmup: unknown key in [fit]; allowed: draws, tune, chains, sampler, "
                             "target_accept, group, compare_draws"),
    ("[fit]\ndraw = 10\n", "fit.draw: unknown key in [fit] (did you mean 'draws'?); allowed: draws, tune"),
    ("[sbc]\nbin = 10\n", "sbc.bin: unknown key in [sbc] (did you mean 'bins'?); allowed: parameters, quantities, thin, bins"),
    ("[fit]\ndraws = 0\n", "fit.draws: must be a whole number of at least 1, got 0"),
    ("[fit]\ntune = -5\n", "fit.tune: must be a whole number of at least 0, got -5"),
])
def test_study_files_refuse_unknown_keys_the_same_way(text, message):
    from smeintl.study.config import StudyError, parse_study

    base = '[study]\ninstrument = "hitachi.toml"\nseed = 1\nreplications = 1\n'
    if text.startswith("[study]"):
        base, text = base + text.split("\n", 1)[1], ""
    with pytest.raises(StudyError) as err:
        parse_study(base + text, source="s.toml", base_dir=BUNDLE_DIR)
    assert len(err.value.problems) == 1 and err.value.problems[0].startswith(message), err.value.problems
