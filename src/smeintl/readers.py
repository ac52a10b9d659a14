"""Read survey files into a raw table: CSV (encodings, separators), Excel (sheets, formula
cells, shown text of padded numbers) and SPSS, refusing what cannot be read with one
message that names the file and the cause (:func:`read_table`)."""

from __future__ import annotations

import codecs
import csv
import io
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["DataError", "read_table", "READABLE_EXTENSIONS", "MAX_LISTED_PROBLEMS"]

#: file extensions :func:`read_table` understands (lower case)
READABLE_EXTENSIONS = (".csv", ".xlsx", ".xlsm", ".sav", ".zsav")
#: how many problems ``str(DataError)`` lists before "... and N more"
MAX_LISTED_PROBLEMS = 50

_MISSING_HINT = "or empty for a missing answer"
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
# frame attributes set by read_table (pandas DataFrame.attrs keys)
_ATTR_ROWS = "smeintl_rows"  # (word, number of the first data row), e.g. ("row", 2)
_ATTR_LABELS = "smeintl_value_labels"  # SPSS value labels {column: {code: label}}
_ATTR_FILE = "smeintl_file"  # True: read from a file by read_table (the checks of file data apply)
_ATTR_SHEET = "smeintl_sheet"  # (sheet read, all sheet names) of an Excel workbook
_ATTR_PERCENT_FORMAT = "smeintl_percent_format"  # columns with Excel cells formatted as percentages


class DataError(ValueError):
    """A survey file or frame is invalid.

    ``source`` names the file (or ``"<frame>"``), ``problems`` lists every problem
    found; ``str(err)`` is one message listing them (at most
    :data:`MAX_LISTED_PROBLEMS`, then "... and N more").
    """

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = str(source)
        self.problems = list(problems)
        n = len(self.problems)
        shown = self.problems[:MAX_LISTED_PROBLEMS]
        lines = [f"  - {p}" for p in shown]
        if n > len(shown):
            lines.append(f"  ... and {n - len(shown)} more")
        head = f"invalid survey data {self.source}: {n} problem{'s' if n != 1 else ''}"
        super().__init__("\n".join([head, *lines]))

    def __reduce__(self):  # picklable (errors raised in worker processes travel back intact)
        return (type(self), (self.source, self.problems))



