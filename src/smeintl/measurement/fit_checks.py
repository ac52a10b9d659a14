"""Model checks of a fit: posterior predictive p-values (PPP) at three levels.

:func:`fit_checks` compares the observed survey with surveys replicated from the fitted
model, for every item family, and returns a :class:`FitChecks`:

* **items**: per item, the statistics its family names
  (:meth:`smeintl.families.Family.check_statistics`: category shares of ordinal items,
  the share of 1 of binary items, the masses at the minimum and maximum of percent items,
  the share of zeros of counts, the mean and sd of all but binary items, the skewness of
  continuous items) on the answered cells of the observed survey and of each replicated
  survey of the fit's ``posterior_predictive`` group (no new sampling);
* **pairs**: per item pair, the Spearman rank correlation on the firms answering both,
  observed against replicated (the ``posterior_predictive`` surveys), the residual
  correlation (observed minus the mean replicated one);
* **global**: a chi-square-type discrepancy with its PPP and the posterior of SRMR; for
  all-continuous instruments also BRMSEA, BCFI and BTLI (Garnier-Villarreal and Jorgensen
  2020).  All-continuous instruments: the likelihood-ratio statistic of the model against
  the saturated normal model (unrestricted means, per group where the fit has groups, and
  covariance), on the firms with every item answered, per posterior draw for the observed
  data and for data replicated from that draw's marginal normal distribution.  Other
  instruments: the same likelihood ratio on the correlation matrix of the items' normal
  scores (van der Waerden scores of their ranks, complete cases) against the draw's
  model-implied one (``rank_lr``), and the sum over item pairs of the G² of the bivariate
  tables of answer cells (:meth:`~smeintl.families.Family.check_cells`, merged to a few
  per item) against the draw's model-implied tables, its association part
  (``pairwise_g2``), each for the observed and for a survey replicated at that draw; the
  model-implied quantities from a large sample simulated at the draw; SRMR on Spearman
  correlations against the draw's model-implied ones.

The global checks replicate with new latent scores drawn from the population model
(group mean and latent correlation) at each posterior draw, as blavaan does; the
``posterior_predictive`` surveys keep each firm's latent score drawn given its own answers,
which makes them resemble the data more closely (a less sensitive global check).
Two-sided PPPs for items and pairs, ``2 min(P(T_rep >= T_obs), P(T_rep <= T_obs))``;
one-sided PPPs for the global discrepancies, ``P(D_rep >= D_obs)``.  ``docs/checks.md``
describes each check, how to read it and its limits.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import compat
from ..spec import Spec, parse_spec
from .generative import draw_items, posterior_params
from .io import fit_standardization
from .layout import ItemLayout

__all__ = ["FitChecks", "fit_checks", "two_sided_ppp", "pairwise_spearman"]

#: the global checks, in the order of the table, with what each compares
GLOBAL_CHECKS: dict[str, str] = {
    "chi2": "likelihood-ratio discrepancy against the saturated normal model (complete cases)",
    "rank_lr": "likelihood-ratio discrepancy of the items' normal scores (rank-based) against the model-implied "
               "correlations",
    "pairwise_g2": "sum over item pairs of the G² of their bivariate tables against the model-implied ones, "
                   "association part",
    "srmr": "standardized root mean square residual, per posterior draw",
    "srmr_adjusted": "SRMR per draw with the posterior spread of the residuals removed (as BRMSEA removes pD)",
    "brmsea": "Bayesian RMSEA (Hoofs et al. 2018; Garnier-Villarreal and Jorgensen 2020)",
    "bcfi": "Bayesian CFI against the independence model (Garnier-Villarreal and Jorgensen 2020)",
    "btli": "Bayesian TLI against the independence model (Garnier-Villarreal and Jorgensen 2020)",
}


# ---------------------------------------------------------------------------- helpers
def two_sided_ppp(rep: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """``2 min(P(T_rep >= T_obs), P(T_rep <= T_obs))`` (at most 1) over the first axis of
    ``rep`` (draws x ...), against ``obs`` (...); draws whose statistic is not finite are
    left out, NaN where none is left or ``obs`` is not finite."""
    rep = np.asarray(rep, dtype=float)
    obs = np.asarray(obs, dtype=float)
    ok = np.isfinite(rep)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        hi = ((rep >= obs) & ok).sum(axis=0) / n
        lo = ((rep <= obs) & ok).sum(axis=0) / n
        p = np.minimum(1.0, 2.0 * np.minimum(hi, lo))
    return np.where((n > 0) & np.isfinite(obs), p, np.nan)


def _upper_ppp(rep: np.ndarray, obs: np.ndarray) -> float:
    """``P(D_rep >= D_obs)`` over the draws where both are finite."""
    ok = np.isfinite(rep) & np.isfinite(obs)
    return float(np.mean(rep[ok] >= obs[ok])) if ok.any() else float("nan")


def _mid_quantile(rep: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Where ``obs`` lies in the replicated distribution: ``P(T_rep < T_obs) + P(T_rep = T_obs) / 2``."""
    ok = np.isfinite(rep)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = (((rep < obs) & ok).sum(axis=0) + 0.5 * ((rep == obs) & ok).sum(axis=0)) / n
    return np.where((n > 0) & np.isfinite(obs), q, np.nan)


def _interval(a: np.ndarray, prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = (1.0 - prob) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanmean(a, axis=axis), np.nanquantile(a, lo, axis=axis), np.nanquantile(a, 1.0 - lo, axis=axis))


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (NaN where either is constant)."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, (x * y).sum(axis=-1) / np.where(den > 0, den, 1.0), np.nan)


