"""A lavaan-style model syntax: from ``visual =~ x1 + x2 + x3`` and a data file to a spec.

Instead of writing an instrument spec by hand, a measurement model can be given in the
syntax of the R package lavaan; the scale of each item is inferred from its answers in
the data, and the result is an ordinary spec (:class:`smeintl.spec.Spec`) with its TOML
text, which can be saved, edited and used with ``--spec``::

    from smeintl.data import read_table
    from smeintl.syntax import spec_from_model

    built = spec_from_model("visual =~ x1 + x2 + x3\\ntextual =~ x4 + x5 + x6",
                            read_table("survey.csv"), scales=["x4=count"], id_column="id")
    built.spec        # the Spec (its .text is built.toml)
    built.toml        # the spec file's text
    built.scales      # the inferred scales, one row per item

On the command line, every command that reads a data file and a spec takes
``--model TEXT_OR_FILE`` instead of ``--spec`` (with ``--scale ITEM=SCALE``,
``--id-column NAME`` and ``--group-column NAME``; the inferred scales are printed on
stderr first), and ``smeintl spec`` writes the spec file::

    smeintl spec survey.csv --model hs.lav --scale x4=count --id-column id --out hs.toml
    smeintl fit survey.csv --model "visual =~ x1 + x2 + x3; textual =~ x4 + x5 + x6" --quick
    smeintl fit survey.csv --spec hs.toml       # the spec file, once checked and edited

Grammar (:func:`parse_model`)
-----------------------------
One statement per line, ``construct =~ item + item + ...``:

* ``#`` (or ``!``, as in lavaan) starts a comment that runs to the end of the line;
  blank lines are skipped;
* ``;`` separates statements on one line: ``f1 =~ a + b + c; f2 =~ d + e + f``;
* a right-hand side continues on the next line after a trailing ``+`` (or when the next
  line starts with ``+``, or after an ``=~`` that ends its line);
* several statements for one construct append its items
  (``f =~ a + b`` then ``f =~ c`` is ``f =~ a + b + c``); constructs and items keep the
  order of their first appearance;
* names (constructs and items) start with a letter or ``_`` and hold letters, digits,
  ``_`` and ``.``; an item is a column of the data.

The loading modifier ``NA*x1`` (a free loading) is accepted and changes nothing: every
loading is free in smeintl.  ``f ~~ 1*f`` (the latent variance fixed at 1, lavaan's way to
identify a model with ``NA*`` loadings) is accepted for a declared construct for the same
reason: smeintl's latent scores have sd 1.  Everything else is refused with a
:class:`ModelSyntaxError` naming the line and its text:

* other operators: regressions ``~`` and intercepts ``~ 1``, (residual) variances and
  covariances ``~~``, scaling factors ``~*~``, formative constructs ``<~``, defined
  parameters ``:=``, constraints ``==``, ``<``, ``>``, thresholds ``|``: smeintl estimates
  the latent correlations, the intercepts and the thresholds itself, and regressions and
  residual covariances are not part of its measurement model;
* fixed loadings (``1*x1``), labelled or constrained loadings (``a*x1``,
  ``label("a")*x1``, ``equal("a")*x1``) and the other modifiers (``start(1)*x1``,
  ``c(1, NA)*x1``);
* an item under two constructs (cross-loadings: each item measures one construct in
  smeintl's model), an item listed twice, a construct that is also an item (higher-order
  constructs);
* an empty side, an empty term (``a + + b``), an invalid name, a ``-`` before an item
  (reverse-coded items are marked ``reverse = true`` in the spec file; lavaan has no
  such syntax).

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

The spec (:func:`spec_from_model`)
----------------------------------
The TOML written has ``[instrument]`` (``name``, a ``description`` quoting the model,
``id_column`` when given, ``group_column`` (``""``: none), ``outcome_column = ""``,
``extra_columns = []``), one ``[[constructs]]`` per construct (one sub-dimension named
like the construct) and one ``[[items]]`` per item with its scale and range keys (as
its family reads them: ``min``/``max``, ``cap`` for counts, none for binary items);
no sub-dimensions, no profiles (no typology), no findings.  A comment above each item
says why it has its scale.  :func:`smeintl.spec.parse_spec` reads it back to the same
spec.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import families
from .errors import UserError, did_you_mean

if TYPE_CHECKING:
    from .spec import Spec

__all__ = [
    "ModelSyntaxError",
    "ScaleError",
    "ScaleOverride",
    "ModelSpec",
    "RULES",
    "SKEWED",
    "LIKERT_SPAN",
    "MIN_FRACTION_LEVELS",
    "parse_model",
    "load_model_text",
    "infer_scales",
    "parse_scale_overrides",
    "spec_from_model",
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

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
# lavaan's operators, longest first at each position
_OPERATOR_RE = re.compile(r"=~|<~|~\*~|~~|:=|==|~|<|>|\||%")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
_RANGE_RE = re.compile(r"\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*-\s*([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*\Z")
_CAP_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*\Z")

_MEASURE = "=~"
_SHOWN_VALUES = 5


class ModelSyntaxError(UserError):
    """The model syntax is invalid.  ``problems`` lists every problem found, each naming
    its line and text; ``source`` names the text (a file, or ``--model``)."""

    def __init__(self, problems: Sequence[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" ({source})" if source else ""
        if len(self.problems) == 1:
            msg = f"invalid model syntax{where}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            msg = f"invalid model syntax{where}: {len(self.problems)} problems\n{lines}"
        super().__init__(msg)


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
# the syntax
# ---------------------------------------------------------------------------
@dataclass
class _Statement:
    text: str
    first: int  # line numbers, from 1
    last: int
    reported: bool = False  # a problem of its lines is reported already

    @property
    def where(self) -> str:
        lines = f"line {self.first}" if self.first == self.last else f"lines {self.first}-{self.last}"
        return f"{lines}: `{self.text}`"

    @property
    def open_end(self) -> str | None:
        """The ``+`` or ``=~`` the statement ends with (its right-hand side continues), else None."""
        return next((end for end in ("+", "=~") if self.text.endswith(end)), None)


_OPERATOR_MESSAGES = {
    "~": "regressions ('~') are not part of the measurement model: smeintl measures the constructs and "
         "estimates all their correlations itself; remove this line (relate the scores to other variables "
         "after the fit)",
    "~~": "variances and covariances ('~~') are not declared: smeintl estimates all latent correlations "
          "itself, and residual covariances of items are not part of its measurement model (items are "
          "independent given the constructs); remove this line",
    "~*~": "scaling factors ('~*~') are not part of the measurement model; remove this line",
    "<~": "formative constructs ('<~') are not supported: smeintl's constructs are reflective, "
          "'construct =~ item + item'",
    ":=": "defined parameters (':=') are not supported: smeintl labels no parameters; compute such "
          "quantities from the fit's draws",
    "==": "parameter constraints ('==') are not supported: every loading is estimated freely",
    "<": "parameter constraints ('<') are not supported: every loading is estimated freely (and positive)",
    ">": "parameter constraints ('>') are not supported: every loading is estimated freely (and positive)",
    "|": "thresholds ('|') are not declared: smeintl estimates the thresholds of ordinal items itself "
         "(give the item's scale instead, e.g. x1=likert:1-5)",
    "%": "'%' is not an operator of the measurement model",
}


def _strip_comment(line: str) -> str:
    cut = [i for i in (line.find("#"), line.find("!")) if i >= 0]
    return line[:min(cut)] if cut else line


def _statements(text: str, problems: list[tuple[int, str]]) -> list[_Statement]:
    """The statements of ``text``: comments removed, ``;`` split, continued lines joined."""
    out: list[_Statement] = []
    for n, raw_line in enumerate(text.splitlines(), start=1):
        for piece in _strip_comment(raw_line).split(";"):
            piece = " ".join(piece.split())
            if not piece:
                continue
            last = out[-1] if out else None
            if _OPERATOR_RE.search(piece) is None:
                if last is not None and not last.reported and (last.open_end or piece.startswith("+")):
                    last.text, last.last = f"{last.text} {piece}", n
                else:
                    problems.append((n,
                        f"line {n}: `{piece}` has no operator; a construct is declared as "
                        f"'construct =~ item + item + ...' (to continue the line above, end it with '+')"
                    ))
                continue
            if last is not None and not last.reported and last.open_end:
                problems.append((last.first, f"{last.where}: the right-hand side ends with {last.open_end!r}, "
                                             f"but line {n} starts a new statement; an item is missing"))
                last.reported = True
            out.append(_Statement(piece, n, n))
    if out and not out[-1].reported and out[-1].open_end:
        problems.append((out[-1].first, f"{out[-1].where}: the model ends after {out[-1].open_end!r}; "
                                        f"an item is missing"))
        out[-1].reported = True
    return out


def _modifier_problem(mod: str, name: str) -> str | None:
    """Why the loading modifier ``mod*name`` is refused; None for ``NA`` (a free loading)."""
    if mod == "NA":
        return None
    if _NUMBER_RE.match(mod):
        return (f"'{mod}*{name}' fixes the loading of {name} at {mod}: smeintl fixes no loading (each is "
                f"estimated, positive after reverse coding, and the constructs' scores have sd 1); write "
                f"'{name}' without '{mod}*'")
    call = re.match(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\(", mod)
    if call and call.group(1) in ("label", "equal"):
        return (f"'{mod}*{name}' {'labels' if call.group(1) == 'label' else 'constrains'} the loading of "
                f"{name}: labels and equality constraints are not supported, every loading is estimated "
                f"freely; write '{name}' without '{mod}*'")
    if call and call.group(1) == "c":
        return (f"'{mod}*{name}': group-specific modifiers (c(...)) are not supported: the model is the "
                f"same for every group; write '{name}' without '{mod}*'")
    if call:
        return (f"'{mod}*{name}': the modifier {call.group(1)}() is not supported; write '{name}' "
                f"without '{mod}*'")
    if _NAME_RE.match(mod):
        return (f"'{mod}*{name}' labels the loading of {name} as {mod!r}: labels and equality constraints "
                f"are not supported, every loading is estimated freely; write '{name}' without '{mod}*'")
    return f"'{mod}*{name}': {mod!r} is not a modifier smeintl knows; write '{name}' alone"


def _bad_name(name: str, what: str) -> str:
    if not name:
        return f"empty {what} name"
    if name.startswith("-") or re.search(r"\s-\s*[A-Za-z_]", name):
        return (f"'{name}': lavaan has no '-' before an item; a reverse-coded item is marked "
                f"'reverse = true' in the spec file (write it with 'smeintl spec', edit it, use it with --spec)")
    if " " in name:
        return (f"{what} name '{name}' holds a space (two names without '+' between them?); names are "
                f"letters, digits, '_' and '.'")
    return f"invalid {what} name '{name}': a name starts with a letter or '_' and holds letters, digits, '_' and '.'"


def parse_model(text: str, *, source: str | None = None) -> dict[str, tuple[str, ...]]:
    """The constructs of lavaan-style model syntax and their items, in order (see the
    module docstring for the grammar).  ``source`` names the text in messages.

    Raises :class:`ModelSyntaxError` listing every problem (line numbers from 1), in
    line order.
    """
    if not isinstance(text, str):
        raise TypeError(f"model syntax must be a string, got {type(text).__name__}")
    problems: list[tuple[int, str]] = []
    statements = _statements(text, problems)
    items: dict[str, list[str]] = {}
    line_of_construct: dict[str, int] = {}
    owner: dict[str, tuple[str, int]] = {}  # item -> (construct, line)
    variances: list[tuple[_Statement, str]] = []  # f ~~ 1*f, checked once the constructs are known

    def refuse(st: _Statement, why: str) -> None:
        problems.append((st.first, f"{st.where}: {why}"))

    for st in statements:
        if st.reported:
            continue
        m = _OPERATOR_RE.search(st.text)
        op = m.group(0)
        lhs, rhs = st.text[:m.start()].strip(), st.text[m.end():].strip()
        if op != _MEASURE:
            if op == "~~":
                parts = [p.strip() for p in rhs.split("*")]
                if lhs and len(parts) == 2 and parts[0] in ("1", "1.0") and parts[1] == lhs:
                    variances.append((st, lhs))
                    continue
            if op == "~" and rhs in ("1", "1.0"):
                refuse(st, "intercepts ('~ 1') are estimated for every item by smeintl; remove this line")
            else:
                refuse(st, _OPERATOR_MESSAGES[op])
            continue
        if _OPERATOR_RE.search(rhs):
            refuse(st, "one operator per statement (separate statements with ';' or a new line)")
            continue
        if not lhs:
            refuse(st, "empty left-hand side; name the construct before '=~'")
            continue
        if not _NAME_RE.match(lhs):
            refuse(st, _bad_name(lhs, "construct"))
            continue
        if not rhs:
            refuse(st, "empty right-hand side; list the construct's items after '=~'")
            continue
        line_of_construct.setdefault(lhs, st.first)
        mine = items.setdefault(lhs, [])
        for term in rhs.split("+"):
            term = term.strip()
            if not term:
                refuse(st, "empty term (two '+' in a row, or a '+' at an end)")
                continue
            *mods, name = [p.strip() for p in term.split("*")]
            if not _NAME_RE.match(name):
                refuse(st, _bad_name(name, "item"))
                continue
            refused = [msg for msg in (_modifier_problem(mod, name) for mod in mods) if msg]
            if refused:
                for msg in refused:
                    refuse(st, msg)
                continue
            if name in mine:
                refuse(st, f"item '{name}' is listed twice for construct '{lhs}'")
                continue
            if name in owner:
                other, line = owner[name]
                refuse(st, f"item '{name}' is also under construct '{other}' (line {line}): cross-loadings are "
                           f"not supported by the model, each item measures one construct; keep '{name}' under one")
                continue
            owner[name] = (lhs, st.first)
            mine.append(name)
    for name, (cons, line) in owner.items():
        if name in items:
            problems.append((line, f"'{name}' is a construct (line {line_of_construct[name]}) and an item of "
                                   f"'{cons}' (line {line}): higher-order constructs are not supported; items "
                                   f"are columns of the data"))
    for st, name in variances:
        if name not in items:
            refuse(st, _OPERATOR_MESSAGES["~~"])
    if not problems and not any(items.values()):
        problems.append((0, "the model declares no construct: write one line per construct, e.g. "
                            "'visual =~ x1 + x2 + x3'"))
    if problems:
        raise ModelSyntaxError([msg for _, msg in sorted(problems, key=lambda p: p[0])], source)
    return {c: tuple(v) for c, v in items.items() if v}


def load_model_text(arg: str | os.PathLike) -> str:
    """The model syntax ``arg`` stands for: the text of the file it names when that file
    exists (any extension: ``model.lav``, ``model.txt``), else ``arg`` itself, where the two
    characters ``\\n`` stand for a line break (as typed in a shell's quotes).

    An ``arg`` that looks like a file name (no operator, no space, a ``/`` or an
    extension) and names no file is refused as a missing file (:class:`UserError`).
    """
    p = Path(arg)
    text = str(arg)
    try:
        is_file, is_dir = p.is_file(), p.is_dir()
    except (OSError, ValueError):  # a name too long, a NUL character: text
        is_file = is_dir = False
    if is_dir and not _OPERATOR_RE.search(text):
        raise UserError(f"model {text}: is a folder; give a model file (e.g. model.lav) or the model syntax itself")
    if is_file:
        try:
            return p.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise UserError(f"model file {text}: not a text file in UTF-8; a model file holds lavaan-style "
                            f"syntax such as 'visual =~ x1 + x2 + x3'") from None
        except OSError as exc:
            raise UserError(f"model file {text}: cannot read the file ({exc.strerror or exc})") from None
    if isinstance(arg, os.PathLike) or (
            not _OPERATOR_RE.search(text) and not any(c.isspace() for c in text.strip())
            and ("/" in text or os.sep in text or re.search(r"\.[A-Za-z]\w*\Z", text))):
        raise UserError(f"model file {text} not found (and {text!r} is not model syntax, which reads "
                        f"'construct =~ item + item + ...')")
    return text.replace("\\n", "\n")


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


# ---------------------------------------------------------------------------
# the spec
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ModelSpec:
    """What :func:`spec_from_model` built: ``spec`` (the parsed :class:`~smeintl.spec.Spec`,
    whose ``text`` is ``toml``), ``toml`` (the spec file's text), ``scales`` (the table of
    :func:`infer_scales` after the overrides) and ``model`` (construct -> items)."""

    spec: "Spec"
    toml: str
    scales: pd.DataFrame
    model: Mapping[str, tuple[str, ...]]


def _overrides(scales: Any, items: Sequence[str]) -> dict[str, ScaleOverride]:
    if scales is None:
        return {}
    if isinstance(scales, str):
        scales = [scales]
    if isinstance(scales, Mapping):
        given = {k: v for k, v in scales.items() if isinstance(v, ScaleOverride)}
        texts = [f"{k}={v}" for k, v in scales.items() if not isinstance(v, ScaleOverride)]
        unknown = [k for k in given if k not in items]
        if unknown:
            raise ScaleError([f"{k!r} is not an item of the model{did_you_mean(k, items)}; items: "
                              f"{', '.join(items)}" for k in unknown])
        return {**given, **parse_scale_overrides(texts, items)}
    return parse_scale_overrides(list(scales), items)


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _spec_toml(model: Mapping[str, Sequence[str]], table: pd.DataFrame, *, name: str,
               id_column: str | None, group_column: str | None) -> str:
    import tomli_w

    from .spec import Item

    statements = "; ".join(f"{c} =~ {' + '.join(its)}" for c, its in model.items())
    instrument: dict[str, Any] = {"name": name, "description": f"Measurement model {statements}"}
    if id_column:
        instrument["id_column"] = id_column
    instrument.update(group_column=group_column or "", outcome_column="", extra_columns=[])
    head = ["# Instrument spec written by smeintl from the model", *(f"#   {c} =~ {' + '.join(its)}"
            for c, its in model.items()),
            "# and the answers in the data: check each item's scale and range (the comment above it says",
            "# why it has them), add reverse = true to reverse-coded items, then use this file with --spec.",
            ""]
    # every table under its own header ([[items]]; tomli_w writes short arrays of tables inline)
    parts = ["\n".join(head), "[instrument]\n" + tomli_w.dumps(instrument),
             *("[[constructs]]\n" + tomli_w.dumps({"name": c}) for c in model)]
    construct_of = {i: c for c, its in model.items() for i in its}
    for r in table.itertuples(index=False):
        entry: dict[str, Any] = {"name": r.item, "construct": construct_of[r.item], "scale": r.scale}
        item = Item(r.item, construct_of[r.item], construct_of[r.item], r.scale, float(r.min), float(r.max))
        entry.update({k: _number(v) for k, v in families.family_of(r.scale).range_keys(item).items()})
        parts.append(f"# {r.item}: {r.reason}\n[[items]]\n" + tomli_w.dumps(entry))
    return "\n".join(parts)


def spec_from_model(model_text: str, frame: pd.DataFrame | str | os.PathLike, *,
                    scales: Mapping[str, str | ScaleOverride] | Sequence[str] | None = None,
                    name: str = "model", id_column: str | None = None, group_column: str | None = None,
                    source: str = "<model syntax>", model_source: str | None = None) -> ModelSpec:
    """The spec of lavaan-style ``model_text`` (:func:`parse_model`) on the data ``frame``
    (a frame as :func:`smeintl.data.read_table` returns, or a survey file's path), each
    item's scale inferred from its answers (:func:`infer_scales`) unless ``scales`` gives
    it (``["x4=count"]`` or ``{"x4": "count"}``, :func:`parse_scale_overrides`).

    ``name``: the instrument's name; ``id_column``: the firms' id column (None: the spec
    names none, so ``firm_id`` or, without it, the row numbers); ``group_column``: the
    group (industry) column, None for no group level; ``source``: how the spec is named
    in messages and fits; ``model_source``: how the model text is named in its messages.
    Raises :class:`ModelSyntaxError`, :class:`ScaleError` or :class:`UserError`.
    """
    from .spec import parse_spec

    model = parse_model(model_text, source=model_source)
    if not isinstance(frame, pd.DataFrame):
        from .data import read_table

        frame = read_table(frame)
    items = [i for its in model.values() for i in its]
    columns = _column_map(frame)
    problems: list[str] = []
    for option, col in (("id_column", id_column), ("group_column", group_column)):
        if col is None:
            continue
        if not isinstance(col, str) or not col.strip():
            problems.append(f"{option}: must be a column name, got {col!r}")
        elif col not in columns:
            problems.append(f"{option}: {col!r} is not a column of the data{did_you_mean(col, columns)}; "
                            f"columns: {', '.join(columns)}")
        elif col in items:
            problems.append(f"{option}: {col!r} is also an item of the model; a column is either an item or "
                            f"the {'id' if option == 'id_column' else 'group'} column")
    if id_column is not None and id_column == group_column:
        problems.append(f"id_column and group_column: both are {id_column!r}; give two columns")
    missing = [i for i in items if i not in columns]
    if missing:
        hints = "; ".join(f"{i!r}{did_you_mean(i, columns)}" for i in missing)
        problems.append(f"the model names items that are not columns of the data: {hints}; columns: "
                        f"{', '.join(columns)}")
    if problems:
        raise UserError(problems[0] if len(problems) == 1
                        else "\n".join([f"{len(problems)} problems", *(f"  - {p}" for p in problems)]))
    table = infer_scales(frame, model, overrides=_overrides(scales, items))
    toml = _spec_toml(model, table, name=name, id_column=id_column, group_column=group_column)
    spec = parse_spec(toml, source=source)
    return ModelSpec(spec=spec, toml=toml, scales=table, model=model)
