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
:class:`SpecError` whose message names the file and the offending key.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import families
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
    # count items: log-mean intercept centred on log(cap / 2); 1/dispersion
    "count_intercept_sd": {"sigma": 1.0},
    "inv_dispersion": {"dist": "HalfNormal", "sigma": 1.0},
    # continuous items (standardized internally): residual sd
    "residual_sd": {"dist": "HalfNormal", "sigma": 1.0},
    # latent structure
    "lkj_eta": {"eta": 2.0},
    "group_sd": {"dist": "HalfNormal", "sigma": 0.5},
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
    """Path of the bundled default instrument ``models/hitachi.toml``."""
    here = Path(__file__).resolve()
    for base in (here.parents[2], Path.cwd()):
        cand = base / "models" / "hitachi.toml"
        if cand.exists():
            return cand
    packaged = here.parent / "_models" / "hitachi.toml"
    return packaged


def load_spec(path: str | Path | None = None) -> Spec:
    """Load and validate a spec file (default: the bundled ``models/hitachi.toml``)."""
    p = Path(path) if path is not None else default_spec_path()
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


def valid_target_accept(value: Any) -> bool:
    """What ``target_accept`` may be, in a spec's ``[sampler]`` and a study's ``[fit]``:
    ``"auto"`` or a number in (0, 1)."""
    return value == "auto" or (_num(value) and 0 < value < 1)


def _build(raw: dict, text: str, source: str) -> Spec:
    problems: list[str] = []
    inst = raw.get("instrument", {})
    if not isinstance(inst, dict):
        problems.append("[instrument] must be a table")
        inst = {}
    name = str(inst.get("name", Path(source).stem))
    description = str(inst.get("description", ""))
    id_column = str(inst.get("id_column", "firm_id"))
    group_column = inst.get("group_column", "industry")
    group_column = str(group_column) if group_column not in (None, "", False) else None
    outcome_column = inst.get("outcome_column", "outcome")
    outcome_column = str(outcome_column) if outcome_column not in (None, "", False) else None
    extra_columns = tuple(str(c) for c in inst.get("extra_columns", ["employees"]))

    # ---- constructs ---------------------------------------------------------
    constructs: list[Construct] = []
    raw_cons = raw.get("constructs")
    if not isinstance(raw_cons, list) or not raw_cons:
        problems.append("[[constructs]]: at least one construct is required")
        raw_cons = []
    seen_c: set[str] = set()
    seen_flags: dict[str, str] = {}
    seen_sd: dict[str, str] = {}
    for k, c in enumerate(raw_cons):
        key = f"constructs[{k}]"
        if not isinstance(c, dict) or "name" not in c:
            problems.append(f"{key}: needs a 'name'")
            continue
        cname = str(c["name"])
        if cname in seen_c:
            problems.append(f"{key}.name: duplicate construct name {cname!r}")
        seen_c.add(cname)
        sds = c.get("subdimensions")
        if not isinstance(sds, list) or not sds:
            problems.append(f"{key}.subdimensions: construct {cname!r} needs a non-empty list of sub-dimensions")
            sds = []
        sds = [str(s) for s in sds]
        for s in sds:
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
    reserved = {id_column, group_column, outcome_column, *extra_columns}
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
            problems.append(f"{key}.scale: unknown scale type {scale!r}; allowed: {', '.join(families.scales())}")
        cons = it.get("construct")
        if cons is None or str(cons) not in seen_c:
            problems.append(
                f"{key}.construct: item is in no declared construct (got {cons!r}; declared: {sorted(seen_c)})"
            )
        sd = it.get("subdimension")
        if sd is None or str(sd) not in seen_sd:
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
    prof_raw = raw.get("profiles", {})
    if not isinstance(prof_raw, dict):
        problems.append("[profiles] must be a table")
        prof_raw = {}
    dims = tuple(str(d) for d in prof_raw.get("dimensions", list(cnames)))
    for d in dims:
        if d not in cnames:
            problems.append(f"profiles.dimensions: {d!r} is not a construct; constructs: {list(cnames)}")
    profiles = _profile_set(prof_raw.get("types", []), dims, "profiles.types", problems, required=True)
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
            problems.append(f"profiles.thresholds.{k}: not a construct; constructs: {list(cnames)}")
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
    standardize = bool(prof_raw.get("standardize", False))
    squared = bool(prof_raw.get("squared", False))

    sub_raw = raw.get("subdimension_profiles")
    subprofiles = None
    if sub_raw is not None:
        sdims = tuple(str(d) for d in sub_raw.get("dimensions", list(seen_sd)))
        for d in sdims:
            if d not in seen_sd:
                problems.append(
                    f"subdimension_profiles.dimensions: {d!r} is not a sub-dimension; declared: {list(seen_sd)}"
                )
        subprofiles = _profile_set(sub_raw.get("types", []), sdims, "subdimension_profiles.types", problems, True)

    emp_raw = raw.get("empirical", {})
    top_share = emp_raw.get("top_share", 0.1)
    if not _num(top_share) or not 0 < top_share < 1:
        problems.append(f"empirical.top_share: must be a number in (0, 1), got {top_share!r}")
        top_share = 0.1
    edims = tuple(str(d) for d in emp_raw.get("dimensions", list(dims)))
    for d in edims:
        if d not in cnames and d not in seen_sd:
            problems.append(f"empirical.dimensions: {d!r} is neither a construct nor a sub-dimension")
    empirical = EmpiricalIdeal(str(emp_raw.get("outcome", outcome_column or "outcome")), float(top_share), edims)

    baseline = dict(_DEFAULT_BASELINE)
    baseline.update(raw.get("baseline", {}))
    if not isinstance(baseline["draws"], int) or baseline["draws"] < 1:
        problems.append(f"baseline.draws: must be a positive integer, got {baseline['draws']!r}")

    # ---- priors and sampler -------------------------------------------------
    priors = {k: dict(v) for k, v in DEFAULT_PRIORS.items()}
    for k, v in raw.get("priors", {}).items():
        if k not in DEFAULT_PRIORS:
            problems.append(f"priors.{k}: unknown prior; known: {', '.join(DEFAULT_PRIORS)}")
            continue
        if not isinstance(v, dict):
            problems.append(f"priors.{k}: must be a table like {{ dist = 'Normal', sigma = 1 }}")
            continue
        # another distribution takes none of the default's parameters (a HalfNormal has no mu)
        same = v.get("dist", priors[k].get("dist")) == priors[k].get("dist")
        priors[k] = {**priors[k], **v} if same else dict(v)
        for pk, pv in v.items():
            if pk in ("sigma", "beta", "alpha", "eta") and (not _num(pv) or pv <= 0):
                problems.append(f"priors.{k}.{pk}: must be a positive number, got {pv!r}")
    sampler = dict(DEFAULT_SAMPLER)
    for k, v in raw.get("sampler", {}).items():
        if k not in DEFAULT_SAMPLER:
            problems.append(f"sampler.{k}: unknown setting; known: {', '.join(DEFAULT_SAMPLER)}")
            continue
        sampler[k] = v
    if sampler["sampler"] not in ("pymc", "nutpie", "auto"):
        problems.append(f"sampler.sampler: must be 'pymc', 'nutpie' or 'auto', got {sampler['sampler']!r}")
    if not valid_target_accept(sampler["target_accept"]):
        problems.append(f"sampler.target_accept: must be 'auto' or a number in (0, 1), "
                        f"got {sampler['target_accept']!r}")

    # ---- findings -----------------------------------------------------------
    findings = parse_findings(raw.get("findings"), constructs=cnames, types=profiles.type_names, problems=problems)

    known = {"instrument", "constructs", "items", "profiles", "subdimension_profiles", "empirical",
             "baseline", "priors", "sampler", "findings"}
    for k in raw:
        if k not in known:
            problems.append(f"[{k}]: unknown table; known: {', '.join(sorted(known))}")

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
        source=source,
        text=text,
        _raw=raw,
    )


