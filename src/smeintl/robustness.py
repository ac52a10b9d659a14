"""Robustness and sensitivity checks: which of the study's findings survive reasonable
changes to the method?

:func:`run_robustness` runs a set of checks (:data:`CHECKS`) and returns one
:class:`RobustnessResult` whose ``matrix`` has one row per headline finding
(:data:`smeintl.predictive.FINDINGS`) and one column per check variant; each cell says
whether the finding holds under that variant, with the value behind the verdict.
Exact definitions of every check are in ``docs/robustness.md``; in short:

===============================  ========================================================
``factor_analysis``              statsmodels ML factor analysis (oblimin-rotated
                                 exploratory, and one factor per construct) beside the
                                 Bayesian standardized loadings; complementarity from the
                                 correlation of the one-factor scores
``industry_regression``          OLS of each index on industry with HC3 errors (robust
                                 Wald test) and ordinal logit (``OrderedModel``) of the
                                 binned indices and of every ordinal item on industry,
                                 beside the hierarchical industry means
``thresholds``                   flag thresholds 0.4, 0.5, 0.6
``weights``                      sub-dimension weights equal, by item count, the spec's
``profiles``                     sub-dimension ideal types; 2-D types plus the empirical
                                 ideal (needs an outcome); 2-D types on z-standardized
                                 dimensions
``leave_one_item_out``           each item dropped in turn (its sub-dimension too when
                                 it was the only item)
``leave_one_subdimension_out``   each sub-dimension dropped in turn
``bootstrap``                    firm bootstrap (stratified by industry, seeded) of the
                                 type and flag shares with percentile intervals
``prior_sensitivity``            power-scaling of prior and likelihood (ArviZ ``psens``,
                                 Pareto-smoothed importance weights, k-hat reported);
                                 findings under the prior power-scaled by 0.5 and 2 by
                                 importance resampling, and refits with every prior sd
                                 x2 and /2 where the importance weights are unreliable
``model_comparison``             PSIS-LOO (conditional on the firms' latent scores, and
                                 with them integrated out) of the fitted model against
                                 refits without the industry level and with one construct
                                 (same observations, same scale); the all-ordinal model
                                 compared on its findings only
===============================  ========================================================

The deterministic variants reuse the deterministic pipeline
(:func:`~smeintl.indices.index_arrays`, :func:`~smeintl.profiles.type_arrays`) and the
finding rules of :mod:`smeintl.predictive` unchanged; the posterior variants reuse
:func:`~smeintl.predictive.compare`.  Every random step takes ``seed``.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from dataclasses import replace as _dc_replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import predictive as _pred
from .indices import compute_indices, index_arrays, item_matrix
from .predictive import FINDING_RULES, FINDINGS, compare, sample_statistics
from .profiles import quadrant_codes, subtype_arrays, type_arrays
from .spec import ORDINAL_SCALES, IdealType, ProfileSet, Spec, parse_spec

__all__ = [
    "CheckResult",
    "RobustnessResult",
    "RobustnessContext",
    "CHECKS",
    "CHECK_NAMES",
    "REFIT_CHECKS",
    "MODEL_VARIANTS",
    "PRIOR_REFITS",
    "DEFAULT_REFIT",
    "MIN_FIRMS",
    "run_robustness",
    "write_robustness",
    "compile_refit_models",
    "start_refit_compile",
    "RefitCompile",
    "output_names",
    "spec_to_toml",
    "spec_variant",
    "integrated_loglik",
]

#: default settings of every refit (prior-sensitivity and model-comparison refits); the
#: sampler and target_accept are the fit spec's ``[sampler]`` unless given
DEFAULT_REFIT: dict[str, Any] = {"draws": 300, "tune": 400, "chains": 2}
#: the most seconds the model-comparison refits wait for their models to compile in a
#: second process (:func:`start_refit_compile`); what is not compiled by then, they compile
REFIT_COMPILE_TIMEOUT = 900.0

#: alternative models of ``model_comparison``
MODEL_VARIANTS: tuple[str, ...] = ("no_industry", "one_construct", "all_ordinal")
#: when ``prior_sensitivity`` refits under wider and narrower priors
PRIOR_REFITS: tuple[str, ...] = ("auto", "always", "never")

#: least number of firms for the checks that need many (otherwise the check says why)
MIN_FIRMS: dict[str, int] = {"bootstrap": 10, "model": 20, "factor_analysis": 10}

#: flag thresholds tried by the ``thresholds`` check
THRESHOLDS: tuple[float, ...] = (0.4, 0.5, 0.6)
#: power-scaling: finite-difference step of ``psens`` and the importance-sampling variants
PSENS_DELTA = 0.01
POWER_ALPHAS: tuple[float, ...] = (0.5, 2.0)
#: refits scale every prior sd by these factors (wider, narrower)
PRIOR_SCALES: tuple[float, ...] = (2.0, 0.5)
#: Pareto k above which importance weights are unreliable
KHAT_MAX = 0.7
#: power-scaling sensitivity above which a prior (likelihood) counts as influential
PSENS_THRESHOLD = 0.05
#: bins of a construct index for the ordinal regression: 5 equal-width classes on [0, 1]
INDEX_BINS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
#: categories of a non-ordinal item in the all-ordinal model: round(4 v), v in [0, 1]
ORDINAL_LEVELS = 4
#: integrated LOO: Gauss-Hermite nodes per construct and the most draws used
INTEGRATION_NODES = 15
#: nodes of the convergence check of the quadrature (on a few draws)
INTEGRATION_CHECK_NODES = 25
INTEGRATED_MAX_DRAWS = 1000

Cell = tuple  # (holds: bool | None, text: str)
_NOT_ADDRESSED = "n/a: not addressed by this check"


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """Result of one check.

    ``passed``: True / False by the check's criterion (``docs/robustness.md``), None when
    the check could not run (``text`` then says why).  ``table``: the check's numbers
    (written to ``<name>.csv``).  ``variants``: matrix column name -> {finding key ->
    (holds, cell text)}; ``findings``: per finding key, over the variants, (True when it
    holds under every variant evaluated, False when it fails under at least one, None
    when no variant could evaluate it; text listing the variants).  ``reference``: the
    baseline the variants are compared with, ``"deterministic"`` or ``"posterior"``.
    """

    name: str
    passed: bool | None
    table: pd.DataFrame
    text: str
    findings: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)
    reference: str = "deterministic"
    seconds: float = 0.0

    @property
    def skipped(self) -> bool:
        return self.passed is None and not self.variants


@dataclass(frozen=True)
class RobustnessResult:
    """All checks and the findings matrix.

    ``matrix``: index ``finding`` (the keys of :data:`~smeintl.predictive.FINDINGS`);
    columns ``baseline: deterministic`` and ``baseline: posterior`` (the original method
    on the observed data, and :func:`~smeintl.predictive.compare`'s posterior
    probability), then one column per check variant (``<check>: <variant>``), then
    ``agreement`` (variants whose verdict equals their baseline's, of those evaluated).
    Cells: ``holds (0.83)``, ``does not hold (p=0.21)``, ``probably holds (0.82)`` (a
    probability; holds when >= 0.5) or ``n/a: <reason>``.
    """

    checks: tuple[CheckResult, ...]
    matrix: pd.DataFrame
    settings: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def summary(self) -> pd.DataFrame:
        """Rows = findings, columns = baselines and checks; per check ``k/n hold`` (the
        variants in which the finding holds, of those that could evaluate it) or ``n/a``."""
        cols: dict[str, list[str]] = {
            "deterministic": [_short(self.matrix.loc[k, "baseline: deterministic"]) for k in self.matrix.index],
            "posterior": [_short(self.matrix.loc[k, "baseline: posterior"]) for k in self.matrix.index],
        }
        for c in self.checks:
            vals = []
            for k in self.matrix.index:
                cells = [v.get(k, (None, _NOT_ADDRESSED)) for v in c.variants.values()]
                ev = [h for h, _ in cells if h is not None]
                vals.append(f"{sum(ev)}/{len(ev)}" if ev else "n/a")
            cols[c.name] = vals
        cols["agreement"] = list(self.matrix["agreement"])
        return pd.DataFrame(cols, index=self.matrix.index)

    def text(self) -> str:
        """The findings matrix in compact form (per check: variants in which the finding
        holds / variants evaluated), then one paragraph per check."""
        s = self.settings
        L = [
            f"Robustness and sensitivity checks ({s.get('n_firms', '?')} firms; seed {s.get('seed')}; "
            f"checks: {', '.join(c.name for c in self.checks)})",
            "",
            "Findings matrix (baselines, then per check: variants in which the finding holds / variants "
            "evaluated; full per-variant matrix in robustness.csv)",
        ]
        summ = self.summary()
        header = ["finding", *summ.columns]
        rows = [[k, *map(str, summ.loc[k])] for k in summ.index]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        L.append("  ".join(h.ljust(widths[i]) for i, h in enumerate(header)))
        for r in rows:
            L.append("  ".join(v.ljust(widths[i]) for i, v in enumerate(r)))
        L.append("")
        for c in self.checks:
            status = ("skipped" if c.skipped else "no verdict (no finding evaluated)") if c.passed is None else (
                "passed" if c.passed else "NOT passed")
            L.append(f"[{c.name}] {status} ({c.seconds:.1f} s)")
            L.extend("  " + line for line in c.text.splitlines())
            L.append("")
        for n in self.notes:
            L.append(f"Note: {n}")
        return "\n".join(L).rstrip() + "\n"


def _short(cell: str) -> str:
    """'holds (0.83)' -> 'holds (0.83)'; long n/a reasons shortened to 'n/a'."""
    return "n/a" if str(cell).startswith("n/a") else str(cell)


# ---------------------------------------------------------------------------
# spec variants: Spec -> raw dict -> TOML text -> parse_spec (validated)
# ---------------------------------------------------------------------------
def _spec_to_raw(spec: Spec) -> dict[str, Any]:
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
        {"name": c.name, "label": c.label, "subdimensions": list(c.subdimensions),
         "subdimension_weights": [float(w) for w in c.subdimension_weights]}
        for c in spec.constructs
    ]
    items = []
    for it in spec.items:
        d: dict[str, Any] = {"name": it.name, "construct": it.construct, "subdimension": it.subdimension,
                             "scale": it.scale}
        if it.scale == "count":
            d["cap"] = float(it.max)
        elif it.scale != "binary":
            d["min"] = it.min
            d["max"] = it.max
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
    return raw


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _tkey(k: str) -> str:
    return k if _BARE.match(k) else _tstr(k)


def _tstr(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _tval(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    if isinstance(v, str):
        return _tstr(v)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_tkey(str(k))} = {_tval(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_tval(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_dumps(raw: Mapping[str, Any]) -> str:
    """Minimal TOML writer for spec dicts (tables, arrays of tables, inline values)."""
    lines: list[str] = []

    def is_tarray(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)

    def emit(prefix: str, tbl: Mapping[str, Any], header: str | None) -> None:
        simple = [(k, v) for k, v in tbl.items() if not isinstance(v, Mapping) and not is_tarray(v)]
        subs = [(k, v) for k, v in tbl.items() if isinstance(v, Mapping)]
        arrays = [(k, v) for k, v in tbl.items() if is_tarray(v)]
        if header is not None:
            lines.append("")
            lines.append(header)
        for k, v in simple:
            lines.append(f"{_tkey(str(k))} = {_tval(v)}")
        for k, v in subs:
            p = f"{prefix}.{_tkey(str(k))}" if prefix else _tkey(str(k))
            emit(p, v, f"[{p}]")
        for k, v in arrays:
            p = f"{prefix}.{_tkey(str(k))}" if prefix else _tkey(str(k))
            for el in v:
                lines.append("")
                lines.append(f"[[{p}]]")
                for kk, vv in el.items():
                    lines.append(f"{_tkey(str(kk))} = {_tval(vv)}")

    emit("", raw, None)
    return "\n".join(lines).lstrip("\n") + "\n"


def spec_to_toml(spec: Spec) -> str:
    """TOML text of a spec (defaults written out); ``parse_spec`` of it equals ``spec``
    (up to ``text`` and ``source``)."""
    return _toml_dumps(_spec_to_raw(spec))


def _from_raw(raw: Mapping[str, Any], label: str) -> Spec:
    text = f"# smeintl robustness variant: {label}\n" + _toml_dumps(raw)
    return parse_spec(text, source=f"<robustness variant: {label}>")


def _drop_from_raw(raw: dict[str, Any], *, items: Sequence[str] = (), subdimensions: Sequence[str] = ()) -> tuple[
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
    raw = _spec_to_raw(spec)
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
        new, _dropped, reason = _drop_from_raw(raw, **({"items": [value]} if kind == "drop_item" else {"subdimensions": [value]}))
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
        if all(it.scale in ORDINAL_SCALES for it in spec.items):
            return None, "every item is already ordinal"
        for it, d in zip(spec.items, raw["items"]):
            if it.scale in ORDINAL_SCALES:
                continue
            d.pop("cap", None)
            d["scale"] = "likert"
            d["min"] = 0
            d["max"] = 1 if it.scale == "binary" else ORDINAL_LEVELS
    else:
        raise ValueError(f"unknown spec variant {kind!r}")
    return _from_raw(raw, label), ""


def _survey_for(spec: Spec, survey) -> Any:
    """The survey's firms and answers under another spec with a subset of its items."""
    from .data import Survey

    return Survey(spec, survey.firms.copy(), survey.items.loc[:, list(spec.item_names)].copy(), survey.source)


def _ordinal_survey(spec_ord: Spec, survey) -> Any:
    """The survey with every non-ordinal item cut into ordered categories:
    ``floor(ORDINAL_LEVELS * v + 0.5)`` with ``v`` the item scaled to [0, 1] before reverse
    coding (percent x/100, count min(x, cap)/cap, continuous clipped); binary items as is."""
    from .data import survey_from_frame
    from .indices import scale_items

    spec = survey.spec
    X = item_matrix(survey, spec).to_numpy(dtype=float)
    S = scale_items(X, spec)
    rev = np.array([it.reverse for it in spec.items])
    V = np.where(rev, 1.0 - S, S)
    frame = survey.to_frame()
    for j, it in enumerate(spec.items):
        if it.scale in ORDINAL_SCALES or it.scale == "binary":
            continue
        v = np.clip(V[:, j], 0.0, 1.0)
        frame[it.name] = np.where(np.isnan(v), np.nan, np.floor(ORDINAL_LEVELS * v + 0.5))
    return survey_from_frame(frame, spec_ord, source=f"{survey.source} (non-ordinal items cut into categories)")


# ---------------------------------------------------------------------------
# finding evaluation (the rules live in smeintl.predictive; nothing is re-defined here)
# ---------------------------------------------------------------------------
def _industry(survey, spec: Spec) -> tuple[np.ndarray | None, tuple[str, ...]]:
    if spec.group_column is None or getattr(survey, "groups", None) is None:
        return None, ()
    names = tuple(survey.group_names)
    return (np.asarray(survey.groups, dtype=int), names) if names else (None, ())


def _lead(ta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v[None] if isinstance(v, np.ndarray) else v) for k, v in ta.items()}


