"""Continuous items: Normal on the item standardized by its declared range (centre,
range / 6); the all-continuous special case can integrate the latent scores out
(``MeasurementModel`` ``parameterization="marginal"``)."""

from __future__ import annotations

import numpy as np

from .base import Family
from .model import prior, shifted

__all__ = ["Continuous", "standardization"]


def standardization(lo: np.ndarray, hi: np.ndarray) -> dict[str, np.ndarray]:
    """Centre and scale of continuous items: midpoint and range / 6 of the declared range."""
    return {"mean": (lo + hi) / 2.0, "sd": (hi - lo) / 6.0}


class Continuous(Family):
    name = "continuous"
    scales = ("continuous",)
    linear = True
    loading_prior = "loading_continuous"
    params = ("cont_intercept", "cont_sigma")
    prefix = "cont"
    color = "#e7298a"
    model_text = ("Normal on the item standardized by its declared range (centre, range/6), "
                  "mean intercept + lambda * eta, residual sd sigma")
    scaling_text = "(x - min) / (max - min) with the declared range"

    def allowed(self, item, lo, hi):
        return f"any finite number ({item.scale}; scaled on {lo} to {hi})"

    def valid(self, v, item):
        # the declared range only sets the scaling (clipped there)
        return np.ones(np.shape(v), dtype=bool)

    def scaling(self, item):
        return item.min, item.max - item.min, np.inf, True

    kernel = "continuous"

    def encode(self, y, j, block, layout, std):
        return (y - std["mean"][j]) / std["sd"][j]  # the standardized answer

    def log_jacobian(self, j, block, layout, std):
        return -np.log(std["sd"][j])

    def decode(self, v, j, block, layout, std):
        return v if std is None else v * std["sd"][j] + std["mean"][j]

    def build_params(self, ctx, block):
        pm = ctx.pm
        a = shifted(pm, pm.Normal, "cont_intercept", 0.0, ctx.shifted(block.idx), sigma=1.0, dims="cont_item")
        sd = prior(pm, "cont_sigma", ctx.priors["residual_sd"], ctx.inputs, dims="cont_item")
        return a, sd, np.zeros(1)

    def kernel_params(self, P, s, block):
        return np.asarray(P["cont_intercept"][s], dtype=float), np.asarray(P["cont_sigma"][s], dtype=float), np.zeros(1)

    def matrix_params(self, P, block):
        return {"a": np.asarray(P["cont_intercept"])[..., None, :], "sd": np.asarray(P["cont_sigma"])[..., None, :]}

    def cell_params(self, p1, p2, p3, j, block):
        return {"a": np.asarray(p1)[j], "sd": np.asarray(p2)[j]}

    def draw_cells(self, lp, prm, rng):
        return lp + prm["a"] + prm["sd"] * rng.standard_normal(lp.shape)

    def expected(self, P, lin, block, layout, std, caps=None):
        idx = block.idx
        m = lin + np.asarray(P["cont_intercept"])[..., None, :]
        if std is not None:
            m = m * std["sd"] + std["mean"]
        return np.clip((m - layout.lo[idx]) / (layout.hi[idx] - layout.lo[idx]), 0.0, 1.0)

    def residual_variance(self, P, block):
        return P["cont_sigma"] ** 2

    def typical_loading(self, loading):
        return 0.8 * loading / 1.5  # the log link / the residual make effects larger per unit

    def typical(self, layout, block, rng):
        return {"cont_intercept": np.zeros(block.size), "cont_sigma": np.full(block.size, 0.6)}
