"""The checks, in the order they run (cheap ones first): :data:`REGISTRY`, and what is
derived from it."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, Sequence

from . import (bootstrap, factor_analysis, industry_regression, leave_one_item_out, leave_one_subdimension_out,
               model_comparison, prior_sensitivity, profiles, thresholds, weights)
from .result import Check

#: the checks, in the order they run (cheap ones first)
REGISTRY: tuple[Check, ...] = (
    factor_analysis.CHECK,
    industry_regression.CHECK,
    thresholds.CHECK,
    weights.CHECK,
    profiles.CHECK,
    leave_one_item_out.CHECK,
    leave_one_subdimension_out.CHECK,
    bootstrap.CHECK,
    prior_sensitivity.CHECK,
    model_comparison.CHECK,
)
#: check name -> :class:`~.result.Check` (callable on a context), in registry order
CHECKS: Mapping[str, Check] = MappingProxyType({c.name: c for c in REGISTRY})
CHECK_NAMES: tuple[str, ...] = tuple(CHECKS)
#: the checks that refit the measurement model (minutes each; skipped by ``smeintl run --quick``)
REFIT_CHECKS: tuple[str, ...] = tuple(c.name for c in REGISTRY if c.refits)


def output_names(checks: Sequence[str] | None = None) -> list[str]:
    """File names :func:`~.runner.write_robustness` writes for these checks (for overwrite checks)."""
    names = list(CHECK_NAMES) if checks is None else list(checks)
    return ["robustness.csv", *(f"{n}.csv" for n in names)]