def _finding_rows(spec: Spec, survey, ind: np.ndarray, ta: Mapping[str, Any] | None = None,
                  rep_ind: np.ndarray | None = None, rep_ta: Mapping[str, Any] | None = None,
                  eval_spec: Spec | None = None) -> pd.DataFrame:
    """The findings table of :mod:`smeintl.predictive` for deterministic indices
    ``ind`` (F, C) (column ``deterministic``) and, optionally, replicates ``rep_ind`` (R, F, C)
    (column ``replicated_probability``: share of the replicates in which it holds).

    Calls :func:`smeintl.predictive.finding_table` with no posterior, so the finding rules are exactly
    those of :func:`~smeintl.predictive.compare`.
    """
    fn = _pred.finding_table
    es = eval_spec or spec
    groups, gnames = _industry(survey, spec)
    ta = ta if ta is not None else type_arrays(ind, spec)
    if rep_ind is None:
        rep_ind, rep_ta = ind[None], _lead(ta)
    elif rep_ta is None:
        rep_ta = type_arrays(rep_ind, spec)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        st_obs = sample_statistics(ind, ta, es, groups, gnames)
        st_rep = sample_statistics(rep_ind, rep_ta, es, groups, gnames)
        return fn(es, 0.9, ind, rep_ind, st_obs, st_rep, st_rep, {}, groups, gnames, None)


def _value_text(quantity: str, value: float, ind: np.ndarray | None = None, spec: Spec | None = None) -> str:
    if not np.isfinite(value):
        return "undefined"
    if quantity == "ANOVA p":
        return f"p={value:.3g}"
    if quantity == "Pearson r":
        txt = f"r={value:.2f}"
        if ind is not None and spec is not None:
            cn = spec.construct_names
            a, b = cn.index(FINDING_RULES["doi"]), cn.index(FINDING_RULES["independence"])
            _r, p = _pred.pearson_greater_pvalue(ind[:, a], ind[:, b])
            if np.isfinite(p):
                txt += f", p={float(p):.3g}"
        return txt
    if quantity.startswith("count_"):
        return f"{int(round(value))}"
    return f"{value:.2f}"


def _det_cells(rows: pd.DataFrame, ind: np.ndarray | None = None, spec: Spec | None = None,
               only: Sequence[str] | None = None) -> dict[str, Cell]:
    """Cells from the ``deterministic`` column of a findings table."""
    out: dict[str, Cell] = {}
    for r in rows.itertuples(index=False):
        if only is not None and r.finding not in only:
            out[r.finding] = (None, _NOT_ADDRESSED)
            continue
        det = r.deterministic
        if det is None or (isinstance(det, float) and math.isnan(det)):
            if r.deterministic_quantity == "ANOVA p":
                reason = "the ANOVA is undefined (too few firms with values per industry)"
            elif r.note and (r.note.startswith("not applicable") or "industries" in r.note):
                reason = r.note
            else:
                reason = "undefined (too few firms with values)"
            out[r.finding] = (None, f"n/a: {reason}")
            continue
        val = _value_text(r.deterministic_quantity, float(r.deterministic_value), ind, spec)
        out[r.finding] = (bool(det), f"{'holds' if det else 'does not hold'} ({val})")
    return out


def _prob_cell(p: float, note: str = "") -> Cell:
    if p is None or not np.isfinite(p):
        reason = note or "not estimable"
        return (None, reason if reason.startswith("n/a") else f"n/a: {reason}")
    word = _pred.verdict(float(p)).split(" (")[0]
    return (bool(p >= 0.5), f"{word} ({p:.2f})")


def _posterior_cells(findings: pd.DataFrame, note_override: Mapping[str, str] | None = None) -> dict[str, Cell]:
    out: dict[str, Cell] = {}
    for r in findings.itertuples(index=False):
        if note_override and r.finding in note_override:
            out[r.finding] = (None, f"n/a: {note_override[r.finding]}")
            continue
        out[r.finding] = _prob_cell(float(r.posterior_probability), str(r.note or ""))
    return out


def _replicated_cells(findings: pd.DataFrame) -> dict[str, Cell]:
    return {r.finding: _prob_cell(float(r.replicated_probability), str(r.note or "")) for r in findings.itertuples(index=False)}


def _na_cells(reason: str) -> dict[str, Cell]:
    return {f.key: (None, f"n/a: {reason}") for f in FINDINGS}


def _aggregate(variants: Mapping[str, Mapping[str, Cell]]) -> dict[str, Cell]:
    out: dict[str, Cell] = {}
    for f in FINDINGS:
        cells = [(v, cells.get(f.key, (None, _NOT_ADDRESSED))) for v, cells in variants.items()]
        ev = [(v, h) for v, (h, _t) in cells if h is not None]
        if not ev:
            out[f.key] = (None, "not evaluated by any variant")
            continue
        n_hold = sum(h for _v, h in ev)
        text = f"holds in {n_hold} of {len(ev)} variants: " + "; ".join(f"{v}: {t}" for v, (h, t) in cells if h is not None)
        out[f.key] = (n_hold == len(ev), text)
    return out


def _flips(variants: Mapping[str, Mapping[str, Cell]], ref: Mapping[str, Cell]) -> list[str]:
    """'variant: finding' for every evaluated cell whose verdict differs from the reference."""
    out = []
    for v, cells in variants.items():
        for k, (h, _t) in cells.items():
            rh = ref.get(k, (None, ""))[0]
            if h is not None and rh is not None and h != rh:
                out.append(f"{v}: {k}")
    return out


# ---------------------------------------------------------------------------
# context shared by the checks
# ---------------------------------------------------------------------------
@dataclass
class RobustnessContext:
    """Inputs and shared, cached intermediate results of one :func:`run_robustness` call."""

    idata: Any
    survey: Any
    spec: Spec
    seed: int = 20190601
    bootstrap_draws: int = 2000
    refit_kwargs: dict = field(default_factory=dict)
    progress: bool = True
    prob: float = 0.9
    models: tuple[str, ...] = ("no_industry", "one_construct", "all_ordinal")
    prior_refits: str = "auto"
    #: the refits' models compiling in a second process (:func:`start_refit_compile`)
    refit_compile: Any = None
    _cache: dict = field(default_factory=dict, repr=False)

    # ---- fit ---------------------------------------------------------------
    @property
    def n_firms(self) -> int:
        return int(self.survey.n_firms)

    def fit_problem(self) -> str | None:
        """Why the fit cannot be used (None when it can)."""
        if "fit_problem" in self._cache:
            return self._cache["fit_problem"]
        prob = None
        if self.idata is None:
            prob = "no fit given (pass a fit of the measurement model)"
        else:
            attrs = getattr(self.idata, "attrs", {}) or {}
            h = attrs.get("data_hash")
            if h is not None and h != self.survey.data_hash:
                prob = (f"the fit was made on different data (fit data hash {str(h)[:12]}, survey "
                        f"{self.survey.data_hash[:12]})")
            else:
                try:
                    _pred._check_spec(self.idata, self.spec)
                except ValueError as exc:
                    prob = str(exc)
        self._cache["fit_problem"] = prob
        return prob

    @property
    def fit_spec(self) -> Spec:
        if "fit_spec" not in self._cache:
            text = (getattr(self.idata, "attrs", {}) or {}).get("spec_text") if self.idata is not None else None
            self._cache["fit_spec"] = parse_spec(text, source="<fit spec>") if text else self.spec
        return self._cache["fit_spec"]

    @property
    def fit_group(self) -> bool:
        attrs = getattr(self.idata, "attrs", {}) or {}
        return bool(int(attrs.get("group", 1))) and self.fit_spec.group_column is not None

    @property
    def fit_parameterization(self) -> str:
        return str((getattr(self.idata, "attrs", {}) or {}).get("parameterization", "auto"))

    def comparison(self):
        """:func:`~smeintl.predictive.compare` of the given fit (all draws), cached."""
        if "comparison" not in self._cache:
            self._cache["comparison"] = compare(self.idata, self.survey, self.spec, prob=self.prob,
                                                random_seed=self.seed)
        return self._cache["comparison"]

    # ---- deterministic -----------------------------------------------------
    def indices(self):
        if "indices" not in self._cache:
            self._cache["indices"] = compute_indices(self.survey, self.spec)
        return self._cache["indices"]

    def deterministic(self):
        """:func:`~smeintl.profiles.run_deterministic` on the observed data, cached."""
        from .profiles import run_deterministic

        if "det" not in self._cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._cache["det"] = run_deterministic(self.survey, spec=self.spec)
        return self._cache["det"]

    def baseline_rows(self) -> pd.DataFrame:
        if "baseline_rows" not in self._cache:
            ind = self.indices().indices.to_numpy()
            self._cache["baseline_rows"] = _finding_rows(self.spec, self.survey, ind)
        return self._cache["baseline_rows"]

    def baseline_det(self) -> dict[str, Cell]:
        return _det_cells(self.baseline_rows(), self.indices().indices.to_numpy(), self.spec)

    def baseline_post(self) -> dict[str, Cell]:
        if "baseline_post" not in self._cache:
            prob = self.fit_problem()
            self._cache["baseline_post"] = (_na_cells(prob) if prob else _posterior_cells(self.comparison().findings))
        return self._cache["baseline_post"]

    # ---- refits --------------------------------------------------------------
    def refit_settings(self) -> dict[str, Any]:
        kw = {**DEFAULT_REFIT, **(self.refit_kwargs or {})}
        kw.setdefault("sampler", str(self.fit_spec.sampler.get("sampler", "pymc")))
        return kw

    def refit_sampler(self) -> str:
        """The sampler of the refits: the refit settings' (default the fit spec's), with
        ``"auto"`` resolved; PyMC's NUTS where nutpie is not installed."""
        from .measurement import _has_nutpie

        sampler = self.refit_settings()["sampler"]
        if sampler in ("nutpie", "auto") and not _has_nutpie():
            return "pymc"
        return "nutpie" if sampler == "auto" else sampler

    def refit_model(self, spec: Spec, *, group: bool, standardized_scores: bool | str = "auto"):
        """The measurement model of a refit: ``spec``, with the fit's parameterization where
        the variant allows it (marginal needs all-continuous items)."""
        from .measurement import MeasurementModel

        par = self.fit_parameterization
        if par == "marginal" and not all(it.scale == "continuous" for it in spec.items):
            par = "auto"
        return MeasurementModel(spec, group=group, parameterization=par if par in ("latent", "marginal") else "auto",
                                standardized_scores=standardized_scores)

    def wait_for_refit_compile(self, model: str) -> None:
        """Let the second process compiling the refits' models (if there is one) compile
        the refit ``model``'s structure, or end."""
        if self.refit_compile is not None:
            self.refit_compile.wait_for(model, timeout=REFIT_COMPILE_TIMEOUT)

    def refit(self, spec: Spec, survey, *, group: bool, offset: int):
        """A refit of the measurement model with the refit settings (seed + offset)."""
        kw = self.refit_settings()
        kw.pop("sampler")
        sampler = self.refit_sampler()
        model = self.refit_model(spec, group=group)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return model.fit(survey, random_seed=int(self.seed) + offset, progressbar=False, sampler=sampler, **kw)
            except Exception:
                if sampler == "nutpie":  # fall back to PyMC's NUTS
                    return model.fit(survey, random_seed=int(self.seed) + offset, progressbar=False, sampler="pymc", **kw)
                raise

    def bar(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress or total == 0, leave=False)


