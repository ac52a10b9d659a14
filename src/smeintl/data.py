"""Read survey files (CSV, Excel, SPSS), validate them against a spec, hold them as a :class:`Survey`.

A survey file is one table with a header row and one row per firm:

* the id column (``spec.id_column``, e.g. ``firm_id``), read as text so that
  leading zeros survive (``"007"`` stays ``"007"``);
* the group column (``spec.group_column``, e.g. ``industry``) when the spec has one;
* optionally the outcome column (``spec.outcome_column``) and the extra columns
  (``spec.extra_columns``, e.g. ``employees``), all numeric;
* one column per item of the spec, holding the raw answers as the firm gave them
  (not scaled, not reverse coded).  An empty cell is a missing answer.

Validation collects *every* problem before failing and raises one :class:`DataError`
whose message lists them (the listing is capped, ``DataError.problems`` holds all).
Each message names the file, the row as a spreadsheet user sees it (the header is
row 1, the first firm is row 2), the column and what is allowed, e.g.::

    data.csv, row 7, column 'overseas_growth': value 7 is out of range; allowed:
    whole numbers 1 to 5 (likert), or empty for a missing answer

Rules (see :func:`validate_frame`):

* required columns: id (unless the spec names no ``id_column`` and the file has no
  ``firm_id`` column: firms are then numbered by row, 1 for the first), group (if the
  spec has one), the covariates (``[instrument] covariates``, carried through as read),
  every item; other columns are ignored (``Survey.ignored`` lists them); no duplicate
  column names, no unnamed column holding values (for a workbook whose
  sheet lacks required columns, the message names the other sheets);
* firm ids: non-empty and unique, also as numbers: ``7``, ``007`` and ``7.0`` are
  refused as one number written differently (ids stay text; nothing is renamed);
* group: non-empty;
* item, outcome and extra columns: numbers (or empty); items within their scale:
  likert / stage whole numbers in ``[min, max]``; percent in ``[min, max]``
  (default 0 to 100); count whole numbers >= 0 (the cap only matters for scaling);
  binary 0 or 1; continuous any finite number (its declared range sets the scaling);
* at least one data row; no item may be empty for every firm;
* percentages, not fractions (files only): an item declared 0 to 100 whose answers
  need not be whole numbers (percent, or continuous with that range) may not have
  every answer between 0 and 1 with some above 0.  That is how Excel stores cells
  formatted ``0%`` (it shows 45%, the cell holds 0.45); multiply by 100, or declare
  ``max = 1`` for the item in the spec when the file holds fractions on purpose.

Reading refuses, with one message naming the cause instead of many shifted cells: a
CSV file that is not text in its encoding (UTF-8 by default; the message names the
row and suggests ``--encoding cp932`` for Shift-JIS or ``--encoding latin-1``), a
binary file or a workbook with a ``.csv`` name, a CSV file separated by semicolons
or tabs (as Excel writes CSV with European regional settings, decimal commas
included: give the ``.xlsx`` instead), rows with more values than the header
(unquoted decimal commas such as ``3,5`` or commas in texts), and Excel formula cells
without a saved value (a workbook written by a program and never saved in Excel).
An Excel number shown with leading zeros (number format ``000`` or ``"F"000``) is read
as the text shown, so ids keep their zeros; an empty sheet is refused naming the
workbook's sheets (choose one with ``sheet=`` / ``--sheet``).

Only empty (or blank) cells are missing answers; codes such as ``NA``, ``-`` or
``99`` are reported as problems rather than silently read as missing.  Rows whose
cells are all empty are skipped (spreadsheets often carry such rows).  SPSS
user-missing values are read as missing (pyreadstat's default).

Reading never writes to the input file.  Nothing here uses random state.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import did_you_mean
from .readers import (
    _ATTR_FILE,
    _ATTR_LABELS,
    _ATTR_PERCENT_FORMAT,
    _ATTR_ROWS,
    _ATTR_SHEET,
    MAX_LISTED_PROBLEMS,
    READABLE_EXTENSIONS,
    DataError,
    _cell_text,
    _col_letter,
    _is_empty,
    read_table,
)
from .spec import Item, Spec, load_spec

__all__ = [
    "DataError",
    "Survey",
    "read_table",
    "validate_frame",
    "survey_from_frame",
    "load_survey",
    "survey_to_csv",
    "READABLE_EXTENSIONS",
    "MAX_LISTED_PROBLEMS",
]


_MISSING_HINT = "or empty for a missing answer"
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


# ---------------------------------------------------------------------------
# the Survey container
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Survey:
    """A validated survey: firm table and raw item answers, aligned on the firm id.

    ``firms``: index = firm id (text, named ``spec.id_column``); columns: the group
    column (text) when the spec has one, the outcome (float) when the file has it,
    the extra columns the file has (float), the covariates (as read).  ``ignored``: the
    file's columns that the spec does not use.  ``items``: same index; one float64
    column per item in spec order, raw answers as in the file (not scaled, not
    reverse coded), NaN = missing answer.  ``source``: the file path or ``"<frame>"``.

    Build one with :func:`load_survey` or :func:`survey_from_frame` (both validate);
    :meth:`with_items` gives a copy with new answers (simulation, replication).
    """

    spec: Spec
    firms: pd.DataFrame
    items: pd.DataFrame
    source: str = "<frame>"
    ignored: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.firms.index.equals(self.items.index):
            raise ValueError("Survey: firms and items must have the same index (firm ids, same order)")
        if tuple(self.items.columns) != self.spec.item_names:
            raise ValueError(
                f"Survey: items columns must be the spec's items in order {list(self.spec.item_names)}, "
                f"got {list(self.items.columns)}"
            )

    # ---- simple views ------------------------------------------------------
    @property
    def n_firms(self) -> int:
        """Number of firms (rows)."""
        return len(self.items)

    @property
    def missing(self) -> pd.Series:
        """Number of missing answers per item (index = item names, spec order)."""
        return self.items.isna().sum().astype(int)

    @property
    def group_names(self) -> tuple[str, ...]:
        """Sorted unique group (industry) names; ``()`` when the spec has no group column."""
        col = self.spec.group_column
        if col is None or col not in self.firms.columns:
            return ()
        return tuple(sorted({str(g) for g in self.firms[col]}))

    @property
    def groups(self) -> np.ndarray | None:
        """Integer group code per firm (position in :attr:`group_names`), or None."""
        col = self.spec.group_column
        if col is None or col not in self.firms.columns:
            return None
        names = np.array(self.group_names, dtype=object)
        values = np.array([str(g) for g in self.firms[col]], dtype=object)
        return np.searchsorted(names, values).astype(np.int64)

    def to_frame(self) -> pd.DataFrame:
        """One row per firm: the id column, the firm columns, the items (the layout readers accept)."""
        out = self.firms.copy()
        for name in self.items.columns:
            out[name] = self.items[name].to_numpy(dtype=float)
        out = out.reset_index()
        out.columns = [self.spec.id_column, *out.columns[1:]]
        return out

    def to_csv_text(self) -> str:
        """The canonical CSV text of :meth:`to_frame` (what :func:`survey_to_csv` writes).

        Whole numbers are written without a decimal point, other numbers with
        Python's shortest round-trip repr, missing values as empty cells, lines end
        with ``\\n``.  Reading the text back gives the same survey.
        """
        frame = self.to_frame()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([str(c) for c in frame.columns])
        cols = [frame[c].tolist() for c in frame.columns]
        for row in zip(*cols):
            writer.writerow([_canonical_cell(v) for v in row])
        return buf.getvalue()

    @property
    def data_hash(self) -> str:
        """SHA-256 (hex) of :meth:`to_csv_text`.

        Independent of the file format and of the column order in the file: the same
        firms and answers read from CSV, Excel or SPSS give the same hash.  Firm
        order matters (it is the order the analyses use).
        """
        return hashlib.sha256(self.to_csv_text().encode("utf-8")).hexdigest()

    def with_items(self, items: pd.DataFrame | np.ndarray) -> "Survey":
        """A copy with the same firms and new item answers.

        ``items`` is a DataFrame indexed by the same firm ids (any order; it is
        aligned) with one column per item (any order), or an array of shape
        ``(n_firms, n_items)`` in firm and spec order.  Values are checked against
        each item's scale (a :class:`DataError` lists violations); NaN = missing.
        Unlike file validation, an item may be missing for every firm here.
        """
        names = list(self.spec.item_names)
        if isinstance(items, pd.DataFrame):
            extra = [c for c in items.columns if c not in names]
            lacking = [c for c in names if c not in items.columns]
            if extra or lacking:
                raise ValueError(
                    f"with_items: columns must be the spec's items; missing {lacking}, unknown {extra}"
                )
            idx = items.index.astype(str)
            if len(idx) != self.n_firms or set(idx) != set(self.items.index) or idx.has_duplicates:
                raise ValueError("with_items: the index must hold exactly the survey's firm ids")
            frame = items.copy()
            frame.index = idx
            values = frame.loc[list(self.items.index), names].to_numpy(dtype=float)
        else:
            values = np.asarray(items, dtype=float)
            if values.shape != (self.n_firms, len(names)):
                raise ValueError(
                    f"with_items: expected an array of shape {(self.n_firms, len(names))}, got {values.shape}"
                )
            values = values.copy()
        source = f"{self.source} (new item values)"
        problems: list[tuple[int, int, str]] = []
        for j, item in enumerate(self.spec.items):
            problems.extend(
                (r, j, msg)
                for r, msg in _range_problems(values[:, j], item, source, "row", 2, item.name)
            )
        if problems:
            problems.sort(key=lambda t: (t[0], t[1]))
            raise DataError(source, [m for _, _, m in problems])
        new = pd.DataFrame(values, index=self.items.index.copy(), columns=names)
        return Survey(self.spec, self.firms.copy(), new, self.source)

    def __repr__(self) -> str:
        return (
            f"Survey(source={self.source!r}, spec={self.spec.name!r}, firms={self.n_firms}, "
            f"items={len(self.spec.items)}, missing answers={int(self.missing.sum())})"
        )


def load_survey(
    path: str | Path,
    spec: Spec | None = None,
    *,
    sheet: int | str = 0,
    encoding: str | None = None,
) -> Survey:
    """Read and validate a survey file; ``spec`` None uses the bundled default instrument.

    Raises :class:`DataError` listing every problem found.
    """
    spec = spec if spec is not None else load_spec()
    frame = read_table(path, sheet=sheet, encoding=encoding)
    return survey_from_frame(frame, spec, source=str(path))


def survey_to_csv(survey: Survey, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``survey`` as a CSV file the readers accept (canonical text, see :meth:`Survey.to_csv_text`).

    The SHA-256 of the written bytes equals ``survey.data_hash``.  Refuses to
    replace an existing file (``FileExistsError``) unless ``overwrite=True``.
    Returns the path written.
    """
    p = Path(path)
    text = survey.to_csv_text().encode("utf-8")
    mode = "wb" if overwrite else "xb"
    try:
        with open(p, mode) as fh:
            fh.write(text)
    except FileExistsError:
        raise FileExistsError(f"{p}: file exists; not overwritten (pass overwrite=True to replace it)") from None
    return p


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------
def validate_frame(df: pd.DataFrame, spec: Spec, source: str = "<frame>") -> list[str]:
    """Every problem of ``df`` as a survey of ``spec``; ``[]`` when it is valid.

    ``df`` has one row per firm and the column names of the file's header (the
    layout :func:`read_table` returns and :meth:`Survey.to_frame` gives).  Row
    numbers in messages are frame position + 2 (the spreadsheet row, header = row
    1), or SPSS case numbers for frames read from ``.sav`` files.
    """
    problems, _ = _check(df, spec, str(source))
    return problems


