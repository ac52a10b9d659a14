"""The entry point: :func:`write_report` writes ``report.md``, ``index.html`` and the
figures, looping over the report's sections in order."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from ..spec import Spec
from .base import ReportInputs
from .blocks import _Builder
from .render import _render_html, _render_md
from .sections import REPORT_SECTIONS, SECTIONS, _top_boxes


def write_report(
    out_dir: str | Path,
    *,
    spec: Spec,
    survey,
    det,
    idata,
    fit_summary,
    comparison,
    robustness=None,
    checks=None,
    manifest: Mapping[str, Any] | None = None,
    quick: bool = False,
) -> dict[str, Path]:
    """Write ``report.md``, ``index.html`` and ``figures/*.png`` into ``out_dir``.

    Parameters: the spec and validated survey; ``det`` from
    :func:`~smeintl.profiles.run_deterministic`; ``idata`` the fit
    (:meth:`~smeintl.measurement.MeasurementModel.fit`), ``fit_summary`` from
    :func:`~smeintl.measurement.summarize_fit` (its ``diagnostics`` decide the warning
    box); ``comparison`` from :func:`~smeintl.predictive.compare`; ``robustness`` an
    object with ``.matrix`` (DataFrame) and ``.checks`` (objects with ``name``,
    ``passed``, ``table``, ``text``), or None ("robustness checks not run");
    ``checks`` the model checks (:func:`~smeintl.measurement.fit_checks.fit_checks`), or None;
    ``manifest`` the run's provenance (``spec_hash``, ``data_hash``, ``seed``,
    ``versions``, ``timings_s``, ``created``; missing keys fall back to the spec, survey
    and fit); ``quick`` adds the quick-run notice.  ``idata``, ``fit_summary`` and
    ``comparison`` may be None (a deterministic-only report says what was not run).

    Returns ``{relative path: absolute path}`` of every file written, e.g.
    ``{"report.md": ..., "index.html": ..., "figures/loadings.png": ...}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r = ReportInputs(spec=spec, survey=survey, det=det, idata=idata, fit_summary=fit_summary, comparison=comparison,
                     robustness=robustness, checks=checks, manifest=manifest or {}, quick=quick)
    b = _Builder()
    _top_boxes(b, r)
    for k, section in enumerate(REPORT_SECTIONS, start=1):
        b.h(2, f"{k}. {section.title}", section.key)
        if section.applies(r):
            section.render(b, r)
        else:
            b.p(section.absent(r) if callable(section.absent) else section.absent)

    title = f"smeintl report: {spec.name}"
    created = (manifest or {}).get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    subtitle = (f"{spec.description + '. ' if spec.description else ''}Data: {survey.source} "
                f"({survey.n_firms} firms). Created {created}.")
    toc = list(SECTIONS)

    written: dict[str, Path] = {}
    figdir = out / "figures"
    if b.figures:
        figdir.mkdir(exist_ok=True)
    for key, png in b.figures.items():
        p = figdir / f"{key}.png"
        p.write_bytes(png)
        written[f"figures/{key}.png"] = p
    md = out / "report.md"
    md.write_text(_render_md(title, subtitle, b.blocks), encoding="utf-8")
    written["report.md"] = md
    page = out / "index.html"
    page.write_text(_render_html(title, subtitle, b.blocks, toc), encoding="utf-8")
    written["index.html"] = page
    return written
