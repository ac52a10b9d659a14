"""The analysis report: one Markdown file and one self-contained HTML page.

:func:`write_report` writes into a folder

* ``report.md``: the report as Markdown, figures referenced as ``figures/<name>.png``;
* ``index.html``: the same report as one self-contained page (inline CSS, every figure
  embedded as a base64 PNG ``data:`` URI, no scripts, no external resources: it opens
  offline and can be mailed as one file);
* ``figures/<name>.png``: the figures of :mod:`smeintl.plots` (names as in
  :data:`smeintl.plots.CAPTIONS`).

Both documents are rendered from one list of blocks (headings, paragraphs, tables,
figures, boxes), so they carry the same content.  A red warning box when the fit
failed its convergence diagnostics and a notice for quick runs come before the first
section; the sections are one ordered list of :class:`Section` entries
(:data:`REPORT_SECTIONS`; their anchors and titles, the table of contents, are
:data:`SECTIONS`): data overview, the deterministic results as the original method
gives them, the measurement model, the comparison of the two, robustness checks, a
methods appendix with every definition, and a provenance block.  A section's number
is its place in the list.

The report only reads its inputs.  Existing files of the same names in ``out_dir``
are replaced; the caller (``smeintl run``) decides the overwrite policy and writes
into a temporary folder that is renamed at the end.

Modules: :mod:`~smeintl.report.blocks` (the blocks, number formatting, tables,
figures), :mod:`~smeintl.report.render` (Markdown and HTML),
:mod:`~smeintl.report.base` (:class:`ReportInputs`, :class:`Section`),
:mod:`~smeintl.report.analysis` (data, deterministic, model and comparison sections),
:mod:`~smeintl.report.appendix` (robustness, methods and provenance sections),
:mod:`~smeintl.report.sections` (the ordered list and the boxes above it),
:mod:`~smeintl.report.writer` (:func:`write_report`).
"""

from __future__ import annotations

from .base import ReportInputs, Section
from .blocks import FIGURE_DPI
from .sections import REPORT_SECTIONS, SECTIONS
from .writer import write_report

__all__ = ["SECTIONS", "write_report", "FIGURE_DPI", "REPORT_SECTIONS", "Section", "ReportInputs"]
