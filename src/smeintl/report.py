"""The analysis report: one Markdown file and one self-contained HTML page.

:func:`write_report` writes into a folder

* ``report.md``: the report as Markdown, figures referenced as ``figures/<name>.png``;
* ``index.html``: the same report as one self-contained page (inline CSS, every figure
  embedded as a base64 PNG ``data:`` URI, no scripts, no external resources: it opens
  offline and can be mailed as one file);
* ``figures/<name>.png``: the figures of :mod:`smeintl.plots` (names as in
  :data:`smeintl.plots.CAPTIONS`).

Both documents are rendered from one list of blocks (headings, paragraphs, tables,
figures, boxes), so they carry the same content.  Sections, in order
(:data:`SECTIONS`): a red warning box when the fit failed its convergence diagnostics
and a notice for quick runs (before the first section), data overview, the
deterministic results as the original method gives them, the measurement model, the
comparison of the two, robustness checks, a methods appendix with every definition,
and a provenance block.

The report only reads its inputs.  Existing files of the same names in ``out_dir``
are replaced; the caller (``smeintl run``) decides the overwrite policy and writes
into a temporary folder that is renamed at the end.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .spec import Spec

__all__ = ["SECTIONS", "write_report", "FIGURE_DPI"]

#: (anchor, title) of the report's sections, in order
SECTIONS: tuple[tuple[str, str], ...] = (
    ("data", "Data overview"),
    ("deterministic", "Deterministic results (original method)"),
    ("model", "Measurement model"),
    ("comparison", "Comparison of the deterministic and the posterior results"),
    ("robustness", "Robustness checks"),
    ("methods", "Methods appendix"),
    ("provenance", "Provenance"),
)

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
        from . import plots

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


# ---------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------
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


def _top_boxes(b: _Builder, fit_summary, quick: bool, idata) -> None:
    diag = getattr(fit_summary, "diagnostics", None)
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


def _section_data(b: _Builder, spec: Spec, survey, det) -> None:
    n = survey.n_firms
    miss = survey.missing
    total = n * len(spec.item_names)
    b.p(
        f"{n} firms from {survey.source}; {len(spec.item_names)} items on {len(spec.constructs)} construct(s) "
        f"({', '.join(c.name for c in spec.constructs)}); {int(miss.sum())} of {total} answers missing "
        f"({_pct(miss.sum() / total if total else float('nan'))})."
    )
    gcol = spec.group_column
    if gcol and gcol in survey.firms.columns:
        counts = survey.firms[gcol].astype(str).value_counts().sort_index()
        b.h(3, "Industries")
        b.add(_table(["industry", "firms", "share"], [[g, str(int(c)), _pct(c / n)] for g, c in counts.items()]))
    else:
        b.p("The survey has no industry (group) column.")
    b.h(3, "Missing answers per item")
    rows = []
    for it in spec.items:
        m = int(miss.get(it.name, 0))
        rng = f"{it.min:g}-{it.max:g}" if it.scale != "count" else f"0-{it.cap:g} (cap)"
        rows.append([it.name, it.construct, it.subdimension, it.scale, rng, "yes" if it.reverse else "",
                     str(m), _pct(m / n if n else float("nan"))])
    b.add(_table(["item", "construct", "sub-dimension", "scale", "range", "reverse", "missing", "missing %"], rows,
                 numeric=[False, False, False, False, False, False, True, True]))
    out = det.summary.get("outcome", {}) if det is not None else {}
    if out.get("available"):
        b.p(f"Outcome column present for {out.get('n_with_outcome')} firms.")
    elif out:
        b.p(f"Outcome: {out.get('note', 'not available')}.")


def _section_deterministic(b: _Builder, spec: Spec, det) -> None:
    s = det.summary
    st = s["settings"]
    dist = ("squared " if st["squared"] else "") + "weighted Euclidean distance" + (
        " on z-standardized dimensions" if st["standardize"] else "")
    b.p(
        f"Each firm is assigned the nearest of {len(s['types']['names'])} ideal types on "
        f"{', '.join(st['profile_dimensions'])} ({dist}; ties to the first declared type"
        + (f"; 'hybrid' when the two nearest are within {st['hybrid_epsilon']}" if st["hybrid_epsilon"] else "")
        + "). These are the numbers the original method reports, without uncertainty."
    )
    t = s["types"]
    b.h(3, "Types")
    rows = [[_pretty(nm), str(t["counts"][nm]), _pct(t["shares"][nm])] for nm in t["names"]]
    b.add(_table(["type", "firms", "share"], rows,
                 caption=f"{t['n_typed']} firms typed, {t['n_untyped']} with a missing index (untyped)."))
    if s.get("types_by_industry"):
        b.h(3, "Types by industry")
        rows = []
        for g, c in s["types_by_industry"].items():
            rows.append([g, str(c["n"])] + [f"{c['counts'][nm]} ({_pct(c['shares'][nm], 0)})" for nm in t["names"]])
        b.add(_table(["industry", "n"] + [_pretty(nm) for nm in t["names"]], rows,
                     caption="Firms per type, count (share of the industry's typed firms)."))
    if s.get("flags"):
        b.h(3, "Threshold flags")
        rows = []
        for fn, f in s["flags"].items():
            row = [_pretty(fn), f["rule"], f"{f['count']} of {f['n']}", _pct(f["share"])]
            rows.append(row)
        b.add(_table(["flag", "rule", "firms", "share"], rows, numeric=[False, False, True, True]))
        groups = list(next(iter(s["flags"].values()))["by_industry"])
        if groups:
            rows = []
            for g in groups:
                cells = [g]
                for f in s["flags"].values():
                    bi = f["by_industry"][g]
                    cells.append(f"{bi['count']} of {bi['n']}")
                rows.append(cells)
            b.add(_table(["industry"] + [_pretty(fn) for fn in s["flags"]], rows, caption="Threshold flags by industry."))
    qa = s.get("quadrant_agreement", {})
    if "agree" in qa:
        b.p(f"The quadrant rule (thresholds {', '.join(f'{k} {v:g}' for k, v in st['thresholds'].items())}) "
            f"agrees with the nearest ideal type for {qa['agree']} of {qa['n']} typed firms.")
    elif "note" in qa:
        b.p(f"Quadrant rule: {qa['note']}.")

    b.h(3, "Indices by industry")
    cons = list(s["indices"]["overall"])
    rows = []
    for g, stats in [("all firms", s["indices"]["overall"])] + list(s["indices"]["by_industry"].items()):
        row = [g]
        for c in cons:
            row += [_f(stats[c]["mean"]), _f(stats[c]["sd"]), _int(stats[c]["n"])]
        rows.append(row)
    hdr = ["industry"] + [x for c in cons for x in (f"{c} mean", f"{c} sd", f"{c} n")]
    b.add(_table(hdr, rows, caption="Construct indices on [0, 1]: mean, standard deviation (ddof 1) and firms with the index."))

    b.h(3, "Reliability (Cronbach's alpha)")
    rows = [[c, _f(a["items"]), str(a["items_n_cases"]), _f(a["subdimensions"]), str(a["subdimensions_n_cases"])]
            for c, a in s["alpha"].items()]
    b.add(_table(["construct", "alpha (items)", "complete cases", "alpha (sub-dimensions)", "complete cases"], rows))

    if "subtypes" in s:
        stp = s["subtypes"]
        b.h(3, "Types on the sub-dimension profiles")
        rows = [[_pretty(nm), str(stp["counts"][nm]), _pct(stp["shares"][nm])] for nm in stp["names"]]
        b.add(_table(["type", "firms", "share"], rows,
                     caption=f"Nearest ideal type on the sub-dimension scores ({', '.join(stp['dimensions'])}); "
                             f"{stp['n_typed']} firms typed."))

    o = s.get("outcome", {})
    b.h(3, "Outcome relation and baseline test")
    if not o.get("available"):
        b.p(f"Not run: {o.get('note', 'no outcome')}.")
        return
    rows = []
    for nm, r in o["relation"].items():
        ols = r.get("ols") or {}
        rows.append([_pretty(nm), _int(r.get("n")), _f(r.get("pearson_r")), _p(r.get("pearson_p")),
                     _f(r.get("spearman_rho")), _f(ols.get("coef")), _f(ols.get("se")), _p(ols.get("p")),
                     _f(ols.get("r2"))])
    b.add(_table(["ideal", "n", "Pearson r", "p", "Spearman rho", "OLS b", "se (HC1)", "p", "R²"], rows,
                 caption=f"Outcome ({spec.outcome_column or 'outcome'}) against the deviation from each ideal; "
                         "OLS with industry dummies. A negative relation means firms closer to the ideal do better. "
                         "The empirical ideal is evaluated on its test sample only."))
    bl = o.get("baseline") or {}
    if bl:
        rows = [[_f(bl.get("r_obs")), _p(bl.get("p_uniform")), _p(bl.get("p_calibration")), _int(bl.get("draws")),
                 str(bl.get("seed")), _int(bl.get("n_test")), _int(bl.get("n_calibration"))]]
        b.add(_table(["r observed", "p (uniform)", "p (calibration)", "B", "seed", "test firms", "calibration firms"],
                     rows, caption="Baseline test: the observed correlation against random ideal profiles."))
        b.p(f"Verdict: {bl.get('verdict', '')}")


def _section_model(b: _Builder, spec: Spec, idata, fs) -> None:
    from . import plots

    a = idata.attrs if idata is not None else {}
    if idata is not None:
        b.p(
            f"Generalized latent variable model ({a.get('parameterization', 'latent')} parameterization), "
            f"{_int(a.get('chains'))} chains x {_int(a.get('draws'))} draws after {_int(a.get('tune'))} tuning steps "
            f"(sampler {a.get('sampler', '?')}, seed {a.get('random_seed', '?')}). Intervals are 90% equal-tailed "
            "posterior intervals. The model is stated in the methods appendix."
        )
    if fs is None:
        b.p("No fit summary was given.")
        return
    b.h(3, "Loadings")
    L = fs.loadings
    rows = [[str(item), r["construct"], r["scale"], "yes" if r["reverse"] else "",
             _interval(r["mean"], r["lo"], r["hi"]), _interval(r["std_mean"], r["std_lo"], r["std_hi"])]
            for item, r in L.iterrows()]
    b.add(_table(["item", "construct", "scale", "reverse", "loading [90%]", "standardized [90%]"], rows,
                 numeric=[False, False, False, False, True, True]))
    b.figure("loadings", lambda: plots.plot_loadings(fs))

    b.h(3, "Latent correlation")
    if len(fs.correlation):
        rows = [[r.construct_a, r.construct_b, _interval(r.mean, r.lo, r.hi), _p(r.p_positive)]
                for r in fs.correlation.itertuples(index=False)]
        b.add(_table(["construct", "construct", "correlation [90%]", "P(> 0)"], rows,
                     numeric=[False, False, True, True]))
        if idata is not None:
            b.figure("latent_correlation", lambda: plots.plot_latent_correlation(idata))
    else:
        b.p("One construct: no latent correlation.")

    b.h(3, "Industry latent means")
    if len(fs.group_means):
        G = fs.group_means
        cons = list(dict.fromkeys(G["construct"]))
        rows = []
        for g in dict.fromkeys(G["group"]):
            sub = G[G["group"] == g].set_index("construct")
            rows.append([str(g)] + [_interval(sub.loc[c, "mean"], sub.loc[c, "lo"], sub.loc[c, "hi"]) for c in cons])
        b.add(_table(["industry"] + [f"{c} [90%]" for c in cons], rows,
                     caption="Latent scale: within-industry sd 1, industry means sum to zero."))
        b.figure("industry_means", lambda: plots.plot_industry_means(fs))
    else:
        b.p("The fit has no industry level.")

    b.h(3, "Reliability")
    if len(fs.reliability):
        rows = [[r.construct, _pretty(r.measure), _interval(r.mean, r.lo, r.hi)] for r in fs.reliability.itertuples(index=False)]
        b.add(_table(["construct", "measure", "value [90%]"], rows, numeric=[False, False, True],
                      caption="Omega (model-based reliability); latent-response omega on the standardized loadings for "
                              "non-continuous items."))

    b.h(3, "Convergence diagnostics")
    from .measurement import THRESHOLDS

    d = fs.diagnostics
    checks = [
        ("max R-hat", _f(d.max_rhat, 3), f"<= {THRESHOLDS['rhat']}", d.max_rhat <= THRESHOLDS["rhat"], d.worst.get("rhat", "")),
        ("min bulk ESS", _f(d.min_ess_bulk, 0), f">= {THRESHOLDS['ess_bulk']}", d.min_ess_bulk >= THRESHOLDS["ess_bulk"],
         d.worst.get("ess_bulk", "")),
        ("min tail ESS", _f(d.min_ess_tail, 0), f">= {THRESHOLDS['ess_tail']}", d.min_ess_tail >= THRESHOLDS["ess_tail"],
         d.worst.get("ess_tail", "")),
        ("divergent transitions", str(d.divergences), f"<= {THRESHOLDS['divergences']}",
         d.divergences <= THRESHOLDS["divergences"], ""),
        ("min E-BFMI", _f(d.min_ebfmi, 3), f">= {THRESHOLDS['ebfmi']}",
         (not np.isfinite(d.min_ebfmi)) or d.min_ebfmi >= THRESHOLDS["ebfmi"], ""),
    ]
    rows = [[n, v, t, "ok" if ok else "FAILED", w] for n, v, t, ok, w in checks]
    b.add(_table(["check", "value", "threshold", "status", "worst parameter"], rows,
                 numeric=[False, True, False, False, False], caption=f"{d.n_draws} posterior draws."))
    if d.failed:
        b.p("Verdict: the fit FAILED its diagnostics; its estimates and every probability derived from it "
            "are not trustworthy yet.", cls="bad")
    else:
        b.p("Verdict: the fit passed every diagnostic; the sampler explored the posterior well.", cls="good")

    b.h(3, "Posterior predictive checks")
    if idata is not None:
        b.figure("ppc", lambda: plots.plot_ppc(idata, spec))


def _agreement_line(a: Mapping[str, Any], prob: float) -> str:
    pct = f"{100 * prob:g}%"
    if not a.get("n_firms"):
        return "Agreement: no firm is typed by the deterministic method."
    kap = _DASH if _isnan(a.get("kappa")) else f"{a['kappa']:.2f} ({pct} interval {a['kappa_lo']:.2f} to {a['kappa_hi']:.2f})"
    return (
        f"Agreement: the deterministic type is the most probable posterior (true-score) type for {a['n_agree']} of "
        f"{a['n_firms']} firms ({_pct(a['share_agree'])}); Cohen's kappa per draw {kap}; kappa against the most "
        f"probable type {_f(a.get('kappa_modal'), 2)}. Against the replicated surveys: the most probable type agrees "
        f"for {_pct(a.get('share_agree_rep'))} of the firms, kappa per draw {_f(a.get('kappa_rep'), 2)}."
    )


def _section_comparison(b: _Builder, spec: Spec, det, comp, survey) -> None:
    from . import plots
    from .predictive import FINDINGS

    pct = f"{100 * comp.prob:g}%"
    b.p(
        f"The deterministic method re-run on {comp.n_draws} posterior draws: on the firms' true scores (no "
        "measurement error) and on surveys replicated from the model (a re-measurement of the same firms). "
        f"Intervals are {pct} equal-tailed."
    )
    for n in comp.notes:
        b.p(f"Note: {n}", cls="bad")
    b.h(3, "Findings")
    titles = {f.key: f.title for f in FINDINGS}
    rows = []
    for r in comp.findings.itertuples(index=False):
        det_word = _DASH if r.deterministic is None or _isnan(r.deterministic) else (
            "holds" if bool(r.deterministic) else "does not hold")
        dval = _DASH if _isnan(r.deterministic_value) else f"{r.deterministic_quantity} = {_f(r.deterministic_value)}"
        post = _DASH if _isnan(r.posterior_median) else (
            f"{r.posterior_quantity}: {_interval(r.posterior_median, r.posterior_lo, r.posterior_hi)}")
        rows.append([titles.get(r.finding, r.finding), det_word, dval, _p(r.posterior_probability),
                     _p(r.replicated_probability), post, str(r.verdict)])
    b.add(_table(["finding", "deterministic", "deterministic value", "P(holds)", "P(rep)",
                  f"posterior quantity, median [{pct}]", "verdict"], rows,
                 numeric=[False, False, False, True, True, False, False],
                 caption="P(holds): posterior probability that the finding holds (true scores, latent parameters); "
                         "P(rep): share of replicated surveys on which the original method states it. Definitions in "
                         "the methods appendix."))
    notes = [f"{titles.get(r.finding, r.finding)}: {r.note}" for r in comp.findings.itertuples(index=False) if r.note]
    if notes:
        b.add(_List(notes))
    b.p(_agreement_line(comp.agreement, comp.prob))

    b.h(3, "Firms on the ideal-profile map")
    b.figure("profile_map", lambda: plots.plot_profile_map(det, comp, spec))
    b.h(3, "Type probabilities per firm")
    b.figure("type_probabilities", lambda: plots.plot_type_probabilities(comp, spec))
    b.h(3, "Deviation from the nearest ideal type")
    b.figure("deviation_intervals", lambda: plots.plot_deviation_intervals(comp, spec))

    b.h(3, "Sample statistics")
    S = comp.sample_stats
    rows = []
    for r in S.itertuples(index=False):
        d = 0 if str(r.statistic).startswith("count_") else 3
        rows.append([r.statistic, _f(r.deterministic, d), _interval(r.rep_median, r.rep_lo, r.rep_hi, d), _p(r.ppp),
                     _interval(r.true_median, r.true_lo, r.true_hi, d)])
    b.add(_table(["statistic", "deterministic", f"replicated median [{pct}]", "ppp", f"true score median [{pct}]"], rows,
                 numeric=[False, True, True, True, True],
                 caption="ppp: posterior predictive p-value P(replicated >= observed); values near 0 or 1 flag a "
                         "statistic the model does not reproduce."))

    b.h(3, "Per-firm types")
    ft = comp.firm_types
    tn = list(comp.type_names)
    ind = {}
    if det is not None and "industry" in det.firms.columns:
        ind = dict(zip(det.firms["firm_id"].astype(str), det.firms["industry"].astype(object)))
    rows = []
    for r in ft.to_dict("records"):
        dt = r["deterministic_type"]
        dt_s = _DASH if _isnan(dt) else _pretty(dt)
        p_det = _DASH if _isnan(dt) else _f(r.get(f"p_{dt}"), 2)
        g = ind.get(str(r["firm_id"]))
        rows.append([str(r["firm_id"]), _DASH if _isnan(g) else str(g), dt_s,
                     _DASH if _isnan(r["modal_type"]) else _pretty(r["modal_type"]), p_det,
                     _f(r["p_wrong_rep"], 2)] + [_f(r[f"p_{t}"], 2) for t in tn])
    b.add(_table(["firm", "industry", "deterministic type", "most probable type", "P(det. type)",
                  "P(wrong, rep)"] + [f"P({_pretty(t)})" for t in tn], rows,
                 numeric=[False, False, False, False] + [True] * (2 + len(tn)),
                 caption="Type probabilities on the firms' true scores; the probability that the deterministic type "
                         "is wrong is 1 - P(det. type). P(wrong, rep): share of replicated surveys on which the "
                         "original method gives the firm another type."))


def _section_robustness(b: _Builder, robustness) -> None:
    from .predictive import FINDINGS

    if robustness is None:
        b.p("Robustness checks not run.")
        return
    titles = {f.key: f.title for f in FINDINGS}
    matrix = getattr(robustness, "matrix", None)
    summary = getattr(robustness, "summary", None)
    if callable(summary):
        try:
            summ = summary()
        except Exception:  # noqa: BLE001 - the full matrix below still says everything
            summ = None
        if isinstance(summ, pd.DataFrame) and len(summ):
            b.h(3, "Findings across checks")
            summ = summ.rename(index=lambda k: titles.get(k, k))
            summ.index.name = "finding"
            b.add(_frame_table(summ, caption="Baselines (the original method on the observed data; the posterior "
                                             "probability), then per check: variants in which the finding holds / "
                                             "variants that could evaluate it."))
    if isinstance(matrix, pd.DataFrame) and len(matrix.columns):
        b.h(3, "Findings matrix (every variant)")
        if len(matrix.columns) > 8 and len(matrix.index) <= 12:
            # many variants, few findings: variants as rows reads better
            t = matrix.T.rename(columns=lambda k: titles.get(k, k))
            t = t.map(lambda v: "n/a" if str(v).startswith("n/a: not addressed") else v)
            t.index.name = "variant"
            b.add(_frame_table(t, index=True, caption="n/a: the variant does not address the finding."))
        else:
            b.add(_frame_table(matrix))
    checks = list(getattr(robustness, "checks", []) or [])
    if not checks:
        b.p("No robustness checks in the result.")
    for ch in checks:
        passed = getattr(ch, "passed", None)
        status = " (skipped)" if passed is None else (" (passed)" if bool(passed) else " (NOT passed)")
        b.h(3, f"{getattr(ch, 'name', 'check')}{status}")
        text = str(getattr(ch, "text", "") or "")
        if text.strip():
            b.add(_Pre(text.rstrip()))
    for n in getattr(robustness, "notes", ()) or ():
        b.p(f"Note: {n}", cls="muted")


_LIKELIHOOD = {
    "likert": "ordered logistic (graded response) with per-item cutpoints over the full declared range",
    "stage": "ordered logistic (graded response) with per-item cutpoints over the full declared range",
    "percent": "ordered beta: ordered logistic over {minimum, interior, maximum} with two cutpoints, and "
               "Beta(mu, phi) for interior answers, logit(mu) = intercept + lambda * eta",
    "count": "negative binomial, log link: log mu = intercept + lambda * eta",
    "binary": "Bernoulli, logit link: logit p = intercept + lambda * eta",
    "continuous": "Normal on the item standardized by its declared range (centre, range/6), "
                  "mean intercept + lambda * eta, residual sd sigma",
}

_SCALING = {
    "likert": "(x - min) / (max - min)",
    "stage": "(x - min) / (max - min)",
    "percent": "(x - min) / (max - min) (x / 100 for 0-100)",
    "count": "min(x, cap) / cap",
    "binary": "x (0 or 1)",
    "continuous": "(x - min) / (max - min) with the declared range",
}


def _section_methods(b: _Builder, spec: Spec, idata) -> None:
    from .measurement import THRESHOLDS
    from .predictive import FINDING_RULES, FINDINGS

    b.h(3, "Deterministic method")
    scales = list(dict.fromkeys(it.scale for it in spec.items))
    b.add(_List([
        "Item scaling to [0, 1]: " + "; ".join(f"{s}: {_SCALING[s]}" for s in scales)
        + "; reverse-coded items v -> 1 - v.",
        "Sub-dimension score: weighted mean of the scaled items present; missing when fewer than half of its items "
        "are answered. Construct index: weighted mean of its sub-dimension scores (in [0, 1]); Sullivan-style sum "
        "of the sub-dimension scores beside it.",
        "Deviation: weighted Euclidean distance D_fk = sqrt(sum_j w_jk (x_fj - I_kj)^2) of firm f from ideal type k"
        + (" on z-standardized dimensions" if spec.standardize else "") + ("; squared" if spec.squared else "")
        + "; fit = 1 - D / Dmax.",
        "Typing: nearest ideal type (ties to the first declared type)"
        + (f", 'hybrid' when the two nearest are within {spec.hybrid_epsilon}" if spec.hybrid_epsilon else "")
        + "; flags: index >= threshold (" + ", ".join(f"{k} {v:g}" for k, v in spec.thresholds.items()) + ").",
        "Reliability: Cronbach's alpha over the items and over the sub-dimension scores, complete cases.",
        "Outcome relation (with an outcome): Pearson and Spearman correlation and OLS (industry dummies, HC1 errors) "
        "of outcome on deviation; empirical ideal = mean profile of the top "
        f"{_pct(spec.empirical.top_share, 0)} of firms on the outcome, those firms removed from the test sample; "
        "baseline test against random ideal profiles (uniform and calibration), one-sided permutation p-value.",
    ]))
    rows = [[t.name, ", ".join(f"{d}={c:g}" for d, c in zip(spec.profiles.dimensions, t.coords)),
             ", ".join(f"{w:g}" for w in t.weights)] for t in spec.profiles.types]
    b.add(_table(["ideal type", "coordinates", "weights"], rows, numeric=[False, False, False]))

    b.h(3, "Measurement model")
    rows = []
    for s in scales:
        its = [it.name for it in spec.items if it.scale == s]
        rows.append([s, _LIKELIHOOD[s], ", ".join(its)])
    b.add(_table(["scale", "likelihood (linear predictor lambda_i * eta)", "items"], rows,
                 numeric=[False, False, False]))
    b.add(_List([
        "Each firm f has latent scores eta_f, one per construct; item i loads on its construct with a positive "
        "loading lambda_i; reverse-coded items enter with sign -1.",
        "Identification: latent variance 1 within industry; loadings positive (sign-identified after reverse "
        "coding); latent correlation matrix with an LKJ prior.",
        "Industry enters as a partially pooled latent mean per construct, sum-to-zero: "
        "mu_g = tau * z_g, z ~ ZeroSumNormal(1), tau ~ group_sd prior (sampled centred, mu ~ ZeroSumNormal(tau), "
        "when every industry has at least 25 firms); eta_f = mu_g(f) + L z_f with L the Cholesky "
        "factor of the correlation and z_f ~ N(0, I) (sampled centred, eta_f ~ N(mu_g(f), L L'), when every "
        "industry has at least 200 firms and every construct at least 6 items: see latent_parameterization "
        "in the settings table). From 200 firms the item parameters are sampled on the latent scores "
        "standardized by their own sample mean and sd (loading * sd, intercepts and cutpoints moved by "
        "sign * loading * mean, their priors moved with them): standardized_scores in the settings table; "
        "centred scores are then sampled as each construct's sample mean, log sd and standardized shape "
        "(latent_parameterization split). The parameterizations give the same model; they differ in how well the sampler moves.",
        "Item non-response: the likelihood runs over the answered cells only; nothing is imputed.",
        "Convergence thresholds: R-hat <= {rhat}, bulk and tail ESS >= {ess_bulk}, {divergences} divergent "
        "transitions, E-BFMI >= {ebfmi}.".format(**THRESHOLDS),
    ]))
    rows = []
    for k, v in spec.priors.items():
        v = dict(v)
        dist = str(v.pop("dist", ""))
        rows.append([k, dist, ", ".join(f"{pk} = {pv}" for pk, pv in v.items())])
    b.add(_table(["prior", "distribution", "settings"], rows, numeric=[False, False, False],
                 caption="Priors: the code defaults merged with the spec's [priors] table."))
    if idata is not None:
        a = idata.attrs
        keys = ["sampler", "parameterization", "latent_parameterization", "standardized_scores", "mass_matrix",
                "chains", "tune", "draws",
                "target_accept", "random_seed", "group", "created"]
        rows = [[k, str(a.get(k, _DASH))] for k in keys if k in a]
        b.add(_table(["sampler setting", "value"], rows, numeric=[False, False],
                     caption="Settings of the fit, from its attributes."))

    b.h(3, "Comparison: definitions")
    b.add(_Defs([
        ("deterministic", "the original method on the observed answers."),
        ("replicated (rep)", "per posterior draw, the deterministic method on a survey drawn from the posterior "
                             "predictive with the observed missingness pattern: what the original method would report "
                             "on a re-measurement of the same firms."),
        ("true score", "per posterior draw, the deterministic method on the expected item values given the firm's "
                       "latent scores and the item parameters (all items present): the measurement-error-free "
                       "version of the original method."),
        ("intervals", "equal-tailed quantiles (1 - p)/2 and (1 + p)/2 over the draws; medians the 0.5 quantile."),
        ("type probability", "share of the draws in which the firm's type is the given type; P(wrong) = 1 - "
                             "P(deterministic type)."),
        ("ppp", "posterior predictive p-value P(T(y_rep) >= T(y_obs)) over the draws."),
        ("agreement", "share of the typed firms whose deterministic type is the most probable true-score type; "
                      "Cohen's kappa = (p_o - p_e) / (1 - p_e) between the deterministic and the draw's type, per draw."),
        ("verdict", "from the posterior probability p: holds (p >= 0.95), probably holds (0.75 <= p < 0.95), "
                    "uncertain (0.25 < p < 0.75), probably does not hold (0.05 <= p <= 0.25), does not hold (p < 0.05)."),
    ]))
    b.h(3, "Findings: operational definitions")
    b.add(_Defs([(f"{f.title} ({f.key})", f.definition) for f in FINDINGS]))
    b.p("Numbers used by these definitions: " + "; ".join(f"{k} = {v}" for k, v in FINDING_RULES.items()) + ".",
        cls="muted")


def _section_provenance(b: _Builder, spec: Spec, survey, idata, manifest: Mapping[str, Any], quick: bool) -> None:
    m = dict(manifest or {})
    a = idata.attrs if idata is not None else {}
    rows = [
        ["spec", f"{spec.name} ({m.get('spec_source', spec.source)})"],
        ["spec hash (SHA-256)", str(m.get("spec_hash", spec.hash))],
        ["data", str(m.get("data_source", survey.source))],
        ["data hash (SHA-256)", str(m.get("data_hash", survey.data_hash))],
        ["seed", str(m.get("seed", a.get("random_seed", _DASH)))],
        ["quick run", "yes" if quick else "no"],
        ["created", str(m.get("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))],
    ]
    if idata is not None:
        rows.append(["fit created", str(a.get("created", _DASH))])
        rows.append(["fit seed", str(a.get("random_seed", _DASH))])
        fh, dh = a.get("spec_hash"), a.get("data_hash")
        ok = (fh in (None, spec.hash)) and (dh in (None, survey.data_hash))
        rows.append(["fit matches spec and data", "yes" if ok else "NO (hashes differ)"])
    skip = {"spec_text", "versions", "timings_s", "spec_hash", "data_hash", "seed", "created", "quick", "spec_source",
            "data_source", "smeintl_report", "diagnostics"}
    scalar = (str, numbers.Number, bool, type(None))
    for k, v in m.items():
        if k in skip:
            continue
        if isinstance(v, Mapping):
            if not all(isinstance(x, scalar) for x in v.values()):
                continue
            v = ", ".join(f"{kk} = {vv}" for kk, vv in v.items())
        elif isinstance(v, (list, tuple)):
            if not all(isinstance(x, scalar) for x in v):
                continue
            v = ", ".join(str(x) for x in v)
        rows.append([_pretty(k), str(v)])
    b.add(_table(["item", "value"], rows, numeric=[False, False]))
    versions = m.get("versions")
    if not versions and "versions" in a:
        try:
            versions = json.loads(a["versions"])
        except (TypeError, ValueError):
            versions = None
    if versions:
        b.h(3, "Versions")
        b.add(_table(["package", "version"], [[k, str(v)] for k, v in versions.items()], numeric=[False, False]))
    timings = dict(m.get("timings_s") or {})
    if "timing" in a:
        try:
            for k, v in json.loads(a["timing"]).items():
                timings.setdefault(f"fit: {k.removesuffix('_s')}", v)
        except (TypeError, ValueError):
            pass
    if timings:
        b.h(3, "Timings")
        b.add(_table(["step", "seconds"], [[k, _f(v, 1)] for k, v in timings.items()]))


# ---------------------------------------------------------------------------
# renderers
# ---------------------------------------------------------------------------
def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _render_md(title: str, subtitle: str, blocks: Sequence[Any]) -> str:
    out = [f"# {title}", "", subtitle, ""]
    for bl in blocks:
        if isinstance(bl, _Heading):
            out += ["#" * bl.level + " " + bl.text, ""]
        elif isinstance(bl, _Para):
            out += [f"**{bl.text}**" if bl.cls in ("bad",) else bl.text, ""]
        elif isinstance(bl, _List):
            out += [f"- {x}" for x in bl.items] + [""]
        elif isinstance(bl, _Table):
            hdr = [_md_cell(h) or " " for h in bl.header]
            out.append("| " + " | ".join(hdr) + " |")
            out.append("|" + "|".join("---:" if n else "---" for n in bl.numeric) + "|")
            for r in bl.rows:
                out.append("| " + " | ".join(_md_cell(c) for c in r) + " |")
            out.append("")
            if bl.caption:
                out += [f"*{bl.caption}*", ""]
        elif isinstance(bl, _Figure):
            out += [f"![{bl.alt}](figures/{bl.key}.png)", "", f"*Figure {bl.number}. {bl.caption}*", ""]
        elif isinstance(bl, _Box):
            mark = "WARNING" if bl.kind == "warning" else "NOTE"
            out.append(f"> **{mark}: {bl.title}**")
            for x in bl.items:
                out.append(f"> - {x}")
            out.append("")
        elif isinstance(bl, _Pre):
            out += ["```text", bl.text, "```", ""]
        elif isinstance(bl, _Defs):
            out += [f"- **{t}**: {d}" for t, d in bl.pairs] + [""]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1d1d1f;
 background:#fff;margin:0;line-height:1.45;font-size:15px}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.7em;margin:0.2em 0 0.1em}
h2{font-size:1.35em;border-bottom:2px solid #d0d4da;padding-bottom:4px;margin-top:2em}
h3{font-size:1.08em;margin-top:1.6em;color:#2b3a4a}
p.subtitle{color:#555;margin-top:0}
p.muted{color:#666;font-size:0.92em}
p.bad{color:#8a1c1c;font-weight:600}
p.good{color:#1b5e20;font-weight:600}
.box{border-radius:6px;padding:12px 18px;margin:16px 0}
.box h2{border:none;margin:0 0 6px;font-size:1.15em;padding:0}
.box ul{margin:4px 0 0 0;padding-left:20px}
.warning{background:#fdecea;border:2px solid #c62828;color:#7f1414}
.notice{background:#fff8e1;border:2px solid #f0b400;color:#5d4200}
nav.toc{background:#f5f7fa;border:1px solid #e0e4ea;border-radius:6px;padding:8px 18px;margin:16px 0}
nav.toc ol{margin:4px 0;padding-left:22px}
nav.toc a{color:#1f4e79;text-decoration:none}
.table-wrap{overflow-x:auto;margin:10px 0 4px}
table.tbl{border-collapse:collapse;font-size:0.88em;min-width:40%}
table.tbl th,table.tbl td{border-bottom:1px solid #e3e6ea;padding:4px 9px;vertical-align:top;text-align:left}
table.tbl th{background:#eef1f5;font-weight:600;border-bottom:2px solid #c9ced6}
table.tbl td.num,table.tbl th.num{text-align:right;font-variant-numeric:tabular-nums}
table.tbl td.num{white-space:nowrap}
table.tbl tr:nth-child(even) td{background:#fafbfc}
p.caption,figcaption{color:#444;font-size:0.88em;margin:4px 0 14px}
figure{margin:14px 0 22px}
figure img{max-width:100%;height:auto;border:1px solid #eceff3}
pre{background:#f6f8fa;border:1px solid #e3e6ea;border-radius:4px;padding:10px 12px;overflow-x:auto;
 font-size:0.85em;white-space:pre-wrap}
dl.defs dt{font-weight:600;margin-top:8px}
dl.defs dd{margin:2px 0 0 18px}
footer{margin-top:40px;color:#777;font-size:0.85em}
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _render_html(title: str, subtitle: str, blocks: Sequence[Any], toc: Sequence[tuple[str, str]]) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="subtitle">{_e(subtitle)}</p>',
    ]
    open_section = False
    toc_done = False
    for bl in blocks:
        if isinstance(bl, _Heading) and bl.level == 2 and not toc_done:
            out.append('<nav class="toc"><strong>Contents</strong><ol>')
            out += [f'<li><a href="#{_e(a)}">{_e(t)}</a></li>' for a, t in toc]
            out.append("</ol></nav>")
            toc_done = True
        if isinstance(bl, _Heading):
            if bl.level == 2:
                if open_section:
                    out.append("</section>")
                out.append(f'<section id="{_e(bl.anchor or "")}">')
                open_section = True
                out.append(f"<h2>{_e(bl.text)}</h2>")
            else:
                out.append(f"<h{bl.level}>{_e(bl.text)}</h{bl.level}>")
        elif isinstance(bl, _Para):
            cls = f' class="{_e(bl.cls)}"' if bl.cls else ""
            out.append(f"<p{cls}>{_e(bl.text)}</p>")
        elif isinstance(bl, _List):
            out.append("<ul>" + "".join(f"<li>{_e(x)}</li>" for x in bl.items) + "</ul>")
        elif isinstance(bl, _Table):
            th = "".join(f'<th{" class=num" if n else ""}>{_e(h)}</th>' for h, n in zip(bl.header, bl.numeric))
            body = []
            for r in bl.rows:
                body.append("<tr>" + "".join(
                    f'<td{" class=num" if n else ""}>{_e(c)}</td>' for c, n in zip(r, bl.numeric)) + "</tr>")
            out.append(f'<div class="table-wrap"><table class="tbl"><thead><tr>{th}</tr></thead>'
                       f'<tbody>{"".join(body)}</tbody></table></div>')
            if bl.caption:
                out.append(f'<p class="caption">{_e(bl.caption)}</p>')
        elif isinstance(bl, _Figure):
            data = base64.b64encode(bl.png).decode("ascii")
            out.append(
                f'<figure id="fig-{_e(bl.key)}"><img src="data:image/png;base64,{data}" alt="{_e(bl.alt)}">'
                f"<figcaption><strong>Figure {bl.number}.</strong> {_e(bl.caption)}</figcaption></figure>"
            )
        elif isinstance(bl, _Box):
            role = ' role="alert"' if bl.kind == "warning" else ""
            items = "".join(f"<li>{_e(x)}</li>" for x in bl.items)
            prefix = "Warning: " if bl.kind == "warning" else ""
            out.append(f'<div class="box {_e(bl.kind)}"{role}><h2>{_e(prefix + bl.title)}</h2>'
                       + (f"<ul>{items}</ul>" if items else "") + "</div>")
        elif isinstance(bl, _Pre):
            out.append(f"<pre>{_e(bl.text)}</pre>")
        elif isinstance(bl, _Defs):
            out.append('<dl class="defs">' + "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in bl.pairs)
                       + "</dl>")
    if open_section:
        out.append("</section>")
    out += ["<footer>Generated by smeintl. This page is self-contained: no external resources.</footer>",
            "</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------
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
    ``manifest`` the run's provenance (``spec_hash``, ``data_hash``, ``seed``,
    ``versions``, ``timings_s``, ``created``; missing keys fall back to the spec, survey
    and fit); ``quick`` adds the quick-run notice.  ``idata``, ``fit_summary`` and
    ``comparison`` may be None (a deterministic-only report says what was not run).

    Returns ``{relative path: absolute path}`` of every file written, e.g.
    ``{"report.md": ..., "index.html": ..., "figures/loadings.png": ...}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    b = _Builder()
    _top_boxes(b, fit_summary, quick, idata)

    def section(k: int) -> None:
        anchor, title = SECTIONS[k]
        b.h(2, f"{k + 1}. {title}", anchor)

    section(0)
    _section_data(b, spec, survey, det)
    section(1)
    if det is not None:
        _section_deterministic(b, spec, det)
    else:
        b.p("The deterministic method was not run.")
    section(2)
    if idata is None and fit_summary is None:
        b.p("The measurement model was not fitted in this run.")
    else:
        _section_model(b, spec, idata, fit_summary)
    section(3)
    if comparison is None:
        b.p("The comparison was not run.")
    else:
        _section_comparison(b, spec, det, comparison, survey)
    section(4)
    _section_robustness(b, robustness)
    section(5)
    _section_methods(b, spec, idata)
    section(6)
    _section_provenance(b, spec, survey, idata, manifest or {}, quick)

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
