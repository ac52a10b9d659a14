"""The report's sections as one ordered list (:data:`REPORT_SECTIONS`) and the boxes
above the first section (:func:`_top_boxes`).  The order of the list is the order
of the report; the numbers in the headings and the table of contents
(:data:`SECTIONS`) are derived from it."""

from __future__ import annotations

from .analysis import _section_comparison, _section_data, _section_deterministic, _section_model
from .appendix import _section_methods, _section_provenance, _section_robustness
from .base import ReportInputs, Section
from .blocks import _Box, _Builder, _int
from .checks import render as _section_checks

def _skipped(r: ReportInputs, step: str, default: str) -> str:
    why = r.spec.skipped_steps().get(step)
    return f"Not run: {why}." if why else default


#: the report's sections, in order
REPORT_SECTIONS: tuple[Section, ...] = (
    Section("data", "Data overview", _section_data),
    Section("deterministic", "Deterministic results (original method)", _section_deterministic,
            applies=lambda r: r.det is not None, absent="The deterministic method was not run."),
    Section("model", "Measurement model", _section_model,
            applies=lambda r: r.idata is not None or r.fit_summary is not None,
            absent="The measurement model was not fitted in this run."),
    Section("checks", "Model checks", _section_checks, applies=lambda r: getattr(r, "checks", None) is not None,
            absent="The model checks were not run."),
    Section("comparison", "Comparison of the deterministic and the posterior results", _section_comparison,
            applies=lambda r: r.comparison is not None,
            absent=lambda r: _skipped(r, "comparison", "The comparison was not run.")),
    Section("robustness", "Robustness checks", _section_robustness,
            applies=lambda r: r.robustness is not None,
            absent=lambda r: _skipped(r, "robustness", "Robustness checks not run.")),
    Section("methods", "Methods appendix", _section_methods),
    Section("provenance", "Provenance", _section_provenance),
)

#: (anchor, title) of the report's sections, in order: the table of contents
SECTIONS: tuple[tuple[str, str], ...] = tuple((s.key, s.title) for s in REPORT_SECTIONS)


def _diag_problem_words(problem: str) -> str:
    """A diagnostics problem followed by what it means in plain words."""
    p = problem.rstrip(". ")
    if p.startswith("R-hat"):
        why = "The chains have not settled on the same posterior."
    elif p.startswith("bulk ESS"):
        why = "Too few effective draws for stable estimates."
    elif p.startswith("tail ESS"):
        why = "The ends of the intervals rest on too few effective draws."
    elif "divergent" in p:
        why = "The sampler could not explore part of the posterior; estimates may be biased."
    elif p.startswith("E-BFMI"):
        why = "The sampler moved through the posterior poorly."
    else:
        return p + "."
    return f"{p}. {why}"


def _top_boxes(b: _Builder, r: ReportInputs) -> None:
    """The red warning box (the fit failed its diagnostics) and the quick-run notice."""
    quick, idata = r.quick, r.idata
    diag = getattr(r.fit_summary, "diagnostics", None)
    if diag is not None and diag.failed:
        items = [_diag_problem_words(p) for p in diag.problems]
        items.append(
            "Treat every result from the measurement model and the comparison below as provisional: "
            "run again with more tuning and draws (and without --quick) until the diagnostics pass."
        )
        b.add(_Box("warning", "The measurement model failed its convergence diagnostics. "
                   "Do not trust its results.", items))
    if quick:
        extra = []
        if idata is not None:
            a = idata.attrs
            extra.append(f"{_int(a.get('chains'))} chains of {_int(a.get('draws'))} draws after "
                         f"{_int(a.get('tune'))} tuning steps.")
        b.add(_Box("notice", "Quick run: short chains, for a first look only.", extra))
