"""Each item's scale from its answers (:func:`infer_scales`), and scales given by hand
(:func:`parse_scale_overrides`, ``ITEM=SCALE[:RANGE]``): what the lavaan-style model
syntax (:mod:`smeintl.syntax`) needs to turn a data file into a spec.

Scale inference (:func:`infer_scales`)
--------------------------------------
On the answers of each item (empty cells are missing; every other cell must be a
number), the first rule that applies; k is the number of distinct answers, "whole"
means every answer is a whole number, skewness is the moment skewness
``m3 / m2**1.5``:

====  ==========  ===================================================  ====================
rule  scale       when                                                 range
====  ==========  ===================================================  ====================
1     binary      every answer is 0 or 1                               (none)
2     likert      whole, k >= 2, max - min <= 10                       observed min to max
3     percent     0 <= x <= 100, an exact 0 or 100, max - min > 10,    0 to 100
                  and not count-like (whole, skewness > 1, max < 100)
4     percent     0 <= x <= 1, not all whole, an exact 0 or 1,         0 to 1
                  k > 10 (proportions)
5     count       whole, x >= 0, skewness > 1 (a long right tail)      cap = observed max
6     continuous  anything else with k >= 2                            observed min to max
====  ==========  ===================================================  ====================

Rule 2 takes scales of up to 11 points (0 to 10), with a note when a level inside the
range was never answered; an observed range can be narrower than the questionnaire's
(nobody answered 1 on a 1-to-7 item): give the scale then (``x=likert:1-7``).  Rule 3
asks for a range wider than a rating scale's rather than many distinct answers, so that
coarse percentages (0, 25, 50, 75, 100) are percentages; a right-skewed column of whole
numbers below 100 is a count (number of employees, of patents), one that reaches
exactly 100 a percentage.  The answers alone cannot tell whole-number percentages below
100 from counts: the reason of such a count says so (give ``x=percent`` for them).  The
range of a continuous item with fractional answers is rounded outward to three
significant digits of its width (-2.7112 to 2.1178 becomes -2.72 to 2.12; it only sets
the deterministic 0-1 scaling).  A column with one distinct answer is binary when that
answer is 0 or 1 and refused otherwise; an empty column and a column with cells that are
not numbers are refused, each naming the column (and a few of the offending cells, by
spreadsheet row: the header is row 1).

Scale overrides (:func:`parse_scale_overrides`)
-----------------------------------------------
``ITEM=SCALE`` or ``ITEM=SCALE:RANGE``; ``RANGE`` is ``MIN-MAX`` (``-`` between two
numbers, each may be negative: ``likert:-3-3``) or, for ``count``, the cap alone:

* ``x1=binary`` (no range);
* ``x2=likert``, ``x2=likert:1-7``, ``x2=stage:0-4``: whole-number range (default: the
  observed minimum and maximum);
* ``x3=percent`` (0 to 100), ``x3=percent:0-1``;
* ``x4=count`` (cap: the observed maximum), ``x4=count:50``;
* ``x5=continuous`` (the observed range), ``x5=continuous:0-10``.

An unknown item or scale is refused naming the allowed values and the closest one; the
answers must fit the given scale (a likert item's answers within its range, a count's
whole numbers of at least 0, ...), or the override is refused naming a few answers
that do not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import families
from .errors import UserError, did_you_mean

__all__ = [
    "ScaleError",
    "ScaleOverride",
    "RULES",
    "SKEWED",
    "LIKERT_SPAN",
    "MIN_FRACTION_LEVELS",
    "infer_scales",
    "parse_scale_overrides",
    "format_scales",
]

#: the inference rules of :func:`infer_scales`, in the order they are tried: (scale, when)
RULES: tuple[tuple[str, str], ...] = (
    ("binary", "every answer is 0 or 1"),
    ("likert", "whole numbers, at least 2 distinct, max - min <= 10 (range: observed)"),
    ("percent", "0 to 100 with an exact 0 or 100, max - min > 10, not count-like (range: 0-100)"),
    ("percent", "fractions 0 to 1 with an exact 0 or 1, more than 10 distinct (range: 0-1)"),
    ("count", "whole numbers >= 0 with skewness > 1 (cap: observed max)"),
    ("continuous", "anything else (range: observed)"),
)
#: the skewness above which whole numbers >= 0 are counts (rules 3 and 5)
SKEWED = 1.0
#: the widest range (max - min) of a likert item (rule 2): scales of up to 11 points
LIKERT_SPAN = 10
#: how many distinct answers proportions need (rule 4)
MIN_FRACTION_LEVELS = 11

_RANGE_RE = re.compile(r"\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*-\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*\Z")
_CAP_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*\Z")
_SHOWN_VALUES = 5


class ScaleError(UserError):
    """An item's scale cannot be inferred or the scale given for it does not fit (see
    :func:`infer_scales`, :func:`parse_scale_overrides`).  ``problems`` lists every problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            msg = self.problems[0]
        else:
            msg = f"{len(self.problems)} problems with the items' scales\n" + "\n".join(
                f"  - {p}" for p in self.problems)
        super().__init__(msg)