def survey_from_frame(df: pd.DataFrame, spec: Spec, source: str = "<frame>") -> Survey:
    """Validate ``df`` (see :func:`validate_frame`) and build a :class:`Survey`.

    Raises :class:`DataError` with every problem found.  ``df`` is not modified.
    """
    problems, parsed = _check(df, spec, str(source))
    if problems or parsed is None:
        raise DataError(str(source), problems)
    return parsed


def _check(df: pd.DataFrame, spec: Spec, source: str) -> tuple[list[str], Survey | None]:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    row_word, first_row = df.attrs.get(_ATTR_ROWS, ("row", 2))
    value_labels: dict = df.attrs.get(_ATTR_LABELS, {}) or {}
    header_at = "row 1 (header)" if row_word == "row" else "variable list"

    def where(pos: int) -> str:
        return f"{source}, {row_word} {pos + first_row}"

    id_col, group_col, outcome_col = spec.id_column, spec.group_column, spec.outcome_column
    item_names = list(spec.item_names)
    covariates = list(spec.covariates)
    # a spec that names no id column reads files without one: firms are numbered by row
    ids_by_row = not spec.id_declared and id_col not in {str(c).strip() for c in df.columns} \
        and df.index.name != id_col
    required = [*([] if ids_by_row else [id_col]), *([group_col] if group_col else []), *covariates, *item_names]
    optional = [*([outcome_col] if outcome_col else []), *spec.extra_columns]
    known = required + optional
    ignored: list[str] = []  # columns the spec does not use

    if id_col not in df.columns and df.index.name == id_col:  # e.g. a frame indexed by firm id
        attrs = dict(df.attrs)
        df = df.reset_index()
        df.attrs.update(attrs)
    names = ["" if _is_empty(c) else str(c).strip() for c in df.columns]
    n_rows = len(df)
    header_problems: list[str] = []
    cell_problems: list[tuple[int, int, str]] = []  # (row position, column position, message)
    column_problems: list[str] = []

    if df.shape[1] == 0:
        return [f"{source}: the table has no columns; expected a header row with {_list_names(required)}"], None

    # blank rows are skipped (numbering unaffected)
    series = [df.iloc[:, j] for j in range(df.shape[1])]
    columns_data = [None if _is_numeric(col) else col.tolist() for col in series]  # cells of text columns
    empty_cells = np.zeros((n_rows, df.shape[1]), dtype=bool)
    for j, col in enumerate(series):
        if columns_data[j] is None:
            empty_cells[:, j] = col.isna().to_numpy()
        else:
            empty_cells[:, j] = [_is_empty(v) for v in columns_data[j]]
    blank = empty_cells.all(axis=1)
    rows = np.flatnonzero(~blank)

    # ---- header ----------------------------------------------------------------
    col_of: dict[str, int] = {}  # name -> position of its first column
    reported_dup: set[str] = set()
    for j, name in enumerate(names):
        if name == "":
            filled = np.flatnonzero(~empty_cells[:, j]) if n_rows else np.array([], dtype=int)
            if filled.size:
                header_problems.append(
                    f"{source}, {header_at}, column {_col_letter(j)} (no name): the column has values "
                    f"(first in {row_word} {filled[0] + first_row}) but no name in the header; allowed: "
                    f"a name for every column with values, one of {_list_names(known)}"
                )
            continue
        if name in col_of:
            if name not in reported_dup:
                reported_dup.add(name)
                dup_cols = [_col_letter(k) for k, n in enumerate(names) if n == name]
                header_problems.append(
                    f"{source}, {header_at}, column {name!r}: the column appears {len(dup_cols)} times "
                    f"(columns {', '.join(dup_cols)}); allowed: each column once"
                )
            continue
        col_of[name] = j
        if name not in known:
            ignored.append(name)
    missing_required = [name for name in required if name not in col_of]
    for name in missing_required:
        what = ("id" if name == id_col else "group" if name == group_col
                else "covariate" if name in covariates else "item")
        header_problems.append(
            f"{source}, {header_at}, column {name!r}: required {what} column is missing"
            f"{did_you_mean(name, ignored)}; allowed: a header naming {_list_names(required)}"
            + (f" (optional: {_list_names(optional)})" if optional else "")
            + "; other columns are ignored"
        )

    sheet_info = df.attrs.get(_ATTR_SHEET)
    if missing_required and sheet_info and len(sheet_info[1]) > 1:
        read, names_all = sheet_info
        others = ", ".join(repr(n) for n in names_all if n != read)
        header_problems.insert(0,
            f"{source}: read sheet {read!r} of the workbook; its other sheets: {others}; if the data are on "
            f"another sheet, choose it with --sheet NAME (Python: sheet=NAME)"
        )

    if n_rows == 0 or rows.size == 0:
        header_problems.append(
            f"{source}, {row_word} {first_row}: the file has a header but no data rows; "
            f"allowed: one row per firm below the header"
        )

    # ---- firm id -----------------------------------------------------------------
    ids: list[str] = [str(r + 1) for r in range(n_rows)] if ids_by_row else [""] * n_rows
    if id_col in col_of and not ids_by_row:
        j = col_of[id_col]
        labels = value_labels.get(id_col, {})
        seen: dict[str, int] = {}
        seen_number: dict[float, int] = {}  # ids that are numbers: 7, 007 and 7.0 are one number
        cells = series[j].tolist()
        for r in rows:
            v = cells[r]
            text = "" if _is_empty(v) else _cell_text(labels.get(v, v) if labels else v)
            ids[r] = text
            if text == "":
                cell_problems.append(
                    (r, j, f"{where(r)}, column {id_col!r}: empty firm id; allowed: a unique, "
                           f"non-empty id for every firm (text, e.g. 'F01')")
                )
            elif text in seen:
                cell_problems.append(
                    (r, j, f"{where(r)}, column {id_col!r}: firm id {text!r} is a duplicate of "
                           f"{row_word} {seen[text] + first_row}; allowed: a unique, non-empty id for every firm")
                )
            elif (key := _number_key(text)) is not None and key in seen_number:
                q = seen_number[key]
                cell_problems.append(
                    (r, j, f"{where(r)}, column {id_col!r}: firm id {text!r} is the same number as firm id "
                           f"{ids[q]!r} ({row_word} {q + first_row}), written differently; allowed: a unique "
                           f"id for every firm (different firms: ids that differ as text and as numbers, "
                           f"e.g. 'F007' and 'F7'; the same firm: one row)")
                )
            else:
                seen[text] = r
                if key is not None:
                    seen_number[key] = r

    # ---- group ---------------------------------------------------------------------
    group_values: list[str] = [""] * n_rows
    if group_col and group_col in col_of:
        j = col_of[group_col]
        labels = value_labels.get(group_col, {})
        cells = series[j].tolist()
        for r in rows:
            v = cells[r]
            text = "" if _is_empty(v) else _cell_text(labels.get(v, v) if labels else v)
            group_values[r] = text
            if text == "":
                cell_problems.append(
                    (r, j, f"{where(r)}, column {group_col!r}: empty {group_col}; allowed: a non-empty "
                           f"{group_col} name for every firm")
                )

    # ---- numeric columns -------------------------------------------------------------
    numeric: dict[str, np.ndarray] = {}
    for name in [*item_names, *optional]:
        if name not in col_of:
            continue
        j = col_of[name]
        item = spec.item(name) if name in item_names else None
        if item is not None:
            allowed = f"{_allowed(item)}, {_MISSING_HINT}"
        elif name == outcome_col:
            allowed = "any number (outcome), or empty when unknown"
        else:
            allowed = f"any number (extra column {name!r}), or empty when unknown"
        if columns_data[j] is None:
            values, bad = series[j].to_numpy(dtype=float, na_value=np.nan).copy(), []
            values[blank] = np.nan
        else:
            values, bad = _to_numbers(columns_data[j], rows)
        for r, raw in bad:
            cell_problems.append(
                (r, j, f"{where(r)}, column {name!r}: value {_show(raw)} is not a number; allowed: {allowed}")
            )
        if item is not None:
            for r, msg in _range_problems(values, item, source, row_word, first_row, name, rows):
                cell_problems.append((r, j, msg))
            answered = ~empty_cells[rows, j] if rows.size else np.array([], dtype=bool)
            if rows.size and not answered.any():
                column_problems.append(
                    f"{source}, column {name!r} ({row_word}s {rows[0] + first_row} to "
                    f"{rows[-1] + first_row}): every answer is empty; allowed: {_allowed(item)}, with at "
                    f"least one firm answering (drop the item from the spec if it was not asked)"
                )
        else:
            for r in np.flatnonzero(np.isinf(values)):
                cell_problems.append(
                    (r, j, f"{where(r)}, column {name!r}: value {_fmt(values[r])} is not a finite "
                           f"number; allowed: {allowed}")
                )
        numeric[name] = values

    if df.attrs.get(_ATTR_FILE):
        column_problems.extend(_fraction_problems(numeric, rows, spec, source, row_word, first_row,
                                                  df.attrs.get(_ATTR_PERCENT_FORMAT, ())))

    cell_problems.sort(key=lambda t: (t[0], t[1]))
    problems = header_problems + [m for _, _, m in cell_problems] + column_problems
    if problems:
        return problems, None

    # ---- build the survey ------------------------------------------------------------
    index = pd.Index([ids[r] for r in rows], name=id_col, dtype=object).astype(str)
    firm_cols: dict[str, Any] = {}
    if group_col:
        firm_cols[group_col] = pd.array([group_values[r] for r in rows], dtype="str")
    if outcome_col and outcome_col in numeric:
        firm_cols[outcome_col] = numeric[outcome_col][rows]
    for name in spec.extra_columns:
        if name in numeric:
            firm_cols[name] = numeric[name][rows]
    for name in covariates:  # carried through as read: numbers stay numbers, text stays text
        firm_cols[name] = series[col_of[name]].iloc[rows].to_numpy()
    firms = pd.DataFrame(firm_cols, index=index)
    items = pd.DataFrame(
        {name: numeric[name][rows].astype(np.float64) for name in item_names}, index=index.copy()
    )
    return [], Survey(spec=spec, firms=firms, items=items, source=source, ignored=tuple(ignored))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _is_numeric(col: pd.Series) -> bool:
    """A column of a numeric (not boolean) dtype: parsed without a per-cell loop."""
    return pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype)


