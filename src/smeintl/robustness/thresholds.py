"""Check ``thresholds``: the flag thresholds 0.4, 0.5, 0.6 for every construct."""

from __future__ import annotations

from .context import RobustnessContext
from .method import PlannedVariant, method_check
from .result import Check, CheckResult
from .variants import spec_variant

CHECK_NAME = "thresholds"
#: flag thresholds tried by the ``thresholds`` check
THRESHOLDS: tuple[float, ...] = (0.4, 0.5, 0.6)


def check_thresholds(ctx: RobustnessContext) -> CheckResult:
    plan = []
    for t in THRESHOLDS:
        sv, reason = spec_variant(ctx.spec, "thresholds", t)
        plan.append(PlannedVariant(f"{t:g}", sv, reason, {"threshold": t}))
    return method_check(
        ctx, CHECK_NAME, plan,
        f"Flag thresholds {', '.join(f'{t:g}' for t in THRESHOLDS)} for every construct (index >= threshold). "
        "The nearest-type typing does not depend on the thresholds; the table also gives the quadrant-rule type "
        "counts, which do.", quadrant=True)


CHECK = Check(CHECK_NAME, "flag thresholds 0.4, 0.5, 0.6", check_thresholds)
