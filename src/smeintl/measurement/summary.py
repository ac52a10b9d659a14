"""Parameter tables of a fit: the full parameter table (lavaan's ``parameterEstimates``
and ``standardizedSolution`` in one: every parameter with its posterior mean, sd,
central interval, R-hat and bulk ESS), loadings (raw and standardized), cutpoints,
latent correlation, group means, latent scores and reliability; the fit's leave-one-firm-out
LOO with the latent scores integrated out (:mod:`.loo`) and, for a fit with group
deviations of its item parameters, the items' invariance table (:mod:`.invariance`)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import compat
from ..families import ParameterRow
from ..spec import Spec, parse_spec
from .diagnostics import Diagnostics, fit_diagnostics
from .generative import posterior_params
from .io import fit_standardization
from .layout import ItemLayout

__all__ = ["FitSummary", "summarize_fit", "parameter_table", "parameter_rows", "invariance_text", "PARAMETER_COLUMNS",
           "BLOCKS", "DEVIATION_BLOCKS"]

#: the columns of :func:`parameter_table`, in order
PARAMETER_COLUMNS = ("block", "lhs", "op", "rhs", "group", "item", "construct", "label", "scale", "variable",
                     "mean", "sd", "lower", "upper", "rhat", "ess_bulk")

#: the blocks of the parameter table in the order it lists them, with their titles; a block
#: an item family adds beyond these comes after ``precision``
BLOCKS = {
    "loading": "Loadings (=~): change per latent sd (1 within group), reverse-coded items negative;\n"
               "  scale data: item units, logit / log: the link scale, standardized: latent response",
    "intercept": "Intercepts (~1): the linear predictor at latent score 0 (data: the expected answer)",
    "threshold": "Thresholds and cutpoints (|, logit scale)",
    "residual_sd": "Residual sds (~~, data units)",
    "dispersion": "Inverse dispersion (~~): 1/alpha, Var = mu + mu^2/alpha",
    "precision": "Beta precision (~~): phi of interior answers",
    "correlation": "Latent correlations (~~, within group)",
    "group_mean": "Group latent means (~1, sum to zero over groups)",
    "group_sd": "Sd of the group latent means (~~)",
    "omega": "Reliability (omega; latent response where a construct has non-linear items)",
}
_FAMILY_END = list(BLOCKS).index("precision") + 1
#: the blocks of a fit with group deviations of its item parameters (``invariance``), listed
#: after ``group_sd``
DEVIATION_BLOCKS = {
    "loading_deviation": "Group deviations of the loadings (log scale: group loading = loading * exp(dev), sum to "
                         "zero over groups)",
    "intercept_deviation": "Group deviations of the locations (link scale, added to the linear predictor; ordinal "
                           "cutpoints move against them; sum to zero over groups)",
}


@dataclass(frozen=True)
class FitSummary:
    """Parameter tables of a fit (each a DataFrame) and its diagnostics.

    ``parameters``: :func:`parameter_table` (every parameter, one row each); ``metadata``:
    what the exports record about the fit (spec, data hash, seed, interval probability);
    ``invariance``: :func:`~smeintl.measurement.invariance.item_invariance` for a fit with
    group deviations of its item parameters, else an empty table.

    :attr:`loo` (the leave-one-firm-out LOO with the latent scores integrated out,
    :func:`~smeintl.measurement.loo.fit_loo`) is computed on first access (:meth:`text`,
    :meth:`to_dict` and the exports access it) and kept.
    """

    loadings: pd.DataFrame
    cutpoints: pd.DataFrame
    correlation: pd.DataFrame
    group_means: pd.DataFrame
    latent_scores: pd.DataFrame
    reliability: pd.DataFrame
    diagnostics: Diagnostics
    parameters: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(PARAMETER_COLUMNS)))
    metadata: dict[str, Any] = field(default_factory=dict)
    invariance: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: (fit, spec) the LOO is computed from, or None (no LOO); the computed LOO or the reason it failed
    loo_source: Any = field(default=None, repr=False, compare=False)
    _loo_cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def loo(self):
        """The fit's leave-one-firm-out PSIS-LOO with the latent scores integrated out
        (:class:`~smeintl.measurement.loo.FitLoo`), computed on first access; None when it
        was not requested or cannot be computed (:attr:`loo_note` says why)."""
        if "value" not in self._loo_cache:
            value, note = None, "not computed (summarize_fit(..., loo=False))"
            if self.loo_source is not None:
                from .loo import fit_loo

                try:
                    value, note = fit_loo(*self.loo_source), ""
                except (ValueError, KeyError) as exc:
                    note = f"not computed: {exc.args[0] if exc.args else exc}"
            self._loo_cache.update(value=value, note=note)
        return self._loo_cache["value"]

    @property
    def loo_note(self) -> str:
        """Why :attr:`loo` is None ("" when it is not)."""
        self.loo  # noqa: B018 - computes it
        return self._loo_cache["note"]

    def text(self) -> str:
        """Diagnostics, the LOO, the parameter table block by block, the items' invariance
        (fits with group deviations), the head of the latent scores."""
        fmt = lambda df: df.to_string(float_format=lambda x: f"{x:.3f}")  # noqa: E731
        prob = float(self.metadata.get("prob", 0.9))
        loo = self.loo
        parts = [self.diagnostics.text(), "",
                 loo.text() if loo is not None else f"Leave-one-firm-out LOO: {self.loo_note}", "",
                 f"Parameters: posterior mean, sd, central {prob:.0%} interval, R-hat, bulk ESS"]
        for block, sub in self.parameters.groupby("block", sort=False):
            title = BLOCKS.get(str(block)) or DEVIATION_BLOCKS.get(str(block), str(block))
            parts += ["", f"{title}:", _block_text(sub, prob)]
            if block == "correlation" and len(self.correlation):
                pos = ", ".join(f"{r.construct_a} ~~ {r.construct_b} {r.p_positive:.3f}"
                                for r in self.correlation.itertuples())
                parts.append(f"  posterior probability of a positive correlation: {pos}")
        if len(self.invariance):
            parts += ["", invariance_text(self.invariance)]
        parts += ["", f"Latent scores: {len(self.latent_scores)} rows (firm x construct); first rows:",
                  fmt(self.latent_scores.head(6))]
        return "\n".join(parts)

    # ------------------------------------------------------------------ export
    def to_frame(self) -> pd.DataFrame:
        """The parameter table (a copy), columns :data:`PARAMETER_COLUMNS`."""
        return self.parameters.copy()

    def to_csv(self, path_or_buf=None) -> str | None:
        """The parameter table as CSV (header row, one row per parameter, no index): the
        text when ``path_or_buf`` is None, else written to that path or file object."""
        return self.parameters.to_csv(path_or_buf, index=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"metadata": ..., "columns": [...], "parameters": [one record per row]}``,
        plain Python values (missing values None); the metadata hold ``loo``
        (:meth:`~smeintl.measurement.loo.FitLoo.to_dict`, or ``{"note": why not}``) and,
        for a fit with group deviations, ``invariance`` (the delta and one record per row
        of :attr:`invariance`)."""
        records = [{c: _plain(v) for c, v in zip(self.parameters.columns, row)}
                   for row in self.parameters.itertuples(index=False, name=None)]
        meta = {k: _plain(v) for k, v in self.metadata.items()}
        loo = self.loo
        meta["loo"] = _plain(loo.to_dict()) if loo is not None else {"note": self.loo_note}
        if len(self.invariance):
            meta["invariance"] = {**{k: _plain(v) for k, v in self.invariance.attrs.items()},
                                  "items": [{c: _plain(v) for c, v in zip(self.invariance.columns, row)}
                                            for row in self.invariance.itertuples(index=False, name=None)]}
        return {"metadata": meta, "columns": list(self.parameters.columns), "parameters": records}

    def to_json(self, path_or_buf=None, *, indent: int | None = None) -> str | None:
        """:meth:`to_dict` as JSON (strict: no NaN): the text when ``path_or_buf`` is None,
        else written to that path or file object."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path_or_buf is None:
            return text
        if hasattr(path_or_buf, "write"):
            path_or_buf.write(text)
        else:
            Path(path_or_buf).write_text(text, encoding="utf-8")
        return None


def invariance_text(table: pd.DataFrame) -> str:
    """:func:`~smeintl.measurement.invariance.item_invariance`'s table as text."""
    a = table.attrs
    delta, flag = float(a.get("delta", np.nan)), float(a.get("flag_prob", np.nan))
    lines = [f"Measurement invariance ({a.get('invariance', '')}): largest |group deviation| per item, "
             f"P(> {delta:g}); flagged where P > {flag:g}"]
    w = max(len("item"), *(len(str(x)) for x in table["item"]))
    lines.append(f"  {'item':<{w}}  {'parameter':<9} {'scale':<8} {'mean':>7} {'lower':>7} {'upper':>7} "
                 f"{'P(>d)':>6}  group (deviation)")
    for r in table.itertuples(index=False):
        lines.append(f"  {r.item:<{w}}  {r.parameter:<9} {r.scale:<8} {r.mean:>7.3f} {r.lower:>7.3f} {r.upper:>7.3f} "
                     f"{r.p_exceeds:>6.3f}  {r.group} ({r.deviation:+.3f}){'  FLAGGED' if r.flagged else ''}")
    flagged = sorted({r.item for r in table.itertuples(index=False) if r.flagged})
    lines.append("  flagged items: " + (", ".join(flagged) if flagged else "none"))
    return "\n".join(lines)


