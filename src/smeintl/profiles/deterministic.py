"""The deterministic method on one survey: per-firm table and per-sample summary
(:func:`run_deterministic`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..indices import IndicesResult, compute_indices
from ..spec import Spec

from .baseline import BaselineResult, _jsonable, baseline_test, outcome_relation
from .ideal import (
    EmpiricalIdealResult,
    _firm_moments,
    empirical_ideal,
    profile_deviation,
    quadrant_codes,
    subtype_arrays,
    type_arrays,
)

# ---------------------------------------------------------------------------
# the pandas layer
def _mean_sd(v: np.ndarray) -> dict[str, Any]:
    v = v[np.isfinite(v)]
    return {
        "n": int(v.size),
        "mean": float(v.mean()) if v.size else None,
        "sd": float(v.std(ddof=1)) if v.size >= 2 else None,
    }


def _counts(codes: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    typed = codes >= 0
    n = int(typed.sum())
    counts = {nm: int((codes == k).sum()) for k, nm in enumerate(names)}
    return {
        "n": int(codes.size),
        "n_typed": n,
        "n_untyped": int(codes.size - n),
        "counts": counts,
        "shares": {nm: (c / n if n else None) for nm, c in counts.items()},
    }


class SummaryDict(dict):
    """The summary of a :class:`DeterministicResult`: the JSON-serializable dict
    (``result.summary["types"]``, written as ``summary.json``) that, called, gives the
    headline table as a DataFrame (``result.summary()``), like the ``summary()`` of the
    other result objects."""

    __slots__ = ()

    def __call__(self) -> pd.DataFrame:
        return _headline_table(self)


def _headline_table(s: Mapping[str, Any]) -> pd.DataFrame:
    """One row per ideal type (nearest-type counts) and per threshold flag: ``kind``
    (``type`` / ``flag``), ``name``, ``rule``, ``count``, ``n`` (firms with the needed
    indices), ``share`` (NaN when ``n`` is 0)."""
    t = s["types"]
    rows = [
        {"kind": "type", "name": nm, "rule": "nearest ideal type", "count": t["counts"][nm], "n": t["n_typed"],
         "share": t["shares"][nm]}
        for nm in t["names"]
    ]
    rows += [
        {"kind": "flag", "name": fn, "rule": f["rule"], "count": f["count"], "n": f["n"], "share": f["share"]}
        for fn, f in s["flags"].items()
    ]
    table = pd.DataFrame(rows, columns=["kind", "name", "rule", "count", "n", "share"])
    table["share"] = table["share"].astype(float)
    return table


@dataclass(frozen=True, eq=False)
class DeterministicResult:
    """Result of :func:`run_deterministic`.

    ``firms``: one row per firm (see :func:`run_deterministic`); ``summary``: a
    JSON-serializable dict (a :class:`SummaryDict`: ``summary()`` is the headline table
    as a DataFrame); ``indices``: the :class:`~smeintl.indices.IndicesResult`;
    ``empirical`` and ``baseline``: the empirical ideal and baseline test (None
    without an outcome); ``spec``: the spec used.  :meth:`text` is the summary as
    plain text, :meth:`to_dict` a plain copy of the summary dict.
    """

    firms: pd.DataFrame
    summary: dict[str, Any]
    indices: IndicesResult
    spec: Spec
    empirical: EmpiricalIdealResult | None = None
    baseline: BaselineResult | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.summary, SummaryDict):
            object.__setattr__(self, "summary", SummaryDict(self.summary))

    def summary_text(self) -> str:
        """A readable plain-text table of the summary."""
        return _summary_text(self.summary)

    def text(self) -> str:
        """The summary as readable plain text (same as :meth:`summary_text`)."""
        return self.summary_text()

    def to_dict(self) -> dict[str, Any]:
        """The summary as a plain JSON-serializable dict (a copy; what ``summary.json`` holds)."""
        return _jsonable(self.summary)


def _outcome_series(survey: Any, spec: Spec, ids: pd.Index) -> pd.Series | None:
    firms = getattr(survey, "firms", None)
    if firms is None:
        return None
    for col in (spec.empirical.outcome, spec.outcome_column, "outcome"):
        if col and col in firms.columns:
            y = pd.to_numeric(firms[col], errors="coerce").reindex(ids)
            return y.astype(float)
    return None


def run_deterministic(survey: Any, *, spec: Spec | None = None, seed: int | None = None) -> DeterministicResult:
    """Run the whole deterministic (original) method on a survey.

    ``spec`` overrides ``survey.spec`` (sensitivity analyses); ``seed`` overrides
    ``spec.baseline['seed']`` for the baseline test.

    ``firms`` columns: ``firm_id``, ``industry`` (the spec's group column, whatever its
    name in the file; <NA> without one), ``s_<item>`` (scaled items), the
    sub-dimension scores (named as in the spec), one column per construct index,
    ``sullivan_<construct>``, ``dist_<type>`` and ``fit_<type>`` per ideal type,
    ``type`` (categorical of the declared names, plus ``hybrid`` when
    ``hybrid_epsilon`` is set; <NA> for firms with a missing index), one nullable
    boolean per threshold flag (``internationalizing``, ``independent``, ...), with
    sub-dimension profiles ``subdist_<type>`` and ``subtype``, and with an outcome
    ``outcome``, ``empirical_dist`` (deviation from the empirical ideal) and
    ``empirical_top`` (in the calibration set).  With ``standardize`` the empirical
    distance uses the mean and sd of the firms eligible for the empirical ideal.

    ``summary`` keys: ``n_firms``; ``types`` (names, counts, shares over the typed
    firms -- every declared type listed, zero counts included -- ``n_typed``,
    ``n_untyped``) and ``types_by_industry``; ``flags`` (count, share over the firms
    with that index, rule, by industry); ``indices`` (mean, sd with ddof=1 and n, overall
    and by industry); ``alpha`` (per construct, over items and over sub-dimensions,
    with the complete cases used); ``quadrant_agreement`` (typed firms whose quadrant
    type equals the nearest type, or why the rule does not apply); ``subtypes`` when the
    spec has sub-dimension profiles; ``outcome``: without an outcome a ``note``; with
    one, ``relation`` (Pearson, Spearman and the OLS of outcome on deviation with
    industry dummies and HC1 errors: for the empirical ideal over its test sample, for
    each theoretical type over all firms with an outcome) and ``baseline``
    (:meth:`BaselineResult.to_dict`); ``settings`` and the spec and data hashes.
    """
    spec = spec if spec is not None else survey.spec
    seed = int(spec.baseline.get("seed", 0)) if seed is None else seed
    ind = compute_indices(survey, spec)
    ids = ind.indices.index
    F = len(ids)
    indices = ind.indices.to_numpy()
    sub = ind.subdimensions.to_numpy()
    ta = type_arrays(indices, spec)
    sa = subtype_arrays(sub, spec)

    firms_tab = getattr(survey, "firms", None)
    gcol = next((c for c in (spec.group_column, "industry") if c and firms_tab is not None and c in firms_tab.columns), None)
    if gcol is not None:
        industry = firms_tab[gcol].reindex(ids).astype(object)
    else:
        industry = pd.Series([pd.NA] * F, index=ids, dtype=object)

    cols = _Columns()
    cols["firm_id"] = ids.to_numpy()
    cols["industry"] = industry.to_numpy()
    for it in spec.item_names:
        cols[f"s_{it}"] = ind.scaled[it].to_numpy()
    for sd in spec.subdimension_names:
        if sd not in spec.construct_names:  # a construct's only sub-dimension, named like it, is its index
            cols[sd] = ind.subdimensions[sd].to_numpy()
    for c in spec.construct_names:
        cols[c] = ind.indices[c].to_numpy()
    for c in spec.construct_names:
        cols[f"sullivan_{c}"] = ind.sullivan[c].to_numpy()
    tnames = spec.profiles.type_names
    for k, t in enumerate(tnames):
        cols[f"dist_{t}"] = ta["distance"][:, k]
    for k, t in enumerate(tnames):
        cols[f"fit_{t}"] = ta["fit"][:, k]
    cols["type"] = _type_column(ta["type"], ta["type_names"])
    for j, fn in enumerate(ta["flag_names"]):
        cols[fn] = pd.array(np.where(ta["flag_valid"][:, j], ta["flags"][:, j], None), dtype="boolean")
    if sa is not None:
        for k, t in enumerate(spec.subdimension_profiles.type_names):
            cols[f"subdist_{t}"] = sa["distance"][:, k]
        cols["subtype"] = _type_column(sa["type"], sa["type_names"])

    y = _outcome_series(survey, spec, ids)
    has_outcome = y is not None and bool(np.isfinite(y.to_numpy()).any())
    emp = base = None
    outcome_summary: dict[str, Any]
    if has_outcome:
        yv = y.to_numpy()
        dims = spec.empirical.dimensions or spec.profiles.dimensions
        lookup = {**{c: ind.indices[c] for c in spec.construct_names}, **{s: ind.subdimensions[s] for s in spec.subdimension_names}}
        P = np.column_stack([lookup[d].to_numpy() for d in dims])
        emp = empirical_ideal(P, yv, list(ids), spec.empirical.top_share)
        if spec.standardize:
            mean, sd = _firm_moments(P[emp.valid_mask])
            mean, sd = mean[0], sd[0]
        else:
            mean, sd = 0.0, 1.0
        d_emp = profile_deviation((P - mean) / sd, ((emp.ideal - mean) / sd)[None, :], squared=spec.squared)[:, 0]
        cols["outcome"] = yv
        cols["empirical_dist"] = d_emp
        cols["empirical_top"] = emp.top_mask
        base = baseline_test(
            P, yv, list(ids),
            top_share=spec.empirical.top_share,
            draws=int(spec.baseline.get("draws", 1000)),
            seed=seed,
            min_test_firms=int(spec.baseline.get("min_test_firms", 20)),
            min_calibration=int(spec.baseline.get("min_calibration", 3)),
            standardize=spec.standardize,
            squared=spec.squared,
            alpha=float(spec.baseline.get("alpha", 0.05)),
        )
        ind_arr = None if industry.isna().all() else industry.to_numpy()
        test = emp.test_mask
        rel = {
            "empirical": {
                "dimensions": list(dims),
                "ideal": [float(v) for v in emp.ideal],
                "calibration_firms": list(emp.top_ids or ()),
                "n_valid": emp.n_valid,
                "n_calibration": emp.n_top,
                "n_test": int(test.sum()),
                **outcome_relation(d_emp[test], yv[test], None if ind_arr is None else ind_arr[test]),
            }
        }
        for k, t in enumerate(tnames):
            rel[t] = outcome_relation(ta["distance"][:, k], yv, ind_arr)
        outcome_summary = {"available": True, "n_with_outcome": int(np.isfinite(yv).sum()), "relation": rel,
                           "baseline": base.to_dict()}
    else:
        note = ("no outcome column: the empirical ideal, outcome relation and baseline test are skipped"
                if y is None else "the outcome column has no values: the empirical ideal, outcome relation and baseline test are skipped")
        outcome_summary = {"available": False, "note": note}

    firms = pd.DataFrame(cols)

    summary = _build_summary(spec, survey, firms, ind, ta, sa, industry, outcome_summary, seed)
    return DeterministicResult(firms, summary, ind, spec, emp, base)


class _Columns(dict):
    """Ordered column dict that refuses a name twice (e.g. a sub-dimension named like a
    construct, or ``s_x`` clashing with a sub-dimension)."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self:
            raise ValueError(
                f"firm table column {key!r} would be written twice: rename the sub-dimension, construct, "
                "item or ideal type that produces it"
            )
        super().__setitem__(key, value)


