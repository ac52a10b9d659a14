"""The verdict on one finding under one check variant (:class:`Verdict`), and how the
checks combine verdicts: over the variants of a check (:func:`aggregate`), against a
baseline (:func:`changes`, :func:`flipped`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Literal, Mapping, Sequence

import numpy as np

from ..findings import verdict as _verdict_words
from ..spec import Spec

#: what a verdict rests on: a value of the deterministic method or a test ("value"), a
#: probability over replicates or posterior draws ("probability"), nothing ("na": the
#: variant cannot evaluate the finding), or the verdicts of several variants ("aggregate")
Kind = Literal["value", "probability", "na", "aggregate"]


@dataclass(frozen=True)
class Verdict:
    """Whether a finding holds under one variant, with what the verdict rests on.

    ``holds``: True / False, or None when the variant cannot evaluate the finding.
    ``value``: kind ``"value"``, the value behind the verdict as shown (``"0.83"``,
    ``"p=0.012"``, ``"r=0.41, p=0.003"``); ``probability``: kind ``"probability"``, the
    share of draws or replicates in which the finding holds; ``note``: kind ``"na"``,
    why the finding is not evaluated; ``parts``: kind ``"aggregate"``, the evaluated
    variants' (name, verdict).

    :meth:`text` is the cell of the findings matrix; a verdict unpacks as the pair
    ``(holds, text)``.
    """

    holds: bool | None
    kind: Kind = "na"
    value: str = ""
    probability: float | None = None
    note: str = ""
    parts: tuple[tuple[str, Verdict], ...] = ()

    # ---- constructors ----------------------------------------------------------
    @classmethod
    def of_value(cls, holds: bool, value: str) -> Verdict:
        """``holds (value)`` / ``does not hold (value)``."""
        return cls(bool(holds), "value", value=value)

    @classmethod
    def of_probability(cls, p: float | None, note: str = "") -> Verdict:
        """Holds when ``p >= 0.5``, in the words of :func:`smeintl.predictive.verdict`; not
        evaluated (``note``, default "not estimable") when ``p`` is missing or not finite."""
        if p is None or not np.isfinite(p):
            return cls.na((note or "not estimable").removeprefix("n/a: "))
        return cls(bool(p >= 0.5), "probability", probability=float(p))

    @classmethod
    def na(cls, reason: str = "") -> Verdict:
        """Not evaluated: ``n/a: reason`` (``n/a`` without one)."""
        return cls(None, "na", note=reason)

    @classmethod
    def over(cls, parts: Sequence[tuple[str, Verdict]]) -> Verdict:
        """The verdict over several variants: holds when it holds in every variant that
        evaluates it; None when none does.  Variants that do not evaluate it are left out."""
        ev = tuple((v, c) for v, c in parts if c.holds is not None)
        holds = all(c.holds for _v, c in ev) if ev else None
        return cls(holds, "aggregate", parts=ev)

    # ---- text --------------------------------------------------------------------
    def text(self) -> str:
        """The cell text: ``holds (0.83)``, ``does not hold (p=0.21)``, ``probably holds
        (0.82)``, ``n/a: <reason>``, or for an aggregate ``holds in 2 of 3 variants: ...``."""
        if self.kind == "value":
            return f"{'holds' if self.holds else 'does not hold'} ({self.value})"
        if self.kind == "probability":
            word = _verdict_words(self.probability).split(" (")[0]
            return f"{word} ({self.probability:.2f})"
        if self.kind == "aggregate":
            if not self.parts:
                return "not evaluated by any variant"
            n_hold = sum(bool(c.holds) for _v, c in self.parts)
            return (f"holds in {n_hold} of {len(self.parts)} variants: "
                    + "; ".join(f"{v}: {c.text()}" for v, c in self.parts))
        return f"n/a: {self.note}" if self.note else "n/a"

    def short(self) -> str:
        """The text, with the reason of a verdict that is not evaluated left out (``n/a``)."""
        return "n/a" if self.kind == "na" else self.text()

    def __str__(self) -> str:
        return self.text()

    # ---- the (holds, text) pair ---------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        return iter((self.holds, self.text()))

    def __getitem__(self, index: int) -> Any:
        return (self.holds, self.text())[index]


#: the verdict of a variant on a finding its check does not address
NOT_ADDRESSED = Verdict.na("not addressed by this check")

Verdicts = Mapping[str, Verdict]  # finding key -> verdict


def finding_keys(spec: Spec) -> list[str]:
    """The keys of the findings ``spec`` declares, in spec order."""
    return [f.key for f in spec.findings]


def na_verdicts(spec: Spec, reason: str) -> dict[str, Verdict]:
    """Every finding of ``spec`` not evaluated, for ``reason``."""
    return {k: Verdict.na(reason) for k in finding_keys(spec)}


def any_evaluated(variants: Mapping[str, Verdicts]) -> bool:
    return any(c.holds is not None for cells in variants.values() for c in cells.values())


def aggregate(spec: Spec, variants: Mapping[str, Verdicts]) -> dict[str, Verdict]:
    """Per finding of ``spec``, the verdict over the variants (:meth:`Verdict.over`)."""
    return {k: Verdict.over([(v, cells.get(k, NOT_ADDRESSED)) for v, cells in variants.items()])
            for k in finding_keys(spec)}


def changes(cells: Verdicts, ref: Verdicts) -> list[str]:
    """The findings whose evaluated verdict differs from the reference's evaluated verdict."""
    out = []
    for k, c in cells.items():
        rh = ref.get(k, Verdict.na()).holds
        if c.holds is not None and rh is not None and c.holds != rh:
            out.append(k)
    return out


def flipped(variants: Mapping[str, Verdicts], ref: Verdicts) -> list[str]:
    """'variant: finding' for every evaluated verdict that differs from the reference's."""
    return [f"{v}: {k}" for v, cells in variants.items() for k in changes(cells, ref)]
