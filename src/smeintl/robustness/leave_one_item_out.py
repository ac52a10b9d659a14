"""Check ``leave_one_item_out``: each item dropped in turn (its sub-dimension too when it
was the only item)."""

from __future__ import annotations

from .context import RobustnessContext
from .method import PlannedVariant, method_check
from .result import Check, CheckResult
from .variants import drop_from_raw, spec_from_raw, spec_to_raw

CHECK_NAME = "leave_one_item_out"


def check_leave_one_item_out(ctx: RobustnessContext) -> CheckResult:
    plan = []
    for it in ctx.spec.items:
        raw, dropped, reason = drop_from_raw(spec_to_raw(ctx.spec), items=[it.name])
        sv = spec_from_raw(raw, f"without item {it.name}") if raw is not None else None
        plan.append(PlannedVariant(f"without {it.name}", sv, reason,
                                   {"item": it.name, "subdimension_dropped": ", ".join(dropped)}))
    return method_check(ctx, CHECK_NAME, plan,
                        "Each item left out in turn (a sub-dimension left without items is dropped with it).")


CHECK = Check(CHECK_NAME, "each item dropped in turn (its sub-dimension too when it was the only item)",
              check_leave_one_item_out)
