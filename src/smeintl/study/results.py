"""The tables and figures of a study from its replication files: ``results.csv``,
``summary.csv``, ``conditions.csv``, ``timings.csv``, the SBC tables and
``figures/*.png`` (:func:`collect`), and :class:`StudyRun`, what a run did and wrote."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .config import DESIGNS, PROB, RESULT_COLUMNS, Study, load_study
from .store import _atomic_write, _read_rep, finished_tasks


@dataclass
class StudyRun:
    """What :func:`run_study` did and wrote."""

    out: Path
    n_tasks: int
    n_skipped: int
    n_run: int
    n_failed: int
    failed: list[str] = field(default_factory=list)
    results: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    sbc_uniformity: pd.DataFrame | None = None
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        lines = [
            f"study folder {self.out}: {self.n_tasks} replication(s); {self.n_skipped} already finished "
            f"(skipped), {self.n_run} run now, {self.n_failed} failed ({self.seconds:.1f} s)",
        ]
        for f in self.failed[:20]:
            lines.append(f"  FAILED {f}")
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more (see reps/*.error.json)")
        if self.sbc_uniformity is not None and len(self.sbc_uniformity):
            lines.append("SBC uniformity (chi-square on binned ranks):")
            for r in self.sbc_uniformity.itertuples(index=False):
                lines.append(f"  c{r.condition} {r.quantity}: chi2 = {r.chi2:.2f} (df {r.df}), p = {r.p_value:.3g}, "
                             f"{r.n_ranks} ranks")
        lines.append(f"wrote {self.out / 'results.csv'} and {self.out / 'summary.csv'}")
        return "\n".join(lines)


#: rank histograms per row of an SBC figure
SBC_FIGURE_COLUMNS = 4


def _load_results(study: Study, out: Path) -> pd.DataFrame:
    reps = out / "reps"
    frames = []
    done = finished_tasks(study, out)
    for t in sorted(done, key=lambda t: (t.design, t.condition, t.replication)):
        frames.append(_read_rep(reps / f"{t.name}.csv"))
    for t in study.tasks():
        if t in done:
            continue
        err = reps / f"{t.name}.error.json"
        if err.exists():
            try:
                msg = json.loads(err.read_text(encoding="utf-8")).get("error", "")
            except (OSError, ValueError):
                msg = "unreadable error file"
            frames.append(pd.DataFrame([{**{c: np.nan for c in RESULT_COLUMNS}, "design": t.design,
                                         "condition": t.condition, "replication": t.replication,
                                         "status": "failed", "kind": "", "family": "", "quantity": "",
                                         "n": 0, "message": str(msg).splitlines()[0][:500] if msg else ""}]))
    if not frames:
        df = pd.DataFrame(columns=list(RESULT_COLUMNS))
    else:
        df = pd.concat([f.astype({"message": str}) for f in frames], ignore_index=True)
    df["design"] = df["design"].astype(str)
    for c in ("kind", "family", "quantity", "message", "status"):
        df[c] = df[c].fillna("").astype(str)
    df["condition"] = df["condition"].astype(int)
    df["replication"] = df["replication"].astype(int)
    df["n"] = df["n"].fillna(0).astype(int)
    df["_d"] = df["design"].map({d: k for k, d in enumerate(DESIGNS)})
    df = df.sort_values(["_d", "condition", "replication", "kind", "family", "quantity"], kind="mergesort")
    df = df.drop(columns="_d").reset_index(drop=True)
    cond = study.conditions.reset_index()
    df = df.merge(cond, on="condition", how="left", sort=False)
    cols = ["design", "condition", "replication", *study.condition_columns,
            *[c for c in RESULT_COLUMNS if c not in ("design", "condition", "replication")]]
    return df[cols]


def summarize(results: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per condition, kind, family and quantity (and ``(all)`` per family): the number of
    replications, mean true value and estimate, bias (mean error) with its Monte Carlo
    SE, RMSE (root mean squared error), coverage of the 90% intervals and mean width.
    Reliability rows pool the firms of every replication (weights ``n``).  SBC rows are
    summarized by :func:`sbc_uniformity` instead."""
    ok = results[(results.status == "ok") & (results.design == "fixed")]
    rows = []
    for (c, kind, fam), g in ok.groupby(["condition", "kind", "family"], sort=True):
        levels = [(q, gg) for q, gg in g.groupby("quantity", sort=True)]
        if kind in ("recovery",) or fam.startswith("type_share"):
            levels.append(("(all)", g))
        for q, gg in levels:
            R = gg.replication.nunique()
            if fam.startswith("reliability"):
                w = gg.n.to_numpy(dtype=float)
                m = w > 0
                tot = w[m].sum()
                est = float((gg.estimate.to_numpy()[m] * w[m]).sum() / tot) if tot else np.nan
                tru = float((gg["true"].to_numpy()[m] * w[m]).sum() / tot) if tot else np.nan
                rows.append({"condition": c, "kind": kind, "family": fam, "quantity": q, "n_reps": R,
                             "n": int(tot), "true": tru, "estimate": est, "bias": est - tru if tot else np.nan,
                             "bias_mcse": np.nan, "rmse": np.nan, "coverage90": np.nan, "coverage_mcse": np.nan,
                             "width": np.nan, "estimate_mcse": np.nan})
                continue
            per_rep = gg.groupby("replication")
            err_rep = per_rep["error"].mean()
            cov_rep = per_rep["covered"].mean()
            est_rep = per_rep["estimate"].mean()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                cov = float(gg.covered.mean()) if gg.covered.notna().any() else np.nan
                rows.append({
                    "condition": c, "kind": kind, "family": fam, "quantity": q, "n_reps": R,
                    "n": int(gg.n.sum()),
                    "true": float(gg["true"].mean()) if gg["true"].notna().any() else np.nan,
                    "estimate": float(gg.estimate.mean()),
                    "bias": float(gg.error.mean()) if gg.error.notna().any() else np.nan,
                    "bias_mcse": float(err_rep.std(ddof=1) / np.sqrt(R)) if R > 1 and err_rep.notna().any() else np.nan,
                    "rmse": float(np.sqrt(gg.sq_error.mean())) if gg.sq_error.notna().any() else np.nan,
                    "coverage90": cov,
                    "coverage_mcse": float(cov_rep.std(ddof=1) / np.sqrt(R)) if R > 1 and np.isfinite(cov) else np.nan,
                    "width": float(gg.width.mean()) if gg.width.notna().any() else np.nan,
                    "estimate_mcse": float(est_rep.std(ddof=1) / np.sqrt(R)) if R > 1 else np.nan,
                })
    cols = ["condition", "kind", "family", "quantity", "n_reps", "n", "true", "estimate", "estimate_mcse", "bias",
            "bias_mcse", "rmse", "coverage90", "coverage_mcse", "width"]
    df = pd.DataFrame(rows, columns=cols)
    cond = study.conditions.reset_index()
    df = df.merge(cond, on="condition", how="left", sort=False)
    return df[["condition", *study.condition_columns, *cols[1:]]]