def _skip(name: str, reason: str, reference: str = "deterministic") -> CheckResult:
    return CheckResult(name, None, pd.DataFrame({"note": [reason]}), f"skipped: {reason}", findings={},
                       variants={}, reference=reference)


# ---------------------------------------------------------------------------
# frequentist counterparts
# ---------------------------------------------------------------------------
def _ml_factor(R: np.ndarray, n_factor: int, nobs: int, seed: int):
    from statsmodels.multivariate.factor import Factor

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = Factor(corr=R, n_factor=n_factor, method="ml", nobs=nobs).fit(rng=seed)
        if n_factor > 1:
            res.rotate("oblimin")
    L = np.asarray(res.loadings, dtype=float)
    T = np.asarray(getattr(res, "rotation_matrix", np.eye(n_factor)), dtype=float)
    return L, T.T @ T


def check_factor_analysis(ctx: RobustnessContext) -> CheckResult:
    """Maximum-likelihood factor analysis (statsmodels) beside the Bayesian loadings."""
    name = "factor_analysis"
    spec = ctx.spec
    S = ctx.indices().scaled  # scaled, reverse-coded items (F, I)
    F, I = S.shape
    if F < MIN_FIRMS["factor_analysis"] or F <= I:
        return _skip(name, f"too few firms ({F}) for a factor analysis of {I} items: need more firms than items "
                           f"and at least {MIN_FIRMS['factor_analysis']}")
    var = S.var(ddof=1)
    const = [c for c in S.columns if not (var[c] > 0)]
    cols = [c for c in S.columns if c not in const]
    R = S[cols].corr(min_periods=3)
    method = "pairwise-complete Pearson correlations"
    nobs = int((S[cols].notna().astype(int).T @ S[cols].notna().astype(int)).to_numpy().min())
    if R.isna().to_numpy().any() or np.linalg.eigvalsh(R.to_numpy()).min() <= 1e-8:
        cc = S[cols].dropna()
        if len(cc) <= len(cols):
            return _skip(name, f"the pairwise correlation matrix is not positive definite and only {len(cc)} firms "
                               f"have every item (need more than {len(cols)})")
        R, method, nobs = cc.corr(), "Pearson correlations over the complete cases", len(cc)
    Rv = R.to_numpy()
    cn = spec.construct_names
    C = len(cn)
    item_c = np.array([cn.index(spec.item(c).construct) for c in cols])
    seed = int(ctx.seed) % (2**32)

    # exploratory: C factors, oblimin, matched to the constructs (permutation and signs)
    L, phi = _ml_factor(Rv, C, nobs, seed)
    best = None
    for perm in itertools.permutations(range(C)):
        signs = np.array([1.0 if L[item_c == c, perm[c]].sum() >= 0 else -1.0 for c in range(C)])
        score = sum(signs[c] * L[item_c == c, perm[c]].sum() for c in range(C))
        if best is None or score > best[0]:
            best = (score, perm, signs)
    _s, perm, signs = best
    Lm = L[:, list(perm)] * signs[None, :]
    phim = phi[np.ix_(perm, perm)] * np.outer(signs, signs)
    primary = np.argmax(np.abs(Lm), axis=1)

    # confirmatory-like: one factor per construct; Thurstone regression factor scores
    one = np.full(len(cols), np.nan)
    scores = np.full((F, C), np.nan)
    notes = []
    for c in range(C):
        idx = np.flatnonzero(item_c == c)
        if idx.size < 3:
            notes.append(f"construct {cn[c]!r} has {idx.size} items: no one-factor model (needs 3)")
            continue
        lc, _ = _ml_factor(Rv[np.ix_(idx, idx)], 1, nobs, seed)
        lc = lc[:, 0] * (1.0 if lc[:, 0].sum() >= 0 else -1.0)
        one[idx] = lc
        Z = S[[cols[k] for k in idx]]
        Z = ((Z - Z.mean()) / Z.std(ddof=1)).to_numpy()
        w = np.linalg.solve(Rv[np.ix_(idx, idx)], lc)
        scores[:, c] = np.where(np.isnan(Z).any(axis=1), np.nan, np.nan_to_num(Z) @ w)

    table = pd.DataFrame({"item": cols, "construct": [cn[c] for c in item_c],
                          "scale": [spec.item(c).scale for c in cols]})
    for c in range(C):
        table[f"efa_{cn[c]}"] = Lm[:, c]
    table["efa_primary"] = [cn[c] for c in primary]
    table["efa_matches"] = primary == item_c
    table["ml_one_factor"] = one
    bayes_txt = ""
    prob = ctx.fit_problem()
    if prob is None:
        from .measurement import summarize_fit

        lo = summarize_fit(ctx.idata, ctx.fit_spec, prob=ctx.prob).loadings
        b = lo.reindex(cols)
        table["bayes_std_mean"] = b["std_mean"].to_numpy()
        table["bayes_std_lo"] = b["std_lo"].to_numpy()
        table["bayes_std_hi"] = b["std_hi"].to_numpy()
        table["ml_in_bayes_interval"] = (one >= table["bayes_std_lo"]) & (one <= table["bayes_std_hi"])
        ok = np.isfinite(one) & np.isfinite(table["bayes_std_mean"].to_numpy())
        r = float(np.corrcoef(one[ok], table["bayes_std_mean"].to_numpy()[ok])[0, 1]) if ok.sum() >= 3 else float("nan")
        inside = int(table["ml_in_bayes_interval"].sum())
        bayes_txt = (f"Bayesian standardized loadings (latent-response scale) vs one-factor ML loadings (Pearson "
                     f"correlations of the scaled items, attenuated for coarse items): correlation over items "
                     f"{r:.2f}; the ML loading lies in the Bayesian {100 * ctx.prob:g}% interval for {inside} of "
                     f"{len(cols)} items.")
        if C > 1 and "corr" in ctx.idata.posterior:
            a, bb = 0, 1
            pc = float(ctx.idata.posterior["corr"].values[..., a, bb].mean())
            bayes_txt += f" Factor correlation (oblimin) {phim[a, bb]:.2f} vs posterior mean latent correlation {pc:.2f}."
    else:
        bayes_txt = f"Bayesian loadings not shown: {prob}."
    if const:
        notes.append(f"items constant over the firms left out: {', '.join(const)}")
    n_match = int((primary == item_c).sum())
    one_pos = bool(np.all(one[np.isfinite(one)] > 0))
    passed = bool(n_match == len(cols) and one_pos)

    # complementarity from the factor scores, by the finding's rule (predictive.finding_table)
    rows = _finding_rows(spec, ctx.survey, scores)
    cells = _det_cells(rows, scores, spec, only=["complementary"])
    if C < 2:
        cells = _na_cells("one construct")
    text = [
        f"ML factor analysis of {len(cols)} scaled items ({method}, n = {nobs}); "
        + (f"{C} factors, oblimin rotation, matched to the constructs: " if C > 1 else "one factor: ")
        + f"{n_match} of {len(cols)} items load most on their declared construct.",
        f"One factor per construct: {'all loadings positive' if one_pos else 'NOT all loadings positive'} "
        f"(the model's loadings are positive after reverse coding).",
        bayes_txt,
        "Complementarity: Pearson correlation of the one-factor (regression) scores, firms with every item of "
        f"both constructs: {cells.get('complementary', (None, ''))[1]}.",
        *notes,
        f"Pass criterion: every item's exploratory factor is its construct and every one-factor loading is positive.",
    ]
    variants = {"factor_analysis: factor scores": cells}
    return CheckResult(name, passed, table, "\n".join(t for t in text if t), _aggregate(variants), variants)


def _ordinal_lr(y: np.ndarray, g: np.ndarray) -> dict[str, Any]:
    """Ordinal logit of integer categories ``y`` on industry dummies: LR test against the
    thresholds-only model (whose log-likelihood is the multinomial one of the category
    shares)."""
    from scipy import stats
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    ok = np.isfinite(y)
    y, g = y[ok], np.asarray(g, dtype=object)[ok]
    levels = sorted(set(g.tolist()), key=str)
    cats, counts = np.unique(y, return_counts=True)
    out: dict[str, Any] = {"n": int(y.size), "n_categories": int(cats.size), "n_groups": len(levels),
                           "statistic": np.nan, "df": np.nan, "p": np.nan, "note": ""}
    if cats.size < 2 or len(levels) < 2:
        out["note"] = "fewer than 2 categories or industries"
        return out
    X = pd.get_dummies(pd.Series(g, dtype=str), drop_first=True, dtype=float)
    if y.size - X.shape[1] - (cats.size - 1) < 1:
        out["note"] = "too few firms for the parameters"
        return out
    endog = pd.Series(pd.Categorical(y, categories=cats, ordered=True))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            res = OrderedModel(endog, X, distr="logit").fit(method="bfgs", disp=False, maxiter=2000)
        except Exception as exc:  # noqa: BLE001 - report, do not crash
            out["note"] = f"not fitted: {exc}"
            return out
    llnull = float((counts * np.log(counts / counts.sum())).sum())
    lr = max(0.0, 2.0 * (float(res.llf) - llnull))
    df = X.shape[1]
    out.update(statistic=lr, df=df, p=float(stats.chi2.sf(lr, df)))
    if not bool(res.mle_retvals.get("converged", True)):
        out["note"] = "optimizer did not converge (separation?)"
    return out


