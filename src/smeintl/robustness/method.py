"""What the method-sensitivity checks of the deterministic typology share (``thresholds``,
``weights``, ``profiles``, ``leave_one_item_out``, ``leave_one_subdimension_out``): a
variant spec run through the deterministic pipeline
(:func:`~smeintl.indices.index_arrays`, :func:`~smeintl.profiles.type_arrays`) and the
finding rules of :mod:`smeintl.predictive` unchanged, its row of the check's table, and
the check's verdict against the deterministic baseline."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .. import predictive as _pred
from ..indices import index_arrays, item_matrix
from ..profiles import quadrant_codes, type_arrays
from ..spec import Spec
from .context import RobustnessContext
from .findings import det_verdicts, finding_rows
from .result import CheckResult
from .verdict import Verdict, aggregate, any_evaluated, changes, flipped, na_verdicts


class PlannedVariant(NamedTuple):
    """One variant of a method check: its label (the matrix column is ``<check>: <label>``),
    its spec (None when the variant does not exist: ``reason`` says why) and extra columns
    of its table row."""

    label: str
    spec: Spec | None
    reason: str
    extra: dict


def variant_stats(ctx: RobustnessContext, label: str, spec_v: Spec, ind: np.ndarray, ta: Mapping[str, Any],
                  type_names: Sequence[str], cells: Mapping[str, Verdict], extra: Mapping[str, Any] | None = None) -> dict:
    """The table row of a variant: flag shares, type counts, agreement with the baseline
    typing, the findings whose verdict it changes."""
    base_ta = ctx.baseline_types()
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
    row["findings_changed"] = ", ".join(changes(cells, ctx.baseline_det()))
    return row


def run_det_variant(ctx: RobustnessContext, label: str, spec_v: Spec, extra: Mapping[str, Any] | None = None,
                    quadrant: bool = False) -> tuple[dict[str, Verdict], dict]:
    """The verdicts and table row of the deterministic method under ``spec_v`` (with
    ``quadrant``, the quadrant-rule type counts in the row too)."""
    X = item_matrix(ctx.survey, spec_v).to_numpy(dtype=float)
    ind = index_arrays(X, spec_v)["indices"]
    ta = type_arrays(ind, spec_v)
    rows = finding_rows(spec_v, ctx.survey, ind, ta)
    cells = det_verdicts(rows, ind, spec_v)
    ex = dict(extra or {})
    if quadrant:
        try:
            q = quadrant_codes(ind, spec_v)
            for k, t in enumerate(spec_v.profiles.type_names):
                ex[f"quadrant_count_{t}"] = int((q == k).sum())
        except ValueError:
            pass
    return cells, variant_stats(ctx, label, spec_v, ind, ta, ta["type_names"], cells, ex)


def method_check(ctx: RobustnessContext, name: str, plan: Sequence[PlannedVariant], intro: str,
                 quadrant: bool = False) -> CheckResult:
    """The check ``name`` over the spec variants of ``plan``."""
    variants: dict[str, dict[str, Verdict]] = {}
    rows = []
    for label, spec_v, reason, extra in plan:
        col = f"{name}: {label}"
        if spec_v is None:
            variants[col] = na_verdicts(ctx.spec, reason)
            rows.append({"variant": label, "note": reason, **extra})
            continue
        cells, row = run_det_variant(ctx, label, spec_v, extra, quadrant=quadrant)
        variants[col] = cells
        rows.append(row)
    return finish_method(ctx, name, variants, rows, intro)


def finish_method(ctx: RobustnessContext, name: str, variants: Mapping[str, Mapping[str, Verdict]],
                  rows: list[dict], intro: str) -> CheckResult:
    """The result of a method check from its variants' verdicts and table rows: passed
    when every finding keeps its deterministic verdict under every variant."""
    ref = ctx.baseline_det()
    flips = flipped(variants, ref)
    evaluated = any_evaluated(variants)
    passed = (not flips) if evaluated else None
    table = pd.DataFrame(rows)
    lines = [intro]
    if not evaluated:
        reasons = sorted({c.note for v in variants.values() for c in v.values()})
        lines.append("The instrument declares no findings: the table gives the variants' numbers only."
                     if not ctx.spec.findings else "No variant could evaluate a finding: " + "; ".join(reasons[:5]) + ".")
        return CheckResult(name, None, pd.DataFrame(rows), "\n".join(lines), aggregate(ctx.spec, variants),
                           variants)
    for f in ctx.spec.findings:
        ev = [c[f.key].holds for c in variants.values() if f.key in c and c[f.key].holds is not None]
        if ev:
            lines.append(f"{f.key}: holds in {sum(ev)} of {len(ev)} variants "
                         f"(baseline: {ref.get(f.key, Verdict.na()).text()})")
    lines.append("Pass criterion: every finding keeps its deterministic verdict under every variant"
                 + (f"; changes: {', '.join(flips)}" if flips else "") + ".")
    return CheckResult(name, passed, table, "\n".join(lines), aggregate(ctx.spec, variants), variants)
