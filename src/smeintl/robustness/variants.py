"""Spec variants used by the checks: Spec -> raw dict -> TOML text (``tomli_w``) ->
:func:`~smeintl.spec.parse_spec` (validated); the survey under a variant spec."""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import numpy as np
import tomli_w

from ..indices import item_matrix
from ..spec import ProfileSet, Spec, parse_spec

#: categories of a non-ordinal item in the all-ordinal model: round(4 v), v in [0, 1]
ORDINAL_LEVELS = 4


def spec_to_raw(spec: Spec) -> dict[str, Any]:
    """A raw TOML dict that parses back to ``spec`` (defaults written out)."""
    inst = {
        "name": spec.name,
        "description": spec.description,
        "id_column": spec.id_column,
        "group_column": spec.group_column or "",
        "outcome_column": spec.outcome_column or "",
        "extra_columns": list(spec.extra_columns),
    }
    cons = [
        {"name": c.name, "label": c.label, "flag": c.flag_name, "subdimensions": list(c.subdimensions),
         "subdimension_weights": [float(w) for w in c.subdimension_weights]}
        for c in spec.constructs
    ]
    items = []
    for it in spec.items:
        d: dict[str, Any] = {"name": it.name, "construct": it.construct, "subdimension": it.subdimension,
                             "scale": it.scale}
        d.update(it.family.range_keys(it))
        d["reverse"] = bool(it.reverse)
        d["weight"] = float(it.weight)
        if it.label:
            d["label"] = it.label
        items.append(d)

    def types(pset: ProfileSet) -> list[dict]:
        return [{"name": t.name, "coords": list(t.coords), "weights": list(t.weights)} for t in pset.types]

    prof: dict[str, Any] = {
        "dimensions": list(spec.profiles.dimensions),
        "thresholds": {k: float(v) for k, v in spec.thresholds.items()},
        "standardize": bool(spec.standardize),
        "squared": bool(spec.squared),
        "types": types(spec.profiles),
    }
    if spec.hybrid_epsilon is not None:
        prof["hybrid_epsilon"] = float(spec.hybrid_epsilon)
    raw: dict[str, Any] = {"instrument": inst, "constructs": cons, "items": items, "profiles": prof}
    if spec.subdimension_profiles is not None:
        raw["subdimension_profiles"] = {"dimensions": list(spec.subdimension_profiles.dimensions),
                                        "types": types(spec.subdimension_profiles)}
    emp = {"outcome": spec.empirical.outcome, "top_share": float(spec.empirical.top_share)}
    if spec.empirical.dimensions:
        emp["dimensions"] = list(spec.empirical.dimensions)
    raw["empirical"] = emp
    raw["baseline"] = copy.deepcopy(dict(spec.baseline))
    raw["priors"] = {k: copy.deepcopy(dict(v)) for k, v in spec.priors.items()}
    raw["sampler"] = copy.deepcopy(dict(spec.sampler))
    if spec.findings:
        raw["findings"] = [{"key": f.key, "title": f.title, "kind": f.kind, "definition": f.definition,
                            **{k: list(v) if isinstance(v, tuple) else v for k, v in f.parameters}}
                           for f in spec.findings]
    return raw


