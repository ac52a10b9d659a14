"""Robustness and sensitivity checks: which of the study's findings survive reasonable
changes to the method?

:func:`run_robustness` runs the checks of :data:`REGISTRY` (by name: :data:`CHECKS`) and
returns a :class:`RobustnessResult` whose ``matrix`` has one row per headline finding the
instrument declares (``spec.findings``, the spec's ``[[findings]]``) and one column per
check variant; each cell is the text of a :class:`Verdict`: whether the finding holds
under that variant, with the value behind the verdict.  Definitions of every check:
``docs/robustness.md``.  Deterministic variants reuse the deterministic pipeline and the
finding rules of :mod:`smeintl.findings` unchanged; posterior variants reuse
:func:`~smeintl.predictive.compare`.  Every random step takes ``seed``.

Modules (each check module defines its :class:`Check` as ``CHECK``):

==============================  =========================================================
``factor_analysis``             check: ML factor analysis beside the Bayesian loadings
``industry_regression``         check: OLS (HC3) and ordinal logit on industry
``thresholds``                  check: flag thresholds 0.4, 0.5, 0.6
``weights``                     check: sub-dimension weights equal, by item count, spec's
``profiles``                    check: sub-dimension types, empirical ideal, standardized
``leave_one_item_out``          check: each item dropped in turn
``leave_one_subdimension_out``  check: each sub-dimension dropped in turn
``bootstrap``                   check: stratified firm bootstrap of the shares
``prior_sensitivity``           check (refits): power-scaling, importance resampling,
                                refits under wider and narrower priors
``model_comparison``            check (refits): PSIS-LOO against alternative models
``method``                      what the deterministic-variant checks share
``verdict``                     :class:`Verdict`; verdicts over variants, against a baseline
``findings``                    findings tables of :mod:`smeintl.findings` as verdicts
``result``                      :class:`Check`, :class:`CheckResult`, :class:`RobustnessResult`
``context``                     :class:`RobustnessContext`; settings shared by the checks
``variants``                    spec variants (:func:`spec_variant`), spec to TOML
``loo``                         :func:`integrated_loglik` (latent scores integrated out)
``refit``                       the comparison refits' plan
``registry``                    :data:`REGISTRY`, and :data:`CHECKS`, :data:`CHECK_NAMES`,
                                :data:`REFIT_CHECKS`, :func:`output_names` derived from it
``runner``                      :func:`run_robustness`, the findings matrix,
                                :func:`write_robustness`
==============================  =========================================================
"""

from __future__ import annotations

from .bootstrap import check_bootstrap
from .context import DEFAULT_REFIT, KHAT_MAX, MIN_FIRMS, MODEL_VARIANTS, PRIOR_REFITS, RobustnessContext
from .factor_analysis import check_factor_analysis
from .industry_regression import INDEX_BINS, check_industry_regression
from .leave_one_item_out import check_leave_one_item_out
from .leave_one_subdimension_out import check_leave_one_subdimension_out
from .loo import INTEGRATED_MAX_DRAWS, INTEGRATION_CHECK_NODES, INTEGRATION_NODES, integrated_loglik
from .model_comparison import check_model_comparison
from .prior_sensitivity import POWER_ALPHAS, PRIOR_SCALES, PSENS_DELTA, PSENS_THRESHOLD, check_prior_sensitivity
from .profiles import check_profiles
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
