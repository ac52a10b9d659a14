"""The report's sections on the data and the results: data overview, the
deterministic results, the measurement model, and the comparison of the two.
Each takes the builder and the :class:`~smeintl.report.base.ReportInputs`."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .base import ReportInputs
from .blocks import _DASH, _Builder, _f, _int, _interval, _isnan, _List, _p, _pct, _pretty, _table

def _section_data(b: _Builder, r: ReportInputs) -> None:
    spec, survey, det = r.spec, r.survey, r.det
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
        rng = it.family.range_text(it)
        rows.append([it.name, it.construct, it.subdimension, it.scale, rng, "yes" if it.reverse else "",
                     str(m), _pct(m / n if n else float("nan"))])
    b.add(_table(["item", "construct", "sub-dimension", "scale", "range", "reverse", "missing", "missing %"], rows,
                 numeric=[False, False, False, False, False, False, True, True]))
    out = det.summary.get("outcome", {}) if det is not None else {}
    if out.get("available"):
        b.p(f"Outcome column present for {out.get('n_with_outcome')} firms.")
    elif out:
        b.p(f"Outcome: {out.get('note', 'not available')}.")


def _section_deterministic(b: _Builder, r: ReportInputs) -> None:
    spec, det = r.spec, r.det
    s = det.summary
    st = s["settings"]
    t = s["types"]
    if not t["names"]:
        b.p(f"Indices, flags and reliability only: {spec.skipped_steps()['typology']}. These are the numbers "
            "the original method reports, without uncertainty.")
    else:
        _types_part(b, s, st)
    _flags_part(b, r)


def _types_part(b: _Builder, s, st) -> None:
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


def _flags_part(b: _Builder, r: ReportInputs) -> None:
    spec, det = r.spec, r.det  # noqa: F841
    s = det.summary
    st = s["settings"]
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


def _loo_part(b: _Builder, fs) -> None:
    """The fit's leave-one-firm-out LOO (latent scores integrated out), or why there is none."""
    b.h(3, "Leave-one-firm-out predictive accuracy")
    loo = fs.loo
    if loo is None:
        b.p(f"Not computed: {fs.loo_note}.")
        return
    counts = ", ".join(f"{k} {v}" for k, v in loo.k_counts().items())
    b.p(f"elpd_loo {loo.elpd:.1f} (se {loo.se:.1f}), p_loo {loo.p_loo:.1f}: the expected log density of a "
        f"left-out firm's answers, summed over the firms, with the latent scores integrated out ({loo.method}; "
        f"{loo.draws} draws). It compares models of the same data (smeintl compare-fits), not data sets. "
        f"Pareto k: {counts}.")
    bad = loo.flagged()
    if bad:
        b.p("Firms whose left-out term is unreliable (k > 0.7): "
            + ", ".join(f"{f} ({k:.2f})" for f, k in bad) + ".", cls="bad")


def _invariance_part(b: _Builder, fs, attrs) -> None:
    """Items whose parameters differ across groups (fits with group deviations only)."""
    table = getattr(fs, "invariance", None)
    if table is None or not len(table):
        return
    a = table.attrs
    b.h(3, "Measurement invariance across industries")
    b.p(f"Invariance level {attrs.get('invariance', a.get('invariance', ''))}: each item's loading and "
        f"intercept (cutpoints) may differ by industry (docs/invariance.md). Per item, its largest absolute "
        f"industry deviation with its 90% interval and P(deviation > {float(a.get('delta', 0.3)):g}); flagged "
        f"where that probability exceeds {float(a.get('flag_prob', 0.9)):g}.")
    rows = [[str(r.item), str(r.parameter), _interval(r.mean, r.lower, r.upper), _p(r.p_exceeds),
             f"{r.group} ({r.deviation:+.2f})", "FLAGGED" if r.flagged else ""]
            for r in table.itertuples(index=False)]
    b.add(_table(["item", "parameter", "largest |deviation| [90%]", "P(> delta)", "industry (deviation)", ""],
                 rows, numeric=[False, False, True, True, False, False]))


