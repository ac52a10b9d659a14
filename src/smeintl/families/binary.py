"""Binary items: Bernoulli with a logit link, logit p = intercept + lambda * eta."""

from __future__ import annotations

import numpy as np

from .base import Family, log_sigmoid, sigmoid
from .model import prior

__all__ = ["Binary"]


class Binary(Family):
    name = "binary"
    scales = ("binary",)
    params = ("binary_intercept",)
    prefix = "binary"
    color = "#1b9e77"
    model_text = "Bernoulli, logit link: logit p = intercept + lambda * eta"
    scaling_text = "x (0 or 1)"

    def item_range(self, it, scale, key, problems):
        return 0.0, 1.0

    def n_categories(self, item) -> int:
        return 2

    def categories(self, item) -> np.ndarray:
        return np.array([0, 1])

    def ppc_statistics(self, v, item):
        with np.errstate(all="ignore"):
            return np.stack([(np.rint(v) == c).mean(axis=-1) for c in self.categories(item)], axis=-1)

    def ppc_labels(self, item):
        return [str(c) for c in self.categories(item)]

    def range_keys(self, item):
        return {}

    def allowed(self, item, lo, hi):
        return "0 or 1 (binary)"

    def valid(self, v, item):
        return (v == 0) | (v == 1)

    def scaling(self, item):
        return 0.0, 1.0, np.inf, False

    def build(self, ctx, block):
        from .kernels import add_cells_potential

        idx = block.idx
        a = prior(ctx.pm, "binary_intercept", ctx.priors["intercept"], ctx.inputs, dims="binary_item",
                  shift=ctx.shifted(idx))
        f, j, y = ctx.cells(idx)
        add_cells_potential(ctx, "binary", "binary", idx, f, j, a, np.zeros(1), y=y)

    def draw(self, P, lin, block, layout, rng, std):
        a = np.asarray(P["binary_intercept"])[..., None, :]
        return (rng.random(lin.shape) < sigmoid(lin + a)).astype(float)

    def expected(self, P, lin, block, layout, std, caps=None):
        return sigmoid(lin + np.asarray(P["binary_intercept"])[..., None, :])

    def loglik(self, P, s, lin, y, block, layout, std):
        obs = ~np.isnan(y)
        x = lin + P["binary_intercept"][s]
        yy = np.where(obs, y, 0.0)[:, None, :]
        lp = yy * log_sigmoid(x) + (1.0 - yy) * log_sigmoid(-x)
        return np.where(obs[:, None, :], lp, 0.0)

    def typical(self, layout, block, rng):
        return {"binary_intercept": np.linspace(-0.8, 0.8, block.size)}
