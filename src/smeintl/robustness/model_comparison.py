"""Check ``model_comparison``: PSIS-LOO (conditional on the firms' latent scores, and
with them integrated out, :mod:`.loo`) of the fitted model against refits without the
industry level and with one construct (same observations, same scale); the all-ordinal
model compared on its findings only."""

from __future__ import annotations

import json
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from .. import predictive as _pred
from ..findings import finding_table
from ..indices import index_arrays, item_matrix
from ..predictive import compare, sample_statistics
from ..profiles import type_arrays
from ..spec import Spec
from .context import KHAT_MAX, RobustnessContext
from .findings import industry_codes, posterior_verdicts
from ..measurement.loo import INTEGRATED
from .loo import INTEGRATED_MAX_DRAWS, INTEGRATION_CHECK_NODES, INTEGRATION_NODES, integrated_idata
from .refit import comparison_plan, refit_offsets
from .result import Check, CheckResult, skip
from .variants import ORDINAL_LEVELS
from .verdict import Verdict, aggregate, na_verdicts

CHECK_NAME = "model_comparison"


def _one_construct_findings(ctx: RobustnessContext, fit, spec1: Spec, survey1) -> dict[str, Verdict]:
    """Findings implied by a one-construct fit: the true-score and replicated statistics
    run through the *original* spec's deterministic method (items are the same); the
    latent-parameter findings have no counterpart."""
    from ..measurement import posterior_params

    spec = ctx.spec
    ids = tuple(str(f) for f in ctx.survey.items.index)
    X = item_matrix(ctx.survey, spec).to_numpy(dtype=float)
    Yrep = _pred.replicated_items(fit, survey1, spec=spec1, random_seed=ctx.seed)
    Ytrue = _pred.true_score_items(fit, spec1, firms=ids)
    groups, gnames = industry_codes(ctx.survey, spec)
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
        rows = finding_table(spec, ctx.prob, obs, rep, st_o, st_r, st_t, P, groups, gnames, fit)
    why = "a one-construct model has no latent correlation and no per-construct industry means"
    # the findings on latent parameters: the group differences (per-construct industry means)
    # and the positive correlations (latent correlation)
    latent = [f.key for f in spec.findings if f.kind in ("groups_differ", "positive_correlation")]
    return posterior_verdicts(rows, {k: why for k in latent})


def check_model_comparison(ctx: RobustnessContext) -> CheckResult:
    """PSIS-LOO of the fitted model against refits of alternative models."""
    from .. import compat

    name = CHECK_NAME
    why = ctx.refit_problem("model refits and LOO")
    if why:
        return skip(name, why, "posterior")
    idata = ctx.idata
    fit_spec = ctx.fit_spec
    desc = {
        "reference": ("the given fit: " + (f"{len(fit_spec.constructs)} correlated constructs" if len(fit_spec.constructs) > 1
                                           else "one construct") + (", industry level" if ctx.fit_group else ", no industry level")),
        "no_industry": "no industry level (latent means 0 for every firm)",
        "one_construct": "one construct for all items (sub-dimensions kept)",
        "all_ordinal": f"every item ordinal: percent and count items cut into {ORDINAL_LEVELS + 1} categories",
    }
    plan, skipped = comparison_plan(ctx)
    fits: dict[str, Any] = {"reference": idata}
    meta: dict[str, dict[str, Any]] = {"reference": {"refit": False, "seconds": np.nan}}
    offset = refit_offsets(plan)
    bar = ctx.bar(len(plan), "model-comparison refits")

    def refit(m, surv, sv, group, made=None) -> None:
        t0 = time.perf_counter()
        try:
            fits[m], seconds = made if made is not None else (ctx.refit(sv, surv, group=group, offset=offset[m]),
                                                              time.perf_counter() - t0)
            meta[m] = {"refit": True, "seconds": seconds, "survey": surv, "spec": sv}
        except Exception as exc:  # noqa: BLE001 - one failed refit must not sink the comparison
            skipped[m] = f"the refit failed: {type(exc).__name__}: {exc}"
        bar.update(1)

    try:
        # refits made ahead in a second process during the fit (smeintl run: .ahead), if any:
        # the ones it has not started are refitted here, from the end of the plan, while it
        # finishes the others
        ahead = ctx.ahead if ctx.ahead is not None and ctx.ahead.matches(ctx) else None
        taken: set[str] = set()
        if ahead is not None:
            for m, args in reversed(plan):
                if not ahead.take(m):
                    break
                refit(m, *args)
                taken.add(m)
        rest = [m for m, _ in plan if m not in taken]
        # (nothing left to wait for when this process took every refit)
        made = ahead.fits(ctx, rest) if ahead is not None and rest else {}
        for m, args in plan:
            if m in rest:
                refit(m, *args, made=made.get(m))
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
            loos[m] = compat.loo(f, var_name="responses")
            try:
                integ[m], qerr = integrated_idata(f, *fit_info[m], check=(m == "reference"))
                iloos[m] = compat.loo(integ[m], var_name="responses")
                if np.isfinite(qerr[0]):
                    quad_err = qerr
            except Exception as exc:  # noqa: BLE001 - report, keep the conditional LOO
                integ_notes.append(f"{m}: integrated log-likelihood not computed ({exc})")
        if len(loo_fits) >= 2:
            cmp = compat.compare(loo_fits, var_name="responses")
        if len(iloos) >= 2 and set(iloos) == set(loo_fits):
            icmp = compat.compare(integ, var_name="responses")
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
            row.update({f"{pre}elpd_loo": lo.elpd, f"{pre}se": lo.se, f"{pre}p_loo": lo.p_loo,
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

    variants: dict[str, dict[str, Verdict]] = {}
    for m in ctx.models:
        col = f"{name}: {m.replace('_', ' ')}"
        if m in skipped:
            variants[col] = na_verdicts(ctx.spec, skipped[m])
            continue
        f, surv, sv = fits[m], meta[m]["survey"], meta[m]["spec"]
        if m == "one_construct":
            variants[col] = _one_construct_findings(ctx, f, sv, surv)
        else:
            spec_eval = ctx.spec if m == "no_industry" else sv
            c = compare(f, surv, spec_eval, prob=ctx.prob, random_seed=ctx.seed)
            variants[col] = posterior_verdicts(c.findings)

    def loo_verdict(cm, label: str) -> tuple[bool | None, str]:
        if cm is None:
            return None, f"{label}: not computed (fewer than two comparable fits)."
        r = cm.loc["reference"]
        best = str(cm.index[0])
        ok = bool(best == "reference" or float(r["elpd_diff"]) <= 2.0 * float(r["dse"]))
        txt = (f"{label}: best {best}; " + ("the reference model is best." if best == "reference" else
               f"the reference model is behind by {float(r['elpd_diff']):.1f} (se of the difference "
               f"{float(r['dse']):.1f})."))
        return ok, txt

    p_cond, txt_cond = loo_verdict(cmp, "Conditional LOO")
    p_int, txt_int = loo_verdict(icmp, "Integrated LOO")
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
        + (f" The given fit uses the {ctx.fit_parameterization} parameterization: its stored log-likelihood is "
           "already integrated over the latent scores, so for it the two coincide."
           if ctx.fit_parameterization in INTEGRATED else "")
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
    return CheckResult(name, passed, table, "\n".join(lines), aggregate(ctx.spec, variants), variants,
                       reference="posterior")


CHECK = Check(CHECK_NAME, "PSIS-LOO (conditional and with the latent scores integrated out) of the fit against "
              "refits without the industry level and with one construct; the all-ordinal model on its findings",
              check_model_comparison, refits=True)