def check_industry_regression(ctx: RobustnessContext) -> CheckResult:
    """OLS (HC3) and ordinal regressions of the indices and ordinal items on industry."""
    import statsmodels.api as sm
    from scipy import stats

    name = "industry_regression"
    spec, survey = ctx.spec, ctx.survey
    groups, gnames = _industry(survey, spec)
    if groups is None:
        return _skip(name, "the survey has no industry column")
    if len(gnames) < 2:
        return _skip(name, "the survey has fewer than 2 industries")
    alpha = float(FINDING_RULES["alpha"])
    industry = np.array([gnames[g] for g in groups], dtype=object)
    ind = ctx.indices().indices
    rows: list[dict[str, Any]] = []
    tests: dict[str, dict[str, float]] = {"ols": {}, "ordinal": {}}
    bayes = None
    if ctx.fit_problem() is None and ctx.fit_group:
        from .measurement import summarize_fit

        bayes = summarize_fit(ctx.idata, ctx.fit_spec, prob=ctx.prob).group_means
    rank_txt = []
    for c in spec.construct_names:
        y = ind[c].to_numpy(dtype=float)
        ok = np.isfinite(y)
        present = sorted(set(industry[ok].tolist()), key=str)
        sizes = {g: int(((industry == g) & ok).sum()) for g in present}
        if ok.sum() - len(present) < 1 or len(present) < 2:
            rows.append({"kind": "test", "variable": c, "model": "OLS", "note": "too few firms per industry"})
            continue
        D = pd.get_dummies(pd.Series(industry[ok], dtype=str), dtype=float)[present]
        cov = "HC3"
        note = ""
        if min(sizes.values()) < 2:  # leverage 1: HC3 undefined
            cov, note = "HC1", "HC1 instead of HC3: an industry has a single firm (leverage 1)"
        res = sm.OLS(y[ok], D.to_numpy()).fit(cov_type=cov)
        Rm = np.zeros((len(present) - 1, len(present)))
        Rm[:, 0] = -1.0
        Rm[np.arange(len(present) - 1), np.arange(1, len(present))] = 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wt = res.wald_test(Rm, scalar=True, use_f=True)
        p_ols = float(np.squeeze(wt.pvalue))
        tests["ols"][c] = p_ols
        lat = {}
        if bayes is not None:
            bc = bayes[bayes["construct"] == c].set_index("group")
            lat = {g: bc.loc[g] for g in present if g in bc.index}
        for k, g in enumerate(present):
            row = {"kind": "industry mean", "variable": c, "model": f"OLS ({cov})", "industry": g, "n": sizes[g],
                   "estimate": float(res.params[k]), "se": float(res.bse[k])}
            if g in lat:
                row.update(latent_mean=float(lat[g]["mean"]), latent_lo=float(lat[g]["lo"]),
                           latent_hi=float(lat[g]["hi"]))
            rows.append(row)
        if len(lat) >= 3:
            rho = stats.spearmanr([float(res.params[present.index(g)]) for g in lat],
                                  [float(lat[g]["mean"]) for g in lat]).statistic
            rank_txt.append(f"{c}: Spearman {rho:.2f}")
        rows.append({"kind": "test", "variable": c, "model": f"OLS ({cov}) robust Wald F, equal industry means",
                     "n": int(ok.sum()), "statistic": float(np.squeeze(wt.statistic)), "df": len(present) - 1,
                     "p": p_ols, "note": note})
        cat = np.where(ok, np.digitize(y, INDEX_BINS), np.nan)
        o = _ordinal_lr(cat, industry)
        tests["ordinal"][c] = o["p"]
        rows.append({"kind": "test", "variable": c, "model": "ordinal logit of the binned index (5 classes), LR test",
                     "n": o["n"], "statistic": o["statistic"], "df": o["df"], "p": o["p"], "note": o["note"]})
    for it in spec.items:
        if it.scale not in ORDINAL_SCALES:
            continue
        o = _ordinal_lr(survey.items[it.name].to_numpy(dtype=float), industry)
        rows.append({"kind": "ordinal item", "variable": it.name, "model": "ordinal logit on industry, LR test",
                     "n": o["n"], "statistic": o["statistic"], "df": o["df"], "p": o["p"], "note": o["note"]})
    table = pd.DataFrame(rows)
    for col in ("industry", "n", "estimate", "se", "latent_mean", "latent_lo", "latent_hi", "statistic", "df", "p", "note"):
        if col not in table.columns:
            table[col] = np.nan if col != "note" else ""
    table = table[["kind", "variable", "model", "industry", "n", "estimate", "se", "latent_mean", "latent_lo",
                   "latent_hi", "statistic", "df", "p", "note"]]

    keymap = {"industries_differ_doi": FINDING_RULES["doi"], "industries_differ_independence": FINDING_RULES["independence"]}
    variants: dict[str, dict[str, Cell]] = {}
    for vname, key in (("industry_regression: OLS HC3", "ols"), ("industry_regression: ordinal logit", "ordinal")):
        cells = {f.key: (None, _NOT_ADDRESSED) for f in FINDINGS}
        for fk, c in keymap.items():
            p = tests[key].get(c, np.nan)
            if c not in spec.construct_names:
                cells[fk] = (None, f"n/a: the spec has no construct named {c!r}")
            elif not np.isfinite(p):
                cells[fk] = (None, "n/a: the test is undefined (too few firms per industry)")
            else:
                cells[fk] = (bool(p < alpha), f"{'holds' if p < alpha else 'does not hold'} (p={p:.3g})")
        variants[vname] = cells
    ref = ctx.baseline_det()
    flips = _flips(variants, ref)
    evaluated = any(h is not None for v in variants.values() for h, _ in v.values())
    passed = (not flips) if evaluated else None
    text = [
        "Industry means of each index by OLS on industry dummies with HC3 standard errors; robust Wald F test of "
        "equal means; ordinal logit (statsmodels OrderedModel) of the index cut into 5 classes at "
        f"{', '.join(f'{b:g}' for b in INDEX_BINS)}, and of every ordinal item, on industry: likelihood-ratio test "
        f"against the thresholds-only model. A finding holds when p < {alpha:g}.",
    ]
    for c in spec.construct_names:
        if c in tests["ols"]:
            text.append(f"{c}: OLS-HC3 p = {tests['ols'][c]:.3g}; ordinal p = {tests['ordinal'].get(c, np.nan):.3g}")
    if rank_txt:
        text.append("Rank agreement of the OLS industry means with the hierarchical latent industry means: "
                    + "; ".join(rank_txt) + ".")
    elif bayes is None:
        text.append("Hierarchical industry means not shown: "
                    + (ctx.fit_problem() or "the fit has no industry level") + ".")
    text.append("Pass criterion: both tests reach the deterministic ANOVA's verdict for every industry finding"
                + (f"; differs: {', '.join(flips)}" if flips else "") + ".")
    return CheckResult(name, passed, table, "\n".join(text), _aggregate(variants), variants)


# ---------------------------------------------------------------------------
# method sensitivity of the deterministic typology
# ---------------------------------------------------------------------------
def _variant_stats(ctx: RobustnessContext, label: str, spec_v: Spec, ind: np.ndarray, ta: Mapping[str, Any],
                   type_names: Sequence[str], cells: Mapping[str, Cell], extra: Mapping[str, Any] | None = None) -> dict:
    if "base_ta" not in ctx._cache:
        ctx._cache["base_ta"] = type_arrays(ctx.indices().indices.to_numpy(), ctx.spec)
    base_ta = ctx._cache["base_ta"]
    bnames = list(base_ta["type_names"])
    bcodes = base_ta["type"]
    codes = np.asarray(ta["type"])
    row: dict[str, Any] = {"variant": label, "n_typed": int((codes >= 0).sum())}
    for j, c in enumerate(spec_v.construct_names):
        fn = ta["flag_names"][j]
        nv = int(ta["flag_valid"][:, j].sum())
        row[f"share_{fn}"] = ta["flags"][:, j].sum() / nv if nv else np.nan
    for k, t in enumerate(type_names):
        row[f"count_{t}"] = int((codes == k).sum())
    both = (codes >= 0) & (bcodes >= 0)
    vn = np.array([type_names[c] if c >= 0 else "" for c in codes], dtype=object)
    bn = np.array([bnames[c] if c >= 0 else "" for c in bcodes], dtype=object)
    row["same_type_as_baseline"] = float((vn[both] == bn[both]).mean()) if both.any() else np.nan
    if list(type_names) == bnames:
        row["kappa_vs_baseline"] = float(_pred.cohens_kappa(bcodes, codes, len(bnames)))
    if extra:
        row.update(extra)
    ref = ctx.baseline_det()
    row["findings_changed"] = ", ".join(k for k, (h, _t) in cells.items()
                                        if h is not None and ref.get(k, (None,))[0] is not None and h != ref[k][0])
    return row


def _run_det_variant(ctx: RobustnessContext, label: str, spec_v: Spec, extra: Mapping[str, Any] | None = None,
                     quadrant: bool = False) -> tuple[dict[str, Cell], dict]:
    X = item_matrix(ctx.survey, spec_v).to_numpy(dtype=float)
    ind = index_arrays(X, spec_v)["indices"]
    ta = type_arrays(ind, spec_v)
    rows = _finding_rows(spec_v, ctx.survey, ind, ta)
    cells = _det_cells(rows, ind, spec_v)
    ex = dict(extra or {})
    if quadrant:
        try:
            q = quadrant_codes(ind, spec_v)
            for k, t in enumerate(spec_v.profiles.type_names):
                ex[f"quadrant_count_{t}"] = int((q == k).sum())
        except ValueError:
            pass
    return cells, _variant_stats(ctx, label, spec_v, ind, ta, ta["type_names"], cells, ex)


def _method_check(ctx: RobustnessContext, name: str, plan: Sequence[tuple[str, Spec | None, str, dict]],
                  intro: str, quadrant: bool = False) -> CheckResult:
    variants: dict[str, dict[str, Cell]] = {}
    rows = []
    for label, spec_v, reason, extra in plan:
        col = f"{name}: {label}"
        if spec_v is None:
            variants[col] = _na_cells(reason)
            rows.append({"variant": label, "note": reason, **extra})
            continue
        cells, row = _run_det_variant(ctx, label, spec_v, extra, quadrant=quadrant)
        variants[col] = cells
        rows.append(row)
    return _finish_method(ctx, name, variants, rows, intro)


def _finish_method(ctx, name, variants, rows, intro) -> CheckResult:
    ref = ctx.baseline_det()
    flips = _flips(variants, ref)
    evaluated = any(h is not None for v in variants.values() for h, _ in v.values())
    passed = (not flips) if evaluated else None
    table = pd.DataFrame(rows)
    lines = [intro]
    if not evaluated:
        reasons = sorted({t.removeprefix("n/a: ") for v in variants.values() for _h, t in v.values()})
        lines.append("No variant could evaluate a finding: " + "; ".join(reasons[:5]) + ".")
        return CheckResult(name, None, pd.DataFrame(rows), "\n".join(lines), _aggregate(variants), variants)
    for f in FINDINGS:
        ev = [c[f.key][0] for c in variants.values() if c.get(f.key, (None,))[0] is not None]
        if ev:
            lines.append(f"{f.key}: holds in {sum(ev)} of {len(ev)} variants "
                         f"(baseline: {ref.get(f.key, (None, 'n/a'))[1]})")
    lines.append("Pass criterion: every finding keeps its deterministic verdict under every variant"
                 + (f"; changes: {', '.join(flips)}" if flips else "") + ".")
    return CheckResult(name, passed, table, "\n".join(lines), _aggregate(variants), variants)


def check_thresholds(ctx: RobustnessContext) -> CheckResult:
    plan = []
    for t in THRESHOLDS:
        sv, reason = spec_variant(ctx.spec, "thresholds", t)
        plan.append((f"{t:g}", sv, reason, {"threshold": t}))
    return _method_check(
        ctx, "thresholds", plan,
        f"Flag thresholds {', '.join(f'{t:g}' for t in THRESHOLDS)} for every construct (index >= threshold). "
        "The nearest-type typing does not depend on the thresholds; the table also gives the quadrant-rule type "
        "counts, which do.", quadrant=True)


def check_weights(ctx: RobustnessContext) -> CheckResult:
    plan = []
    for label, val in (("equal", "equal"), ("by item count", "items"), ("spec", "spec")):
        sv, reason = spec_variant(ctx.spec, "weights", val)
        extra = {"weights": "; ".join(f"{c.name}: {', '.join(f'{w:g}' for w in c.subdimension_weights)}"
                                      for c in sv.constructs)} if sv is not None else {}
        plan.append((label, sv, reason, extra))
    same = all(tuple(c.subdimension_weights) == (1.0,) * len(c.subdimensions) for c in ctx.spec.constructs)
    intro = ("Sub-dimension weights of the construct indices: equal, proportional to the number of items of the "
             "sub-dimension, and the spec's own" + (" (which are equal here)." if same else "."))
    return _method_check(ctx, "weights", plan, intro)


def check_profiles(ctx: RobustnessContext) -> CheckResult:
    name = "profiles"
    spec, survey = ctx.spec, ctx.survey
    variants: dict[str, dict[str, Cell]] = {}
    rows: list[dict] = []
    ind = ctx.indices().indices.to_numpy()
    sub = ctx.indices().subdimensions.to_numpy()
    ta = type_arrays(ind, spec)

    # sub-dimension types: the type-based finding from the sub-dimension typing
    col = f"{name}: sub-dimension types"
    sa = subtype_arrays(sub, spec)
    if sa is None:
        variants[col] = _na_cells("the spec declares no sub-dimension profiles")
        rows.append({"variant": "sub-dimension types", "note": "the spec declares no sub-dimension profiles"})
    else:
        J = len(spec.profiles.dimensions)
        eval_spec = _dc_replace(spec, profiles=ProfileSet(spec.profiles.dimensions, tuple(
            IdealType(t.name, (0.0,) * J, (1.0,) * J) for t in spec.subdimension_profiles.types)))
        ta_s = dict(ta, type=sa["type"], type_names=sa["type_names"], distance=sa["distance"], fit=sa["fit"])
        frows = _finding_rows(spec, survey, ind, ta_s, eval_spec=eval_spec)
        cells = _det_cells(frows, ind, spec)
        variants[col] = cells
        rows.append(_variant_stats(ctx, "sub-dimension types", spec, ind, ta_s, sa["type_names"], cells,
                                   {"dimensions": ", ".join(spec.subdimension_profiles.dimensions)}))

    # 2-D types plus the empirical ideal
    col = f"{name}: 2-D + empirical ideal"
    det = ctx.deterministic()
    emp_dims = tuple(spec.empirical.dimensions or spec.profiles.dimensions)
    if det.empirical is None:
        note = det.summary.get("outcome", {}).get("note", "")
        reason = ("no outcome column (the empirical ideal needs one)" if "no outcome column" in note or not note
                  else "the outcome column has no values (the empirical ideal needs them)")
        variants[col] = _na_cells(reason)
        rows.append({"variant": "2-D + empirical ideal", "note": reason})
    elif emp_dims != tuple(spec.profiles.dimensions):
        reason = (f"the empirical ideal is defined on {list(emp_dims)}, not on the profile dimensions "
                  f"{list(spec.profiles.dimensions)}")
        variants[col] = _na_cells(reason)
        rows.append({"variant": "2-D + empirical ideal", "note": reason})
    else:
        ideal = [float(v) for v in det.empirical.ideal]
        raw = _spec_to_raw(spec)
        tname = "empirical"
        while tname in spec.profiles.type_names:
            tname += "_"
        raw["profiles"]["types"].append({"name": tname, "coords": ideal, "weights": [1.0] * len(ideal)})
        sv = _from_raw(raw, "2-D types + empirical ideal")
        b = det.baseline
        extra = {"ideal": ", ".join(f"{d}={v:.3f}" for d, v in zip(emp_dims, ideal)),
                 "calibration_firms": int(det.empirical.n_top),
                 "baseline_test": b.verdict if b is not None else ""}
        cells, row = _run_det_variant(ctx, "2-D + empirical ideal", sv, extra)
        variants[col] = cells
        rows.append(row)

    # standardized dimensions
    sv, reason = spec_variant(spec, "standardize")
    if spec.standardize:
        variants[f"{name}: 2-D standardized"] = _na_cells("the spec already standardizes the dimensions")
    else:
        cells, row = _run_det_variant(ctx, "2-D standardized", sv)
        variants[f"{name}: 2-D standardized"] = cells
        rows.append(row)
    intro = ("Ideal-profile definitions: theoretical types on the sub-dimension scores; the 2-D theoretical types "
             "plus the empirical ideal (mean (DOI, independence) of the top firms on the outcome) as a further type; "
             "the 2-D types on z-standardized dimensions. The baseline is the 2-D theoretical types.")
    return _finish_method(ctx, name, variants, rows, intro)


