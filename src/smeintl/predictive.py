"""Ideal-profile deviation as a posterior predictive comparison with the deterministic method.

The deterministic (original) method gives one DOI, one independence index, one distance
per ideal type and one type per firm, with no uncertainty.  This module re-does it on
the output of the Bayesian measurement model in two ways, always through the *same*
deterministic functions (:func:`smeintl.indices.index_arrays` and
:func:`smeintl.profiles.type_arrays`, which broadcast over a leading draws axis), never
through a second implementation:

1. **Replicated data** (:func:`replicated_items`): for each posterior draw s, the
   posterior predictive survey y_rep(s), masked to the observed survey's missingness
   pattern (a re-measurement of the same firms with the same non-response), run through
   the deterministic pipeline -> DOI(s), independence(s), distances(s), type(s).  This
   is the distribution the original method's outputs would have under re-measurement.
2. **Latent true scores** (:func:`true_score_items`): for each draw, the expected scaled
   value of every item given the firm's latent scores and the item parameters
   (:func:`smeintl.measurement.expected_raw`: before reverse coding, put back on the
   raw answer scale as ``min + v * (max - min)``; counts ``v * cap``) and run
   through the same pipeline, so reverse coding and aggregation are the deterministic
   code's own.  Every item is present.  This is the measurement-error-free version of
   the original method.

:func:`compare` puts both beside the deterministic result: per firm (type
probabilities, probability that the deterministic type is wrong, intervals for the
indices and distances), per sample (statistics with posterior predictive p-values),
the headline findings the instrument declares (``spec.findings``, evaluated by
:func:`smeintl.findings.finding_table`) with a posterior probability and a plain-words
verdict, and the agreement of the deterministic with the posterior typing
(Cohen's kappa).  The exact operational definitions are in ``docs/findings.md`` and in
the docstrings below.

Intervals are equal-tailed (quantiles ``(1 - prob) / 2`` and ``(1 + prob) / 2`` over the
draws), ``prob = 0.9`` by default.  Nothing here is random except the fallback that
draws y_rep when a fit carries no posterior predictive group (seeded by
``random_seed``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import compat
from .findings import anova_pvalue, finding_table, pearson_greater_pvalue, verdict
from .findings import quantiles as _quantiles
from .indices import index_arrays, item_matrix
from .measurement import (
    ItemLayout,
    draw_items,
    expected_raw,
    fit_standardization,
    posterior_params,
    standardization_of,
)
from .profiles import flag_name, type_arrays
from .spec import Finding, Spec, parse_spec

__all__ = [
    "Finding",
    "OUTPUT_FILES",
    "Comparison",
    "compare",
    "write_comparison",
    "replicated_items",
    "true_score_items",
    "select_draws",
    "sample_statistics",
    "finding_table",
    "cohens_kappa",
    "anova_pvalue",
    "pearson_greater_pvalue",
    "verdict",
]

#: files written by :func:`write_comparison` (the caller checks them for overwrites)
OUTPUT_FILES: tuple[str, ...] = (
    "firm_types.csv",
    "firm_intervals.csv",
    "sample_stats.csv",
    "findings.csv",
    "agreement.json",
)


# ---------------------------------------------------------------------------
# draws, replicated data and true scores
# ---------------------------------------------------------------------------
def _n_samples(idata) -> int:
    post = compat.group(idata, "posterior")
    return int(post.sizes["chain"] * post.sizes["draw"])


def select_draws(n_total: int, max_draws: int | None) -> np.ndarray:
    """Indices of the draws to use, in the chain-major stacked order of
    :func:`smeintl.measurement.posterior_params`: all of them, or ``max_draws`` evenly
    spaced ones (``round(linspace(0, n_total - 1, max_draws))``; deterministic, every
    chain represented)."""
    if max_draws is None or max_draws >= n_total:
        return np.arange(n_total)
    if max_draws < 1:
        raise ValueError(f"max_draws must be at least 1, got {max_draws}")
    return np.unique(np.round(np.linspace(0, n_total - 1, int(max_draws))).astype(int))


def _fit_spec(idata) -> Spec | None:
    text = getattr(idata, "attrs", {}).get("spec_text")
    return parse_spec(text, source="<fit spec>") if text else None


def _model_signature(spec: Spec) -> list[tuple]:
    return [(i.name, i.construct, i.scale, i.min, i.max, i.reverse) for i in spec.items]


def _check_spec(idata, spec: Spec) -> None:
    """The spec's items must be the fit's (same names, constructs, scales, ranges and
    reverse flags); profiles, thresholds and weights may differ (they are not part of
    the measurement model)."""
    fs = _fit_spec(idata)
    if fs is not None:
        if _model_signature(fs) != _model_signature(spec):
            raise ValueError(
                "the spec's items differ from those the fit was made with (names, constructs, scales, "
                "ranges or reverse flags); refit the measurement model with this spec"
            )
        if fs.construct_names != spec.construct_names:
            raise ValueError(
                f"the spec's constructs {list(spec.construct_names)} differ from the fit's "
                f"{list(fs.construct_names)}; refit the measurement model with this spec"
            )
    elif "item" in idata.posterior.coords:
        have = [str(v) for v in idata.posterior.coords["item"].values]
        if have != list(spec.item_names):
            raise ValueError(f"the fit's items {have} are not the spec's {list(spec.item_names)}")


def _firm_indexer(coord_values: Sequence[Any], firm_ids: Sequence[Any]) -> np.ndarray:
    have = pd.Index([str(v) for v in coord_values])
    want = pd.Index([str(v) for v in firm_ids])
    pos = have.get_indexer(want)
    if (pos < 0).any():
        missing = list(want[pos < 0][:5])
        raise ValueError(f"the fit has no firm(s) {missing}: it was made on other data")
    return pos


def replicated_items(
    idata,
    survey,
    *,
    draws: np.ndarray | None = None,
    random_seed: int = 0,
    spec: Spec | None = None,
) -> np.ndarray:
    """Posterior predictive surveys on the raw answer scale, ``(S, F, I)`` float.

    Firms in the survey's order, items in the spec's order, one row per posterior draw
    (chain-major; ``draws`` selects some, see :func:`select_draws`).  Cells missing in
    the survey are set to NaN: the replicate is a re-measurement of the same firms with
    the same non-response, so the deterministic method sees the same missingness
    pattern.  Uses the fit's ``posterior_predictive`` group; a fit without one gets
    y_rep drawn here from the generative model (:func:`~smeintl.measurement.draw_items`,
    seeded by ``random_seed``).
    """
    spec = spec if spec is not None else survey.spec
    if "comparison" in spec.skipped_steps():
        from .errors import UserError

        raise UserError(f"{spec.source}: no comparison to run: {spec.skipped_steps()['comparison']}")
    names = list(spec.item_names)
    X = item_matrix(survey, spec).to_numpy(dtype=float)
    sel = np.arange(_n_samples(idata)) if draws is None else np.asarray(draws, dtype=int)
    pp = compat.group(idata, "posterior_predictive") if compat.has_group(idata, "posterior_predictive") else None
    if pp is not None and all(n in pp.data_vars for n in names):
        pos = _firm_indexer(pp.coords["firm"].values, survey.items.index)
        cols = []
        for n in names:
            a = np.asarray(pp[n].values, dtype=float)
            cols.append(a.reshape((-1,) + a.shape[2:])[sel][:, pos])
        Y = np.stack(cols, axis=-1)
    else:
        P = posterior_params(idata)
        P = {k: v[sel] for k, v in P.items()}
        pos = _firm_indexer(idata.posterior["eta"].coords["firm"].values, survey.items.index)
        lay = ItemLayout.from_spec(spec)
        std = fit_standardization(idata) or standardization_of(lay)
        rng = np.random.default_rng([int(random_seed), 5])
        Y = draw_items(P, P["eta"][:, pos], lay, rng, standardization=std)
    return np.where(np.isnan(X)[None], np.nan, Y)


def true_score_items(
    idata,
    spec: Spec,
    *,
    draws: np.ndarray | None = None,
    firms: Sequence[Any] | None = None,
) -> np.ndarray:
    """Latent true scores on the raw answer scale, ``(S, F, I)`` float, no NaN.

    For each draw, the expected value of every item given the firm's latent scores
    ``eta`` and the item parameters, on the raw answer scale
    (:func:`~smeintl.measurement.expected_raw`).  Firms in the fit's order, or in the
    order of ``firms`` (ids); draws as in :func:`replicated_items`.
    """
    _check_spec(idata, spec)
    lay = ItemLayout.from_spec(spec)
    sel = np.arange(_n_samples(idata)) if draws is None else np.asarray(draws, dtype=int)
    P = {k: v[sel] for k, v in posterior_params(idata).items()}
    eta = P["eta"]
    if firms is not None:
        eta = eta[:, _firm_indexer(idata.posterior["eta"].coords["firm"].values, firms)]
    std = fit_standardization(idata) or standardization_of(lay)
    return expected_raw(P, eta, lay, standardization=std)


# ---------------------------------------------------------------------------
# vectorized statistics (leading axes = draws)
# ---------------------------------------------------------------------------
def _det(X: np.ndarray, spec: Spec) -> tuple[np.ndarray, dict[str, Any]]:
    """The deterministic pipeline on raw items ``(..., F, I)``: indices and type arrays."""
    ind = index_arrays(X, spec)["indices"]
    return ind, type_arrays(ind, spec)


def _group_means(v: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of ``v`` ``(..., F)`` over the present firms of each group -> ``(..., G)``."""
    ok = np.isfinite(v)
    out = np.empty(v.shape[:-1] + (n_groups,))
    for g in range(n_groups):
        m = ok & (groups == g)
        n = m.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[..., g] = np.where(n > 0, np.where(m, v, 0.0).sum(axis=-1) / n, np.nan)
    return out