def _item_range(it: dict, scale: str, key: str, problems: list[str]) -> tuple[float, float]:
    if scale not in families.scales():
        return 0.0, 1.0  # the unknown scale is reported already
    return families.family_of(scale).item_range(it, scale, key, problems)


def _profile_set(raw_types: Any, dims: tuple[str, ...], key: str, problems: list[str], required: bool) -> ProfileSet:
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
        if tname in seen:
            problems.append(f"{tkey}.name: duplicate ideal type name {tname!r}")
        if tname == "hybrid":
            problems.append(f"{tkey}.name: 'hybrid' is reserved for the hybrid label")
        seen.add(tname)
        coords = t.get("coords")
        if not isinstance(coords, list) or len(coords) != len(dims) or not all(_num(x) for x in coords):
            problems.append(f"{tkey}.coords: need {len(dims)} numbers, one per dimension {list(dims)}, got {coords!r}")
            coords = [0.0] * len(dims)
        w = t.get("weights", [1.0] * len(dims))
        if not isinstance(w, list) or len(w) != len(dims) or not all(_num(x) for x in w):
            problems.append(f"{tkey}.weights: need {len(dims)} numbers, one per dimension, got {w!r}")
            w = [1.0] * len(dims)
        elif any(x < 0 for x in w):
            problems.append(f"{tkey}.weights: weights must not be negative, got {w}")
        types.append(IdealType(tname, tuple(float(x) for x in coords), tuple(float(x) for x in w)))
    return ProfileSet(dims, tuple(types))
