"""Convergence diagnostics of a fit and the verdict against :data:`THRESHOLDS`."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

__all__ = ["THRESHOLDS", "SCORE_RULE", "SCORES_TEXT", "Diagnostics", "diagnose", "fit_diagnostics", "is_score_variable",
           "rhat_chance"]

#: diagnostic thresholds: a fit failing any of them is marked failed.  R-hat applies to every
#: model parameter; the per-firm latent scores follow :data:`SCORE_RULE` instead
THRESHOLDS = {"rhat": 1.01, "ess_bulk": 400, "ess_tail": 400, "divergences": 0, "ebfmi": 0.3}

#: the R-hat rule of the per-firm latent scores (``eta``: one value per firm and construct).
#: Thousands of exchangeable scores put some R-hat values over 1.01 by chance alone even
#: when every chain has converged, so the threshold that serves one parameter fails every
#: large survey.  The scores fail when more of them are over ``THRESHOLDS["rhat"]`` than
#: the ``level`` quantile of what chance gives (:func:`rhat_chance`), or when any of them is
#: over ``max``: a disagreement no number of scores explains.  Their ESS has the same
#: thresholds as the parameters'.
SCORE_RULE = {"level": 0.99, "max": 1.05}

#: what a problem of the per-firm scores' R-hat calls them; :meth:`Diagnostics.from_dict`
#: finds the scores' verdict of records stored before it was kept by this text
SCORES_TEXT = "per-firm scores"


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
    #: the per-firm scores' R-hat against chance (:data:`SCORE_RULE`): ``n`` scores,
    #: ``max_rhat``, ``n_over`` over the threshold, ``expected_over`` and ``bound_over``
    #: (the ``level`` quantile) by chance, ``failed`` (the rule's verdict); None for a fit
    #: without scores or whose scores were drawn after sampling
    scores: dict[str, float] | None = None
    #: the parameterization whose scores were drawn after sampling, exactly given each draw
    #: of the model parameters ("marginal", "quadrature"): generated quantities, not
    #: diagnosed ("" when the scores were sampled or there are none)
    scores_drawn: str = ""

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
            "scores": self.scores,
            "scores_drawn": self.scores_drawn,
            "score_rule": SCORE_RULE,
        }

    def text(self) -> str:
        head = (
            "DIAGNOSTICS FAILED - do not trust this fit:" if self.failed else "Diagnostics passed:"
        )
        lines = [
            head,
            f"  max R-hat       {self.max_rhat:8.4f}  (threshold {THRESHOLDS['rhat']}; model parameters)",
            *([self.score_line()] if self.scores or self.scores_drawn else []),
            f"  min bulk ESS    {self.min_ess_bulk:8.0f}  (threshold {THRESHOLDS['ess_bulk']})",
            f"  min tail ESS    {self.min_ess_tail:8.0f}  (threshold {THRESHOLDS['ess_tail']})",
            f"  divergences     {self.divergences:8d}  (threshold 0)",
            f"  min E-BFMI      {self.min_ebfmi:8.3f}  (threshold {THRESHOLDS['ebfmi']})",
        ]
        lines += [f"  ! {p}" for p in self.problems]
        return "\n".join(lines)

    def score_line(self) -> str:
        """One line on the per-firm scores' R-hat against chance (or on how they were drawn)."""
        if self.scores_drawn:
            return f"  scores          drawn given each draw ({self.scores_drawn}): converge with the model parameters"
        c = self.scores or {}
        return (f"  scores' R-hat   {c['max_rhat']:8.4f}  (max of {int(c['n'])}; {int(c['n_over'])} over "
                f"{THRESHOLDS['rhat']}, chance gives {c['expected_over']:.1f}, at most {int(c['bound_over'])} at "
                f"{SCORE_RULE['level']:.0%}; any over {SCORE_RULE['max']} fails)")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Diagnostics":
        problems = tuple(d.get("problems", ()))
        scores = dict(d["scores"]) if d.get("scores") else None
        if scores is not None and "failed" not in scores:
            # stored before the rule's verdict was recorded: its problem names the per-firm scores
            scores["failed"] = any(SCORES_TEXT in p for p in problems)
        return cls(
            float(d["max_rhat"]),
            float(d["min_ess_bulk"]),
            float(d["min_ess_tail"]),
            int(d["divergences"]),
            float(d["min_ebfmi"]),
            int(d.get("n_draws", 0)),
            dict(d.get("worst", {})),
            problems,
            scores,
            str(d.get("scores_drawn", "") or ""),
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
    non-centred variables are implied by these.  R-hat: :data:`THRESHOLDS` on the model
    parameters, :data:`SCORE_RULE` (against chance) on the per-firm scores; ESS and the
    sampler's checks: :data:`THRESHOLDS` on both.  A quadrature fit also fails where its
    grid check (the attrs' ``quadrature``) is over its tolerance.

    The scores of a fit that integrated them out (``parameterization`` "marginal" or
    "quadrature") were drawn after sampling, one exact draw from their conditional
    posterior given each draw of the model parameters.  Such generated quantities agree
    between chains exactly when the parameters do, and their autocorrelation is at most
    that of their conditional mean, a function of the parameters: they are not diagnosed
    again (``scores_drawn`` says so; by default only; ``var_names`` may name ``eta``).
    """
    from .. import compat
    from .latent import INTEGRATED

    post = compat.group(idata, "posterior")
    drawn = str(getattr(idata, "attrs", {}).get("parameterization", ""))
    drawn = drawn if drawn in INTEGRATED else ""
    if var_names is None:
        # the centred scores' per-construct columns eta_<construct> duplicate eta; the item
        # parameters on standardized scores (<name>_std) are implied by the reported ones
        var_names = [v for v in post.data_vars if v not in _DIAG_SKIP and not str(v).endswith(("__", "_std"))
                     and not is_score_variable(str(v)) and not (drawn and _is_per_firm(post[v]))]
    else:
        drawn = ""
    rhat, essb, esst = _per_scalar(post, var_names)

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

    scores = [v for v in rhat.data_vars if _is_per_firm(post[v])]
    max_rhat, w_rhat = extreme(rhat[[v for v in rhat.data_vars if v not in scores]], np.max)
    min_essb, w_essb = extreme(essb, np.min)
    min_esst, w_esst = extreme(esst, np.min)
    ss = compat.group(idata, "sample_stats") if compat.has_group(idata, "sample_stats") else None
    div = int(ss["diverging"].values.sum()) if ss is not None and "diverging" in ss else 0
    try:
        ebfmi = float(np.min(compat.bfmi(idata)))
    except Exception:  # noqa: BLE001 - samplers without energy stats
        ebfmi = float("nan")
    n_chains, n_per_chain = int(post.sizes["chain"]), int(post.sizes["draw"])
    n_draws = n_chains * n_per_chain
    problems = []
    if not (max_rhat <= THRESHOLDS["rhat"]):
        # how many values of the worst variable are over: every loading is another picture
        # than one of them (no finite R-hat at all, e.g. one chain: no worst variable)
        vals = np.asarray(rhat[w_rhat].values if w_rhat else [], dtype=float).ravel()
        vals = vals[np.isfinite(vals)]
        share = f"; {int((vals > THRESHOLDS['rhat']).sum())} of {vals.size} values over" if vals.size > 1 else ""
        problems.append(f"R-hat {max_rhat:.3f} > {THRESHOLDS['rhat']} (worst: {w_rhat}{share}): chains disagree")
    score_summary = None
    if scores:
        r = np.concatenate([np.asarray(rhat[v].values, dtype=float).ravel() for v in scores])
        e = np.concatenate([np.asarray(essb[v].values, dtype=float).ravel() for v in scores])
        ok = np.isfinite(r) & np.isfinite(e)
        # chance at each score's ESS, but not below the ESS threshold: chains that disagree
        # lower the ESS, which would otherwise raise what chance allows (such scores fail
        # the ESS threshold as well)
        expected, bound = rhat_chance(np.maximum(e[ok], THRESHOLDS["ess_bulk"]), n_chains, n_per_chain)
        n_over = int((r[ok] > THRESHOLDS["rhat"]).sum())
        worst = float(r[ok].max()) if ok.any() else float("nan")
        variables = ", ".join(map(str, scores))
        what = f"{SCORES_TEXT} ({variables})"
        score_problem = None
        if not ok.any():
            score_problem = f"R-hat of the {what} not defined (one chain?): convergence cannot be checked"
        elif n_over > bound:
            score_problem = (f"R-hat over {THRESHOLDS['rhat']} on {n_over} of {r.size} {what}, where chance gives "
                             f"{expected:.1f} (at most {int(bound)} at {SCORE_RULE['level']:.0%}; worst {worst:.3f}): "
                             f"chains disagree")
        elif worst > SCORE_RULE["max"]:
            score_problem = f"R-hat {worst:.3f} > {SCORE_RULE['max']} on one of the {what}: chains disagree"
        if score_problem:
            problems.append(score_problem)
        score_summary = {"n": int(r.size), "max_rhat": worst, "n_over": n_over, "expected_over": expected,
                         "bound_over": float(bound), "variables": variables, "failed": score_problem is not None}
    if not (min_essb >= THRESHOLDS["ess_bulk"]):
        problems.append(f"bulk ESS {min_essb:.0f} < {THRESHOLDS['ess_bulk']} (worst: {w_essb}): too few effective draws")
    if not (min_esst >= THRESHOLDS["ess_tail"]):
        problems.append(f"tail ESS {min_esst:.0f} < {THRESHOLDS['ess_tail']} (worst: {w_esst}): intervals unreliable")
    if div > THRESHOLDS["divergences"]:
        problems.append(f"{div} divergent transitions: the sampler missed part of the posterior")
    if np.isfinite(ebfmi) and ebfmi < THRESHOLDS["ebfmi"]:
        problems.append(f"E-BFMI {ebfmi:.2f} < {THRESHOLDS['ebfmi']}: poor exploration of the energy")
    if "quadrature" in getattr(idata, "attrs", {}):  # a quadrature fit's check of its grid (smeintl.measurement.quadrature)
        from .quadrature import quadrature_problem

        if problem := quadrature_problem(json.loads(idata.attrs["quadrature"])):
            problems.append(problem)
    return Diagnostics(
        max_rhat, min_essb, min_esst, div, ebfmi, n_draws,
        {"rhat": w_rhat, "ess_bulk": w_essb, "ess_tail": w_esst}, tuple(problems), score_summary,
        drawn if score_summary is None and any(_is_per_firm(post[v]) for v in post.data_vars) else "",
    )


def _per_scalar(post, names: list[str]):
    """R-hat, bulk ESS and tail ESS (three Datasets) of each variable ``names`` of the
    posterior: ArviZ's for the model parameters, :func:`.convergence.convergence` (the same
    formulas over all scalars at once) for the per-firm scores, thousands of scalars that
    ArviZ takes one at a time (about a minute for the 20,000 scores of 10,000 firms).  The
    tail ESS follows the 5% and 95% quantiles on both stacks (``TAIL_PROB``, Vehtari et al.
    2021); ArviZ 1's default would follow its ``stats.ci_prob`` (11% and 89%), a milder
    check than the threshold of 400 was set for."""
    import xarray as xr

    from .. import compat
    from .convergence import TAIL_PROB, convergence

    firm = [v for v in names if _is_per_firm(post[v])]
    rest = [v for v in names if v not in firm]
    out = [xr.Dataset(), xr.Dataset(), xr.Dataset()]
    if rest:
        sub = post[rest]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = [compat.rhat(sub), compat.ess(sub, method="bulk"), compat.ess(sub, method="tail", prob=TAIL_PROB)]
    for v in firm:
        da = post[v].transpose("chain", "draw", ...)
        c = convergence(da.values)
        dims = da.dims[2:]
        coords = {d: da.coords[d] for d in dims if d in da.coords}
        out = [ds.assign({v: xr.DataArray(c[k], dims=dims, coords=coords)})
               for ds, k in zip(out, ("rhat", "ess_bulk", "ess_tail"))]
    return tuple(out)


def _is_per_firm(da) -> bool:
    """Whether a posterior variable holds one value per firm (the latent scores ``eta``)."""
    return "firm" in da.dims or da.name == "eta"


def rhat_chance(ess_bulk: np.ndarray, chains: int, draws: int,
                threshold: float | None = None, level: float | None = None) -> tuple[float, int]:
    """How many of a set of converged quantities have R-hat over ``threshold`` by chance:
    the expected count and its ``level`` quantile (:data:`SCORE_RULE`).

    Rank-normalized split R-hat (Vehtari et al. 2021) splits each of the ``chains`` chains of
    ``draws`` draws in two: ``m`` chains of ``n`` draws.  For chains that sample the same
    distribution, with a quantity's bulk ESS ``E`` (``E / m`` per split chain), the variance
    of the split chains' means is about ``sigma^2 m / E`` times a chi-square with ``m - 1``
    degrees of freedom over ``m - 1``, so ``R-hat^2 = (n - 1)/n + B / (n W)`` is about
    ``1 - 1/n + chi2_{m-1} m / ((m - 1) E)``, which gives each quantity's probability of
    being over.  The count over is a sum of independent Bernoulli draws, whose quantile is
    taken from the Poisson distribution of the same mean (a slight over-statement of its
    spread).  Checked on autocorrelated AR(1) chains of 4,000 quantities
    (``tests/test_measurement.py``): 2 x 900 draws at bulk ESS about 600 put 71 over 1.01
    against 84 expected; 4 x 1000 at ESS 714, 242 against 251; 2 x 500 at ESS 539, 90
    against 96.  At ESS about 200 (which fails the ESS threshold anyway) the approximation
    expects 10% too few.  R-hat is the larger of the bulk and the folded one; the folded
    one adds little for these symmetric draws, and it is not counted.
    """
    from scipy import stats

    threshold = THRESHOLDS["rhat"] if threshold is None else threshold
    level = SCORE_RULE["level"] if level is None else level
    e = np.asarray(ess_bulk, dtype=float).ravel()
    m, n = 2 * int(chains), int(draws) // 2
    if m < 2 or n < 2 or not e.size:
        return float("nan"), 0
    cut = (m - 1) * (e / m) * (threshold**2 - 1 + 1 / n)
    p = stats.chi2.sf(cut, m - 1)
    expected = float(p.sum())
    return expected, int(stats.poisson.ppf(level, expected))


def fit_diagnostics(idata) -> Diagnostics:
    """The diagnostics stored in a fit's attrs (computed at fit time)."""
    if "diagnostics" in idata.attrs:
        return Diagnostics.from_dict(json.loads(idata.attrs["diagnostics"]))
    return diagnose(idata)

