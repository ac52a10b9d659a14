"""Finding evaluation for the checks: the findings table of :mod:`smeintl.findings`
(the findings the spec declares) for a variant's indices, and its rows as
:class:`~.verdict.Verdict` s.  The finding rules live in :mod:`smeintl.findings`;
nothing is re-defined here."""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import findings as _findings
from ..predictive import sample_statistics
from ..profiles import type_arrays
from ..spec import Finding, Spec
from .verdict import NOT_ADDRESSED, Verdict


def industry_codes(survey, spec: Spec) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """The firms' industry codes and the industry names, or ``(None, ())`` without them."""
    if spec.group_column is None or getattr(survey, "groups", None) is None:
        return None, ()
    names = tuple(survey.group_names)
    return (np.asarray(survey.groups, dtype=int), names) if names else (None, ())


def _lead(ta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v[None] if isinstance(v, np.ndarray) else v) for k, v in ta.items()}


def finding_rows(spec: Spec, survey, ind: np.ndarray, ta: Mapping[str, Any] | None = None,
                 rep_ind: np.ndarray | None = None, rep_ta: Mapping[str, Any] | None = None,
                 eval_spec: Spec | None = None) -> pd.DataFrame:
    """The findings table of :mod:`smeintl.findings` (one row per finding ``eval_spec``, default
    ``spec``, declares) for deterministic indices ``ind`` (F, C) (column ``deterministic``) and,
    optionally, replicates ``rep_ind`` (R, F, C) (column ``replicated_probability``: share of the
    replicates in which it holds).

    Calls :func:`smeintl.findings.finding_table` with no posterior, so the finding rules are exactly
    those of :func:`~smeintl.predictive.compare`.
    """
    fn = _findings.finding_table
    es = eval_spec or spec
    groups, gnames = industry_codes(survey, spec)
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


def value_text(quantity: str, value: float, ind: np.ndarray | None = None, spec: Spec | None = None,
               finding: Finding | None = None) -> str:
    """The value behind a deterministic verdict, as shown in its cell (a Pearson r with
    the one-sided p of the ``finding``'s two constructs when ``ind`` and ``spec`` are given)."""
    if not np.isfinite(value):
        return "undefined"
    if quantity == "ANOVA p":
        return f"p={value:.3g}"
    if quantity == "Pearson r":
        txt = f"r={value:.2f}"
        pair = finding.params.get("constructs") if finding is not None else None
        if ind is not None and spec is not None and pair and all(c in spec.construct_names for c in pair):
            cn = spec.construct_names
            a, b = cn.index(pair[0]), cn.index(pair[1])
            _r, p = _findings.pearson_greater_pvalue(ind[:, a], ind[:, b])
            if np.isfinite(p):
                txt += f", p={float(p):.3g}"
        return txt
    if quantity.startswith("count_"):
        return f"{int(round(value))}"
    return f"{value:.2f}"


def det_verdicts(rows: pd.DataFrame, ind: np.ndarray | None = None, spec: Spec | None = None,
                 only: Sequence[str] | None = None) -> dict[str, Verdict]:
    """Verdicts from the ``deterministic`` column of a findings table (those not in
    ``only``, when given: not addressed)."""
    out: dict[str, Verdict] = {}
    declared = {f.key: f for f in spec.findings} if spec is not None else {}
    for r in rows.itertuples(index=False):
        if only is not None and r.finding not in only:
            out[r.finding] = NOT_ADDRESSED
            continue
        det = r.deterministic
        if det is None or (isinstance(det, float) and math.isnan(det)):
            if r.deterministic_quantity == "ANOVA p":
                reason = "the ANOVA is undefined (too few firms with values per industry)"
            elif r.note and (r.note.startswith("not applicable") or "industries" in r.note):
                reason = r.note
            else:
                reason = "undefined (too few firms with values)"
            out[r.finding] = Verdict.na(reason)
            continue
        val = value_text(r.deterministic_quantity, float(r.deterministic_value), ind, spec, declared.get(r.finding))
        out[r.finding] = Verdict.of_value(bool(det), val)
    return out


def posterior_verdicts(findings: pd.DataFrame, note_override: Mapping[str, str] | None = None) -> dict[str, Verdict]:
    """Verdicts from the posterior probabilities of a findings table; the findings in
    ``note_override`` not evaluated, for the reason given."""
    out: dict[str, Verdict] = {}
    for r in findings.itertuples(index=False):
        if note_override and r.finding in note_override:
            out[r.finding] = Verdict.na(note_override[r.finding])
            continue
        out[r.finding] = Verdict.of_probability(float(r.posterior_probability), str(r.note or ""))
    return out


def replicated_verdicts(findings: pd.DataFrame) -> dict[str, Verdict]:
    """Verdicts from the replicated probabilities of a findings table."""
    return {r.finding: Verdict.of_probability(float(r.replicated_probability), str(r.note or ""))
            for r in findings.itertuples(index=False)}