def read_table(
    path: str | Path,
    *,
    sheet: int | str = 0,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read a survey file into a raw DataFrame (no validation against a spec).

    Formats, by extension: ``.csv`` (comma separated, UTF-8 with or without BOM,
    or ``encoding``), ``.xlsx`` / ``.xlsm`` (``sheet``: index from 0 or name, first
    sheet by default; a text of digits that is no sheet's name counts sheets from 1,
    as the command line's ``--sheet``; via openpyxl), ``.sav`` / ``.zsav`` (SPSS via
    pyreadstat; user-missing values become missing).  Old binary ``.xls`` files are
    refused with advice to save as ``.xlsx``.

    The first row is the header.  CSV and Excel cells are returned as read (text,
    numbers or None) so that ids keep leading zeros; blank rows inside the table
    are kept (trailing ones dropped) so that frame position ``i`` is spreadsheet
    row ``i + 2`` and :func:`validate_frame` reports the row a user sees.

    What is refused here, each with one message naming the cause (see the module
    docstring): a CSV file that is not text in ``encoding`` (the message names the
    row and the ``--encoding`` to try), a binary file or a workbook with a ``.csv``
    name, a CSV file separated by semicolons or tabs, a CSV file whose rows have more
    values than its header (unquoted decimal commas or commas in texts), and Excel
    formula cells without a saved value.  Excel numbers shown with leading zeros
    (number formats such as ``000`` or ``"F"000``) are read as the text shown.

    Raises :class:`DataError` for a missing, empty or unreadable file or an
    unknown extension.
    """
    p = Path(path)
    source = str(path)
    ext = p.suffix.lower()
    if ext == ".xls":
        raise DataError(
            source,
            [f"{source}: old binary Excel files (.xls) cannot be read; open the file in Excel and "
             f"save it as .xlsx (or CSV UTF-8); allowed extensions: {', '.join(READABLE_EXTENSIONS)}"],
        )
    if ext not in READABLE_EXTENSIONS:
        raise DataError(
            source,
            [f"{source}: unknown file type {ext or '(no extension)'!r}; allowed extensions: "
             f"{', '.join(READABLE_EXTENSIONS)}"],
        )
    if not p.exists():
        raise DataError(source, [f"{source}: file not found"])
    if p.is_dir():
        raise DataError(source, [f"{source}: is a folder, not a file; give the survey file itself"])
    if not p.is_file():
        raise DataError(source, [f"{source}: not a file"])
    if p.stat().st_size == 0:
        raise DataError(
            source, [f"{source}: the file is empty (0 bytes); expected a header row and one row per firm"]
        )
    if not os.access(p, os.R_OK):
        raise DataError(source, [f"{source}: cannot read the file (permission denied)"])
    if ext == ".csv":
        frame = _read_csv(p, source, encoding)
    elif ext in (".xlsx", ".xlsm"):
        frame = _read_excel(p, source, sheet)
    else:
        frame = _read_spss(p, source, encoding)
    frame.attrs[_ATTR_FILE] = True
    return frame


#: what to suggest for a CSV file that is not UTF-8
_ENCODING_HINT = (
    "save it as 'CSV UTF-8', or give its encoding: on the command line --encoding cp932 (Shift-JIS, "
    "as Japanese Excel writes it) or --encoding latin-1 (Western European); in Python "
    "encoding='cp932' or encoding='latin-1'"
)
_DECIMAL_COMMA_RE = re.compile(r"^\s*[+-]?\d+,\d+\s*$")


def _read_csv(p: Path, source: str, encoding: str | None) -> pd.DataFrame:
    enc = encoding or "utf-8-sig"
    try:
        codecs.lookup(enc)
    except LookupError:
        raise DataError(
            source, [f"{source}: unknown encoding {enc!r}; allowed: an encoding Python knows, e.g. "
                     f"utf-8, cp932 (Shift-JIS), latin-1, cp1252"]
        ) from None
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(source, [f"{source}: cannot read the file ({exc.strerror or exc})"]) from None
    if raw.startswith(b"PK\x03\x04"):
        raise DataError(
            source,
            [f"{source}: the file is a zip archive, most likely an Excel workbook with a .csv name; "
             f"rename it to .xlsx, or export the sheet from Excel as 'CSV UTF-8'"],
        )
    utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
    if utf16 and not (encoding or "").lower().replace("_", "-").startswith("utf-16"):
        raise DataError(
            source,
            [f"{source}: the file is UTF-16 text (Excel's 'Unicode Text'); give --encoding utf-16 "
             f"(Python: encoding='utf-16'), or save it as 'CSV UTF-8'"],
        )
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as exc:
        if b"\x00" in raw[:8192]:
            raise DataError(source, [_binary_message(source)]) from None
        row = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            source,
            [f"{source}: the file is not {enc} text (undecodable byte 0x{raw[exc.start]:02x} in row {row}); "
             f"{_ENCODING_HINT}"],
        ) from None
    if "\x00" in text:
        raise DataError(source, [_binary_message(source)])
    text = text.lstrip("\ufeff")
    _check_separator(text, source)
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DataError(source, [f"{source}: cannot read as CSV: {exc}"]) from None
    _check_row_lengths(rows, source)
    return _rows_to_frame(rows, source, ("row", 2))


def _binary_message(source: str) -> str:
    return (f"{source}: a binary file, not CSV text (it holds NUL bytes); give a CSV file (comma-separated "
            f"text), an Excel workbook (.xlsx) or an SPSS file (.sav) with the matching extension")


def _check_separator(text: str, source: str) -> None:
    """Refuse a CSV file separated by semicolons or tabs (one message, whatever the cells)."""
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        return
    fields = {}
    for sep in (",", ";", "\t"):
        try:
            fields[sep] = len(next(csv.reader([first], delimiter=sep)))
        except (csv.Error, StopIteration):
            fields[sep] = 1
    sep = max((";", "\t"), key=lambda s: fields[s])
    if fields[sep] <= 1 or fields[sep] <= fields[","]:
        return
    name = "semicolons" if sep == ";" else "tabs"
    decimal = ""
    if sep == ";":
        for line in text.split("\n")[1:200]:
            cells = line.rstrip("\r").split(";")
            example = next((c.strip() for c in cells if _DECIMAL_COMMA_RE.match(c)), None)
            if example is not None:
                decimal = f" and decimal commas (e.g. {example!r})"
                break
    shown = first if len(first) <= 60 else first[:57] + "..."
    raise DataError(
        source,
        [f"{source}, row 1 (header): the header {shown!r} is {fields[sep]} columns only when split at "
         f"{name}: the file seems to use {name} as separator{decimal} (a CSV file as Excel writes it "
         f"with European regional settings); allowed: comma-separated values with decimal points "
         f"(save as 'CSV UTF-8' with ',' as separator and '.' as decimal mark), or give the workbook "
         f"itself (.xlsx)"],
    )


def _check_row_lengths(rows: list[list[str]], source: str) -> None:
    """Refuse rows with more values than the header has columns (one message, not one per
    shifted cell): the mark of unquoted decimal commas ('3,5') or commas in texts."""
    if not rows:
        return
    width = len(rows[0])
    long, filled, n_rows = [], 0, 0
    for k, row in enumerate(rows[1:]):
        if all(not c.strip() for c in row):
            continue  # a blank row
        n_rows += 1
        if len(row) > width:
            long.append((k + 2, len(row)))
            filled += any(c.strip() for c in row[width:])
    if not long or (not filled and len(long) == n_rows):
        return  # none, or an empty cell after every row (some programs end each line with a comma)
    shown = ", ".join(f"row {r} ({n} values)" for r, n in long[:8])
    more = f" and {len(long) - 8} more" if len(long) > 8 else ""
    raise DataError(
        source,
        [f"{source}: {len(long)} row(s) have more values than the header has columns ({width}): "
         f"{shown}{more}; a value holds a comma without quotes around it: most likely decimal commas "
         f"('3,5' for 3.5), or a text with a comma; allowed: decimal points ('3.5'), and quotes around "
         f"texts with commas (Excel's 'CSV UTF-8' writes both), or give the workbook itself (.xlsx)"],
    )


#: number formats that show a whole number with leading zeros, e.g. 000 or "F"000
_PADDED_FORMAT = re.compile(r'^(?:"([^"]*)")?(0+)(?:"([^"]*)")?$')


def _shown_text(value: Any, number_format: Any) -> Any:
    """The text Excel shows for a whole number in a zero-padded format, else the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not isinstance(number_format, str):
        return value
    m = _PADDED_FORMAT.match(number_format)
    if m is None or len(m.group(2)) < 2:
        return value
    f = float(value)
    if not (math.isfinite(f) and f.is_integer() and f >= 0):
        return value
    return f"{m.group(1) or ''}{int(f):0{len(m.group(2))}d}{m.group(3) or ''}"


def _sheet_name(names: list[str], sheet: int | str, source: str) -> str:
    if isinstance(sheet, bool) or not isinstance(sheet, (int, str)):
        raise TypeError(f"sheet must be a sheet's name or its index, not {type(sheet).__name__}")
    listed = ", ".join(repr(n) for n in names)
    if isinstance(sheet, str):
        if sheet in names:
            return sheet
        if sheet.strip().isdigit() and 1 <= int(sheet) <= len(names):
            return names[int(sheet) - 1]
        raise DataError(source, [f"{source}: no sheet named {sheet!r}; sheets: {names}"])
    if not 0 <= sheet < len(names):
        raise DataError(source, [f"{source}: no sheet number {sheet}; the workbook has sheets {listed}"])
    return names[sheet]


def _read_excel(p: Path, source: str, sheet: int | str) -> pd.DataFrame:
    import openpyxl

    def load(data_only: bool):
        try:
            return openpyxl.load_workbook(p, read_only=True, data_only=data_only)
        except Exception as exc:  # openpyxl raises many kinds for corrupt files
            raise DataError(source, [f"{source}: cannot read as an Excel workbook: {_short(exc)}"]) from None

    wb = load(False)
    formulas: list[tuple[int, int]] = []  # (row, column) positions, from 0
    percent_cols: set[int] = set()
    try:
        names = list(wb.sheetnames)
        if not names:
            raise DataError(source, [f"{source}: the workbook has no sheets"])
        name = _sheet_name(names, sheet, source)
        ws = wb[name]
        if not hasattr(ws, "iter_rows"):
            raise DataError(source, [f"{source}: sheet {name!r} is a chart, not a table; sheets: {names}"])
        rows: list[list[Any]] = []
        for r, cells in enumerate(ws.iter_rows(min_row=1, min_col=1)):
            values = []
            for c, cell in enumerate(cells):
                v = cell.value
                if getattr(cell, "data_type", None) == "f":
                    formulas.append((r, c))
                    v = None
                else:
                    fmt = getattr(cell, "number_format", None)
                    if isinstance(fmt, str) and "%" in fmt and isinstance(v, numbers.Real):
                        percent_cols.add(c)
                    v = _shown_text(v, fmt)
                values.append(v)
            rows.append(values)
    except DataError:
        raise
    except Exception as exc:  # a damaged sheet fails while it is read (read-only mode)
        raise DataError(source, [f"{source}: cannot read as an Excel workbook: {_short(exc)}"]) from None
    finally:
        wb.close()
    if formulas:
        _fill_formulas(p, source, name, rows, formulas, load)
    if not any(any(not _is_empty(v) for v in row) for row in rows):
        others = [n for n in names if n != name]
        where = (f"the workbook has sheets {', '.join(repr(n) for n in names)}; choose the one with the "
                 f"data with --sheet NAME (Python: sheet='{others[0]}')") if others else "it is the only sheet"
        raise DataError(
            source,
            [f"{source}, sheet {name!r}: the sheet is empty (no header and no data); {where}"],
        )
    frame = _rows_to_frame(rows, source, ("row", 2))
    frame.attrs[_ATTR_SHEET] = (name, tuple(names))
    if percent_cols:
        frame.attrs[_ATTR_PERCENT_FORMAT] = tuple(frame.columns[c] for c in sorted(percent_cols)
                                                  if c < frame.shape[1])
    return frame


def _fill_formulas(p, source, name, rows, formulas, load) -> None:
    """Formula cells take the value Excel saved with them; refuse those without one."""
    wb = load(True)
    try:
        cached = {}
        want = set(formulas)
        for r, cells in enumerate(wb[name].iter_rows(min_row=1, min_col=1)):
            for c, cell in enumerate(cells):
                if (r, c) in want:
                    cached[(r, c)] = cell.value
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(source, [f"{source}: cannot read as an Excel workbook: {_short(exc)}"]) from None
    finally:
        wb.close()
    missing: dict[int, list[int]] = {}
    for r, c in formulas:
        v = cached.get((r, c))
        if v is None:
            missing.setdefault(c, []).append(r)
        else:
            rows[r][c] = v
    if not missing:
        return
    header = rows[0] if rows else []
    parts = []
    for c in sorted(missing):
        rs = sorted(missing[c])
        col = _col_letter(c)
        label = f" ({_cell_text(header[c])!r})" if c < len(header) and not _is_empty(header[c]) else ""
        cells = f"{col}{rs[0] + 1}" if len(rs) == 1 else f"{len(rs)} cells {col}{rs[0] + 1} to {col}{rs[-1] + 1}"
        parts.append(f"column {col}{label}: {cells}")
    n = sum(len(v) for v in missing.values())
    raise DataError(
        source,
        [f"{source}, sheet {name!r}: {n} formula cell(s) have no saved value ({'; '.join(parts)}): the "
         f"workbook was written by a program that does not compute formulas and was never opened and "
         f"saved in Excel, so the values are not in the file; open it in Excel (or LibreOffice) and save "
         f"it, or export the sheet as 'CSV UTF-8'"],
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _read_spss(p: Path, source: str, encoding: str | None) -> pd.DataFrame:
    import pyreadstat

    try:
        df, meta = pyreadstat.read_sav(str(p), encoding=encoding, user_missing=False)
    except Exception as exc:  # pyreadstat raises its own kinds (and others) for damaged files
        raise DataError(source, [f"{source}: cannot read as an SPSS file: {_short(exc)}"]) from None
    df = df.reset_index(drop=True)
    df.attrs[_ATTR_ROWS] = ("case", 1)
    df.attrs[_ATTR_LABELS] = {
        str(k): dict(v) for k, v in (getattr(meta, "variable_value_labels", None) or {}).items()
    }
    return df


def _rows_to_frame(rows: list[list[Any]], source: str, rows_attr: tuple[str, int]) -> pd.DataFrame:
    """Header + data rows -> object DataFrame; pads short rows, unnamed columns for long ones."""
    while rows and all(_is_empty(v) for v in rows[-1]):
        rows.pop()
    if not rows:
        raise DataError(
            source, [f"{source}: the file has no header and no data; expected a header row and one row per firm"]
        )
    header = rows[0]
    if header and isinstance(header[0], str):
        header[0] = header[0].lstrip("\ufeff")  # a BOM read with an explicit encoding
    # rows may be ragged: pad to the widest; unnamed columns are checked by validate_frame
    width = max(len(r) for r in rows)
    header = list(header) + [None] * (width - len(header))
    if len(header) == 1 and isinstance(header[0], str):
        for sep, name in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header[0]:
                raise DataError(
                    source,
                    [f"{source}, row 1 (header): the header {header[0]!r} is one column; the file seems "
                     f"to use {name} as separator; allowed: comma-separated values (save as 'CSV UTF-8')"],
                )
    body = [list(r) + [None] * (width - len(r)) for r in rows[1:]]
    names = ["" if _is_empty(h) else _cell_text(h) for h in header]
    frame = pd.DataFrame(body, columns=range(width), dtype=object)
    frame.columns = names
    frame.attrs[_ATTR_ROWS] = rows_attr
    return frame


def _is_empty(v: Any) -> bool:
    """An empty cell: None, NaN / NA, or text that is blank."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, str):
        return v.strip() == ""
    if isinstance(v, float) and math.isnan(v):
        return True
    if isinstance(v, np.floating) and np.isnan(v):
        return True
    return False


def _cell_text(v: Any) -> str:
    """Text of an id / group / header cell; whole floats (Excel, SPSS) lose the '.0'."""
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        if math.isfinite(f) and f.is_integer():
            return str(int(f))
        return repr(f)
    return str(v).strip()


def _col_letter(j: int) -> str:
    """Spreadsheet column letter of position ``j`` (0 -> A, 26 -> AA)."""
    s = ""
    j += 1
    while j:
        j, rem = divmod(j - 1, 26)
        s = chr(65 + rem) + s
    return s


