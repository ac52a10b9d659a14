"""Count items (customers, countries): negative binomial with a log link,
log mu = intercept + lambda * eta; the cap only matters for the deterministic scaling."""

from __future__ import annotations

import numpy as np

from .base import Family, item_rows
from .model import prior, shifted

__all__ = ["Count"]


class Count(Family):
    name = "count"
    scales = ("count",)
    whole_numbers = True
    loading_prior = "loading_count"
    params = ("count_intercept", "count_inv_dispersion")
    prefix = "count"
    color = "#7570b3"
    model_text = "negative binomial, log link: log mu = intercept + lambda * eta"
    scaling_text = "min(x, cap) / cap"
    link = "log"

    def item_range(self, it, scale, key, problems):
        cap = it.get("cap", it.get("max"))
        if not (isinstance(cap, (int, float)) and not isinstance(cap, bool) and np.isfinite(cap)) or cap <= 0:
            problems.append(f"{key}.cap: count item needs a positive 'cap', got {cap!r}")
            cap = 1.0
        return 0.0, float(cap)

    def range_keys(self, item):
        return {"cap": item.max}

    def range_text(self, item):
        return f"0-{item.max:g} (cap)"

    def allowed(self, item, lo, hi):
        return f"whole numbers 0 or more (count; values above the cap {hi} count as {hi} when scaled)"

    def valid(self, v, item):
        return v >= 0

    def scaling(self, item):
        return 0.0, item.max, item.max, False

    kernel = "count"

    def build_params(self, ctx, block):
        pm, inp, pri, idx = ctx.pm, ctx.inputs, ctx.priors, block.idx
        # centred on the log of each item's sample mean (at least 0.5), not on its declared cap:
        # the prior does not depend on a number the user chose (an input, so new data need no compile)
        with np.errstate(invalid="ignore"):
            means = np.nanmean(np.where(np.isnan(ctx.X[:, idx]), np.nan, ctx.X[:, idx]), axis=0)
        centre = inp.add("count_intercept_centre", np.log(np.maximum(np.nan_to_num(means, nan=1.0), 0.5)))
        a = shifted(
            pm, pm.Normal, "count_intercept", centre, ctx.shifted(idx),
            sigma=inp.prior("count_intercept", "sigma", float(pri["count_intercept_sd"]["sigma"])),
            dims="count_item",
        )
        inv = prior(pm, "count_inv_dispersion", pri["inv_dispersion"], inp, dims="count_item")
        return a, inv, np.zeros(1)

    def kernel_widths(self, block):
        return 1, 1, 0  # intercept, inverse dispersion

    def kernel_params(self, P, s, block):
        return (np.asarray(P["count_intercept"][s], dtype=float),
                np.asarray(P["count_inv_dispersion"][s], dtype=float), np.zeros(1))

    def matrix_params(self, P, block):
        return {"a": np.asarray(P["count_intercept"])[..., None, :],
                "inv": np.asarray(P["count_inv_dispersion"])[..., None, :]}

    def cell_params(self, p1, p2, p3, j, block):
        return {"a": np.asarray(p1)[j], "inv": np.asarray(p2)[j]}

    def draw_cells(self, lp, prm, rng):
        mu = np.exp(np.clip(lp + prm["a"], -30, 15))
        # negative binomial as a gamma-Poisson mixture with shape alpha = 1 / inv
        alpha = 1.0 / np.maximum(prm["inv"], 1e-9)
        lam = rng.gamma(alpha, mu / alpha)
        return rng.poisson(lam).astype(float)

    def expected(self, P, lin, block, layout, std, caps=None):
        from scipy import stats

        a = np.asarray(P["count_intercept"])[..., None, :]
        inv = np.maximum(np.asarray(P["count_inv_dispersion"])[..., None, :], 1e-9)
        mu = np.exp(np.clip(lin + a, -30, 15))
        n = 1.0 / inv
        p = n / (n + mu)
        cap = layout.hi[block.idx] if caps is None else caps
        res = np.zeros(mu.shape)
        for j, c in enumerate(np.asarray(cap, dtype=int)):
            ks = np.arange(c)
            # E[min(Y, c)] = sum_{k=0}^{c-1} P(Y > k)
            sf = stats.nbinom.sf(ks, n[..., j, None], p[..., j, None])
            res[..., j] = sf.sum(-1) / c
        return res

    def residual_variance(self, P, block):
        # lognormal approximation at eta = 0: log(1 + 1/mu + 1/alpha)
        mu = np.exp(P["count_intercept"])
        return np.log1p(1.0 / mu + P["count_inv_dispersion"])

    def param_rows(self, name, P, block, layout, std):
        """The intercept of log mu (``item ~1``) and the inverse dispersion 1/alpha as the
        model stores it (``item ~~ item``: Var = mu + mu^2 / alpha; 0 is Poisson)."""
        if name == "count_inv_dispersion":
            return item_rows(layout, block, P[name], kind="dispersion", op="~~", scale="natural", variable=name,
                             label="inverse dispersion 1/alpha (Var = mu + mu^2/alpha)")
        return super().param_rows(name, P, block, layout, std)

    def ppc_bins(self, item):
        """0, then about five bins up to the cap, then the cap and above."""
        cap = max(float(item.max), 1.0)
        edges = np.unique(np.round(np.linspace(0, cap, 6)).astype(int))
        bins: list[tuple[float, float, str]] = [(0, 0, "0")]
        prev = 1
        for e in edges[1:]:
            e = int(e)
            if e - 1 >= prev:
                bins.append((prev, e - 1, f"{prev}" if e - 1 == prev else f"{prev}-{e - 1}"))
            prev = e
        bins.append((prev, np.inf, f"{prev}+"))
        return bins

    def check_statistics(self, v, item):
        """The share of zeros, then the mean and sd of the counts."""
        v = np.asarray(v, dtype=float)
        with np.errstate(all="ignore"):
            zeros = (v == 0).mean(axis=-1)[..., None]
        return np.concatenate([zeros, super().check_statistics(v, item)], axis=-1)

    def check_statistic_names(self, item):
        return ["share =0", "mean", "sd"]

    def typical_loading(self, loading):
        return 0.8 * loading / 1.5  # the log link / the residual make effects larger per unit

    def typical(self, layout, block, rng):
        return {"count_intercept": np.log(np.maximum(layout.hi[block.idx] / 3.0, 1.0)),
                "count_inv_dispersion": np.full(block.size, 0.3)}
