"""What every section builds on: :class:`ReportInputs`, the results a report is
written from, and :class:`Section`, one entry of the report's ordered list of
sections (:data:`smeintl.report.sections.REPORT_SECTIONS`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..spec import Spec
from .blocks import _Builder


@dataclass(frozen=True)
class ReportInputs:
    """The results one report is written from (see :func:`~smeintl.report.write_report`);
    every part but the spec and the survey may be None (that part was not run)."""

    spec: Spec
    survey: Any
    det: Any = None
    idata: Any = None
    fit_summary: Any = None
    comparison: Any = None
    robustness: Any = None
    checks: Any = None
    manifest: Mapping[str, Any] = field(default_factory=dict)
    quick: bool = False


def _always(r: ReportInputs) -> bool:
    return True


@dataclass(frozen=True)
class Section:
    """One numbered section of the report.

    ``key`` is the HTML anchor, ``title`` the heading (numbered by the section's place
    in the list).  ``render(builder, inputs)`` adds the section's blocks, which both
    renderers turn into its Markdown and HTML parts.  When ``applies(inputs)`` is
    false (the step was not run) the section keeps its heading and says ``absent``
    instead (a text, or a function of the inputs giving it: why the step was skipped).
    """

    key: str
    title: str
    render: Callable[[_Builder, ReportInputs], None]
    applies: Callable[[ReportInputs], bool] = _always
    absent: str | Callable[[ReportInputs], str] = ""
