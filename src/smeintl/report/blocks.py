"""The report's intermediate form: blocks (headings, paragraphs, lists, tables,
figures, boxes, preformatted text, definitions) that both renderers turn into
Markdown and HTML; number formatting; tables from rows and DataFrames; the
:class:`_Builder` that sections add blocks and figures to."""

from __future__ import annotations

import io
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

#: resolution of the figures (PNG)
FIGURE_DPI = 110

_DASH = "–"


# ---------------------------------------------------------------------------
# blocks: one intermediate form, two renderers
# ---------------------------------------------------------------------------
@dataclass
class _Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclass
class _Para:
    text: str
    cls: str | None = None


@dataclass
class _List:
    items: list[str]


@dataclass
class _Table:
    header: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    caption: str | None = None


@dataclass
class _Figure:
    key: str
    number: int
    caption: str
    png: bytes
    alt: str


@dataclass
class _Box:
    kind: str  # "warning" | "notice"
    title: str
    items: list[str] = field(default_factory=list)


@dataclass
class _Pre:
    text: str


@dataclass
class _Defs:
    pairs: list[tuple[str, str]]


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------
def _isnan(x: Any) -> bool:
    if x is None or x is pd.NA:
        return True
    try:
        return bool(isinstance(x, numbers.Real) and math.isnan(float(x)))
    except (TypeError, ValueError):
        return False


def _f(x: Any, d: int = 3) -> str:
    """A number with ``d`` decimals (small magnitudes in scientific notation); text as is."""
    if _isnan(x):
        return _DASH
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        v = float(x)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and d >= 3 and abs(v) < 10 ** (-d):
            return f"{v:.1e}"
        if abs(v) >= 1e5:
            return f"{v:.3g}"
        return f"{v:.{d}f}"
    return str(x)


def _p(x: Any) -> str:
    """A p-value or probability."""
    if _isnan(x):
        return _DASH
    v = float(x)
    if 0 < v < 0.001:
        return "<0.001"
    return f"{v:.3f}"


def _pct(x: Any, d: int = 1) -> str:
    if _isnan(x):
        return _DASH
    return f"{100 * float(x):.{d}f}%"


def _int(x: Any) -> str:
    if _isnan(x):
        return _DASH
    return str(int(x))


def _interval(mean: Any, lo: Any, hi: Any, d: int = 2) -> str:
    if _isnan(mean):
        return _DASH
    return f"{_f(mean, d)} [{_f(lo, d)}, {_f(hi, d)}]"


def _pretty(name: Any) -> str:
    return str(name).replace("_", " ")


def _looks_numeric(s: str) -> bool:
    t = s.strip().replace("%", "").replace(",", "").replace("<", "").replace(_DASH, "").strip()
    if not t:
        return True
    t = t.split(" ")[0]
    try:
        float(t)
    except ValueError:
        return False
    return True


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None,
           numeric: Sequence[bool] | None = None) -> _Table:
    cells = [[c if isinstance(c, str) else _f(c) for c in r] for r in rows]
    if numeric is None:
        numeric = [bool(cells) and all(_looks_numeric(r[j]) for r in cells) for j in range(len(header))]
    return _Table([str(h) for h in header], cells, list(numeric), caption)


def _frame_table(df: pd.DataFrame, caption: str | None = None, index: bool | None = None,
                 formatters: Mapping[str, Callable[[Any], str]] | None = None) -> _Table:
    """A DataFrame as a table: floats to 3 decimals, the index as first column unless it is a RangeIndex."""
    formatters = dict(formatters or {})
    if index is None:
        index = not isinstance(df.index, pd.RangeIndex)
    header = ([str(df.index.name or "")] if index else []) + [str(c) for c in df.columns]
    rows = []
    for idx, r in zip(df.index, df.itertuples(index=False)):
        cells = [str(idx)] if index else []
        for c, v in zip(df.columns, r):
            fn = formatters.get(str(c))
            cells.append(fn(v) if fn else _f(v))
        rows.append(cells)
    return _table(header, rows, caption)


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------
def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI, facecolor="white")
    return buf.getvalue()


class _Builder:
    def __init__(self) -> None:
        self.blocks: list[Any] = []
        self.figures: dict[str, bytes] = {}
        self.n_fig = 0

    def add(self, *blocks: Any) -> None:
        self.blocks.extend(blocks)

    def h(self, level: int, text: str, anchor: str | None = None) -> None:
        self.blocks.append(_Heading(level, text, anchor))

    def p(self, text: str, cls: str | None = None) -> None:
        self.blocks.append(_Para(text, cls))

    def figure(self, key: str, make: Callable[[], Any]) -> None:
        from .. import plots

        try:
            fig = make()
        except ValueError as exc:  # the figure does not apply to these inputs (e.g. 1-D profiles)
            self.p(f"Figure '{_pretty(key)}' not available: {exc}", cls="muted")
            return
        except Exception as exc:  # noqa: BLE001 - a broken figure must not cost the whole report
            warnings.warn(f"figure {key!r} failed: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            self.p(f"Figure '{_pretty(key)}' could not be drawn ({type(exc).__name__}: {exc}).", cls="bad")
            return
        png = _png(fig)
        fig.clear()
        self.n_fig += 1
        self.figures[key] = png
        cap = plots.CAPTIONS.get(key, "")
        self.blocks.append(_Figure(key, self.n_fig, cap, png, alt=f"Figure {self.n_fig}: {_pretty(key)}"))
