"""Binary items: Bernoulli with a logit link, logit p = intercept + lambda * eta."""

from __future__ import annotations

import numpy as np

from .base import Family, sigmoid
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

    def check_statistics(self, v, item):
        """The share of answers 1 (the mean; the share of 0 and the sd are functions of it)."""
        with np.errstate(all="ignore"):
            return (np.rint(np.asarray(v, dtype=float)) == 1).mean(axis=-1)[..., None]

    def check_statistic_names(self, item):
        return ["share =1"]

    def check_cells(self, v, item, observed):
        """Two cells: 0 and 1."""
        v = np.asarray(v, dtype=float)
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(v), (np.rint(v) >= 1).astype(np.int64), -1), 2

    def range_keys(self, item):
        return {}

    def allowed(self, item, lo, hi):
        return "0 or 1 (binary)"

    def valid(self, v, item):
        return (v == 0) | (v == 1)

    def scaling(self, item):
        return 0.0, 1.0, np.inf, False

    kernel = "binary"

    def build_params(self, ctx, block):
        a = prior(ctx.pm, "binary_intercept", ctx.priors["intercept"], ctx.inputs, dims="binary_item",
                  shift=ctx.shifted(block.idx))
        return a, np.zeros(1), np.zeros(1)

    def kernel_widths(self, block):
        return 1, 0, 0  # intercept

    def kernel_params(self, P, s, block):
        return np.asarray(P["binary_intercept"][s], dtype=float), np.zeros(1), np.zeros(1)

    def matrix_params(self, P, block):
        return {"a": np.asarray(P["binary_intercept"])[..., None, :]}

    def cell_params(self, p1, p2, p3, j, block):
        return {"a": np.asarray(p1)[j]}

    def draw_cells(self, lp, prm, rng):
        return (rng.random(lp.shape) < sigmoid(lp + prm["a"])).astype(float)

    def expected(self, P, lin, block, layout, std, caps=None):
        return sigmoid(lin + np.asarray(P["binary_intercept"])[..., None, :])

    def typical(self, layout, block, rng):
        return {"binary_intercept": np.linspace(-0.8, 0.8, block.size)}