def pairwise_spearman(data: np.ndarray, mask: np.ndarray, pairs: Sequence[tuple[int, int]],
                      min_n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Spearman rank correlations (Pearson correlations of average ranks, so ties are
    handled) of the item ``pairs`` over the firms answering both.

    ``data``: (..., F, I) answers; ``mask``: (F, I) which cells count (answered).
    Returns the correlations (..., n_pairs) and the number of firms per pair; NaN where
    fewer than ``min_n`` firms answer both or an item is constant on them.  Pairs sharing
    one set of firms share their ranks (complete data: one ranking per item)."""
    from scipy.stats import rankdata

    data = np.asarray(data, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    out = np.full(data.shape[:-2] + (len(pairs),), np.nan)
    n_pair = np.zeros(len(pairs), dtype=int)
    keys = []
    for a, b in pairs:
        m = mask[:, a] & mask[:, b]
        keys.append(m.tobytes())
    order = sorted(range(len(pairs)), key=lambda k: keys[k])
    current, ranks = None, {}
    for k in order:
        a, b = pairs[k]
        if keys[k] != current:  # one set of firms at a time: the ranks of the last one are dropped
            current, ranks = keys[k], {}
        m = mask[:, a] & mask[:, b]
        n_pair[k] = int(m.sum())
        if n_pair[k] < min_n:
            continue
        for j in (a, b):
            if j not in ranks:
                ranks[j] = rankdata(data[..., m, j], axis=-1)
        out[..., k] = _pearson(ranks[a], ranks[b])
    return out, n_pair


def _thin(n_total: int, max_draws: int | None) -> np.ndarray:
    """Evenly spaced draw positions (all of them without a limit)."""
    if not max_draws or n_total <= max_draws:
        return np.arange(n_total)
    return np.unique(np.round(np.linspace(0, n_total - 1, int(max_draws))).astype(int))


# ---------------------------------------------------------------------------- the result
@dataclass(frozen=True, eq=False)
class FitChecks:
    """The model checks of one fit (:func:`fit_checks`).

    ``global_checks``: one row per global check (``check``, ``statistic`` in words,
    ``estimate`` its posterior mean, ``lower``/``upper`` the central ``prob`` interval,
    ``replicated`` the mean replicated discrepancy where there is one, ``ppp`` and
    ``note``); ``items``: one row per item statistic (``item``, ``construct``, ``scale``,
    ``statistic``, ``observed``, replicated ``rep_mean``, ``rep_lower``, ``rep_upper``,
    ``quantile`` = P(T_rep < T_obs) + P(T_rep = T_obs) / 2, two-sided ``ppp``, ``flagged``);
    ``pairs``: one row per item pair (``item_a``, ``item_b``, ``n`` firms answering both,
    ``observed`` and mean ``replicated`` Spearman correlation, ``residual`` = observed -
    replicated, ``rep_lower``, ``rep_upper``, two-sided ``ppp``, ``flagged``); ``draws``:
    the per-draw values behind the global rows (``d_obs``, ``d_rep``, ``srmr``,
    ``srmr_rep``, and ``brmsea``, ``bcfi``, ``btli`` for all-continuous instruments);
    ``method``: ``"normal"`` (all-continuous: likelihood ratio against the saturated normal model) or
    ``"pairwise"`` (other instruments: the rank likelihood ratio and the pairwise G²); ``settings``: what was used (draws, seed, pD, ...);
    ``notes``: remarks on what could not be computed."""

    global_checks: pd.DataFrame
    items: pd.DataFrame
    pairs: pd.DataFrame
    draws: Mapping[str, np.ndarray]
    method: str
    item_names: tuple[str, ...]
    item_constructs: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def alpha(self) -> float:
        return float(self.settings.get("alpha", 0.05))

    @property
    def prob(self) -> float:
        return float(self.settings.get("prob", 0.9))

    @property
    def global_check(self) -> str:
        """The chi-square-type discrepancy of the instrument: ``chi2`` (all-continuous) or ``rank_lr``."""
        return "chi2" if self.method == "normal" else "rank_lr"

    @property
    def global_ppp(self) -> float:
        """The PPP of the chi-square-type discrepancy (:attr:`global_check`)."""
        return float(self.global_checks.set_index("check").loc[self.global_check, "ppp"])

    def flagged_items(self) -> pd.DataFrame:
        """The item statistics whose PPP is below ``alpha``."""
        return self.items[self.items["flagged"]]

    def flagged_pairs(self) -> pd.DataFrame:
        """The item pairs whose PPP is below ``alpha``."""
        return self.pairs[self.pairs["flagged"]]

    def _matrix(self, column: str) -> pd.DataFrame:
        names = list(self.item_names)
        M = pd.DataFrame(np.nan, index=names, columns=names)
        for r in self.pairs.itertuples(index=False):
            M.loc[r.item_a, r.item_b] = M.loc[r.item_b, r.item_a] = getattr(r, column)
        return M

    def residual_matrix(self) -> pd.DataFrame:
        """Residual Spearman correlations (observed - mean replicated) as an item x item table."""
        return self._matrix("residual")

    def ppp_matrix(self) -> pd.DataFrame:
        """The pairs' PPPs as an item x item table."""
        return self._matrix("ppp")

    def summary(self) -> pd.DataFrame:
        """One row per check: the global checks, then the item statistics and the item
        pairs (``estimate``: how many are flagged, ``ppp``: the smallest PPP)."""
        g = self.global_checks
        rows = [{"level": "global", "check": r.check, "estimate": r.estimate, "lower": r.lower, "upper": r.upper,
                 "ppp": r.ppp, "flagged": bool(np.isfinite(r.ppp) and r.ppp < self.alpha), "note": r.note}
                for r in g.itertuples(index=False)]
        for level, tab, what in (("item", self.items, "item statistics"), ("pair", self.pairs, "item pairs")):
            n_flag, n = int(tab["flagged"].sum()), int(tab["ppp"].notna().sum())
            rows.append({"level": level, "check": what, "estimate": float(n_flag), "lower": np.nan, "upper": np.nan,
                         "ppp": float(tab["ppp"].min()) if n else np.nan, "flagged": n_flag > 0,
                         "note": f"{n_flag} of {n} with PPP < {self.alpha:g} (about {self.alpha * n:.1f} expected "
                                 "by chance if the PPPs were uniform; they are conservative)"})
        return pd.DataFrame(rows, columns=["level", "check", "estimate", "lower", "upper", "ppp", "flagged", "note"])

    def text(self) -> str:
        """The checks in words: the global table, then the flagged items and pairs."""
        pct = f"{100 * self.prob:g}%"
        s = self.settings
        what = "likelihood ratio vs saturated normal" if self.method == "normal" else "rank likelihood ratio"
        lines = [f"Model checks ({what}, {s.get('n_draws')} posterior draws, seed {s.get('seed')})", "", "Global"]
        for r in self.global_checks.itertuples(index=False):
            ppp = "" if not np.isfinite(r.ppp) else f"  PPP {r.ppp:.3f}"
            ci = f" [{r.lower:.3f}, {r.upper:.3f}] ({pct})" if np.isfinite(r.lower) else ""
            lines.append(f"  {r.check:<12} {r.estimate:9.3f}{ci}{ppp}")
            if r.note:
                lines.append(f"  {'':<12} {r.note}")
        fi = self.flagged_items()
        lines += ["", f"Item statistics: {len(fi)} of {int(self.items['ppp'].notna().sum())} with PPP < {self.alpha:g}"]
        for r in fi.itertuples(index=False):
            lines.append(f"  {r.item} {r.statistic}: observed {r.observed:.3g}, replicated {r.rep_mean:.3g} "
                         f"[{r.rep_lower:.3g}, {r.rep_upper:.3g}], PPP {r.ppp:.3f}")
        fp = self.flagged_pairs()
        lines += ["", f"Item pairs: {len(fp)} of {int(self.pairs['ppp'].notna().sum())} with PPP < {self.alpha:g}"]
        for r in fp.itertuples(index=False):
            lines.append(f"  {r.item_a} - {r.item_b}: Spearman observed {r.observed:.3f}, replicated "
                         f"{r.replicated:.3f}, residual {r.residual:+.3f}, PPP {r.ppp:.3f}")
        for n in self.notes:
            lines.append(f"Note: {n}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the per-draw values, as plain JSON-ready values (NaN as None)."""
        def clean(x):
            if isinstance(x, dict):
                return {str(k): clean(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            if isinstance(x, (np.bool_, bool)):
                return bool(x)
            if isinstance(x, (np.integer,)):
                return int(x)
            if isinstance(x, (float, np.floating)):
                return None if not math.isfinite(float(x)) else float(x)
            return x

        return clean({
            "method": self.method,
            "settings": dict(self.settings),
            "global": self.global_checks.to_dict("records"),
            "items": self.items.to_dict("records"),
            "pairs": self.pairs.to_dict("records"),
            "notes": list(self.notes),
        })

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    #: the tables :meth:`write_tables` writes, file name -> what
    TABLES = {"summary.csv": "one row per check (:meth:`summary`)", "global.csv": "the global checks",
              "items.csv": "every item statistic", "pairs.csv": "every item pair"}

    def write_tables(self, folder) -> list:
        """Write :attr:`TABLES` into ``folder`` (created if missing) and return their paths."""
        from pathlib import Path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tables = (self.summary(), self.global_checks, self.items, self.pairs)
        paths = [folder / name for name in self.TABLES]
        for table, path in zip(tables, paths):
            table.to_csv(path, index=False)
        return paths


# ---------------------------------------------------------------------------- entry point
def fit_checks(fit, spec: Spec | None = None, *, seed: int, max_draws: int | None = 500, prob: float = 0.9,
               alpha: float = 0.05, model_firms: int = 1000, global_draws: int | None = 200,
               table_cells: int | None = 2, pd_method: str = "loo") -> FitChecks:
    """Posterior predictive model checks of ``fit`` (:class:`FitChecks`).

    ``spec``: the fit's spec (default: the one stored in the fit); ``seed``: the seed of
    the replicated surveys of the global checks and of the independence model's draws;
    ``max_draws``: at most this many posterior draws, evenly spaced (None: all);
    ``prob``: the level of the intervals; ``alpha``: items and pairs with a PPP below it
    are flagged.  Instruments with other than continuous items only: ``global_draws``
    draws (of those) for the global checks, each with ``model_firms`` simulated firms for
    the model-implied Spearman correlations and bivariate tables; ``table_cells``: each
    item's answer cells (:meth:`~smeintl.families.Family.check_cells`) merged into at most
    this many groups of adjacent cells with about equal observed shares for the pairwise
    G² (default 2: each item split near its observed median; None: the cells as they
    are).  ``pd_method``: the effective number of parameters of BRMSEA and BTLI,
    ``"loo"`` (PSIS-LOO's p_loo, on the complete cases) or ``"count"`` (the number of
    free parameters).

    Needs the fit's ``posterior``, ``posterior_predictive`` and ``observed_data`` groups.
    """
    t0 = time.perf_counter()
    if pd_method not in ("loo", "count"):
        raise ValueError(f"pd_method must be 'loo' or 'count', got {pd_method!r}")
    if not 0 < prob < 1 or not 0 < alpha < 1:
        raise ValueError("prob and alpha must be in (0, 1)")
    if int(model_firms) < 100:
        raise ValueError(f"model_firms must be at least 100, got {model_firms!r}")
    if table_cells is not None and int(table_cells) < 2:
        raise ValueError(f"table_cells must be at least 2 or None, got {table_cells!r}")
    fit = compat.as_fit(fit)
    for name in ("posterior", "posterior_predictive", "observed_data"):
        if not compat.has_group(fit, name):
            raise ValueError(f"the fit has no {name!r} group: the model checks need the posterior, the posterior "
                             "predictive and the observed data (refit with posterior_predictive=True)")
    if spec is None:
        if "spec_text" not in fit.attrs:
            raise ValueError("the fit stores no spec (attrs['spec_text']): pass spec=")
        spec = parse_spec(fit.attrs["spec_text"], source="<spec stored in the fit>")
    lay = ItemLayout.from_spec(spec)
    obs, pp = compat.group(fit, "observed_data"), compat.group(fit, "posterior_predictive")
    missing = [n for n in lay.names if n not in obs or n not in pp]
    if missing:
        raise ValueError(f"the fit's observed data or posterior predictive lacks the spec's items {missing}")
    X = np.column_stack([np.asarray(obs[n].values, dtype=float) for n in lay.names])
    mask = np.isfinite(X)
    n_total = int(pp.sizes["chain"] * pp.sizes["draw"])
    idx = _thin(n_total, max_draws)
    Y = np.stack([np.asarray(pp[n].values, dtype=float).reshape(n_total, -1)[idx] for n in lay.names], axis=-1)
    notes: list[str] = []

    items = _item_checks(spec, X, mask, Y, prob, alpha)
    pairs_idx = [(a, b) for a in range(len(lay.names)) for b in range(a + 1, len(lay.names))]
    pairs = _pair_checks(lay, X, mask, Y, pairs_idx, prob, alpha)
    del Y

    P = {k: v[idx] for k, v in posterior_params(fit, spec).items() if k != "eta"}
    grouped = "group_mean" in P and "group" in obs
    g = np.asarray(obs["group"].values, dtype=int) if grouped else np.zeros(X.shape[0], dtype=int)
    std = fit_standardization(fit)
    rng = np.random.default_rng([int(seed), 20240])
    settings: dict[str, Any] = {"seed": int(seed), "n_draws": int(idx.size), "n_draws_total": n_total,
                                "prob": float(prob), "alpha": float(alpha), "n_firms": int(X.shape[0]),
                                "item_ppp": "two-sided: 2 min(P(T_rep >= T_obs), P(T_rep <= T_obs))",
                                "global_ppp": "one-sided: P(D_rep >= D_obs)"}
    if lay.all_continuous:
        method = "normal"
        table, per_draw, extra = _continuous_global(fit, lay, P, X, g if grouped else None, std, rng, prob,
                                                    pd_method, notes)
    else:
        method = "pairwise"
        gidx = _thin(idx.size, global_draws)
        table, per_draw, extra = _pairwise_global(lay, spec, {k: v[gidx] for k, v in P.items()}, X, mask, g, grouped,
                                                  std, rng, prob, pairs_idx, int(model_firms), table_cells,
                                                  notes)
        settings["n_draws_global"] = int(gidx.size)
    settings.update(extra)
    settings["seconds"] = time.perf_counter() - t0
    return FitChecks(table, items, pairs, per_draw, method, tuple(lay.names),
                     tuple(lay.constructs[c] for c in lay.construct), settings, tuple(notes))


# ---------------------------------------------------------------------------- items and pairs
def _item_checks(spec: Spec, X, mask, Y, prob, alpha) -> pd.DataFrame:
    rows = []
    for k, it in enumerate(spec.items):
        fam = it.family
        m = mask[:, k]
        so = np.atleast_1d(np.asarray(fam.check_statistics(X[m, k], it), dtype=float))
        sr = np.asarray(fam.check_statistics(Y[:, m, k], it), dtype=float).reshape(Y.shape[0], -1)
        names = fam.check_statistic_names(it)
        ppp = two_sided_ppp(sr, so)
        q = _mid_quantile(sr, so)
        mean, lo, hi = _interval(sr, prob)
        for j, name in enumerate(names):
            rows.append({"item": it.name, "construct": it.construct, "scale": it.scale, "statistic": name,
                         "observed": so[j], "rep_mean": mean[j], "rep_lower": lo[j], "rep_upper": hi[j],
                         "quantile": q[j], "ppp": ppp[j], "n": int(m.sum())})
    out = pd.DataFrame(rows)
    out["flagged"] = (out["ppp"] < alpha).fillna(False).astype(bool)
    return out


def _pair_checks(lay: ItemLayout, X, mask, Y, pairs, prob, alpha) -> pd.DataFrame:
    r_obs, n = pairwise_spearman(X, mask, pairs)
    r_rep, _ = pairwise_spearman(Y, mask, pairs)
    mean, lo, hi = _interval(r_rep, prob)
    ppp = two_sided_ppp(r_rep, r_obs)
    out = pd.DataFrame({
        "item_a": [lay.names[a] for a, _ in pairs], "item_b": [lay.names[b] for _, b in pairs],
        "construct_a": [lay.constructs[lay.construct[a]] for a, _ in pairs],
        "construct_b": [lay.constructs[lay.construct[b]] for _, b in pairs],
        "n": n, "observed": r_obs, "replicated": mean, "residual": r_obs - mean, "rep_lower": lo, "rep_upper": hi,
        "ppp": ppp,
    })
    out["flagged"] = (out["ppp"] < alpha).fillna(False).astype(bool)
    return out


# ---------------------------------------------------------------------------- population replicates
def _latent_draws(P, g, n_firms: int, C: int, rng) -> np.ndarray:
    """Latent scores of ``n_firms`` new firms per draw from the population model: the
    group mean of each firm's group (``g``; none where the fit has no group level) plus
    correlated standard normal scores, (S, n_firms, C)."""
    S = P["loading"].shape[0]
    R = P["corr"] if "corr" in P else np.ones((S, 1, 1))
    L = np.linalg.cholesky(R)
    eta = np.einsum("sij,sfj->sfi", L, rng.standard_normal((S, n_firms, C)))
    if g is not None and "group_mean" in P:
        eta = eta + P["group_mean"][:, g]
    return eta


def _global_row(check: str, values: np.ndarray, prob: float, ppp: float = np.nan, replicated: float = np.nan,
                note: str = "") -> dict[str, Any]:
    values = np.asarray(values, dtype=float)
    m, lo, hi = _interval(values, prob)
    if values.size == 1:  # a point value: no interval
        lo = hi = np.nan
    return {"check": check, "statistic": GLOBAL_CHECKS[check], "estimate": float(m), "lower": float(lo),
            "upper": float(hi), "replicated": float(replicated), "ppp": float(ppp), "note": note}


_GLOBAL_COLUMNS = ["check", "statistic", "estimate", "lower", "upper", "replicated", "ppp", "note"]


# ---------------------------------------------------------------------------- all-continuous
def _moments(Z: np.ndarray, g: np.ndarray, G: int) -> tuple[np.ndarray, np.ndarray]:
    """Group means (..., G, p) and the pooled within-group covariance (..., p, p), divisor n."""
    n = Z.shape[-2]
    oh = np.zeros((n, G))
    oh[np.arange(n), g] = 1.0
    counts = oh.sum(0)
    means = np.einsum("...np,ng->...gp", Z, oh) / counts[:, None]
    C = Z - means[..., g, :]
    return means, np.einsum("...ni,...nj->...ij", C, C) / n


def _wishart(L: np.ndarray, df: int, rng) -> np.ndarray:
    """Wishart(df, L L') draws, one per leading row of the Cholesky factors ``L`` (S, p, p),
    by Bartlett's decomposition."""
    S, p, _ = L.shape
    A = np.tril(rng.standard_normal((S, p, p)), k=-1)
    idx = np.arange(p)
    A[:, idx, idx] = np.sqrt(rng.chisquare(df - idx, size=(S, p)))
    LA = L @ A
    return LA @ LA.transpose(0, 2, 1)


def _lr(Sigma, mu, means, SW, w, n) -> np.ndarray:
    """-2 (log L(model) - log L(saturated)) per draw: ``n [tr(Sigma^-1 S_W) + sum_g w_g
    (ybar_g - mu_g)' Sigma^-1 (ybar_g - mu_g) + log|Sigma| - log|S_W| - p]``."""
    p = Sigma.shape[-1]
    Sinv = np.linalg.inv(Sigma)
    d = means - mu
    quad = np.einsum("...gi,...ij,...gj,g->...", d, Sinv, d, w)
    tr = np.einsum("...ij,...ji->...", Sinv, SW)
    return n * (tr + quad + np.linalg.slogdet(Sigma)[1] - np.linalg.slogdet(SW)[1] - p)


def _residuals(S: np.ndarray, Sigma: np.ndarray) -> np.ndarray:
    """Bentler's standardized covariance residuals ``(s_ij - sigma_ij) / sqrt(s_ii s_jj)``,
    i <= j (lavaan's ``srmr`` without a mean structure), broadcast over leading axes: (..., p(p+1)/2)."""
    p = S.shape[-1]
    d = np.sqrt(np.diagonal(S, axis1=-2, axis2=-1))
    E = (S - Sigma) / (d[..., :, None] * d[..., None, :])
    iu = np.triu_indices(p)
    return E[..., iu[0], iu[1]]


def _srmr_adjusted(sq: np.ndarray, spread: float) -> np.ndarray:
    """Per draw, ``sqrt(max(0, mean squared residual - spread))``: ``spread`` is the
    posterior variance of the residuals averaged over them, by which the mean squared
    residual of a draw exceeds that of the posterior mean on average (the SRMR analogue of
    subtracting pD from the discrepancy)."""
    return np.sqrt(np.maximum(sq - spread, 0.0))


def _p_loo(ll: np.ndarray) -> float:
    """PSIS-LOO's effective number of parameters of pointwise log-likelihoods (S, n)."""
    S, n = ll.shape
    tree = compat.fit_from_dict({"posterior": {"draw_index": np.arange(S, dtype=float)[None]},
                                 "log_likelihood": {"obs": ll[None]}}, dims={"obs": ["obs_id"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(compat.loo(tree, "obs").p_loo)


def _continuous_global(fit, lay: ItemLayout, P, X, g, std, rng, prob, pd_method, notes):
    if std is None:
        raise ValueError("the fit has no standardization of its continuous items (attrs['standardization'])")
    S, p, C = P["loading"].shape[0], X.shape[1], len(lay.constructs)
    Z = (X - std["mean"]) / std["sd"]
    cc = np.isfinite(Z).all(axis=1)
    n = int(cc.sum())
    if n <= p + 1:
        raise ValueError(f"only {n} firms answer every item: too few for the likelihood-ratio check of {p} items")
    if n < Z.shape[0]:
        notes.append(f"the global checks use the {n} of {Z.shape[0]} firms that answer every item (complete cases)")
    Zc = Z[cc]
    if g is None:
        gc, G, used = np.zeros(n, dtype=int), 1, np.zeros(1, dtype=int)
    else:
        used, gc = np.unique(g[cc], return_inverse=True)
        G = used.size
    counts = np.bincount(gc, minlength=G).astype(float)
    w = counts / n
    onehot = np.zeros((p, C))
    onehot[np.arange(p), lay.construct] = 1.0
    Lam = onehot[None] * (P["loading"] * lay.sign)[:, :, None]  # (S, p, C)
    R = P["corr"] if "corr" in P else np.ones((S, 1, 1))
    Sigma = Lam @ R @ Lam.transpose(0, 2, 1) + np.einsum("si,ij->sij", P["cont_sigma"] ** 2, np.eye(p))
    mu = np.broadcast_to(P["cont_intercept"][:, None, :], (S, G, p)).copy()
    if g is not None:
        mu = mu + np.einsum("sic,sgc->sgi", Lam, P["group_mean"][:, used])
    means, SW = _moments(Zc, gc, G)
    d_obs = _lr(Sigma, mu, means[None], SW[None], w, n)
    # replicated: the complete-case firms (same groups) drawn from the draw's marginal normal, through
    # their sufficient statistics (group means normal, n S_W Wishart with n - G degrees of freedom)
    Lc = np.linalg.cholesky(Sigma)
    means_r = mu + np.einsum("sij,sgj->sgi", Lc, rng.standard_normal((S, G, p))) / np.sqrt(counts)[None, :, None]
    SW_r = _wishart(Lc, n - G, rng) / n
    d_rep = _lr(Sigma, mu, means_r, SW_r, w, n)

    E_obs = _residuals(SW[None], Sigma)  # (S, p(p+1)/2)
    s_obs = np.sqrt(np.mean(E_obs**2, axis=-1))
    s_rep = np.sqrt(np.mean(_residuals(SW_r, Sigma) ** 2, axis=-1))
    s_point = float(np.sqrt(np.mean(_residuals(SW, Sigma.mean(axis=0)) ** 2)))
    s_adj = _srmr_adjusted(np.mean(E_obs**2, axis=-1), float(np.mean(E_obs.var(axis=0))))

    # the independence (null) model: exact posterior under p(mean, var) ~ 1/var per item
    dfw = n - G
    ybar = means  # (G, p)
    ssw = np.diagonal(SW) * n  # (p,)
    sig2 = ssw[None, :] / rng.chisquare(dfw, size=(S, p))
    m0 = ybar[None] + np.sqrt(sig2[:, None, :] / counts[None, :, None]) * rng.standard_normal((S, G, p))
    Sigma0 = np.einsum("si,ij->sij", sig2, np.eye(p))
    d_null = _lr(Sigma0, m0, means[None], SW[None], w, n)

    p_star = G * p + p * (p + 1) // 2
    n_free = 3 * p + C * (C - 1) // 2 + (C * (G - 1) + C if g is not None else 0)
    n_free_null = G * p + p
    if pd_method == "loo":
        Sinv, logdet = np.linalg.inv(Sigma), np.linalg.slogdet(Sigma)[1]
        ll, ll0 = np.empty((S, n)), np.empty((S, n))
        step = max(1, int(4e6 // (n * p)))  # draws per batch: a few tens of MB
        for a in range(0, S, step):
            b = slice(a, min(S, a + step))
            diff = Zc[None] - mu[b][:, gc, :]
            ll[b] = -0.5 * (np.einsum("sni,sij,snj->sn", diff, Sinv[b], diff) + logdet[b][:, None]
                            + p * np.log(2 * np.pi))
            diff0 = Zc[None] - m0[b][:, gc, :]
            ll0[b] = -0.5 * ((diff0**2 / sig2[b][:, None, :]).sum(-1) + np.log(sig2[b]).sum(-1)[:, None]
                             + p * np.log(2 * np.pi))
        pd_h, pd_0 = _p_loo(ll), _p_loo(ll0)
    else:
        pd_h, pd_0 = float(n_free), float(n_free_null)
    df_h, df_0 = p_star - pd_h, p_star - pd_0
    if df_h <= 0:
        notes.append(f"p* = {p_star} sample moments do not exceed pD = {pd_h:.1f}: BRMSEA, BCFI and BTLI are undefined")
    chi_h, chi_0 = d_obs - pd_h, d_null - pd_0
    with np.errstate(invalid="ignore", divide="ignore"):
        brmsea = np.sqrt(np.maximum(chi_h - df_h, 0.0) / (df_h * n))
        bcfi = 1.0 - np.maximum(chi_h - df_h, 0.0) / (chi_0 - df_0)
        btli = (chi_0 / df_0 - chi_h / df_h) / (chi_0 / df_0 - 1.0)
    rows = [
        _global_row("chi2", d_obs, prob, _upper_ppp(d_rep, d_obs), float(np.mean(d_rep)),
                    f"realized discrepancy; replicated mean {np.mean(d_rep):.1f}; p* = {p_star}, pD = {pd_h:.1f}, "
                    f"df = p* - pD = {df_h:.1f}"),
        _global_row("srmr", s_obs, prob, _upper_ppp(s_rep, s_obs), float(np.mean(s_rep)),
                    "each draw's model-implied covariance vs the sample covariance (divisor n)"),
        _global_row("srmr_adjusted", s_adj, prob,
                    note=f"at the posterior mean of the implied covariance: {s_point:.3f} (comparable with "
                         "lavaan's SRMR)"),
        _global_row("brmsea", brmsea, prob, note=f"chi2 = D - pD, df = {df_h:.1f}, N = {n}"),
        _global_row("bcfi", bcfi, prob, note=f"independence model: pD = {pd_0:.1f}, df = {df_0:.1f}"),
        _global_row("btli", btli, prob, note="independence model as for BCFI"),
    ]
    per_draw = {"d_obs": d_obs, "d_rep": d_rep, "srmr": s_obs, "srmr_rep": s_rep, "srmr_adjusted": s_adj,
                "d_null": d_null, "brmsea": brmsea, "bcfi": bcfi, "btli": btli}
    extra = {"srmr_point": s_point, "n_complete": n, "groups": int(G), "p_star": int(p_star), "pd": float(pd_h),
             "pd_null": float(pd_0),
             "pd_method": pd_method, "n_free_parameters": int(n_free), "n_free_parameters_null": int(n_free_null),
             "replicates": "marginal normal of each draw (new latent scores), complete-case firms",
             "null_model": "independent normal items (means per group, one variance per item), "
                           "exact posterior under p(mean, variance) ~ 1 / variance"}
    return pd.DataFrame(rows, columns=_GLOBAL_COLUMNS), per_draw, extra


# ---------------------------------------------------------------------------- other instruments
def _codes(spec: Spec, X, mask, V) -> tuple[np.ndarray, np.ndarray]:
    """Cells of every answer of ``V`` (..., F, I) per item's family, and the number of cells per item."""
    out = np.empty(V.shape, dtype=np.int64)
    k_cells = np.zeros(len(spec.items), dtype=int)
    for k, it in enumerate(spec.items):
        out[..., k], k_cells[k] = it.family.check_cells(V[..., k], it, X[mask[:, k], k])
    return out, k_cells


def _coarsen(codes: np.ndarray, k: int, m: int | None) -> np.ndarray:
    """A map of ``k`` ordered cells onto at most ``m`` groups of adjacent cells with about
    equal shares of the observed ``codes`` (cells without an answer join a neighbour)."""
    if not m or k <= m:
        return np.arange(k)
    counts = np.bincount(codes[codes >= 0], minlength=k).astype(float)
    cum = np.cumsum(counts) / max(counts.sum(), 1.0)
    # cell c joins group floor(m * share of answers below its middle)
    mid = cum - counts / max(counts.sum(), 1.0) / 2.0
    g = np.minimum((mid * m).astype(int), m - 1)
    return np.unique(g, return_inverse=True)[1]


def _normal_scores(V: np.ndarray) -> np.ndarray:
    """Each column's van der Waerden normal scores over the rows (axis -2; ties share their
    average rank): ``Phi^-1((rank - 1/2) / n)``."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    return ndtri((rankdata(V, axis=-2) - 0.5) / V.shape[-2])


def _correlation(Z: np.ndarray) -> np.ndarray:
    """Correlation matrices of the columns of ``Z`` (..., n, p) (NaN for a constant column)."""
    Z = Z - Z.mean(axis=-2, keepdims=True)
    C = np.einsum("...ni,...nj->...ij", Z, Z)
    d = np.sqrt(np.diagonal(C, axis1=-2, axis2=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return C / (d[..., :, None] * d[..., None, :])


def _rank_lr(Rm: np.ndarray, R: np.ndarray, n: int) -> np.ndarray:
    """The normal likelihood-ratio discrepancy of the correlation matrix ``R`` of ``n``
    firms' normal scores against ``Rm``: ``n [tr(Rm^-1 R) + log|Rm| - log|R| - p]``
    (NaN where a matrix is not positive definite)."""
    p = R.shape[-1]
    with np.errstate(invalid="ignore"):
        s_m, ld_m = np.linalg.slogdet(Rm)
        s_r, ld_r = np.linalg.slogdet(R)
        tr = np.einsum("...ij,...ji->...", np.linalg.inv(Rm), R)
        return np.where((s_m > 0) & (s_r > 0), n * (tr + ld_m - ld_r - p), np.nan)


def _tables(ca: np.ndarray, cb: np.ndarray, kb: int, kab: int) -> np.ndarray:
    """Counts of the bivariate table of cells ``ca``, ``cb`` (B, n; -1 left out) per leading row: (B, kab)."""
    B = ca.shape[0]
    ok = (ca >= 0) & (cb >= 0)
    flat = (np.arange(B)[:, None] * kab + ca * kb + cb)[ok]
    return np.bincount(flat, minlength=B * kab).reshape(B, kab).astype(float)


def _g2(O: np.ndarray, E: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * np.where(O > 0, O * np.log(O / E), 0.0).sum(axis=-1)


def _g2_association(O: np.ndarray, E: np.ndarray, ka: int, kb: int) -> np.ndarray:
    """The G² of the bivariate tables ``O`` against ``E`` (B, ka kb) less the G² of their two
    univariate margins: the part of the misfit in the association of the two items (each
    item's own distribution is what the item checks compare, and the fit has tuned the
    margins to the observed data, which would hide a misfit in the associations)."""
    Ot, Et = O.reshape(-1, ka, kb), E.reshape(-1, ka, kb)
    return _g2(O, E) - _g2(Ot.sum(-1), Et.sum(-1)) - _g2(Ot.sum(-2), Et.sum(-2))

#: added to every cell of a model-implied bivariate table before it is normalized
TABLE_SMOOTHING = 0.5


def _pairwise_global(lay: ItemLayout, spec: Spec, P, X, mask, g, grouped, std, rng, prob, pairs, n_model,
                     table_cells, notes):
    S, F, C = P["loading"].shape[0], X.shape[0], len(lay.constructs)
    r_obs, _ = pairwise_spearman(X, mask, pairs)
    codes_obs, k_cells = _codes(spec, X, mask, X)
    maps = [_coarsen(codes_obs[:, k][mask[:, k]], int(k_cells[k]), table_cells) for k in range(X.shape[1])]
    k_cells = np.array([int(mp.max()) + 1 for mp in maps])

    def coarse(codes):
        out = np.full(codes.shape, -1, dtype=np.int64)
        for k, mp in enumerate(maps):
            ok = codes[..., k] >= 0
            out[..., k][ok] = mp[codes[..., k][ok]]
        return out

    codes_obs = coarse(codes_obs)
    g_model = np.resize(g, n_model)
    sq, sq_rep = np.empty(S), np.empty(S)
    R1, R2 = np.empty((S, len(pairs))), np.empty((S, len(pairs)))
    half = n_model // 2
    g2_obs, g2_rep = np.zeros(S), np.zeros(S)
    # the rank likelihood ratio: the firms answering every item, their items' normal scores
    cc = mask.all(axis=1)
    n_cc = int(cc.sum())
    use_lr = n_cc > X.shape[1] + 1
    lr_obs, lr_rep = np.full(S, np.nan), np.full(S, np.nan)
    if use_lr:
        R_obs = _correlation(_normal_scores(X[cc]))
        use_lr = bool(np.isfinite(R_obs).all())
    batch = max(1, int(2e6 // max(1, (n_model + F) * X.shape[1])))
    for a0 in range(0, S, batch):
        sl = slice(a0, min(S, a0 + batch))
        Pb = {k: v[sl] for k, v in P.items()}
        # the model: a large simulated sample per draw (complete); a replicate of the survey (its missingness)
        Ym = draw_items(Pb, _latent_draws(Pb, g_model if grouped else None, n_model, C, rng), lay, rng,
                        standardization=std)
        Yr = draw_items(Pb, _latent_draws(Pb, g if grouped else None, F, C, rng), lay, rng, standardization=std)
        Yr[:, ~mask] = np.nan
        # the draw's population correlations from two independent halves of the simulated firms:
        # (r - r_1)(r - r_2) estimates (r - rho)^2 without the simulation's own noise
        full = np.ones((half, X.shape[1]), dtype=bool)
        r1, _ = pairwise_spearman(Ym[:, :half], full, pairs)
        r2, _ = pairwise_spearman(Ym[:, half:2 * half], full, pairs)
        R1[sl], R2[sl] = r1, r2
        if use_lr:
            Rm = _correlation(_normal_scores(Ym))
            lr_obs[sl] = _rank_lr(Rm, R_obs[None], n_cc)
            lr_rep[sl] = _rank_lr(Rm, _correlation(_normal_scores(Yr[:, cc])), n_cc)
        r_rep, _ = pairwise_spearman(Yr, mask, pairs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sq[sl] = np.nanmean((r_obs[None] - r1) * (r_obs[None] - r2), axis=-1)
            sq_rep[sl] = np.nanmean((r_rep - r1) * (r_rep - r2), axis=-1)
        cm, cr = coarse(_codes(spec, X, mask, Ym)[0]), coarse(_codes(spec, X, mask, Yr)[0])
        for a, b in pairs:
            kb, kab = int(k_cells[b]), int(k_cells[a] * k_cells[b])
            O = _tables(codes_obs[None, :, a], codes_obs[None, :, b], kb, kab)[0]
            n_ab = O.sum()
            if n_ab == 0:
                continue
            M = _tables(cm[..., a], cm[..., b], kb, kab)
            E = n_ab * (M + TABLE_SMOOTHING) / (M.sum(-1, keepdims=True) + TABLE_SMOOTHING * kab)
            ka = int(k_cells[a])
            g2_obs[sl] += _g2_association(O[None], E, ka, kb)
            g2_rep[sl] += _g2_association(_tables(cr[..., a], cr[..., b], kb, kab), E, ka, kb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        srmr, srmr_rep = np.sqrt(np.maximum(sq, 0.0)), np.sqrt(np.maximum(sq_rep, 0.0))
        rho = np.nanmean((R1 + R2) / 2.0, axis=0)  # the model-implied correlations, averaged over the draws
        point = float(np.sqrt(np.nanmean((r_obs - rho) ** 2)))
        # the posterior variance of each implied correlation: the covariance of the two halves over the draws
        spread = float(np.nanmean(np.nanmean((R1 - np.nanmean(R1, 0)) * (R2 - np.nanmean(R2, 0)), axis=0)))
    s_adj = _srmr_adjusted(sq, spread)
    p = X.shape[1]
    if not use_lr:
        notes.append(f"the rank likelihood ratio needs more than {p + 1} firms answering every item, each item "
                     f"varying among them ({n_cc} answer every item)")
    elif n_cc < F:
        notes.append(f"the rank likelihood ratio uses the {n_cc} of {F} firms that answer every item")
    rows = [
        _global_row("rank_lr", lr_obs, prob, _upper_ppp(lr_rep, lr_obs), float(np.nanmean(lr_rep)),
                    f"normal scores of the {n_cc} firms answering every item; model-implied correlations from "
                    f"{n_model} simulated firms per draw; {p * (p - 1) // 2} correlations"),
        _global_row("pairwise_g2", g2_obs, prob, _upper_ppp(g2_rep, g2_obs), float(np.mean(g2_rep)),
                    f"association part (table less its margins) of {len(pairs)} item pairs' tables, "
                    f"{'cells as they are' if not table_cells else f'at most {table_cells} cells per item'}; "
                    f"expected tables from {n_model} simulated firms per draw (+{TABLE_SMOOTHING:g} per cell)"),
        _global_row("srmr", srmr, prob, _upper_ppp(srmr_rep, srmr), float(np.mean(srmr_rep)),
                    "Spearman correlations, observed vs each draw's model-implied ones (simulated; the "
                    "simulation's noise removed)"),
        _global_row("srmr_adjusted", s_adj, prob,
                    note=f"at the model-implied correlations averaged over the draws: {point:.3f}"),
    ]
    per_draw = {"d_obs": lr_obs, "d_rep": lr_rep, "g2_obs": g2_obs, "g2_rep": g2_rep, "srmr": srmr,
                "srmr_rep": srmr_rep, "srmr_adjusted": s_adj}
    extra = {"srmr_point": point, "model_firms": int(n_model), "n_pairs": len(pairs), "n_complete": n_cc,
             "cells": {n: int(k) for n, k in zip(lay.names, k_cells)},
             "replicates": "population model of each draw (new latent scores), the survey's firms, groups and "
                           "missing answers",
             "table_smoothing": TABLE_SMOOTHING, "table_cells": table_cells}
    return pd.DataFrame(rows, columns=_GLOBAL_COLUMNS), per_draw, extra
