"""What a fit's ``"auto"`` sampler settings mean: the sampler, the draws of a large survey,
``target_accept``, the mass matrix and the maximum tree depth, each resolved from the
fit's arguments, the spec's ``[sampler]`` table and the number of firms
(:meth:`~smeintl.measurement.MeasurementModel.fit` records the result in the fit's attrs)."""

from __future__ import annotations

from numbers import Integral
from typing import Any, Mapping

from ..spec import DEFAULT_SAMPLER

__all__ = ["LOW_RANK_MIN_FIRMS", "LOW_RANK_EIGVAL_CUTOFF", "LOW_RANK_EIGVAL_CUTOFF_LARGE",
           "AUTO_TARGET_ACCEPT", "LARGE_FIRMS", "AUTO_TARGET_ACCEPT_LARGE", "LARGE_SURVEY",
           "MASS_MATRICES", "auto_sampler", "resolve_sampler", "resolve_draws", "resolve_target_accept",
           "resolve_mass_matrix", "resolve_eigval_cutoff", "MAX_TREE_DEPTH_LARGE", "MAX_TREE_DEPTH",
           "resolve_max_tree_depth"]

#: from this many firms ``mass_matrix="auto"`` takes nutpie's low-rank mass-matrix adaptation
#: (correlations between the item parameters and the scores' mean and spread), below it the
#: diagonal one
LOW_RANK_MIN_FIRMS = 200

#: nutpie's low-rank mass matrix keeps the posterior's eigen-directions whose variance is off
#: from the diagonal's by more than this factor (nutpie's default: 100).  With many firms
#: the directions that matter (the latent scores' mean and spread against the item
#: parameters) are off by less: default instrument, 2 x (300 + 200) draws, min bulk ESS
#: at 2,000 firms 67 -> 115 (113 -> 174 on standardized scores), at 10,000 firms on
#: standardized scores 50 -> 85 (2 x (250 + 250)), in the same sampling time.
LOW_RANK_EIGVAL_CUTOFF = 3.0
#: ... and from :data:`LARGE_FIRMS` firms, where the percent items' loading and Beta precision
#: are correlated by about 0.6 (the factor model's communality ridge: a larger loading leaves
#: less spread to the residual), an eigenvalue ratio of 1.6 / 0.4 = 4 that a cutoff of 3
#: splits into two directions the diagonal keeps.  Default instrument, 2 x (150 + 900),
#: seed 1: min bulk ESS at 2,000 firms 564 -> 598 (the reported export-share loading 654 ->
#: 793), at 10,000 firms 329 -> 579 (benchmarks/RESULTS.md, twenty-first round).
LOW_RANK_EIGVAL_CUTOFF_LARGE = 2.0

#: ``target_accept="auto"`` per sampler.  Bundled data, nutpie, 4 x 1000 draws, nine seeds:
#: at 0.9 sampling took 15-23 s (about 50 leapfrog steps), min bulk ESS 620-920, and three
#: fits failed a diagnostic (two with one divergence, one with R-hat 1.013); at 0.95 it took
#: 16-27 s (about 59 steps), ESS 427-662, and five failed (R-hat 1.010-1.018 on the industry
#: sd or means, no divergences); at 0.8 two of three fits had a divergence.  PyMC's NUTS
#: had 69 divergences at 0.9 on the same data.
AUTO_TARGET_ACCEPT: dict[str, float] = {"nutpie": 0.9, "pymc": 0.95}
#: ... and with nutpie from this many firms, where the likelihood dominates and the scores
#: are split (``latent_parameterization``): measured without a divergence at 0.8 in every
#: run of the default instrument at 2,000 and 10,000 firms (ninth round); at 0.9 a 10,000-firm
#: fit of 2 x (250 + 250) sampled 559 s, at 0.8 322 s.
LARGE_FIRMS = 2000
AUTO_TARGET_ACCEPT_LARGE: dict[str, float] = {"nutpie": 0.8, "pymc": 0.95}
#: The draws of a large survey (the spec's ``[sampler]`` ``large_*`` keys; these are their
#: defaults, as :data:`smeintl.spec.DEFAULT_SAMPLER` writes them): from ``large_firms``
#: firms a fit not given draws, tune or chains samples 2 x (150 + 900).  The likelihood's
#: gradient grows with the firms: at 10,000 firms the default 4 x (1000 + 1000) would take
#: about half an hour on two cores.  With the low-rank cutoff of large surveys
#: (:data:`LOW_RANK_EIGVAL_CUTOFF_LARGE`), the start at the answers' scores and the tree depth
#: capped (:data:`MAX_TREE_DEPTH_LARGE`), 2 x (150 + 750) sampled seeds 1-3 in 449-504 s to a
#: min bulk ESS of 403, 466 and 334 (twenty-second round), 2 x (150 + 900) in 525-540 s to
#: 497, 463 and 425 (twenty-third round), inside 10 minutes with the 20,000 scores'
#: diagnostics (benchmarks/RESULTS.md).
LARGE_SURVEY: dict[str, int] = {k: int(v) for k, v in DEFAULT_SAMPLER.items() if k.startswith("large_")}


