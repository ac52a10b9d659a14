"""Model parameters named in a study: the SBC parameter syntax (``NAME`` or
``NAME[i, j]`` with positions or labels), the dimensions of each parameter and the
labels of a dimension in the order of the true arrays."""

from __future__ import annotations

import re
from typing import Mapping

from ..spec import Spec

_SBC_PARAM_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[([^\]]*)\])?\s*$")
_STRUCTURE_NAMES = ("loading", "corr", "eta", "group_mean", "group_sd")


def _sbc_names() -> tuple[str, ...]:
    """Parameters an SBC may track: the latent structure's and every item family's
    per-item parameters (one item dimension)."""
    from .. import families

    return _STRUCTURE_NAMES + tuple(n for f in families.families() for n in f.params
                                    if len(f.param_dims(n, families.Block(f, f.name, ()))) == 1)


def _family_blocks(spec: Spec) -> dict[str, list]:
    """Per item dimension (``<prefix>_item``), the blocks of the spec's items that have it."""
    from ..measurement import ItemLayout

    out: dict[str, list] = {}
    for b in ItemLayout.from_spec(spec).blocks():
        out.setdefault(b.family.item_dim(b), []).append(b)
    return out


def _default_sbc_parameters(spec: Spec, grid: Mapping[str, tuple]) -> list[str]:
    out = ["loading[0]", "eta[0, 0]"]
    if len(spec.constructs) > 1:
        out.append("corr[0, 1]")
    if spec.group_column is not None and max(grid.get("n_groups", (1,))) > 1 and min(grid.get("n_groups", (1,))) > 1:
        out.append("group_mean[0, 0]")
    return out


def _parse_sbc_parameter(text: str) -> tuple[str, tuple[str | int, ...]]:
    m = _SBC_PARAM_RE.match(text)
    if not m:
        raise ValueError("expected NAME or NAME[i, j] with positions or labels")
    name, inner = m.group(1), m.group(2)
    idx: list[str | int] = []
    if inner is not None and inner.strip():
        for tok in inner.split(","):
            tok = tok.strip().strip("'\"")
            idx.append(int(tok) if re.fullmatch(r"-?\d+", tok) else tok)
    return name, tuple(idx)


def _param_dims(spec: Spec, name: str) -> tuple[str, ...] | None:
    from ..measurement import ItemLayout

    lay = ItemLayout.from_spec(spec)
    if name == "loading":
        return ("item",)
    if name == "corr":
        return ("construct", "construct_") if len(lay.constructs) > 1 else None
    if name == "eta":
        return ("firm", "construct")
    if name == "group_mean":
        return ("group", "construct") if spec.group_column else None
    if name == "group_sd":
        return ("construct",) if spec.group_column else None
    for blocks in _family_blocks(spec).values():
        b = blocks[0]
        if name in b.family.param_names(b):
            return b.family.param_dims(name, b)
    return None


def _dim_labels(spec: Spec, dim: str, n_firms: int = 0, n_groups: int = 0) -> list[str]:
    """Labels of a model dimension in *natural* order (the order of the true arrays:
    simulate's firm and group order, the spec's item and construct order)."""
    from ..measurement import ItemLayout

    lay = ItemLayout.from_spec(spec)
    if dim == "item":
        return list(lay.names)
    if dim in ("construct", "construct_"):
        return list(lay.constructs)
    if dim == "firm":
        return [f"S{f + 1:05d}" for f in range(n_firms)]
    if dim == "group":
        return [f"G{g + 1}" for g in range(n_groups)]
    blocks = _family_blocks(spec).get(dim)
    if blocks:
        return [lay.names[k] for b in blocks for k in b.idx]
    raise KeyError(dim)


def _check_sbc_parameter(text: str, spec: Spec, grid: Mapping[str, tuple]) -> str | None:
    try:
        name, idx = _parse_sbc_parameter(text)
    except ValueError as exc:
        return str(exc)
    if name not in _sbc_names():
        return f"unknown parameter {name!r}; known: {', '.join(_sbc_names())}"
    dims = _param_dims(spec, name)
    if dims is None:
        return f"the instrument {spec.name!r} has no parameter {name!r}"
    if name == "group_mean" or name == "group_sd":
        if min(grid.get("n_groups", (1,))) < 2:
            return "needs n_groups >= 2 in every condition (the fit has no group level otherwise)"
    if len(idx) != len(dims):
        return f"needs {len(dims)} index(es) ({', '.join(dims)}), got {len(idx)}"
    if name == "corr" and idx[0] == idx[1]:
        return "a diagonal element of the correlation matrix is constant 1"
    n_firms = min(grid.get("n_firms", (1,)))
    n_groups = min(grid.get("n_groups", (1,)))
    for d, i in zip(dims, idx):
        labels = _dim_labels(spec, d, n_firms, n_groups)
        if isinstance(i, int):
            if not 0 <= i < len(labels):
                return f"position {i} out of range for {d} (0 to {len(labels) - 1} in every condition)"
        elif i not in labels:
            return f"{i!r} is not a {d} label; labels: {labels[:10]}"
    return None
