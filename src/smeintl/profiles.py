"""Ideal profiles, deviation, typing and the baseline test (numpy/pandas/scipy/statsmodels).

Definitions (DESIGN.md section 2, steps 5-9), exactly as implemented here:

**Deviation** (:func:`profile_deviation`): the weighted Euclidean distance of firm ``f``
from ideal ``k``, ``D_fk = sqrt(sum_j w_kj (x_fj - I_kj)^2)``; with ``squared=True`` the
square ``D_fk^2``.  With ``standardize=True`` each dimension is z-standardized over the
firms axis first, ``z = (x - mean_j) / sd_j`` with mean and sample sd (``ddof=1``) over
the firms whose profile is complete, and the ideals go through the same transformation
``(I - mean_j) / sd_j``.  A firm with any missing dimension gets NaN distances.

**Fit** (:func:`profile_fit`): ``fit = 1 - D / D_max`` where ``D_max`` is the largest
possible distance from the ideal over the unit cube [0, 1]^J,
``D_max_k = sqrt(sum_j w_kj max(I_kj, 1 - I_kj)^2)`` (the farthest corner), so fit is in
[0, 1] for profiles in the cube; for squared distances ``fit = 1 - D^2 / D_max^2``.
Fit is defined on the raw [0, 1] scale: :func:`type_arrays` computes it from the plain
(unstandardized, unsquared) distance whatever the ``standardize``/``squared`` options.

**Type** (:func:`classify`): the nearest ideal type; ties go to the first declared type
(``argmin``).  With ``hybrid_epsilon`` the label ``hybrid`` (code ``K``) is given when
the two smallest distances differ by at most epsilon (on the distance scale in use).
Firms with a NaN distance get code ``-1``.

**Flags**: a firm is *high* on construct ``c`` when ``index_c >= threshold_c``
(``spec.thresholds``, default 0.5); the flag's name is the construct's ``flag`` in the
spec (the bundled instrument: ``internationalizing`` for ``doi``, ``independent`` for
``independence``), ``high_<name>`` when the spec sets none.
Firms with a missing index have flag False in the boolean arrays, with
``flag_valid`` False; the per-firm table stores the flags as nullable booleans (<NA>).

**Quadrant rule** (:func:`quadrant_codes`), for ideal types that are corners of the
cube (coords 0 or 1, all 2^J corners declared): off a threshold, the firm is in the
corner on its side of each threshold; on a threshold exactly (``x_j == t_j``) both sides
are admissible and the first declared admissible corner wins -- the same tie rule as the
nearest type.  Hence with thresholds 0.5, weights common to all types, no hybrid label
and no standardization, the quadrant rule and the nearest corner agree *everywhere*,
boundaries included (an exact boundary point is equidistant, in floating point too, from
the two corners it separates).  With the Hitachi declaration order (for every pair of
corners separated by one dimension, the high one is declared first) the quadrant rule
also equals the ``>=`` flags at the boundary.  With standardization the two agree off
the boundary (the z-transform keeps midpoints); exact boundary ties are then not exact
in floating point (measure zero).

**Empirical ideal** (:func:`empirical_ideal`, Venkatraman & Prescott 1990): among the
``n`` firms with an outcome and a complete profile, the top ``m = ceil(top_share * n)``
(at least 1; computed as ``ceil(top_share * n - 1e-9)`` so that 0.1 * 30 gives 3) on the
outcome, ties broken by ascending firm id; the ideal is their mean profile and they are
removed from the test sample.

**Baseline test** (:func:`baseline_test`): ``r`` is the Pearson correlation over the
test sample of the deviation from an ideal with the outcome (a good ideal gives a
strongly negative ``r``).  Two baselines of ``B`` draws each: (a) *uniform*: random ideal
profiles uniform on the cube [0, 1]^J, test sample = the observed one; (b) *calibration*:
random calibration sets of ``m`` firms drawn without replacement from the ``n`` valid
firms, ideal = their mean profile, test sample = the other ``n - m`` firms.  One-sided
``p = (1 + #{r_b <= r_obs}) / (B + 1)`` (a NaN ``r_b`` counts as ``<=``, conservatively).
Seeded with ``numpy.random.default_rng(seed)``; the uniform ideals are drawn first
(``rng.random((B, J))``), then the calibration sets (``argsort`` of
``rng.random((B, n))``, first ``m`` per row).  Underpowered -- no p-values, no verdict --
when the test sample has fewer than ``min_test_firms`` firms or the calibration set
fewer than ``min_calibration``.

Every array function broadcasts over leading axes ``(..., firms, dims)`` with results
identical to a loop (the Bayesian comparison contract); :func:`baseline_test` and the
pandas layer (:func:`run_deterministic`) work on one observed sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .indices import IndicesResult, compute_indices
from .spec import ProfileSet, Spec

__all__ = [
    "HYBRID",
    "flag_name",
    "profile_deviation",
    "profile_fit",
    "max_distance",
    "classify",
    "quadrant_codes",
    "profile_set_arrays",
    "type_arrays",
    "subtype_arrays",
    "pearson_r",
    "EmpiricalIdealResult",
    "empirical_ideal",
    "BaselineResult",
    "baseline_test",
    "outcome_relation",
    "DeterministicResult",
    "SummaryDict",
    "run_deterministic",
]

#: label of the hybrid code (``K``) given by :func:`classify` with ``hybrid_epsilon``
HYBRID = "hybrid"


def flag_name(construct: str, spec: Spec) -> str:
    """Name of the threshold flag of a construct of ``spec``: the construct's ``flag``
    (``doi`` -> ``internationalizing`` in the bundled instrument), ``high_<name>`` when
    the spec sets none."""
    return spec.construct(construct).flag_name


# ---------------------------------------------------------------------------
# deviation and fit
def _ideal_arrays(ideals: Any, weights: Any, J: int) -> tuple[np.ndarray, np.ndarray]:
    I = np.asarray(ideals, dtype=float)
    if I.ndim == 1:
        I = I[None, :]
    if I.shape[-1] != J:
        raise ValueError(f"ideals have {I.shape[-1]} dimensions, the profiles have {J}")
    W = np.ones_like(I) if weights is None else np.asarray(weights, dtype=float)
    if W.ndim == 1:
        W = W[None, :]
    W = np.broadcast_to(W, np.broadcast_shapes(W.shape, I.shape[-2:]))
    return I, W


def _firm_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample sd (ddof=1) over the firms axis, on complete profiles only;
    shapes (..., 1, J); sd NaN where not positive."""
    complete = np.isfinite(X).all(axis=-1, keepdims=True)
    n = complete.sum(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(complete, X, 0.0).sum(axis=-2, keepdims=True) / n
        var = (np.where(complete, X - mean, 0.0) ** 2).sum(axis=-2, keepdims=True) / (n - 1)
    sd = np.sqrt(var)
    return mean, np.where(sd > 0, sd, np.nan)


def profile_deviation(
    X: Any,
    ideals: Any,
    weights: Any = None,
    *,
    standardize: bool = False,
    squared: bool = False,
) -> np.ndarray:
    """Weighted Euclidean distance of each firm from each ideal profile.

    ``X``: profiles ``(..., F, J)``; ``ideals``: ``(K, J)`` or ``(..., K, J)``;
    ``weights``: ``(K, J)`` or ``(J,)`` (default 1).  Returns ``(..., F, K)`` with
    ``D_fk = sqrt(sum_j w_kj (x_fj - I_kj)^2)`` (or its square with ``squared``); with
    ``standardize`` on dimensions z-standardized over the firms axis (ideals transformed
    with the same mean and sd).  NaN for firms with any missing dimension.
    """
    A = np.asarray(X, dtype=float)
    if A.ndim < 2:
        raise ValueError(f"profile_deviation: need X of shape (..., firms, dims), got {A.shape}")
    I, W = _ideal_arrays(ideals, weights, A.shape[-1])
    if standardize:
        mean, sd = _firm_moments(A)
        A = (A - mean) / sd
        I = (I - mean) / sd
    diff = A[..., :, None, :] - I[..., None, :, :]
    d2 = (W[..., None, :, :] * diff**2).sum(axis=-1)
    return d2 if squared else np.sqrt(d2)


def max_distance(ideals: Any, weights: Any = None) -> np.ndarray:
    """``D_max`` per ideal: the largest distance from it over the unit cube [0, 1]^J,
    ``sqrt(sum_j w_kj max(I_kj, 1 - I_kj)^2)`` (the farthest corner); ``(..., K)``."""
    I = np.asarray(ideals, dtype=float)
    I, W = _ideal_arrays(I, weights, I.shape[-1])
    return np.sqrt((W * np.maximum(I**2, (1.0 - I) ** 2)).sum(axis=-1))


def profile_fit(D: Any, ideals: Any, weights: Any = None, *, squared: bool = False) -> np.ndarray:
    """Fit to each ideal, ``1 - D / D_max`` (``1 - D / D_max^2`` for squared ``D``).

    ``D``: ``(..., F, K)`` unstandardized distances; ``D_max`` from :func:`max_distance`.
    1 at the ideal, 0 at the farthest corner of the cube.  NaN where ``D_max == 0``.
    """
    Dm = max_distance(ideals, weights)
    if squared:
        Dm = Dm**2
    Dm = np.where(Dm > 0, Dm, np.nan)
    return 1.0 - np.asarray(D, dtype=float) / Dm[..., None, :]


def classify(D: Any, *, hybrid_epsilon: float | None = None) -> np.ndarray:
    """Nearest ideal type codes ``(..., F)`` from distances ``(..., F, K)``.

    Code ``k`` = index of the smallest distance, ties to the first declared type;
    ``K`` (hybrid) when ``hybrid_epsilon`` is given and the two smallest distances
    differ by at most epsilon; ``-1`` where any distance of the firm is NaN.
    """
    A = np.asarray(D, dtype=float)
    K = A.shape[-1]
    if K == 0:
        raise ValueError("classify: no ideal types")
    bad = np.isnan(A).any(axis=-1)
    Z = np.where(np.isnan(A), np.inf, A)
    code = np.argmin(Z, axis=-1)
    if hybrid_epsilon is not None and K >= 2:
        two = np.sort(Z, axis=-1)[..., :2]
        with np.errstate(invalid="ignore"):
            hyb = (two[..., 1] - two[..., 0]) <= float(hybrid_epsilon)
        code = np.where(hyb, K, code)
    return np.where(bad, -1, code).astype(np.int64)


def _corner_types(pset: ProfileSet) -> np.ndarray:
    C = np.array([t.coords for t in pset.types], dtype=float).reshape(len(pset.types), len(pset.dimensions))
    if not np.isin(C, (0.0, 1.0)).all():
        raise ValueError("the quadrant rule needs ideal types at corners of the cube (coords 0 or 1)")
    J = C.shape[1]
    corners = {tuple(r) for r in C.astype(int).tolist()}
    if len(corners) < 2**J:
        raise ValueError(f"the quadrant rule needs all {2**J} corner types; declared {len(corners)} distinct corners")
    return C


def quadrant_codes(indices: Any, spec: Spec) -> np.ndarray:
    """Type codes by the threshold (quadrant) rule on ``spec.profiles``.

    ``indices``: ``(..., F, n_constructs)`` in ``spec.construct_names`` order.  Needs
    corner ideal types (all ``2^J`` corners).  Off a threshold a firm takes the corner on
    its side; at ``x_j == t_j`` both sides are admissible and the first declared
    admissible type wins (the nearest-type tie rule); ``-1`` for missing indices.
    """
    pset = spec.profiles
    C = _corner_types(pset)
    A = np.asarray(indices, dtype=float)
    cols = [spec.construct_names.index(d) for d in pset.dimensions]
    X = A[..., cols]
    t = np.array([spec.thresholds[d] for d in pset.dimensions], dtype=float)
    above, below, at = X > t, X < t, X == t
    code = np.full(X.shape[:-1], -1, dtype=np.int64)
    for k in range(C.shape[0] - 1, -1, -1):  # first declared wins: fill backwards
        hi = C[k] == 1.0
        ok = (np.where(hi, above, below) | at).all(axis=-1)
        code = np.where(ok, k, code)
    return np.where(np.isnan(X).any(axis=-1), -1, code)


# ---------------------------------------------------------------------------
# types on a profile set
def _select(A: np.ndarray, names: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    names = list(names)
    return A[..., [names.index(d) for d in wanted]]


def _pset_matrices(pset: ProfileSet) -> tuple[np.ndarray, np.ndarray]:
    J = len(pset.dimensions)
    I = np.array([t.coords for t in pset.types], dtype=float).reshape(len(pset.types), J)
    W = np.array([t.weights for t in pset.types], dtype=float).reshape(len(pset.types), J)
    return I, W


def profile_set_arrays(
    X: Any,
    pset: ProfileSet,
    *,
    standardize: bool = False,
    squared: bool = False,
    hybrid_epsilon: float | None = None,
) -> dict[str, Any]:
    """Distances, fit and type codes of profiles ``X`` ``(..., F, J)`` (columns in
    ``pset.dimensions`` order) for the ideal types of ``pset``.

    Returns ``'distance'`` ``(..., F, K)`` (with the ``standardize``/``squared``
    options), ``'fit'`` ``(..., F, K)`` (from the plain distance), ``'type'`` codes
    ``(..., F)`` and ``'type_names'`` (the declared names, plus ``'hybrid'`` when
    ``hybrid_epsilon`` is set).
    """
    I, W = _pset_matrices(pset)
    D = profile_deviation(X, I, W, standardize=standardize, squared=squared)
    plain = D if not (standardize or squared) else profile_deviation(X, I, W)
    names = pset.type_names + ((HYBRID,) if hybrid_epsilon is not None else ())
    return {
        "distance": D,
        "fit": profile_fit(plain, I, W),
        "type": classify(D, hybrid_epsilon=hybrid_epsilon),
        "type_names": names,
    }


def type_arrays(indices: Any, spec: Spec) -> dict[str, Any]:
    """Ideal-type distances, fit, type codes and threshold flags from construct indices.

    ``indices``: ``(..., F, n_constructs)`` in ``spec.construct_names`` order.  Returns
    the keys of :func:`profile_set_arrays` for ``spec.profiles`` (with the spec's
    ``standardize``, ``squared`` and ``hybrid_epsilon``) plus

    - ``'flags'`` ``(..., F, n_constructs)`` bool: ``index >= threshold`` (False where
      the index is missing), ``'flag_valid'`` (index present), ``'flag_names'``;
    - one bool ``(..., F)`` entry per flag name (the constructs' ``flag`` in the spec,
      e.g. ``'internationalizing'`` and ``'independent'``).

    Firms with a missing profile dimension get type ``-1``.
    """
    A = np.asarray(indices, dtype=float)
    if A.shape[-1] != len(spec.constructs):
        raise ValueError(f"type_arrays: last axis has {A.shape[-1]} columns, spec has {len(spec.constructs)} constructs")
    out = profile_set_arrays(
        _select(A, spec.construct_names, spec.profiles.dimensions),
        spec.profiles,
        standardize=spec.standardize,
        squared=spec.squared,
        hybrid_epsilon=spec.hybrid_epsilon,
    )
    t = np.array([spec.thresholds[c] for c in spec.construct_names], dtype=float)
    valid = ~np.isnan(A)
    flags = valid & (np.where(valid, A, -np.inf) >= t)
    names = spec.flag_names
    out.update({"flags": flags, "flag_valid": valid, "flag_names": names})
    for j, nm in enumerate(names):
        out[nm] = flags[..., j]
    return out


def subtype_arrays(sub: Any, spec: Spec) -> dict[str, Any] | None:
    """:func:`profile_set_arrays` for ``spec.subdimension_profiles`` on sub-dimension
    scores ``(..., F, n_subdims)`` (``spec.subdimension_names`` order); None when the
    spec declares no sub-dimension profiles."""
    pset = spec.subdimension_profiles
    if pset is None:
        return None
    return profile_set_arrays(
        _select(np.asarray(sub, dtype=float), spec.subdimension_names, pset.dimensions),
        pset,
        standardize=spec.standardize,
        squared=spec.squared,
        hybrid_epsilon=spec.hybrid_epsilon,
    )


# ---------------------------------------------------------------------------
# correlation
def pearson_r(x: Any, y: Any, mask: Any = None) -> np.ndarray:
    """Pearson correlation over the last axis, on the pairs where both are finite (and
    ``mask`` is True); broadcasts over leading axes.  NaN with fewer than 3 pairs or a
    zero variance."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = np.broadcast_arrays(x, y)
    m = np.isfinite(x) & np.isfinite(y)
    if mask is not None:
        m = m & np.asarray(mask, dtype=bool)
    n = m.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.where(m, x, 0.0).sum(axis=-1) / n
        my = np.where(m, y, 0.0).sum(axis=-1) / n
        dx = np.where(m, x - mx[..., None], 0.0)
        dy = np.where(m, y - my[..., None], 0.0)
        sxy = (dx * dy).sum(axis=-1)
        sxx = (dx * dx).sum(axis=-1)
        syy = (dy * dy).sum(axis=-1)
        r = sxy / np.sqrt(sxx * syy)
    r = np.where((n >= 3) & (sxx > 0) & (syy > 0), np.clip(r, -1.0, 1.0), np.nan)
    return r[()] if r.ndim == 0 else r


# ---------------------------------------------------------------------------
# empirical ideal
@dataclass(frozen=True, eq=False)
class EmpiricalIdealResult:
    """Empirical ideal (Venkatraman & Prescott): mean profile of the top firms on outcome.

    ``ideal`` ``(..., J)``; masks ``(..., F)``: ``valid`` (outcome and complete profile),
    ``top`` (the calibration set) and ``test`` (valid and not top); ``n_valid`` and
    ``n_top`` ``(...)`` (ints for a 2-D profile matrix); ``top_ids``: the calibration
    firm ids in rank order (2-D input only, else None).
    """

    ideal: np.ndarray
    valid_mask: np.ndarray
    top_mask: np.ndarray
    test_mask: np.ndarray
    n_valid: Any
    n_top: Any
    top_share: float
    top_ids: tuple | None = None


def _n_top(n: Any, top_share: float) -> np.ndarray:
    n = np.asarray(n)
    m = np.ceil(top_share * n - 1e-9).astype(np.int64)
    return np.where(n > 0, np.maximum(m, 1), 0)


def empirical_ideal(profile_matrix: Any, outcome: Any, firm_ids: Sequence[Any] | None = None, top_share: float = 0.1) -> EmpiricalIdealResult:
    """The empirical ideal profile and its calibration (top) / test split.

    ``profile_matrix``: ``(..., F, J)``; ``outcome``: ``(F,)`` (firm-level, shared by the
    leading axes); ``firm_ids``: ``(F,)`` sortable ids (default ``0..F-1``).  Valid firms
    have an outcome and a complete profile; the top ``ceil(top_share * n_valid)`` of them
    on outcome (ties: ascending firm id) form the calibration set, whose mean profile is
    the ideal; the other valid firms are the test sample.
    """
    P = np.asarray(profile_matrix, dtype=float)
    y = np.asarray(outcome, dtype=float)
    if P.ndim < 2 or y.ndim != 1 or y.shape[0] != P.shape[-2]:
        raise ValueError(f"empirical_ideal: need profiles (..., F, J) and outcome (F,), got {P.shape} and {y.shape}")
    F = y.shape[0]
    ids = list(range(F)) if firm_ids is None else list(firm_ids)
    if len(ids) != F:
        raise ValueError(f"empirical_ideal: {len(ids)} firm ids for {F} firms")
    finite = np.isfinite(y)
    order = np.array(sorted(np.flatnonzero(finite).tolist(), key=lambda i: (-y[i], ids[i])), dtype=np.int64)
    valid = np.isfinite(P).all(axis=-1) & finite
    n = valid.sum(axis=-1)
    m = _n_top(n, top_share)
    top = np.zeros_like(valid)
    if order.size:
        v_o = valid[..., order]
        top[..., order] = v_o & (np.cumsum(v_o, axis=-1) <= m[..., None])
    with np.errstate(invalid="ignore", divide="ignore"):
        ideal = np.where(top[..., None], P, 0.0).sum(axis=-2) / np.where(m > 0, m, np.nan)[..., None]
    top_ids = None
    if P.ndim == 2:
        top_ids = tuple(ids[i] for i in order if top[i])
        n, m = int(n), int(m)
    return EmpiricalIdealResult(ideal, valid, top, valid & ~top, n, m, float(top_share), top_ids)


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


# ---------------------------------------------------------------------------
# the pandas layer
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


def _mean_sd(v: np.ndarray) -> dict[str, Any]:
    v = v[np.isfinite(v)]
    return {
        "n": int(v.size),
        "mean": float(v.mean()) if v.size else None,
        "sd": float(v.std(ddof=1)) if v.size >= 2 else None,
    }


def _counts(codes: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    typed = codes >= 0
    n = int(typed.sum())
    counts = {nm: int((codes == k).sum()) for k, nm in enumerate(names)}
    return {
        "n": int(codes.size),
        "n_typed": n,
        "n_untyped": int(codes.size - n),
        "counts": counts,
        "shares": {nm: (c / n if n else None) for nm, c in counts.items()},
    }


class SummaryDict(dict):
    """The summary of a :class:`DeterministicResult`: the JSON-serializable dict
    (``result.summary["types"]``, written as ``summary.json``) that, called, gives the
    headline table as a DataFrame (``result.summary()``), like the ``summary()`` of the
    other result objects."""

    __slots__ = ()

    def __call__(self) -> pd.DataFrame:
        return _headline_table(self)


def _headline_table(s: Mapping[str, Any]) -> pd.DataFrame:
    """One row per ideal type (nearest-type counts) and per threshold flag: ``kind``
    (``type`` / ``flag``), ``name``, ``rule``, ``count``, ``n`` (firms with the needed
    indices), ``share`` (NaN when ``n`` is 0)."""
    t = s["types"]
    rows = [
        {"kind": "type", "name": nm, "rule": "nearest ideal type", "count": t["counts"][nm], "n": t["n_typed"],
         "share": t["shares"][nm]}
        for nm in t["names"]
    ]
    rows += [
        {"kind": "flag", "name": fn, "rule": f["rule"], "count": f["count"], "n": f["n"], "share": f["share"]}
        for fn, f in s["flags"].items()
    ]
    table = pd.DataFrame(rows, columns=["kind", "name", "rule", "count", "n", "share"])
    table["share"] = table["share"].astype(float)
    return table


@dataclass(frozen=True, eq=False)
class DeterministicResult:
    """Result of :func:`run_deterministic`.

    ``firms``: one row per firm (see :func:`run_deterministic`); ``summary``: a
    JSON-serializable dict (a :class:`SummaryDict`: ``summary()`` is the headline table
    as a DataFrame); ``indices``: the :class:`~smeintl.indices.IndicesResult`;
    ``empirical`` and ``baseline``: the empirical ideal and baseline test (None
    without an outcome); ``spec``: the spec used.  :meth:`text` is the summary as
    plain text, :meth:`to_dict` a plain copy of the summary dict.
    """

    firms: pd.DataFrame
    summary: dict[str, Any]
    indices: IndicesResult
    spec: Spec
    empirical: EmpiricalIdealResult | None = None
    baseline: BaselineResult | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.summary, SummaryDict):
            object.__setattr__(self, "summary", SummaryDict(self.summary))

    def summary_text(self) -> str:
        """A readable plain-text table of the summary."""
        return _summary_text(self.summary)

    def text(self) -> str:
        """The summary as readable plain text (same as :meth:`summary_text`)."""
        return self.summary_text()

    def to_dict(self) -> dict[str, Any]:
        """The summary as a plain JSON-serializable dict (a copy; what ``summary.json`` holds)."""
        return _jsonable(self.summary)


def _outcome_series(survey: Any, spec: Spec, ids: pd.Index) -> pd.Series | None:
    firms = getattr(survey, "firms", None)
    if firms is None:
        return None
    for col in (spec.empirical.outcome, spec.outcome_column, "outcome"):
        if col and col in firms.columns:
            y = pd.to_numeric(firms[col], errors="coerce").reindex(ids)
            return y.astype(float)
    return None


def run_deterministic(survey: Any, *, spec: Spec | None = None, seed: int | None = None) -> DeterministicResult:
    """Run the whole deterministic (original) method on a survey.

    ``spec`` overrides ``survey.spec`` (sensitivity analyses); ``seed`` overrides
    ``spec.baseline['seed']`` for the baseline test.

    ``firms`` columns: ``firm_id``, ``industry`` (the spec's group column, whatever its
    name in the file; <NA> without one), ``s_<item>`` (scaled items), the
    sub-dimension scores (named as in the spec), one column per construct index,
    ``sullivan_<construct>``, ``dist_<type>`` and ``fit_<type>`` per ideal type,
    ``type`` (categorical of the declared names, plus ``hybrid`` when
    ``hybrid_epsilon`` is set; <NA> for firms with a missing index), one nullable
    boolean per threshold flag (``internationalizing``, ``independent``, ...), with
    sub-dimension profiles ``subdist_<type>`` and ``subtype``, and with an outcome
    ``outcome``, ``empirical_dist`` (deviation from the empirical ideal) and
    ``empirical_top`` (in the calibration set).  With ``standardize`` the empirical
    distance uses the mean and sd of the firms eligible for the empirical ideal.

    ``summary`` keys: ``n_firms``; ``types`` (names, counts, shares over the typed
    firms -- every declared type listed, zero counts included -- ``n_typed``,
    ``n_untyped``) and ``types_by_industry``; ``flags`` (count, share over the firms
    with that index, rule, by industry); ``indices`` (mean, sd with ddof=1 and n, overall
    and by industry); ``alpha`` (per construct, over items and over sub-dimensions,
    with the complete cases used); ``quadrant_agreement`` (typed firms whose quadrant
    type equals the nearest type, or why the rule does not apply); ``subtypes`` when the
    spec has sub-dimension profiles; ``outcome``: without an outcome a ``note``; with
    one, ``relation`` (Pearson, Spearman and the OLS of outcome on deviation with
    industry dummies and HC1 errors: for the empirical ideal over its test sample, for
    each theoretical type over all firms with an outcome) and ``baseline``
    (:meth:`BaselineResult.to_dict`); ``settings`` and the spec and data hashes.
    """
    spec = spec if spec is not None else survey.spec
    seed = int(spec.baseline.get("seed", 0)) if seed is None else seed
    ind = compute_indices(survey, spec)
    ids = ind.indices.index
    F = len(ids)
    indices = ind.indices.to_numpy()
    sub = ind.subdimensions.to_numpy()
    ta = type_arrays(indices, spec)
    sa = subtype_arrays(sub, spec)

    firms_tab = getattr(survey, "firms", None)
    gcol = next((c for c in (spec.group_column, "industry") if c and firms_tab is not None and c in firms_tab.columns), None)
    if gcol is not None:
        industry = firms_tab[gcol].reindex(ids).astype(object)
    else:
        industry = pd.Series([pd.NA] * F, index=ids, dtype=object)

    cols = _Columns()
    cols["firm_id"] = ids.to_numpy()
    cols["industry"] = industry.to_numpy()
    for it in spec.item_names:
        cols[f"s_{it}"] = ind.scaled[it].to_numpy()
    for sd in spec.subdimension_names:
        cols[sd] = ind.subdimensions[sd].to_numpy()
    for c in spec.construct_names:
        cols[c] = ind.indices[c].to_numpy()
    for c in spec.construct_names:
        cols[f"sullivan_{c}"] = ind.sullivan[c].to_numpy()
    tnames = spec.profiles.type_names
    for k, t in enumerate(tnames):
        cols[f"dist_{t}"] = ta["distance"][:, k]
    for k, t in enumerate(tnames):
        cols[f"fit_{t}"] = ta["fit"][:, k]
    cols["type"] = _type_column(ta["type"], ta["type_names"])
    for j, fn in enumerate(ta["flag_names"]):
        cols[fn] = pd.array(np.where(ta["flag_valid"][:, j], ta["flags"][:, j], None), dtype="boolean")
    if sa is not None:
        for k, t in enumerate(spec.subdimension_profiles.type_names):
            cols[f"subdist_{t}"] = sa["distance"][:, k]
        cols["subtype"] = _type_column(sa["type"], sa["type_names"])

    y = _outcome_series(survey, spec, ids)
    has_outcome = y is not None and bool(np.isfinite(y.to_numpy()).any())
    emp = base = None
    outcome_summary: dict[str, Any]
    if has_outcome:
        yv = y.to_numpy()
        dims = spec.empirical.dimensions or spec.profiles.dimensions
        lookup = {**{c: ind.indices[c] for c in spec.construct_names}, **{s: ind.subdimensions[s] for s in spec.subdimension_names}}
        P = np.column_stack([lookup[d].to_numpy() for d in dims])
        emp = empirical_ideal(P, yv, list(ids), spec.empirical.top_share)
        if spec.standardize:
            mean, sd = _firm_moments(P[emp.valid_mask])
            mean, sd = mean[0], sd[0]
        else:
            mean, sd = 0.0, 1.0
        d_emp = profile_deviation((P - mean) / sd, ((emp.ideal - mean) / sd)[None, :], squared=spec.squared)[:, 0]
        cols["outcome"] = yv
        cols["empirical_dist"] = d_emp
        cols["empirical_top"] = emp.top_mask
        base = baseline_test(
            P, yv, list(ids),
            top_share=spec.empirical.top_share,
            draws=int(spec.baseline.get("draws", 1000)),
            seed=seed,
            min_test_firms=int(spec.baseline.get("min_test_firms", 20)),
            min_calibration=int(spec.baseline.get("min_calibration", 3)),
            standardize=spec.standardize,
            squared=spec.squared,
            alpha=float(spec.baseline.get("alpha", 0.05)),
        )
        ind_arr = None if industry.isna().all() else industry.to_numpy()
        test = emp.test_mask
        rel = {
            "empirical": {
                "dimensions": list(dims),
                "ideal": [float(v) for v in emp.ideal],
                "calibration_firms": list(emp.top_ids or ()),
                "n_valid": emp.n_valid,
                "n_calibration": emp.n_top,
                "n_test": int(test.sum()),
                **outcome_relation(d_emp[test], yv[test], None if ind_arr is None else ind_arr[test]),
            }
        }
        for k, t in enumerate(tnames):
            rel[t] = outcome_relation(ta["distance"][:, k], yv, ind_arr)
        outcome_summary = {"available": True, "n_with_outcome": int(np.isfinite(yv).sum()), "relation": rel,
                           "baseline": base.to_dict()}
    else:
        note = ("no outcome column: the empirical ideal, outcome relation and baseline test are skipped"
                if y is None else "the outcome column has no values: the empirical ideal, outcome relation and baseline test are skipped")
        outcome_summary = {"available": False, "note": note}

    firms = pd.DataFrame(cols)

    summary = _build_summary(spec, survey, firms, ind, ta, sa, industry, outcome_summary, seed)
    return DeterministicResult(firms, summary, ind, spec, emp, base)


class _Columns(dict):
    """Ordered column dict that refuses a name twice (e.g. a sub-dimension named like a
    construct, or ``s_x`` clashing with a sub-dimension)."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self:
            raise ValueError(
                f"firm table column {key!r} would be written twice: rename the sub-dimension, construct, "
                "item or ideal type that produces it"
            )
        super().__setitem__(key, value)


def _type_column(codes: np.ndarray, names: Sequence[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(names))


def _build_summary(spec, survey, firms, ind, ta, sa, industry, outcome_summary, seed) -> dict[str, Any]:
    codes = ta["type"]
    tn = list(ta["type_names"])
    ind_vals = industry.to_numpy()
    has_ind = not industry.isna().all()
    groups = sorted({g for g in ind_vals if not pd.isna(g)}, key=str) if has_ind else []

    types = {"names": tn, **_counts(codes, tn)}
    by_ind = {str(g): _counts(codes[ind_vals == g], tn) for g in groups}

    flags = {}
    for j, (c, fn) in enumerate(zip(spec.construct_names, ta["flag_names"])):
        valid = ta["flag_valid"][:, j]
        nv = int(valid.sum())
        cnt = int(ta["flags"][:, j].sum())
        flags[fn] = {
            "construct": c,
            "threshold": float(spec.thresholds[c]),
            "rule": f"{c} >= {spec.thresholds[c]}",
            "count": cnt,
            "n": nv,
            "share": cnt / nv if nv else None,
            "by_industry": {
                str(g): {"count": int(ta["flags"][ind_vals == g, j].sum()), "n": int(valid[ind_vals == g].sum())}
                for g in groups
            },
        }

    def idx_stats(mask):
        return {c: _mean_sd(firms[c].to_numpy()[mask]) for c in spec.construct_names}

    all_mask = np.ones(len(firms), dtype=bool)
    idx_summary = {"overall": idx_stats(all_mask), "by_industry": {str(g): idx_stats(ind_vals == g) for g in groups}}
    alpha = {
        c: {
            "items": row.alpha_items,
            "items_n_cases": int(row.n_cases_items),
            "n_items": int(row.n_items),
            "subdimensions": row.alpha_subdimensions,
            "subdimensions_n_cases": int(row.n_cases_subdimensions),
            "n_subdimensions": int(row.n_subdimensions),
        }
        for c, row in ind.alpha.iterrows()
    }
    out: dict[str, Any] = {
        "spec": spec.name,
        "spec_hash": spec.hash,
        "data_hash": getattr(survey, "data_hash", None),
        "source": str(getattr(survey, "source", "")) or None,
        "n_firms": int(len(firms)),
        "settings": {
            "profile_dimensions": list(spec.profiles.dimensions),
            "thresholds": dict(spec.thresholds),
            "standardize": spec.standardize,
            "squared": spec.squared,
            "hybrid_epsilon": spec.hybrid_epsilon,
            "seed": seed,
        },
        "types": types,
        "types_by_industry": by_ind,
        "flags": flags,
        "indices": idx_summary,
        "alpha": alpha,
    }
    try:
        q = quadrant_codes(ind.indices.to_numpy(), spec)
        typed = codes >= 0
        out["quadrant_agreement"] = {"n": int(typed.sum()), "agree": int((q[typed] == codes[typed]).sum())}
    except ValueError as exc:
        out["quadrant_agreement"] = {"note": f"not applicable: {exc}"}
    if sa is not None:
        stn = list(sa["type_names"])
        out["subtypes"] = {
            "dimensions": list(spec.subdimension_profiles.dimensions),
            "names": stn,
            **_counts(sa["type"], stn),
            "by_industry": {str(g): _counts(sa["type"][ind_vals == g], stn) for g in groups},
        }
    out["outcome"] = outcome_summary
    return _jsonable(out)


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _summary_text(s: Mapping[str, Any]) -> str:
    L: list[str] = []
    L.append(f"Deterministic ideal-profile method: spec {s['spec']} ({s['spec_hash'][:12]}), {s['n_firms']} firms")
    st = s["settings"]
    L.append(
        f"  profiles on {', '.join(st['profile_dimensions'])}; standardize={st['standardize']}, "
        f"squared={st['squared']}, hybrid_epsilon={st['hybrid_epsilon']}"
    )
    L.append("")
    t = s["types"]
    L.append(f"Types (nearest ideal type, ties to the first declared; {t['n_typed']} typed, {t['n_untyped']} with a missing index)")
    w = max([len(n) for n in t["names"]] + [8])
    L.append(f"  {'type':<{w}}  {'count':>5}  {'share':>6}")
    for nm in t["names"]:
        sh = t["shares"][nm]
        L.append(f"  {nm:<{w}}  {t['counts'][nm]:>5}  {('-' if sh is None else f'{100 * sh:5.1f}%'):>6}")
    if s["types_by_industry"]:
        L.append("")
        L.append("Types by industry (counts)")
        gw = max([len(g) for g in s["types_by_industry"]] + [8])
        hdr = "  ".join(f"{nm:>{max(len(nm), 5)}}" for nm in t["names"])
        L.append(f"  {'industry':<{gw}}  {'n':>3}  {hdr}")
        for g, c in s["types_by_industry"].items():
            row = "  ".join(f"{c['counts'][nm]:>{max(len(nm), 5)}}" for nm in t["names"])
            L.append(f"  {g:<{gw}}  {c['n']:>3}  {row}")
    L.append("")
    L.append("Flags")
    for fn, f in s["flags"].items():
        sh = "-" if f["share"] is None else f"{100 * f['share']:.1f}%"
        L.append(f"  {fn} ({f['rule']}): {f['count']} of {f['n']} ({sh})")
    qa = s.get("quadrant_agreement", {})
    if "agree" in qa:
        L.append(f"  quadrant rule agrees with the nearest type for {qa['agree']} of {qa['n']} typed firms")
    L.append("")
    L.append("Indices: mean (sd) [n]")
    cons = list(s["indices"]["overall"])
    rows = [("all", s["indices"]["overall"])] + list(s["indices"]["by_industry"].items())
    gw = max([len(r[0]) for r in rows] + [8])
    L.append(f"  {'industry':<{gw}}  " + "  ".join(f"{c[:22]:>22}" for c in cons))
    for g, stats in rows:
        cells = [f"{_fmt(stats[c]['mean'])} ({_fmt(stats[c]['sd'])}) [{stats[c]['n']}]" for c in cons]
        L.append(f"  {g:<{gw}}  " + "  ".join(f"{x:>22}" for x in cells))
    L.append("")
    L.append("Reliability: Cronbach's alpha (complete cases)")
    gw = max([len(c) for c in s["alpha"]] + [9])
    L.append(f"  {'construct':<{gw}}  {'items':>8} {'n':>4}  {'sub-dims':>8} {'n':>4}")
    for c, a in s["alpha"].items():
        L.append(f"  {c:<{gw}}  {_fmt(a['items']):>8} {a['items_n_cases']:>4}  {_fmt(a['subdimensions']):>8} {a['subdimensions_n_cases']:>4}")
    if "subtypes" in s:
        st = s["subtypes"]
        L.append("")
        L.append(f"Sub-dimension profile types ({st['n_typed']} typed)")
        for nm in st["names"]:
            L.append(f"  {nm:<{w}}  {st['counts'][nm]:>5}")
    L.append("")
    o = s["outcome"]
    if not o["available"]:
        L.append(f"Outcome: {o['note']}")
    else:
        L.append(f"Outcome relation ({o['n_with_outcome']} firms with outcome): deviation vs outcome")
        L.append(f"  {'ideal':<{w}}  {'n':>4}  {'pearson r':>9}  {'spearman':>9}  {'OLS b':>8}  {'se':>7}  {'p':>6}")
        for nm, r in o["relation"].items():
            ols = r.get("ols") or {}
            L.append(
                f"  {nm:<{w}}  {r['n']:>4}  {_fmt(r['pearson_r']):>9}  {_fmt(r['spearman_rho']):>9}  "
                f"{_fmt(ols.get('coef')):>8}  {_fmt(ols.get('se')):>7}  {_fmt(ols.get('p')):>6}"
            )
        b = o["baseline"]
        L.append("")
        L.append(f"Baseline test (B = {b['draws']}, seed {b['seed']}; test n = {b['n_test']}, calibration n = {b['n_calibration']})")
        L.append(f"  r_obs = {_fmt(b['r_obs'])}; p uniform = {_fmt(b['p_uniform'])}; p calibration = {_fmt(b['p_calibration'])}")
        L.append(f"  {b['verdict']}")
    return "\n".join(L)