def _type_column(codes: np.ndarray, names: Sequence[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(names))


def _build_summary(spec, survey, firms, ind, ta, sa, industry, outcome_summary, seed) -> dict[str, Any]:
    codes = ta["type"]
    tn = list(ta["type_names"])
    ind_vals = industry.to_numpy()
    has_ind = not industry.isna().all()
    groups = sorted({g for g in ind_vals if not pd.isna(g)}, key=str) if has_ind else []

    types = {"names": tn, **_counts(codes, tn)}
    by_ind = {str(g): _counts(codes[ind_vals == g], tn) for g in groups}

    flags = {}
    for j, (c, fn) in enumerate(zip(spec.construct_names, ta["flag_names"])):
        valid = ta["flag_valid"][:, j]
        nv = int(valid.sum())
        cnt = int(ta["flags"][:, j].sum())
        flags[fn] = {
            "construct": c,
            "threshold": float(spec.thresholds[c]),
            "rule": f"{c} >= {spec.thresholds[c]}",
            "count": cnt,
            "n": nv,
            "share": cnt / nv if nv else None,
            "by_industry": {
                str(g): {"count": int(ta["flags"][ind_vals == g, j].sum()), "n": int(valid[ind_vals == g].sum())}
                for g in groups
            },
        }

    def idx_stats(mask):
        return {c: _mean_sd(firms[c].to_numpy()[mask]) for c in spec.construct_names}

    all_mask = np.ones(len(firms), dtype=bool)
    idx_summary = {"overall": idx_stats(all_mask), "by_industry": {str(g): idx_stats(ind_vals == g) for g in groups}}
    alpha = {
        c: {
            "items": row.alpha_items,
            "items_n_cases": int(row.n_cases_items),
            "n_items": int(row.n_items),
            "subdimensions": row.alpha_subdimensions,
            "subdimensions_n_cases": int(row.n_cases_subdimensions),
            "n_subdimensions": int(row.n_subdimensions),
        }
        for c, row in ind.alpha.iterrows()
    }
    out: dict[str, Any] = {
        "spec": spec.name,
        "spec_hash": spec.hash,
        "data_hash": getattr(survey, "data_hash", None),
        "source": str(getattr(survey, "source", "")) or None,
        "n_firms": int(len(firms)),
        "settings": {
            "profile_dimensions": list(spec.profiles.dimensions),
            "thresholds": dict(spec.thresholds),
            "standardize": spec.standardize,
            "squared": spec.squared,
            "hybrid_epsilon": spec.hybrid_epsilon,
            "seed": seed,
        },
        "types": types,
        "types_by_industry": by_ind,
        "flags": flags,
        "indices": idx_summary,
        "alpha": alpha,
    }
    try:
        q = quadrant_codes(ind.indices.to_numpy(), spec)
        typed = codes >= 0
        out["quadrant_agreement"] = {"n": int(typed.sum()), "agree": int((q[typed] == codes[typed]).sum())}
    except ValueError as exc:
        out["quadrant_agreement"] = {"note": f"not applicable: {exc}"}
    if sa is not None:
        stn = list(sa["type_names"])
        out["subtypes"] = {
            "dimensions": list(spec.subdimension_profiles.dimensions),
            "names": stn,
            **_counts(sa["type"], stn),
            "by_industry": {str(g): _counts(sa["type"][ind_vals == g], stn) for g in groups},
        }
    out["outcome"] = outcome_summary
    return _jsonable(out)


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _types_lines(s: Mapping[str, Any]) -> list[str]:
    L: list[str] = []
    t = s["types"]
    L.append(f"Types (nearest ideal type, ties to the first declared; {t['n_typed']} typed, {t['n_untyped']} with a missing index)")
    w = max([len(n) for n in t["names"]] + [8])
    L.append(f"  {'type':<{w}}  {'count':>5}  {'share':>6}")
    for nm in t["names"]:
        sh = t["shares"][nm]
        L.append(f"  {nm:<{w}}  {t['counts'][nm]:>5}  {('-' if sh is None else f'{100 * sh:5.1f}%'):>6}")
    if s["types_by_industry"]:
        L.append("")
        L.append("Types by industry (counts)")
        gw = max([len(g) for g in s["types_by_industry"]] + [8])
        hdr = "  ".join(f"{nm:>{max(len(nm), 5)}}" for nm in t["names"])
        L.append(f"  {'industry':<{gw}}  {'n':>3}  {hdr}")
        for g, c in s["types_by_industry"].items():
            row = "  ".join(f"{c['counts'][nm]:>{max(len(nm), 5)}}" for nm in t["names"])
            L.append(f"  {g:<{gw}}  {c['n']:>3}  {row}")
    L.append("")
    return L


def _summary_text(s: Mapping[str, Any]) -> str:
    L: list[str] = []
    L.append(f"Deterministic ideal-profile method: spec {s['spec']} ({s['spec_hash'][:12]}), {s['n_firms']} firms")
    st = s["settings"]
    t = s["types"]
    w = max([len(n) for n in t["names"]] + [8])
    if not t["names"]:
        L.append("  no typology: the spec declares no ideal types ([[profiles.types]]); indices and flags only")
        L.append("")
    else:
        L.append(
            f"  profiles on {', '.join(st['profile_dimensions'])}; standardize={st['standardize']}, "
            f"squared={st['squared']}, hybrid_epsilon={st['hybrid_epsilon']}"
        )
        L.append("")
        L.extend(_types_lines(s))
    L.append("Flags")
    for fn, f in s["flags"].items():
        sh = "-" if f["share"] is None else f"{100 * f['share']:.1f}%"
        L.append(f"  {fn} ({f['rule']}): {f['count']} of {f['n']} ({sh})")
    qa = s.get("quadrant_agreement", {})
    if "agree" in qa:
        L.append(f"  quadrant rule agrees with the nearest type for {qa['agree']} of {qa['n']} typed firms")
    L.append("")
    L.append("Indices: mean (sd) [n]")
    cons = list(s["indices"]["overall"])
    rows = [("all", s["indices"]["overall"])] + list(s["indices"]["by_industry"].items())
    gw = max([len(r[0]) for r in rows] + [8])
    L.append(f"  {'industry':<{gw}}  " + "  ".join(f"{c[:22]:>22}" for c in cons))
    for g, stats in rows:
        cells = [f"{_fmt(stats[c]['mean'])} ({_fmt(stats[c]['sd'])}) [{stats[c]['n']}]" for c in cons]
        L.append(f"  {g:<{gw}}  " + "  ".join(f"{x:>22}" for x in cells))
    L.append("")
    L.append("Reliability: Cronbach's alpha (complete cases)")
    gw = max([len(c) for c in s["alpha"]] + [9])
    L.append(f"  {'construct':<{gw}}  {'items':>8} {'n':>4}  {'sub-dims':>8} {'n':>4}")
    for c, a in s["alpha"].items():
        L.append(f"  {c:<{gw}}  {_fmt(a['items']):>8} {a['items_n_cases']:>4}  {_fmt(a['subdimensions']):>8} {a['subdimensions_n_cases']:>4}")
    if "subtypes" in s:
        st = s["subtypes"]
        L.append("")
        L.append(f"Sub-dimension profile types ({st['n_typed']} typed)")
        for nm in st["names"]:
            L.append(f"  {nm:<{w}}  {st['counts'][nm]:>5}")
    L.append("")
    o = s["outcome"]
    if not o["available"]:
        L.append(f"Outcome: {o['note']}")
    else:
        L.append(f"Outcome relation ({o['n_with_outcome']} firms with outcome): deviation vs outcome")
        L.append(f"  {'ideal':<{w}}  {'n':>4}  {'pearson r':>9}  {'spearman':>9}  {'OLS b':>8}  {'se':>7}  {'p':>6}")
        for nm, r in o["relation"].items():
            ols = r.get("ols") or {}
            L.append(
                f"  {nm:<{w}}  {r['n']:>4}  {_fmt(r['pearson_r']):>9}  {_fmt(r['spearman_rho']):>9}  "
                f"{_fmt(ols.get('coef')):>8}  {_fmt(ols.get('se')):>7}  {_fmt(ols.get('p')):>6}"
            )
        b = o["baseline"]
        L.append("")
        L.append(f"Baseline test (B = {b['draws']}, seed {b['seed']}; test n = {b['n_test']}, calibration n = {b['n_calibration']})")
        L.append(f"  r_obs = {_fmt(b['r_obs'])}; p uniform = {_fmt(b['p_uniform'])}; p calibration = {_fmt(b['p_calibration'])}")
        L.append(f"  {b['verdict']}")
    return "\n".join(L)

