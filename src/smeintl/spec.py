"""Instrument spec files: load and validate TOML, return frozen dataclasses.

A spec describes one survey instrument: its constructs (any number, one included),
their sub-dimensions and threshold flags, the items (scale type, range or cap, reverse
flag, weight), the ideal profiles used by the deterministic method, the headline
findings it declares (``[[findings]]``, :mod:`smeintl.spec_findings`; none when
absent), and the priors and sampler settings of the Bayesian measurement model.  The
model is data: code defaults live in :data:`DEFAULT_PRIORS` / :data:`DEFAULT_SAMPLER`
and are merged as ``defaults | spec`` (a prior that names another distribution replaces
the default's parameters).

Every problem found in a file is collected and reported at once in a
:class:`SpecError` whose message names the file and the offending key.  Every table
takes a fixed set of keys: an unknown one (``revers = true``) is a problem naming the
table, the allowed keys and the closest of them; ideal-type coordinates lie in [0, 1];
the ``[instrument]`` columns, ``[priors]``, ``[sampler]`` and ``[baseline]`` settings are
checked in :mod:`smeintl.spec_checks`.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import families
from . import spec_checks as checks
from .errors import did_you_mean
from .resources import DEFAULT_SPEC, bundled, resolve
from .spec_checks import valid_target_accept
from .spec_findings import FINDING_KINDS, Finding, parse_findings

__all__ = [
    "DEFAULT_PRIORS",
    "DEFAULT_SAMPLER",
    "SpecError",
    "Item",
    "Construct",
    "Finding",
    "FINDING_KINDS",
    "IdealType",
    "ProfileSet",
    "EmpiricalIdeal",
    "Spec",
    "load_spec",
    "parse_spec",
    "default_spec_path",
    "valid_target_accept",
]


#: Weakly informative default priors of the measurement model, by parameter.
#: A spec's ``[priors]`` table overrides any entry (``defaults | spec``).
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    # positive loadings (after reverse coding), bounded away from zero
    "loading": {"dist": "LogNormal", "mu": 0.0, "sigma": 0.5},
    "loading_count": {"dist": "LogNormal", "mu": -1.0, "sigma": 0.5},
    "loading_continuous": {"dist": "LogNormal", "mu": -0.5, "sigma": 0.5},
    # ordinal cutpoints: Normal around the logits of equiprobable categories
    "cutpoint_sd": {"sigma": 1.5},
    # percent items (ordered beta): logit-mean intercept, 0/1 cutpoints, precision
    "intercept": {"dist": "Normal", "mu": 0.0, "sigma": 1.5},
    "percent_cutpoints": {"mu": [-2.0, 2.0], "sigma": 2.0},
    "precision": {"dist": "Gamma", "alpha": 2.0, "beta": 0.1},
    # count items: log-mean intercept centred on the log sample mean; 1/dispersion
    "count_intercept_sd": {"sigma": 1.0},
    "inv_dispersion": {"dist": "HalfNormal", "sigma": 1.0},
    # continuous items (standardized internally): residual sd
    "residual_sd": {"dist": "HalfNormal", "sigma": 1.0},
    # latent structure
    "lkj_eta": {"eta": 2.0},
    "group_sd": {"dist": "HalfNormal", "sigma": 0.5},
    # invariance = "approximate": sd of the items' group deviations (log loadings, locations on
    # the link scale), blavaan's wiggle.sd (docs/invariance.md)
    "invariance_sd": {"sigma": 0.1},
}

#: What each prior is of, the scale it is stated on and the item families that use it (by
#: family name; None: the latent structure).  ``smeintl prior-check`` prints them with the
#: spec's values (docs/priors.md).
PRIOR_NOTES: dict[str, tuple[tuple[str, ...] | None, str]] = {
    "loading": (("ordinal", "binary", "percent"), "loading, logit scale per latent sd (positive after reverse coding)"),
    "loading_count": (("count",), "loading, log scale per latent sd"),
    "loading_continuous": (("continuous",), "loading, in item sds (sample standardization) per latent sd"),
    "cutpoint_sd": (("ordinal",), "sd of the cutpoints around the logits of equiprobable categories"),
    "intercept": (("binary", "percent"), "intercept, logit scale"),
    "percent_cutpoints": (("percent",), "cutpoints of exact 0s and 100s, logit scale"),
    "precision": (("percent",), "precision of the beta part"),
    "count_intercept_sd": (("count",), "sd of the log-mean intercept around the log sample mean"),
    "inv_dispersion": (("count",), "inverse dispersion of the negative binomial"),
    "residual_sd": (("continuous",), "residual sd, in item sds (sample standardization)"),
    "lkj_eta": (None, "LKJ shape of the latent correlations"),
    "group_sd": (None, "sd of the group (industry) latent means, latent sds; with two or more groups"),
    "invariance_sd": (None, "sd of the items' group deviations (log loadings, link-scale locations); "
                            "invariance = 'approximate' only"),
}

#: Default sampler settings; a spec's ``[sampler]`` table overrides entries.
DEFAULT_SAMPLER: dict[str, Any] = {
    "draws": 1000,
    "tune": 1000,
    "chains": 4,
    # "auto": 0.9 with nutpie (0.8 from 2,000 firms), 0.95 with PyMC's NUTS (measured: see
    # measurement.AUTO_TARGET_ACCEPT)
    "target_accept": "auto",
    "sampler": "auto",  # nutpie where installed (faster here), else PyMC NUTS
    "quick_draws": 300,
    "quick_tune": 300,
    "quick_chains": 2,
    # from large_firms firms a fit that is not given draws, tune or chains samples
    # large_chains x (large_tune + large_draws) (measured: see measurement.LARGE_SURVEY)
    "large_firms": 5000,
    "large_draws": 900,
    "large_tune": 150,
    "large_chains": 2,
}

#: names a construct's flag may not take: keys of :func:`smeintl.profiles.type_arrays`, the
#: hybrid label and fixed columns of the per-firm table
_RESERVED_FLAGS = frozenset({"distance", "fit", "type", "type_names", "flags", "flag_valid", "flag_names", "hybrid",
                             "firm_id", "industry", "subtype", "outcome", "empirical_dist", "empirical_top"})

_DEFAULT_BASELINE = {"draws": 1000, "seed": 20190601, "min_test_firms": 20, "min_calibration": 3}


class SpecError(ValueError):
    """A spec file is invalid.  ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid spec {source}: {len(self.problems)} problem(s)\n{lines}")


