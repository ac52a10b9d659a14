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


from .baseline import BaselineResult, baseline_test, outcome_relation
from .deterministic import DeterministicResult, SummaryDict, run_deterministic
from .ideal import (
    HYBRID,
    EmpiricalIdealResult,
    classify,
    empirical_ideal,
    flag_name,
    max_distance,
    pearson_r,
    profile_deviation,
    profile_fit,
    profile_set_arrays,
    quadrant_codes,
    subtype_arrays,
    type_arrays,
)

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