def _plain(v):
    """A JSON-ready value: numpy scalars as Python ones, NaN and None as None."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return str(v)


def _block_text(sub: pd.DataFrame, prob: float) -> str:
    """One block of the parameter table as aligned text: the parameter in lavaan's notation
    (shown once for its rows on several scales), scale, mean, sd, interval, R-hat, ESS."""
    lo, hi = (f"{q:.1%}".replace(".0%", "%") for q in ((1 - prob) / 2, (1 + prob) / 2))
    names, prev = [], None
    for r in sub.itertuples(index=False):
        rhs = "" if pd.isna(r.rhs) or r.rhs == "" else f" {r.rhs}"
        grp = "" if pd.isna(r.group) else f" [{r.group}]"
        name = f"{r.lhs} {r.op}{rhs}{grp}"
        names.append("" if name == prev else name)
        prev = name
    w = max(len("parameter"), *(len(n) for n in names))
    ws = max(len("scale"), *(len(str(x)) for x in sub["scale"]))
    num = lambda x, d=3: "nan" if not np.isfinite(x) else f"{x:.{d}f}"  # noqa: E731
    lines = [f"  {'parameter':<{w}}  {'scale':<{ws}} {'mean':>9} {'sd':>8} {lo:>9} {hi:>9} {'rhat':>6} {'ess_bulk':>8}"]
    for n, r in zip(names, sub.itertuples(index=False)):
        lines.append(f"  {n:<{w}}  {r.scale:<{ws}} {num(r.mean):>9} {num(r.sd):>8} {num(r.lower):>9} "
                     f"{num(r.upper):>9} {num(r.rhat):>6} {num(r.ess_bulk, 0):>8}")
    return "\n".join(lines)


def _interval(a: np.ndarray, prob: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    lo = (1 - prob) / 2
    return np.quantile(a, lo, axis=0), np.quantile(a, 1 - lo, axis=0)


def _check_prob(prob: float) -> float:
    prob = float(prob)
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob!r}")
    return prob


def _residual_variance(lay: ItemLayout, P) -> np.ndarray:
    lam = P["loading"]
    resid = np.empty(lam.shape)
    for block in lay.blocks():
        resid[:, block.idx] = block.family.residual_variance(P, block)
    return resid


def _omega(lay: ItemLayout, P, resid: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(construct, measure, draws) per construct: omega from the loadings and residual
    variances where every item is linear, else the latent-response omega on the
    standardized loadings."""
    lam = P["loading"]
    std = lam / np.sqrt(lam**2 + resid)
    fams = np.asarray(lay.families(), dtype=object)
    out = []
    for c, cname in enumerate(lay.constructs):
        idx = np.nonzero(lay.construct == c)[0]
        if all(f.linear for f in fams[idx]):
            ls = lam[:, idx].sum(1) ** 2
            out.append((cname, "omega", ls / (ls + resid[:, idx].sum(1))))
        else:
            sl = std[:, idx]
            out.append((cname, "omega_latent_response", sl.sum(1) ** 2 / (sl.sum(1) ** 2 + (1 - sl**2).sum(1))))
    return out


