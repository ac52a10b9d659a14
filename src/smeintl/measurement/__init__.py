"""Bayesian measurement model: items as indicators of correlated latent constructs.

Modules: :mod:`.layout` (the spec's items as arrays and likelihood blocks),
:mod:`.latent` (LKJ correlation, score parameterizations, marginal statistics),
:mod:`.model` (:class:`MeasurementModel`: build and fit), :mod:`.quadrature` (one
construct's scores integrated out on a grid), :mod:`.generative` (numpy
draws, expectations and log-likelihood, by item family), :mod:`.posterior` (what a fit
adds to the draws), :mod:`.diagnostics`, :mod:`.io` (one netCDF file per fit) and
:mod:`.summary` (parameter tables), :mod:`.loo` (leave-one-firm-out LOO with the latent
scores integrated out; comparing fits), :mod:`.fit_checks` (posterior predictive model checks) and :mod:`.invariance` (group deviations of the item
parameters).  The item families themselves live in
:mod:`smeintl.families`.
"""

from .diagnostics import SCORE_RULE, THRESHOLDS, Diagnostics, diagnose, fit_diagnostics, is_score_variable, rhat_chance
from .fit_checks import FitChecks, fit_checks
from .generative import cell_loglik, draw_items, expected_raw, expected_scaled, param_names, posterior_params
from .invariance import item_invariance
from .io import FitError, fit_standardization, load_fit, save_fit
from .latent import answer_scores, lkj_cpc_alpha
from .layout import ItemLayout, standardization_of
from .loo import FitLoo, compare_models, fit_loo
from .model import INVARIANCE, PARAMETERIZATIONS, MeasurementModel, no_traces
from .posterior import versions
from .sampling import (
    AUTO_TARGET_ACCEPT,
    AUTO_TARGET_ACCEPT_LARGE,
    LARGE_FIRMS,
    LARGE_SURVEY,
    LOW_RANK_EIGVAL_CUTOFF,
    LOW_RANK_EIGVAL_CUTOFF_LARGE,
    LOW_RANK_MIN_FIRMS,
    MAX_TREE_DEPTH,
    MAX_TREE_DEPTH_LARGE,
    _has_nutpie,
    auto_sampler,
    resolve_draws,
    resolve_eigval_cutoff,
    resolve_max_tree_depth,
    resolve_mass_matrix,
    resolve_sampler,
    resolve_target_accept,
)
from .summary import FitSummary, parameter_table, summarize_fit

__all__ = [
    "MeasurementModel",
    "PARAMETERIZATIONS",
    "ItemLayout",
    "Diagnostics",
    "FitError",
    "FitSummary",
    "diagnose",
    "fit_diagnostics",
    "is_score_variable",
    "draw_items",
    "expected_raw",
    "expected_scaled",
    "cell_loglik",
    "posterior_params",
    "param_names",
    "standardization_of",
    "lkj_cpc_alpha",
    "answer_scores",
    "load_fit",
    "save_fit",
    "fit_standardization",
    "summarize_fit",
    "parameter_table",
    "compare_models",
    "fit_loo",
    "FitLoo",
    "fit_checks",
    "FitChecks",
    "item_invariance",
    "INVARIANCE",
    "versions",
    "auto_sampler",
    "resolve_target_accept",
    "resolve_draws",
    "resolve_sampler",
    "resolve_mass_matrix",
    "resolve_eigval_cutoff",
    "resolve_max_tree_depth",
    "no_traces",
    "THRESHOLDS",
    "SCORE_RULE",
    "rhat_chance",
    "AUTO_TARGET_ACCEPT",
    "AUTO_TARGET_ACCEPT_LARGE",
    "LARGE_FIRMS",
    "LARGE_SURVEY",
    "LOW_RANK_MIN_FIRMS",
    "LOW_RANK_EIGVAL_CUTOFF",
    "LOW_RANK_EIGVAL_CUTOFF_LARGE",
    "MAX_TREE_DEPTH",
    "MAX_TREE_DEPTH_LARGE",
]
