"""The report's closing sections: robustness checks, the methods appendix (every
definition, the model, priors and sampler settings) and provenance."""

from __future__ import annotations

import json
import numbers
import time
from typing import Mapping

import pandas as pd

from .base import ReportInputs
from .blocks import _DASH, _Builder, _Defs, _f, _frame_table, _List, _pct, _Pre, _pretty, _table

def _section_robustness(b: _Builder, r: ReportInputs) -> None:
    robustness = r.robustness
    titles = {f.key: f.title for f in r.spec.findings}
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
    if isinstance(matrix, pd.DataFrame) and len(matrix.columns) and not len(matrix.index):
        b.p("The instrument declares no findings: the checks below report their own numbers only.")
    elif isinstance(matrix, pd.DataFrame) and len(matrix.columns):
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

def _section_methods(b: _Builder, r: ReportInputs) -> None:
    from ..families import family_of
    from ..measurement import THRESHOLDS

    spec, idata = r.spec, r.idata
    b.h(3, "Deterministic method")
    scales = list(dict.fromkeys(it.scale for it in spec.items))
    b.add(_List([
        "Item scaling to [0, 1]: " + "; ".join(f"{s}: {family_of(s).scaling_text}" for s in scales)
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
        rows.append([s, family_of(s).model_text, ", ".join(its)])
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
        *([text] if idata is not None and (text := _integrated_text(idata)) else []),
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
                "mass_matrix_eigval_cutoff", "max_tree_depth", "chains", "tune", "draws",
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
    if not spec.findings:
        b.p("The instrument declares no findings (no [[findings]] in the spec).")
        return
    b.add(_Defs([(f"{f.title} ({f.key})", f.definition) for f in spec.findings]))
    b.p("Numbers used by these definitions (each finding's kind and parameters, from the spec): "
        + "; ".join(f"{f.key}: {f.kind}, {f.parameter_text()}" for f in spec.findings)
        + "; flags: " + ", ".join(f"{c.flag_name} = {c.name} >= {spec.thresholds[c.name]:g}" for c in spec.constructs)
        + ".", cls="muted")


def _section_provenance(b: _Builder, r: ReportInputs) -> None:
    spec, survey, idata, quick = r.spec, r.survey, r.idata, r.quick
    m = dict(r.manifest or {})
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


def _integrated_text(idata) -> str | None:
    """How a fit with its latent scores integrated out computed its likelihood (None for
    the latent parameterization)."""
    import json

    from ..measurement.quadrature import HALF_WIDTH, POINTS

    a = idata.attrs
    par = str(a.get("parameterization", "latent"))
    if par == "marginal":
        return ("This fit integrates the latent scores out exactly (parameterization marginal): each firm's "
                "standardized answers are multivariate normal with mean a + Lambda mu_g(f) and covariance "
                "Lambda R Lambda' + Psi on its answered items; the scores reported are drawn after sampling from "
                "their exact conditional normal given each draw's parameters.")
    if par == "quadrature":
        q = json.loads(a.get("quadrature", "{}") or "{}")
        check = (f" Checked against {q['check_points']} points on +-{q['check_half_width']:g} sd at "
                 f"{q['check_draws']} draws: a firm's log-likelihood changed by at most {q['max_abs_error']:.2g} "
                 f"(tolerance {q['tolerance']})." if q else "")
        return ("This fit integrates each firm's latent score out of the likelihood (parameterization "
                "quadrature): p(y_f) = integral of prod_i p(y_fi | eta) N(eta | mu_g(f), 1) d eta, evaluated on "
                f"{q.get('points', POINTS)} equally spaced points on mu_g(f) +- {q.get('half_width', HALF_WIDTH):g} sd "
                "(the trapezoidal rule), each distinct row of answers once." + check
                + " The scores reported are drawn after sampling from their conditional distribution on the grid "
                "given each draw's parameters.")
    return None