@dataclass(frozen=True)
class Item:
    """One questionnaire item."""

    name: str
    construct: str
    subdimension: str
    scale: str
    min: float
    max: float
    reverse: bool = False
    weight: float = 1.0
    label: str = ""

    @property
    def n_categories(self) -> int:
        """Number of ordered categories (ordinal and binary scales)."""
        return self.family.n_categories(self)

    @property
    def family(self):
        """The item family serving this item's scale (:mod:`smeintl.families`)."""
        from .families import family_of

        return family_of(self.scale)

    @property
    def cap(self) -> float:
        """Cap of a count item (``max``)."""
        return self.max


@dataclass(frozen=True)
class Construct:
    """A construct: its sub-dimensions and their weights; ``flag`` names the firms whose
    index is at least the construct's threshold (``flag = "internationalizing"`` in the
    spec; default ``high_<name>``)."""

    name: str
    label: str
    subdimensions: tuple[str, ...]
    subdimension_weights: tuple[float, ...]
    flag: str = ""

    @property
    def flag_name(self) -> str:
        """The name of the construct's threshold flag (``high_<name>`` when none is set)."""
        return self.flag or f"high_{self.name}"


@dataclass(frozen=True)
class IdealType:
    name: str
    coords: tuple[float, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class ProfileSet:
    """Ideal types on a list of dimensions (construct indices or sub-dimension scores)."""

    dimensions: tuple[str, ...]
    types: tuple[IdealType, ...]

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)


