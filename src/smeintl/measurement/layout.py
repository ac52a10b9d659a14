"""The items of a spec as numeric arrays, and their likelihood blocks (one per family,
or per number of categories for ordinal items)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import families as fam
from ..spec import Spec

__all__ = ["ItemLayout", "standardization_of"]


@dataclass(frozen=True)
class ItemLayout:
    """Numeric description of the items of a spec (one entry per item, spec order)."""

    names: tuple[str, ...]
    scales: tuple[str, ...]
    construct: np.ndarray  # (I,) construct index
    sign: np.ndarray  # (I,) +1, or -1 for reverse-coded items
    lo: np.ndarray
    hi: np.ndarray
    constructs: tuple[str, ...]

    @classmethod
    def from_spec(cls, spec: Spec) -> "ItemLayout":
        cn = spec.construct_names
        return cls(
            names=spec.item_names,
            scales=tuple(i.scale for i in spec.items),
            construct=np.array([cn.index(i.construct) for i in spec.items], dtype=int),
            sign=np.array([-1.0 if i.reverse else 1.0 for i in spec.items]),
            lo=np.array([i.min for i in spec.items], dtype=float),
            hi=np.array([i.max for i in spec.items], dtype=float),
            constructs=cn,
        )

    def family(self, family: str) -> np.ndarray:
        """Indices of the items of one likelihood family (by its name)."""
        scales = {f.name: f.scales for f in fam.families()}.get(family, ())
        return np.array([k for k, s in enumerate(self.scales) if s in scales], dtype=int)

    def blocks(self) -> list[fam.Block]:
        """Likelihood blocks in model order: the registry's families, each split as it says."""
        out: list[fam.Block] = []
        for f in fam.families():
            out += f.blocks(self, self.family(f.name))
        return out

    def families(self) -> list[fam.Family]:
        """The item family of each item."""
        return [fam.family_of(s) for s in self.scales]

    def ordinal_groups(self) -> dict[int, np.ndarray]:
        """Ordinal items grouped by their number of categories K."""
        return {b.n_categories: b.idx for b in self.blocks() if b.n_categories is not None}

    @property
    def n_categories(self) -> np.ndarray:
        return np.round(self.hi - self.lo).astype(int) + 1

    @property
    def all_continuous(self) -> bool:
        return all(f.linear for f in self.families())


def standardization_of(layout: ItemLayout, X: np.ndarray | None = None) -> dict[str, np.ndarray] | None:
    """Centre and scale of the continuous items (None without continuous items).

    With the answers ``X`` (firms x items, spec order, NaN missing): each item's sample mean
    and sd (ddof 1) over its answers, the scale the model is fitted on, so that the default
    priors mean the same whatever the item's units or declared range.  Without: the
    midpoint and range / 6 of the declared range, the scale on which simulated surveys
    (:mod:`smeintl.simulate`) state their true parameters."""
    idx = layout.family("continuous")
    if not idx.size:
        return None
    if X is None:
        return fam.standardization(layout.lo[idx], layout.hi[idx])
    from ..errors import UserError

    Z = np.asarray(X, dtype=float)[:, idx]
    n = (~np.isnan(Z)).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(n > 0, Z, 0.0), axis=0)
        sd = np.array([np.nanstd(Z[:, k], ddof=1) if n[k] > 1 else np.nan for k in range(idx.size)])
    bad = [layout.names[j] for j, v in zip(idx, sd) if not (np.isfinite(v) and v > 0)]
    if bad:
        raise UserError(f"continuous item(s) {', '.join(map(repr, bad))}: fewer than two distinct answers; a "
                        "continuous item needs answers that vary to be modelled (drop it, or declare its scale)")
    return {"mean": mean, "sd": sd}
