"""Check ``weights``: sub-dimension weights equal, by item count, the spec's."""

from __future__ import annotations

from .context import RobustnessContext
from .method import PlannedVariant, method_check
from .result import Check, CheckResult
from .variants import spec_variant

CHECK_NAME = "weights"


def check_weights(ctx: RobustnessContext) -> CheckResult:
    plan = []
    for label, val in (("equal", "equal"), ("by item count", "items"), ("spec", "spec")):
        sv, reason = spec_variant(ctx.spec, "weights", val)
        extra = {"weights": "; ".join(f"{c.name}: {', '.join(f'{w:g}' for w in c.subdimension_weights)}"
                                      for c in sv.constructs)} if sv is not None else {}
        plan.append(PlannedVariant(label, sv, reason, extra))
    same = all(tuple(c.subdimension_weights) == (1.0,) * len(c.subdimensions) for c in ctx.spec.constructs)
    intro = ("Sub-dimension weights of the construct indices: equal, proportional to the number of items of the "
             "sub-dimension, and the spec's own" + (" (which are equal here)." if same else "."))
    return method_check(ctx, CHECK_NAME, plan, intro)


CHECK = Check(CHECK_NAME, "sub-dimension weights equal, by item count, the spec's", check_weights)