@dataclass(frozen=True)
class EmpiricalIdeal:
    """Venkatraman & Prescott empirical ideal: mean profile of the top firms on outcome."""

    outcome: str = "outcome"
    top_share: float = 0.1
    dimensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    """A validated instrument spec (frozen)."""

    name: str
    description: str
    constructs: tuple[Construct, ...]
    items: tuple[Item, ...]
    profiles: ProfileSet
    subdimension_profiles: ProfileSet | None
    empirical: EmpiricalIdeal
    thresholds: Mapping[str, float]
    hybrid_epsilon: float | None
    standardize: bool
    squared: bool
    id_column: str
    group_column: str | None
    outcome_column: str | None
    extra_columns: tuple[str, ...]
    baseline: Mapping[str, Any]
    priors: Mapping[str, Mapping[str, Any]]
    sampler: Mapping[str, Any]
    findings: tuple[Finding, ...] = ()
    covariates: tuple[str, ...] = ()
    id_declared: bool = True
    source: str = "<string>"
    text: str = ""
    _raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # ---- convenience lookups -------------------------------------------------
    @property
    def construct_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.constructs)

    @property
    def item_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items)

    @property
    def subdimension_names(self) -> tuple[str, ...]:
        return tuple(s for c in self.constructs for s in c.subdimensions)

    @property
    def has_typology(self) -> bool:
        """Whether the spec declares ideal types (``[[profiles.types]]``): without them the
        deterministic method computes the indices and flags only, and the typology, the
        predictive comparison and the robustness checks are not run."""
        return bool(self.profiles.types)

    def prior_table(self, invariance: str = "none") -> list[tuple[str, str, str, str]]:
        """The measurement model's priors as ``(key, distribution, of what, used by)`` rows:
        the spec's values (defaults merged with ``[priors]``), for the priors the
        instrument's item families use and those of the latent structure (``invariance_sd``
        with ``invariance="approximate"`` only)."""
        used = {i.family.name for i in self.items}
        rows = []
        for key, entry in self.priors.items():
            fams, what = PRIOR_NOTES.get(key, (None, ""))
            if fams is not None and not used & set(fams):
                continue
            if (key == "group_sd" and self.group_column is None) or (key == "lkj_eta" and len(self.constructs) < 2):
                continue
            if key == "invariance_sd" and invariance != "approximate":
                continue
            params = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "dist")
            rows.append((key, f"{entry.get('dist', '')}({params})" if "dist" in entry else params, what,
                         "latent structure" if fams is None else ", ".join(f for f in fams if f in used)))
        return rows

    def skipped_steps(self) -> dict[str, str]:
        """The steps of the main job that this spec leaves out, each with the reason (for the
        log and the report): the ``typology``, the ``comparison`` and the ``robustness``
        checks without ideal types.  (Without declared findings they run and say that
        there are none.)"""
        out: dict[str, str] = {}
        if not self.has_typology:
            why = ("the spec declares no ideal types ([[profiles.types]]), so there is no typology to "
                   "compare or to check")
            out["typology"] = out["comparison"] = out["robustness"] = why
        return out

    @property
    def flag_names(self) -> tuple[str, ...]:
        """The constructs' threshold flag names, in construct order."""
        return tuple(c.flag_name for c in self.constructs)

    def findings_of(self, kind: str) -> tuple[Finding, ...]:
        """The declared findings of one kind (:data:`FINDING_KINDS`), in spec order."""
        return tuple(f for f in self.findings if f.kind == kind)

    def item(self, name: str) -> Item:
        for it in self.items:
            if it.name == name:
                return it
        raise KeyError(name)

    def construct(self, name: str) -> Construct:
        for c in self.constructs:
            if c.name == name:
                return c
        raise KeyError(name)

    def items_of(self, *, construct: str | None = None, subdimension: str | None = None) -> tuple[Item, ...]:
        return tuple(
            i
            for i in self.items
            if (construct is None or i.construct == construct)
            and (subdimension is None or i.subdimension == subdimension)
        )

    def subdimension_construct(self, subdimension: str) -> str:
        for c in self.constructs:
            if subdimension in c.subdimensions:
                return c.name
        raise KeyError(subdimension)

    @property
    def hash(self) -> str:
        """SHA-256 of the spec text (identifies the instrument in fits and reports)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def replace(self, **changes: Any) -> "Spec":
        """A copy with some fields changed (used by sensitivity analyses)."""
        import dataclasses

        return dataclasses.replace(self, **changes)


def default_spec_path() -> Path:
    """Path of the bundled default instrument ``hitachi.toml`` (:mod:`smeintl.resources`)."""
    return bundled(DEFAULT_SPEC)


def load_spec(path: str | Path | None = None) -> Spec:
    """Load and validate a spec file (default: the bundled ``hitachi.toml``); a bare name
    of a bundled file that is not in the working folder is the bundled file
    (:func:`smeintl.resources.resolve`)."""
    p = resolve(path) if path is not None else default_spec_path()
    if not p.exists():
        raise SpecError(str(p), ["file not found"])
    text = p.read_text(encoding="utf-8")
    return parse_spec(text, source=str(p))


def parse_spec(text: str, source: str = "<string>") -> Spec:
    """Parse and validate spec TOML text; ``source`` names it in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(source, [f"not valid TOML: {exc}"]) from None
    return _build(raw, text, source)