def _to_numbers(cells: list[Any], rows: Iterable[int]) -> tuple[np.ndarray, list[tuple[int, Any]]]:
    """Parse a column's cells to float (NaN for empty); also the (row, raw value) of non-numbers."""
    out = np.full(len(cells), np.nan)
    bad: list[tuple[int, Any]] = []
    for r in rows:
        v = cells[r]
        if _is_empty(v):
            continue
        if isinstance(v, (bool, np.bool_)):
            bad.append((r, v))
        elif isinstance(v, numbers.Real):
            out[r] = float(v)
        elif isinstance(v, str):
            s = v.strip()
            if _NUMBER_RE.match(s):
                out[r] = float(s)
            elif s.lower() in ("inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"):
                out[r] = float(s)
            else:
                bad.append((r, v))
        else:
            bad.append((r, v))
    return out, bad


def _number_key(text: str) -> float | None:
    """The number an id is when it is written as one (``7``, ``007``, ``7.0``), else None."""
    if not _NUMBER_RE.match(text):
        return None
    f = float(text)
    return f if math.isfinite(f) else None


def _fraction_problems(
    numeric: dict[str, np.ndarray],
    rows: np.ndarray,
    spec: Spec,
    source: str,
    row_word: str,
    first_row: int,
    percent_format: Sequence[str],
) -> list[str]:
    """The items declared 0 to 100 (not whole numbers) whose every answer lies in [0, 1]
    with some above 0: percentages given as fractions (0.45 for 45%)."""
    flagged: list[str] = []
    example = None
    for item in spec.items:
        v = numeric.get(item.name)
        if v is None or item.family.whole_numbers or item.min != 0 or item.max != 100 or rows.size == 0:
            continue
        present = v[rows][~np.isnan(v[rows])]
        if present.size == 0 or not (present.max() <= 1 and present.max() > 0 and present.min() >= 0):
            continue
        flagged.append(item.name)
        if example is None:
            inner = np.flatnonzero((v[rows] > 0) & (v[rows] < 1))
            k = int(inner[0]) if inner.size else int(np.nanargmax(v[rows]))
            example = (item.name, int(rows[k]) + first_row, _fmt(v[rows][k]))
    if not flagged:
        return []
    name, row, value = example
    excel = [n for n in flagged if n in set(percent_format)]
    why = (f"as Excel stores cells formatted as percentages ({', '.join(repr(n) for n in excel)} are): "
           f"it shows 45% and holds 0.45" if excel else "0.45 for 45%")
    return [
        f"{source}, column(s) {_list_names([repr(n) for n in flagged])}: every answer is between 0 and 1 "
        f"(e.g. {value} in {row_word} {row}, column {name!r}) although the spec ({spec.source}) declares "
        f"these items 0 to 100: the answers look like fractions ({why}); allowed: percentages 0 to 100: "
        f"multiply these answers by 100, or, if the file holds fractions on purpose, declare max = 1 for "
        f"these items in the spec"
    ]


