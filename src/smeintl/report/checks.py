"""The report's model-checks section: the global checks, the flagged item statistics and
the heatmap of the item pairs' residual correlations, from the report inputs' ``checks``
(a :class:`~smeintl.measurement.fit_checks.FitChecks`, or None: not run)."""

from __future__ import annotations

from .base import ReportInputs
from .blocks import _Builder, _f, _Figure, _p, _table

#: how to read the section, in one line
READING_GUIDE = (
    "How to read: a posterior predictive p-value (PPP) near 0 means the data show a feature the model's "
    "replicated surveys rarely show; PPPs are conservative (they pile up near 0.5 when the model is right), "
    "so a small one is a real warning and a large one is no proof of fit."
)

_ABSENT = "The model checks were not run."


def render(b: _Builder, r: ReportInputs) -> None:
    """The section's blocks from ``r.checks`` (None: one line saying the checks were not run)."""
    from .. import plots

    c = getattr(r, "checks", None)
    if c is None:
        b.p(_ABSENT)
        return
    pct = f"{100 * c.prob:g}%"
    s = c.settings
    what = ("the likelihood ratio against the saturated normal model" if c.method == "normal"
            else "the likelihood ratio of the items' normal scores (rank_lr), with the pairwise G² of the "
                 "bivariate answer tables beside it")
    b.p(f"The observed survey against surveys replicated from the fitted model ({s.get('n_draws')} posterior draws, "
        f"seed {s.get('seed')}): the global discrepancy is {what}; intervals are {pct} central posterior intervals. "
        + READING_GUIDE)

    b.h(3, "Global checks")
    rows = []
    for g in c.global_checks.itertuples(index=False):
        interval = _f(g.estimate) if g.lower != g.lower else f"{_f(g.estimate)} [{_f(g.lower)}, {_f(g.upper)}]"
        rows.append([g.check, g.statistic, interval, _p(g.ppp), g.note])
    b.add(_table(["check", "what", f"posterior mean [{pct}]", "PPP", "note"], rows,
                 numeric=[False, False, True, True, False],
                 caption="PPP of a discrepancy: the share of draws whose replicated data fit worse than the observed "
                         "data (one-sided)."))

    b.h(3, "Item statistics")
    flagged = c.flagged_items()
    n_all = int(c.items["ppp"].notna().sum())
    if len(flagged):
        rows = [[r_.item, r_.scale, r_.statistic, _f(r_.observed), f"{_f(r_.rep_mean)} [{_f(r_.rep_lower)}, "
                 f"{_f(r_.rep_upper)}]", _p(r_.ppp)] for r_ in flagged.itertuples(index=False)]
        b.add(_table(["item", "scale", "statistic", "observed", f"replicated [{pct}]", "PPP"], rows,
                     numeric=[False, False, False, True, True, True],
                     caption=f"The {len(flagged)} of {n_all} item statistics with a two-sided PPP below {c.alpha:g} "
                             f"(about {c.alpha * n_all:.1f} expected by chance if PPPs were uniform)."))
    else:
        b.p(f"No item statistic has a two-sided PPP below {c.alpha:g} ({n_all} statistics checked).")

    b.h(3, "Item pairs")
    fp = c.flagged_pairs()
    b.p(f"{len(fp)} of {int(c.pairs['ppp'].notna().sum())} item pairs have a two-sided PPP below {c.alpha:g} "
        "for their Spearman rank correlation.")
    n_before = len(b.blocks)
    b.figure("residual_correlations", lambda: plots.plot_residual_correlations(c))
    last = b.blocks[-1] if len(b.blocks) > n_before else None
    if isinstance(last, _Figure) and last.key == "residual_correlations":
        last.caption = plots.CHECK_CAPTIONS["residual_correlations"]
    for n in c.notes:
        b.p(f"Note: {n}", cls="muted")
