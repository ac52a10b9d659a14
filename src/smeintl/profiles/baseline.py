"""The outcome relation of the deviation and its baseline test (definitions in
:mod:`smeintl.profiles`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .ideal import _firm_moments, empirical_ideal, pearson_r, profile_deviation


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if x is None or isinstance(x, str):
        return x
    if x is pd.NA or x is pd.NaT:
        return None
    return str(x)

# ---------------------------------------------------------------------------
# baseline test
@dataclass(frozen=True, eq=False)
class BaselineResult:
    """Baseline test of the empirical ideal's outcome relation.

    ``r_obs``: Pearson r of deviation from the empirical ideal with outcome over the
    test sample; ``p_uniform`` / ``p_calibration``: one-sided p-values against random
    ideals uniform on the cube / random calibration sets (None when underpowered);
    ``r_uniform`` / ``r_calibration``: the baseline draws of r.
    """

    r_obs: float
    p_uniform: float | None
    p_calibration: float | None
    underpowered: bool
    reason: str
    verdict: str
    n_test: int
    n_calibration: int
    draws: int
    seed: int | None
    alpha: float
    ideal: tuple[float, ...] = ()
    r_uniform: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    r_calibration: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable summary (without the draws)."""
        return _jsonable(
            {
                "r_obs": self.r_obs,
                "p_uniform": self.p_uniform,
                "p_calibration": self.p_calibration,
                "underpowered": self.underpowered,
                "reason": self.reason,
                "verdict": self.verdict,
                "n_test": self.n_test,
                "n_calibration": self.n_calibration,
                "draws": self.draws,
                "seed": self.seed,
                "alpha": self.alpha,
                "ideal": list(self.ideal),
            }
        )


def _p_value(r_draws: np.ndarray, r_obs: float) -> float:
    hits = np.count_nonzero(np.isnan(r_draws) | (r_draws <= r_obs))
    return (1.0 + hits) / (r_draws.size + 1.0)


def baseline_test(
    profile_matrix: Any,
    outcome: Any,
    firm_ids: Sequence[Any] | None = None,
    *,
    top_share: float = 0.1,
    weights: Any = None,
    draws: int = 1000,
    seed: int | None = None,
    min_test_firms: int = 20,
    min_calibration: int = 3,
    standardize: bool = False,
    squared: bool = False,
    alpha: float = 0.05,
) -> BaselineResult:
    """Is deviation from the empirical ideal related to outcome beyond chance?

    ``profile_matrix`` ``(F, J)`` (one observed sample), ``outcome`` ``(F,)``.  See the
    module docstring for the definition (two baselines of ``draws`` random ideals,
    ``p = (1 + #{r_b <= r_obs}) / (B + 1)``).  Standardization (``standardize``) uses
    the mean and sd of the valid firms, fixed across the observed and all baseline
    ideals.  ``weights``: per-dimension weights ``(J,)`` (default 1), the same for every
    ideal.  The verdict is "supported" when both p-values are ``<= alpha``, "mixed"
    when one is, else "not supported".
    """
    P = np.asarray(profile_matrix, dtype=float)
    y = np.asarray(outcome, dtype=float)
    if P.ndim != 2:
        raise ValueError(f"baseline_test: need one sample of profiles (F, J), got {P.shape}")
    emp = empirical_ideal(P, y, firm_ids, top_share)
    J = P.shape[1]
    Pv, yv = P[emp.valid_mask], y[emp.valid_mask]
    if standardize and Pv.shape[0] >= 2:
        mean, sd = _firm_moments(Pv)
        mean, sd = mean[0], sd[0]
    else:
        mean, sd = np.zeros(J), np.ones(J)
    Zv = (Pv - mean) / sd
    ideal_z = (emp.ideal - mean) / sd
    test_v = emp.test_mask[emp.valid_mask]
    d_obs = profile_deviation(Zv[test_v], ideal_z[None, :], weights, squared=squared)[:, 0]
    r_obs = float(pearson_r(d_obs, yv[test_v]))
    n_test, n_cal = int(test_v.sum()), int(emp.n_top)
    reasons = []
    if n_test < min_test_firms:
        reasons.append(f"test sample has {n_test} firms, fewer than {min_test_firms}")
    if n_cal < min_calibration:
        reasons.append(f"calibration set has {n_cal} firms, fewer than {min_calibration}")
    common = dict(n_test=n_test, n_calibration=n_cal, draws=int(draws), seed=seed, alpha=float(alpha),
                  ideal=tuple(float(v) for v in emp.ideal))
    if reasons:
        reason = "; ".join(reasons)
        return BaselineResult(r_obs, None, None, True, reason, f"no verdict: underpowered ({reason})", **common)
    if not np.isfinite(r_obs):
        reason = "the observed correlation is undefined (constant deviation or outcome)"
        return BaselineResult(r_obs, None, None, True, reason, f"no verdict: {reason}", **common)

    rng = np.random.default_rng(seed)
    B = int(draws)
    # (a) random ideals uniform on the cube, same test sample
    U = (rng.random((B, J)) - mean) / sd
    r_u = pearson_r(profile_deviation(Zv[test_v], U, weights, squared=squared).T, yv[test_v])
    # (b) random calibration sets of the same size, the rest as test sample
    nv = Zv.shape[0]
    cal = np.argsort(rng.random((B, nv)), axis=1)[:, :n_cal]
    in_cal = np.zeros((B, nv), dtype=bool)
    np.put_along_axis(in_cal, cal, True, axis=1)
    ideals_c = Zv[cal].mean(axis=1)  # (B, J)
    d_c = profile_deviation(Zv, ideals_c, weights, squared=squared).T  # (B, nv)
    r_c = pearson_r(d_c, yv, mask=~in_cal)
    p_u, p_c = _p_value(r_u, r_obs), _p_value(r_c, r_obs)
    n_sig = int(p_u <= alpha) + int(p_c <= alpha)
    stats = f"r = {r_obs:.3f}, p uniform = {p_u:.3f}, p calibration = {p_c:.3f}, B = {B}"
    if n_sig == 2:
        verdict = f"supported: deviation from the empirical ideal is more negatively related to outcome than for random ideals ({stats})"
    elif n_sig == 1:
        verdict = f"mixed: only one baseline is beaten at alpha = {alpha} ({stats})"
    else:
        verdict = f"not supported: the empirical ideal does no better than random ideals ({stats})"
    return BaselineResult(r_obs, p_u, p_c, False, "", verdict, **common, r_uniform=r_u, r_calibration=r_c)


