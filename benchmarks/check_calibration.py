"""Checks of the model checks: how the global posterior predictive p-values of
:func:`smeintl.measurement.fit_checks.fit_checks` behave when the model is right and when
it leaves out a cross-loading.

For each case a base survey is simulated and fitted; its posterior draws are the truths
of the replications.  Replication ``r`` takes the base fit's ``r``-th draw (evenly spaced
over the posterior), simulates a survey of the same firms from the model at that draw
(new latent scores from the population model), refits the model and runs the checks
("correct").  Unless ``--no-misspecified``, it also simulates, from the same draw, a survey
in which item x4 loads on the first construct too, with ``kappa`` times its own loading
(default 0.75), and fits the model without that loading ("cross-loading").  Both cases
have six items on two constructs (correlation 0.3) with standardized loadings of 0.8
in the base survey: continuous items, or 5-point ordinal items (ordered logit).

Expected: under the null the global PPPs are spread out, conservative rather than piled
near 0 (fewer than 10% below 0.05); with the cross-loading most are below 0.05.

    .venv/bin/python benchmarks/check_calibration.py --reps 50                  # both cases
    .venv/bin/python benchmarks/check_calibration.py --cases ordinal --reps 20 --out /tmp/cc

Writes ``results.csv`` (one row per replication and scenario: the PPPs of the
chi-square-type discrepancy, of the pairwise G² and of SRMR, the SRMR and, for continuous items, BRMSEA and
BCFI posterior means, the fit's wall time) and ``summary.md`` (per case and scenario:
replications, share of PPPs below 0.05 and 0.10, mean and quartiles of the PPPs) under
``--out`` (default ``benchmarks/check-calibration/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from smeintl.data import survey_from_frame
from smeintl.measurement import ItemLayout, MeasurementModel, draw_items, fit_standardization, posterior_params
from smeintl.measurement.fit_checks import fit_checks
from smeintl.spec import parse_spec

OUT = Path(__file__).resolve().parent / "check-calibration"
#: per case: the scale of the six items, the number of firms and the default cross-loading
#: (a multiple of item x4's own loading)
CASES = {"continuous": ("continuous", 300, 0.75), "ordinal": ("likert", 300, 0.75)}
#: the ordinal base survey's loadings on the logit scale: 0.8 x 3 = 2.4, standardized 2.4 /
#: sqrt(2.4^2 + pi^2 / 3) = 0.80, as the continuous items' 0.8 / sqrt(0.8^2 + 0.6^2)
ORDINAL_SCALE = 3.0


def spec_text(scale: str) -> str:
    rng = "min = 0\nmax = 10\n" if scale == "continuous" else "min = 1\nmax = 5\n"
    items = "".join(f'\n[[items]]\nname = "x{k}"\nconstruct = "{"f1" if k <= 3 else "f2"}"\nscale = "{scale}"\n{rng}'
                    for k in range(1, 7))
    return ('[instrument]\nname = "calibration"\nid_column = "id"\ngroup_column = ""\noutcome_column = ""\n'
            'extra_columns = []\n\n[[constructs]]\nname = "f1"\n\n[[constructs]]\nname = "f2"\n' + items)


def base_frame(scale: str, F: int, seed: int) -> pd.DataFrame:
    """The base survey: two factors (correlation 0.3), three items each with standardized
    loadings 0.8, no cross-loading."""
    rng = np.random.default_rng(seed)
    eta = rng.multivariate_normal([0, 0], [[1, 0.3], [0.3, 1]], F)
    out: dict[str, object] = {"id": [f"p{f}" for f in range(F)]}
    for k in range(6):
        lin = 0.8 * eta[:, k // 3]
        if scale == "continuous":
            out[f"x{k + 1}"] = np.round(5 + 1.5 * (lin + 0.6 * rng.standard_normal(F)), 3)
        else:
            ystar = ORDINAL_SCALE * lin + rng.logistic(size=F)
            out[f"x{k + 1}"] = 1 + np.searchsorted([-2.5, -0.9, 0.9, 2.5], ystar)
    return pd.DataFrame(out)


def simulate(layout: ItemLayout, P: dict[str, np.ndarray], s: int, F: int, std, rng, kappa: float = 0.0) -> np.ndarray:
    """Answers of ``F`` new firms from the model at posterior draw ``s``; with ``kappa`` > 0
    item x4 also loads on the first construct (``kappa`` times its own loading): its latent
    score is taken from a third, auxiliary construct eta_2 + kappa eta_1."""
    p = {k: v[s] for k, v in P.items() if k != "eta"}
    C = len(layout.constructs)
    R = p["corr"] if "corr" in p else np.ones((1, 1))
    eta = rng.standard_normal((F, C)) @ np.linalg.cholesky(R).T
    lay = layout
    if kappa:
        k4 = layout.names.index("x4")
        eta = np.column_stack([eta, eta[:, layout.construct[k4]] + kappa * eta[:, 0]])
        construct = layout.construct.copy()
        construct[k4] = C
        lay = dataclasses.replace(layout, construct=construct, constructs=(*layout.constructs, "aux"))
    X = draw_items(p, eta, lay, rng, standardization=std)
    return np.round(X, 4)


def run_case(name: str, reps: int, seed: int, misspecified: bool, kappa: float | None, draws: int, tune: int,
             log, out: Path | None = None, partial: list[dict] | None = None) -> list[dict]:
    """The replications of one case; with ``out``, ``results.csv`` there is rewritten after
    each one (``partial``: the rows of the cases before)."""
    scale, F, kappa_default = CASES[name]
    kappa = kappa_default if kappa is None else kappa
    spec = parse_spec(spec_text(scale), f"{name}.toml")
    layout = ItemLayout.from_spec(spec)
    settings = dict(draws=draws, tune=tune, chains=2, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = MeasurementModel(spec).fit(survey_from_frame(base_frame(scale, F, seed), spec, "base"),
                                          random_seed=seed, **settings)
    P = posterior_params(base, spec)
    std = fit_standardization(base)
    S = P["loading"].shape[0]
    which = np.round(np.linspace(0, S - 1, reps)).astype(int)
    rows = []
    scenarios = [("correct", 0.0)] + ([("cross-loading", kappa)] if misspecified else [])
    for r, s in enumerate(which):
        for scenario, k in scenarios:
            rng = np.random.default_rng([seed, r, int(k * 1000)])
            X = simulate(layout, P, int(s), F, std, rng, k)
            frame = pd.DataFrame(X, columns=list(layout.names))
            frame.insert(0, "id", [f"r{r}f{f}" for f in range(F)])
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = MeasurementModel(spec).fit(survey_from_frame(frame, spec, f"rep{r}"), random_seed=seed + r,
                                                 **settings)
            t_fit = time.perf_counter() - t
            c = fit_checks(fit, seed=seed + r)
            g = c.global_checks.set_index("check")
            row = {"case": name, "scenario": scenario, "rep": r, "draw": int(s), "kappa": k, "firms": F,
                   "global_check": c.global_check, "ppp_global": c.global_ppp,
                   "ppp_g2": float(g.loc["pairwise_g2", "ppp"]) if "pairwise_g2" in g.index else np.nan,
                   "ppp_srmr": float(g.loc["srmr", "ppp"]),
                   "srmr": float(g.loc["srmr", "estimate"]), "srmr_adjusted": float(g.loc["srmr_adjusted", "estimate"]),
                   "brmsea": float(g.loc["brmsea", "estimate"]) if "brmsea" in g.index else np.nan,
                   "bcfi": float(g.loc["bcfi", "estimate"]) if "bcfi" in g.index else np.nan,
                   "items_flagged": int(c.items["flagged"].sum()), "pairs_flagged": int(c.pairs["flagged"].sum()),
                   "fit_s": t_fit, "checks_s": float(c.settings["seconds"]),
                   "max_rhat": float(json_get(fit.attrs.get("diagnostics"), "max_rhat"))}
            rows.append(row)
            if partial is not None:
                pd.DataFrame(partial + rows).to_csv(out / "results.csv", index=False)
            print(f"{name} {scenario:<13} rep {r:3d}: PPP {row['ppp_global']:.3f} (G² {row['ppp_g2']:.3f}, "
                  f"SRMR {row['ppp_srmr']:.3f}), fit {t_fit:.0f} s", file=log, flush=True)
    return rows


def json_get(text, key):
    import json

    try:
        return json.loads(text or "{}").get(key, np.nan)
    except ValueError:
        return np.nan


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (case, scenario), d in df.groupby(["case", "scenario"], sort=False):
        for col in ("ppp_global", "ppp_g2", "ppp_srmr"):
            v = d[col].dropna()
            if not len(v):
                continue
            out.append({"case": case, "scenario": scenario, "ppp": col.replace("ppp_", ""), "reps": len(v),
                        "share < 0.05": float((v < 0.05).mean()), "share < 0.10": float((v < 0.10).mean()),
                        "mean": float(v.mean()), "q25": float(v.quantile(0.25)), "median": float(v.median()),
                        "q75": float(v.quantile(0.75))})
    return pd.DataFrame(out)


def markdown(df: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (numbers to 3 decimals)."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r] for r in df.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    ap.add_argument("--reps", type=int, default=50, help="replications per case and scenario (default 50)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-misspecified", dest="misspecified", action="store_false",
                    help="only the correct-model scenario")
    ap.add_argument("--kappa", type=float, default=None,
                    help="cross-loading as a multiple of x4's own loading (default 0.75)")
    ap.add_argument("--draws", type=int, default=250)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.perf_counter()
    for case in a.cases:
        rows += run_case(case, a.reps, a.seed, a.misspecified, a.kappa, a.draws, a.tune, sys.stdout, a.out, list(rows))
    df = pd.DataFrame(rows)
    table = summarize(df)
    minutes = (time.perf_counter() - t0) / 60
    md = ["# Checks of the model checks", "",
          f"`benchmarks/check_calibration.py --reps {a.reps} --seed {a.seed} --cases {' '.join(a.cases)}` "
          f"({a.draws} draws after {a.tune} tuning steps, 2 chains per fit; {minutes:.0f} minutes).", "",
          "Global PPPs of surveys simulated from a fitted model's posterior draws (correct) and with a cross-loading "
          "the model leaves out (x4 on the first construct, kappa times its own loading). `global`: the "
          "likelihood-ratio discrepancy (continuous: `chi2`; ordinal: `rank_lr`, on the items' normal scores); "
          "`g2`: the pairwise G² (ordinal); `srmr`: SRMR's PPP.", "",
          markdown(table), ""]
    (a.out / "summary.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
