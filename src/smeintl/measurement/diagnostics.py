"""Convergence diagnostics of a fit and the verdict against :data:`THRESHOLDS`."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

__all__ = ["THRESHOLDS", "Diagnostics", "diagnose", "fit_diagnostics", "is_score_variable"]

#: diagnostic thresholds: a fit failing any of them is marked failed
THRESHOLDS = {"rhat": 1.01, "ess_bulk": 400, "ess_tail": 400, "divergences": 0, "ebfmi": 0.3}


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of a fit and the verdict against :data:`THRESHOLDS`."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_ebfmi: float
    n_draws: int
    worst: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_rhat": self.max_rhat,
            "min_ess_bulk": self.min_ess_bulk,
            "min_ess_tail": self.min_ess_tail,
            "divergences": self.divergences,
            "min_ebfmi": self.min_ebfmi,
            "n_draws": self.n_draws,
            "worst": self.worst,
            "problems": list(self.problems),
            "failed": self.failed,
            "thresholds": THRESHOLDS,
        }

    def text(self) -> str:
        head = (
            "DIAGNOSTICS FAILED - do not trust this fit:" if self.failed else "Diagnostics passed:"
        )
        lines = [
            head,
            f"  max R-hat       {self.max_rhat:8.4f}  (threshold {THRESHOLDS['rhat']})",
            f"  min bulk ESS    {self.min_ess_bulk:8.0f}  (threshold {THRESHOLDS['ess_bulk']})",
            f"  min tail ESS    {self.min_ess_tail:8.0f}  (threshold {THRESHOLDS['ess_tail']})",
            f"  divergences     {self.divergences:8d}  (threshold 0)",
            f"  min E-BFMI      {self.min_ebfmi:8.3f}  (threshold {THRESHOLDS['ebfmi']})",
        ]
        lines += [f"  ! {p}" for p in self.problems]
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Diagnostics":
        return cls(
            float(d["max_rhat"]),
            float(d["min_ess_bulk"]),
            float(d["min_ess_tail"]),
            int(d["divergences"]),
            float(d["min_ebfmi"]),
            int(d.get("n_draws", 0)),
            dict(d.get("worst", {})),
            tuple(d.get("problems", ())),
        )


_DIAG_SKIP = ("corr_cpc", "group_z", "group_c")


def is_score_variable(name: str) -> bool:
    """Whether a free variable holds the per-firm latent scores: ``z`` (non-centred), the
    centred columns ``eta_<construct>``, or the split scores' ``eta_u``, ``eta_mean`` and
    ``eta_logsd`` (all imply the deterministic ``eta``)."""
    return name == "z" or name.startswith("eta_")


def diagnose(idata, var_names: list[str] | None = None) -> Diagnostics:
    """R-hat, bulk/tail ESS, divergences and E-BFMI of a fit, with a pass/fail verdict.

    Checked over every reported parameter (loadings, cutpoints, intercepts,
    correlation, group means and sds, latent scores ``eta``); the internal
    non-centred variables are implied by these.
    """
    from .. import compat

    post = compat.group(idata, "posterior")
    if var_names is None:
        # the centred scores' per-construct columns eta_<construct> duplicate eta; the item
        # parameters on standardized scores (<name>_std) are implied by the reported ones
        var_names = [v for v in post.data_vars if v not in _DIAG_SKIP and not str(v).endswith(("__", "_std"))
                     and not is_score_variable(str(v))]
    sub = post[var_names]
    # the diagonal of a correlation matrix is constant 1: leave it out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = compat.rhat(sub)
        essb = compat.ess(sub, method="bulk")
        esst = compat.ess(sub, method="tail")

    def extreme(ds, fn):
        best_v, best_n = None, ""
        for name, da in ds.data_vars.items():
            vals = np.asarray(da.values, dtype=float).ravel()
            vals = vals[np.isfinite(vals)]
            if not vals.size:
                continue
            v = fn(vals)
            if best_v is None or (fn is np.max and v > best_v) or (fn is np.min and v < best_v):
                best_v, best_n = float(v), str(name)
        return (best_v if best_v is not None else float("nan")), best_n

    max_rhat, w_rhat = extreme(rhat, np.max)
    min_essb, w_essb = extreme(essb, np.min)
    min_esst, w_esst = extreme(esst, np.min)
    ss = compat.group(idata, "sample_stats") if compat.has_group(idata, "sample_stats") else None
    div = int(ss["diverging"].values.sum()) if ss is not None and "diverging" in ss else 0
    try:
        ebfmi = float(np.min(compat.bfmi(idata)))
    except Exception:  # noqa: BLE001 - samplers without energy stats
        ebfmi = float("nan")
    n_draws = int(post.sizes["chain"] * post.sizes["draw"])
    problems = []
    if not (max_rhat <= THRESHOLDS["rhat"]):
        # how many values of the worst variable are over: a few of 20,000 latent scores is
        # another picture than every loading
        # (no finite R-hat at all, e.g. one chain: no worst variable)
        vals = np.asarray(rhat[w_rhat].values if w_rhat else [], dtype=float).ravel()
        vals = vals[np.isfinite(vals)]
        share = f"; {int((vals > THRESHOLDS['rhat']).sum())} of {vals.size} values over" if vals.size > 1 else ""
        problems.append(f"R-hat {max_rhat:.3f} > {THRESHOLDS['rhat']} (worst: {w_rhat}{share}): chains disagree")
    if not (min_essb >= THRESHOLDS["ess_bulk"]):
        problems.append(f"bulk ESS {min_essb:.0f} < {THRESHOLDS['ess_bulk']} (worst: {w_essb}): too few effective draws")
    if not (min_esst >= THRESHOLDS["ess_tail"]):
        problems.append(f"tail ESS {min_esst:.0f} < {THRESHOLDS['ess_tail']} (worst: {w_esst}): intervals unreliable")
    if div > THRESHOLDS["divergences"]:
        problems.append(f"{div} divergent transitions: the sampler missed part of the posterior")
    if np.isfinite(ebfmi) and ebfmi < THRESHOLDS["ebfmi"]:
        problems.append(f"E-BFMI {ebfmi:.2f} < {THRESHOLDS['ebfmi']}: poor exploration of the energy")
    return Diagnostics(
        max_rhat, min_essb, min_esst, div, ebfmi, n_draws,
        {"rhat": w_rhat, "ess_bulk": w_essb, "ess_tail": w_esst}, tuple(problems),
    )


def fit_diagnostics(idata) -> Diagnostics:
    """The diagnostics stored in a fit's attrs (computed at fit time)."""
    if "diagnostics" in idata.attrs:
        return Diagnostics.from_dict(json.loads(idata.attrs["diagnostics"]))
    return diagnose(idata)