# ---------------------------------------------------------------------------
# outcome relation
def outcome_relation(deviation: Any, outcome: Any, industry: Any = None) -> dict[str, Any]:
    """Correlation and regression of outcome on deviation (one sample).

    Pearson and Spearman correlation (scipy) and the OLS of outcome on a constant, the
    deviation and industry dummies (first level dropped) with heteroskedasticity-robust
    HC1 standard errors (statsmodels; HC1 rather than HC3 because singleton industries
    have leverage 1).  Firms with a missing value are dropped.  Returns a dict of plain
    numbers (None where undefined).
    """
    import statsmodels.api as sm
    from scipy import stats

    d = np.asarray(deviation, dtype=float)
    y = np.asarray(outcome, dtype=float)
    ok = np.isfinite(d) & np.isfinite(y)
    ind = None
    if industry is not None:
        ind = pd.Series(np.asarray(industry, dtype=object))
        ok &= ind.notna().to_numpy()
    n = int(ok.sum())
    res: dict[str, Any] = {"n": n, "pearson_r": None, "pearson_p": None, "spearman_rho": None, "spearman_p": None, "ols": None}
    if n < 3 or np.ptp(d[ok]) == 0 or np.ptp(y[ok]) == 0:
        return res
    pr = stats.pearsonr(d[ok], y[ok])
    sr = stats.spearmanr(d[ok], y[ok])
    res.update(pearson_r=float(pr.statistic), pearson_p=float(pr.pvalue),
               spearman_rho=float(sr.statistic), spearman_p=float(sr.pvalue))
    design = pd.DataFrame({"const": 1.0, "deviation": d[ok]})
    if ind is not None:
        dummies = pd.get_dummies(ind[ok].astype(str).reset_index(drop=True), prefix="industry", drop_first=True, dtype=float)
        design = pd.concat([design, dummies], axis=1)
    if n - design.shape[1] < 1:
        res["ols"] = {"note": f"not fitted: {n} firms for {design.shape[1]} parameters"}
        return res
    fit = sm.OLS(y[ok], design).fit(cov_type="HC1")
    res["ols"] = {
        "coef": float(fit.params["deviation"]),
        "se": float(fit.bse["deviation"]),
        "p": float(fit.pvalues["deviation"]),
        "r2": float(fit.rsquared),
        "n": n,
        "n_params": int(design.shape[1]),
        "cov_type": "HC1",
        "industry_dummies": int(design.shape[1] - 2),
    }
    return res