# ---------------------------------------------------------------------------
# scales
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ScaleOverride:
    """A scale given for an item: ``scale`` and its range (``min``/``max``; for a count the
    cap is ``max``); None where the data set it."""

    item: str
    scale: str
    min: float | None = None
    max: float | None = None

    @property
    def text(self) -> str:
        """As written: ``x5=likert:1-7``."""
        if self.max is None:
            rng = ""
        elif _range_keys(self.scale) == ("cap",):
            rng = f":{_g(self.max)}"
        else:
            rng = f":{_g(self.min)}-{_g(self.max)}"
        return f"{self.item}={self.scale}{rng}"


def _range_keys(scale: str) -> tuple[str, ...]:
    """The keys that declare an item's range in a spec, by its family (``()`` for binary
    items, ``("cap",)`` for counts, ``("min", "max")`` otherwise)."""
    from .spec import Item

    return tuple(families.family_of(scale).range_keys(Item("_", "", "", scale, 0.0, 1.0)))


def _default_range(scale: str) -> tuple[float, float] | None:
    """The range a family gives an item whose spec declares none; None when it needs one."""
    problems: list[str] = []
    lo, hi = families.family_of(scale).item_range({}, scale, "_", problems)
    return None if problems else (float(lo), float(hi))


def _g(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def parse_scale_overrides(values: Iterable[str] | None, items: Sequence[str] | None = None
                          ) -> dict[str, ScaleOverride]:
    """``["x4=count", "x5=likert:1-7"]`` as ``{item: ScaleOverride}`` (grammar: module
    docstring).  With ``items`` (the model's), an item outside it is refused.

    Raises :class:`ScaleError` listing every problem.
    """
    allowed = families.scales()
    out: dict[str, ScaleOverride] = {}
    problems: list[str] = []
    for value in values or ():
        value = str(value)
        what = f"scale {value!r}"
        item, eq, rest = value.partition("=")
        item, rest = item.strip(), rest.strip()
        scale, colon, rng = rest.partition(":")
        scale = scale.strip().lower()
        if not eq or not item or not scale:
            problems.append(f"{what}: write ITEM=SCALE or ITEM=SCALE:MIN-MAX, e.g. x5=likert:1-7; scales: "
                            f"{', '.join(allowed)}")
            continue
        if items is not None and item not in items:
            problems.append(f"{what}: {item!r} is not an item of the model{did_you_mean(item, items)}; items: "
                            f"{', '.join(items)}")
            continue
        if scale not in allowed:
            problems.append(f"{what}: unknown scale {scale!r}{did_you_mean(scale, allowed)}; allowed: "
                            f"{', '.join(allowed)}")
            continue
        if item in out:
            problems.append(f"{what}: a scale for {item!r} is given twice ({out[item].text} and {value})")
            continue
        lo = hi = None
        if colon:
            if not _range_keys(scale):
                problems.append(f"{what}: a binary item has no range (its answers are 0 and 1); write {item}=binary")
                continue
            if _range_keys(scale) == ("cap",):
                cap = _CAP_RE.match(rng)
                if not cap or float(cap.group(1)) <= 0:
                    problems.append(f"{what}: a count takes its cap, a number above 0 (count:50), got {rng!r}")
                    continue
                lo, hi = 0.0, float(cap.group(1))
            else:
                m = _RANGE_RE.match(rng)
                if not m:
                    problems.append(f"{what}: the range is MIN-MAX, two numbers (e.g. {scale}:1-7), got {rng!r}")
                    continue
                lo, hi = float(m.group(1)), float(m.group(2))
                if not lo < hi:
                    problems.append(f"{what}: the range's maximum ({_g(hi)}) must be greater than its minimum "
                                    f"({_g(lo)})")
                    continue
                if families.family_of(scale).whole_numbers and (lo != int(lo) or hi != int(hi)):
                    problems.append(f"{what}: an ordinal scale ({scale}) has a range of whole numbers")
                    continue
        out[item] = ScaleOverride(item, scale, lo, hi)
    if problems:
        raise ScaleError(problems)
    return out


def _numbers(column: pd.Series) -> tuple[np.ndarray, list[tuple[int, Any]]]:
    """A column's cells as floats (NaN: empty) and the (position, cell) of the others: the data
    checks' own parsing (:mod:`smeintl.data`), with infinities counted as not numbers."""
    from .data import _to_numbers

    cells = column.tolist()
    out, bad = _to_numbers(cells, range(len(cells)))
    inf = np.flatnonzero(np.isinf(out))
    out[inf] = np.nan
    return out, sorted([*bad, *((int(r), cells[r]) for r in inf)], key=lambda t: t[0])


def _cells(cells: Sequence[tuple[int, Any]]) -> str:
    """A few distinct offending cells, each with the first row it is in (header = row 1)."""
    first: dict[str, int] = {}
    for r, v in cells:
        first.setdefault(repr(v), r)
    shown = ", ".join(f"{v} (row {r + 2})" for v, r in list(first.items())[:_SHOWN_VALUES])
    more = f", ... ({len(cells)} cells in all)" if len(cells) > min(len(first), _SHOWN_VALUES) else ""
    return shown + more


def _skewness(v: np.ndarray) -> float:
    d = v - v.mean()
    m2 = float(np.mean(d ** 2))
    return float(np.mean(d ** 3) / m2 ** 1.5) if m2 > 0 else 0.0


def _list(xs: Sequence[Any]) -> str:
    xs = [f"{x:g}" if isinstance(x, float) else str(x) for x in xs]
    return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + f" and {xs[-1]}"


def _infer(v: np.ndarray) -> tuple[str, float, float, str]:
    """(scale, min, max, reason) of the non-missing answers ``v`` (at least two distinct)."""
    levels = np.unique(v)
    k = len(levels)
    lo, hi = float(levels[0]), float(levels[-1])
    whole = bool(np.all(v == np.round(v)))
    if set(levels.tolist()) <= {0.0, 1.0}:
        return "binary", 0.0, 1.0, "only 0 and 1"
    if whole and hi - lo <= LIKERT_SPAN:
        unseen = sorted(set(range(int(lo), int(hi) + 1)) - {int(x) for x in levels})
        reason = f"whole numbers {lo:g} to {hi:g}"
        if unseen:
            reason += f"; {_list(unseen)} never answered"
        return "likert", lo, hi, reason
    skew = _skewness(v)
    count_like = whole and lo >= 0 and skew > SKEWED
    if lo >= 0 and hi <= 100 and (lo == 0 or hi == 100) and hi - lo > LIKERT_SPAN and not (count_like and hi < 100):
        ends = " and ".join(w for w, hit in (("0s", lo == 0), ("100s", hi == 100)) if hit)
        return "percent", 0.0, 100.0, f"numbers from {lo:.4g} to {hi:.4g} with exact {ends}"
    if lo >= 0 and hi <= 1 and not whole and (lo == 0 or hi == 1) and k >= MIN_FRACTION_LEVELS:
        ends = " and ".join(w for w, hit in (("0s", lo == 0), ("1s", hi == 1)) if hit)
        return "percent", 0.0, 1.0, f"fractions from {lo:.4g} to {hi:.4g} with exact {ends} (proportions)"
    if count_like:
        hint = "; if these are percentages, give percent" if hi <= 100 else ""
        return "count", 0.0, hi, f"whole numbers {lo:g} to {hi:g} with a long right tail (skewness {skew:.1f}){hint}"
    if whole:
        shape = f", not skewed (skewness {skew:.1f})" if lo >= 0 else ""
        return "continuous", lo, hi, f"whole numbers {lo:g} to {hi:g}{shape}"
    return ("continuous", *_outward(lo, hi), f"numbers from {lo:.4g} to {hi:.4g} (range rounded outward)")


def _outward(lo: float, hi: float) -> tuple[float, float]:
    """``lo`` and ``hi`` rounded outward to three significant digits of the range
    (-2.7112 and 2.1178 to -2.72 and 2.12): the declared range only sets the scaling."""
    decimals = 2 - math.floor(math.log10(hi - lo))
    step = 10.0 ** -decimals
    return round(math.floor(lo / step) * step, decimals), round(math.ceil(hi / step) * step, decimals)


def _override_row(o: ScaleOverride, v: np.ndarray, problems: list[str]) -> tuple[float, float, str] | None:
    """(min, max, reason) of an item with a given scale; None (a problem) when its answers
    do not fit."""
    from .spec import Item

    fam = families.family_of(o.scale)
    lo, hi = o.min, o.max
    default = _default_range(o.scale)
    if not _range_keys(o.scale):  # no range to give (binary)
        lo, hi = default
    elif hi is None:
        if default is not None:  # the family's own default range (percent: 0-100)
            lo, hi = default
        elif _range_keys(o.scale) == ("cap",):
            lo, hi = 0.0, float(max(v.max(), 1.0))
        else:
            lo, hi = float(v.min()), float(v.max())
            if not lo < hi:
                problems.append(f"scale {o.text!r}: every answer of {o.item} is {lo:g}; give the range "
                                f"({o.item}={o.scale}:MIN-MAX)")
                return None
    item = Item(o.item, "", "", o.scale, float(lo), float(hi))
    ok = fam.valid(v, item)
    if fam.whole_numbers:
        ok &= v == np.round(v)
    if not ok.all():
        bad = [(r, x) for r, x in zip(np.flatnonzero(~ok), v[~ok])]
        shown = ", ".join(f"{x:g}" for _, x in bad[:_SHOWN_VALUES])
        more = f" and {len(bad) - _SHOWN_VALUES} more" if len(bad) > _SHOWN_VALUES else ""
        problems.append(f"scale {o.text!r}: {len(bad)} answer(s) of {o.item} do not fit: {shown}{more}; "
                        f"allowed: {fam.allowed(item, f'{lo:g}', f'{hi:g}')}")
        return None
    return float(lo), float(hi), f"given ({o.text.partition('=')[2]})"


def _column_map(frame: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in frame.columns:
        out.setdefault(str(c).strip(), c)
    return out


def infer_scales(frame: pd.DataFrame, items: Iterable[str] | Mapping[str, Sequence[str]], *,
                 overrides: Mapping[str, ScaleOverride] | None = None) -> pd.DataFrame:
    """The scale of each item from its answers in ``frame`` (rules: module docstring); an
    item in ``overrides`` takes the scale given there (its answers must fit it).

    ``items``: column names, or a model (:func:`parse_model`'s construct -> items).
    Returns one row per item, in order: ``item``, ``scale``, ``min``, ``max``, ``cap``
    (counts; NaN otherwise), ``n_levels`` (distinct answers), ``n_answers`` (non-empty
    cells), ``reason`` (a short sentence).  Raises :class:`ScaleError` listing every
    column that is missing, empty, constant or not numeric, and every override that does
    not fit.
    """
    if isinstance(items, Mapping):
        names = [i for its in items.values() for i in its]
    else:
        names = [str(i) for i in items]
    overrides = dict(overrides or {})
    columns = _column_map(frame)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    for name in names:
        if name not in columns:
            problems.append(f"column {name!r} is not in the data{did_you_mean(name, columns)}")
            continue
        col = frame[columns[name]]
        if isinstance(col, pd.DataFrame):
            problems.append(f"column {name!r} appears {col.shape[1]} times in the data's header; rename the copies")
            continue
        values, bad = _numbers(col)
        if bad:
            problems.append(f"column {name!r} is not numeric: {_cells(bad)}; an item's answers are numbers (empty "
                            f"for a missing answer): fix these cells, or take {name!r} out of the model")
            continue
        v = values[~np.isnan(values)]
        if not len(v):
            problems.append(f"column {name!r} has no answers (every cell is empty); take it out of the model")
            continue
        k = len(np.unique(v))
        row: dict[str, Any] = {"item": name}
        if name in overrides:
            o = overrides[name]
            got = _override_row(o, v, problems)
            if got is None:
                continue
            lo, hi, reason = got
            scale = o.scale
        elif k == 1 and v[0] not in (0.0, 1.0):
            problems.append(f"column {name!r} has one answer only ({v[0]:g} for every firm that answered): it "
                            f"measures nothing; take it out of the model, or give its scale ({name}=likert:1-5)")
            continue
        elif k == 1:
            scale, lo, hi = "binary", 0.0, 1.0
            reason = f"only {v[0]:g} answered (0 or 1: binary)"
        else:
            scale, lo, hi, reason = _infer(v)
        row.update(scale=scale, min=lo, max=hi, cap=hi if _range_keys(scale) == ("cap",) else np.nan,
                   n_levels=k, n_answers=len(v), reason=reason)
        rows.append(row)
    if problems:
        raise ScaleError(problems)
    cols = ["item", "scale", "min", "max", "cap", "n_levels", "n_answers", "reason"]
    table = pd.DataFrame(rows, columns=cols)
    return table.astype({"min": float, "max": float, "cap": float, "n_levels": int, "n_answers": int})


def _range_text(scale: str, lo: float, hi: float) -> str:
    keys = _range_keys(scale)
    if not keys:
        return "0/1"
    if keys == ("cap",):
        return f"cap {hi:g}"
    return f"{lo:g} to {hi:g}"


def format_scales(table: pd.DataFrame) -> str:
    """The scale table of :func:`infer_scales` as text for a terminal."""
    head = ("item", "scale", "range", "levels", "why")
    body = [(str(r.item), str(r.scale), _range_text(r.scale, r.min, r.max), str(r.n_levels), str(r.reason))
            for r in table.itertuples(index=False)]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  " + "  ".join(x.ljust(w) for x, w in zip(row[:-1], widths[:-1])) + "  " + row[-1]
             for row in (head, *body)]
    return "\n".join(lines)