def sample_statistics(
    indices: np.ndarray,
    ta: Mapping[str, Any],
    spec: Spec,
    groups: np.ndarray | None = None,
    group_names: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Per-sample statistics of the deterministic method, over leading axes.

    ``indices`` ``(..., F, C)`` and ``ta`` (:func:`~smeintl.profiles.type_arrays` of
    them); ``groups`` ``(F,)`` integer industry codes (positions in ``group_names``).
    Returns arrays ``(...)``:

    - ``share_<flag>`` per construct (the construct's flag in the spec, e.g.
      ``share_internationalizing``): firms with ``index >= threshold`` over firms with
      the index;
    - ``count_<type>`` and ``share_<type>`` per type name (shares over the typed firms);
    - ``mean_<construct>`` over the firms with the index, and ``mean_<construct>[<g>]``
      per industry;
    - ``mean_deviation``: mean over the typed firms of the distance to the nearest ideal
      type (the firm's deviation from its own type); ``mean_dist_<type>``: mean distance
      to each type over the firms with distances.
    """
    out: dict[str, np.ndarray] = {}
    A = np.asarray(indices, dtype=float)
    for j, c in enumerate(spec.construct_names):
        fn = flag_name(c, spec)
        nv = ta["flag_valid"][..., j].sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"share_{fn}"] = np.where(nv > 0, ta["flags"][..., j].sum(axis=-1) / np.maximum(nv, 1), np.nan)
    codes = ta["type"]
    typed = (codes >= 0).sum(axis=-1)
    for k, t in enumerate(ta["type_names"]):
        cnt = (codes == k).sum(axis=-1)
        out[f"count_{t}"] = cnt.astype(float)
        out[f"share_{t}"] = np.where(typed > 0, cnt / np.maximum(typed, 1), np.nan)
    for j, c in enumerate(spec.construct_names):
        v = A[..., j]
        out[f"mean_{c}"] = _group_means(v, np.zeros(v.shape[-1], dtype=int), 1)[..., 0]
        if groups is not None and len(group_names):
            gm = _group_means(v, np.asarray(groups), len(group_names))
            for g, gn in enumerate(group_names):
                out[f"mean_{c}[{gn}]"] = gm[..., g]
    D = np.asarray(ta["distance"], dtype=float)
    near = np.where(np.isnan(D).any(axis=-1), np.nan, np.min(np.where(np.isnan(D), np.inf, D), axis=-1))
    out["mean_deviation"] = _group_means(near, np.zeros(near.shape[-1], dtype=int), 1)[..., 0]
    for k, t in enumerate(spec.profiles.type_names):
        out[f"mean_dist_{t}"] = _group_means(D[..., k], np.zeros(D.shape[-2], dtype=int), 1)[..., 0]
    return out


def cohens_kappa(a: np.ndarray, b: np.ndarray, n_categories: int) -> np.ndarray:
    """Cohen's kappa between code arrays ``a`` and ``b`` ``(..., F)`` (broadcast), over
    the firms where both are typed (codes >= 0): ``(p_o - p_e) / (1 - p_e)`` with
    ``p_e = sum_k p_a(k) p_b(k)``.  NaN when ``p_e == 1`` (both raters constant on one
    category) or no firm is typed by both."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    ok = (a >= 0) & (b >= 0)
    n = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        po = ((a == b) & ok).sum(axis=-1) / n
        pe = np.zeros(po.shape)
        for k in range(int(n_categories)):
            pe += (((a == k) & ok).sum(axis=-1) / n) * (((b == k) & ok).sum(axis=-1) / n)
        kappa = (po - pe) / (1.0 - pe)
    kappa = np.where((n > 0) & (pe < 1.0 - 1e-12), kappa, np.nan)
    return kappa[()] if kappa.ndim == 0 else kappa


def _mean_finite(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


# ---------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Comparison:
    """Result of :func:`compare` (see ``docs/findings.md`` for every definition).

    ``firm_types``: ``firm_id``, ``deterministic_type`` (<NA> for a firm with a missing
    index), ``p_<type>`` per type from the true-score version (summing to 1),
    ``p_<type>_rep`` from the replicated version (NaN for an untyped firm), then
    ``p_wrong`` and ``p_wrong_rep`` (1 - probability of the deterministic type),
    ``modal_type`` and ``modal_type_rep``.  ``firm_intervals``: one row per firm and
    quantity (each construct index and ``dist_<type>``): ``deterministic``,
    ``true_median``, ``true_lo``, ``true_hi``, ``rep_median``, ``rep_lo``, ``rep_hi``.
    ``sample_stats``: one row per statistic of :func:`sample_statistics`.
    ``findings``: one row per finding the spec declares (``spec.findings``; no rows when it
    declares none); ``finding_titles``: their titles by key.  ``agreement``: share of firms
    whose deterministic type is the modal true-score type, Cohen's kappa per draw
    (median and interval), the kappa against the modal type and the replicated analogues.
    Arrays ``(S, F)`` / ``(S, F, C)`` over the draws used, firms in survey order.
    """

    firm_types: pd.DataFrame
    firm_intervals: pd.DataFrame
    sample_stats: pd.DataFrame
    findings: pd.DataFrame
    agreement: dict
    true_types: np.ndarray
    rep_types: np.ndarray
    true_indices: np.ndarray
    rep_indices: np.ndarray
    prob: float
    type_names: tuple[str, ...] = ()
    firm_ids: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    finding_titles: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_draws(self) -> int:
        return int(self.true_types.shape[0])

    def summary(self) -> pd.DataFrame:
        """The headline findings, one row per finding (index ``finding``): ``title``,
        ``deterministic`` (the original method's verdict; None when it cannot say),
        ``posterior_probability``, ``replicated_probability`` and ``verdict`` (all
        columns, with the definitions, are in :attr:`findings`)."""
        titles = self.finding_titles
        cols = ["deterministic", "posterior_probability", "replicated_probability", "verdict"]
        table = self.findings.set_index("finding")[cols].copy()
        table.insert(0, "title", [titles.get(k, k) for k in table.index])
        return table

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable summary: the findings table (every column), the agreement,
        the number of firms and draws, the interval probability, type names and notes
        (without the per-firm tables and the draws; NaN as None)."""

        def clean(v):
            if isinstance(v, (np.bool_, bool)):
                return bool(v)
            if isinstance(v, (np.integer, int)):
                return int(v)
            if isinstance(v, (np.floating, float)):
                return float(v) if math.isfinite(v) else None
            return None if v is None or v is pd.NA else v

        return {
            "n_firms": len(self.firm_ids),
            "n_draws": self.n_draws,
            "prob": float(self.prob),
            "type_names": list(self.type_names),
            "findings": [{k: clean(v) for k, v in row.items()} for row in self.findings.to_dict(orient="records")],
            "agreement": {k: clean(v) for k, v in self.agreement.items()},
            "notes": list(self.notes),
        }

    def text(self) -> str:
        """The findings table and the agreement line, as plain text."""
        pct = f"{100 * self.prob:g}%"
        L = [
            f"Posterior predictive comparison with the deterministic method "
            f"({len(self.firm_ids)} firms, {self.n_draws} draws, {pct} intervals)",
            "",
        ]
        titles = self.finding_titles
        rows = []
        for r in self.findings.itertuples(index=False):
            det = "-" if r.deterministic is None or pd.isna(r.deterministic) else ("holds" if r.deterministic else "does not hold")
            p = "-" if not np.isfinite(r.posterior_probability) else f"{r.posterior_probability:.2f}"
            pr = "-" if not np.isfinite(r.replicated_probability) else f"{r.replicated_probability:.2f}"
            rows.append((titles.get(r.finding, r.finding), det, p, pr, r.verdict))
        hdr = ("finding", "deterministic", "P(holds)", "P(rep)", "verdict")
        if rows:
            w = [max(len(h), *(len(x[i]) for x in rows)) for i, h in enumerate(hdr[:4])]
            L.append("  ".join(h.ljust(w[i]) if i == 0 else h.rjust(w[i]) for i, h in enumerate(hdr[:4]))
                     + "  " + hdr[4])
            for x in rows:
                L.append("  ".join(v.ljust(w[i]) if i == 0 else v.rjust(w[i]) for i, v in enumerate(x[:4]))
                         + "  " + x[4])
            L.append(
                "  P(holds): posterior probability of the finding (true scores, latent parameters); "
                "P(rep): share of replicated surveys on which the original method states it."
            )
        else:
            L.append("Findings: the instrument declares no findings.")
        L.append("")
        a = self.agreement
        if a.get("n_firms"):
            kap = "-" if not np.isfinite(a["kappa"]) else (
                f"{a['kappa']:.2f} ({pct} interval {a['kappa_lo']:.2f} to {a['kappa_hi']:.2f})"
            )
            L.append(
                f"Agreement: the deterministic type is the posterior modal type for {a['n_agree']} of "
                f"{a['n_firms']} firms ({100 * a['share_agree']:.1f}%); Cohen's kappa per draw {kap}; "
                f"kappa vs the modal type {a['kappa_modal']:.2f}."
            )
        else:
            L.append("Agreement: no firm is typed by the deterministic method.")
        for n in self.notes:
            L.append(f"Note: {n}")
        return "\n".join(L)


def _industry(survey, spec: Spec) -> tuple[np.ndarray | None, tuple[str, ...]]:
    if spec.group_column is None or getattr(survey, "groups", None) is None:
        return None, ()
    names = tuple(survey.group_names)
    if len(names) < 1:
        return None, ()
    return np.asarray(survey.groups, dtype=int), names


def compare(
    idata,
    survey,
    spec: Spec | None = None,
    *,
    prob: float = 0.9,
    max_draws: int | None = None,
    random_seed: int = 0,
) -> Comparison:
    """Compare the deterministic method with its replicated and true-score versions.

    ``idata``: a fit of :class:`~smeintl.measurement.MeasurementModel` on ``survey``
    (its data hash must match); ``spec`` (default ``survey.spec``) may change the
    profiles, thresholds and weights but not the items.  ``max_draws`` thins the
    posterior to that many evenly spaced draws (:func:`select_draws`); ``random_seed``
    only seeds y_rep when the fit has no posterior predictive group.
    """
    spec = spec if spec is not None else survey.spec
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    idata = compat.as_fit(idata)
    _check_spec(idata, spec)
    fit_hash = getattr(idata, "attrs", {}).get("data_hash")
    if fit_hash is not None and fit_hash != survey.data_hash:
        raise ValueError(
            f"the fit was made on different data (fit data hash {str(fit_hash)[:12]}, survey "
            f"{survey.data_hash[:12]}); refit on this survey"
        )
    notes: list[str] = []
    if int(getattr(idata, "attrs", {}).get("failed", 0)):
        notes.append("the fit FAILED its convergence diagnostics: do not trust these probabilities")

    sel = select_draws(_n_samples(idata), max_draws)
    ids = tuple(str(f) for f in survey.items.index)
    X = item_matrix(survey, spec).to_numpy(dtype=float)
    Yrep = replicated_items(idata, survey, draws=sel, random_seed=random_seed, spec=spec)
    Ytrue = true_score_items(idata, spec, draws=sel, firms=ids)

    obs_ind, obs_ta = _det(X, spec)
    rep_ind, rep_ta = _det(Yrep, spec)
    true_ind, true_ta = _det(Ytrue, spec)
    tnames = tuple(obs_ta["type_names"])
    K = len(tnames)

    firm_types = _firm_types(ids, obs_ta["type"], true_ta["type"], rep_ta["type"], tnames)
    firm_intervals = _firm_intervals(ids, spec, prob, (obs_ind, obs_ta), (true_ind, true_ta), (rep_ind, rep_ta))

    groups, gnames = _industry(survey, spec)
    st_obs = sample_statistics(obs_ind, obs_ta, spec, groups, gnames)
    st_rep = sample_statistics(rep_ind, rep_ta, spec, groups, gnames)
    st_true = sample_statistics(true_ind, true_ta, spec, groups, gnames)
    sample_stats = _sample_table(st_obs, st_rep, st_true, prob)

    P = {k: v[sel] for k, v in posterior_params(idata).items()}
    findings = finding_table(spec, prob, obs_ind, rep_ind, st_obs, st_rep, st_true, P, groups, gnames, idata)

    agreement = _agreement(obs_ta["type"], true_ta["type"], rep_ta["type"], K, prob)
    return Comparison(
        firm_types=firm_types,
        firm_intervals=firm_intervals,
        sample_stats=sample_stats,
        findings=findings,
        agreement=agreement,
        true_types=np.asarray(true_ta["type"]),
        rep_types=np.asarray(rep_ta["type"]),
        true_indices=true_ind,
        rep_indices=rep_ind,
        prob=float(prob),
        type_names=tnames,
        firm_ids=ids,
        notes=tuple(notes),
        finding_titles={f.key: f.title for f in spec.findings},
    )


def _type_probs(codes: np.ndarray, K: int) -> np.ndarray:
    """Per firm, share of the draws (with the firm typed) of each code -> ``(F, K)``;
    NaN rows for firms never typed."""
    typed = (codes >= 0).sum(axis=0)
    out = np.stack([(codes == k).sum(axis=0) for k in range(K)], axis=-1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(typed[:, None] > 0, out / typed[:, None], np.nan)


def _firm_types(ids, det, true_codes, rep_codes, tnames) -> pd.DataFrame:
    K = len(tnames)
    pt = _type_probs(true_codes, K)
    pr = _type_probs(rep_codes, K)
    cols: dict[str, Any] = {"firm_id": list(ids)}
    cols["deterministic_type"] = pd.array([tnames[c] if c >= 0 else pd.NA for c in det], dtype="string")
    for k, t in enumerate(tnames):
        cols[f"p_{t}"] = pt[:, k]
    for k, t in enumerate(tnames):
        name = f"p_{t}_rep"
        if name in cols:
            raise ValueError(f"type name {t!r} clashes with the column {name!r}: rename the ideal type")
        cols[name] = pr[:, k]
    for name, codes in (("p_wrong", true_codes), ("p_wrong_rep", rep_codes)):
        typed = (codes >= 0).sum(axis=0)
        wrong = ((codes != det[None, :]) & (codes >= 0)).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[name] = np.where((det >= 0) & (typed > 0), wrong / np.maximum(typed, 1), np.nan)

    def modal(p):
        ok = np.isfinite(p).all(axis=1)
        m = np.argmax(np.where(np.isfinite(p), p, -1.0), axis=1)
        return pd.array([tnames[c] if o else pd.NA for c, o in zip(m, ok)], dtype="string")

    cols["modal_type"] = modal(pt)
    cols["modal_type_rep"] = modal(pr)
    return pd.DataFrame(cols)


def _firm_intervals(ids, spec, prob, obs, true, rep) -> pd.DataFrame:
    qnames = list(spec.construct_names) + [f"dist_{t}" for t in spec.profiles.type_names]

    def values(ind, ta):
        return np.concatenate([ind, np.asarray(ta["distance"], dtype=float)], axis=-1)

    vo = values(*obs)
    tm, tlo, thi = _quantiles(values(*true), prob)
    rm, rlo, rhi = _quantiles(values(*rep), prob)
    F, Q = vo.shape
    return pd.DataFrame(
        {
            "firm_id": np.repeat(np.array(ids, dtype=object), Q),
            "quantity": np.tile(np.array(qnames, dtype=object), F),
            "deterministic": vo.ravel(),
            "true_median": tm.ravel(),
            "true_lo": tlo.ravel(),
            "true_hi": thi.ravel(),
            "rep_median": rm.ravel(),
            "rep_lo": rlo.ravel(),
            "rep_hi": rhi.ravel(),
        }
    )


def _sample_table(obs, rep, true, prob) -> pd.DataFrame:
    rows = []
    for name, o in obs.items():
        o = float(o)
        r = np.asarray(rep[name], dtype=float)
        t = np.asarray(true[name], dtype=float)
        rf = r[np.isfinite(r)]
        rmed, rlo, rhi = _quantiles(r, prob)
        tmed, tlo, thi = _quantiles(t, prob)
        if np.isfinite(o) and rf.size:
            ppp = float((rf >= o).mean())
            ppp2 = float(min(1.0, 2.0 * min(ppp, float((rf <= o).mean()))))
        else:
            ppp = ppp2 = float("nan")
        rows.append((name, o, float(rmed), float(rlo), float(rhi), ppp, float(tmed), float(tlo), float(thi), ppp2))
    return pd.DataFrame(
        rows,
        columns=["statistic", "deterministic", "rep_median", "rep_lo", "rep_hi", "ppp",
                 "true_median", "true_lo", "true_hi", "ppp_two_sided"],
    )


def _agreement(det: np.ndarray, true_codes: np.ndarray, rep_codes: np.ndarray, K: int, prob: float) -> dict:
    pt = _type_probs(true_codes, K)
    pr = _type_probs(rep_codes, K)
    modal = np.where(np.isfinite(pt).all(axis=1), np.argmax(np.nan_to_num(pt, nan=-1.0), axis=1), -1)
    modal_rep = np.where(np.isfinite(pr).all(axis=1), np.argmax(np.nan_to_num(pr, nan=-1.0), axis=1), -1)
    typed = det >= 0
    n = int(typed.sum())
    out: dict[str, Any] = {"n_firms": n, "prob": float(prob)}
    if n == 0:
        nan = float("nan")
        out.update(n_agree=0, share_agree=nan, kappa=nan, kappa_lo=nan, kappa_hi=nan, kappa_modal=nan,
                   share_agree_draws=nan, share_agree_rep=nan, kappa_rep=nan, kappa_rep_lo=nan,
                   kappa_rep_hi=nan, kappa_modal_rep=nan)
        return out
    agree = int((modal[typed] == det[typed]).sum())
    k_true = cohens_kappa(det[None, :], true_codes, K)
    k_rep = cohens_kappa(det[None, :], rep_codes, K)
    km, klo, khi = _quantiles(k_true, prob)
    rm, rlo, rhi = _quantiles(k_rep, prob)
    out.update(
        n_agree=agree,
        share_agree=agree / n,
        kappa=float(km),
        kappa_lo=float(klo),
        kappa_hi=float(khi),
        kappa_modal=float(cohens_kappa(det, modal, K)),
        share_agree_draws=float(((true_codes == det[None, :]) & typed).sum(axis=1).mean() / n),
        share_agree_rep=float((modal_rep[typed] == det[typed]).mean()),
        kappa_rep=float(rm),
        kappa_rep_lo=float(rlo),
        kappa_rep_hi=float(rhi),
        kappa_modal_rep=float(cohens_kappa(det, modal_rep, K)),
    )
    return out


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
def write_comparison(comp: Comparison, out_dir: str | Path) -> list[Path]:
    """Write :data:`OUTPUT_FILES` into ``out_dir`` (created if needed) and return their
    paths.  Existing files are replaced: the caller decides the overwrite policy."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = [d / n for n in OUTPUT_FILES]
    comp.firm_types.to_csv(paths[0], index=False)
    comp.firm_intervals.to_csv(paths[1], index=False)
    comp.sample_stats.to_csv(paths[2], index=False)
    comp.findings.to_csv(paths[3], index=False)
    agreement = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in comp.agreement.items()}
    agreement["n_draws"] = comp.n_draws
    agreement["notes"] = list(comp.notes)
    paths[4].write_text(json.dumps(agreement, indent=2) + "\n", encoding="utf-8")
    return paths
