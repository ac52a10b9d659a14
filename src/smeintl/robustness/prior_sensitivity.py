"""Check ``prior_sensitivity``: power-scaling of prior and likelihood (ArviZ ``psens``,
Pareto-smoothed importance weights, k-hat reported); the findings under the prior
power-scaled by 0.5 and 2 by importance resampling, and refits with every prior sd x2 and
/2 where the importance weights are unreliable."""

from __future__ import annotations

import json
import time
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from .. import compat
from ..predictive import compare, sample_statistics
from ..profiles import type_arrays
from .context import KHAT_MAX, PRIOR_REFITS, RobustnessContext
from .findings import industry_codes, posterior_verdicts
from .result import Check, CheckResult, skip
from .variants import spec_variant, survey_for
from .verdict import Verdict, aggregate, any_evaluated, flipped, na_verdicts

CHECK_NAME = "prior_sensitivity"
#: power-scaling: finite-difference step of ``psens`` and the importance-sampling variants
PSENS_DELTA = 0.01
POWER_ALPHAS: tuple[float, ...] = (0.5, 2.0)
#: refits scale every prior sd by these factors (wider, narrower)
PRIOR_SCALES: tuple[float, ...] = (2.0, 0.5)
#: power-scaling sensitivity above which a prior (likelihood) counts as influential
PSENS_THRESHOLD = 0.05


def _resample_idata(idata, log_weights: np.ndarray, seed: Sequence[int]):
    """Importance resampling (systematic) of a fit's draws by normalized log weights:
    one chain of S draws (with repeats) in the posterior, posterior predictive and
    log-likelihood groups; attrs kept."""
    S = log_weights.size
    w = np.exp(log_weights - log_weights.max())
    w /= w.sum()
    rng = np.random.default_rng(list(seed))
    u = (rng.random() + np.arange(S)) / S
    idx = np.minimum(np.searchsorted(np.cumsum(w), u), S - 1)
    groups = {}
    for gname in ("posterior", "posterior_predictive", "log_likelihood"):
        if not compat.has_group(idata, gname):
            continue
        ds = compat.group(idata, gname)
        st = ds.stack(__sample__=("chain", "draw")).isel(__sample__=idx)
        st = st.drop_vars(["chain", "draw", "__sample__"], errors="ignore").rename({"__sample__": "draw"})
        st = st.assign_coords(draw=np.arange(S)).expand_dims(chain=[0]).transpose("chain", "draw", ...)
        groups[gname] = st
    return compat.new_fit(groups, idata.attrs)


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

    from ..measurement import is_score_variable, no_traces

    names = [v.name for v in model.free_RVs if v.name != "group_z" and not is_score_variable(v.name)]
    with warnings.catch_warnings(), no_traces():
        warnings.simplefilter("ignore")
        try:
            return _log_prior_vectorized(compat.group(ctx.idata, "posterior"), model, names)
        except (NotImplementedError, TypeError, ValueError):
            pass
        lp = pm.compute_log_prior(compat.to_arviz(ctx.idata), model=model, var_names=names, extend_inferencedata=False,
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


def check_prior_sensitivity(ctx: RobustnessContext) -> CheckResult:
    """Power-scaling prior and likelihood sensitivity (psens, PSIS k-hat) and refits."""
    import xarray as xr

    name = CHECK_NAME
    why = ctx.refit_problem("prior-sensitivity refits")
    if why:
        return skip(name, why, "posterior")
    idata = ctx.idata
    fit_spec = ctx.fit_spec
    # the analyst's priors on the reported parameters: a model without standardized scores
    # (whose free loadings would add the log-Jacobian of their change of scale)
    model = ctx.refit_model(fit_spec, group=ctx.fit_group, standardized_scores=False).build(ctx.survey)
    lp = _log_prior(ctx, model)
    post = compat.group(idata, "posterior")
    ll = compat.group(idata, "log_likelihood")["responses"].sum("firm")

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
        groups, gnames = industry_codes(ctx.survey, ctx.spec)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            st = sample_statistics(comp.true_indices, type_arrays(comp.true_indices, ctx.spec), ctx.spec)
        # the flag shares, and the type counts of the no_type findings
        counts = [f"count_{f.params['type']}" for f in ctx.spec.findings_of("no_type")]
        for key in dict.fromkeys(
                [k for k in st if k.startswith("share_") and not any(k == f"share_{t}" for t in comp.type_names)]
                + counts):
            if key in st:
                qs[f"{key} (true score)"] = xr.DataArray(np.asarray(st[key], dtype=float).reshape(shape),
                                                         dims=("chain", "draw"), coords={"chain": post.chain, "draw": post.draw})
    qds = xr.Dataset({k: v.drop_vars([c for c in v.coords if c not in ("chain", "draw")]) for k, v in qs.items()})
    data = compat.new_fit({"posterior": qds, "log_prior": xr.Dataset({"prior": lp}),
                           "log_likelihood": xr.Dataset({"responses": ll})})
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        sp = compat.psens(data, component="prior", delta=PSENS_DELTA)
        sl = compat.psens(data, component="likelihood", delta=PSENS_DELTA)
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
            return compat.psis_log_weights((a - 1.0) * comp_draws)

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

    variants: dict[str, dict[str, Verdict]] = {}
    for a in POWER_ALPHAS:
        col = f"{name}: prior^{a:g} (importance)"
        if is_k[a] > KHAT_MAX:
            variants[col] = na_verdicts(ctx.spec, f"importance weights unreliable (k-hat {is_k[a]:.2f} > {KHAT_MAX}); "
                                                  "see the refits")
            continue
        rs = _resample_idata(idata, is_lw[a], [int(ctx.seed), int(round(100 * a))])
        c = compare(rs, ctx.survey, ctx.spec, prob=ctx.prob, random_seed=ctx.seed)
        variants[col] = posterior_verdicts(c.findings)
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
                surv = survey_for(sv, ctx.survey)
                t0 = time.perf_counter()
                col = f"{name}: priors sd x{f:g} (refit)" if f >= 1 else f"{name}: priors sd /{1 / f:g} (refit)"
                try:
                    fit = ctx.refit(sv, surv, group=ctx.fit_group, offset=101 + j)
                except Exception as exc:  # noqa: BLE001 - report, keep the other refit
                    variants[col] = na_verdicts(ctx.spec, f"the refit failed: {type(exc).__name__}: {exc}")
                    bar.update(1)
                    continue
                c = compare(fit, surv, ctx.spec, prob=ctx.prob, random_seed=ctx.seed)
                variants[col] = posterior_verdicts(c.findings)
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
            variants[col] = na_verdicts(ctx.spec, f"not refit: {why}")
    table = pd.DataFrame(rows + refit_rows)
    ref = ctx.baseline_post()
    flips = flipped(variants, ref)
    evaluated = any_evaluated(variants)
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
    return CheckResult(name, passed, table, "\n".join(lines), aggregate(ctx.spec, variants), variants,
                       reference="posterior")


CHECK = Check(CHECK_NAME, "power-scaling sensitivity of prior and likelihood (psens, k-hat); findings under the "
              "power-scaled prior; refits with every prior sd x2 and /2", check_prior_sensitivity, refits=True)