# ---------------------------------------------------------------------------
def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _build(raw: dict, text: str, source: str) -> Spec:
    problems: list[str] = []
    tables = checks.TABLE_KEYS["spec"]
    problems.extend(f"[{k}]: unknown table{did_you_mean(k, tables)}; allowed: {', '.join(tables)}"
                    for k in raw if k not in tables)
    inst = checks.check_instrument(checks.as_table(raw.get("instrument"), "instrument", problems),
                                   Path(source).stem, problems)
    name, description = inst["name"], inst["description"]
    id_column, group_column, outcome_column = inst["id_column"], inst["group_column"], inst["outcome_column"]
    extra_columns, covariates = inst["extra_columns"], inst["covariates"]

    # ---- constructs ---------------------------------------------------------
    constructs: list[Construct] = []
    raw_cons = raw.get("constructs")
    if not isinstance(raw_cons, list) or not raw_cons:
        problems.append("[[constructs]]: at least one construct is required")
        raw_cons = []
    seen_c: set[str] = set()
    cnames_all = {str(c["name"]) for c in raw_cons if isinstance(c, dict) and "name" in c}
    seen_flags: dict[str, str] = {}
    seen_sd: dict[str, str] = {}
    for k, c in enumerate(raw_cons):
        key = f"constructs[{k}]"
        if not isinstance(c, dict) or "name" not in c:
            problems.append(f"{key}: needs a 'name'")
            continue
        checks.unknown_keys(c, checks.TABLE_KEYS["[[constructs]]"], key, problems, table_name="[[constructs]]")
        cname = str(c["name"])
        if cname in seen_c:
            problems.append(f"{key}.name: duplicate construct name {cname!r}")
        seen_c.add(cname)
        # no sub-dimensions declared: one, named like the construct, holding all its items
        sds = c.get("subdimensions", [cname])
        if not isinstance(sds, list) or not sds:
            problems.append(f"{key}.subdimensions: a non-empty list of sub-dimension names, or leave the key out "
                            f"(one sub-dimension holding all of {cname!r}'s items), got {sds!r}")
            sds = []
        sds = [str(s) for s in sds]
        for s in sds:
            if s in cnames_all and not (s == cname and len(sds) == 1):
                problems.append(f"{key}.subdimensions: {s!r} is a construct name; only a construct's single "
                                f"sub-dimension may be named like it (the default when none are declared)")
            if s in seen_sd:
                problems.append(
                    f"{key}.subdimensions: duplicate sub-dimension name {s!r} (also in construct {seen_sd[s]!r})"
                )
            seen_sd[s] = cname
        w = c.get("subdimension_weights", [1.0] * len(sds))
        if not isinstance(w, list) or len(w) != len(sds):
            problems.append(f"{key}.subdimension_weights: need {len(sds)} weights, one per sub-dimension")
            w = [1.0] * len(sds)
        elif not all(_num(x) for x in w):
            problems.append(f"{key}.subdimension_weights: weights must be numbers")
            w = [1.0] * len(sds)
        elif any(x < 0 for x in w):
            problems.append(f"{key}.subdimension_weights: weights must not be negative, got {w}")
        elif sds and sum(w) <= 0:
            problems.append(f"{key}.subdimension_weights: weights must not all be zero")
        flag = c.get("flag", f"high_{cname}")
        if not isinstance(flag, str) or not flag.strip():
            problems.append(f"{key}.flag: must be a non-empty string (the name of the threshold flag), got {flag!r}")
            flag = f"high_{cname}"
        elif flag in seen_flags:
            problems.append(f"{key}.flag: duplicate flag name {flag!r} (also construct {seen_flags[flag]!r})")
        seen_flags[flag] = cname
        constructs.append(
            Construct(cname, str(c.get("label", cname)), tuple(sds), tuple(float(x) for x in w), flag)
        )

    # ---- items --------------------------------------------------------------
    items: list[Item] = []
    raw_items = raw.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        problems.append("[[items]]: at least one item is required")
        raw_items = []
    seen_i: set[str] = set()
    reserved = {id_column, group_column, outcome_column, *extra_columns, *covariates}
    for k, it in enumerate(raw_items):
        key = f"items[{k}]"
        if not isinstance(it, dict) or "name" not in it:
            problems.append(f"{key}: needs a 'name'")
            continue
        iname = str(it["name"])
        key = f"items[{k}] ({iname})"
        if iname in seen_i:
            problems.append(f"{key}.name: duplicate item name {iname!r}")
        if iname in reserved:
            problems.append(f"{key}.name: {iname!r} is a reserved firm column")
        seen_i.add(iname)
        scale = str(it.get("scale", ""))
        if scale not in families.scales():
            problems.append(f"{key}.scale: unknown scale type {scale!r}{did_you_mean(scale, families.scales())}; "
                            f"allowed: {', '.join(families.scales())}")
        cons = it.get("construct")
        if cons is None or str(cons) not in seen_c:
            problems.append(
                f"{key}.construct: item is in no declared construct (got {cons!r}; declared: {sorted(seen_c)})"
            )
        sd = it.get("subdimension")
        own = [s for s, c in seen_sd.items() if c == str(cons)]
        if sd is None and len(own) == 1:
            sd = own[0]  # the construct's only sub-dimension
        if sd is None and len(own) > 1:
            problems.append(f"{key}.subdimension: construct {cons!r} has several sub-dimensions; name the item's "
                            f"(one of {own})")
        elif sd is None or str(sd) not in seen_sd:
            problems.append(f"{key}.subdimension: unknown sub-dimension {sd!r}; declared: {sorted(seen_sd)}")
        elif cons is not None and seen_sd[str(sd)] != str(cons):
            problems.append(
                f"{key}.subdimension: sub-dimension {sd!r} belongs to construct {seen_sd[str(sd)]!r}, not {cons!r}"
            )
        weight = it.get("weight", 1.0)
        if not _num(weight) or weight < 0:
            problems.append(f"{key}.weight: weight must be a number >= 0, got {weight!r}")
            weight = 1.0
        reverse = it.get("reverse", False)
        if not isinstance(reverse, bool):
            problems.append(f"{key}.reverse: must be true or false, got {reverse!r}")
            reverse = False
        lo, hi = _item_range(it, scale, key, problems)
        items.append(
            Item(
                iname,
                str(cons),
                str(sd),
                scale,
                lo,
                hi,
                reverse,
                float(weight),
                str(it.get("label", "")),
            )
        )
    used_sd = {i.subdimension for i in items}
    for s, cname in seen_sd.items():
        if s not in used_sd:
            problems.append(f"constructs ({cname}).subdimensions: sub-dimension {s!r} has no items")

    # ---- profiles -----------------------------------------------------------
    cnames = tuple(c.name for c in constructs)
    prof_raw = checks.as_table(raw.get("profiles"), "profiles", problems)
    checks.unknown_keys(prof_raw, checks.TABLE_KEYS["[profiles]"], "profiles", problems, table_name="[profiles]")
    dims = checks.name_list(prof_raw.get("dimensions", list(cnames)), "profiles.dimensions", problems,
                            what="construct", empty=False) or cnames
    for d in dims:
        if d not in cnames:
            problems.append(f"profiles.dimensions: {d!r} is not a construct{did_you_mean(d, cnames)}; "
                            f"constructs: {list(cnames)}")
    # no ideal types: the typology (types, comparison, typology checks) is not run
    profiles = _profile_set(prof_raw.get("types", []), dims, "profiles", problems, required=False)
    thresholds_raw = prof_raw.get("thresholds", {d: 0.5 for d in cnames})
    thresholds: dict[str, float] = {}
    if not isinstance(thresholds_raw, dict):
        problems.append("profiles.thresholds: must be a table of construct = value")
        thresholds_raw = {}
    for cname in cnames:
        v = thresholds_raw.get(cname, 0.5)
        if not _num(v) or not 0 <= v <= 1:
            problems.append(f"profiles.thresholds.{cname}: must be a number in [0, 1], got {v!r}")
            v = 0.5
        thresholds[cname] = float(v)
    for k in thresholds_raw:
        if k not in cnames:
            problems.append(f"profiles.thresholds.{k}: not a construct{did_you_mean(k, cnames)}; "
                            f"constructs: {list(cnames)}")
    for c in constructs:
        clash = ("an ideal type" if c.flag in profiles.type_names else "a construct" if c.flag in cnames
                 else "a sub-dimension" if c.flag in seen_sd else "reserved" if c.flag in _RESERVED_FLAGS else "")
        if clash:
            problems.append(f"constructs ({c.name}).flag: {c.flag!r} is {clash}"
                            + ("" if clash == "reserved" else " name") + "; choose another flag name")
    eps = prof_raw.get("hybrid_epsilon")
    if eps is not None and (not _num(eps) or eps < 0):
        problems.append(f"profiles.hybrid_epsilon: must be a number >= 0, got {eps!r}")
        eps = None
    standardize = checks.boolean(prof_raw, "standardize", "profiles", False, problems)
    squared = checks.boolean(prof_raw, "squared", "profiles", False, problems)

    sub_raw = raw.get("subdimension_profiles")
    subprofiles = None
    if sub_raw is not None:
        sub_raw = checks.as_table(sub_raw, "subdimension_profiles", problems)
        checks.unknown_keys(sub_raw, checks.TABLE_KEYS["[subdimension_profiles]"], "subdimension_profiles",
                            problems, table_name="[subdimension_profiles]")
        sdims = checks.name_list(sub_raw.get("dimensions", list(seen_sd)), "subdimension_profiles.dimensions",
                                 problems, what="sub-dimension", empty=False) or tuple(seen_sd)
        for d in sdims:
            if d not in seen_sd:
                problems.append(f"subdimension_profiles.dimensions: {d!r} is not a sub-dimension"
                                f"{did_you_mean(d, seen_sd)}; declared: {list(seen_sd)}")
        subprofiles = _profile_set(sub_raw.get("types", []), sdims, "subdimension_profiles", problems, True)

    emp_raw = checks.as_table(raw.get("empirical"), "empirical", problems)
    checks.unknown_keys(emp_raw, checks.TABLE_KEYS["[empirical]"], "empirical", problems, table_name="[empirical]")
    top_share = emp_raw.get("top_share", 0.1)
    if not _num(top_share) or not 0 < top_share < 1:
        problems.append(f"empirical.top_share: must be a number in (0, 1), got {top_share!r}")
        top_share = 0.1
    edims = checks.name_list(emp_raw.get("dimensions", list(dims)), "empirical.dimensions", problems,
                             what="construct or sub-dimension") or ()
    for d in edims:
        if d not in cnames and d not in seen_sd:
            problems.append(f"empirical.dimensions: {d!r} is neither a construct nor a sub-dimension"
                            f"{did_you_mean(d, (*cnames, *seen_sd))}")
    outcome = emp_raw.get("outcome", outcome_column or "outcome")
    if not isinstance(outcome, str) or not outcome.strip():
        problems.append(f"empirical.outcome: must be a column name (a non-empty string), got {outcome!r}")
        outcome = outcome_column or "outcome"
    empirical = EmpiricalIdeal(outcome, float(top_share), edims)

    # ---- baseline, priors and sampler ---------------------------------------
    baseline = checks.check_baseline(raw.get("baseline"), _DEFAULT_BASELINE, problems)
    priors = checks.check_priors(raw.get("priors"), DEFAULT_PRIORS, problems)
    sampler = checks.check_sampler(raw.get("sampler"), DEFAULT_SAMPLER, problems)

    # ---- findings -----------------------------------------------------------
    findings = parse_findings(raw.get("findings"), constructs=cnames, types=profiles.type_names, problems=problems)

    if problems:
        raise SpecError(source, problems)
    return Spec(
        name=name,
        description=description,
        constructs=tuple(constructs),
        items=tuple(items),
        profiles=profiles,
        subdimension_profiles=subprofiles,
        empirical=empirical,
        thresholds=thresholds,
        hybrid_epsilon=None if eps is None else float(eps),
        standardize=standardize,
        squared=squared,
        id_column=id_column,
        group_column=group_column,
        outcome_column=outcome_column,
        extra_columns=extra_columns,
        baseline=baseline,
        priors=priors,
        sampler=sampler,
        findings=findings,
        covariates=covariates,
        id_declared=inst["id_declared"],
        source=source,
        text=text,
        _raw=raw,
    )