def _allowed(item: Item) -> str:
    return item.family.allowed(item, _fmt(item.min), _fmt(item.max))


def _range_problems(
    values: np.ndarray,
    item: Item,
    source: str,
    row_word: str,
    first_row: int,
    name: str,
    rows: np.ndarray | None = None,
) -> list[tuple[int, str]]:
    """(row position, message) for each answer outside the item's scale (vectorized check)."""
    v = np.asarray(values, dtype=float)
    present = ~np.isnan(v)
    if rows is not None:
        mask = np.zeros(v.shape, dtype=bool)
        mask[rows] = True
        present &= mask
    finite = np.isfinite(v)
    whole = finite & (np.floor(v) == v)
    family = item.family
    with np.errstate(invalid="ignore"):
        in_range = finite & family.valid(v, item)
    ok = in_range & (whole if family.whole_numbers else True)
    bad = np.flatnonzero(present & ~ok)
    if bad.size == 0:
        return []
    allowed = f"{_allowed(item)}, {_MISSING_HINT}"
    out = []
    for r in bad:
        x = v[r]
        head = f"{source}, {row_word} {r + first_row}, column {name!r}: value {_fmt(x)}"
        if not np.isfinite(x):
            what = "is not a finite number"
        elif not in_range[r]:
            what = "is out of range"
        else:
            what = "is not a whole number"
        out.append((int(r), f"{head} {what}; allowed: {allowed}"))
    return out


def _show(v: Any) -> str:
    """A raw cell value for a message: text quoted (shortened), other values as printed."""
    if isinstance(v, str):
        return repr(v if len(v) <= 40 else v[:37] + "...")
    return str(v)


def _fmt(x: float) -> str:
    """A number as a person writes it: 7 not 7.0, 2.5, inf."""
    f = float(x)
    if math.isfinite(f) and f.is_integer():
        return str(int(f))
    return repr(f) if math.isfinite(f) else ("inf" if f > 0 else "-inf")


def _canonical_cell(v: Any) -> str:
    """Canonical text of a value in the survey CSV (empty for missing)."""
    if _is_empty(v):
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        if f.is_integer() and abs(f) < 1e16:
            return str(int(f))
        return repr(f)
    return str(v)


def _list_names(names: Sequence[str]) -> str:
    return ", ".join(names)
