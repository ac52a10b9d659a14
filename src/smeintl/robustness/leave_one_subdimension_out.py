"""Check ``leave_one_subdimension_out``: each sub-dimension dropped in turn."""

from __future__ import annotations

from .context import RobustnessContext
from .method import PlannedVariant, method_check
from .result import Check, CheckResult
from .variants import spec_variant

CHECK_NAME = "leave_one_subdimension_out"


def check_leave_one_subdimension_out(ctx: RobustnessContext) -> CheckResult:
    plan = []
    for sd in ctx.spec.subdimension_names:
        sv, reason = spec_variant(ctx.spec, "drop_subdimension", sd)
        plan.append(PlannedVariant(f"without {sd}", sv, reason, {"subdimension": sd}))
    return method_check(ctx, CHECK_NAME, plan,
                        "Each sub-dimension left out in turn (with its items; its construct index averages the rest).")


CHECK = Check(CHECK_NAME, "each sub-dimension dropped in turn", check_leave_one_subdimension_out)
