"""Ordinal items (``likert``, ``stage``): graded response / ordered logistic model with
per-item cutpoints over the full declared range."""

from __future__ import annotations

import numpy as np

from .base import Block, Family, log_sigmoid, sigmoid
from .model import default_cutpoint_means, shifted

__all__ = ["Ordinal", "ordered_logp", "padded_cutpoints"]


def ordered_logp(lin: np.ndarray, cut: np.ndarray, k: np.ndarray) -> np.ndarray:
    """log P(y = k) of an ordered logit, only for the observed category, in log space as
    the PyMC model computes it: with a = c_{k+1} - lin and b = c_k - lin (c_0 = -inf,
    c_K = +inf), log(sigmoid(a) - sigmoid(b)) = log sigmoid(a) + log sigmoid(-b) +
    log(1 - exp(c_k - c_{k+1})).

    ``lin`` (F, Q, n); ``cut`` (n, K-1), or (Q, n, K-1) for cutpoints that vary along
    ``lin``'s second axis (one set per draw); ``k`` (F, 1, n) ints."""
    edge = np.full(cut.shape[:-1] + (1,), np.inf)
    cpad = np.concatenate([-edge, cut, edge], axis=-1)  # (..., n, K + 1)
    j = np.arange(cut.shape[-2])
    if cut.ndim == 2:
        lo, hi = cpad[j, k], cpad[j, k + 1]  # (F, 1, n): gathered before broadcasting against lin
    else:
        q = np.arange(cut.shape[0])[:, None]
        lo, hi = cpad[q, j, k], cpad[q, j, k + 1]  # (F, Q, n)
    with np.errstate(divide="ignore", over="ignore"):
        gap = np.log1p(-np.exp(lo - hi))  # 0 at the open ends
        return log_sigmoid(hi - lin) + log_sigmoid(lin - lo) + gap


def padded_cutpoints(pt, cut, n_items: int):
    """``[-C, c_1, ..., c_K-1, C]`` per item, flattened (the kernels' layout)."""
    from .kernels import OUTER_CUT

    outer = np.full((n_items, 1), OUTER_CUT)
    return pt.concatenate([-outer, cut, outer], axis=1).reshape((-1,))


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

    def build(self, ctx, block):
        from .kernels import add_cells_potential, ordered_transform

        pm, inp, idx, K = ctx.pm, ctx.inputs, block.idx, block.n_categories
        # cutpoints move against the linear predictor: cutpoints_std = cutpoints - shift
        cut = shifted(
            pm, pm.Normal, f"cutpoints_{K}",
            np.tile(default_cutpoint_means(K), (idx.size, 1)),
            None if ctx.shift is None else -ctx.shift[idx][:, None],
            sigma=inp.prior(f"cutpoints_{K}", "sigma", float(ctx.priors["cutpoint_sd"]["sigma"])),
            dims=(f"ordinal{K}_item", f"cut{K}"),
            transform=ordered_transform(),
        )
        f, j, y = ctx.cells(idx)
        if f.size:
            y = (y - ctx.layout.lo[idx][j]).astype(int)
            add_cells_potential(ctx, "ordinal", f"ordinal{K}", idx, f, j, np.zeros(idx.size),
                                 padded_cutpoints(ctx.pt, cut, idx.size), pos=j * (K + 1) + y)

    def shift_location(self, P, d, block):
        key = self.param_names(block)[0]
        return {key: np.asarray(P[key], dtype=float) - d[:, None]}  # cutpoints move against it

    def draw(self, P, lin, block, layout, rng, std):
        cut = np.asarray(P[f"cutpoints_{block.n_categories}"])  # (..., n, K-1)
        p_ge = sigmoid(lin[..., None] - cut[..., None, :, :])  # P(y >= k+1)
        u = rng.random(lin.shape)
        cat = (u[..., None] < p_ge).sum(-1)
        return layout.lo[block.idx] + cat

    def expected(self, P, lin, block, layout, std, caps=None):
        K = block.n_categories
        cut = np.asarray(P[f"cutpoints_{K}"])
        p_ge = sigmoid(lin[..., None] - cut[..., None, :, :])  # (..., F, n, K-1)
        # E[category] = sum_k P(y >= k)
        return p_ge.sum(-1) / (K - 1)

    def loglik(self, P, s, lin, y, block, layout, std):
        obs = ~np.isnan(y)
        k = np.where(obs, y - layout.lo[block.idx], 0).astype(int)[:, None, :]
        lp = ordered_logp(lin, P[f"cutpoints_{block.n_categories}"][s], k)
        return np.where(obs[:, None, :], lp, 0.0)

    def typical(self, layout, block, rng):
        K = block.n_categories
        base = np.linspace(-2.0, 2.0, K - 1)
        return {f"cutpoints_{K}": np.tile(base, (block.size, 1)) + rng.normal(0, 0.2, (block.size, 1))}
