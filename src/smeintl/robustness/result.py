"""What the checks return (:class:`CheckResult`), what a run returns
(:class:`RobustnessResult`), and what a check is (:class:`Check`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

import pandas as pd

from .verdict import NOT_ADDRESSED, Verdict

if TYPE_CHECKING:
    from .context import RobustnessContext


@dataclass(frozen=True)
class CheckResult:
    """Result of one check.

    ``passed``: True / False by the check's criterion (``docs/robustness.md``), None when
    the check could not run (``text`` then says why).  ``table``: the check's numbers
    (written to ``<name>.csv``).  ``variants``: matrix column name -> {finding key ->
    :class:`~.verdict.Verdict`}; ``findings``: per finding key, the verdict over the
    variants (:meth:`Verdict.over <.verdict.Verdict.over>`: holds when it holds under
    every variant evaluated, does not when it fails under at least one, None when no
    variant could evaluate it; its text lists the variants).  ``reference``: the baseline
    the variants are compared with, ``"deterministic"`` or ``"posterior"``.
    """

    name: str
    passed: bool | None
    table: pd.DataFrame
    text: str
    findings: dict[str, Verdict] = field(default_factory=dict)
    variants: dict[str, dict[str, Verdict]] = field(default_factory=dict)
    reference: str = "deterministic"
    seconds: float = 0.0

    @property
    def skipped(self) -> bool:
        return self.passed is None and not self.variants


def skip(name: str, reason: str, reference: str = "deterministic") -> CheckResult:
    """The result of a check that cannot run, for ``reason``."""
    return CheckResult(name, None, pd.DataFrame({"note": [reason]}), f"skipped: {reason}", findings={},
                       variants={}, reference=reference)


@dataclass(frozen=True)
class Check:
    """One robustness check: ``run(ctx)`` on a :class:`~.context.RobustnessContext`.

    ``name``: its key (matrix columns ``<name>: <variant>``, file ``<name>.csv``);
    ``description``: one line on what it does; ``refits``: whether it refits the
    measurement model (minutes; skipped by ``smeintl run --quick``), which is also what
    sets its ``reference`` (refit checks compare with the posterior baseline).
    """

    name: str
    description: str
    run: Callable[[RobustnessContext], CheckResult]
    refits: bool = False

    @property
    def reference(self) -> str:
        return "posterior" if self.refits else "deterministic"

    def __call__(self, ctx: RobustnessContext) -> CheckResult:
        return self.run(ctx)


@dataclass(frozen=True)
class RobustnessResult:
    """All checks and the findings matrix.

    ``matrix``: index ``finding`` (the keys of the findings the spec declares, in order;
    no rows when it declares none);
    columns ``baseline: deterministic`` and ``baseline: posterior`` (the original method
    on the observed data, and :func:`~smeintl.predictive.compare`'s posterior
    probability), then one column per check variant (``<check>: <variant>``), then
    ``agreement`` (variants whose verdict equals their baseline's, of those evaluated).
    Cells: ``holds (0.83)``, ``does not hold (p=0.21)``, ``probably holds (0.82)`` (a
    probability; holds when >= 0.5) or ``n/a: <reason>``.  ``baselines``: the verdicts of
    the two baseline columns, ``{"deterministic": {finding: Verdict}, "posterior": ...}``.
    """

    checks: tuple[CheckResult, ...]
    matrix: pd.DataFrame
    settings: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    baselines: Mapping[str, Mapping[str, Verdict]] = field(default_factory=dict)

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def summary(self) -> pd.DataFrame:
        """Rows = findings, columns = baselines and checks; per check ``k/n hold`` (the
        variants in which the finding holds, of those that could evaluate it) or ``n/a``."""
        keys = list(self.matrix.index)
        cols: dict[str, list[str]] = {
            base: [self.baselines.get(base, {}).get(k, Verdict.na()).short() for k in keys]
            for base in ("deterministic", "posterior")
        }
        for c in self.checks:
            vals = []
            for k in keys:
                ev = [h for h in (v.get(k, NOT_ADDRESSED).holds for v in c.variants.values()) if h is not None]
                vals.append(f"{sum(ev)}/{len(ev)}" if ev else "n/a")
            cols[c.name] = vals
        cols["agreement"] = list(self.matrix["agreement"])
        return pd.DataFrame(cols, index=self.matrix.index)

    def text(self) -> str:
        """The findings matrix in compact form (per check: variants in which the finding
        holds / variants evaluated), then one paragraph per check."""
        s = self.settings
        L = [
            f"Robustness and sensitivity checks ({s.get('n_firms', '?')} firms; seed {s.get('seed')}; "
            f"checks: {', '.join(c.name for c in self.checks)})",
            "",
            "Findings matrix (baselines, then per check: variants in which the finding holds / variants "
            "evaluated; full per-variant matrix in robustness.csv)",
        ]
        summ = self.summary()
        header = ["finding", *summ.columns]
        rows = [[k, *map(str, summ.loc[k])] for k in summ.index]
        if rows:
            widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
            L.append("  ".join(h.ljust(widths[i]) for i, h in enumerate(header)))
            for r in rows:
                L.append("  ".join(v.ljust(widths[i]) for i, v in enumerate(r)))
        else:
            L.append("(none: the instrument declares no findings)")
        L.append("")
        for c in self.checks:
            status = ("skipped" if c.skipped else "no verdict (no finding evaluated)") if c.passed is None else (
                "passed" if c.passed else "NOT passed")
            L.append(f"[{c.name}] {status} ({c.seconds:.1f} s)")
            L.extend("  " + line for line in c.text.splitlines())
            L.append("")
        for n in self.notes:
            L.append(f"Note: {n}")
        return "\n".join(L).rstrip() + "\n"
