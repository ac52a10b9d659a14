"""Findings declared by the instrument (``[[findings]]`` in the spec).

* validation: every bad finding (and flag) is reported with its key and, where it
  helps, what is allowed;
* the bundled spec files: the paper's six findings with today's texts; specs without
  doi/independence declare none;
* an instrument with other construct names and its own findings (``share_above``,
  ``positive_correlation``) through ``compare`` and ``run_robustness`` on a short real
  fit; the same instrument without findings through ``compare``, the robustness checks
  and the report;
* the paper's findings on the bundled data: the deterministic rows as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings

import numpy as np
import pytest

from conftest import BUNDLE_DIR, ROOT, SPEC, SPECS
from smeintl.spec import FINDING_KINDS, Finding, SpecError, load_spec, parse_spec

KINDS = "share_above, share_between, no_type, groups_differ, positive_correlation"

# ---------------------------------------------------------------------------
# a two-construct instrument with other names
# ---------------------------------------------------------------------------
TWO_BASE = """
[instrument]
name = "two_other"
group_column = "industry"
outcome_column = ""
extra_columns = []

[[constructs]]
name = "capability"
{flag_capability}
subdimensions = ["skills"]
[[constructs]]
name = "network"
{flag_network}
subdimensions = ["ties"]
""" + "".join(
    f"""
[[items]]
name = "{n}"
construct = "{c}"
subdimension = "{s}"
scale = "continuous"
min = 0
max = 10
"""
    for n, c, s in [("k1", "capability", "skills"), ("k2", "capability", "skills"), ("k3", "capability", "skills"),
                    ("n1", "network", "ties"), ("n2", "network", "ties"), ("n3", "network", "ties")]
) + """
[profiles]
[[profiles.types]]
name = "connected_expert"
coords = [1.0, 1.0]
[[profiles.types]]
name = "lone_expert"
coords = [1.0, 0.0]
[[profiles.types]]
name = "novice"
coords = [0.0, 0.5]
"""

TWO_FINDINGS = """
[[findings]]
key = "most_capable"
title = "Most firms are capable"
kind = "share_above"
construct = "capability"
share = 0.4