def check_leave_one_item_out(ctx: RobustnessContext) -> CheckResult:
    plan = []
    for it in ctx.spec.items:
        raw, dropped, reason = _drop_from_raw(_spec_to_raw(ctx.spec), items=[it.name])
        sv = _from_raw(raw, f"without item {it.name}") if raw is not None else None
        plan.append((f"without {it.name}", sv, reason,
                     {"item": it.name, "subdimension_dropped": ", ".join(dropped)}))
    return _method_check(ctx, "leave_one_item_out", plan,
                         "Each item left out in turn (a sub-dimension left without items is dropped with it).")


def check_leave_one_subdimension_out(ctx: RobustnessContext) -> CheckResult:
    plan = []
    for sd in ctx.spec.subdimension_names:
        sv, reason = spec_variant(ctx.spec, "drop_subdimension", sd)
        plan.append((f"without {sd}", sv, reason, {"subdimension": sd}))
    return _method_check(ctx, "leave_one_subdimension_out", plan,
                         "Each sub-dimension left out in turn (with its items; its construct index averages the rest).")


def check_bootstrap(ctx: RobustnessContext) -> CheckResult:
    """Firm bootstrap (stratified by industry) of the shares, with percentile intervals."""
    name = "bootstrap"
    F = ctx.n_firms
    if F < MIN_FIRMS["bootstrap"]:
        return _skip(name, f"too few firms ({F}) for a firm bootstrap: need at least {MIN_FIRMS['bootstrap']}")
    B = int(ctx.bootstrap_draws)
    if B < 1:
        raise ValueError(f"bootstrap_draws must be at least 1, got {B}")
    spec, survey = ctx.spec, ctx.survey
    groups, gnames = _industry(survey, spec)
    rng = np.random.default_rng([int(ctx.seed), 20190601])
    if groups is not None:
        idx = np.empty((B, F), dtype=np.int64)
        for g in range(len(gnames)):
            pos = np.flatnonzero(groups == g)
            if pos.size:
                idx[:, pos] = pos[rng.integers(0, pos.size, size=(B, pos.size))]
        how = "firms resampled with replacement within each industry (every industry keeps its size)"
    else:
        idx = rng.integers(0, F, size=(B, F))
        how = "firms resampled with replacement"
    ind = ctx.indices().indices.to_numpy()
    rep = ind[idx]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        rep_ta = type_arrays(rep, spec)
        ta = type_arrays(ind, spec)
        st_obs = sample_statistics(ind, ta, spec, groups, gnames)
        st_rep = sample_statistics(rep, rep_ta, spec, groups, gnames)
    frows = _finding_rows(spec, survey, ind, ta, rep, rep_ta)
    cells = _replicated_cells(frows)
    lo_q, hi_q = (1 - ctx.prob) / 2, (1 + ctx.prob) / 2
    rows = []
    for k in st_obs:
        if not (k.startswith("share_") or k.startswith("count_") or (k.startswith("mean_") and "[" not in k
                                                                       and not k.startswith("mean_dist"))):
            continue
        r = np.asarray(st_rep[k], dtype=float)
        r = r[np.isfinite(r)]
        rows.append({"statistic": k, "observed": float(st_obs[k]), "boot_mean": float(r.mean()) if r.size else np.nan,
                     "boot_sd": float(r.std(ddof=1)) if r.size > 1 else np.nan,
                     "lo": float(np.quantile(r, lo_q)) if r.size else np.nan,
                     "hi": float(np.quantile(r, hi_q)) if r.size else np.nan, "B": B})
    table = pd.DataFrame(rows)
    ref = ctx.baseline_det()
    variants = {f"{name}: firms": cells}
    flips = _flips(variants, ref)
    evaluated = any(h is not None for h, _ in cells.values())
    passed = (not flips) if evaluated else None
    pct = f"{100 * ctx.prob:g}%"
    lines = [f"Firm bootstrap, B = {B}, seed {ctx.seed}: {how}; the deterministic method re-run on every resample. "
             f"{pct} percentile intervals of the shares in the table; each cell is the share of resamples in which "
             "the finding holds (holds when >= 0.5)."]
    for r in rows:
        if r["statistic"].startswith("share_"):
            lines.append(f"{r['statistic']}: {r['observed']:.3f} ({pct} interval {r['lo']:.3f} to {r['hi']:.3f})")
    lines.append("Pass criterion: the bootstrap majority agrees with the deterministic verdict of every finding"
                 + (f"; differs: {', '.join(flips)}" if flips else "") + ".")
    return CheckResult(name, passed, table, "\n".join(lines), _aggregate(variants), variants)


# ---------------------------------------------------------------------------
# model sensitivity
# ---------------------------------------------------------------------------
def _resample_idata(idata, log_weights: np.ndarray, seed: Sequence[int]):
    """Importance resampling (systematic) of a fit's draws by normalized log weights:
    one chain of S draws (with repeats) in the posterior, posterior predictive and
    log-likelihood groups; attrs kept."""
    import arviz as az

    S = log_weights.size
    w = np.exp(log_weights - log_weights.max())
    w /= w.sum()
    rng = np.random.default_rng(list(seed))
    u = (rng.random() + np.arange(S)) / S
    idx = np.minimum(np.searchsorted(np.cumsum(w), u), S - 1)
    groups = {}
    for gname in ("posterior", "posterior_predictive", "log_likelihood"):
        if gname not in idata.groups():
            continue
        ds = getattr(idata, gname)
        st = ds.stack(__sample__=("chain", "draw")).isel(__sample__=idx)
        st = st.drop_vars(["chain", "draw", "__sample__"], errors="ignore").rename({"__sample__": "draw"})
        st = st.assign_coords(draw=np.arange(S)).expand_dims(chain=[0]).transpose("chain", "draw", ...)
        groups[gname] = st
    out = az.InferenceData(**groups)
    out.attrs.update(dict(idata.attrs))
    return out


def _log_prior(ctx: RobustnessContext, model):
    """Log prior density per draw (a ``(chain, draw)`` DataArray) of the analyst's priors:
    every free variable but the latent firm scores (``z``, or ``eta_<construct>`` when
    centred) and the group deviations ``group_z`` (the population model, not a prior choice).

    The prior's log-density graph (PyMC's, on the untransformed variables) is vectorized over
    the draws and evaluated once with PyTensor's Python backend: about 1.7 s cold or warm,
    where ``pymc.compute_log_prior`` (one C-compiled call per draw) took 15 s on an empty
    compile cache and 1.6 s on a warm one.  Graphs that cannot be vectorized fall back to it;
    ``tests/test_robustness.py`` checks that both give the same values."""
    import pymc as pm

    from .measurement import is_score_variable, no_traces

    names = [v.name for v in model.free_RVs if v.name != "group_z" and not is_score_variable(v.name)]
    with warnings.catch_warnings(), no_traces():
        warnings.simplefilter("ignore")
        try:
            return _log_prior_vectorized(ctx.idata.posterior, model, names)
        except (NotImplementedError, TypeError, ValueError):
            pass
        lp = pm.compute_log_prior(ctx.idata, model=model, var_names=names, extend_inferencedata=False,
                                  progressbar=False)
    tot = None
    for v in lp.data_vars:
        da = lp[v]
        da = da.sum([d for d in da.dims if d not in ("chain", "draw")])
        tot = da if tot is None else tot + da
    return tot


def _log_prior_vectorized(post, model, names: list[str]):
    """The summed log prior of ``names`` at every draw of ``post`` in one call (see :func:`_log_prior`)."""
    import pytensor
    import pytensor.tensor as pt
    import xarray as xr
    from pymc.model.transform.conditioning import remove_value_transforms
    from pytensor.graph.replace import vectorize_graph

    um = remove_value_transforms(model)
    rvs = [um.named_vars[n] for n in names]
    total = sum(pt.sum(t) for t in um.logp(vars=rvs, sum=False))
    values = [um.rvs_to_values[rv] for rv in rvs]
    batched = [pt.tensor(f"{v.name}_draws", shape=(None, *v.type.shape), dtype=v.dtype) for v in values]
    fn = pytensor.function(batched, vectorize_graph(total, replace=dict(zip(values, batched))),
                           mode="FAST_COMPILE", on_unused_input="ignore")
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    lp = fn(*[post[n].values.reshape(nc * nd, *post[n].shape[2:]) for n in names])
    return xr.DataArray(np.asarray(lp).reshape(nc, nd), dims=("chain", "draw"),
                        coords={"chain": post.chain, "draw": post.draw})


def _refit_preconditions(ctx: RobustnessContext, name: str, what: str) -> CheckResult | None:
    """The skipped result of a refit check that cannot run (too few firms, an unusable
    fit, no per-firm log-likelihood), or None when it can."""
    if ctx.n_firms < MIN_FIRMS["model"]:
        return _skip(name, f"too few firms ({ctx.n_firms}) for {what}: need at least {MIN_FIRMS['model']}",
                     "posterior")
    prob = ctx.fit_problem()
    if prob:
        return _skip(name, prob, "posterior")
    idata = ctx.idata
    if "log_likelihood" not in idata.groups() or "responses" not in idata.log_likelihood:
        return _skip(name, "the fit has no per-firm log-likelihood ('responses')", "posterior")
    return None