def _plain(v: Any) -> Any:
    """``v`` with only what TOML can hold: tables without None values (TOML has no null),
    lists for tuples, Python numbers for numpy scalars."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def toml_text(raw: Mapping[str, Any]) -> str:
    """TOML text of a raw spec dict."""
    return tomli_w.dumps(_plain(raw))


def spec_to_toml(spec: Spec) -> str:
    """TOML text of a spec (defaults written out); ``parse_spec`` of it equals ``spec``
    (up to ``text`` and ``source``)."""
    return toml_text(spec_to_raw(spec))


def spec_from_raw(raw: Mapping[str, Any], label: str) -> Spec:
    """The validated spec of a raw spec dict (a variant named ``label``)."""
    text = f"# smeintl robustness variant: {label}\n" + toml_text(raw)
    return parse_spec(text, source=f"<robustness variant: {label}>")


def drop_from_raw(raw: dict[str, Any], *, items: Sequence[str] = (), subdimensions: Sequence[str] = ()) -> tuple[
        dict[str, Any] | None, list[str], str]:
    """Drop items and sub-dimensions from a raw spec; a sub-dimension left without items
    goes too.  Returns (raw or None, dropped sub-dimensions, reason when None)."""
    raw = copy.deepcopy(raw)
    drop_sd = set(subdimensions)
    drop_items = set(items) | {it["name"] for it in raw["items"] if it["subdimension"] in drop_sd}
    raw["items"] = [it for it in raw["items"] if it["name"] not in drop_items]
    if not raw["items"]:
        return None, [], "no item would be left"
    left = {it["subdimension"] for it in raw["items"]}
    dropped: list[str] = []
    for c in raw["constructs"]:
        keep = [k for k, s in enumerate(c["subdimensions"]) if s in left]
        dropped += [s for s in c["subdimensions"] if s not in left]
        if not keep:
            return None, dropped, f"construct {c['name']!r} would have no sub-dimension left"
        c["subdimensions"] = [c["subdimensions"][k] for k in keep]
        c["subdimension_weights"] = [c["subdimension_weights"][k] for k in keep]
        if sum(c["subdimension_weights"]) <= 0:
            return None, dropped, f"the sub-dimension weights of construct {c['name']!r} would all be zero"
    gone = set(dropped)
    sp = raw.get("subdimension_profiles")
    if sp is not None:
        keep = [k for k, d in enumerate(sp["dimensions"]) if d not in gone]
        if not keep:
            del raw["subdimension_profiles"]
        else:
            sp["dimensions"] = [sp["dimensions"][k] for k in keep]
            for t in sp["types"]:
                t["coords"] = [t["coords"][k] for k in keep]
                t["weights"] = [t["weights"][k] for k in keep]
    emp = raw.get("empirical", {})
    if emp.get("dimensions"):
        dims = [d for d in emp["dimensions"] if d not in gone]
        if dims:
            emp["dimensions"] = dims
        else:
            emp.pop("dimensions")
    return raw, dropped, ""


def _scale_priors(priors: Mapping[str, Mapping[str, Any]], factor: float) -> dict[str, dict[str, Any]]:
    """Every prior sd times ``factor``: ``sigma`` entries (Normal, HalfNormal, LogNormal
    on the log scale, cutpoint sds) multiplied; Gamma(alpha, beta) -> Gamma(alpha / f^2,
    beta / f^2) (same mean, sd times f); LKJ eta divided by f (wider = closer to uniform)."""
    out: dict[str, dict[str, Any]] = {}
    for k, v in priors.items():
        e = copy.deepcopy(dict(v))
        if "sigma" in e:
            e["sigma"] = float(e["sigma"]) * factor
        if e.get("dist") == "Gamma" and "alpha" in e and "beta" in e:
            e["alpha"] = float(e["alpha"]) / factor**2
            e["beta"] = float(e["beta"]) / factor**2
        if k == "lkj_eta" and "eta" in e:
            e["eta"] = float(e["eta"]) / factor
        out[k] = e
    return out


def spec_variant(spec: Spec, kind: str, value: Any = None) -> tuple[Spec | None, str]:
    """A spec variant used by the checks, validated by :func:`~smeintl.spec.parse_spec`.

    ``kind``: ``"thresholds"`` (value: one threshold for every construct),
    ``"weights"`` (value ``"equal"``, ``"items"`` (by item count) or ``"spec"``),
    ``"standardize"``, ``"drop_item"`` / ``"drop_subdimension"`` (value: the name),
    ``"priors"`` (value: sd factor), ``"one_construct"``, ``"all_ordinal"``.  Returns
    ``(spec, "")`` or ``(None, reason)`` when the variant does not exist.
    """
    raw = spec_to_raw(spec)
    label = kind if value is None else f"{kind}={value}"
    if kind == "thresholds":
        raw["profiles"]["thresholds"] = {c: float(value) for c in spec.construct_names}
    elif kind == "weights":
        for c in raw["constructs"]:
            if value == "equal":
                c["subdimension_weights"] = [1.0] * len(c["subdimensions"])
            elif value == "items":
                c["subdimension_weights"] = [float(len(spec.items_of(subdimension=s))) for s in c["subdimensions"]]
            elif value != "spec":
                raise ValueError(f"unknown weights variant {value!r}")
    elif kind == "standardize":
        raw["profiles"]["standardize"] = True
    elif kind in ("drop_item", "drop_subdimension"):
        new, _dropped, reason = drop_from_raw(raw, **({"items": [value]} if kind == "drop_item" else {"subdimensions": [value]}))
        if new is None:
            return None, reason
        raw = new
    elif kind == "priors":
        raw["priors"] = _scale_priors(spec.priors, float(value))
    elif kind == "one_construct":
        if len(spec.constructs) < 2:
            return None, "the spec has a single construct"
        name = "general"
        while name in spec.subdimension_names or name in spec.item_names:
            name += "_"
        raw.pop("findings", None)  # they name the original constructs; evaluated with the original spec
        raw["constructs"] = [{
            "name": name, "label": "one construct for all items",
            "subdimensions": list(spec.subdimension_names),
            "subdimension_weights": [float(w) for c in spec.constructs for w in c.subdimension_weights],
        }]
        for it in raw["items"]:
            it["construct"] = name
        raw["profiles"] = {"dimensions": [name], "thresholds": {name: 0.5},
                           "types": [{"name": "high", "coords": [1.0]}, {"name": "low", "coords": [0.0]}]}
        emp = raw.get("empirical", {})
        if emp.get("dimensions") and not all(d in spec.subdimension_names for d in emp["dimensions"]):
            emp.pop("dimensions")
    elif kind == "all_ordinal":
        if all(it.family.ordinal for it in spec.items):
            return None, "every item is already ordinal"
        for it, d in zip(spec.items, raw["items"]):
            if it.family.ordinal:
                continue
            d.pop("cap", None)
            d["scale"] = "likert"
            d["min"] = 0
            # two-category items keep their two categories
            d["max"] = 1 if it.family.categories(it) is not None else ORDINAL_LEVELS
    else:
        raise ValueError(f"unknown spec variant {kind!r}")
    return spec_from_raw(raw, label), ""


def survey_for(spec: Spec, survey) -> Any:
    """The survey's firms and answers under another spec with a subset of its items."""
    from ..data import Survey

    return Survey(spec, survey.firms.copy(), survey.items.loc[:, list(spec.item_names)].copy(), survey.source)


def ordinal_survey(spec_ord: Spec, survey) -> Any:
    """The survey with every non-ordinal item cut into ordered categories:
    ``floor(ORDINAL_LEVELS * v + 0.5)`` with ``v`` the item scaled to [0, 1] before reverse
    coding (percent x/100, count min(x, cap)/cap, continuous clipped); binary items as is."""
    from ..data import survey_from_frame
    from ..indices import scale_items

    spec = survey.spec
    X = item_matrix(survey, spec).to_numpy(dtype=float)
    S = scale_items(X, spec)
    rev = np.array([it.reverse for it in spec.items])
    V = np.where(rev, 1.0 - S, S)
    frame = survey.to_frame()
    for j, it in enumerate(spec.items):
        if it.family.categories(it) is not None:  # ordinal and binary items as they are
            continue
        v = np.clip(V[:, j], 0.0, 1.0)
        frame[it.name] = np.where(np.isnan(v), np.nan, np.floor(ORDINAL_LEVELS * v + 0.5))
    return survey_from_frame(frame, spec_ord, source=f"{survey.source} (non-ordinal items cut into categories)")
