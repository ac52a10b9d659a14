"""What differs between the two supported stacks, in one place.

smeintl runs on

* Python 3.11 with PyMC 5, PyTensor 2 and ArviZ 0.x (results as ``arviz.InferenceData``), and
* Python 3.12 / 3.13 with PyMC 6, PyTensor 3 and ArviZ 1 (results as ``xarray.DataTree``).

A fit is an :class:`xarray.DataTree` on both: one child node per group (``posterior``,
``sample_stats``, ``log_likelihood``, ``posterior_predictive``, ``observed_data``,
``constant_data``), the fit's attrs on the root.  What a sampler returns goes through
:func:`as_fit`; the rest of the package reads groups with :func:`group` (an
:class:`xarray.Dataset`) and writes them with :func:`set_group`.  ArviZ's statistics are
called through the functions below, which hand ArviZ 0.x an ``InferenceData`` made from the
tree (``arviz.from_datatree``) and ArviZ 1 the tree itself, and return plain values.
A fit file is the tree's netCDF file (one netCDF group per fit group, as ArviZ writes
them); files written on either stack read back on both.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata as md
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["arviz_major", "as_fit", "new_fit", "fit_from_dict", "SAMPLED_GROUPS", "group", "has_group", "group_names", "set_group",
           "drop_group", "to_arviz", "write_fit", "read_fit", "rhat", "ess", "bfmi", "Loo", "loo", "compare", "psens",
           "psis_log_weights", "op_methods", "shared_names"]


@functools.cache
def arviz_major() -> int:
    """The installed ArviZ's major version (0 or 1)."""
    return int(md.version("arviz").split(".")[0])


def _arviz_1() -> bool:
    return arviz_major() >= 1


# ---------------------------------------------------------------------------- the fit object
def as_fit(obj):
    """A fit as an :class:`xarray.DataTree`: a tree is returned as it is, an ArviZ 0.x
    ``InferenceData`` converted (``InferenceData.to_datatree``, its attrs on the root)."""
    import xarray as xr

    if isinstance(obj, xr.DataTree):
        return obj
    if hasattr(obj, "to_datatree"):
        return obj.to_datatree()
    raise TypeError(f"expected a fit (xarray.DataTree or arviz.InferenceData), got {type(obj).__name__}")


def new_fit(groups: Mapping[str, Any], attrs: Mapping[str, Any] | None = None):
    """A fit made of ``groups`` (name -> :class:`xarray.Dataset`) with root ``attrs``."""
    import xarray as xr

    tree = xr.DataTree.from_dict({name: ds for name, ds in groups.items()})
    tree.attrs.update(dict(attrs or {}))
    return tree


#: groups whose variables have one value per draw (leading ``chain`` and ``draw`` dimensions)
SAMPLED_GROUPS = ("posterior", "posterior_predictive", "sample_stats", "log_likelihood", "log_prior", "prior",
                  "prior_predictive")


def fit_from_dict(groups: Mapping[str, Mapping[str, Any]], *, coords: Mapping[str, Any] | None = None,
                  dims: Mapping[str, Any] | None = None, attrs: Mapping[str, Any] | None = None):
    """A fit from numpy arrays: ``groups`` maps a group name to ``{variable: array}``.

    In the sampled groups (:data:`SAMPLED_GROUPS`) each array's first two axes are the
    chains and draws; ``dims`` names a variable's other axes (default
    ``<variable>_dim_<k>``) and ``coords`` labels any named dimension.  The same layout
    as ArviZ's ``from_dict``, without depending on which ArviZ is installed."""
    import xarray as xr

    coords, dims = dict(coords or {}), dict(dims or {})
    out = {}
    for gname, variables in groups.items():
        sampled = gname in SAMPLED_GROUPS
        data = {}
        for name, values in variables.items():
            a = np.asarray(values)
            lead = ("chain", "draw") if sampled else ()
            rest = list(dims.get(name, []))
            rest += [f"{name}_dim_{k}" for k in range(len(rest), a.ndim - len(lead))]
            vd = (*lead, *rest)
            data[name] = xr.DataArray(a, dims=vd, coords={d: coords[d] for d in vd if d in coords})
        ds = xr.Dataset(data)
        if sampled and data:
            ds = ds.assign_coords(chain=np.arange(ds.sizes["chain"]), draw=np.arange(ds.sizes["draw"]))
        out[gname] = ds
    return new_fit(out, attrs)


