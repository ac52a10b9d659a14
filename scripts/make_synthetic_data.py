"""Generate the bundled synthetic survey ``hitachi_synthetic.csv`` (seeded, byte-reproducible).

The data are SYNTHETIC: drawn from a made-up generative model shaped like the
published findings of the 2019 Hitachi-area SME study.  They are not the study's
data (which are not public) and carry no information about real firms.

Usage::

    python scripts/make_synthetic_data.py                 # writes src/smeintl/bundled/hitachi_synthetic.csv
    python scripts/make_synthetic_data.py --out x.csv     # somewhere else
    python scripts/make_synthetic_data.py --check         # print the shape summary only

Running it twice gives byte-identical files (fixed seed, numpy ``default_rng``,
fixed number formatting, ``\\n`` line ends, UTF-8 without BOM).  Only numpy is
needed; the package is not imported, so the file does not change when the
package's code does.

Generative model (41 firms ``F01``..``F41``, 5 industries):

1. Two latent traits per firm, internationalization ``t1`` and independence ``t2``,
   bivariate normal with correlation 0.4, unit variances and industry-specific
   means (:data:`INDUSTRIES`): electronic components most international, metal
   processing and plastics least; electrical machinery (the core maker's own
   field) least independent.
2. Items, in the spec order of the bundled ``hitachi.toml``:

   * likert 1-5 items: ordered logit on their trait (loading, four cutpoints);
   * ``intl_stage`` (0-4): ordered logit on ``t1``; a stage-0 firm does not export;
   * ``export_share`` (%): exactly 0 for stage-0 firms, else a logit-normal share
     (at least 1%) rising with ``t1``;
   * ``n_countries``: 0 for stage-0 firms, else 1 + Poisson rising with ``t1``
     (may exceed the cap 10 of the spec);
   * ``top_customer_share`` and ``core_group_share`` (%, reverse coded in the
     spec): logit-normal shares falling with ``t2``; ``core_group_share`` is
     exactly 0 with a probability rising with ``t2``; the largest customer's share
     is at least 100 / number of customers;
   * ``n_customers``: 1 + Poisson rising with ``t2`` (may exceed the cap 20);
   * ``own_product_share`` (%): exactly 0 (pure subcontracting) with a
     probability falling with ``t2``, else a logit-normal share rising with ``t2``.
3. ``outcome`` (operating margin, %, one decimal) = 2.5 + 0.9 t1 + 1.1 t2 + N(0, 1.5);
   ``employees`` = exp(log 45 + 0.35 t1 + 0.15 t2 + N(0, 0.6)), rounded, within 4-299.
4. Item non-response: one firm leaves four items empty; 14 further cells are
   emptied at random, percent items three times as likely (18 of 615 cells, 2.9%);
   no item is empty for every firm.

Shape under the deterministic method (items scaled to 0-1, reverse coded 1 - v,
sub-dimension = mean of its items present, a sub-dimension with fewer than half
of its items is missing, index = mean of the sub-dimensions present; thresholds
0.5).  :func:`shape` computes it and :func:`check_shape` states the targets
(7-9 internationalizing firms, >= 70% independent, no MNC follower, about 3%
missing cells with one firm missing several, industry means differing by >= 0.1
with electronic components the most international and electrical machinery the
least independent industry).  The seed :data:`SEED` = 26 is the first seed from 1
upwards whose data meet all targets (about one seed in eight does; the MNC-follower
and 7-9 targets miss most often).  The script refuses to write data that miss a
target unless ``--force``.  With the default seed::

    internationalizing (doi >= 0.5):                 8 of 41 (20%)
    independent (independence >= 0.5):              34 of 41 (83%)
    MNC followers (doi >= 0.5, independence < 0.5):  0
    missing answers: 18 cells (2.9%), at most 4 per firm
    industry means (n, doi, independence):
      electrical machinery    11  0.31  0.55
      metal processing        10  0.24  0.70
      general machinery        8  0.24  0.83
      electronic components    7  0.55  0.84
      plastics and other       5  0.34  0.81

(``python scripts/make_synthetic_data.py --check`` prints this summary.)
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

import numpy as np

#: the seed of the bundled file (see the module docstring for how it was chosen)
SEED = 26
N_FIRMS = 41
#: industry: (number of firms, mean of t1 internationalization, mean of t2 independence)
INDUSTRIES: dict[str, tuple[int, float, float]] = {
    "electrical machinery": (11, 0.45, 0.55),
    "metal processing": (10, -0.05, 0.95),
    "general machinery": (8, 0.35, 1.25),
    "electronic components": (7, 0.95, 1.20),
    "plastics and other": (5, -0.05, 1.30),
}
LATENT_CORRELATION = 0.4

#: item name -> (scale, construct, sub-dimension, reverse, min, max or cap); spec order
ITEMS: dict[str, tuple[str, str, str, bool, float, float]] = {
    "intl_stage": ("stage", "doi", "stage", False, 0, 4),
    "export_share": ("percent", "doi", "performance", False, 0, 100),
    "n_countries": ("count", "doi", "performance", False, 0, 10),
    "overseas_growth": ("likert", "doi", "performance", False, 1, 5),
    "coord_foreign_partners": ("likert", "doi", "coordination", False, 1, 5),
    "coord_trade_practice": ("likert", "doi", "coordination", False, 1, 5),
    "mgmt_intl_necessity": ("likert", "doi", "recognition", False, 1, 5),
    "mgmt_intl_plan": ("likert", "doi", "recognition", False, 1, 5),
    "top_customer_share": ("percent", "independence", "dependence", True, 0, 100),
    "core_group_share": ("percent", "independence", "dependence", True, 0, 100),
    "n_customers": ("count", "independence", "diversity", False, 0, 20),
    "own_product_share": ("percent", "independence", "technology", False, 0, 100),
    "rnd_capability": ("likert", "independence", "technology", False, 1, 5),
    "price_bargaining": ("likert", "independence", "bargaining", False, 1, 5),
    "proposal_capability": ("likert", "independence", "bargaining", False, 1, 5),
}
#: likert / stage items: (trait index, loading, cutpoints)
ORDINAL: dict[str, tuple[int, float, tuple[float, ...]]] = {
    "intl_stage": (0, 2.0, (1.5, 3.2, 4.2, 5.2)),
    "overseas_growth": (0, 1.5, (-0.3, 1.0, 2.2, 3.2)),
    "coord_foreign_partners": (0, 1.6, (-0.3, 0.9, 2.0, 3.0)),
    "coord_trade_practice": (0, 1.6, (0.0, 1.2, 2.3, 3.3)),
    "mgmt_intl_necessity": (0, 1.2, (-2.0, -0.8, 0.3, 1.5)),
    "mgmt_intl_plan": (0, 1.5, (-0.2, 1.0, 2.0, 3.0)),
    "rnd_capability": (1, 1.4, (-2.0, -0.8, 0.4, 1.8)),
    "price_bargaining": (1, 1.3, (-2.0, -0.7, 0.6, 2.0)),
    "proposal_capability": (1, 1.4, (-2.2, -0.9, 0.4, 1.8)),
}
COLUMNS = ("firm_id", "industry", "outcome", "employees", *ITEMS)
CONSTRUCTS = {
    "doi": ("stage", "performance", "coordination", "recognition"),
    "independence": ("dependence", "diversity", "technology", "bargaining"),
}


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate(seed: int = SEED) -> list[dict[str, object]]:
    """Draw the synthetic survey: one dict per firm, keys :data:`COLUMNS`, NaN = missing."""
    rng = np.random.default_rng(seed)
    n = N_FIRMS
    names = list(INDUSTRIES)
    sizes = [INDUSTRIES[k][0] for k in names]
    assert sum(sizes) == n
    industry_code = rng.permutation(np.repeat(np.arange(len(names)), sizes))
    mu = np.array([[INDUSTRIES[k][1], INDUSTRIES[k][2]] for k in names])[industry_code]
    chol = np.linalg.cholesky(np.array([[1.0, LATENT_CORRELATION], [LATENT_CORRELATION, 1.0]]))
    trait = mu + rng.standard_normal((n, 2)) @ chol.T
    t1, t2 = trait[:, 0], trait[:, 1]

    def ordinal(name: str) -> np.ndarray:
        k, loading, cuts = ORDINAL[name]
        ystar = loading * trait[:, k] + rng.logistic(size=n)
        return (ystar[:, None] > np.asarray(cuts)).sum(axis=1).astype(float)

    def share(mean_logit: np.ndarray, sd: float) -> np.ndarray:
        return np.round(100 * _expit(mean_logit + sd * rng.standard_normal(n)))

    x: dict[str, np.ndarray] = {}
    x["intl_stage"] = ordinal("intl_stage")
    exporter = x["intl_stage"] > 0
    x["export_share"] = np.where(exporter, np.maximum(1, share(-2.3 + 0.9 * t1, 0.6)), 0.0)
    x["n_countries"] = np.where(exporter, 1 + rng.poisson(np.exp(0.2 + 0.7 * t1)), 0).astype(float)
    for name in ("overseas_growth", "coord_foreign_partners", "coord_trade_practice",
                 "mgmt_intl_necessity", "mgmt_intl_plan"):
        x[name] = 1 + ordinal(name)
    top = share(0.2 - 0.9 * t2, 0.5)
    no_core = rng.random(n) < _expit(-0.8 + 1.5 * t2)
    x["core_group_share"] = np.where(no_core, 0.0, share(-0.3 - 1.0 * t2, 0.6))
    x["n_customers"] = (1 + rng.poisson(np.exp(2.1 + 0.5 * t2))).astype(float)
    x["top_customer_share"] = np.maximum(top, np.ceil(100 / x["n_customers"]))
    pure_sub = rng.random(n) < _expit(-0.8 - 1.5 * t2)
    x["own_product_share"] = np.where(pure_sub, 0.0, share(-1.2 + 1.0 * t2, 0.6))
    for name in ("rnd_capability", "price_bargaining", "proposal_capability"):
        x[name] = 1 + ordinal(name)

    outcome = np.round(2.5 + 0.9 * t1 + 1.1 * t2 + 1.5 * rng.standard_normal(n), 1)
    employees = np.clip(np.round(np.exp(math.log(45) + 0.35 * t1 + 0.15 * t2
                                        + 0.6 * rng.standard_normal(n))), 4, 299)

    # item non-response: one firm with several gaps, then scattered cells
    item_names = list(ITEMS)
    answers = np.column_stack([x[name] for name in item_names])
    heavy = rng.integers(n)
    answers[heavy, rng.choice(len(item_names), size=4, replace=False)] = np.nan
    weight = np.array([3.0 if ITEMS[k][0] == "percent" else 1.0 for k in item_names])
    cell_p = np.tile(weight / weight.sum() / n, n)
    cell_p[heavy * len(item_names):(heavy + 1) * len(item_names)] = 0.0
    cells = rng.choice(n * len(item_names), size=14, replace=False, p=cell_p / cell_p.sum())
    answers.reshape(-1)[cells] = np.nan

    rows = []
    for f in range(n):
        row: dict[str, object] = {
            "firm_id": f"F{f + 1:02d}",
            "industry": names[industry_code[f]],
            "outcome": float(outcome[f]),
            "employees": int(employees[f]),
        }
        row.update({k: float(answers[f, j]) for j, k in enumerate(item_names)})
        rows.append(row)
    return rows


def to_csv_text(rows: list[dict[str, object]]) -> str:
    """CSV text with fixed formatting: whole numbers for items, one decimal for outcome."""
    buf = io.StringIO()
    buf.write(",".join(COLUMNS) + "\n")
    for row in rows:
        cells = []
        for col in COLUMNS:
            v = row[col]
            if isinstance(v, str):
                cells.append(v)
            elif isinstance(v, float) and math.isnan(v):
                cells.append("")
            elif col == "outcome":
                cells.append(f"{v:.1f}")
            else:
                cells.append(str(int(v)))
        buf.write(",".join(cells) + "\n")
    return buf.getvalue()


def shape(rows: list[dict[str, object]]) -> dict[str, object]:
    """Deterministic-method summary (own minimal implementation; no package import)."""
    scaled = {}
    for k, (scale, _c, _s, reverse, lo, hi) in ITEMS.items():
        v = np.array([row[k] for row in rows], dtype=float)
        if scale == "likert":
            s = (v - lo) / (hi - lo)
        elif scale == "stage":
            s = v / hi
        elif scale == "percent":
            s = v / 100
        elif scale == "count":
            s = np.minimum(v, hi) / hi
        else:
            s = v
        scaled[k] = 1 - s if reverse else s
    index = {}
    for cname, subs in CONSTRUCTS.items():
        sub_scores = []
        for sd in subs:
            cols = np.column_stack([scaled[k] for k, m in ITEMS.items() if m[2] == sd])
            present = (~np.isnan(cols)).sum(axis=1)
            total = np.where(np.isnan(cols), 0.0, cols).sum(axis=1)
            score = np.where(present * 2 < cols.shape[1], np.nan, total / np.maximum(present, 1))
            sub_scores.append(score)
        index[cname] = np.nanmean(np.column_stack(sub_scores), axis=1)
    doi, ind = index["doi"], index["independence"]
    industries = np.array([row["industry"] for row in rows])
    n_missing = np.array([sum(1 for k in ITEMS if math.isnan(row[k])) for row in rows])
    by_industry = {
        g: (int((industries == g).sum()), float(doi[industries == g].mean()), float(ind[industries == g].mean()))
        for g in INDUSTRIES
    }
    return {
        "n": len(rows),
        "internationalizing": int((doi >= 0.5).sum()),
        "independent": int((ind >= 0.5).sum()),
        "mnc_followers": int(((doi >= 0.5) & (ind < 0.5)).sum()),
        "missing_cells": int(n_missing.sum()),
        "max_missing_per_firm": int(n_missing.max()),
        "items_all_missing": [k for k in ITEMS if all(math.isnan(row[k]) for row in rows)],
        "by_industry": by_industry,
        "corr_doi_independence": float(np.corrcoef(doi, ind)[0, 1]),
    }


def check_shape(summary: dict[str, object]) -> list[str]:
    """Targets the bundled data must meet; returns the ones missed (``[]`` = all met)."""
    missed = []
    n = summary["n"]
    if not 7 <= summary["internationalizing"] <= 9:
        missed.append(f"internationalizing firms {summary['internationalizing']}, want 7-9 of {n}")
    if summary["independent"] < 0.7 * n:
        missed.append(f"independent firms {summary['independent']}, want >= 70% of {n}")
    if summary["mnc_followers"] != 0:
        missed.append(f"MNC followers {summary['mnc_followers']}, want 0")
    if not 0.02 * n * len(ITEMS) <= summary["missing_cells"] <= 0.04 * n * len(ITEMS):
        missed.append(f"missing cells {summary['missing_cells']}, want about 3%")
    if summary["max_missing_per_firm"] < 3:
        missed.append("no firm with several missing answers")
    if summary["items_all_missing"]:
        missed.append(f"items missing for every firm: {summary['items_all_missing']}")
    doi_means = [v[1] for v in summary["by_industry"].values()]
    ind_means = [v[2] for v in summary["by_industry"].values()]
    if max(doi_means) - min(doi_means) < 0.1 or max(ind_means) - min(ind_means) < 0.1:
        missed.append("industry means differ by less than 0.1 on an index")
    by = summary["by_industry"]
    if max(by, key=lambda g: by[g][1]) != "electronic components":
        missed.append("electronic components should have the highest mean doi")
    if min(by, key=lambda g: by[g][2]) != "electrical machinery":
        missed.append("electrical machinery should have the lowest mean independence")
    return missed


def format_summary(summary: dict[str, object]) -> str:
    n = summary["n"]
    lines = [
        f"firms: {n}",
        f"internationalizing (doi >= 0.5): {summary['internationalizing']} ({summary['internationalizing'] / n:.0%})",
        f"independent (independence >= 0.5): {summary['independent']} ({summary['independent'] / n:.0%})",
        f"MNC followers (doi >= 0.5, independence < 0.5): {summary['mnc_followers']}",
        f"missing answers: {summary['missing_cells']} cells "
        f"({summary['missing_cells'] / (n * len(ITEMS)):.1%}), at most {summary['max_missing_per_firm']} per firm",
        f"correlation doi-independence: {summary['corr_doi_independence']:.2f}",
        "industry means (n, doi, independence):",
    ]
    for g, (k, d, i) in summary["by_industry"].items():
        lines.append(f"  {g:<22} {k:>3}  {d:.2f}  {i:.2f}")
    return "\n".join(lines)


#: the bundled file, relative to the repository root
BUNDLED = "src/smeintl/bundled/hitachi_synthetic.csv"


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=here / BUNDLED,
                    help=f"output CSV (default: {BUNDLED})")
    ap.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED}, the bundled file)")
    ap.add_argument("--check", action="store_true", help="print the shape summary, write nothing")
    ap.add_argument("--force", action="store_true", help="write even if the shape targets are missed")
    args = ap.parse_args(argv)

    rows = generate(args.seed)
    summary = shape(rows)
    missed = check_shape(summary)
    if args.check:
        print(format_summary(summary))
        for m in missed:
            print(f"target missed: {m}")
        return 1 if missed else 0
    if missed and not args.force:
        print("shape targets missed (nothing written; --force writes anyway):", file=sys.stderr)
        for m in missed:
            print(f"  {m}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(to_csv_text(rows).encode("utf-8"))
    print(f"wrote {args.out} ({summary['n']} firms, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
