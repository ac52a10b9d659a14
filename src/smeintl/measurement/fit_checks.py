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
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .. import compat
from ..spec import Spec, parse_spec
from .generative import posterior_params
from .io import fit_standardization
from .global_checks import GLOBAL_CHECKS, _continuous_global, _interval, _pairwise_global, pairwise_spearman
from .layout import ItemLayout

__all__ = ["FitChecks", "fit_checks", "two_sided_ppp", "pairwise_spearman", "GLOBAL_CHECKS"]


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


def _mid_quantile(rep: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Where ``obs`` lies in the replicated distribution: ``P(T_rep < T_obs) + P(T_rep = T_obs) / 2``."""
    ok = np.isfinite(rep)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = (((rep < obs) & ok).sum(axis=0) + 0.5 * ((rep == obs) & ok).sum(axis=0)) / n
    return np.where((n > 0) & np.isfinite(obs), q, np.nan)


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