def _group_names(post) -> list[str]:
    return [str(g) for g in post["group_mean"].coords["group"].values]


def _rows(fit, lay: ItemLayout, P, resid: np.ndarray) -> list[ParameterRow]:
    """Every row of the parameter table, with draws, in the table's order."""
    post = compat.group(fit, "posterior")
    std = fit_standardization(fit)
    rows: list[ParameterRow] = []
    for block in lay.blocks():
        rows += block.family.parameter_rows(P, block, lay, std)
    C = len(lay.constructs)
    if "corr" in P:
        for a in range(C):
            for b in range(a + 1, C):
                rows.append(ParameterRow("correlation", lay.constructs[a], "~~", lay.constructs[b], "latent", "corr",
                                         P["corr"][:, a, b], "latent correlation (within group)"))
    if "group_mean" in P:
        for g, gname in enumerate(_group_names(post)):
            for c, cname in enumerate(lay.constructs):
                rows.append(ParameterRow("group_mean", cname, "~1", "", "latent", "group_mean", P["group_mean"][:, g, c],
                                         f"latent mean of group {gname}", construct=cname, group=gname))
    if "group_sd" in P:
        for c, cname in enumerate(lay.constructs):
            rows.append(ParameterRow("group_sd", cname, "~~", cname, "latent", "group_sd", P["group_sd"][:, c],
                                     "sd of the group latent means", construct=cname))
    rows += _deviation_rows(fit, lay)
    for cname, measure, om in _omega(lay, P, resid):
        rows.append(ParameterRow("omega", cname, ":=", measure, "standardized", None, om,
                                 "omega" if measure == "omega" else "omega on the standardized loadings "
                                 "(latent response)", construct=cname))
    # blocks in BLOCKS' order (a family's further blocks after the family blocks), items in spec order
    order = {b: k if k < _FAMILY_END else k + 1 for k, b in enumerate(BLOCKS)}
    after = order["group_sd"]
    order.update({b: after + (k + 1) / (len(DEVIATION_BLOCKS) + 1) for k, b in enumerate(DEVIATION_BLOCKS)})
    pos = {n: k for k, n in enumerate(lay.names)}
    keyed = sorted(enumerate(rows), key=lambda kr: (order.get(kr[1].block, _FAMILY_END),
                                                    pos.get(kr[1].item, -1), kr[0]))
    return [r for _, r in keyed]


