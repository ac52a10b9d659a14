"""Figures of the analysis (matplotlib, Agg backend).

Every function takes the analysis' data objects and returns a
:class:`matplotlib.figure.Figure`; nothing is shown (no ``plt.show``) and nothing is
written: save with ``fig.savefig(path)``.  Figures are built on
:class:`~matplotlib.figure.Figure` directly, not through pyplot, so they render with the
Agg canvas whatever backend is active (no display needed, the global backend is left
alone) and do not pile up in pyplot's figure registry (nothing to close).

============================  ===========================================================
function                      inputs
============================  ===========================================================
:func:`plot_profile_map`      ``DeterministicResult``, ``Comparison``, ``Spec``
:func:`plot_type_probabilities`  ``Comparison``, ``Spec``
:func:`plot_loadings`         ``FitSummary``
:func:`plot_latent_correlation`  a fit (``xarray.DataTree``)
:func:`plot_industry_means`   ``FitSummary``
:func:`plot_ppc`              a fit with a posterior predictive, ``Spec``
:func:`plot_deviation_intervals`  ``Comparison``, ``Spec``
============================  ===========================================================

A figure that cannot be drawn for the inputs given (a profile map of a spec whose ideal
types are not on two dimensions, a correlation of a one-construct model, industry means
of a fit without an industry level) raises :class:`ValueError` with the reason.

:data:`CAPTIONS` holds, per figure (keyed by the function name without ``plot_``), a
caption saying what to read from it; :data:`FIGURES` maps the same keys to the functions.
Colours of ideal types are the same in every figure (:func:`type_colors`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import compat
from .spec import Spec

__all__ = [
    "CAPTIONS",
    "FIGURES",
    "type_colors",
    "plot_profile_map",
    "plot_type_probabilities",
    "plot_loadings",
    "plot_latent_correlation",
    "plot_industry_means",
    "plot_ppc",
    "plot_deviation_intervals",
]

#: What to read from each figure (keys: function names without ``plot_``).
CAPTIONS: dict[str, str] = {
    "profile_map": (
        "Firms on the plane of the two profile dimensions (DOI across, independence up). "
        "Dots: each firm's indices from the deterministic method, coloured by its deterministic "
        "type. Crosshairs: the 80% posterior interval of the firm's measurement-error-free "
        "(true-score) indices. Stars: the ideal types; dashed lines: the thresholds that split the "
        "plane into the quadrants of the quadrant rule. A firm whose crosshair crosses a dashed line "
        "could belong to another type once measurement error is taken into account."
    ),
    "type_probabilities": (
        "For each firm, the posterior probability of each ideal type on its true scores (bar "
        "segments add up to 1). Firms are sorted by their most probable type, then by how probable "
        "it is. The marker right of each bar is the type the deterministic method gives; a long bar "
        "of another colour beside it means the deterministic type is probably wrong."
    ),
    "loadings": (
        "Standardized loadings of each item on its construct (posterior mean, 90% interval), "
        "grouped by construct. Larger loadings mean the item measures the construct more "
        "precisely; an interval reaching down towards 0 marks an item that carries little "
        "information about its construct. Reverse-coded items are marked (rev.)."
    ),
    "latent_correlation": (
        "Posterior distribution of the correlation between the latent constructs (within "
        "industries), with its 90% interval (shaded) and the posterior probability that it is "
        "positive (title). Mass clearly right of 0 supports a complementary relation."
    ),
    "industry_means": (
        "Posterior mean and 90% interval of each industry's latent mean, per construct, on the "
        "latent scale (within-industry sd 1; the industry means sum to zero). Intervals that do "
        "not overlap 0 mark industries above or below the average industry."
    ),
    "ppc": (
        "Posterior predictive checks per item, on the cells that were answered: observed value "
        "(black dot) against the 90% interval (bar) and median (tick) of the same statistic on "
        "surveys replicated from the model. Ordinal and binary items: share of each answer "
        "category; percent items: share of exact 0s, of exact maxima and the mean (as a share of "
        "the maximum); count and continuous items: shares of value bins. Dots outside their bars "
        "(drawn red) mark features of the data the model does not reproduce; with this many "
        "panels and 90% intervals, a few are expected by chance."
    ),
    "deviation_intervals": (
        "Each firm's deviation (distance) from its nearest ideal type: the deterministic value "
        "(dot, coloured by type) against the posterior interval of the same distance on the "
        "firm's true scores (thick bar) and on replicated surveys (thin bar). The thin bar is "
        "how much the original method's number would vary on a re-measurement of the same firm."
    ),
}

_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4",
            "#b2df8a", "#fb9a99")
_HYBRID = "#9e9e9e"


def type_colors(type_names: Sequence[str]) -> dict[str, str]:
    """One colour per type name, in declared order (``hybrid`` is grey)."""
    out: dict[str, str] = {}
    k = 0
    for t in type_names:
        if t == "hybrid":
            out[t] = _HYBRID
        else:
            out[t] = _PALETTE[k % len(_PALETTE)]
            k += 1
    return out


def _pretty(name: str) -> str:
    return str(name).replace("_", " ")


def _new_figure(w: float, h: float) -> Figure:
    fig = Figure(figsize=(w, h), layout="constrained")
    return fig


def _quantiles(a: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = (1.0 - prob) / 2.0
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(a, [0.5, lo, 1.0 - lo], axis=axis)
    return q[0], q[1], q[2]


def _construct_labels(spec: Spec) -> dict[str, str]:
    return {c.name: (c.label or c.name) for c in spec.constructs}


# ---------------------------------------------------------------------------
# comparison figures
# ---------------------------------------------------------------------------
def plot_profile_map(det, comparison, spec: Spec, prob: float = 0.8) -> Figure:
    """Firms on the plane of the two profile dimensions with their posterior uncertainty.

    Deterministic indices as dots (coloured by deterministic type), the ``prob``
    equal-tailed posterior interval of each firm's true-score indices (from
    ``comparison.true_indices``) as crosshair error bars centred on the posterior
    median, the ideal types as labelled stars and the thresholds as dashed quadrant
    lines.  Only for specs whose ideal types live on exactly two construct indices;
    otherwise :class:`ValueError`.
    """
    dims = tuple(spec.profiles.dimensions)
    if len(dims) != 2:
        raise ValueError(
            f"the profile map needs ideal types on exactly 2 dimensions; this spec's profiles are on "
            f"{len(dims)} ({', '.join(dims)})"
        )
    cn = tuple(spec.construct_names)
    missing = [d for d in dims if d not in cn]
    if missing:
        raise ValueError(f"the profile map needs construct indices as dimensions; {missing} are not constructs")
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    ja, jb = cn.index(dims[0]), cn.index(dims[1])
    firms = det.firms
    x = pd.to_numeric(firms[dims[0]], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(firms[dims[1]], errors="coerce").to_numpy(dtype=float)
    dtype = firms["type"].astype(object).where(firms["type"].notna(), None).to_numpy()
    T = np.asarray(comparison.true_indices, dtype=float)
    xm, xlo, xhi = _quantiles(T[..., ja], prob)
    ym, ylo, yhi = _quantiles(T[..., jb], prob)
    tnames = list(comparison.type_names or spec.profiles.type_names)
    colors = type_colors(tnames)
    labels = _construct_labels(spec)

    fig = _new_figure(7.5, 6.6)
    ax = fig.add_subplot()
    ax.errorbar(xm, ym, xerr=[xm - xlo, xhi - xm], yerr=[ym - ylo, yhi - ym], fmt="none",
                ecolor="#8a8a8a", elinewidth=0.9, alpha=0.55, capsize=0, zorder=1)
    for t in tnames:
        m = np.array([d == t for d in dtype])
        if m.any():
            ax.scatter(x[m], y[m], s=30, color=colors[t], edgecolor="white", linewidth=0.5, zorder=3,
                       label=f"{_pretty(t)} (deterministic, n={int(m.sum())})")
    untyped = np.array([d is None for d in dtype]) & np.isfinite(x) & np.isfinite(y)
    if untyped.any():
        ax.scatter(x[untyped], y[untyped], s=30, color="black", marker="x", zorder=3, label="untyped")
    thr = spec.thresholds
    ax.axvline(thr[dims[0]], color="#555555", ls="--", lw=1, zorder=0)
    ax.axhline(thr[dims[1]], color="#555555", ls="--", lw=1, zorder=0)
    for it in spec.profiles.types:
        cx, cy = it.coords
        ax.scatter([cx], [cy], marker="*", s=320, color=colors.get(it.name, "black"), edgecolor="black",
                   linewidth=0.8, zorder=4, clip_on=False)
        ha = "left" if cx < 0.5 else "right"
        va = "bottom" if cy < 0.5 else "top"
        dx = 0.03 if ha == "left" else -0.03
        dy = 0.035 if va == "bottom" else -0.035
        ax.annotate(_pretty(it.name), (cx, cy), xytext=(cx + dx, cy + dy), ha=ha, va=va, fontsize=9,
                    fontweight="bold", color="#222222", zorder=5)
    allx = np.concatenate([x[np.isfinite(x)], [c.coords[0] for c in spec.profiles.types], xlo, xhi])
    ally = np.concatenate([y[np.isfinite(y)], [c.coords[1] for c in spec.profiles.types], ylo, yhi])
    allx, ally = allx[np.isfinite(allx)], ally[np.isfinite(ally)]
    pad = 0.05
    ax.set_xlim(min(0.0, allx.min()) - pad, max(1.0, allx.max()) + pad)
    ax.set_ylim(min(0.0, ally.min()) - pad, max(1.0, ally.max()) + pad)
    ax.set_xlabel(f"{labels[dims[0]]} ({dims[0]} index)")
    ax.set_ylabel(f"{labels[dims[1]]} ({dims[1]} index)")
    ax.set_title(f"Ideal-profile map: deterministic indices and {100 * prob:g}% true-score intervals", fontsize=11)
    handles, lab = ax.get_legend_handles_labels()
    handles.append(Line2D([0], [0], color="#8a8a8a", lw=1.2))
    lab.append(f"{100 * prob:g}% posterior interval (true score)")
    handles.append(Line2D([0], [0], marker="*", color="w", markerfacecolor="#cccccc", markeredgecolor="black",
                          markersize=14))
    lab.append("ideal type")
    fig.legend(handles, lab, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    ax.grid(alpha=0.2)
    return fig


def plot_type_probabilities(comparison, spec: Spec) -> Figure:
    """Per firm, stacked horizontal bars of the true-score type probabilities.

    Firms are sorted by their modal type (declared order) and then by the modal
    type's probability (highest first); the deterministic type is marked by a
    coloured square right of each bar (a cross for a firm the deterministic method
    cannot type).
    """
    ft = comparison.firm_types
    tnames = list(comparison.type_names or spec.profiles.type_names)
    colors = type_colors(tnames)
    P = np.column_stack([pd.to_numeric(ft[f"p_{t}"], errors="coerce").to_numpy(dtype=float) for t in tnames])
    P = np.nan_to_num(P, nan=0.0)
    modal = P.argmax(axis=1)
    pmax = P.max(axis=1)
    order = np.lexsort((-pmax, modal))  # primary: modal type, secondary: probability desc
    F = len(ft)
    ids = ft["firm_id"].astype(str).to_numpy()
    dtypes = ft["deterministic_type"].astype(object).to_numpy()

    fig = _new_figure(8.0, max(3.0, 0.2 * F + 1.8))
    ax = fig.add_subplot()
    ypos = np.arange(F)[::-1]  # first firm at the top
    left = np.zeros(F)
    for k, t in enumerate(tnames):
        w = P[order, k]
        ax.barh(ypos, w, left=left, height=0.8, color=colors[t], edgecolor="white", linewidth=0.3,
                label=_pretty(t))
        left = left + w
    for yy, f in zip(ypos, order):
        d = dtypes[f]
        if d is None or (isinstance(d, float) and np.isnan(d)) or d is pd.NA:
            ax.scatter([1.04], [yy], marker="x", color="black", s=22)
        else:
            ax.scatter([1.04], [yy], marker="s", color=colors.get(str(d), "black"), edgecolor="black",
                       linewidth=0.4, s=30)
    ax.set_yticks(ypos)
    ax.set_yticklabels(ids[order], fontsize=7)
    ax.set_xlim(0, 1.08)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.text(1.04, F - 0.4, "det.", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(-0.7, F - 0.3)
    ax.set_xlabel("posterior probability of the type (true scores)")
    ax.set_title("Type probabilities per firm (square right of the bar: deterministic type)", fontsize=11)
    handles, lab = ax.get_legend_handles_labels()
    handles.append(Line2D([0], [0], marker="s", color="w", markerfacecolor="#cccccc", markeredgecolor="black",
                          markersize=7))
    lab.append("deterministic type (colour)")
    fig.legend(handles, lab, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_deviation_intervals(comparison, spec: Spec) -> Figure:
    """Each firm's deterministic distance to its nearest ideal type against its posterior intervals.

    The nearest type is the deterministic argmin over the declared ideal types (for a
    ``hybrid`` firm, the nearer of its two candidate types).  Intervals are
    ``comparison.firm_intervals`` (level ``comparison.prob``): true score (thick) and
    replicated (thin).  Firms without a deterministic distance are left out.
    """
    fi = comparison.firm_intervals
    tnames = list(spec.profiles.type_names)
    colors = type_colors(list(comparison.type_names or tnames))
    wide = fi.pivot(index="firm_id", columns="quantity", values="deterministic")
    ids = [str(f) for f in comparison.firm_ids] or list(wide.index)
    wide = wide.reindex(ids)
    D = wide[[f"dist_{t}" for t in tnames]].to_numpy(dtype=float)
    ok = np.isfinite(D).all(axis=1)
    if not ok.any():
        raise ValueError("no firm has deterministic distances to the ideal types")
    nearest = np.where(ok, np.argmin(np.where(np.isfinite(D), D, np.inf), axis=1), -1)
    rows = []
    key = fi.set_index(["firm_id", "quantity"])
    for f, k in zip(ids, nearest):
        if k < 0:
            continue
        r = key.loc[(f, f"dist_{tnames[k]}")]
        rows.append((f, tnames[k], float(r["deterministic"]), float(r["true_lo"]), float(r["true_hi"]),
                     float(r["true_median"]), float(r["rep_lo"]), float(r["rep_hi"])))
    tab = pd.DataFrame(rows, columns=["firm", "type", "det", "tlo", "thi", "tmed", "rlo", "rhi"])
    tab["tcode"] = [tnames.index(t) for t in tab["type"]]
    tab = tab.sort_values(["tcode", "det"], ascending=[True, True]).reset_index(drop=True)
    n = len(tab)
    pct = f"{100 * comparison.prob:g}%"

    fig = _new_figure(8.0, max(3.0, 0.2 * n + 1.8))
    ax = fig.add_subplot()
    ypos = np.arange(n)[::-1]
    for yy, r in zip(ypos, tab.itertuples(index=False)):
        c = colors.get(r.type, "black")
        ax.plot([r.rlo, r.rhi], [yy, yy], color=c, lw=1.0, alpha=0.6, solid_capstyle="butt")
        ax.plot([r.tlo, r.thi], [yy, yy], color=c, lw=4.0, alpha=0.45, solid_capstyle="butt")
        ax.scatter([r.det], [yy], color=c, edgecolor="black", linewidth=0.5, s=24, zorder=3)
    ax.set_yticks(ypos)
    ax.set_yticklabels(tab["firm"], fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(left=0)
    scale = "squared distance" if spec.squared else "distance"
    std = ", standardized dimensions" if spec.standardize else ""
    ax.set_xlabel(f"{scale} to the nearest ideal type{std}")
    ax.set_title(f"Deviation from the nearest ideal type: deterministic value and {pct} intervals", fontsize=11)
    present = [t for t in tnames if (tab["type"] == t).any()]
    handles = [Patch(color=colors[t], label=_pretty(t)) for t in present]
    handles += [
        Line2D([0], [0], marker="o", color="w", markerfacecolor="#bbbbbb", markeredgecolor="black", label="deterministic"),
        Line2D([0], [0], color="#888888", lw=4, alpha=0.6, label=f"{pct} interval, true score"),
        Line2D([0], [0], color="#888888", lw=1, label=f"{pct} interval, replicated"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.25)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


# ---------------------------------------------------------------------------
# measurement-model figures
# ---------------------------------------------------------------------------
def plot_loadings(summary) -> Figure:
    """Forest plot of the standardized loadings (posterior mean, 90% interval), grouped by construct.

    Uses ``summary.loadings`` (``construct``, ``reverse``, ``std_mean``, ``std_lo``,
    ``std_hi``) of :func:`~smeintl.measurement.summarize_fit`.
    """
    L = summary.loadings
    if L is None or not len(L):
        raise ValueError("the fit summary has no loadings")
    cons = list(dict.fromkeys(L["construct"]))
    fig = _new_figure(7.5, max(3.0, 0.3 * len(L) + 0.45 * len(cons) + 1.2))
    ax = fig.add_subplot()
    y = 0.0
    ticks, labels = [], []
    for k, c in enumerate(cons):
        sub = L[L["construct"] == c]
        col = _PALETTE[k % len(_PALETTE)]
        ax.text(-0.02, -y, str(c), transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=9,
                fontweight="bold")
        y += 1.0
        for item, r in sub.iterrows():
            ax.plot([r["std_lo"], r["std_hi"]], [-y, -y], color=col, lw=2.2, solid_capstyle="butt")
            ax.scatter([r["std_mean"]], [-y], color=col, edgecolor="black", linewidth=0.5, s=28, zorder=3)
            ticks.append(-y)
            labels.append(f"{item} (rev.)" if bool(r.get("reverse", False)) else str(item))
            y += 1.0
        y += 0.4
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(-y + 0.6, 0.6)
    ax.set_xlabel("standardized loading (posterior mean and 90% interval)")
    ax.set_title("Standardized loadings by construct", fontsize=11)
    ax.grid(axis="x", alpha=0.25)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_latent_correlation(idata, prob: float = 0.9) -> Figure:
    """Posterior histogram of each latent correlation with its ``prob`` interval and P(> 0).

    One panel per pair of constructs (from the fit's ``corr``); a fit with one
    construct has no correlation: :class:`ValueError`.
    """
    post = compat.group(idata, "posterior")
    if "corr" not in post:
        raise ValueError("the fit has no latent correlation (one construct)")
    corr = post["corr"]
    names = [str(v) for v in corr.coords[corr.dims[-2]].values]
    C = len(names)
    A = corr.values.reshape((-1, C, C))
    pairs = [(a, b) for a in range(C) for b in range(a + 1, C)]
    if not pairs:
        raise ValueError("the fit has no latent correlation (one construct)")
    ncol = min(3, len(pairs))
    nrow = int(np.ceil(len(pairs) / ncol))
    fig = _new_figure(4.6 * ncol, 3.4 * nrow)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for ax, (a, b) in zip(axes, pairs):
        v = A[:, a, b]
        med, lo, hi = _quantiles(v, prob)
        ax.hist(v, bins=40, range=(-1, 1), color="#7570b3", alpha=0.75, edgecolor="white", linewidth=0.3)
        ax.axvspan(lo, hi, color="#7570b3", alpha=0.12)
        ax.axvline(0, color="black", lw=1)
        ax.axvline(med, color="#333333", lw=1, ls=":")
        p = float((v > 0).mean())
        ax.set_title(f"corr({names[a]}, {names[b]}): P(> 0) = {p:.2f}\n"
                     f"median {med:.2f}, {100 * prob:g}% interval [{lo:.2f}, {hi:.2f}]", fontsize=10)
        ax.set_xlabel("latent correlation")
        ax.set_ylabel("posterior draws")
        ax.set_xlim(-1, 1)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    return fig


def plot_industry_means(summary) -> Figure:
    """Industry (group) latent means with their 90% intervals, one panel per construct.

    Uses ``summary.group_means`` (``group``, ``construct``, ``mean``, ``lo``, ``hi``);
    a fit without an industry level has none: :class:`ValueError`.
    """
    G = summary.group_means
    if G is None or not len(G):
        raise ValueError("the fit has no industry level (no group means)")
    cons = list(dict.fromkeys(G["construct"]))
    groups = list(dict.fromkeys(G["group"]))
    fig = _new_figure(4.2 * len(cons) + 1.6, max(2.6, 0.42 * len(groups) + 1.4))
    axes = np.atleast_1d(fig.subplots(1, len(cons), sharey=True, squeeze=False)).ravel()
    ypos = np.arange(len(groups))[::-1]
    for k, (ax, c) in enumerate(zip(axes, cons)):
        sub = G[G["construct"] == c].set_index("group").reindex(groups)
        col = _PALETTE[k % len(_PALETTE)]
        ax.axvline(0, color="black", lw=0.8)
        ax.hlines(ypos, sub["lo"], sub["hi"], color=col, lw=2.4)
        ax.scatter(sub["mean"], ypos, color=col, edgecolor="black", linewidth=0.5, s=32, zorder=3)
        ax.set_title(str(c), fontsize=10)
        ax.set_xlabel("latent mean (90% interval)")
        ax.grid(axis="x", alpha=0.25)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_yticks(ypos)
    axes[0].set_yticklabels([str(g) for g in groups], fontsize=9)
    fig.suptitle("Industry latent means", fontsize=11)
    return fig


# ---------------------------------------------------------------------------
# posterior predictive checks
# ---------------------------------------------------------------------------
def plot_ppc(idata, spec: Spec, prob: float = 0.9, max_draws: int = 500) -> Figure:
    """Posterior predictive checks per item: a grid of small panels.

    For each item, statistics of the answered cells (the observed survey's
    missingness pattern applied to every replicate): ordinal and binary items the
    share of each category; percent items the share of exact minimum (0), of exact
    maximum (100) and the mean as a share of the range; count items the shares of
    value bins up to and beyond the cap; continuous items the shares of five
    equal-width bins of the declared range.  Observed statistic as a black dot,
    replicated median and ``prob`` interval as tick and bar.  ``max_draws`` evenly
    spaced draws are used.  Needs the fit's ``posterior_predictive`` and
    ``observed_data`` groups.
    """
    if not compat.has_group(idata, "posterior_predictive") or not compat.has_group(idata, "observed_data"):
        raise ValueError("the fit has no posterior predictive (or observed data) group: refit with posterior_predictive=True")
    pp, obs = compat.group(idata, "posterior_predictive"), compat.group(idata, "observed_data")
    items = [it for it in spec.items if it.name in pp and it.name in obs]
    if not items:
        raise ValueError("the fit's posterior predictive holds none of the spec's items")
    n = len(items)
    ncol = min(4, n)
    nrow = int(np.ceil(n / ncol))
    fig = _new_figure(3.3 * ncol, 2.55 * nrow + 0.5)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    for ax, it in zip(axes, items):
        o = np.asarray(obs[it.name].values, dtype=float)
        R = np.asarray(pp[it.name].values, dtype=float)
        R = R.reshape((-1, R.shape[-1]))
        if R.shape[0] > max_draws:
            R = R[np.round(np.linspace(0, R.shape[0] - 1, max_draws)).astype(int)]
        m = np.isfinite(o)
        o, R = o[m], R[:, m]
        family = it.family
        so = family.ppc_statistics(o, it)
        sr = family.ppc_statistics(R, it)
        med, lo, hi = _quantiles(sr, prob)
        x = np.arange(so.shape[-1])
        col = family.color
        ax.bar(x, hi - lo, bottom=lo, width=0.6, color=col, alpha=0.35, edgecolor="none")
        ax.hlines(med, x - 0.3, x + 0.3, color=col, lw=1.5)
        outside = (so < lo) | (so > hi)
        ax.scatter(x[~outside], so[~outside], color="black", s=16, zorder=3)
        if outside.any():
            ax.scatter(x[outside], so[outside], color="#d7191c", edgecolor="black", s=24, zorder=4)
        ax.set_xticks(x)
        ax.set_xticklabels(family.ppc_labels(it), fontsize=7)
        ax.set_ylim(0, max(0.05, float(np.nanmax(np.concatenate([hi, so]))) * 1.15))
        ax.set_title(f"{it.name}\n({it.scale}, n={int(m.sum())})", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"Posterior predictive checks: observed (dot; red when outside) vs replicated "
                 f"{100 * prob:g}% interval (bar) and median (tick)", fontsize=10)
    return fig


#: figure key -> function (keys as in :data:`CAPTIONS`)
FIGURES: dict[str, Any] = {
    "profile_map": plot_profile_map,
    "type_probabilities": plot_type_probabilities,
    "loadings": plot_loadings,
    "latent_correlation": plot_latent_correlation,
    "industry_means": plot_industry_means,
    "ppc": plot_ppc,
    "deviation_intervals": plot_deviation_intervals,
}


# ---------------------------------------------------------------------------
# model checks (smeintl.measurement.fit_checks)
# ---------------------------------------------------------------------------
#: What to read from each figure of the model checks (keys: function names without ``plot_``).
CHECK_CAPTIONS: dict[str, str] = {
    "residual_correlations": (
        "Residual rank correlation of each item pair: the observed Spearman correlation minus its mean "
        "over the surveys replicated from the model (red: the items go together more than the model "
        "says, blue: less). Crossed cells: pairs whose posterior predictive p-value is below the level "
        "in the title. Lines separate the constructs. A cluster of crossed cells points at a shared "
        "influence the model leaves out (a cross-loading, a method factor, similar wording)."
    ),
    "item_checks": (
        "Where each observed item statistic lies among the same statistic on the replicated surveys "
        "(0: below every replicate, 1: above every one, 0.5: in the middle). Red: posterior predictive "
        "p-value below the level in the title. With many statistics a few red points are expected by "
        "chance; a statistic far out on one side marks a feature of the item the model does not reproduce."
    ),
    "global_checks": (
        "Global checks. Left: the discrepancy of the observed data against that of the replicated data, "
        "one point per posterior draw; points above the diagonal are replicates that fit worse than the "
        "data, and their share is the posterior predictive p-value. Right: posterior distributions of the "
        "fit indices with their central intervals (shaded)."
    ),
}

__all__ += ["CHECK_CAPTIONS", "CHECK_FIGURES", "plot_residual_correlations", "plot_item_checks",
            "plot_global_checks"]


def plot_residual_correlations(checks, alpha: float | None = None) -> Figure:
    """Heatmap of the residual Spearman correlations of every item pair (observed minus mean
    replicated) from :func:`~smeintl.measurement.fit_checks.fit_checks`, lower triangle,
    items in spec order with lines between constructs; pairs with a PPP below ``alpha``
    (default: the checks' own) are crossed."""
    alpha = checks.alpha if alpha is None else float(alpha)
    names = list(checks.item_names)
    n = len(names)
    if n < 2:
        raise ValueError("the model checks have fewer than two items: no item pairs")
    R = checks.residual_matrix().to_numpy(dtype=float)
    Pm = checks.ppp_matrix().to_numpy(dtype=float)
    lower = np.tril(np.ones((n, n), dtype=bool), k=-1)
    shown = np.where(lower, R, np.nan)
    lim = max(0.1, float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 0.1)
    size = min(11.0, max(4.5, 0.42 * n + 2.2))
    fig = _new_figure(size + 1.2, size)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(shown), cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ii, jj = np.nonzero(lower & (Pm < alpha))
    dark = np.abs(np.nan_to_num(shown)) > 0.55 * lim  # white marks on the darkest cells
    if ii.size:
        size = max(12, 260 / max(n, 1) ** 0.9)
        ax.scatter(jj, ii, marker="x", c=np.where(dark[ii, jj], "white", "black"), s=size, linewidths=1.1)
        ax.scatter([], [], marker="x", color="black", s=size, linewidths=1.1, label=f"PPP < {alpha:g}")
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    if n <= 16:
        for i in range(n):
            for j in range(i):
                if np.isfinite(shown[i, j]):
                    ax.text(j, i + 0.45, f"{shown[i, j]:+.2f}".replace("+", ""), ha="center", va="bottom",
                            fontsize=6, color="white" if dark[i, j] else "#333333", clip_on=True)
    cons = list(checks.item_constructs)
    for k in range(1, n):
        if cons[k] != cons[k - 1]:
            ax.axhline(k - 0.5, color="#444444", lw=0.8)
            ax.axvline(k - 0.5, color="#444444", lw=0.8)
    fs = 8 if n <= 20 else 6
    ax.set_xticks(range(n))
    ax.set_xticklabels(names, rotation=90, fontsize=fs)
    ax.set_yticks(range(n))
    ax.set_yticklabels(names, fontsize=fs)
    ax.spines[["top", "right"]].set_visible(False)
    cb = fig.colorbar(im, ax=ax, shrink=0.8)
    cb.set_label("observed - mean replicated Spearman correlation")
    nf = int(checks.pairs["flagged"].sum()) if alpha == checks.alpha else int(ii.size)
    ax.set_title(f"Residual rank correlations of item pairs ({nf} of {len(checks.pairs)} with PPP < {alpha:g})",
                 fontsize=10)
    return fig


def plot_item_checks(checks, alpha: float | None = None) -> Figure:
    """Each item statistic of :func:`~smeintl.measurement.fit_checks.fit_checks` as the
    position of the observed value in the replicated distribution
    (``quantile`` = P(T_rep < T_obs) + P(T_rep = T_obs) / 2), grouped by item; statistics with
    a PPP below ``alpha`` (default: the checks' own) in red."""
    alpha = checks.alpha if alpha is None else float(alpha)
    T = checks.items
    if not len(T):
        raise ValueError("the model checks have no item statistics")
    m = len(T)
    fig = _new_figure(7.5, min(40.0, max(3.0, 0.16 * m + 1.4)))
    ax = fig.add_subplot()
    y = -np.arange(m, dtype=float)
    ax.axvspan(alpha / 2, 1 - alpha / 2, color="#dddddd", alpha=0.5, lw=0)
    ax.axvline(0.5, color="#888888", lw=0.8, ls=":")
    bad = (T["ppp"] < alpha).to_numpy()
    q = T["quantile"].to_numpy(dtype=float)
    ax.scatter(q[~bad], y[~bad], s=14, color="black", zorder=3)
    if bad.any():
        ax.scatter(q[bad], y[bad], s=22, color="#d7191c", edgecolor="black", linewidth=0.4, zorder=4)
    labels = [f"{r.item}: {r.statistic}" for r in T.itertuples(index=False)]
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=6 if m > 40 else 7)
    items = T["item"].to_numpy()
    for k in range(1, m):
        if items[k] != items[k - 1]:
            ax.axhline(y[k] + 0.5, color="#cccccc", lw=0.5)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(y[-1] - 0.7, 0.7)
    ax.set_xlabel("position of the observed statistic among the replicated ones")
    ax.set_title(f"Item statistics: observed vs replicated ({int(bad.sum())} of {m} with PPP < {alpha:g})",
                 fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def plot_global_checks(checks) -> Figure:
    """The global checks of :func:`~smeintl.measurement.fit_checks.fit_checks`: the
    discrepancy of the observed against the replicated data per draw (its PPP: the share
    above the diagonal), then the posterior of SRMR and, for all-continuous instruments, of
    BRMSEA, BCFI and BTLI with their central intervals."""
    d = checks.draws
    panels = ["srmr"] + [k for k in ("brmsea", "bcfi", "btli") if k in d]
    fig = _new_figure(3.4 * (1 + len(panels)), 3.4)
    axes = np.atleast_1d(fig.subplots(1, 1 + len(panels), squeeze=False)).ravel()
    ax = axes[0]
    x, yv = np.asarray(d["d_obs"], dtype=float), np.asarray(d["d_rep"], dtype=float)
    ax.scatter(x, yv, s=6, alpha=0.5, color="#7570b3", edgecolor="none")
    lo = float(np.nanmin(np.concatenate([x, yv])))
    hi = float(np.nanmax(np.concatenate([x, yv])))
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    what = "likelihood ratio vs saturated" if checks.method == "normal" else "rank likelihood ratio"
    ax.set_xlabel(f"observed data ({what})")
    ax.set_ylabel("replicated data")
    ax.set_title(f"discrepancy: PPP = {checks.global_ppp:.3f}", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    g = checks.global_checks.set_index("check")
    for ax, key in zip(axes[1:], panels):
        v = np.asarray(d[key], dtype=float)
        v = v[np.isfinite(v)]
        ax.hist(v, bins=40, color="#1b9e77", alpha=0.75, edgecolor="white", linewidth=0.3)
        r = g.loc[key]
        ax.axvspan(r["lower"], r["upper"], color="#1b9e77", alpha=0.12)
        title = f"{key.upper()}: {r['estimate']:.3f} [{r['lower']:.3f}, {r['upper']:.3f}]"
        if key == "srmr" and "srmr_adjusted" in d:
            a = np.asarray(d["srmr_adjusted"], dtype=float)
            ax.hist(a[np.isfinite(a)], bins=40, color="#d95f02", alpha=0.45, edgecolor="white", linewidth=0.3,
                    label="spread removed")
            ax.legend(fontsize=7, frameon=False)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(key)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"Global model checks ({int(checks.settings.get('n_draws', len(x)))} posterior draws, "
                 f"{100 * checks.prob:g}% intervals)", fontsize=10)
    return fig


#: model-check figure key -> function (keys as in :data:`CHECK_CAPTIONS`)
CHECK_FIGURES: dict[str, Any] = {
    "residual_correlations": plot_residual_correlations,
    "item_checks": plot_item_checks,
    "global_checks": plot_global_checks,
}
