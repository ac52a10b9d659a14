"""Deterministic indices of the original method (numpy/pandas only, no PyMC).

Definitions (DESIGN.md section 2, steps 1-4), exactly as implemented here:

**Item scaling to [0, 1]** (:func:`scale_items`), per item of the spec:

==========  ==========================================================
likert      ``(x - min) / (max - min)``
stage       ``(s - min) / (max - min)``; ``min`` defaults to 0, so ``s / max``
percent     ``(x - min) / (max - min)`` with the spec defaults 0 and 100, i.e. ``x / 100``
count       ``min(x, cap) / cap``
binary      ``x`` as is (0 or 1)
continuous  ``(x - min) / (max - min)`` clipped to [0, 1]
==========  ==========================================================

then reverse-coded items ``v -> 1 - v``.  Likert, stage, percent, count and binary
values are *not* clipped: range checks belong to the data reader, and an out-of-range
answer should show up, not be hidden.  The raw item array must therefore hold the raw
answers (not reverse-coded): the reverse flag is applied here, once.

**Sub-dimension score** (:func:`subdimension_scores`): the weighted mean, with the item
weights of the spec, of the scaled items present (not NaN).  A sub-dimension with
``n`` items is missing (NaN) when fewer than ``ceil(n / 2)`` of them are present, or
when the weights of the present items sum to zero.

**Construct index** (:func:`construct_indices`): the weighted mean, with the spec's
``subdimension_weights`` (default equal), of the construct's sub-dimension scores
present; missing when fewer than ``ceil(n_subdims / 2)`` are present (or their weights
sum to zero).  **Sullivan-style sum** (:func:`sullivan_sums`): the unit-weighted sum of
the construct's sub-dimension scores (Sullivan 1994 adds unit-weighted 0-1 ratios),
missing if any of them is missing; its range is ``[0, n_subdims]``.

**Cronbach's alpha** (:func:`cronbach_alpha`): on the complete cases (rows with no NaN),
``alpha = k / (k - 1) * (1 - sum_i var(M_i) / var(sum_i M_i))`` with sample variances
(``ddof = 1``); NaN when ``k < 2``, fewer than 2 complete cases, or zero total variance.
:func:`compute_indices` reports it per construct over its scaled items and over its
sub-dimension scores, each with the number of complete cases used.

**Broadcasting contract.**  Every array function takes arrays whose last two axes are
``(firms, columns)`` and treats any leading axes (e.g. ``(chain, draw)``) as independent
replicates: the result for ``X[a, b]`` is exactly (bit for bit) the result of calling the
function on ``X[a, b]`` alone.  The Bayesian posterior predictive comparison relies on
this: it calls :func:`index_arrays` on replicated item arrays of shape
``(chain, draw, firms, items)``.  Column orders are fixed by the spec: items in
``spec.item_names``, sub-dimensions in ``spec.subdimension_names``, constructs in
``spec.construct_names``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .spec import Spec

__all__ = [
    "min_present",
    "scale_items",
    "subdimension_scores",
    "construct_indices",
    "sullivan_sums",
    "cronbach_alpha",
    "alpha_undefined",
    "index_arrays",
    "item_matrix",
    "IndicesResult",
    "compute_indices",
]


def min_present(n: int) -> int:
    """Least number of present parts for a mean over ``n`` parts: ``ceil(n / 2)``."""
    return (int(n) + 1) // 2


def _as_float(X: Any, width: int, what: str) -> np.ndarray:
    A = np.asarray(X, dtype=float)
    if A.ndim < 2:
        raise ValueError(f"{what}: need an array of shape (..., firms, {width}), got shape {A.shape}")
    if A.shape[-1] != width:
        raise ValueError(f"{what}: last axis has {A.shape[-1]} columns, the spec declares {width}")
    return A


# ---------------------------------------------------------------------------
# step 1: item scaling
def _scale_plan(spec: Spec) -> tuple[np.ndarray, ...]:
    lo, span, cap, clip, rev = [], [], [], [], []
    for it in spec.items:
        a, s, c, k = it.family.scaling(it)  # each item family's scaling (smeintl.families)
        lo.append(a)
        span.append(s)
        cap.append(c)
        clip.append(k)
        rev.append(bool(it.reverse))
    return (np.array(lo), np.array(span), np.array(cap), np.array(clip), np.array(rev))


def scale_items(X: Any, spec: Spec) -> np.ndarray:
    """Scale raw item answers to [0, 1] (see the module docstring for each scale type).

    ``X`` has shape ``(..., firms, items)`` with items in ``spec.item_names`` order and
    NaN for a missing answer (which stays NaN).  Returns a float array of the same shape.
    """
    A = _as_float(X, len(spec.items), "scale_items")
    lo, span, cap, clip, rev = _scale_plan(spec)
    V = (np.minimum(A, cap) - lo) / span
    V = np.where(clip, np.clip(V, 0.0, 1.0), V)
    return np.where(rev, 1.0 - V, V)


# ---------------------------------------------------------------------------
# steps 2 and 3: weighted means with a half-present rule
def _grouped_weighted_mean(A: np.ndarray, groups: Sequence[tuple[Sequence[int], Sequence[float]]]) -> np.ndarray:
    """Per group (column indices, weights): weighted mean of the present columns, NaN
    when fewer than ceil(n/2) are present or their weights sum to zero."""
    out = np.empty(A.shape[:-1] + (len(groups),))
    for g, (idx, w) in enumerate(groups):
        block = A[..., list(idx)]
        w = np.asarray(w, dtype=float)
        present = ~np.isnan(block)
        n_present = present.sum(axis=-1)
        num = np.where(present, block * w, 0.0).sum(axis=-1)
        den = np.where(present, w, 0.0).sum(axis=-1)
        ok = (n_present >= min_present(len(idx))) & (den > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[..., g] = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
    return out


def _subdimension_groups(spec: Spec) -> list[tuple[list[int], list[float]]]:
    names = spec.item_names
    groups = []
    for sd in spec.subdimension_names:
        its = spec.items_of(subdimension=sd)
        groups.append(([names.index(i.name) for i in its], [i.weight for i in its]))
    return groups


def _construct_groups(spec: Spec) -> list[tuple[list[int], list[float]]]:
    names = spec.subdimension_names
    return [([names.index(s) for s in c.subdimensions], list(c.subdimension_weights)) for c in spec.constructs]


def subdimension_scores(S: Any, spec: Spec) -> np.ndarray:
    """Sub-dimension scores from scaled items.

    ``S`` has shape ``(..., firms, items)`` (scaled, items in ``spec.item_names`` order);
    returns ``(..., firms, n_subdims)`` in ``spec.subdimension_names`` order.  Score =
    ``sum_i w_i s_i / sum_i w_i`` over the items present; NaN when fewer than
    ``ceil(n_items / 2)`` are present.
    """
    A = _as_float(S, len(spec.items), "subdimension_scores")
    return _grouped_weighted_mean(A, _subdimension_groups(spec))


def construct_indices(sub: Any, spec: Spec) -> np.ndarray:
    """Construct indices (e.g. DOI, independence) from sub-dimension scores.

    ``sub`` has shape ``(..., firms, n_subdims)``; returns ``(..., firms, n_constructs)``
    in ``spec.construct_names`` order.  Index = weighted mean (``subdimension_weights``)
    of the sub-dimension scores present; NaN when fewer than ``ceil(n_subdims / 2)`` are.
    """
    A = _as_float(sub, len(spec.subdimension_names), "construct_indices")
    return _grouped_weighted_mean(A, _construct_groups(spec))


def sullivan_sums(sub: Any, spec: Spec) -> np.ndarray:
    """Sullivan-style unit-weighted sum of each construct's sub-dimension scores.

    Returns ``(..., firms, n_constructs)``; NaN when any sub-dimension of the construct
    is missing.  Range ``[0, n_subdims]``.
    """
    A = _as_float(sub, len(spec.subdimension_names), "sullivan_sums")
    out = np.empty(A.shape[:-1] + (len(spec.constructs),))
    for g, (idx, _w) in enumerate(_construct_groups(spec)):
        out[..., g] = A[..., idx].sum(axis=-1)
    return out


# ---------------------------------------------------------------------------
# step 4: reliability
def cronbach_alpha(M: Any) -> tuple[Any, Any]:
    """Cronbach's alpha of the columns of ``M`` (cases in rows), on complete cases.

    ``alpha = k/(k-1) * (1 - sum_i var_i / var_total)`` with sample variances
    (``ddof=1``) over the rows that have no NaN.  Returns ``(alpha, n_cases)``: a float
    and an int for a 2-D ``M``; arrays over the leading axes for ``(..., cases, k)``.
    ``alpha`` is NaN when ``k < 2``, fewer than 2 complete cases, or zero total variance
    (:func:`alpha_undefined` says which).  Zero variance is exact: the complete cases'
    sums all equal, e.g. every firm giving the same answers.  It is not left to rounding:
    deviations from a mean such as 1/3 are not exactly zero in floating point, which
    gave 0 or any other number instead of "undefined" depending on the values.
    """
    A = np.asarray(M, dtype=float)
    if A.ndim < 2:
        raise ValueError(f"cronbach_alpha: need shape (..., cases, k), got {A.shape}")
    k = A.shape[-1]
    complete = ~np.isnan(A).any(axis=-1)  # (..., n)
    n = complete.sum(axis=-1)  # (...)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(complete[..., None], A, 0.0).sum(axis=-2) / n[..., None]
        dev = np.where(complete[..., None], A - mean[..., None, :], 0.0)
        item_var = (dev**2).sum(axis=-2) / (n[..., None] - 1)
        total_var = (dev.sum(axis=-1) ** 2).sum(axis=-1) / (n - 1)
        ok = (n >= 2) & (k >= 2) & (total_var > 0) & ~_constant_sums(A, complete)
        alpha = np.where(ok, (k / max(k - 1, 1)) * (1.0 - item_var.sum(axis=-1) / total_var), np.nan)
    if A.ndim == 2:
        return float(alpha), int(n)
    return alpha, n


def _constant_sums(A: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """True where the sums of the complete cases are all equal, to rounding (zero total variance)."""
    sums = np.where(complete, A.sum(axis=-1), np.nan)  # (..., n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no complete case
        spread = np.nanmax(sums, axis=-1) - np.nanmin(sums, axis=-1)
        scale = np.maximum(1.0, np.nanmax(np.abs(sums), axis=-1))
    return ~(spread > 1e-12 * scale)


def alpha_undefined(M: Any) -> str | None:
    """Why Cronbach's alpha of ``M`` (2-D, cases in rows) is undefined, or None when it is
    defined: fewer than 2 items, fewer than 2 complete cases, or zero variance of the sums
    (every complete case has the same total, e.g. identical answers from every firm)."""
    A = np.asarray(M, dtype=float)
    if A.ndim != 2:
        raise ValueError(f"alpha_undefined: need shape (cases, k), got {A.shape}")
    complete = ~np.isnan(A).any(axis=-1)
    if A.shape[1] < 2:
        return "fewer than 2 items"
    if complete.sum() < 2:
        return "fewer than 2 complete cases"
    if bool(_constant_sums(A, complete)):
        return "zero variance: every complete case has the same total (e.g. identical answers)"
    return None


# ---------------------------------------------------------------------------
# the array pipeline
def index_arrays(X: Any, spec: Spec) -> dict[str, np.ndarray]:
    """The whole deterministic index pipeline on a raw item array.

    ``X``: raw answers, shape ``(..., firms, items)`` in ``spec.item_names`` order, NaN
    for missing.  Returns a dict of arrays, all broadcasting over the leading axes:

    - ``'scaled'``: ``(..., F, n_items)`` (:func:`scale_items`)
    - ``'subdimensions'``: ``(..., F, n_subdims)`` (:func:`subdimension_scores`)
    - ``'indices'``: ``(..., F, n_constructs)`` (:func:`construct_indices`)
    - ``'sullivan'``: ``(..., F, n_constructs)`` (:func:`sullivan_sums`)
    """
    S = scale_items(X, spec)
    sub = subdimension_scores(S, spec)
    return {
        "scaled": S,
        "subdimensions": sub,
        "indices": construct_indices(sub, spec),
        "sullivan": sullivan_sums(sub, spec),
    }


# ---------------------------------------------------------------------------
# pandas layer
def item_matrix(survey: Any, spec: Spec | None = None) -> pd.DataFrame:
    """The survey's raw item table with columns in ``spec.item_names`` order (float).

    ``spec`` defaults to ``survey.spec``; a narrower spec (leave-one-item-out) selects
    its items only.  Raises ``KeyError`` naming any item the survey lacks.
    """
    spec = spec if spec is not None else survey.spec
    items = survey.items
    missing = [c for c in spec.item_names if c not in items.columns]
    if missing:
        raise KeyError(f"survey has no column for item(s) {missing} of spec {spec.name!r}")
    return items.loc[:, list(spec.item_names)].astype(float)


@dataclass(frozen=True, eq=False)
class IndicesResult:
    """Deterministic indices of one survey (DataFrames indexed by firm id).

    ``scaled`` (items), ``subdimensions``, ``indices`` (constructs) and ``sullivan``
    (constructs, unit-weighted sums); ``alpha``: one row per construct with columns
    ``n_items``, ``alpha_items``, ``n_cases_items``, ``n_subdimensions``,
    ``alpha_subdimensions``, ``n_cases_subdimensions``, and ``alpha_items_undefined``,
    ``alpha_subdimensions_undefined``: why that alpha is NaN (:func:`alpha_undefined`), or
    None.
    """

    scaled: pd.DataFrame
    subdimensions: pd.DataFrame
    indices: pd.DataFrame
    sullivan: pd.DataFrame
    alpha: pd.DataFrame


def compute_indices(survey: Any, spec: Spec | None = None) -> IndicesResult:
    """Scaled items, sub-dimension scores, construct indices, Sullivan sums and
    Cronbach's alpha of a :class:`smeintl.data.Survey` (``spec`` overrides
    ``survey.spec``, e.g. for sensitivity analyses)."""
    spec = spec if spec is not None else survey.spec
    X = item_matrix(survey, spec)
    idx = X.index
    arr = index_arrays(X.to_numpy(), spec)
    scaled = pd.DataFrame(arr["scaled"], index=idx, columns=list(spec.item_names))
    sub = pd.DataFrame(arr["subdimensions"], index=idx, columns=list(spec.subdimension_names))
    ind = pd.DataFrame(arr["indices"], index=idx, columns=list(spec.construct_names))
    sul = pd.DataFrame(arr["sullivan"], index=idx, columns=list(spec.construct_names))
    rows = []
    for c in spec.constructs:
        its = [i.name for i in spec.items_of(construct=c.name)]
        m_i, m_s = scaled[its].to_numpy(), sub[list(c.subdimensions)].to_numpy()
        a_i, n_i = cronbach_alpha(m_i)
        a_s, n_s = cronbach_alpha(m_s)
        rows.append(
            {
                "construct": c.name,
                "n_items": len(its),
                "alpha_items": a_i,
                "n_cases_items": n_i,
                "n_subdimensions": len(c.subdimensions),
                "alpha_subdimensions": a_s,
                "n_cases_subdimensions": n_s,
                "alpha_items_undefined": alpha_undefined(m_i),
                "alpha_subdimensions_undefined": alpha_undefined(m_s),
            }
        )
    alpha = pd.DataFrame(rows).set_index("construct")
    return IndicesResult(scaled, sub, ind, sul, alpha)