def sbc_uniformity(results: pd.DataFrame, bins: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SBC ranks and the chi-square test of their uniformity.

    Ranks ``r`` in ``0..L`` (``L`` thinned draws) are uniform under a calibrated
    model.  They are binned into ``bins`` bins by ``floor(r * bins / (L + 1))``; the
    expected count of each bin is the number of rank values it holds times
    ``n / (L + 1)``, and Pearson's chi-square with ``bins - 1`` degrees of freedom gives
    the p-value.  Returns ``(ranks, uniformity)``: one row per replication and
    parameter, and per SBC condition and parameter (``chi2``, ``df``, ``p_value``,
    ``n_ranks``, ``L``, ``bins``, ``mean_rank_fraction``).
    """
    from scipy import stats

    s = results[(results.design == "sbc") & (results.status == "ok") & (results.kind == "sbc")]
    ranks = pd.DataFrame({
        "condition": s.condition.astype(int), "replication": s.replication.astype(int), "quantity": s.quantity,
        "true": s["true"], "rank": s.estimate.astype(int), "L": s.n.astype(int),
    }).reset_index(drop=True)
    rows = []
    for (c, q), g in ranks.groupby(["condition", "quantity"], sort=True):
        L = int(g.L.iloc[0])
        r = g["rank"].to_numpy()
        B = int(min(bins, L + 1))
        which = (r * B) // (L + 1)
        obs = np.bincount(which, minlength=B).astype(float)
        per_bin = np.bincount((np.arange(L + 1) * B) // (L + 1), minlength=B).astype(float)
        exp = per_bin * len(r) / (L + 1)
        chi2 = float(((obs - exp) ** 2 / exp).sum())
        p = float(stats.chi2.sf(chi2, B - 1))
        rows.append({"condition": int(c), "quantity": q, "n_ranks": int(len(r)), "L": L, "bins": B, "chi2": chi2,
                     "df": B - 1, "p_value": p, "mean_rank_fraction": float((r / L).mean()) if L else np.nan})
    uni = pd.DataFrame(rows, columns=["condition", "quantity", "n_ranks", "L", "bins", "chi2", "df", "p_value",
                                      "mean_rank_fraction"])
    return ranks, uni


def collect(study: Study | str | Path, out: str | Path, *, figures: bool = True) -> StudyRun:
    """(Re)build ``results.csv``, ``summary.csv``, ``conditions.csv``, ``timings.csv``,
    the SBC tables and the figures from the replication files in ``out/reps``."""
    if not isinstance(study, Study):
        study = load_study(study)
    out = Path(out)
    results = _load_results(study, out)
    files = []

    def write(name: str, df: pd.DataFrame) -> None:
        p = out / name
        _atomic_write(p, df.to_csv(index=False, lineterminator="\n"))
        files.append(p)

    write("results.csv", results)
    summary = summarize(results, study)
    write("summary.csv", summary)
    # per condition bookkeeping
    cond = study.conditions.reset_index()
    status = []
    for c in cond.condition:
        row = {"condition": int(c), "label": study.condition_label(int(c))}
        for d in study.designs:
            if d == "sbc" and int(c) not in study.sbc_conditions():
                continue
            sub = results[(results.design == d) & (results.condition == c)]
            ok = sub[sub.status == "ok"].replication.nunique()
            bad = sub[sub.status == "failed"].replication.nunique()
            row[f"{d}_ok"] = int(ok)
            row[f"{d}_failed"] = int(bad)
            row[f"{d}_pending"] = int(study.replications - ok - bad)
        status.append(row)
    write("conditions.csv", cond.merge(pd.DataFrame(status), on="condition", how="left"))
    # timings (not deterministic: a separate file)
    trows = []
    for p in sorted((out / "reps").glob("*.meta.json")):
        try:
            trows.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    write("timings.csv", pd.DataFrame(trows, columns=["task", "status", "seconds", "host", "pid", "finished"]))
    uni = None
    if "sbc" in study.kinds:
        ranks, uni = sbc_uniformity(results, int(study.sbc["bins"]))
        write("sbc_ranks.csv", ranks)
        write("sbc_uniformity.csv", uni)
    if figures:
        try:
            files += _figures(study, out, results, summary, uni)
        except Exception as exc:  # noqa: BLE001 - figures never fail a study
            warnings.warn(f"figures not written: {type(exc).__name__}: {exc}", stacklevel=2)
    failed = results[results.status == "failed"]
    return StudyRun(out=out, n_tasks=len(study.tasks()), n_skipped=0, n_run=0,
                    n_failed=int(failed[["design", "condition", "replication"]].drop_duplicates().shape[0]),
                    failed=[f"{d}-c{c:03d}-r{r:04d}: {m}" for d, c, r, m in
                            failed[["design", "condition", "replication", "message"]].itertuples(index=False)],
                    results=results, summary=summary, sbc_uniformity=uni, files=files)


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------
def _figures(study: Study, out: Path, results: pd.DataFrame, summary: pd.DataFrame, uni) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figdir = out / "figures"
    figdir.mkdir(exist_ok=True)
    paths: list[Path] = []

    def save(fig, name):
        p = figdir / name
        tmp = figdir / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        plt.close(fig)
        os.replace(tmp, p)
        paths.append(p)

    conds = sorted(summary.condition.unique()) if len(summary) else []
    labels = [study.condition_label(int(c)) for c in conds]
    rec = summary[(summary.kind == "recovery") & (summary.quantity == "(all)")]
    if len(rec):
        fams = [f for f in ("loading", "thresholds", "corr", "group_mean", "eta") if f in set(rec.family)]
        fig, axes = plt.subplots(1, 3, figsize=(14, 0.5 * len(conds) + 2.5), sharey=True)
        y = np.arange(len(conds))
        for k, fam in enumerate(fams):
            g = rec[rec.family == fam].set_index("condition").reindex(conds)
            off = (k - (len(fams) - 1) / 2) * 0.8 / max(len(fams), 1)
            for ax, col in zip(axes, ("bias", "rmse", "coverage90")):
                ax.barh(y + off, g[col].to_numpy(dtype=float), height=0.8 / max(len(fams), 1), label=fam)
        axes[0].axvline(0, color="k", lw=0.8)
        axes[2].axvline(PROB, color="k", lw=0.8, ls="--")
        for ax, t in zip(axes, ("bias", "RMSE", "coverage of 90% intervals")):
            ax.set_title(t)
        axes[0].set_yticks(y, labels)
        axes[0].invert_yaxis()
        handles, labs = axes[0].get_legend_handles_labels()
        fig.legend(handles, labs, loc="lower center", ncol=len(fams), fontsize=8, bbox_to_anchor=(0.5, -0.02))
        fig.suptitle(f"Parameter recovery: {study.name}", y=1.03)
        fig.subplots_adjust(bottom=0.18)
        save(fig, "recovery.png")
    comp = summary[summary.kind == "comparison"]
    if len(comp):
        fig, axes = plt.subplots(1, 2, figsize=(13, 0.5 * len(conds) + 2.5), sharey=True)
        y = np.arange(len(conds))
        for fam, ax, qs in (("type_recovery", axes[0], ("deterministic", "modal_true_score", "modal_replicated")),
                            ("brier", axes[1], ("deterministic", "true_score", "replicated"))):
            g = comp[comp.family == fam]
            for k, q in enumerate(qs):
                v = g[g.quantity == q].set_index("condition").reindex(conds).estimate.to_numpy(dtype=float)
                ax.barh(y + (k - 1) * 0.27, v, height=0.27, label=q)
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
        axes[0].set_title("share of firms typed as their true type")
        axes[1].set_title("Brier score of the type probabilities (lower is better)")
        axes[0].set_yticks(y, labels)
        axes[0].invert_yaxis()
        save(fig, "type_recovery.png")
        rel = comp[comp.family.str.startswith("reliability")]
        if len(rel):
            fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
            for ax, fam in zip(axes, ("reliability_true_score", "reliability_replicated")):
                g = rel[rel.family == fam]
                for c in conds:
                    gc = g[(g.condition == c) & (g.n > 0)].sort_values("quantity")
                    ax.plot(gc.estimate, gc["true"], marker="o", label=study.condition_label(int(c)))
                ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
                ax.set_xlabel("posterior type probability (bin mean)")
                ax.set_title(fam.replace("reliability_", "reliability: "))
            axes[0].set_ylabel("observed share of the true type")
            axes[1].legend(fontsize=7)
            save(fig, "reliability.png")
    if uni is not None and len(uni):
        ranks = pd.read_csv(out / "sbc_ranks.csv")
        from scipy import stats

        for c, gc in ranks.groupby("condition"):
            qs = sorted(gc.quantity.unique())
            ncol = min(len(qs), SBC_FIGURE_COLUMNS)
            nrow = -(-len(qs) // ncol)
            fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.2 * nrow), squeeze=False)
            for ax in axes.ravel()[len(qs):]:
                ax.set_visible(False)
            for ax, q in zip(axes.ravel(), qs):
                g = gc[gc.quantity == q]
                L = int(g.L.iloc[0])
                B = int(min(study.sbc["bins"], L + 1))
                which = (g["rank"].to_numpy() * B) // (L + 1)
                counts = np.bincount(which, minlength=B)
                per_bin = np.bincount((np.arange(L + 1) * B) // (L + 1), minlength=B)
                exp = per_bin * len(g) / (L + 1)
                lo = stats.binom.ppf(0.005, len(g), per_bin / (L + 1))
                hi = stats.binom.ppf(0.995, len(g), per_bin / (L + 1))
                edges = np.arange(B + 1) - 0.5
                ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color="grey",
                                alpha=0.25, zorder=1)
                ax.bar(np.arange(B), counts, width=0.8, color="tab:blue", alpha=0.85, zorder=2)
                ax.stairs(exp, edges, baseline=None, color="k", lw=0.8, zorder=3)
                ax.set_xticks(np.arange(B))
                p = uni[(uni.condition == c) & (uni.quantity == q)].p_value
                ax.set_title(f"{q}\nchi2 p = {float(p.iloc[0]):.3g}", fontsize=9)
                ax.set_xlabel("rank bin")
            fig.tight_layout()
            fig.suptitle(f"SBC rank histograms, {study.condition_label(int(c))} (grey: 99% band per bin under "
                         "uniform ranks)", fontsize=10, y=1.02)
            save(fig, f"sbc_ranks_c{int(c):03d}.png")
    return paths