def group_names(fit) -> list[str]:
    """The fit's groups, in order."""
    return list(as_fit(fit).children)


def has_group(fit, name: str) -> bool:
    return name in as_fit(fit).children


def group(fit, name: str):
    """Group ``name`` of the fit (a tree, or an ArviZ 0.x ``InferenceData``) as an
    :class:`xarray.Dataset` (no data copied); ``KeyError`` when the fit has none."""
    fit = as_fit(fit)
    if name not in fit.children:
        raise KeyError(f"the fit has no {name!r} group (it has: {', '.join(fit.children) or 'none'})")
    return fit[name].to_dataset()


def set_group(fit, name: str, ds) -> None:
    """Add group ``name``, or replace it, with the :class:`xarray.Dataset` ``ds`` (its attrs kept)."""
    import xarray as xr

    if name in fit.children:
        del fit[name]
    fit[name] = xr.DataTree(ds)


def drop_group(fit, name: str) -> None:
    if name in fit.children:
        del fit[name]


def write_fit(fit, path: str) -> None:
    """Write the fit to one netCDF file (h5netcdf; one netCDF group per fit group)."""
    fit.to_netcdf(path, engine="h5netcdf")


def read_fit(path: str):
    """Read a fit file written on either stack, fully loaded (damaged bytes fail here)."""
    import xarray as xr

    with xr.open_datatree(path, engine="h5netcdf") as tree:
        fit = tree.load()
    # the tree's file stays closed: every array is in memory
    return fit


def to_arviz(fit):
    """What ArviZ's and PyMC's functions take (``pymc.compute_log_likelihood``,
    ``pymc.sample_posterior_predictive``, ...): the tree on the newer stack, an
    ``InferenceData`` on ArviZ 0.x."""
    if _arviz_1():
        return fit
    import arviz as az

    return az.from_datatree(fit)


# ---------------------------------------------------------------------------- diagnostics
def rhat(ds):
    """Rank-normalized split R-hat of every variable of the Dataset ``ds`` (a Dataset)."""
    import arviz as az

    return az.rhat(ds)


def ess(ds, method: str = "bulk", prob: tuple[float, float] | None = None):
    """Effective sample size (``"bulk"`` or ``"tail"``) of every variable of ``ds`` (a
    Dataset); ``prob``: the tail ESS's two quantiles, ArviZ's default where None (5% and
    95% on ArviZ 0.x, ArviZ 1's ``stats.ci_prob`` on ArviZ 1: 11% and 89%)."""
    import arviz as az

    return az.ess(ds, method=method) if prob is None else az.ess(ds, method=method, prob=prob)


def bfmi(fit) -> np.ndarray:
    """E-BFMI per chain (from ``sample_stats.energy``)."""
    import arviz as az

    if _arviz_1():
        out = az.bfmi(fit)
        if hasattr(out, "data_vars"):
            out = out["energy"]
        return np.asarray(out, dtype=float).ravel()
    return np.asarray(az.bfmi(to_arviz(fit)), dtype=float).ravel()


# ---------------------------------------------------------------------------- LOO
@dataclasses.dataclass(frozen=True)
class Loo:
    """PSIS-LOO of one fit: ``elpd`` with its standard error ``se``, the effective number
    of parameters ``p_loo``, and each observation's Pareto k."""

    elpd: float
    se: float
    p_loo: float
    pareto_k: np.ndarray


