"""One replication (runs in a worker): seeds by index, the true parameters, the
simulated survey, one fit, and its rows (recovery, comparison, SBC ranks,
diagnostics).  :func:`run_replication` is what the runner submits to Dask: it must
stay importable at this module path (Dask pickles functions by reference)."""

from __future__ import annotations

import itertools
import os
import time
import traceback
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..spec import Spec
from .config import PROB, RELIABILITY_BINS, Study, Task
from .parameters import _dim_labels, _param_dims, _parse_sbc_parameter


def replication_seeds(study_seed: int, condition: int, replication: int, design: str = "fixed") -> dict[str, int]:
    """Seeds of one replication from ``SeedSequence([seed, cond, rep])`` (``[..., 1]``
    for the SBC design): ``simulate``, ``fit`` and ``prior`` (SBC parameter draw)."""
    entropy = [int(study_seed), int(condition), int(replication)] + ([1] if design == "sbc" else [])
    s = np.random.SeedSequence(entropy).generate_state(3, dtype=np.uint32)
    return {"simulate": int(s[0]), "fit": int(s[1]), "prior": int(s[2])}


def condition_seed(study_seed: int, condition: int) -> int:
    """Seed of a condition's true parameters (``SeedSequence([seed, cond])``)."""
    return int(np.random.SeedSequence([int(study_seed), int(condition)]).generate_state(1, dtype=np.uint32)[0])