def check_prior_sensitivity(ctx: RobustnessContext) -> CheckResult:
    """Power-scaling prior and likelihood sensitivity (psens, PSIS k-hat) and refits."""
    import arviz as az
    import xarray as xr

    name = "prior_sensitivity"
    skip = _refit_preconditions(ctx, name, "prior-sensitivity refits")
    if skip is not None:
        return skip
    idata = ctx.idata
    fit_spec = ctx.fit_spec
    # the analyst's priors on the reported parameters: a model without standardized scores
    # (whose free loadings would add the log-Jacobian of their change of scale)
    model = ctx.refit_model(fit_spec, group=ctx.fit_group, standardized_scores=False).build(ctx.survey)
    lp = _log_prior(ctx, model)
    post = idata.posterior
    ll = idata.log_likelihood["responses"].sum("firm")

    # quantities: loadings, latent correlations, group sds, and the true-score statistics of the findings
    qs: dict[str, xr.DataArray] = {}
    for it in post["loading"].coords["item"].values:
        qs[f"loading[{it}]"] = post["loading"].sel(item=it)
    cn = fit_spec.construct_names
    if "corr" in post:
        for a in range(len(cn)):
            for b in range(a + 1, len(cn)):
                qs[f"corr[{cn[a]},{cn[b]}]"] = post["corr"].isel(construct=a, construct_=b)
    if "group_sd" in post:
        for c in post["group_sd"].coords["construct"].values:
            qs[f"group_sd[{c}]"] = post["group_sd"].sel(construct=c)
    comp = ctx.comparison()
    shape = (post.sizes["chain"], post.sizes["draw"])
    if comp.n_draws == shape[0] * shape[1]:
        groups, gnames = _industry(ctx.survey, ctx.spec)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            st = sample_statistics(comp.true_indices, type_arrays(comp.true_indices, ctx.spec), ctx.spec)
        for key in [k for k in st if k.startswith("share_") and not any(k == f"share_{t}" for t in comp.type_names)] + \
                [f"count_{FINDING_RULES['mnc_type']}"]:
            if key in st:
                qs[f"{key} (true score)"] = xr.DataArray(np.asarray(st[key], dtype=float).reshape(shape),
                                                         dims=("chain", "draw"), coords={"chain": post.chain, "draw": post.draw})
    qds = xr.Dataset({k: v.drop_vars([c for c in v.coords if c not in ("chain", "draw")]) for k, v in qs.items()})
    data = az.InferenceData(posterior=qds, log_prior=xr.Dataset({"prior": lp}),
                            log_likelihood=xr.Dataset({"responses": ll}))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        sp = az.psens(data, component="prior", delta=PSENS_DELTA)
        sl = az.psens(data, component="likelihood", delta=PSENS_DELTA)
    rows = []
    for k in qds.data_vars:
        p, lk = float(sp[k]), float(sl[k])
        if p >= PSENS_THRESHOLD and lk >= PSENS_THRESHOLD:
            diag = "potential prior-data conflict"
        elif p >= PSENS_THRESHOLD:
            diag = "strong prior / weak likelihood"
        else:
            diag = "-"
        rows.append({"kind": "sensitivity", "quantity": k, "prior": p, "likelihood": lk, "diagnosis": diag, "note": ""})

    # Pareto k of the power-scaling weights
    lpv = lp.values.ravel()
    llv = ll.values.ravel()

    def khat(comp_draws: np.ndarray, a: float) -> tuple[np.ndarray, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lw, k = az.psislw((a - 1.0) * comp_draws)
        return np.asarray(lw), float(np.asarray(k))

    kh: dict[float, tuple[float, float]] = {}
    for a in (1 / (1 + PSENS_DELTA), 1 + PSENS_DELTA):
        kh[a] = (khat(lpv, a)[1], khat(llv, a)[1])
        rows.append({"kind": "k-hat", "quantity": f"power-scaling alpha = {a:.4f} (psens)", "prior": kh[a][0],
                     "likelihood": kh[a][1], "diagnosis": "unreliable" if max(kh[a]) > KHAT_MAX else "ok", "note": ""})
    is_k: dict[float, float] = {}
    is_lw: dict[float, np.ndarray] = {}
    for a in POWER_ALPHAS:
        lw, k = khat(lpv, a)
        is_k[a], is_lw[a] = k, lw
        rows.append({"kind": "k-hat", "quantity": f"prior power-scaled by {a:g} (importance weights)", "prior": k,
                     "likelihood": np.nan, "diagnosis": "unreliable" if k > KHAT_MAX else "ok", "note": ""})

    variants: dict[str, dict[str, Cell]] = {}
    for a in POWER_ALPHAS:
        col = f"{name}: prior^{a:g} (importance)"
        if is_k[a] > KHAT_MAX:
            variants[col] = _na_cells(f"importance weights unreliable (k-hat {is_k[a]:.2f} > {KHAT_MAX}); see the refits")
            continue
        rs = _resample_idata(idata, is_lw[a], [int(ctx.seed), int(round(100 * a))])
        c = compare(rs, ctx.survey, ctx.spec, prob=ctx.prob, random_seed=ctx.seed)
        variants[col] = _posterior_cells(c.findings)
    max_k = max([*is_k.values(), *(max(v) for v in kh.values())])
    if ctx.prior_refits not in PRIOR_REFITS:
        raise ValueError(f"prior_refits must be 'auto', 'always' or 'never', got {ctx.prior_refits!r}")
    do_refit = ctx.prior_refits == "always" or (ctx.prior_refits == "auto" and max_k > KHAT_MAX)
    refit_rows = []
    if do_refit:
        bar = ctx.bar(len(PRIOR_SCALES), "prior-sensitivity refits")
        try:
            for j, f in enumerate(PRIOR_SCALES):
                sv, _r = spec_variant(fit_spec, "priors", f)
                surv = _survey_for(sv, ctx.survey)
                t0 = time.perf_counter()
                col = f"{name}: priors sd x{f:g} (refit)" if f >= 1 else f"{name}: priors sd /{1 / f:g} (refit)"
                try:
                    fit = ctx.refit(sv, surv, group=ctx.fit_group, offset=101 + j)
                except Exception as exc:  # noqa: BLE001 - report, keep the other refit
                    variants[col] = _na_cells(f"the refit failed: {type(exc).__name__}: {exc}")
                    bar.update(1)
                    continue
                c = compare(fit, surv, ctx.spec, prob=ctx.prob, random_seed=ctx.seed)
                variants[col] = _posterior_cells(c.findings)
                diag = json.loads(fit.attrs.get("diagnostics", "{}"))
                refit_rows.append({"kind": "refit", "quantity": col.split(": ", 1)[1], "prior": f, "likelihood": np.nan,
                                   "diagnosis": "diagnostics failed" if diag.get("failed") else "diagnostics ok",
                                   "note": f"{time.perf_counter() - t0:.0f} s; " + "; ".join(diag.get("problems", []))})
                bar.update(1)
        finally:
            bar.close()
    else:
        why = ("prior_refits='never'" if ctx.prior_refits == "never"
               else f"power-scaling reliable (max k-hat {max_k:.2f} <= {KHAT_MAX})")
        for f in PRIOR_SCALES:
            col = f"{name}: priors sd x{f:g} (refit)" if f >= 1 else f"{name}: priors sd /{1 / f:g} (refit)"
            variants[col] = _na_cells(f"not refit: {why}")
    table = pd.DataFrame(rows + refit_rows)
    ref = ctx.baseline_post()
    flips = _flips(variants, ref)
    evaluated = any(h is not None for v in variants.values() for h, _ in v.values())
    passed = (not flips) if evaluated else None
    sens = table[(table["kind"] == "sensitivity") & (table["diagnosis"] != "-")]
    lines = [
        f"Power-scaling sensitivity (ArviZ psens, delta = {PSENS_DELTA}; cumulative Jensen-Shannon distance "
        f"derivative, > {PSENS_THRESHOLD} counts as sensitive) of the loadings, latent correlation, industry sds and "
        "the true-score finding statistics; the prior is every analyst prior (not the latent firm scores or "
        "industry deviations); the likelihood is the per-firm log-likelihood.",
        f"Flagged: {len(sens)} of {int((table['kind'] == 'sensitivity').sum())} quantities"
        + (": " + "; ".join(f"{r.quantity} ({r.diagnosis}, prior {r.prior:.3f}, likelihood {r.likelihood:.3f})"
                            for r in sens.itertuples()) if len(sens) else "") + ".",
        "Pareto k-hat of the importance weights: psens "
        + ", ".join(f"alpha {a:.3f}: prior {v[0]:.2f}, likelihood {v[1]:.2f}" for a, v in kh.items())
        + "; prior power-scaled by " + ", ".join(f"{a:g}: {is_k[a]:.2f}" for a in POWER_ALPHAS)
        + f" (reliable when <= {KHAT_MAX}).",
        ("Refits with every prior sd x2 and /2 (" + ", ".join(f"{k}={v}" for k, v in ctx.refit_settings().items())
         + "): the findings under each are in the matrix." if do_refit
         else "No refits: " + ("prior_refits='never'." if ctx.prior_refits == "never" else "power-scaling is reliable.")),
        "Pass criterion: every finding keeps its posterior verdict (probability >= 0.5 or not) under every prior variant"
        + (f"; changes: {', '.join(flips)}" if flips else "") + ".",
    ]
    return CheckResult(name, passed, table, "\n".join(lines), _aggregate(variants), variants, reference="posterior")


def integrated_loglik(idata, spec: Spec, survey, *, group: bool, nodes: int = INTEGRATION_NODES, scale: float = 1.0,
                      draws: np.ndarray | None = None) -> np.ndarray:
    """Per-firm log-likelihood with the firm's latent scores integrated out, ``(S, F)``:
    ``log p(y_f | theta) = log int p(y_f | eta, theta) N(eta | mu_g(f), R) d eta``.

    Adaptive Gauss-Hermite quadrature: ``nodes`` points per construct (product grid),
    centred on the posterior mean of the firm's ``eta`` (over all draws) with the
    posterior covariance times ``scale^2``.  The quadrature integrates against that
    normal proposal, so it is exact as the nodes grow whatever the centring; on the
    bundled data 15 nodes differ from 31 by about 0.001 on average per firm and draw,
    by at most ~0.1.  ``theta`` per draw: item parameters, latent correlation ``R`` and
    industry means ``mu_g`` (0 without an industry level).  ``draws``: the draws
    (chain-major stacked indices) at which to evaluate, default all; returns
    ``(len(draws), F)``.  A fit with the marginal parameterization already stores this
    quantity as ``responses``.
    """
    from numpy.polynomial.hermite_e import hermegauss
    from scipy.special import logsumexp

    from .measurement import ItemLayout, cell_loglik, fit_standardization, posterior_params, standardization_of

    lay = ItemLayout.from_spec(spec)
    P = posterior_params(idata, spec)
    firms = [str(f) for f in idata.posterior["eta"].coords["firm"].values]
    if firms != [str(f) for f in survey.items.index]:
        raise ValueError("the fit's firms are not the survey's (same ids, same order)")
    X = survey.items[list(lay.names)].to_numpy(dtype=float)
    std = fit_standardization(idata) or standardization_of(lay)
    eta_d = P["eta"]  # (S, F, C)
    S, F, C = eta_d.shape
    if C > 3:
        raise ValueError(f"integrated log-likelihood implemented for up to 3 constructs, got {C}")
    m = eta_d.mean(0)
    dev = eta_d - m
    V = np.einsum("sfc,sfd->fcd", dev, dev) / max(S - 1, 1) * scale**2 + 1e-9 * np.eye(C)
    Lf = np.linalg.cholesky(V)  # (F, C, C)
    x, w = hermegauss(int(nodes))
    w = w / w.sum()
    Zq = np.array(list(itertools.product(x, repeat=C)))  # (Q, C)
    logw = np.log(np.array([np.prod(t) for t in itertools.product(w, repeat=C)]))
    eta_q = m[:, None, :] + np.einsum("fcd,qd->fqc", Lf, Zq)  # (F, Q, C)
    log_q = (-0.5 * (Zq**2).sum(-1))[None, :] - np.log(np.diagonal(Lf, axis1=1, axis2=2)).sum(-1)[:, None] \
        - 0.5 * C * np.log(2 * np.pi)
    gidx = np.asarray(survey.groups, dtype=int) if group and "group_mean" in P else None
    sel = np.arange(S) if draws is None else np.asarray(draws, dtype=int)
    out = np.empty((sel.size, F))

    def one(j: int) -> None:
        s = sel[j]
        R = P["corr"][s] if C > 1 else np.ones((1, 1))
        Lr = np.linalg.cholesky(R)
        mu = P["group_mean"][s][gidx] if gidx is not None else np.zeros((F, C))
        d = eta_q - mu[:, None, :]
        u = np.linalg.solve(Lr, d.reshape(-1, C).T).T.reshape(d.shape)
        log_p = -0.5 * (u**2).sum(-1) - np.log(np.diag(Lr)).sum() - 0.5 * C * np.log(2 * np.pi)
        ll = cell_loglik(P, s, eta_q, X, lay, std)
        out[j] = logsumexp(logw[None, :] + ll + log_p - log_q, axis=1)

    # draws are independent and numpy's ufuncs release the GIL: one thread per core
    # (the values do not depend on the number of threads)
    workers = min(os.cpu_count() or 1, 8, sel.size)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, range(sel.size)))
    else:
        for j in range(sel.size):
            one(j)
    return out