class _Reads(dict):
    """An item table that records the keys looked up in it (the keys a family reads)."""

    def __init__(self, table: Mapping[str, Any]):
        super().__init__(table)
        self.read: list[str] = []

    def _note(self, key: Any) -> None:
        if key not in self.read:
            self.read.append(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        self._note(key)
        return super().__contains__(key)


def _item_range(it: dict, scale: str, key: str, problems: list[str]) -> tuple[float, float]:
    """The item's (min, max) from its family; the keys of the item table besides
    :data:`~smeintl.spec_checks.ITEM_KEYS` and those the family reads are unknown."""
    if scale not in families.scales():  # the unknown scale is reported already
        range_keys = [k for k in checks.RANGE_KEYS if k in it]
        lo, hi = 0.0, 1.0
    else:
        bad = [k for k in checks.RANGE_KEYS if k in it and not _num(it[k])]
        problems.extend(f"{key}.{k}: must be a number, got {it[k]!r}" for k in bad)
        table = _Reads({k: v for k, v in it.items() if k not in bad})
        n0 = len(problems)
        lo, hi = families.family_of(scale).item_range(table, scale, key, [] if bad else problems)
        read = [k for k in (*table.read, *bad) if k not in checks.ITEM_KEYS]
        range_keys = sorted(read, key=lambda k: checks.RANGE_KEYS.index(k) if k in checks.RANGE_KEYS else 99)
        if not bad and len(problems) == n0 and not lo < hi:
            problems.append(f"{key}: 'max' ({hi:g}) must be greater than 'min' ({lo:g})")
    allowed = (*checks.ITEM_KEYS, *range_keys)
    checks.unknown_keys(it, allowed, key, problems, table_name=f"[[items]] of scale {scale!r}")
    return lo, hi


def _profile_set(raw_types: Any, dims: tuple[str, ...], table: str, problems: list[str],
                 required: bool) -> ProfileSet:
    """The ideal types of ``[[{table}.types]]`` on ``dims``: coordinates in [0, 1] (the
    range of the indices and sub-dimension scores), weights >= 0."""
    key = f"{table}.types"
    types: list[IdealType] = []
    if not isinstance(raw_types, list) or (required and not raw_types):
        problems.append(f"{key}: at least one ideal type is required")
        return ProfileSet(dims, ())
    seen: set[str] = set()
    for k, t in enumerate(raw_types):
        tkey = f"{key}[{k}]"
        if not isinstance(t, dict) or "name" not in t:
            problems.append(f"{tkey}: needs a 'name'")
            continue
        tname = str(t["name"])
        tkey = f"{key}[{k}] ({tname})"
        checks.unknown_keys(t, checks.TABLE_KEYS[f"[[{key}]]"], tkey, problems, table_name=f"[[{key}]]")
        if tname in seen:
            problems.append(f"{tkey}.name: duplicate ideal type name {tname!r}")
        if tname == "hybrid":
            problems.append(f"{tkey}.name: 'hybrid' is reserved for the hybrid label")
        seen.add(tname)
        coords = t.get("coords")
        if not isinstance(coords, list) or len(coords) != len(dims) or not all(_num(x) for x in coords):
            problems.append(f"{tkey}.coords: need {len(dims)} numbers, one per dimension {list(dims)}, got {coords!r}")
            coords = [0.0] * len(dims)
        elif not all(0 <= x <= 1 for x in coords):
            outside = [f"{d} = {x!r}" for d, x in zip(dims, coords) if not 0 <= x <= 1]
            problems.append(f"{tkey}.coords: coordinates must be in [0, 1] (the range of the indices and "
                            f"sub-dimension scores), got {', '.join(outside)}")
        w = t.get("weights", [1.0] * len(dims))
        if not isinstance(w, list) or len(w) != len(dims) or not all(_num(x) for x in w):
            problems.append(f"{tkey}.weights: need {len(dims)} numbers, one per dimension, got {w!r}")
            w = [1.0] * len(dims)
        elif any(x < 0 for x in w):
            problems.append(f"{tkey}.weights: weights must not be negative, got {w}")
        types.append(IdealType(tname, tuple(float(x) for x in coords), tuple(float(x) for x in w)))
    return ProfileSet(dims, tuple(types))