def shift_params(spec: Spec, params: Mapping[str, np.ndarray], shift: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Parameters whose data are those of latent scores shifted by ``shift[construct]``.

    With the latent mean identified at 0, a latent mean shift delta of construct c is
    the same model as moving every item's thresholds: the linear predictor
    ``s_i lambda_i (eta + delta)`` equals ``s_i lambda_i eta + s_i lambda_i delta``, so
    intercepts gain and ordinal cutpoints lose ``s_i lambda_i delta_c(i)``.  The truth
    stays in the fitted model's parameterization (latent mean 0, variance 1).
    """
    from ..measurement import ItemLayout

    lay = ItemLayout.from_spec(spec)
    delta = np.array([float(shift.get(c, 0.0)) for c in lay.constructs])
    p = {k: np.array(v, dtype=float, copy=True) for k, v in params.items()}
    if not np.any(delta):
        return p
    d = lay.sign * np.asarray(p["loading"], dtype=float) * delta[lay.construct]  # (I,)
    for block in lay.blocks():
        p.update(block.family.shift_location(p, d[block.idx], block))
    return p


def true_types(spec: Spec, params: Mapping[str, np.ndarray], eta: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """The true type of every firm: the deterministic method on its true scores.

    True scores are the expected items on the raw scale given the true latent scores
    ``eta`` ``(..., F, C)`` and the true item parameters
    (:func:`~smeintl.measurement.expected_raw`), run through
    :func:`~smeintl.indices.index_arrays` and :func:`~smeintl.profiles.type_arrays` --
    the same path as :func:`smeintl.predictive.true_score_items` takes for a posterior
    draw.  Returns ``(codes (..., F), type_names)``.
    """
    from ..profiles import type_arrays

    ta = type_arrays(true_indices(spec, params, eta), spec)
    return np.asarray(ta["type"]), tuple(ta["type_names"])


def true_indices(spec: Spec, params: Mapping[str, np.ndarray], eta: np.ndarray, standardization=None) -> np.ndarray:
    """The deterministic indices ``(..., F, C)`` of the true scores: the expected items on
    the raw scale given the latent scores ``eta`` ``(..., F, C)`` and the item parameters
    (:func:`~smeintl.measurement.expected_raw`, on ``standardization``'s scale: by
    default the spec's own), run through
    :func:`~smeintl.indices.index_arrays`."""
    from ..indices import index_arrays
    from ..measurement import ItemLayout, expected_raw, standardization_of

    lay = ItemLayout.from_spec(spec)
    std = standardization if standardization is not None else standardization_of(lay)
    return index_arrays(expected_raw(params, eta, lay, standardization=std), spec)["indices"]


def _row(task: Task, kind: str, family: str, quantity: str, *, true=np.nan, estimate=np.nan, lo=np.nan,
         hi=np.nan, n=1, error=None, sq_error=None, covered=None, width=None, status="ok", message="") -> dict:
    true, estimate, lo, hi = (float(x) for x in (true, estimate, lo, hi))
    if error is None:
        error = estimate - true
    if sq_error is None:
        sq_error = error**2 if np.isfinite(error) else np.nan
    if width is None:
        width = hi - lo
    if covered is None:
        covered = float(lo <= true <= hi) if np.isfinite(lo) and np.isfinite(hi) and np.isfinite(true) else np.nan
    return {
        "design": task.design,
        "condition": task.condition,
        "replication": task.replication,
        "status": status,
        "kind": kind,
        "family": family,
        "quantity": quantity,
        "true": true,
        "estimate": estimate,
        "error": float(error),
        "sq_error": float(sq_error),
        "lo": lo,
        "hi": hi,
        "width": float(width),
        "covered": float(covered),
        "n": int(n),
        "message": message,
    }


def _quiet() -> None:
    import logging

    import pymc  # noqa: F401 - importing pymc sets its logger's level: set ours after

    for name in ("pymc", "pytensor", "pytensor.tensor.blas", "arviz", "numba", "nutpie"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


def _fit(study: Study, survey, n_groups: int, seed: int):
    from ..measurement import MeasurementModel

    f = study.fit
    model = MeasurementModel(study.instrument, group=bool(f["group"]) and n_groups > 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(
            survey,
            draws=f["draws"],
            tune=f["tune"],
            chains=f["chains"],
            random_seed=seed,
            sampler=f["sampler"],
            target_accept=f["target_accept"],
            cores=1,
            progressbar=False,
            log_likelihood=False,
            posterior_predictive=False,
        )


def _diagnostic_rows(task: Task, idata) -> list[dict]:
    from ..measurement import fit_diagnostics

    d = fit_diagnostics(idata)
    vals = {
        "max_rhat": d.max_rhat,
        "min_ess_bulk": d.min_ess_bulk,
        "min_ess_tail": d.min_ess_tail,
        "divergences": d.divergences,
        "failed": float(d.failed),
    }
    if d.scores:  # the per-firm scores' R-hat against chance (SCORE_RULE)
        vals |= {"scores_max_rhat": d.scores["max_rhat"], "scores_rhat_over": d.scores["n_over"],
                 "scores_rhat_bound": d.scores["bound_over"]}
    return [_row(task, "diagnostics", "diagnostics", k, estimate=v, error=np.nan) for k, v in vals.items()]


def _posterior_array(idata, name: str) -> np.ndarray:
    a = idata.posterior[name].values
    return a.reshape((-1,) + a.shape[2:])


def _natural_index(idata, name: str, spec: Spec, n_firms: int, n_groups: int):
    """For a posterior variable, per dim: (labels in posterior order, natural positions)."""
    da = idata.posterior[name]
    out = []
    for d in da.dims[2:]:
        labels = [str(x) for x in da.coords[d].values]
        try:
            nat = _dim_labels(spec, d, n_firms, n_groups)
        except KeyError:  # a dimension within an item (cutpoints): positions, in order
            out.append((d, labels, list(range(len(labels)))))
            continue
        out.append((d, labels, [nat.index(lb) for lb in labels]))
    return out


def _recovery_rows(task: Task, study: Study, idata, params: Mapping[str, np.ndarray], eta: np.ndarray,
                   n_firms: int, n_groups: int) -> list[dict]:
    spec = study.instrument
    qlo, qhi = (1 - PROB) / 2, (1 + PROB) / 2
    rows: list[dict] = []

    def elementwise(name: str, family: str, true: np.ndarray, keep=None):
        post = _posterior_array(idata, name)
        d_info = _natural_index(idata, name, spec, n_firms, n_groups)
        for pos in itertools.product(*(range(len(lbl)) for _d, lbl, _n in d_info)):
            labels = [d_info[k][1][p] for k, p in enumerate(pos)]
            nat = tuple(d_info[k][2][p] for k, p in enumerate(pos))
            if keep is not None and not keep(nat):
                continue
            v = post[(slice(None),) + tuple(pos)]
            lo, hi = np.quantile(v, [qlo, qhi])
            rows.append(_row(task, "recovery", family, f"{name}[{','.join(labels)}]", true=true[nat],
                             estimate=v.mean(), lo=lo, hi=hi))

    elementwise("loading", "loading", np.asarray(params["loading"], dtype=float))
    if "corr" in idata.posterior and "corr" in params:
        elementwise("corr", "corr", np.asarray(params["corr"], dtype=float), keep=lambda nat: nat[0] < nat[1])
    if "group_mean" in idata.posterior and "group_mean" in params:
        elementwise("group_mean", "group_mean", np.asarray(params["group_mean"], dtype=float))
    # every other item parameter of the families (thresholds: the ordinal and percent cutpoints)
    for name in sorted(set(params) - {"loading", "corr", "group_mean", "group_sd", "eta"}):
        if name in idata.posterior:
            elementwise(name, "thresholds" if "cutpoints" in name else name, np.asarray(params[name], dtype=float))
    # latent scores: one row per construct, aggregated over the firms
    post = _posterior_array(idata, "eta")  # (S, F, C) in posterior firm order
    d_info = _natural_index(idata, "eta", spec, n_firms, n_groups)
    firm_nat = np.asarray(d_info[0][2])
    cons_nat = np.asarray(d_info[1][2])
    T = np.asarray(eta, dtype=float)[np.ix_(firm_nat, cons_nat)]  # (F, C) aligned with post
    m = post.mean(0)
    lo, hi = np.quantile(post, [qlo, qhi], axis=0)
    for j, cname in enumerate(d_info[1][1]):
        e = m[:, j] - T[:, j]
        cov = (lo[:, j] <= T[:, j]) & (T[:, j] <= hi[:, j])
        rows.append(_row(task, "recovery", "eta", f"eta[{cname}]", true=T[:, j].mean(), estimate=m[:, j].mean(),
                         lo=lo[:, j].mean(), hi=hi[:, j].mean(), n=T.shape[0], error=e.mean(),
                         sq_error=(e**2).mean(), covered=cov.mean(), width=(hi[:, j] - lo[:, j]).mean()))
    return rows


def _brier(P: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """Mean multi-class Brier score over the rows of ``P`` (F, K) without NaN."""
    ok = np.isfinite(P).all(axis=1) & (truth >= 0)
    if not ok.any():
        return float("nan"), 0
    onehot = np.eye(P.shape[1])[truth[ok]]
    return float(((P[ok] - onehot) ** 2).sum(axis=1).mean()), int(ok.sum())


def _comparison_rows(task: Task, study: Study, idata, survey, params, eta, seed: int) -> list[dict]:
    from ..predictive import cohens_kappa, compare

    spec = study.instrument
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = compare(idata, survey, spec, prob=PROB, max_draws=study.fit["compare_draws"] or None,
                       random_seed=seed)
    names = tuple(comp.type_names)
    K = len(names)
    truth, tnames = true_types(spec, params, eta)
    if tuple(tnames) != names:  # pragma: no cover - same spec on both sides
        raise RuntimeError(f"type names differ: {tnames} vs {names}")
    # survey firm order == simulate order; map by id to be safe
    pos = pd.Index([f"S{f + 1:05d}" for f in range(len(truth))]).get_indexer(list(comp.firm_ids))
    truth = truth[pos]
    F = truth.size
    ft = comp.firm_types

    def codes(col) -> np.ndarray:
        lookup = {n: k for k, n in enumerate(names)}
        return np.array([lookup.get(str(v), -1) if not pd.isna(v) else -1 for v in ft[col]], dtype=int)

    det = codes("deterministic_type")
    modal = codes("modal_type")
    modal_rep = codes("modal_type_rep")
    rows: list[dict] = []
    for q, c in (("deterministic", det), ("modal_true_score", modal), ("modal_replicated", modal_rep)):
        rows.append(_row(task, "comparison", "type_recovery", q,  estimate=float((c == truth).mean()),
                         n=F, error=np.nan))
        rows.append(_row(task, "comparison", "kappa", q, 
                         estimate=float(cohens_kappa(c, truth, K)), n=F, error=np.nan))
    rows.append(_row(task, "comparison", "typed", "deterministic",  estimate=float((det >= 0).mean()),
                     n=F, error=np.nan))
    P_true = ft[[f"p_{t}" for t in names]].to_numpy(dtype=float)
    P_rep = ft[[f"p_{t}_rep" for t in names]].to_numpy(dtype=float)
    P_det = np.where((det >= 0)[:, None], np.eye(K)[np.maximum(det, 0)], np.nan)
    for q, P in (("true_score", P_true), ("replicated", P_rep), ("deterministic", P_det)):
        b, n = _brier(P, truth)
        rows.append(_row(task, "comparison", "brier", q, estimate=b, n=n, error=np.nan))
    # type shares: truth vs posterior (true-score draws) and deterministic
    S = comp.true_types  # (S, F)
    typed_det = max(int((det >= 0).sum()), 1)
    for k, t in enumerate(names):
        share_true = float((truth == k).mean())
        draws = (S == k).mean(axis=1)
        lo, hi = np.quantile(draws, [(1 - PROB) / 2, (1 + PROB) / 2])
        rows.append(_row(task, "comparison", "type_share_posterior", f"share[{t}]", true=share_true,
                         estimate=draws.mean(), lo=lo, hi=hi, n=F))
        rows.append(_row(task, "comparison", "type_share_deterministic", f"share[{t}]", true=share_true,
                         estimate=float((det == k).sum() / typed_det), n=int((det >= 0).sum())))
    # reliability of the posterior type probabilities (one-vs-rest over every type)
    for fam, P in (("reliability_true_score", P_true), ("reliability_replicated", P_rep)):
        ok = np.isfinite(P).all(axis=1)
        p = P[ok].ravel()
        y = (np.arange(K)[None, :] == truth[ok][:, None]).ravel().astype(float)
        b = np.minimum((p * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
        for j in range(RELIABILITY_BINS):
            m = b == j
            nn = int(m.sum())
            rows.append(_row(task, "comparison", fam, f"bin{j:02d}", true=y[m].mean() if nn else np.nan,
                             estimate=p[m].mean() if nn else np.nan, n=nn, error=np.nan, covered=np.nan))
    return rows


def _sbc_rows(task: Task, study: Study, idata, params, eta, n_firms: int, n_groups: int) -> list[dict]:
    thin = int(study.sbc["thin"])
    spec = study.instrument
    rows = []
    for text in study.sbc["parameters"]:
        name, idx = _parse_sbc_parameter(text)
        dims = _param_dims(spec, name)
        true_arr = np.asarray(eta if name == "eta" else params[name], dtype=float)
        da = idata.posterior[name]
        sel = {}
        nat = []
        labels = []
        for d, i in zip(dims, idx):
            natural = _dim_labels(spec, d, n_firms, n_groups)
            label = natural[i] if isinstance(i, int) else i
            sel[d] = label
            nat.append(natural.index(label))
            labels.append(label)
        draws = np.asarray(da.sel(sel).values, dtype=float)  # (chain, draw)
        draws = draws.reshape(-1)[::thin]  # chain-major, then thinned
        true = float(true_arr[tuple(nat)])
        rank = int((draws < true).sum())
        q = f"{name}[{','.join(map(str, labels))}]"
        rows.append(_row(task, "sbc", name, q, true=true, estimate=float(rank), lo=0.0, hi=float(draws.size),
                         n=int(draws.size), error=np.nan, covered=np.nan, width=np.nan))
    return rows


def _sbc_quantity_rows(task: Task, study: Study, idata, truth_fit, truth, eta, survey, n_firms: int,
                       n_groups: int) -> list[dict]:
    """SBC ranks of data-dependent test quantities (Modrak et al. 2023): functions of the
    parameters *and* the simulated survey, ranked like the parameters (the thinned
    posterior draws below the value at the truth).

    ``loglik``: the log-likelihood of the survey's answers given the latent scores and the
    item parameters (each family's kernel, :func:`~smeintl.measurement.cell_loglik`), summed
    over firms; ``index_mean[<construct>]``: the mean over firms of the construct's
    deterministic index of the true scores (the expected answers given the latent scores,
    as :func:`true_types` and :func:`smeintl.predictive.true_score_items` compute them)."""
    from ..measurement import ItemLayout, cell_loglik, fit_standardization, posterior_params, standardization_of

    spec = study.instrument
    lay = ItemLayout.from_spec(spec)
    wanted = study.sbc.get("quantities", ())
    P = posterior_params(idata)
    keep = np.arange(0, P["loading"].shape[0], int(study.sbc["thin"]))
    P = {k: v[keep] for k, v in P.items()}
    L = keep.size
    std_fit = fit_standardization(idata) or standardization_of(lay)
    d_info = _natural_index(idata, "eta", spec, n_firms, n_groups)
    firm_nat, cons_nat = np.asarray(d_info[0][2]), np.asarray(d_info[1][2])
    if not np.array_equal(cons_nat, np.arange(len(lay.constructs))):  # pragma: no cover - spec order
        raise RuntimeError("the fit's constructs are not in the spec's order")
    eta = np.asarray(eta, dtype=float)
    rows: list[dict] = []

    def rank_row(family: str, quantity: str, draws: np.ndarray, true: float) -> None:
        rows.append(_row(task, "sbc", family, quantity, true=true, estimate=float(int((draws < true).sum())),
                         lo=0.0, hi=float(L), n=L, error=np.nan, covered=np.nan, width=np.nan))

    if "loglik" in wanted:
        X = survey.items[list(spec.item_names)].to_numpy(dtype=float)[firm_nat]  # the fit's firm order
        draws = cell_loglik(P, np.arange(L), np.transpose(P["eta"], (1, 0, 2)), X, lay, std_fit).sum(axis=0)
        Pt = {k: np.asarray(v, dtype=float)[None] for k, v in truth_fit.items()}
        true = float(cell_loglik(Pt, 0, eta[firm_nat][:, None, :], X, lay, std_fit).sum())
        rank_row("loglik", "loglik", draws, true)
    if "index_mean" in wanted:
        post = true_indices(spec, P, P["eta"], std_fit).mean(axis=-2)  # (L, C)
        true = true_indices(spec, truth, eta).mean(axis=-2)  # (C,)
        for c, name in enumerate(lay.constructs):
            rank_row("index_mean", f"index_mean[{name}]", post[:, c], float(true[c]))
    return rows


def _replication_rows(study: Study, task: Task) -> list[dict]:
    """The rows of one replication (raises on failure)."""
    from ..simulate import prior_params, simulate_survey, truth_on_fit_scale, typical_params

    _quiet()
    cond = study.condition(task.condition)
    spec = study.instrument
    seeds = replication_seeds(study.seed, task.condition, task.replication, task.design)
    n_firms, n_groups, missing = int(cond["n_firms"]), int(cond["n_groups"]), float(cond["missing"])
    use_groups = spec.group_column is not None and n_groups > 1
    if task.design == "fixed":
        p = typical_params(
            spec,
            n_groups=n_groups if use_groups else 0,
            loading=cond["loading"],
            correlation=cond.get("correlation", 0.0),
            group_sd=cond.get("group_sd", 0.0),
            random_seed=condition_seed(study.seed, task.condition),
        )
        p = shift_params(spec, p, {c: cond.get(f"shift_{c}", 0.0) for c in spec.construct_names})
    else:
        p = prior_params(spec, n_groups=n_groups if use_groups else 1, random_seed=seeds["prior"])
        if not (use_groups and study.fit["group"]):
            p.pop("group_mean", None)
            p.pop("group_sd", None)
    sim = simulate_survey(spec, n_firms, p, n_groups=n_groups, missing=missing, random_seed=seeds["simulate"],
                          outcome=False)
    idata = _fit(study, sim.survey, n_groups, seeds["fit"])
    rows = _diagnostic_rows(task, idata)
    on_fit_scale = truth_on_fit_scale(spec, sim.params, idata)
    if task.design == "fixed":
        if "recovery" in study.kinds:
            rows += _recovery_rows(task, study, idata, on_fit_scale, sim.eta, n_firms, n_groups)
        if "comparison" in study.kinds:
            rows += _comparison_rows(task, study, idata, sim.survey, sim.params, sim.eta, seeds["fit"])
    else:
        rows += _sbc_rows(task, study, idata, on_fit_scale, sim.eta, n_firms, n_groups)
        rows += _sbc_quantity_rows(task, study, idata, on_fit_scale, sim.params, sim.eta, sim.survey, n_firms,
                                   n_groups)
    return rows


def run_replication(study: Study, task: Task) -> dict[str, Any]:
    """Run one replication and return ``{"task", "rows", "meta"}``, or ``{"task",
    "error", "traceback", "meta"}`` when it failed.  Writes nothing (the client does)."""
    import platform

    t0 = time.perf_counter()
    meta = {"host": platform.node(), "pid": os.getpid()}
    try:
        rows = _replication_rows(study, task)
    except Exception as exc:  # noqa: BLE001 - a failed replication is recorded, not raised
        meta["seconds"] = time.perf_counter() - t0
        return {"task": task, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "meta": meta}
    meta["seconds"] = time.perf_counter() - t0
    return {"task": task, "rows": rows, "meta": meta}
