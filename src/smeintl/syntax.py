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

Scales
------
Each item's scale is inferred from its answers, or given (``--scale ITEM=SCALE[:RANGE]``):
:mod:`smeintl.scales` (:func:`infer_scales`, :func:`parse_scale_overrides`, with its rule
table), whose names this module also exports.

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

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from . import families
from .errors import UserError, did_you_mean
from .scales import (
    LIKERT_SPAN,
    MIN_FRACTION_LEVELS,
    RULES,
    SKEWED,
    ScaleError,
    ScaleOverride,
    _column_map,
    format_scales,
    infer_scales,
    parse_scale_overrides,
)

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

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
# lavaan's operators, longest first at each position
_OPERATOR_RE = re.compile(r"=~|<~|~\*~|~~|:=|==|~|<|>|\||%")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")

_MEASURE = "=~"


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