[[findings]]
key = "capability_with_network"
title = "Capability goes with networks"
kind = "positive_correlation"
constructs = ["capability", "network"]
"""


def _two(findings: str = TWO_FINDINGS, *, capability: str | None = 'flag = "capable"', network: str | None = None):
    return TWO_BASE.format(flag_capability=capability or "", flag_network=network or "") + findings


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as err:
        parse_spec(text, source="<findings test>")
    return err.value.problems


def _finding(body: str, key: str = "f") -> str:
    return f'\n[[findings]]\nkey = "{key}"\ntitle = "A finding"\n{body}\n'


# ---------------------------------------------------------------------------
# 1. validation
# ---------------------------------------------------------------------------
BAD_FINDINGS = [
    ('kind = "share_over"\nconstruct = "capability"\nshare = 0.5',
     f"findings[0] (f).kind: unknown kind 'share_over'; allowed: {KINDS}"),
    ('construct = "capability"\nshare = 0.5', f"findings[0] (f).kind: needs a kind; allowed: {KINDS}"),
    ('kind = "share_above"\nconstruct = "capability"\nshare = 0.5\nthreshold = 0.5',
     "findings[0] (f).threshold: unknown key for kind 'share_above'; allowed: key, title, kind, definition, "
     "construct, share"),
    ('kind = "no_type"\ntype = "novice"\nalpha = 0.05',
     "findings[0] (f).alpha: unknown key for kind 'no_type'; allowed: key, title, kind, definition, type"),
    ('kind = "share_above"\nconstruct = "doi"\nshare = 0.5',
     "findings[0] (f).construct: 'doi' is not a declared construct; declared: ['capability', 'network']"),
    ('kind = "groups_differ"\nconstruct = 3',
     "findings[0] (f).construct: 3 is not a declared construct; declared: ['capability', 'network']"),
    ('kind = "positive_correlation"\nconstructs = ["capability", "doi"]',
     "findings[0] (f).constructs: 'doi' not a declared construct; declared: ['capability', 'network']"),
    ('kind = "positive_correlation"\nconstructs = ["network", "network"]',
     "findings[0] (f).constructs: need two different constructs, got ['network', 'network']"),
    ('kind = "positive_correlation"\nconstructs = "capability"',
     "findings[0] (f).constructs: need a list of two construct names, got 'capability'"),
    ('kind = "positive_correlation"\nconstructs = ["capability", "network", "network"]',
     "findings[0] (f).constructs: need a list of two construct names"),
    ('kind = "no_type"\ntype = "mnc_follower"',
     "findings[0] (f).type: 'mnc_follower' is not a declared ideal type ([[profiles.types]]); declared: "
     "['connected_expert', 'lone_expert', 'novice']"),
    ('kind = "share_above"\nconstruct = "capability"\nshare = 1.5',
     "findings[0] (f).share: must be a number in [0, 1], got 1.5"),
    ('kind = "share_above"\nconstruct = "capability"\nshare = "half"',
     "findings[0] (f).share: must be a number in [0, 1], got 'half'"),
    ('kind = "share_above"\nconstruct = "capability"\nshare = true',
     "findings[0] (f).share: must be a number in [0, 1], got True"),
    ('kind = "share_between"\nconstruct = "capability"\nrange = [0.3, 0.1]',
     "findings[0] (f).range: must be [lo, hi] with 0 <= lo <= hi <= 1, got [0.3, 0.1]"),
    ('kind = "share_between"\nconstruct = "capability"\nrange = [0.1]',
     "findings[0] (f).range: must be [lo, hi] with 0 <= lo <= hi <= 1, got [0.1]"),
    ('kind = "share_between"\nconstruct = "capability"\nrange = [0.1, 1.2]',
     "findings[0] (f).range: must be [lo, hi] with 0 <= lo <= hi <= 1, got [0.1, 1.2]"),
    ('kind = "groups_differ"\nconstruct = "network"\nalpha = 0',
     "findings[0] (f).alpha: must be a number in (0, 1), got 0"),
    ('kind = "positive_correlation"\nconstructs = ["capability", "network"]\nalpha = 1.5',
     "findings[0] (f).alpha: must be a number in (0, 1), got 1.5"),
    ('kind = "groups_differ"\nconstruct = "network"\nmin_effect_f = -0.1',
     "findings[0] (f).min_effect_f: must be a number >= 0, got -0.1"),
    ('kind = "share_above"\nconstruct = "capability"',
     "findings[0] (f).share: required for kind 'share_above' (parameters: construct, share)"),
    ('kind = "no_type"', "findings[0] (f).type: required for kind 'no_type' (parameters: type)"),
    ('kind = "share_above"\nconstruct = "capability"\nshare = 0.5\ndefinition = 3',
     "findings[0] (f).definition: must be a non-empty string, got 3"),
]


@pytest.mark.parametrize("body, message", BAD_FINDINGS, ids=[m.split(": ", 1)[0] + " " + m[-20:] for _b, m in
                                                              BAD_FINDINGS])
def test_bad_finding_is_reported_with_its_key(body, message):
    problems = _problems(_two(_finding(body)))
    assert len(problems) == 1, problems
    assert problems[0].startswith(message), problems[0]


def test_missing_key_title_and_duplicate_keys():
    ok = 'kind = "share_above"\nconstruct = "capability"\nshare = 0.5'
    problems = _problems(_two(f'\n[[findings]]\ntitle = "t"\n{ok}\n'))
    assert problems == ["findings[0].key: needs a key (a non-empty string), got None"]
    problems = _problems(_two(f'\n[[findings]]\nkey = "f"\n{ok}\n'))
    assert problems == ["findings[0] (f).title: needs a title (a non-empty string), got None"]
    problems = _problems(_two(_finding(ok) + _finding(ok)))
    assert problems == ["findings[1] (f).key: duplicate finding key 'f' (also findings[0])"]


def test_findings_must_be_an_array_of_tables():
    problems = _problems('findings = "most_capable"\n' + _two(""))
    assert problems == ["[[findings]]: must be an array of tables ([[findings]] with key, title, kind, ...)"]


def test_every_problem_collected_at_once():
    text = _two(_finding('kind = "share_over"', "a") + _finding('kind = "no_type"\ntype = "x"', "b")
                + _finding('kind = "share_above"\nconstruct = "capability"\nshare = 2', "c"),
                capability='flag = "novice"')
    with pytest.raises(SpecError) as err:
        parse_spec(text, source="two.toml")
    probs = err.value.problems
    assert len(probs) == 4, probs
    assert [p.split(":", 1)[0] for p in probs] == ["constructs (capability).flag", "findings[0] (a).kind",
                                                   "findings[1] (b).type", "findings[2] (c).share"]
    assert str(err.value).startswith("invalid spec two.toml: 4 problem(s)")


@pytest.mark.parametrize("capability, network, message", [
    ('flag = "high"', 'flag = "high"', "constructs[1].flag: duplicate flag name 'high' (also construct 'capability')"),
    ('flag = ""', None, "constructs[0].flag: must be a non-empty string (the name of the threshold flag), got ''"),
    ("flag = 1", None, "constructs[0].flag: must be a non-empty string (the name of the threshold flag), got 1"),
    ('flag = "novice"', None, "constructs (capability).flag: 'novice' is an ideal type name; choose another flag name"),
    ('flag = "network"', None, "constructs (capability).flag: 'network' is a construct name; choose another flag name"),
    ('flag = "ties"', None, "constructs (capability).flag: 'ties' is a sub-dimension name; choose another flag name"),
    ('flag = "type"', None, "constructs (capability).flag: 'type' is reserved; choose another flag name"),
    ('flag = "industry"', None, "constructs (capability).flag: 'industry' is reserved; choose another flag name"),
])
def test_bad_flag(capability, network, message):
    assert _problems(_two(capability=capability, network=network)) == [message]


# ---------------------------------------------------------------------------
# 2. parsed findings: defaults, generated definitions, frozen, none
# ---------------------------------------------------------------------------
def test_parsed_findings_defaults_and_generated_definitions():
    text = _two(TWO_FINDINGS + _finding('kind = "groups_differ"\nconstruct = "network"', "differ")
                + _finding('kind = "share_between"\nconstruct = "network"\nrange = [0.1, 0.3]', "between")
                + _finding('kind = "no_type"\ntype = "novice"\ndefinition = "No novices."', "none"))
    spec = parse_spec(text)
    assert isinstance(spec.findings, tuple) and all(isinstance(f, Finding) for f in spec.findings)
    assert [f.key for f in spec.findings] == ["most_capable", "capability_with_network", "differ", "between", "none"]
    f = {x.key: x for x in spec.findings}
    assert f["most_capable"].parameters == (("construct", "capability"), ("share", 0.4))
    assert f["capability_with_network"].params == {"constructs": ("capability", "network"), "alpha": 0.05}
    assert f["differ"].params == {"construct": "network", "alpha": 0.05, "min_effect_f": 0.25}
    assert f["between"].params["range"] == (0.1, 0.3)
    assert f["capability_with_network"].constructs == ("capability", "network")
    assert f["none"].constructs == () and f["none"].definition == "No novices."
    assert f["differ"].parameter_text() == "construct = network, alpha = 0.05, min_effect_f = 0.25"
    assert f["between"].parameter_text() == "construct = network, range = [0.1, 0.3]"
    # generated definitions name the construct and the numbers
    assert "capability index is >= the spec's capability threshold" in f["most_capable"].definition
    assert "greater than 0.4" in f["most_capable"].definition
    assert "lies in [0.10, 0.30]" in f["between"].definition
    assert "p < 0.05" in f["differ"].definition and "> 0.25" in f["differ"].definition
    assert "capability and network" in f["capability_with_network"].definition
    assert spec.findings_of("groups_differ") == (f["differ"],)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f["differ"].key = "other"  # type: ignore[misc]
    assert set(FINDING_KINDS) == set(KINDS.split(", "))


def test_no_findings_and_default_flags():
    spec = parse_spec(_two("", capability=None))
    assert spec.findings == ()
    assert spec.flag_names == ("high_capability", "high_network")
    assert parse_spec(_two()).flag_names == ("capable", "high_network")


# ---------------------------------------------------------------------------
# 3. the bundled spec files
# ---------------------------------------------------------------------------
PAPER = [
    ("most_independent", "Most firms are independent", "share_above",
     (("construct", "independence"), ("share", 0.5))),
    ("about_20pct_internationalizing", "About 20% of firms are internationalizing", "share_between",
     (("construct", "doi"), ("range", (0.1, 0.3)))),
    ("no_mnc_followers", "No firm is an MNC follower", "no_type", (("type", "mnc_follower"),)),
    ("industries_differ_doi", "DOI differs across industries", "groups_differ",
     (("construct", "doi"), ("alpha", 0.05), ("min_effect_f", 0.25))),
    ("industries_differ_independence", "Independence differs across industries", "groups_differ",
     (("construct", "independence"), ("alpha", 0.05), ("min_effect_f", 0.25))),
    ("complementary", "Internationalization and independence are complementary", "positive_correlation",
     (("constructs", ("doi", "independence")), ("alpha", 0.05))),
]
#: SHA-256 of the six definitions joined by newlines, as the code had them before the
#: findings moved into the spec (the reports' texts stay the same)
PAPER_DEFINITIONS_SHA256 = "546e2ddeb23b7d2ef043228600bf27c767fa5b3d756a6f457a2c9095a4f07c79"


def test_hitachi_declares_the_paper_findings():
    spec = load_spec(SPEC)
    assert [(f.key, f.title, f.kind, f.parameters) for f in spec.findings] == PAPER
    text = "\n".join(f.definition for f in spec.findings)
    assert hashlib.sha256(text.encode()).hexdigest() == PAPER_DEFINITIONS_SHA256
    assert spec.flag_names == ("internationalizing", "independent")


@pytest.mark.parametrize("path", [BUNDLE_DIR / "tiny_instrument.toml", SPECS / "continuous_two.toml",
                                  ROOT / "tests" / "data" / "golden" / "golden_spec.toml"])
def test_other_doi_specs_declare_the_same_findings(path):
    spec, paper = load_spec(path), load_spec(SPEC)
    assert spec.findings == paper.findings
    assert spec.flag_names == paper.flag_names


@pytest.mark.parametrize("name", ["binary_one", "binary_long"])
def test_specs_without_doi_declare_no_findings(name):
    spec = load_spec(SPECS / f"{name}.toml")
    assert spec.findings == ()
    assert spec.flag_names == ("high_export_orientation",)


def test_spec_variants_keep_flags_and_findings():
    from smeintl.robustness.variants import spec_to_toml, spec_variant

    spec = load_spec(SPEC)
    back = parse_spec(spec_to_toml(spec))
    assert back.findings == spec.findings and back.constructs == spec.constructs
    for kind, value in (("thresholds", 0.4), ("all_ordinal", None), ("drop_subdimension", "stage")):
        sv, _ = spec_variant(spec, kind, value)
        assert sv.findings == spec.findings and sv.flag_names == spec.flag_names, kind
    one, _ = spec_variant(spec, "one_construct")
    assert one.findings == ()  # its findings are evaluated with the original spec


# ---------------------------------------------------------------------------
# 4. the paper's findings on the bundled data (deterministic rows)
# ---------------------------------------------------------------------------
def test_hitachi_deterministic_findings_as_before(hitachi_spec, hitachi_survey):
    from smeintl.findings import FINDING_COLUMNS
    from smeintl.indices import compute_indices
    from smeintl.robustness.findings import det_verdicts, finding_rows

    ind = compute_indices(hitachi_survey, hitachi_spec).indices.to_numpy()
    rows = finding_rows(hitachi_spec, hitachi_survey, ind)
    assert list(rows.columns) == list(FINDING_COLUMNS)
    want = [
        ("most_independent", True, 0.8292682926829268, "share_independent", ""),
        ("about_20pct_internationalizing", True, 0.1951219512195122, "share_internationalizing", ""),
        ("no_mnc_followers", True, 0.0, "count_mnc_follower", ""),
        ("industries_differ_doi", False, 0.06348827097864002, "ANOVA p",
         "not estimable: the fit has no industry level (group=False)"),
        ("industries_differ_independence", True, 0.003559636215218733, "ANOVA p",
         "not estimable: the fit has no industry level (group=False)"),
        ("complementary", False, 0.22226043092130968, "Pearson r", "not estimable: the fit has no latent correlation"),
    ]
    got = [(r.finding, r.deterministic, r.deterministic_value, r.deterministic_quantity, r.note)
           for r in rows.itertuples(index=False)]
    assert [g[0] for g in got] == [w[0] for w in want]
    for g, w in zip(got, want):
        assert g[1] == w[1] and g[3:] == w[3:], g
        assert math.isclose(g[2], w[2], rel_tol=1e-12, abs_tol=1e-15), g
    cells = {k: v.text() for k, v in det_verdicts(rows, ind, hitachi_spec).items()}
    assert cells == {
        "most_independent": "holds (0.83)", "about_20pct_internationalizing": "holds (0.20)",
        "no_mnc_followers": "holds (0)", "industries_differ_doi": "does not hold (p=0.0635)",
        "industries_differ_independence": "holds (p=0.00356)", "complementary": "does not hold (r=0.22, p=0.0813)",
    }


def test_groups_differ_on_other_constructs_in_industry_regression():
    """industry_regression evaluates every groups_differ finding on its own construct and alpha."""
    from smeintl.robustness import run_robustness
    from smeintl.simulate import simulate_survey, typical_params

    text = _two(TWO_FINDINGS + _finding('kind = "groups_differ"\nconstruct = "network"\nalpha = 0.2', "net_differs"))
    spec = parse_spec(text)
    sim = simulate_survey(spec, 60, typical_params(spec, n_groups=3, group_sd=1.0, random_seed=5), n_groups=3,
                          random_seed=5)
    res = run_robustness(None, sim.survey, checks=["industry_regression"], progress=False)
    c = res.check("industry_regression")
    cells = c.variants["industry_regression: OLS HC3"]
    assert list(cells) == ["most_capable", "capability_with_network", "net_differs"]
    assert cells["most_capable"].text() == "n/a: not addressed by this check"
    p = float(c.table.query("kind == 'test' and variable == 'network' and model.str.startswith('OLS')",
                            engine="python")["p"].iloc[0])
    assert cells["net_differs"].holds == (p < 0.2)
    assert "A finding holds when p < 0.2." in c.text
    assert list(res.matrix.index) == ["most_capable", "capability_with_network", "net_differs"]


# ---------------------------------------------------------------------------
# 5. another instrument through compare and the robustness checks (short real fit)
# ---------------------------------------------------------------------------
CHEAP = ("factor_analysis", "industry_regression", "thresholds", "weights", "profiles", "leave_one_item_out",
         "leave_one_subdimension_out", "bootstrap")


@pytest.fixture(scope="module")
def two_fit():
    from smeintl.measurement import MeasurementModel
    from smeintl.simulate import simulate_survey, typical_params

    spec = parse_spec(_two(), source="two_other.toml")
    sim = simulate_survey(spec, 80, typical_params(spec, n_groups=3, correlation=0.5, random_seed=2), n_groups=3,
                          random_seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = MeasurementModel(spec).fit(sim.survey, draws=100, tune=150, chains=2, random_seed=3, progressbar=False)
    return spec, sim.survey, fit


def test_other_instrument_compare(two_fit, tmp_path):
    from smeintl.predictive import compare, write_comparison

    spec, survey, fit = two_fit
    comp = compare(fit, survey)
    fd = comp.findings.set_index("finding")
    assert list(fd.index) == ["most_capable", "capability_with_network"]
    share = fd.loc["most_capable"]
    assert share.deterministic_quantity == "share_capable"
    assert share.posterior_quantity == "share_capable (true score)"
    assert share.deterministic == (share.deterministic_value > 0.4)
    st = comp.sample_stats.set_index("statistic")
    assert share.deterministic_value == st.loc["share_capable", "deterministic"]
    assert "share_high_network" in st.index
    corr = fd.loc["capability_with_network"]
    assert corr.deterministic_quantity == "Pearson r" and corr.posterior_quantity == "latent correlation"
    assert corr.note.startswith("deterministic r = ")
    for r in fd.itertuples():
        assert 0 <= r.posterior_probability <= 1 and 0 <= r.replicated_probability <= 1
        assert r.definition == {f.key: f.definition for f in spec.findings}[r.Index]
    assert list(comp.summary()["title"]) == ["Most firms are capable", "Capability goes with networks"]
    text = comp.text()
    assert "Most firms are capable" in text and "Capability goes with networks" in text
    write_comparison(comp, tmp_path)
    assert (tmp_path / "findings.csv").read_text().count("\n") >= 3


def test_other_instrument_robustness(two_fit):
    from smeintl.robustness import run_robustness

    spec, survey, fit = two_fit
    keys = ["most_capable", "capability_with_network"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_robustness(fit, survey, checks=CHEAP, bootstrap_draws=50, progress=False)
    assert not res.notes, res.notes
    assert list(res.matrix.index) == keys
    for base in ("deterministic", "posterior"):
        assert all(res.baselines[base][k].holds is not None for k in keys), base
    for c in res.checks:
        assert set(c.findings) == set(keys), c.name
    fa = res.check("factor_analysis")
    cells = fa.variants["factor_analysis: factor scores"]
    assert cells["most_capable"].text() == "n/a: not addressed by this check"
    assert cells["capability_with_network"].kind == "value" and ", p=" in cells["capability_with_network"].value
    assert "Complementarity: Pearson correlation of the one-factor (regression) scores" in fa.text
    ir = res.check("industry_regression")
    assert ir.passed is None  # no groups_differ finding to address
    assert "declares no group-difference finding" in ir.text
    th = res.check("thresholds")
    assert any(v["most_capable"].holds is not None for v in th.variants.values())
    assert "share_capable" in th.table.columns
    assert "most_capable" in res.text()


# ---------------------------------------------------------------------------
# 6. an instrument without findings: compare, robustness and the report
# ---------------------------------------------------------------------------
def test_no_findings_compare_robustness_and_report(two_fit, tmp_path):
    from smeintl.findings import FINDING_COLUMNS
    from smeintl.measurement import summarize_fit
    from smeintl.predictive import compare, write_comparison
    from smeintl.profiles import run_deterministic
    from smeintl.report import write_report
    from smeintl.robustness import run_robustness, write_robustness

    _spec, survey, fit = two_fit
    bare = parse_spec(_two(""), source="two_without_findings.toml")
    assert bare.findings == ()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = compare(fit, survey, bare)
        res = run_robustness(fit, survey, bare, checks=CHEAP, bootstrap_draws=30, progress=False)
        det = run_deterministic(survey, spec=bare)
        fs = summarize_fit(fit, bare)
    assert list(comp.findings.columns) == list(FINDING_COLUMNS) and len(comp.findings) == 0
    assert len(comp.summary()) == 0
    assert "Findings: the instrument declares no findings." in comp.text()
    assert comp.to_dict()["findings"] == []
    write_comparison(comp, tmp_path / "cmp")
    assert (tmp_path / "cmp" / "findings.csv").read_text() == ",".join(FINDING_COLUMNS) + "\n"

    assert not res.notes, res.notes
    assert len(res.matrix) == 0 and "agreement" in res.matrix.columns
    assert len(res.summary()) == 0
    assert "(none: the instrument declares no findings)" in res.text()
    assert all(c.findings == {} for c in res.checks)
    assert "declares no findings" in res.check("thresholds").text
    write_robustness(res, tmp_path / "rob")
    assert (tmp_path / "rob" / "robustness.csv").exists()

    write_report(tmp_path / "report", spec=bare, survey=survey, det=det, idata=fit, fit_summary=fs, comparison=comp,
                 robustness=res)
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "The instrument declares no findings (no [[findings]] in the spec): nothing to test." in md
    assert "The instrument declares no findings (no [[findings]] in the spec)." in md
    assert "The instrument declares no findings: the checks below report their own numbers only." in md


def test_report_lists_the_findings_parameters(two_fit, tmp_path):
    from smeintl.measurement import summarize_fit
    from smeintl.predictive import compare
    from smeintl.profiles import run_deterministic
    from smeintl.report import write_report

    spec, survey, fit = two_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = compare(fit, survey)
        det = run_deterministic(survey)
        fs = summarize_fit(fit, spec)
    write_report(tmp_path, spec=spec, survey=survey, det=det, idata=fit, fit_summary=fs, comparison=comp)
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert ("most_capable: share_above, construct = capability, share = 0.4; capability_with_network: "
            "positive_correlation, constructs = [capability, network], alpha = 0.05; flags: capable = capability "
            ">= 0.5, high_network = network >= 0.5.") in md
    assert "Capability goes with networks (capability_with_network)" in md
    assert np.isfinite(comp.findings.posterior_probability).all()