def _integrated_idata(fit, spec: Spec, survey, group: bool, parameterization: str, check: bool = False):
    """InferenceData with the posterior (thinned to at most :data:`INTEGRATED_MAX_DRAWS`
    draws) and the integrated per-firm log-likelihood as ``responses``; with ``check``
    also the largest difference, over up to 10 draws, between the quadrature with
    :data:`INTEGRATION_NODES` and with :data:`INTEGRATION_CHECK_NODES` nodes."""
    import arviz as az
    import xarray as xr

    post = fit.posterior
    nc, nd = int(post.sizes["chain"]), int(post.sizes["draw"])
    keep = np.arange(nd)
    if nc * nd > INTEGRATED_MAX_DRAWS:
        keep = np.unique(np.round(np.linspace(0, nd - 1, max(1, INTEGRATED_MAX_DRAWS // nc))).astype(int))
    sub = post.isel(draw=keep)
    err = (float("nan"), float("nan"))
    if parameterization == "marginal":  # responses are already marginal over the latent scores
        ll = fit.log_likelihood["responses"].isel(draw=keep)
    else:
        sel = (np.arange(nc)[:, None] * nd + keep[None, :]).ravel()  # chain-major stacked indices
        vals = integrated_loglik(fit, spec, survey, group=group, draws=sel)
        if check:
            few = np.unique(np.round(np.linspace(0, sel.size - 1, min(10, sel.size))).astype(int))
            fine = integrated_loglik(fit, spec, survey, group=group, nodes=INTEGRATION_CHECK_NODES, draws=sel[few])
            err = (float(np.abs(fine - vals[few]).max()), float(np.abs(fine - vals[few]).mean()))
        ll = xr.DataArray(vals.reshape(nc, keep.size, -1), dims=("chain", "draw", "firm"),
                          coords={"chain": sub.chain, "draw": sub.draw,
                                  "firm": fit.log_likelihood["responses"].coords["firm"].values})
    return az.InferenceData(posterior=sub, log_likelihood=xr.Dataset({"responses": ll})), err


def _one_construct_findings(ctx: RobustnessContext, fit, spec1: Spec, survey1) -> dict[str, Cell]:
    """Findings implied by a one-construct fit: the true-score and replicated statistics
    run through the *original* spec's deterministic method (items are the same); the
    latent-parameter findings have no counterpart."""
    from .measurement import posterior_params

    spec = ctx.spec
    ids = tuple(str(f) for f in ctx.survey.items.index)
    X = item_matrix(ctx.survey, spec).to_numpy(dtype=float)
    Yrep = _pred.replicated_items(fit, survey1, spec=spec1, random_seed=ctx.seed)
    Ytrue = _pred.true_score_items(fit, spec1, firms=ids)
    groups, gnames = _industry(ctx.survey, spec)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        obs = index_arrays(X, spec)["indices"]
        rep = index_arrays(Yrep, spec)["indices"]
        tru = index_arrays(Ytrue, spec)["indices"]
        ta_o, ta_r, ta_t = type_arrays(obs, spec), type_arrays(rep, spec), type_arrays(tru, spec)
        st_o = sample_statistics(obs, ta_o, spec, groups, gnames)
        st_r = sample_statistics(rep, ta_r, spec, groups, gnames)
        st_t = sample_statistics(tru, ta_t, spec, groups, gnames)
        P = {k: v for k, v in posterior_params(fit).items() if k not in ("corr", "group_mean")}
        rows = _pred.finding_table(spec, ctx.prob, obs, rep, st_o, st_r, st_t, P, groups, gnames, fit)
    why = "a one-construct model has no latent correlation and no per-construct industry means"
    return _posterior_cells(rows, {k: why for k in ("industries_differ_doi", "industries_differ_independence",
                                                     "complementary")})


def _comparison_plan(ctx: RobustnessContext) -> tuple[list[tuple[str, tuple[Any, Spec, bool]]], dict[str, str]]:
    """The refits of ``model_comparison``: ``([(model, (survey, spec, group)), ...],
    {model: why it is not fitted})``, from the fit's spec and options."""
    for m in ctx.models:
        if m not in MODEL_VARIANTS:
            raise ValueError(f"unknown model variant {m!r}; known: {', '.join(MODEL_VARIANTS)}")
    fit_spec = ctx.fit_spec
    plan: list[tuple[str, tuple[Any, Spec, bool]]] = []
    skipped: dict[str, str] = {}
    for m in ctx.models:
        if m == "no_industry":
            if not ctx.fit_group:
                skipped[m] = "the given fit has no industry level"
                continue
            plan.append((m, (_survey_for(fit_spec, ctx.survey), fit_spec, False)))
        elif m == "one_construct":
            sv, reason = spec_variant(fit_spec, "one_construct")
            if sv is None:
                skipped[m] = reason
                continue
            plan.append((m, (_survey_for(sv, ctx.survey), sv, ctx.fit_group)))
        elif m == "all_ordinal":
            # the evaluation spec's profiles and thresholds with the fit's priors and sampler
            sv, reason = spec_variant(_dc_replace(ctx.spec, priors=fit_spec.priors, sampler=fit_spec.sampler),
                                      "all_ordinal")
            if sv is None:
                skipped[m] = reason
                continue
            plan.append((m, (_ordinal_survey(sv, ctx.survey), sv, ctx.fit_group)))
    return plan, skipped


class _FitAttrs:
    """Stands in for a fit not made yet: the attrs that the refits' settings read."""

    def __init__(self, group: bool, parameterization: str):
        self.attrs = {"group": int(group), "parameterization": str(parameterization)}


def _context_before_fit(spec: Spec, survey, *, group: bool, parameterization: str, models: Sequence[str],
                        refit_kwargs: Mapping[str, Any] | None) -> RobustnessContext:
    """The context the refits will have once a fit of ``spec`` on ``survey`` with these
    options exists: enough to plan and build the refits' models before it does."""
    return RobustnessContext(idata=_FitAttrs(group, parameterization), survey=survey, spec=spec,
                             models=tuple(models), refit_kwargs=dict(refit_kwargs or {}))


def compile_refit_models(spec: Spec, survey, *, group: bool = True, parameterization: str = "auto",
                         models: Sequence[str] = MODEL_VARIANTS,
                         refit_kwargs: Mapping[str, Any] | None = None,
                         on_compiled: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Compile, without sampling, the models that ``model_comparison`` refits for a fit of
    ``spec`` on ``survey`` (``group``, ``parameterization``: the fit's options), so that
    the refits load them from the disk caches.  Only nutpie's models are compiled ahead;
    with PyMC's NUTS as the refit sampler nothing is done.  ``on_compiled(model)`` is called
    as each is done, in :data:`REFIT_COMPILE_ORDER`.  Returns ``{model: {"compile_s",
    "compile_reused"}}``."""
    ctx = _context_before_fit(spec, survey, group=group, parameterization=parameterization, models=models,
                              refit_kwargs=refit_kwargs)
    if ctx.refit_sampler() != "nutpie":
        return {}
    plan, _skipped = _comparison_plan(ctx)
    out = {}
    for m, (surv, sv, g) in _in_compile_order(plan):
        out[m] = ctx.refit_model(sv, group=g).compile(surv)
        if on_compiled is not None:
            on_compiled(m)
    return out


#: the order in which the model-comparison refits' models are compiled ahead, and refitted:
#: the variants least like the fit first, since while the fit's own model compiles in
#: another process they share few of its operations; by the time the no-industry model
#: (most alike) comes, numba's disk cache holds the fit's operations
REFIT_COMPILE_ORDER: tuple[str, ...] = ("all_ordinal", "one_construct", "no_industry")


def _in_compile_order(plan):
    return sorted(plan, key=lambda p: REFIT_COMPILE_ORDER.index(p[0]))


def _compile_refits_quietly(spec: Spec, survey, kwargs: dict[str, Any], done) -> None:
    """The second process of :func:`start_refit_compile`: its output would interleave with
    the run's, and a failure only means the refits compile their models themselves.
    ``done``: a queue that gets each model's name once its structure is compiled."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    warnings.simplefilter("ignore")
    compile_refit_models(spec, survey, **kwargs, on_compiled=done.put)


class RefitCompile:
    """The models of the model-comparison refits compiling in a second process (see
    :func:`start_refit_compile`); ``done`` is the queue on which it announces each one."""

    def __init__(self, process, done):
        self.process = process
        self.done_queue = done
        self.compiled: set[str] = set()

    def wait_for(self, model: str, timeout: float | None = None) -> float:
        """Wait until the process has compiled ``model``'s structure or ended (at most
        ``timeout`` seconds, then stop it); returns the seconds waited.  The refit can then
        start, on its own core, while the process compiles the next structure; whatever
        it did not compile, the refits compile themselves."""
        import queue

        t0 = time.perf_counter()
        while model not in self.compiled:
            ended = not self.process.is_alive()  # before reading: what it announced is then all queued
            try:
                self.compiled.add(self.done_queue.get(timeout=0.2))
                continue
            except queue.Empty:
                if ended:
                    break
            if timeout is not None and time.perf_counter() - t0 > timeout:
                self.stop()
                break
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def start_refit_compile(model, survey, *, models: Sequence[str] = MODEL_VARIANTS,
                        refit_kwargs: Mapping[str, Any] | None = None) -> RefitCompile | None:
    """Start compiling the model-comparison refits' models in a second process, to run
    while ``model`` (a :class:`~smeintl.measurement.MeasurementModel`, not fitted yet)
    compiles and samples on ``survey``; :meth:`RefitCompile.wait` before the refits.

    Only when it pays: the refits sample with nutpie, the machine has a second core, and
    ``model``'s own compiled model is not in the disk caches (a cold cache; the refits'
    models are then almost surely missing too, and each takes 15-35 s to compile for the
    default instrument).  Returns None otherwise, having built ``model``'s graph once to
    look it up (a fraction of a second).
    """
    import multiprocessing

    kwargs = dict(group=model.group, parameterization=model.parameterization, models=tuple(models),
                  refit_kwargs=dict(refit_kwargs or {}))
    ctx = _context_before_fit(model.spec, survey, **kwargs)
    if (os.cpu_count() or 1) < 2 or ctx.refit_sampler() != "nutpie" or model.compiled_on_disk(survey):
        return None
    mp = multiprocessing.get_context("spawn")
    done = mp.Queue()
    process = mp.Process(target=_compile_refits_quietly, args=(model.spec, survey, kwargs, done), daemon=True,
                         name="smeintl-refit-compile")
    process.start()
    return RefitCompile(process, done)


def check_model_comparison(ctx: RobustnessContext) -> CheckResult:
    """PSIS-LOO of the fitted model against refits of alternative models."""
    import arviz as az

    name = "model_comparison"
    skip = _refit_preconditions(ctx, name, "model refits and LOO")
    if skip is not None:
        return skip
    idata = ctx.idata
    fit_spec = ctx.fit_spec
    desc = {
        "reference": ("the given fit: " + (f"{len(fit_spec.constructs)} correlated constructs" if len(fit_spec.constructs) > 1
                                           else "one construct") + (", industry level" if ctx.fit_group else ", no industry level")),
        "no_industry": "no industry level (latent means 0 for every firm)",
        "one_construct": "one construct for all items (sub-dimensions kept)",
        "all_ordinal": f"every item ordinal: percent and count items cut into {ORDINAL_LEVELS + 1} categories",
    }
    plan, skipped = _comparison_plan(ctx)
    fits: dict[str, Any] = {"reference": idata}
    meta: dict[str, dict[str, Any]] = {"reference": {"refit": False, "seconds": np.nan}}
    bar = ctx.bar(len(plan), "model-comparison refits")
    # each refit's seed offset by its place in the plan, whatever order they run in
    offset = {m: 201 + j for j, (m, _) in enumerate(plan)}
    try:
        # in the order a second process compiles them (if one does): each starts once its
        # own structure is on disk
        for m, (surv, sv, group) in _in_compile_order(plan):
            ctx.wait_for_refit_compile(m)
            t0 = time.perf_counter()
            try:
                fits[m] = ctx.refit(sv, surv, group=group, offset=offset[m])
                meta[m] = {"refit": True, "seconds": time.perf_counter() - t0, "survey": surv, "spec": sv}
            except Exception as exc:  # noqa: BLE001 - one failed refit must not sink the comparison
                skipped[m] = f"the refit failed: {type(exc).__name__}: {exc}"
            bar.update(1)
    finally:
        bar.close()
    plan = [p for p in plan if p[0] not in skipped]
    fits = {"reference": idata, **{m: fits[m] for m, _ in plan}}  # the plan's order, whatever the refits' order

    # which fits share the observations and scale of the reference
    ref_hash = idata.attrs.get("data_hash")
    ref_firms = [str(f) for f in idata.log_likelihood["responses"].coords["firm"].values]
    same: dict[str, bool] = {}
    for m, f in fits.items():
        same[m] = (f.attrs.get("data_hash") == ref_hash and m != "all_ordinal"
                   and [str(x) for x in f.log_likelihood["responses"].coords["firm"].values] == ref_firms)
    loo_fits = {m: f for m, f in fits.items() if same[m]}
    fit_info = {"reference": (fit_spec, ctx.survey, ctx.fit_group, ctx.fit_parameterization)}
    for m, (surv, sv, group) in plan:
        fit_info[m] = (sv, surv, group, str(fits[m].attrs.get("parameterization", "latent")))
    loos: dict[str, Any] = {}
    iloos: dict[str, Any] = {}
    integ: dict[str, Any] = {}
    cmp = icmp = None
    quad_err = (float("nan"), float("nan"))
    integ_notes: list[str] = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for m, f in loo_fits.items():
            loos[m] = az.loo(f, var_name="responses", pointwise=True)
            try:
                integ[m], qerr = _integrated_idata(f, *fit_info[m], check=(m == "reference"))
                iloos[m] = az.loo(integ[m], var_name="responses", pointwise=True)
                if np.isfinite(qerr[0]):
                    quad_err = qerr
            except Exception as exc:  # noqa: BLE001 - report, keep the conditional LOO
                integ_notes.append(f"{m}: integrated log-likelihood not computed ({exc})")
        if len(loo_fits) >= 2:
            cmp = az.compare(loo_fits, ic="loo", var_name="responses")
        if len(iloos) >= 2 and set(iloos) == set(loo_fits):
            icmp = az.compare(integ, ic="loo", var_name="responses")
    rows = []
    for m in ["reference", *[p[0] for p in plan], *skipped]:
        row: dict[str, Any] = {"model": m, "description": desc[m]}
        if m in skipped:
            row.update(refit=False, observations="-", in_loo=False, note=f"not fitted: {skipped[m]}")
            rows.append(row)
            continue
        f = fits[m]
        diag = json.loads(f.attrs.get("diagnostics", "{}"))
        row.update(refit=meta[m]["refit"], draws=int(f.posterior.sizes["draw"]), chains=int(f.posterior.sizes["chain"]),
                   observations="same as the reference" if same[m] else "different (items discretized): findings only",
                   in_loo=m in loos, diagnostics="failed" if diag.get("failed") else "ok")
        for pre, lo_d, cm in (("", loos, cmp), ("integrated_", iloos, icmp)):
            if m not in lo_d:
                continue
            lo = lo_d[m]
            k = np.asarray(lo.pareto_k)
            row.update({f"{pre}elpd_loo": float(lo.elpd_loo), f"{pre}se": float(lo.se), f"{pre}p_loo": float(lo.p_loo),
                        f"{pre}max_pareto_k": float(np.nanmax(k)), f"{pre}n_pareto_k_gt_0_7": int((k > KHAT_MAX).sum())})
            if cm is not None and m in cm.index:
                row.update({f"{pre}rank": int(cm.loc[m, "rank"]), f"{pre}elpd_diff": float(cm.loc[m, "elpd_diff"]),
                            f"{pre}dse": float(cm.loc[m, "dse"]), f"{pre}weight": float(cm.loc[m, "weight"])})
        row["seconds"] = meta[m]["seconds"]
        row["note"] = "; ".join(diag.get("problems", []))
        rows.append(row)
    table = pd.DataFrame(rows)
    table["quadrature_check_max"] = np.where(table["model"] == "reference", quad_err[0], np.nan)
    table["quadrature_check_mean"] = np.where(table["model"] == "reference", quad_err[1], np.nan)

    variants: dict[str, dict[str, Cell]] = {}
    for m in ctx.models:
        col = f"{name}: {m.replace('_', ' ')}"
        if m in skipped:
            variants[col] = _na_cells(skipped[m])
            continue
        f, surv, sv = fits[m], meta[m]["survey"], meta[m]["spec"]
        if m == "one_construct":
            variants[col] = _one_construct_findings(ctx, f, sv, surv)
        else:
            spec_eval = ctx.spec if m == "no_industry" else sv
            c = compare(f, surv, spec_eval, prob=ctx.prob, random_seed=ctx.seed)
            variants[col] = _posterior_cells(c.findings)

    def verdict_of(cm, label: str) -> tuple[bool | None, str]:
        if cm is None:
            return None, f"{label}: not computed (fewer than two comparable fits)."
        r = cm.loc["reference"]
        best = str(cm.index[0])
        ok = bool(best == "reference" or float(r["elpd_diff"]) <= 2.0 * float(r["dse"]))
        txt = (f"{label}: best {best}; " + ("the reference model is best." if best == "reference" else
               f"the reference model is behind by {float(r['elpd_diff']):.1f} (se of the difference "
               f"{float(r['dse']):.1f})."))
        return ok, txt

    p_cond, txt_cond = verdict_of(cmp, "Conditional LOO")
    p_int, txt_int = verdict_of(icmp, "Integrated LOO")
    passed = p_int if p_int is not None else p_cond
    kmax = {m: float(np.nanmax(np.asarray(lo.pareto_k))) for m, lo in loos.items()}
    ikmax = {m: float(np.nanmax(np.asarray(lo.pareto_k))) for m, lo in iloos.items()}
    failed = [m for m in fits if json.loads(fits[m].attrs.get("diagnostics", "{}")).get("failed")]
    lines = [
        "PSIS-LOO compares only models of the same observations on the same scale: the same firms' answers to the "
        "same items, each term the log density of a firm's raw answers. Models whose observations differ (the "
        "all-ordinal model cuts percent and count answers into categories) are compared on what they imply for "
        "the findings, not by LOO.",
        "Two LOO versions, both leaving out one firm (all its answers): conditional, on the stored per-firm "
        "log-likelihood 'responses' given the firm's own latent scores (PSIS is often unreliable there, since each "
        "firm's scores are informed by its answers alone), and integrated, with the firm's latent scores "
        f"integrated out (adaptive Gauss-Hermite, {INTEGRATION_NODES} nodes per construct; at most "
        f"{INTEGRATED_MAX_DRAWS} evenly spaced draws), which predicts a new firm of the same industry. The verdict "
        "uses the integrated LOO when it is available."
        + (" The given fit uses the marginal parameterization: its stored log-likelihood is already integrated "
           "over the latent scores, so for it the two coincide." if ctx.fit_parameterization == "marginal" else "")
        + (f" Quadrature check on the reference fit (10 draws): a firm's integrated log-likelihood changes by "
           f"at most {quad_err[0]:.3f} (mean {quad_err[1]:.4f}) with {INTEGRATION_CHECK_NODES} nodes."
           if np.isfinite(quad_err[0]) else ""),
        "Reference: the given fit (" + f"{int(idata.posterior.sizes['chain'])} x {int(idata.posterior.sizes['draw'])} draws"
        + "); alternatives refit with " + ", ".join(f"{k}={v}" for k, v in ctx.refit_settings().items()) + ".",
        txt_int,
        txt_cond,
        "Max Pareto k, integrated: " + (", ".join(f"{m} {v:.2f}" for m, v in ikmax.items()) or "-")
        + "; conditional: " + (", ".join(f"{m} {v:.2f}" for m, v in kmax.items()) or "-")
        + f" (above {KHAT_MAX} that firm's LOO term is unreliable).",
        *(f"{m}: not fitted ({r})." for m, r in skipped.items()),
        *integ_notes,
        *([f"Convergence diagnostics failed for: {', '.join(failed)} (short refits: use longer refit settings "
           "before trusting small differences)."] if failed else []),
        "Pass criterion: the reference model is best by LOO or within 2 standard errors of the difference of the best.",
    ]
    return CheckResult(name, passed, table, "\n".join(lines), _aggregate(variants), variants, reference="posterior")


# ---------------------------------------------------------------------------
# registry and driver
# ---------------------------------------------------------------------------
#: the checks, in the order they run (cheap ones first)
CHECKS: dict[str, Callable[[RobustnessContext], CheckResult]] = {
    "factor_analysis": check_factor_analysis,
    "industry_regression": check_industry_regression,
    "thresholds": check_thresholds,
    "weights": check_weights,
    "profiles": check_profiles,
    "leave_one_item_out": check_leave_one_item_out,
    "leave_one_subdimension_out": check_leave_one_subdimension_out,
    "bootstrap": check_bootstrap,
    "prior_sensitivity": check_prior_sensitivity,
    "model_comparison": check_model_comparison,
}
CHECK_NAMES: tuple[str, ...] = tuple(CHECKS)
#: the checks that refit the measurement model (minutes each; skipped by ``smeintl run --quick``)
REFIT_CHECKS: tuple[str, ...] = ("prior_sensitivity", "model_comparison")


def output_names(checks: Sequence[str] | None = None) -> list[str]:
    """File names :func:`write_robustness` writes for these checks (for overwrite checks)."""
    names = list(CHECK_NAMES) if checks is None else list(checks)
    return ["robustness.csv", *(f"{n}.csv" for n in names)]


def run_robustness(
    idata,
    survey,
    spec: Spec | None = None,
    *,
    checks: Sequence[str] | None = None,
    seed: int = 20190601,
    bootstrap_draws: int = 2000,
    refit_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    prob: float = 0.9,
    models: Sequence[str] = MODEL_VARIANTS,
    prior_refits: str = "auto",
    refit_compile: "RefitCompile | None" = None,
) -> RobustnessResult:
    """Run robustness checks and build the findings matrix.

    ``idata``: a fit of :class:`~smeintl.measurement.MeasurementModel` on ``survey`` (or
    None: the checks needing a fit then say so); ``spec`` defaults to ``survey.spec``;
    ``checks``: names from :data:`CHECKS` (default all, run in registry order);
    ``refit_kwargs``: sampler settings of every refit (default :data:`DEFAULT_REFIT`);
    ``models``: the alternative models of ``model_comparison``; ``prior_refits``:
    ``"auto"`` (refit with wider and narrower priors when importance weights are
    unreliable), ``"always"`` or ``"never"``; ``refit_compile``: the refits' models
    compiling in a second process (:func:`start_refit_compile`), waited for just before
    the model-comparison refits and stopped at the end.  A check that cannot run returns a result
    with ``passed=None`` whose text says why; unexpected errors in one check are caught
    and reported the same way, so the other checks still run.
    """
    spec = spec if spec is not None else survey.spec
    names = list(CHECK_NAMES) if checks is None else list(dict.fromkeys(checks))
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {', '.join(CHECK_NAMES)}")
    if int(bootstrap_draws) < 1:
        raise ValueError(f"bootstrap_draws must be at least 1, got {bootstrap_draws}")
    names = [n for n in CHECK_NAMES if n in names]
    bad = [m for m in models if m not in MODEL_VARIANTS]
    if bad:
        raise ValueError(f"unknown model variant(s) {', '.join(bad)}; known: {', '.join(MODEL_VARIANTS)}")
    if prior_refits not in PRIOR_REFITS:
        raise ValueError(f"prior_refits must be 'auto', 'always' or 'never', got {prior_refits!r}")
    ctx = RobustnessContext(idata=idata, survey=survey, spec=spec, seed=int(seed), bootstrap_draws=int(bootstrap_draws),
                            refit_kwargs=dict(refit_kwargs or {}), progress=progress, prob=float(prob),
                            models=tuple(models), prior_refits=prior_refits, refit_compile=refit_compile)
    results = []
    notes = []
    try:
        for n in names:
            t0 = time.perf_counter()
            try:
                res = CHECKS[n](ctx)
            except Exception as exc:  # noqa: BLE001 - one failing check must not sink the others
                ref = "posterior" if n in REFIT_CHECKS else "deterministic"
                res = _skip(n, f"the check failed: {type(exc).__name__}: {exc}", ref)
                notes.append(f"{n} failed with {type(exc).__name__}: {exc}")
            results.append(_dc_replace(res, seconds=time.perf_counter() - t0))
    finally:
        if ctx.refit_compile is not None:  # done, or model_comparison did not run: nobody needs it
            ctx.refit_compile.stop()
    matrix = _matrix(ctx, results)
    settings = {"n_firms": ctx.n_firms, "seed": ctx.seed, "bootstrap_draws": ctx.bootstrap_draws,
                "refit": ctx.refit_settings(), "prob": ctx.prob, "checks": names, "models": list(ctx.models),
                "prior_refits": prior_refits, "fit": ctx.fit_problem() or "usable"}
    return RobustnessResult(tuple(results), matrix, settings, tuple(notes))


def _matrix(ctx: RobustnessContext, results: Sequence[CheckResult]) -> pd.DataFrame:
    det = ctx.baseline_det()
    post = ctx.baseline_post()
    keys = [f.key for f in FINDINGS]
    cols: dict[str, list[str]] = {
        "baseline: deterministic": [det.get(k, (None, "n/a"))[1] for k in keys],
        "baseline: posterior": [post.get(k, (None, "n/a"))[1] for k in keys],
    }
    agree = {k: [0, 0] for k in keys}
    for r in results:
        ref = post if r.reference == "posterior" else det
        if not r.variants:
            cols[r.name] = [f"n/a: {r.text.removeprefix('skipped: ')}" for _ in keys]
            continue
        for vname, cells in r.variants.items():
            cols[vname] = [cells.get(k, (None, _NOT_ADDRESSED))[1] for k in keys]
            for k in keys:
                h = cells.get(k, (None, ""))[0]
                rh = ref.get(k, (None, ""))[0]
                if h is not None and rh is not None:
                    agree[k][1] += 1
                    agree[k][0] += int(h == rh)
    cols["agreement"] = [f"{agree[k][0]} of {agree[k][1]} variants agree with the baseline" if agree[k][1]
                         else "no variant evaluated" for k in keys]
    return pd.DataFrame(cols, index=pd.Index(keys, name="finding"))


def write_robustness(result: RobustnessResult, out_dir: str | Path) -> list[Path]:
    """Write ``robustness.csv`` (the findings matrix, one row per finding) and one
    ``<check>.csv`` per check (its table) into ``out_dir`` (created if needed); returns
    the paths.  Existing files are replaced: the caller decides the overwrite policy."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    p = d / "robustness.csv"
    result.matrix.to_csv(p, index=True)
    paths.append(p)
    for c in result.checks:
        p = d / f"{c.name}.csv"
        c.table.to_csv(p, index=False)
        paths.append(p)
    return paths
