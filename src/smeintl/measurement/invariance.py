"""Measurement invariance across groups (industries): the group deviations of a fit's item
parameters and which items they flag.

A fit made with ``MeasurementModel(..., invariance="approximate" | "configural" |
"metric")`` holds, beside each item's loading and intercept (cutpoints), sum-to-zero group
deviations (docs/invariance.md):

* ``loading_dev`` (item, group): group g's loading is ``loading * exp(loading_dev[g])``,
  a deviation of the log loading (0.1 is a loading about 10 % larger than the average);
* ``intercept_dev`` (item, group): added to the linear predictor of group g's answers, on
  the item family's link scale (logit for ordinal, percent and binary items, log for
  counts, the sample-standardized item for continuous items): the intercept moves with
  it, an ordinal item's cutpoints all move against it.

:func:`item_invariance` summarizes them per item; :func:`deviations`,
:func:`group_params`, :func:`draw_items_by_group` and :func:`cell_loglik_by_group` give
the numpy side of the model (posterior predictive, per-firm and integrated
log-likelihood) the parameters of each group.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import compat
from .generative import cell_loglik, draw_items
from .layout import ItemLayout

__all__ = ["DELTA", "FLAG_PROB", "DEVIATION_VARIABLES", "deviations", "group_params", "params_by_group",
           "draw_items_by_group", "cell_loglik_by_group", "item_invariance"]

#: the default size of a group deviation that matters, on the link scale (intercepts) and
#: the log scale (loadings): three prior sds of the approximate model (0.1), so a posterior
#: beyond it comes from the data; a shift of 0.3 logits is an odds ratio of 1.35 between a
#: group and the average of the groups (ETS's Mantel-Haenszel rule calls |log odds ratio|
#: below 0.43 negligible, so two groups 0.3 either side of the average differ by a
#: moderate 0.6), 0.3 item sds for continuous items (a small-to-medium standardized
#: difference), a loading 35 % larger (or 26 % smaller) than the average (docs/invariance.md)
DELTA = 0.3
#: :func:`item_invariance` flags an item when P(largest |deviation| > delta) exceeds this
FLAG_PROB = 0.9
#: the posterior variables of the deviations, by kind
DEVIATION_VARIABLES = {"loading": "loading_dev", "intercept": "intercept_dev"}


def deviations(fit, group: str = "posterior") -> dict[str, np.ndarray]:
    """The fit's group deviations as numpy arrays ``(S, I, G)`` (draws of all chains
    stacked): ``"loading"`` (of the log loadings) and ``"intercept"`` (of the locations),
    those the fit has; empty for a fit without (invariance none or scalar)."""
    ds = compat.group(compat.as_fit(fit), group)
    out = {}
    for kind, name in DEVIATION_VARIABLES.items():
        if name in ds:
            a = np.asarray(ds[name].transpose("chain", "draw", "item", "group").values, dtype=float)
            out[kind] = a.reshape((-1,) + a.shape[2:])
    return out


def group_params(P: Mapping[str, np.ndarray], dev: Mapping[str, np.ndarray], g: int,
                 layout: ItemLayout) -> dict[str, np.ndarray]:
    """The item parameters of group ``g``: ``P`` (:func:`~smeintl.measurement.posterior_params`)
    with each loading times ``exp(loading deviation)`` and each item's location moved by its
    intercept deviation (each family's ``shift_location``: intercepts gain it, ordinal
    cutpoints lose it).  ``dev``: :func:`deviations`, with the same draws as ``P``."""
    out = dict(P)
    if "loading" in dev:
        out["loading"] = np.asarray(P["loading"], dtype=float) * np.exp(dev["loading"][..., g])
    if "intercept" in dev:
        d = dev["intercept"][..., g]
        for block in layout.blocks():
            out.update(block.family.shift_location(out, d[..., block.idx], block))
    return out


def params_by_group(P, dev, layout: ItemLayout, n_groups: int) -> list[dict[str, np.ndarray]] | None:
    """:func:`group_params` of every group, or None without deviations."""
    if not dev:
        return None
    return [group_params(P, dev, g, layout) for g in range(int(n_groups))]


def _groups(groups, n_firms: int) -> np.ndarray:
    g = np.asarray(groups, dtype=int)
    if g.shape != (n_firms,):
        raise ValueError(f"expected one group code per firm ({n_firms}), got shape {g.shape}")
    return g


def draw_items_by_group(P, dev, eta: np.ndarray, groups: Sequence[int], layout: ItemLayout,
                        rng: np.random.Generator, *, standardization=None) -> np.ndarray:
    """:func:`~smeintl.measurement.draw_items` with each firm's group's item parameters
    (``eta`` (..., F, C), ``groups`` the firms' group codes); without deviations exactly
    ``draw_items`` (the same random numbers)."""
    if not dev:
        return draw_items(P, eta, layout, rng, standardization=standardization)
    g = _groups(groups, eta.shape[-2])
    out = np.empty(eta.shape[:-1] + (len(layout.names),))
    for k in np.unique(g):
        rows = g == k
        out[..., rows, :] = draw_items(group_params(P, dev, int(k), layout), eta[..., rows, :], layout, rng,
                                       standardization=standardization)
    return out


def cell_loglik_by_group(P, by_group: list | None, s, eta: np.ndarray, X: np.ndarray, groups, layout: ItemLayout,
                         std) -> np.ndarray:
    """:func:`~smeintl.measurement.cell_loglik` (``eta`` (F, Q, C) -> (F, Q)) with each
    firm's group's parameters (``by_group``: :func:`params_by_group`; None: ``P`` for all)."""
    if by_group is None:
        return cell_loglik(P, s, eta, X, layout, std)
    g = _groups(groups, eta.shape[0])
    out = np.empty(eta.shape[:2])
    for k in np.unique(g):
        rows = g == k
        out[rows] = cell_loglik(by_group[int(k)], s, eta[rows], X[rows], layout, std)
    return out


def item_invariance(fit, *, delta: float = DELTA, prob: float = 0.9, flag_prob: float = FLAG_PROB,
                    spec=None) -> pd.DataFrame:
    """Per item and kind of deviation (loading, intercept), how far its group parameters
    depart from the average over the groups.

    One row per item and ``parameter`` (``"loading"``: the log-loading deviation, so 0.3 is
    a loading exp(0.3) = 1.35 times the geometric mean over the groups; ``"intercept"``: the
    location deviation on the family's link scale, ``scale``).  For each draw the largest
    absolute deviation over the groups, ``max |dev|``; columns: its posterior ``mean`` and
    central ``prob`` interval ``lower`` - ``upper``, ``p_exceeds`` = P(max |dev| > delta),
    ``group`` the group whose deviation has the largest posterior mean in absolute value,
    ``deviation`` that posterior mean (signed: positive, a larger loading or higher answers
    in that group), and ``flagged`` = ``p_exceeds > flag_prob``.  Items in spec order,
    loading rows first.  Raises ``ValueError`` for a fit without group deviations.
    """
    from ..spec import parse_spec

    fit = compat.as_fit(fit)
    delta, prob, flag_prob = float(delta), float(prob), float(flag_prob)
    if not delta > 0:
        raise ValueError(f"delta must be positive, got {delta!r}")
    if not 0.0 < prob < 1.0 or not 0.0 < flag_prob < 1.0:
        raise ValueError(f"prob and flag_prob must be in (0, 1), got {prob!r} and {flag_prob!r}")
    dev = deviations(fit)
    if not dev:
        level = fit.attrs.get("invariance", "none")
        raise ValueError(f"the fit has no group deviations of its item parameters (invariance {level!r}); fit with "
                         "invariance='approximate' (or 'configural' / 'metric')")
    spec = spec or parse_spec(fit.attrs["spec_text"])
    lay = ItemLayout.from_spec(spec)
    post = compat.group(fit, "posterior")
    gnames = [str(g) for g in post["group"].values]
    link = {}
    for block in lay.blocks():
        for k in block.idx:
            link[int(k)] = block.family.link
    q = ((1.0 - prob) / 2.0, (1.0 + prob) / 2.0)
    rows = []
    for kind in ("loading", "intercept"):
        if kind not in dev:
            continue
        d = dev[kind]  # (S, I, G)
        biggest = np.abs(d).max(axis=-1)  # (S, I)
        means = d.mean(0)  # (I, G)
        for i, name in enumerate(lay.names):
            g = int(np.argmax(np.abs(means[i])))
            p = float((biggest[:, i] > delta).mean())
            lo, hi = np.quantile(biggest[:, i], q)
            rows.append({"item": name, "construct": lay.constructs[lay.construct[i]], "parameter": kind,
                         "scale": "log" if kind == "loading" else link[i], "mean": float(biggest[:, i].mean()),
                         "lower": float(lo), "upper": float(hi), "p_exceeds": p, "group": gnames[g],
                         "deviation": float(means[i, g]), "flagged": p > flag_prob})
    table = pd.DataFrame(rows)
    table.attrs.update({"delta": delta, "prob": prob, "flag_prob": flag_prob,
                        "invariance": str(fit.attrs.get("invariance", "")), "groups": gnames})
    return table
