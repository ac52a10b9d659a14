"""Check ``profiles``: other ideal-profile definitions: the sub-dimension ideal types;
the 2-D types plus the empirical ideal (needs an outcome); the 2-D types on
z-standardized dimensions."""

from __future__ import annotations

from dataclasses import replace

from ..profiles import subtype_arrays, type_arrays
from ..spec import IdealType, ProfileSet
from .context import RobustnessContext
from .findings import det_verdicts, finding_rows
from .method import finish_method, run_det_variant, variant_stats
from .result import Check, CheckResult
from .variants import spec_from_raw, spec_to_raw, spec_variant
from .verdict import Verdict, na_verdicts

CHECK_NAME = "profiles"


def check_profiles(ctx: RobustnessContext) -> CheckResult:
    name = CHECK_NAME
    spec, survey = ctx.spec, ctx.survey
    variants: dict[str, dict[str, Verdict]] = {}
    rows: list[dict] = []
    ind = ctx.indices().indices.to_numpy()
    sub = ctx.indices().subdimensions.to_numpy()
    ta = type_arrays(ind, spec)

    # sub-dimension types: the type-based finding from the sub-dimension typing
    col = f"{name}: sub-dimension types"
    sa = subtype_arrays(sub, spec)
    if sa is None:
        variants[col] = na_verdicts(ctx.spec, "the spec declares no sub-dimension profiles")
        rows.append({"variant": "sub-dimension types", "note": "the spec declares no sub-dimension profiles"})
    else:
        J = len(spec.profiles.dimensions)
        eval_spec = replace(spec, profiles=ProfileSet(spec.profiles.dimensions, tuple(
            IdealType(t.name, (0.0,) * J, (1.0,) * J) for t in spec.subdimension_profiles.types)))
        ta_s = dict(ta, type=sa["type"], type_names=sa["type_names"], distance=sa["distance"], fit=sa["fit"])
        frows = finding_rows(spec, survey, ind, ta_s, eval_spec=eval_spec)
        cells = det_verdicts(frows, ind, spec)
        variants[col] = cells
        rows.append(variant_stats(ctx, "sub-dimension types", spec, ind, ta_s, sa["type_names"], cells,
                                   {"dimensions": ", ".join(spec.subdimension_profiles.dimensions)}))

    # 2-D types plus the empirical ideal
    col = f"{name}: 2-D + empirical ideal"
    det = ctx.deterministic()
    emp_dims = tuple(spec.empirical.dimensions or spec.profiles.dimensions)
    if det.empirical is None:
        note = det.summary.get("outcome", {}).get("note", "")
        reason = ("no outcome column (the empirical ideal needs one)" if "no outcome column" in note or not note
                  else "the outcome column has no values (the empirical ideal needs them)")
        variants[col] = na_verdicts(ctx.spec, reason)
        rows.append({"variant": "2-D + empirical ideal", "note": reason})
    elif emp_dims != tuple(spec.profiles.dimensions):
        reason = (f"the empirical ideal is defined on {list(emp_dims)}, not on the profile dimensions "
                  f"{list(spec.profiles.dimensions)}")
        variants[col] = na_verdicts(ctx.spec, reason)
        rows.append({"variant": "2-D + empirical ideal", "note": reason})
    else:
        ideal = [float(v) for v in det.empirical.ideal]
        raw = spec_to_raw(spec)
        tname = "empirical"
        while tname in spec.profiles.type_names:
            tname += "_"
        raw["profiles"]["types"].append({"name": tname, "coords": ideal, "weights": [1.0] * len(ideal)})
        sv = spec_from_raw(raw, "2-D types + empirical ideal")
        b = det.baseline
        extra = {"ideal": ", ".join(f"{d}={v:.3f}" for d, v in zip(emp_dims, ideal)),
                 "calibration_firms": int(det.empirical.n_top),
                 "baseline_test": b.verdict if b is not None else ""}
        cells, row = run_det_variant(ctx, "2-D + empirical ideal", sv, extra)
        variants[col] = cells
        rows.append(row)

    # standardized dimensions
    sv, reason = spec_variant(spec, "standardize")
    if spec.standardize:
        variants[f"{name}: 2-D standardized"] = na_verdicts(ctx.spec, "the spec already standardizes the dimensions")
    else:
        cells, row = run_det_variant(ctx, "2-D standardized", sv)
        variants[f"{name}: 2-D standardized"] = cells
        rows.append(row)
    intro = ("Ideal-profile definitions: theoretical types on the sub-dimension scores; the 2-D theoretical types "
             "plus the empirical ideal (mean (DOI, independence) of the top firms on the outcome) as a further type; "
             "the 2-D types on z-standardized dimensions. The baseline is the 2-D theoretical types.")
    return finish_method(ctx, name, variants, rows, intro)


CHECK = Check(CHECK_NAME, "sub-dimension ideal types; 2-D types plus the empirical ideal (needs an outcome); 2-D "
              "types on z-standardized dimensions", check_profiles)