def _section_model(b: _Builder, r: ReportInputs) -> None:
    from .. import plots

    spec, idata, fs = r.spec, r.idata, r.fit_summary
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

    _loo_part(b, fs)
    _invariance_part(b, fs, a)

    b.h(3, "Convergence diagnostics")
    from ..measurement import SCORE_RULE, THRESHOLDS

    d = fs.diagnostics
    checks = [
        ("max R-hat, model parameters", _f(d.max_rhat, 3), f"<= {THRESHOLDS['rhat']}", d.max_rhat <= THRESHOLDS["rhat"],
         d.worst.get("rhat", "")),
    ]
    if d.scores:
        c = d.scores
        checks.append((f"per-firm scores over R-hat {THRESHOLDS['rhat']}",
                       f"{_int(c['n_over'])} of {_int(c['n'])} (max {_f(c['max_rhat'], 3)})",
                       f"<= {_int(c['bound_over'])} (chance: {c['expected_over']:.1f}); max <= {SCORE_RULE['max']}",
                       not c["failed"], c.get("variables", "")))
    elif d.scores_drawn:
        checks.append(("per-firm scores", f"drawn given each draw ({d.scores_drawn})",
                       "converge with the model parameters", None, "eta"))
    checks += [
        ("min bulk ESS", _f(d.min_ess_bulk, 0), f">= {THRESHOLDS['ess_bulk']}", d.min_ess_bulk >= THRESHOLDS["ess_bulk"],
         d.worst.get("ess_bulk", "")),
        ("min tail ESS", _f(d.min_ess_tail, 0), f">= {THRESHOLDS['ess_tail']}", d.min_ess_tail >= THRESHOLDS["ess_tail"],
         d.worst.get("ess_tail", "")),
        ("divergent transitions", str(d.divergences), f"<= {THRESHOLDS['divergences']}",
         d.divergences <= THRESHOLDS["divergences"], ""),
        ("min E-BFMI", _f(d.min_ebfmi, 3), f">= {THRESHOLDS['ebfmi']}",
         (not np.isfinite(d.min_ebfmi)) or d.min_ebfmi >= THRESHOLDS["ebfmi"], ""),
    ]
    rows = [[n, v, t, "not diagnosed" if ok is None else "ok" if ok else "FAILED", w] for n, v, t, ok, w in checks]
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


def _section_comparison(b: _Builder, r: ReportInputs) -> None:
    from .. import plots

    spec, det, comp = r.spec, r.det, r.comparison
    pct = f"{100 * comp.prob:g}%"
    b.p(
        f"The deterministic method re-run on {comp.n_draws} posterior draws: on the firms' true scores (no "
        "measurement error) and on surveys replicated from the model (a re-measurement of the same firms). "
        f"Intervals are {pct} equal-tailed."
    )
    for n in comp.notes:
        b.p(f"Note: {n}", cls="bad")
    b.h(3, "Findings")
    titles = {f.key: f.title for f in spec.findings}
    if not len(comp.findings):
        b.p("The instrument declares no findings (no [[findings]] in the spec): nothing to test.")
    rows = []
    for r in comp.findings.itertuples(index=False):
        det_word = _DASH if r.deterministic is None or _isnan(r.deterministic) else (
            "holds" if bool(r.deterministic) else "does not hold")
        dval = _DASH if _isnan(r.deterministic_value) else f"{r.deterministic_quantity} = {_f(r.deterministic_value)}"
        post = _DASH if _isnan(r.posterior_median) else (
            f"{r.posterior_quantity}: {_interval(r.posterior_median, r.posterior_lo, r.posterior_hi)}")
        rows.append([titles.get(r.finding, r.finding), det_word, dval, _p(r.posterior_probability),
                     _p(r.replicated_probability), post, str(r.verdict)])
    if rows:
        b.add(_table(["finding", "deterministic", "deterministic value", "P(holds)", "P(rep)",
                      f"posterior quantity, median [{pct}]", "verdict"], rows,
                     numeric=[False, False, False, True, True, False, False],
                     caption="P(holds): posterior probability that the finding holds (true scores, latent "
                             "parameters); P(rep): share of replicated surveys on which the original method states "
                             "it. Definitions in the methods appendix."))
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
