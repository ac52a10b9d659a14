"""Percent items with exact zeros and maxima (e.g. export share): ordered beta
(Kubinec 2022), an ordered logistic over {minimum, interior, maximum} with two cutpoints
and a Beta(mu, phi) density of interior answers, logit(mu) = intercept + lambda * eta."""

from __future__ import annotations

import numpy as np

from .base import Family, sigmoid
from .model import prior
from .ordinal import ordered_logp, padded_cutpoints

__all__ = ["Percent"]


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

    def build(self, ctx, block):
        from .kernels import add_cells_potential, ordered_transform

        pm, inp, pri, idx, lay = ctx.pm, ctx.inputs, ctx.priors, block.idx, ctx.layout
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
        f, j, y = ctx.cells(idx)
        v = (y - lay.lo[idx][j]) / (lay.hi[idx][j] - lay.lo[idx][j])
        cat = np.where(v <= 0, 0, np.where(v >= 1, 2, 1))
        # the Beta part reads the value only inside (0, 1)
        add_cells_potential(ctx, "percent", "percent", idx, f, j, a, padded_cutpoints(ctx.pt, cut, idx.size), phi,
                            pos=j * 4 + cat, y=np.where(cat == 1, v, 0.5))

    def draw(self, P, lin, block, layout, rng, std):
        idx = block.idx
        a = np.asarray(P["pct_intercept"])[..., None, :]
        cut = np.asarray(P["pct_cutpoints"])[..., None, :, :]
        phi = np.asarray(P["pct_precision"])[..., None, :]
        lin = lin + a
        p_gt0 = sigmoid(lin - cut[..., 0])
        p_one = sigmoid(lin - cut[..., 1])
        u = rng.random(lin.shape)
        mu = sigmoid(lin)
        mu = np.clip(mu, 1e-9, 1 - 1e-9)
        inner = rng.beta(mu * phi, (1 - mu) * phi)
        v = np.where(u < 1 - p_gt0, 0.0, np.where(u < 1 - p_one, inner, 1.0))
        return layout.lo[idx] + v * (layout.hi[idx] - layout.lo[idx])

    def expected(self, P, lin, block, layout, std, caps=None):
        a = np.asarray(P["pct_intercept"])[..., None, :]
        cut = np.asarray(P["pct_cutpoints"])[..., None, :, :]
        lin = lin + a
        p_gt0 = sigmoid(lin - cut[..., 0])
        p_one = sigmoid(lin - cut[..., 1])
        return p_one + (p_gt0 - p_one) * sigmoid(lin)

    def loglik(self, P, s, lin, y, block, layout, std):
        from scipy.special import expit, gammaln

        idx = block.idx
        obs = ~np.isnan(y)
        v = (np.where(obs, y, 0.0) - layout.lo[idx]) / (layout.hi[idx] - layout.lo[idx])
        cat = np.where(v <= 0, 0, np.where(v >= 1, 2, 1))
        linp = lin + P["pct_intercept"][s]
        lp = ordered_logp(linp, P["pct_cutpoints"][s], cat[:, None, :])
        inner = obs & (cat == 1)
        phi = P["pct_precision"][s]
        mu = np.clip(expit(linp), 1e-12, 1 - 1e-12)  # no overflow warning in the far tails
        a, b = mu * phi, (1.0 - mu) * phi
        vv = np.clip(np.where(inner, v, 0.5), 1e-12, 1 - 1e-12)[:, None, :]
        lb = gammaln(phi) - gammaln(a) - gammaln(b) + (a - 1.0) * np.log(vv) + (b - 1.0) * np.log1p(-vv)
        return np.where(obs[:, None, :], lp, 0.0) + np.where(inner[:, None, :], lb, 0.0)

    def ppc_statistics(self, v, item):
        with np.errstate(all="ignore"):
            return np.stack([
                (v <= item.min).mean(axis=-1),
                (v >= item.max).mean(axis=-1),
                (v.mean(axis=-1) - item.min) / (item.max - item.min),
            ], axis=-1)

    def ppc_labels(self, item):
        return [f"={item.min:g}", f"={item.max:g}", "mean"]

    def finish_simulated(self, x):
        return np.round(x, 2)

    def typical(self, layout, block, rng):
        n = block.size
        return {"pct_intercept": np.full(n, -0.5), "pct_cutpoints": np.tile([-1.2, 3.0], (n, 1)),
                "pct_precision": np.full(n, 8.0)}
