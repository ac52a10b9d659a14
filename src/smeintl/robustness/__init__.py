"""Robustness and sensitivity checks: which of the study's findings survive reasonable
changes to the method?

:func:`run_robustness` runs a set of checks (:data:`CHECKS`) and returns one
:class:`RobustnessResult` whose ``matrix`` has one row per headline finding
(:data:`smeintl.predictive.FINDINGS`) and one column per check variant; each cell is a
:class:`Verdict` (whether the finding holds under that variant, with the value behind
the verdict) written as text.  Exact definitions of every check are in
``docs/robustness.md``.  The deterministic variants reuse the deterministic pipeline
(:func:`~smeintl.indices.index_arrays`, :func:`~smeintl.profiles.type_arrays`) and the
finding rules of :mod:`smeintl.predictive` unchanged; the posterior variants reuse
:func:`~smeintl.predictive.compare`.  Every random step takes ``seed``.

Modules, one check each (a :class:`Check` named ``CHECK``), in the order they run:

==================================  =====================================================
``factor_analysis``                 statsmodels ML factor analysis (oblimin-rotated
                                    exploratory, and one factor per construct) beside the
                                    Bayesian standardized loadings; complementarity from
                                    the correlation of the one-factor scores
``industry_regression``             OLS of each index on industry with HC3 errors (robust
                                    Wald test) and ordinal logit (``OrderedModel``) of the
                                    binned indices and of every ordinal item on industry,
                                    beside the hierarchical industry means
``thresholds``                      flag thresholds 0.4, 0.5, 0.6
``weights``                         sub-dimension weights equal, by item count, the spec's
``profiles``                        sub-dimension ideal types; 2-D types plus the
                                    empirical ideal (needs an outcome); 2-D types on
                                    z-standardized dimensions
``leave_one_item_out``              each item dropped in turn (its sub-dimension too when
                                    it was the only item)
``leave_one_subdimension_out``      each sub-dimension dropped in turn
``bootstrap``                       firm bootstrap (stratified by industry, seeded) of
                                    the type and flag shares with percentile intervals
``prior_sensitivity``               power-scaling of prior and likelihood (ArviZ
                                    ``psens``, Pareto-smoothed importance weights, k-hat
                                    reported); findings under the prior power-scaled by
                                    0.5 and 2 by importance resampling, and refits with
                                    every prior sd x2 and /2 where the importance weights
                                    are unreliable
``model_comparison``                PSIS-LOO (conditional on the firms' latent scores,
                                    and with them integrated out) of the fitted model
                                    against refits without the industry level and with
                                    one construct (same observations, same scale); the
                                    all-ordinal model compared on its findings only
==================================  =====================================================

and what they share:

==================================  =====================================================
``verdict``                         :class:`Verdict`, one finding under one variant;
                                    verdicts over variants and against a baseline
``findings``                        findings tables of :mod:`smeintl.predictive` as
                                    verdicts
``result``                          :class:`Check`, :class:`CheckResult`,
                                    :class:`RobustnessResult`
``context``                         :class:`RobustnessContext` (inputs, cached baselines,
                                    the fit's options, refits) and the shared settings
``variants``                        spec variants (:func:`spec_variant`), spec to TOML
``method``                          the deterministic-variant machinery of the method
                                    checks
``loo``                             :func:`integrated_loglik` (Gauss-Hermite quadrature)
``refit``                           the model-comparison refits' plan and their compile
                                    in a second process (:func:`start_refit_compile`)
``registry``                        :data:`REGISTRY`, the ordered checks, and
                                    :data:`CHECKS`, :data:`CHECK_NAMES`,
                                    :data:`REFIT_CHECKS` derived from it
``runner``                          :func:`run_robustness`, the findings matrix,
                                    :func:`write_robustness`
==================================  =====================================================
"""

from __future__ import annotations

from .bootstrap import check_bootstrap
from .context import DEFAULT_REFIT, KHAT_MAX, MIN_FIRMS, MODEL_VARIANTS, PRIOR_REFITS, REFIT_COMPILE_TIMEOUT, \
    RobustnessContext
from .factor_analysis import check_factor_analysis
from .industry_regression import INDEX_BINS, check_industry_regression
from .leave_one_item_out import check_leave_one_item_out
from .leave_one_subdimension_out import check_leave_one_subdimension_out
from .loo import INTEGRATED_MAX_DRAWS, INTEGRATION_CHECK_NODES, INTEGRATION_NODES, integrated_loglik
from .model_comparison import check_model_comparison
from .prior_sensitivity import POWER_ALPHAS, PRIOR_SCALES, PSENS_DELTA, PSENS_THRESHOLD, check_prior_sensitivity
from .profiles import check_profiles
from .refit import REFIT_COMPILE_ORDER, RefitCompile, compile_refit_models, start_refit_compile
from .registry import CHECK_NAMES, CHECKS, REFIT_CHECKS, REGISTRY, output_names
from .result import Check, CheckResult, RobustnessResult
from .runner import run_robustness, write_robustness
from .thresholds import THRESHOLDS, check_thresholds
from .variants import ORDINAL_LEVELS, spec_to_toml, spec_variant
from .verdict import Verdict
from .weights import check_weights

__all__ = [
    "Check",
    "CheckResult",
    "RobustnessResult",
    "RobustnessContext",
    "Verdict",
    "REGISTRY",
    "CHECKS",
    "CHECK_NAMES",
    "REFIT_CHECKS",
    "MODEL_VARIANTS",
    "PRIOR_REFITS",
    "DEFAULT_REFIT",
    "MIN_FIRMS",
    "run_robustness",
    "write_robustness",
    "compile_refit_models",
    "start_refit_compile",
    "RefitCompile",
    "output_names",
    "spec_to_toml",
    "spec_variant",
    "integrated_loglik",
    "check_factor_analysis",
    "check_industry_regression",
    "check_thresholds",
    "check_weights",
    "check_profiles",
    "check_leave_one_item_out",
    "check_leave_one_subdimension_out",
    "check_bootstrap",
    "check_prior_sensitivity",
    "check_model_comparison",
    # settings of the checks
    "REFIT_COMPILE_TIMEOUT",
    "REFIT_COMPILE_ORDER",
    "KHAT_MAX",
    "INDEX_BINS",
    "THRESHOLDS",
    "ORDINAL_LEVELS",
    "PSENS_DELTA",
    "PSENS_THRESHOLD",
    "POWER_ALPHAS",
    "PRIOR_SCALES",
    "INTEGRATION_NODES",
    "INTEGRATION_CHECK_NODES",
    "INTEGRATED_MAX_DRAWS",
]
