"""Ordinal items (``likert``, ``stage``): graded response / ordered logistic model with
per-item cutpoints over the full declared range."""

from __future__ import annotations

import numpy as np

from .base import Block, Family, ParameterRow, sigmoid
from .model import default_cutpoint_means, shifted

__all__ = ["Ordinal", "padded_cutpoints"]


def padded_cutpoints(xp, cut, n_items: int):
    """``[-C, c_1, ..., c_K-1, C]`` per item, flattened (the kernels' layout); ``xp``:
    ``pytensor.tensor`` for a graph, ``numpy`` for values."""
    from .kernels import OUTER_CUT

    outer = np.full((n_items, 1), OUTER_CUT)
    return xp.concatenate([-outer, cut, outer], axis=1).reshape((-1,))


class Ordinal(Family):
    name = "ordinal"
    scales = ("likert", "stage")
    whole_numbers = True
    ordinal = True
    color = "#1b9e77"
    model_text = "ordered logistic (graded response) with per-item cutpoints over the full declared range"

    def item_range(self, it, scale, key, problems):
        n = len(problems)
        lo, hi = self.checked_range(it.get("min", 0 if scale == "stage" else None), it.get("max"),
                                    scale, key, problems)
        if len(problems) == n and (int(lo) != lo or int(hi) != hi):
            problems.append(f"{key}: ordinal scale {scale!r} needs whole-number 'min' and 'max'")
        return lo, hi

    def n_categories(self, item) -> int:
        return int(round(item.max - item.min)) + 1

    def categories(self, item) -> np.ndarray:
        return np.arange(int(item.min), int(item.max) + 1)

    def ppc_statistics(self, v, item):
        with np.errstate(all="ignore"):
            return np.stack([(np.rint(v) == c).mean(axis=-1) for c in self.categories(item)], axis=-1)

    def ppc_labels(self, item):
        return [str(c) for c in self.categories(item)]

    def check_statistics(self, v, item):
        """The share of each answer category, then the mean and sd of the answers."""
        v = np.asarray(v, dtype=float)
        with np.errstate(all="ignore"):
            shares = [(np.rint(v) == c).mean(axis=-1) for c in self.categories(item)]
        return np.concatenate([np.stack(shares, axis=-1), super().check_statistics(v, item)], axis=-1)

    def check_statistic_names(self, item):
        return [f"share ={c}" for c in self.categories(item)] + ["mean", "sd"]

    def check_cells(self, v, item, observed):
        """One cell per answer category."""
        v = np.asarray(v, dtype=float)
        k = self.n_categories(item)
        with np.errstate(invalid="ignore"):
            c = np.clip(np.rint(v) - item.min, 0, k - 1)
        return np.where(np.isfinite(v), c, -1).astype(np.int64), k

    def allowed(self, item, lo, hi):
        return f"whole numbers {lo} to {hi} ({item.scale})"

    def blocks(self, layout, idx):
        by_k: dict[int, list[int]] = {}
        for k in idx:
            K = int(round(layout.hi[k] - layout.lo[k])) + 1
            by_k.setdefault(K, []).append(int(k))
        return [Block(self, f"ordinal{K}", np.array(v, dtype=int), K) for K, v in sorted(by_k.items())]

    def item_dim(self, block):
        return f"ordinal{block.n_categories}_item"

    def coords(self, layout, block):
        K = block.n_categories
        return {f"ordinal{K}_item": [layout.names[k] for k in block.idx], f"cut{K}": list(range(1, K))}

    def param_names(self, block):
        return (f"cutpoints_{block.n_categories}",)

    def param_dims(self, name, block):
        return (self.item_dim(block), f"cut{block.n_categories}")

    kernel = "ordinal"

    def encode(self, y, j, block, layout, std):
        return y - layout.lo[block.idx][j]  # the category, 0 to K-1

    def decode(self, v, j, block, layout, std):
        return layout.lo[block.idx][j] + v

    def positions(self, j, v, block):
        # the flat position of the observed category's lower cutpoint in the padded cutpoints
        return j * (block.n_categories + 1) + v.astype("int64")

    def build_params(self, ctx, block):
        pm, inp, idx, K = ctx.pm, ctx.inputs, block.idx, block.n_categories
        from .kernels import ordered_transform

        # cutpoints move against the linear predictor: cutpoints_std = cutpoints - shift
        cut = shifted(
            pm, pm.Normal, f"cutpoints_{K}",
            np.tile(default_cutpoint_means(K), (idx.size, 1)),
            None if ctx.shift is None else -ctx.shift[idx][:, None],
            sigma=inp.prior(f"cutpoints_{K}", "sigma", float(ctx.priors["cutpoint_sd"]["sigma"])),
            dims=(f"ordinal{K}_item", f"cut{K}"),
            transform=ordered_transform(),
        )
        return np.zeros(idx.size), padded_cutpoints(ctx.pt, cut, idx.size), np.zeros(1)

    def kernel_widths(self, block):
        return 1, block.n_categories + 1, 0  # the location offset, the padded cutpoints

    def kernel_params(self, P, s, block):
        cut = np.asarray(P[f"cutpoints_{block.n_categories}"][s], dtype=float)
        return np.zeros(block.size), padded_cutpoints(np, cut, block.size), np.zeros(1)

    def matrix_params(self, P, block):
        return {"cut": np.asarray(P[f"cutpoints_{block.n_categories}"])[..., None, :, :]}

    def cell_params(self, p1, p2, p3, j, block):
        K = block.n_categories
        return {"cut": np.asarray(p2).reshape(-1, K + 1)[:, 1:-1][j]}

    def shift_location(self, P, d, block):
        key = self.param_names(block)[0]
        return {key: np.asarray(P[key], dtype=float) - np.asarray(d)[..., None]}  # cutpoints move against it

    def draw_cells(self, lp, prm, rng):
        p_ge = sigmoid(lp[..., None] - prm["cut"])  # P(y >= k+1)
        u = rng.random(lp.shape)
        return (u[..., None] < p_ge).sum(-1).astype(float)

    def expected(self, P, lin, block, layout, std, caps=None):
        K = block.n_categories
        cut = np.asarray(P[f"cutpoints_{K}"])
        p_ge = sigmoid(lin[..., None] - cut[..., None, :, :])  # (..., F, n, K-1)
        # E[category] = sum_k P(y >= k)
        return p_ge.sum(-1) / (K - 1)

    def param_rows(self, name, P, block, layout, std):
        """Thresholds ``item | t<k>`` (logit scale): category min + k and above are more
        likely than those below from a linear predictor above the k-th cutpoint."""
        cut = np.asarray(P[name], dtype=float)
        rows = []
        for j, k in enumerate(block.idx):
            item, construct = layout.names[k], layout.constructs[layout.construct[k]]
            lo = int(layout.lo[k])
            for c in range(block.n_categories - 1):
                rows.append(ParameterRow("threshold", item, "|", f"t{c + 1}", self.link, name, cut[:, j, c],
                                         f"threshold between categories {lo + c} and {lo + c + 1}", item, construct))
        return rows

    def typical(self, layout, block, rng):
        K = block.n_categories
        base = np.linspace(-2.0, 2.0, K - 1)
        return {f"cutpoints_{K}": np.tile(base, (block.size, 1)) + rng.normal(0, 0.2, (block.size, 1))}
