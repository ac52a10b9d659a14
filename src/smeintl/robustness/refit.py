"""The model-comparison refits: which models it refits, and on what (:func:`comparison_plan`),
with which seed offsets (:func:`refit_offsets`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..spec import Spec
from .context import MODEL_VARIANTS, RobustnessContext
from .variants import ordinal_survey, spec_variant, survey_for


def comparison_plan(ctx: RobustnessContext) -> tuple[list[tuple[str, tuple[Any, Spec, bool]]], dict[str, str]]:
    """The refits of ``model_comparison``: ``([(model, (survey, spec, group)), ...],
    {model: why it is not fitted})``, from the fit's spec and options."""
    for m in ctx.models:
        if m not in MODEL_VARIANTS:
            raise ValueError(f"unknown model variant {m!r}; known: {', '.join(MODEL_VARIANTS)}")
    fit_spec = ctx.fit_spec
    plan: list[tuple[str, tuple[Any, Spec, bool]]] = []
    skipped: dict[str, str] = {}
    for m in ctx.models:
        if m == "no_industry":
            if not ctx.fit_group:
                skipped[m] = "the given fit has no industry level"
                continue
            plan.append((m, (survey_for(fit_spec, ctx.survey), fit_spec, False)))
        elif m == "one_construct":
            sv, reason = spec_variant(fit_spec, "one_construct")
            if sv is None:
                skipped[m] = reason
                continue
            plan.append((m, (survey_for(sv, ctx.survey), sv, ctx.fit_group)))
        elif m == "all_ordinal":
            # the evaluation spec's profiles and thresholds with the fit's priors and sampler
            sv, reason = spec_variant(replace(ctx.spec, priors=fit_spec.priors, sampler=fit_spec.sampler),
                                      "all_ordinal")
            if sv is None:
                skipped[m] = reason
                continue
            plan.append((m, (ordinal_survey(sv, ctx.survey), sv, ctx.fit_group)))
    return plan, skipped


def refit_offsets(plan) -> dict[str, int]:
    """Each refit's seed offset, by its place in the plan, whatever order (or process) the
    refits run in."""
    return {m: 201 + j for j, (m, _) in enumerate(plan)}