def loo(fit, var_name: str) -> Loo:
    """PSIS-LOO of the fit's ``log_likelihood[var_name]`` (pointwise Pareto k kept)."""
    import arviz as az

    res = az.loo(to_arviz(fit), var_name=var_name, pointwise=True)
    if _arviz_1():
        return Loo(float(res.elpd), float(res.se), float(res.p), np.asarray(res.pareto_k, dtype=float).ravel())
    return Loo(float(res.elpd_loo), float(res.se), float(res.p_loo), np.asarray(res.pareto_k, dtype=float).ravel())


def compare(fits: Mapping[str, Any], var_name: str):
    """ArviZ's LOO comparison (stacking weights) of fits of the same observations: a
    DataFrame indexed by model, best first, with ``rank``, ``elpd_diff`` (how far the
    model's ELPD is behind the best one's: 0 for the best, positive for the others, as
    ArviZ 0.x states it; ArviZ 1 gives it with the opposite sign), its standard error
    ``dse`` and ``weight`` (unrounded)."""
    import arviz as az

    if _arviz_1():
        table = az.compare(dict(fits), var_name=var_name, round_to=None).copy()
        table["elpd_diff"] = -table["elpd_diff"]
    else:
        table = az.compare({k: to_arviz(f) for k, f in fits.items()}, ic="loo", var_name=var_name)
    return table[["rank", "elpd_diff", "dse", "weight"]]


# ---------------------------------------------------------------------------- power scaling
def psens(fit, component: str, delta: float) -> dict[str, float]:
    """Power-scaling sensitivity (cumulative Jensen-Shannon distance per log2 change of the
    power) of every posterior variable of ``fit`` to its ``component`` (``"prior"``: the
    ``log_prior`` group; ``"likelihood"``: ``log_likelihood``), by powers
    ``1 / (1 + delta)`` and ``1 + delta``."""
    import arviz as az

    if _arviz_1():
        res = az.psense(fit, group=component, alphas=(1.0 / (1.0 + delta), 1.0 + delta))
    else:
        res = az.psens(to_arviz(fit), component=component, delta=delta)
    return {str(k): float(np.asarray(v)) for k, v in res.data_vars.items()}


def psis_log_weights(log_ratios: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed importance weights (log, normalized) of one vector of log ratios
    and the Pareto k of their tail."""
    log_ratios = np.asarray(log_ratios, dtype=float)
    if _arviz_1():
        from arviz_stats.base import array_stats

        # arviz_stats takes the negated log ratios (the log-likelihood in PSIS-LOO), as its
        # own callers pass them (``(-log_ratios).azstats.psislw()``)
        lw, k = array_stats.psislw(-log_ratios)
    else:
        import arviz as az

        lw, k = az.psislw(log_ratios)
    return np.asarray(lw, dtype=float), float(np.asarray(k))


# ---------------------------------------------------------------------------- PyTensor
def op_methods(cls):
    """Class decorator for a PyTensor ``Op`` written against PyTensor 3: its gradient in
    ``pullback(inputs, outputs, cotangents)`` and its shape in ``infer_shape(node, shapes)``.
    PyTensor 2 calls ``L_op`` (same arguments) and ``infer_shape(fgraph, node, shapes)``:
    where the installed PyTensor lacks ``Op.pullback``, those are added, calling the former."""
    from pytensor.graph.op import Op

    if not hasattr(Op, "pullback"):
        if "pullback" in cls.__dict__:
            cls.L_op = lambda self, inputs, outputs, grads: self.pullback(inputs, outputs, grads)
        if "infer_shape" in cls.__dict__:
            shape = cls.__dict__["infer_shape"]
            cls.infer_shape = lambda self, fgraph, node, shapes, _shape=shape: _shape(self, node, shapes)
    return cls


# ---------------------------------------------------------------------------- nutpie
def shared_names(compiled) -> list[str]:
    """The names of the shared variables a compiled nutpie model reads (what its
    ``with_data`` takes): nutpie up to 0.16.8 keys its ``shared_data`` by name, later
    versions by an id, with the variables in ``shared_var_keys``."""
    keys = getattr(compiled, "shared_var_keys", None)
    if keys:
        return [str(v.name) for v in keys]
    return [str(k) for k in compiled.shared_data]
