"""Parameter tables of a fit: loadings (raw and standardized), cutpoints, latent
correlation, group means, latent scores and reliability."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import compat
from ..spec import Spec, parse_spec
from .diagnostics import Diagnostics, fit_diagnostics
from .generative import posterior_params
from .layout import ItemLayout

__all__ = ["FitSummary", "summarize_fit"]


@dataclass(frozen=True)
class FitSummary:
    """Parameter tables of a fit (each a DataFrame) and its diagnostics."""

    loadings: pd.DataFrame
    cutpoints: pd.DataFrame
    correlation: pd.DataFrame
    group_means: pd.DataFrame
    latent_scores: pd.DataFrame
    reliability: pd.DataFrame
    diagnostics: Diagnostics

    def text(self) -> str:
        fmt = lambda df: df.to_string(float_format=lambda x: f"{x:.3f}")  # noqa: E731
        parts = [self.diagnostics.text(), "", "Loadings (raw and standardized):", fmt(self.loadings)]
        if len(self.correlation):
            parts += ["", "Latent correlation:", fmt(self.correlation)]
        if len(self.group_means):
            parts += ["", "Group latent means:", fmt(self.group_means)]
        if len(self.reliability):
            parts += ["", "Reliability:", fmt(self.reliability)]
        parts += ["", f"Latent scores: {len(self.latent_scores)} rows (firm x construct); first rows:",
                  fmt(self.latent_scores.head(6))]
        return "\n".join(parts)


def _interval(a: np.ndarray, prob: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    lo = (1 - prob) / 2
    return np.quantile(a, lo, axis=0), np.quantile(a, 1 - lo, axis=0)


def summarize_fit(idata, spec: Spec | None = None, prob: float = 0.9) -> FitSummary:
    """Loadings (raw and standardized), cutpoints, correlation, group means,
    latent scores with ``prob`` intervals and reliability (omega where defined).

    Standardized loadings use the latent-response formulation with within-group
    latent variance 1: lambda / sqrt(lambda^2 + v) with residual variance v = pi^2/3
    for logit-type items (ordinal, percent, binary), sigma^2 for continuous items and
    the lognormal approximation log(1 + 1/mu + 1/alpha) for counts (mu at eta = 0).
    """
    idata = compat.as_fit(idata)
    spec = spec or parse_spec(idata.attrs["spec_text"])
    lay = ItemLayout.from_spec(spec)
    P = posterior_params(idata, spec)
    lam = P["loading"]
    resid = np.empty(lam.shape)
    for block in lay.blocks():
        resid[:, block.idx] = block.family.residual_variance(P, block)
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
    rows = []
    for K, idx in lay.ordinal_groups().items():
        cut = P[f"cutpoints_{K}"]
        for j, k in enumerate(idx):
            for c in range(K - 1):
                v = cut[:, j, c]
                rows.append((lay.names[k], c + 1, v.mean(), *np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])))
    cutpoints = pd.DataFrame(rows, columns=["item", "cutpoint", "mean", "lo", "hi"])
    C = len(lay.constructs)
    crow = []
    if "corr" in P:
        for a in range(C):
            for b in range(a + 1, C):
                v = P["corr"][:, a, b]
                crow.append((lay.constructs[a], lay.constructs[b], v.mean(), *np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2]), float((v > 0).mean())))
    correlation = pd.DataFrame(crow, columns=["construct_a", "construct_b", "mean", "lo", "hi", "p_positive"])
    grows = []
    if "group_mean" in P:
        names = list(idata.posterior["group_mean"].coords["group"].values)
        for g, gname in enumerate(names):
            for c, cname in enumerate(lay.constructs):
                v = P["group_mean"][:, g, c]
                grows.append((gname, cname, v.mean(), *np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])))
    group_means = pd.DataFrame(grows, columns=["group", "construct", "mean", "lo", "hi"])
    eta = P["eta"]
    firms = list(idata.posterior["eta"].coords["firm"].values)
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
    rel = []
    for c, cname in enumerate(lay.constructs):
        idx = np.nonzero(lay.construct == c)[0]
        if all(f.linear for f in np.asarray(lay.families(), dtype=object)[idx]):
            ls = lam[:, idx].sum(1) ** 2
            om = ls / (ls + resid[:, idx].sum(1))
            rel.append((cname, "omega", om.mean(), *np.quantile(om, [(1 - prob) / 2, (1 + prob) / 2])))
        else:
            # latent-response omega on the standardized loadings
            sl = std[:, idx]
            om = sl.sum(1) ** 2 / (sl.sum(1) ** 2 + (1 - sl**2).sum(1))
            rel.append((cname, "omega_latent_response", om.mean(), *np.quantile(om, [(1 - prob) / 2, (1 + prob) / 2])))
    reliability = pd.DataFrame(rel, columns=["construct", "measure", "mean", "lo", "hi"])
    return FitSummary(loadings, cutpoints, correlation, group_means, latent, reliability, fit_diagnostics(idata))