def _deviation_rows(fit, lay: ItemLayout) -> list[ParameterRow]:
    """The group deviations of the loadings (log scale) and locations (each family's link
    scale), one row per group and item."""
    from .invariance import deviations

    dev = deviations(fit)
    if not dev:
        return []
    post = compat.group(fit, "posterior")
    gnames = [str(g) for g in post["group"].values]
    link = {int(k): b.family.link for b in lay.blocks() for k in b.idx}
    rows = []
    for kind, d in dev.items():
        for i, item in enumerate(lay.names):
            cname = lay.constructs[lay.construct[i]]
            for g, gname in enumerate(gnames):
                if kind == "loading":
                    rows.append(ParameterRow("loading_deviation", cname, "=~", item, "log", "loading_dev", d[:, i, g],
                                             f"log loading deviation of group {gname}", item, cname, gname))
                else:
                    rows.append(ParameterRow("intercept_deviation", item, "~1", "", link[i], "intercept_dev",
                                             d[:, i, g], f"location deviation of group {gname}", item, cname, gname))
    return rows


def _table(rows: list[ParameterRow], post, prob: float) -> pd.DataFrame:
    import xarray as xr

    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    if not rows:
        return pd.DataFrame(columns=list(PARAMETER_COLUMNS))
    D = np.stack([np.asarray(r.draws, dtype=float) for r in rows], axis=-1)  # (S, R)
    nc, nd = int(post.sizes["chain"]), int(post.sizes["draw"])
    ds = xr.Dataset({"value": (("chain", "draw", "parameter"), D.reshape(nc, nd, -1))},
                    coords={"chain": np.arange(nc), "draw": np.arange(nd)})
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        rhat = np.asarray(compat.rhat(ds)["value"].values, dtype=float).reshape(-1)
        ess = np.asarray(compat.ess(ds, method="bulk")["value"].values, dtype=float).reshape(-1)
    table = pd.DataFrame({
        "block": [r.block for r in rows],
        "lhs": [r.lhs for r in rows],
        "op": [r.op for r in rows],
        "rhs": [r.rhs for r in rows],
        "group": [r.group for r in rows],
        "item": [r.item for r in rows],
        "construct": [r.construct for r in rows],
        "label": [r.label for r in rows],
        "scale": [r.scale for r in rows],
        "variable": [r.variable for r in rows],
        "mean": D.mean(0),
        "sd": D.std(0, ddof=1) if D.shape[0] > 1 else np.full(D.shape[1], np.nan),
        "lower": np.quantile(D, lo, axis=0),
        "upper": np.quantile(D, hi, axis=0),
        "rhat": rhat,
        "ess_bulk": ess,
    })
    return table[list(PARAMETER_COLUMNS)]