def resolve_draws(sampler: Mapping[str, Any], n_firms: int, draws: int | None = None, tune: int | None = None,
                  chains: int | None = None) -> tuple[int, int, int]:
    """The ``(draws, tune, chains)`` of a fit of ``n_firms`` firms: each as given, else the
    spec's ``[sampler]`` setting (``sampler``), from its ``large_firms`` firms its
    ``large_*`` one (:data:`LARGE_SURVEY`)."""
    s = dict(sampler)
    if n_firms >= int(s.get("large_firms", LARGE_SURVEY["large_firms"])):
        s.update({k: s.get(f"large_{k}", LARGE_SURVEY[f"large_{k}"]) for k in ("draws", "tune", "chains")})
    return (int(draws or s["draws"]), int(tune if tune is not None else s["tune"]), int(chains or s["chains"]))


def resolve_target_accept(value, sampler: str, n_firms: int | None = None) -> float:
    """``value`` as a number: ``"auto"`` (or None) is :data:`AUTO_TARGET_ACCEPT` of ``sampler``,
    or :data:`AUTO_TARGET_ACCEPT_LARGE` from :data:`LARGE_FIRMS` firms."""
    from ..spec import valid_target_accept

    if value is None or value == "auto":
        large = n_firms is not None and n_firms >= LARGE_FIRMS
        return (AUTO_TARGET_ACCEPT_LARGE if large else AUTO_TARGET_ACCEPT)[sampler]
    if not valid_target_accept(value):
        raise ValueError(f"target_accept must be 'auto' or a number in (0, 1), got {value!r}")
    return float(value)


def resolve_sampler(value: str) -> str:
    """``"pymc"`` or ``"nutpie"``; ``"auto"`` is :func:`auto_sampler`."""
    sampler = auto_sampler() if value == "auto" else value
    if sampler not in ("pymc", "nutpie"):
        raise ValueError(f"sampler must be 'pymc', 'nutpie' or 'auto', got {value!r}")
    return sampler


#: the mass matrices a fit can adapt (``mass_matrix``)
MASS_MATRICES = ("auto", "diag", "low_rank")


def resolve_mass_matrix(value: str, sampler: str, n_firms: int) -> str:
    """``"diag"`` or ``"low_rank"``; ``"auto"`` is the low-rank one with nutpie from
    :data:`LOW_RANK_MIN_FIRMS` firms, else the diagonal one (PyMC's NUTS adapts only that)."""
    if value not in MASS_MATRICES:
        raise ValueError(f"mass_matrix must be 'auto', 'diag' or 'low_rank', got {value!r}")
    if value == "low_rank" and sampler != "nutpie":
        raise ValueError("mass_matrix='low_rank' needs the nutpie sampler; PyMC's NUTS adapts a diagonal one")
    if value == "auto":
        return "low_rank" if sampler == "nutpie" and n_firms >= LOW_RANK_MIN_FIRMS else "diag"
    return value


def resolve_eigval_cutoff(mass_matrix: str, n_firms: int) -> float | None:
    """The eigenvalue cutoff of a low-rank mass matrix (:data:`LOW_RANK_EIGVAL_CUTOFF`, from
    :data:`LARGE_FIRMS` firms :data:`LOW_RANK_EIGVAL_CUTOFF_LARGE`); None for a diagonal one."""
    if mass_matrix != "low_rank":
        return None
    return LOW_RANK_EIGVAL_CUTOFF_LARGE if n_firms >= LARGE_FIRMS else LOW_RANK_EIGVAL_CUTOFF


#: With nutpie from :data:`LARGE_FIRMS` firms a trajectory stops after 2^7 = 127 leapfrog steps
#: (nutpie's own cap is 2^10).  A large survey's draws need 31 steps each; its warm-up, before
#: the step size and mass matrix are adapted, ran trajectories of hundreds of steps at about
#: 12-15 ms a gradient.  Default instrument, 10,000 firms, 2 x (150 + 750), seed 1, the same
#: code and machine: 449 s of sampling (compile included) to a min bulk ESS of 403 with the
#: cap, 724 s to 325 without (benchmarks/RESULTS.md, twenty-second round).  At 1,000 firms
#: (4 x (1000 + 1000), seed 1) the cap gave nothing: 199 s to 1,683 against 204 s to 1,912
#: (twenty-third round), so it starts at :data:`LARGE_FIRMS`.
MAX_TREE_DEPTH_LARGE = 7
#: the largest ``max_tree_depth`` a fit accepts (2^20 leapfrog steps per draw)
MAX_TREE_DEPTH = 20


def resolve_max_tree_depth(sampler: str, n_firms: int, value: int | str = "auto") -> int | None:
    """The maximum tree depth of NUTS: ``value``, an integer from 1 to :data:`MAX_TREE_DEPTH`,
    for either sampler; ``"auto"``: with nutpie :data:`MAX_TREE_DEPTH_LARGE` from
    :data:`LARGE_FIRMS` firms, else None (the sampler's own, 10)."""
    if isinstance(value, str) and value == "auto":
        return MAX_TREE_DEPTH_LARGE if sampler == "nutpie" and n_firms >= LARGE_FIRMS else None
    if isinstance(value, bool) or not isinstance(value, Integral) or not 1 <= value <= MAX_TREE_DEPTH:
        raise ValueError(f"max_tree_depth must be 'auto' or an integer from 1 to {MAX_TREE_DEPTH}, got {value!r}")
    return int(value)


def auto_sampler() -> str:
    """What ``sampler = "auto"`` means: nutpie where installed, else PyMC's NUTS."""
    return "nutpie" if _has_nutpie() else "pymc"


def _has_nutpie() -> bool:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return True
