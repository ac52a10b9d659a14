"""Percent items with exact zeros and maxima (e.g. export share): ordered beta
(Kubinec 2022), an ordered logistic over {minimum, interior, maximum} with two cutpoints
and a Beta(mu, phi) density of interior answers, logit(mu) = intercept + lambda * eta."""

from __future__ import annotations

import numpy as np

from .base import Family, ParameterRow, item_rows, sigmoid
from .model import prior
from .ordinal import padded_cutpoints

__all__ = ["Percent"]


#: decimals of a simulated percent answer
SIMULATED_DECIMALS = 2


class Percent(Family):
    name = "percent"
    scales = ("percent",)
    params = ("pct_intercept", "pct_cutpoints", "pct_precision")
    prefix = "pct"
    color = "#d95f02"
    model_text = ("ordered beta: ordered logistic over {minimum, interior, maximum} with two cutpoints, and "
                  "Beta(mu, phi) for interior answers, logit(mu) = intercept + lambda * eta")
    scaling_text = "(x - min) / (max - min) (x / 100 for 0-100)"

    def item_range(self, it, scale, key, problems):
        return float(it.get("min", 0.0)), float(it.get("max", 100.0))

    def allowed(self, item, lo, hi):
        return f"numbers {lo} to {hi} (percent)"

    def coords(self, layout, block):
        return {**super().coords(layout, block), "pct_cut": ["zero", "one"]}

    def param_dims(self, name, block):
        return ("pct_item", "pct_cut") if name == "pct_cutpoints" else ("pct_item",)

    kernel = "percent"

    def encode(self, y, j, block, layout, std):
        lo, hi = layout.lo[block.idx][j], layout.hi[block.idx][j]
        return (y - lo) / (hi - lo)  # 0, inside (0, 1), or 1

    def decode(self, v, j, block, layout, std):
        lo, hi = layout.lo[block.idx][j], layout.hi[block.idx][j]
        return lo + v * (hi - lo)

    def positions(self, j, v, block):
        # the flat position of the category's lower cutpoint: 0 %, inside, 100 % (padded width 4)
        xp = np if isinstance(v, np.ndarray) else __import__("pytensor.tensor", fromlist=["switch"])
        where = np.where if xp is np else xp.switch
        return j * 4 + where(v <= 0, 0, where(v >= 1, 2, 1))

    def build_params(self, ctx, block):
        from .kernels import ordered_transform

        pm, inp, pri, idx = ctx.pm, ctx.inputs, ctx.priors, block.idx
        a = prior(pm, "pct_intercept", pri["intercept"], inp, dims="pct_item", shift=ctx.shifted(idx))
        pc = pri["percent_cutpoints"]
        mu0 = np.tile(np.asarray(pc["mu"], dtype=float), (idx.size, 1))
        cut = pm.Normal(
            "pct_cutpoints",
            mu=inp.prior("pct_cutpoints", "mu", mu0),
            sigma=inp.prior("pct_cutpoints", "sigma", float(pc["sigma"])),
            dims=("pct_item", "pct_cut"),
            transform=ordered_transform(),
        )
        phi = prior(pm, "pct_precision", pri["precision"], inp, dims="pct_item")
        return a, padded_cutpoints(ctx.pt, cut, idx.size), phi

    def kernel_widths(self, block):
        return 1, 4, 1  # intercept, padded cutpoints, precision

    def kernel_params(self, P, s, block):
        cut = np.asarray(P["pct_cutpoints"][s], dtype=float)
        return (np.asarray(P["pct_intercept"][s], dtype=float), padded_cutpoints(np, cut, block.size),
                np.asarray(P["pct_precision"][s], dtype=float))

    def matrix_params(self, P, block):
        return {"a": np.asarray(P["pct_intercept"])[..., None, :], "cut": np.asarray(P["pct_cutpoints"])[..., None, :, :],
                "phi": np.asarray(P["pct_precision"])[..., None, :]}

    def cell_params(self, p1, p2, p3, j, block):
        return {"a": np.asarray(p1)[j], "cut": np.asarray(p2).reshape(-1, 4)[:, 1:3][j],
                "phi": np.asarray(p3)[j]}

    def draw_cells(self, lp, prm, rng):
        lin = lp + prm["a"]
        cut = prm["cut"]
        p_gt0 = sigmoid(lin - cut[..., 0])
        p_one = sigmoid(lin - cut[..., 1])
        u = rng.random(lin.shape)
        mu = sigmoid(lin)
        mu = np.clip(mu, 1e-9, 1 - 1e-9)
        phi = prm["phi"]
        inner = rng.beta(mu * phi, (1 - mu) * phi)
        return np.where(u < 1 - p_gt0, 0.0, np.where(u < 1 - p_one, inner, 1.0))

    def expected(self, P, lin, block, layout, std, caps=None):
        a = np.asarray(P["pct_intercept"])[..., None, :]
        cut = np.asarray(P["pct_cutpoints"])[..., None, :, :]
        lin = lin + a
        p_gt0 = sigmoid(lin - cut[..., 0])
        p_one = sigmoid(lin - cut[..., 1])
        return p_one + (p_gt0 - p_one) * sigmoid(lin)

    def ppc_statistics(self, v, item):
        with np.errstate(all="ignore"):
            return np.stack([
                (v <= item.min).mean(axis=-1),
                (v >= item.max).mean(axis=-1),
                (v.mean(axis=-1) - item.min) / (item.max - item.min),
            ], axis=-1)

    def ppc_labels(self, item):
        return [f"={item.min:g}", f"={item.max:g}", "mean"]

    def check_statistics(self, v, item):
        """The share of answers at the minimum and at the maximum, then the mean and sd."""
        v = np.asarray(v, dtype=float)
        with np.errstate(all="ignore"):
            masses = np.stack([(v <= item.min).mean(axis=-1), (v >= item.max).mean(axis=-1)], axis=-1)
        return np.concatenate([masses, super().check_statistics(v, item)], axis=-1)

    def check_statistic_names(self, item):
        return [f"share ={item.min:g}", f"share ={item.max:g}", "mean", "sd"]

    def check_cells(self, v, item, observed):
        """Three cells: the minimum, inside the range, the maximum."""
        v = np.asarray(v, dtype=float)
        with np.errstate(invalid="ignore"):
            c = np.where(v <= item.min, 0, np.where(v >= item.max, 2, 1))
        return np.where(np.isfinite(v), c, -1).astype(np.int64), 3

    def finish_simulated(self, x, lo, hi):
        """Rounded to two decimals, an answer inside the range kept inside it: rounded onto the
        minimum or maximum it would become an answer of the masses at the ends, which the
        model did not draw (0.8% of the interior answers of surveys simulated from the
        default instrument's prior, enough to fail SBC's log-likelihood test at 200 firms)."""
        r = np.round(x, SIMULATED_DECIMALS)
        step = 10.0**-SIMULATED_DECIMALS
        with np.errstate(invalid="ignore"):
            inside = (x > lo) & (x < hi)
        return np.where(inside, np.clip(r, lo + step, hi - step), r)

    def param_rows(self, name, P, block, layout, std):
        """The intercept of logit(mu) (``item ~1``); the two cutpoints of the ordered logistic
        over {minimum, interior, maximum} on the same logit scale (``item | zero``: above
        it the answer is more than the minimum, ``item | one``: above it the maximum); the
        Beta precision phi of interior answers (``item ~~ item``: variance mu (1 - mu) /
        (1 + phi) of the answer as a share of the range)."""
        if name == "pct_cutpoints":
            cut = np.asarray(P[name], dtype=float)
            rows = []
            for j, k in enumerate(block.idx):
                item, construct = layout.names[k], layout.constructs[layout.construct[k]]
                for c, (rhs, what) in enumerate((("zero", "minimum"), ("one", "maximum"))):
                    rows.append(ParameterRow("threshold", item, "|", rhs, self.link, name, cut[:, j, c],
                                             f"cutpoint of exact {what} answers", item, construct))
            return rows
        if name == "pct_precision":
            return item_rows(layout, block, P[name], kind="precision", op="~~", scale="natural", variable=name,
                             label="Beta precision phi of interior answers")
        return super().param_rows(name, P, block, layout, std)

    def typical(self, layout, block, rng):
        n = block.size
        return {"pct_intercept": np.full(n, -0.5), "pct_cutpoints": np.tile([-1.2, 3.0], (n, 1)),
                "pct_precision": np.full(n, 8.0)}
