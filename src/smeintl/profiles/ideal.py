"""Ideal profiles, deviation, fit, typing, flags, the quadrant rule and the empirical ideal:
pure numpy over leading (draw) axes (definitions in :mod:`smeintl.profiles`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..spec import ProfileSet, Spec


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
    differ by at most epsilon; ``-1`` where any distance of the firm is NaN, and for
    every firm when there are no ideal types (a spec without a typology).
    """
    A = np.asarray(D, dtype=float)
    K = A.shape[-1]
    if K == 0:
        return np.full(A.shape[:-1], -1, dtype=np.int64)
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