def _setup(fit, spec: Spec | None):
    fit = compat.as_fit(fit)
    spec = spec or parse_spec(fit.attrs["spec_text"])
    lay = ItemLayout.from_spec(spec)
    P = posterior_params(fit, spec)
    return fit, spec, lay, P, _residual_variance(lay, P)


def parameter_rows(fit, spec: Spec | None = None) -> list[ParameterRow]:
    """The rows of :func:`parameter_table` with their posterior draws
    (:class:`smeintl.families.ParameterRow`: ``draws`` one value per draw, chains in turn)."""
    fit, spec, lay, P, resid = _setup(fit, spec)
    return _rows(fit, lay, P, resid)


def parameter_table(fit, spec: Spec | None = None, prob: float = 0.9) -> pd.DataFrame:
    """Every parameter of a fit, one row each, like lavaan's ``parameterEstimates`` and
    ``standardizedSolution`` together.

    Columns (:data:`PARAMETER_COLUMNS`): ``block`` (``loading``, ``intercept``,
    ``threshold``, ``residual_sd``, ``dispersion``, ``precision``, ``correlation``,
    ``group_mean``, ``group_sd``, ``omega``; :data:`BLOCKS`), the parameter in lavaan's
    notation ``lhs op rhs`` (``doi =~ item`` loading, ``item ~1`` intercept, ``item | t1``
    threshold, ``item ~~ item`` the item's residual sd, inverse dispersion or precision,
    ``doi ~~ independence`` correlation, ``doi ~1`` with ``group`` a group's latent mean,
    ``doi ~~ doi`` the sd of the group means, ``doi := omega`` reliability), ``group``,
    ``item``, ``construct`` where they apply, ``label`` (the parameter in words),
    ``scale`` (``data``: the item's own units, continuous items converted from their
    standardized scale with the fit's stored standardization; ``logit`` / ``log``: the
    family's link scale; ``standardized``: latent-response standardized loadings and
    omega; ``natural``: a dispersion or precision as the likelihood defines it;
    ``latent``: the latent scale, sd 1 within group), ``variable`` (the posterior
    variable), the posterior ``mean``, ``sd``, the central ``prob`` interval ``lower`` -
    ``upper``, ``rhat`` (rank-normalized split R-hat) and ``ess_bulk``.

    Loadings are per latent sd with the sign of reverse-coded items (the coefficient of
    the latent score in the item's linear predictor); each item's per-family parameters
    come from its family (:meth:`smeintl.families.Family.parameter_rows`).
    """
    prob = _check_prob(prob)
    fit, spec, lay, P, resid = _setup(fit, spec)
    return _table(_rows(fit, lay, P, resid), compat.group(fit, "posterior"), prob)


def _metadata(fit, spec: Spec, lay: ItemLayout, prob: float) -> dict[str, Any]:
    a = fit.attrs
    post = compat.group(fit, "posterior")
    meta: dict[str, Any] = {
        "spec": spec.name,
        "spec_hash": a.get("spec_hash", spec.hash),
        "data_hash": a.get("data_hash"),
        "data_source": a.get("data_source"),
        "seed": a.get("random_seed"),
        "sampler": a.get("sampler"),
        "chains": int(post.sizes["chain"]),
        "draws": int(post.sizes["draw"]),
        "prob": prob,
        "invariance": a.get("invariance", "none"),
    }
    std = fit_standardization(fit)
    if std is not None:
        names = [lay.names[k] for k in lay.family("continuous")]
        meta["standardization"] = {n: {"mean": float(m), "sd": float(s)} for n, m, s in zip(names, std["mean"], std["sd"])}
    try:
        meta["smeintl_version"] = json.loads(a.get("versions", "{}")).get("smeintl")
    except (TypeError, ValueError):
        pass
    return {k: _plain(v) for k, v in meta.items()}


