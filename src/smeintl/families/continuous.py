"""Continuous items: Normal on the item standardized by its sample mean and sd (the
fit records them; the declared range only sets the deterministic 0-1 scaling), so the
default priors are scale-free; the all-continuous special case can integrate the latent scores out
(``MeasurementModel`` ``parameterization="marginal"``)."""

from __future__ import annotations

import numpy as np

from .base import Family, item_rows
from .model import prior, shifted

__all__ = ["Continuous", "standardization"]


def standardization(lo: np.ndarray, hi: np.ndarray) -> dict[str, np.ndarray]:
    """Centre and scale of continuous items on their declared range (midpoint, range / 6):
    the scale of simulated surveys' true parameters.  Fits use the sample mean and sd
    (:func:`smeintl.measurement.standardization_of` with the answers)."""
    return {"mean": (lo + hi) / 2.0, "sd": (hi - lo) / 6.0}


class Continuous(Family):
    name = "continuous"
    scales = ("continuous",)
    linear = True
    loading_prior = "loading_continuous"
    params = ("cont_intercept", "cont_sigma")
    prefix = "cont"
    color = "#e7298a"
    model_text = ("Normal on the item standardized by its sample mean and sd, "
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
    link = "identity"  # on the standardized item; the parameter table gives data units

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

    def kernel_widths(self, block):
        return 1, 1, 0  # intercept, residual sd

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

    def to_fit_scale(self, P, block, simulated, fitted):
        # y = m + s z with z = a + lambda eta + sigma e on the simulation's scale (m, s);
        # the fit's z' = (y - mean) / sd = (m - mean) / sd + (s / sd) z
        r = simulated["sd"] / fitted["sd"]
        lam = np.array(P["loading"], dtype=float, copy=True)
        lam[..., block.idx] = lam[..., block.idx] * r
        a = (simulated["mean"] - fitted["mean"] + simulated["sd"] * np.asarray(P["cont_intercept"])) / fitted["sd"]
        return {"loading": lam, "cont_intercept": a, "cont_sigma": np.asarray(P["cont_sigma"]) * r}

    def residual_variance(self, P, block):
        return P["cont_sigma"] ** 2

    def item_units(self, block, std):
        """Loadings in the item's data units: the standardized item's times its sd."""
        return "data", self._centre_scale(block, std)[1]

    @staticmethod
    def _centre_scale(block, std) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of the standardization (the fit's), or 0 and 1 without one (the items
        then modelled as they are, as :meth:`decode` takes them)."""
        if std is None:
            return np.zeros(block.size), np.ones(block.size)
        return np.asarray(std["mean"], dtype=float), np.asarray(std["sd"], dtype=float)

    def param_rows(self, name, P, block, layout, std):
        """In the item's data units: the intercept (``item ~1``: intercept * sd + mean, the
        expected answer at latent score 0) and the residual sd (``item ~~ item``: sigma * sd)."""
        mean, sd = self._centre_scale(block, std)
        if name == "cont_intercept":
            return item_rows(layout, block, np.asarray(P[name]) * sd + mean, kind="intercept", op="~1", rhs="",
                             scale="data", variable=name, label="intercept (data)")
        if name == "cont_sigma":
            return item_rows(layout, block, np.asarray(P[name]) * sd, kind="residual_sd", op="~~", scale="data",
                             variable=name, label="residual sd (data)")
        return super().param_rows(name, P, block, layout, std)

    def typical_loading(self, loading):
        return 0.8 * loading / 1.5  # the log link / the residual make effects larger per unit

    def typical(self, layout, block, rng):
        return {"cont_intercept": np.zeros(block.size), "cont_sigma": np.full(block.size, 0.6)}

    def check_statistics(self, v, item):
        """The mean, sd and skewness of the answers (the normal model has skewness 0)."""
        v = np.asarray(v, dtype=float)
        base = super().check_statistics(v, item)
        with np.errstate(all="ignore"):
            d = v - v.mean(axis=-1, keepdims=True)
            skew = (d**3).mean(axis=-1) / (d**2).mean(axis=-1) ** 1.5
        return np.concatenate([base, skew[..., None]], axis=-1)

    def check_statistic_names(self, item):
        return ["mean", "sd", "skewness"]

    def check_cells(self, v, item, observed):
        """Five cells split at the observed answers' quintiles (the declared range may be far
        wider than the answers)."""
        v = np.asarray(v, dtype=float)
        obs = np.asarray(observed, dtype=float)
        obs = obs[np.isfinite(obs)]
        edges = np.unique(np.quantile(obs, [0.2, 0.4, 0.6, 0.8])) if obs.size else np.zeros(0)
        with np.errstate(invalid="ignore"):
            c = np.searchsorted(edges, np.where(np.isfinite(v), v, 0.0), side="right")
        return np.where(np.isfinite(v), c, -1).astype(np.int64), int(edges.size) + 1