def summarize_fit(idata, spec: Spec | None = None, prob: float = 0.9, *, loo: bool = True,
                  delta: float | None = None) -> FitSummary:
    """Loadings (raw and standardized), cutpoints, correlation, group means,
    latent scores with ``prob`` intervals and reliability (omega where defined), and the
    full parameter table (:func:`parameter_table`).

    Standardized loadings use the latent-response formulation with within-group
    latent variance 1: lambda / sqrt(lambda^2 + v) with residual variance v = pi^2/3
    for logit-type items (ordinal, percent, binary), sigma^2 for continuous items and
    the lognormal approximation log(1 + 1/mu + 1/alpha) for counts (mu at eta = 0).
    The ``loadings`` table gives lambda (positive; ``reverse`` marks the items whose
    linear predictor is -lambda * eta) on each family's modelled scale; the parameter
    table gives the signed loadings, continuous items' in their data units.

    ``loo``: whether :attr:`FitSummary.loo` is computed (on first access: a few seconds
    to tens of seconds, see docs/invariance.md); ``delta``: the deviation size of the
    invariance table (:func:`~smeintl.measurement.invariance.item_invariance`; default
    its ``DELTA``).
    """
    from .invariance import DELTA, deviations, item_invariance

    prob = _check_prob(prob)
    idata, spec, lay, P, resid = _setup(idata, spec)
    post = compat.group(idata, "posterior")
    lam = P["loading"]
    std = lam / np.sqrt(lam**2 + resid)
    lo, hi = _interval(lam, prob)
    slo, shi = _interval(std, prob)
    loadings = pd.DataFrame(
        {
            "construct": [lay.constructs[c] for c in lay.construct],
            "scale": lay.scales,
            "reverse": lay.sign < 0,
            "mean": lam.mean(0),
            "lo": lo,
            "hi": hi,
            "std_mean": std.mean(0),
            "std_lo": slo,
            "std_hi": shi,
        },
        index=pd.Index(lay.names, name="item"),
    )
    q = [(1 - prob) / 2, (1 + prob) / 2]
    rows = []
    for K, idx in lay.ordinal_groups().items():
        cut = P[f"cutpoints_{K}"]
        for j, k in enumerate(idx):
            for c in range(K - 1):
                v = cut[:, j, c]
                rows.append((lay.names[k], c + 1, v.mean(), *np.quantile(v, q)))
    cutpoints = pd.DataFrame(rows, columns=["item", "cutpoint", "mean", "lo", "hi"])
    C = len(lay.constructs)
    crow = []
    if "corr" in P:
        for a in range(C):
            for b in range(a + 1, C):
                v = P["corr"][:, a, b]
                crow.append((lay.constructs[a], lay.constructs[b], v.mean(), *np.quantile(v, q), float((v > 0).mean())))
    correlation = pd.DataFrame(crow, columns=["construct_a", "construct_b", "mean", "lo", "hi", "p_positive"])
    grows = []
    if "group_mean" in P:
        for g, gname in enumerate(_group_names(post)):
            for c, cname in enumerate(lay.constructs):
                v = P["group_mean"][:, g, c]
                grows.append((gname, cname, v.mean(), *np.quantile(v, q)))
    group_means = pd.DataFrame(grows, columns=["group", "construct", "mean", "lo", "hi"])
    eta = P["eta"]
    firms = list(post["eta"].coords["firm"].values)
    elo, ehi = _interval(eta, prob)
    latent = pd.DataFrame(
        {
            "firm_id": np.repeat(firms, C),
            "construct": np.tile(lay.constructs, len(firms)),
            "mean": eta.mean(0).ravel(),
            "sd": eta.std(0).ravel(),
            "lo": elo.ravel(),
            "hi": ehi.ravel(),
        }
    )
    rel = [(cname, measure, om.mean(), *np.quantile(om, q)) for cname, measure, om in _omega(lay, P, resid)]
    reliability = pd.DataFrame(rel, columns=["construct", "measure", "mean", "lo", "hi"])
    parameters = _table(_rows(idata, lay, P, resid), post, prob)
    inv = (item_invariance(idata, delta=DELTA if delta is None else delta, prob=prob, spec=spec)
           if deviations(idata) else pd.DataFrame())
    meta = _metadata(idata, spec, lay, prob)
    return FitSummary(loadings, cutpoints, correlation, group_means, latent, reliability, fit_diagnostics(idata),
                      parameters, meta, inv, (idata, spec) if loo else None)
