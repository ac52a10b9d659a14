"""One compiled nutpie model per model structure, reused across data, priors and processes.

nutpie compiles a PyMC model's log-density and its gradient to a numba C callback.
:class:`~smeintl.measurement.MeasurementModel` puts every data array and every prior
setting into shared variables (``measurement._Inputs``), so models that differ only in
those values (a refit under wider priors, the replications of a simulation study, the
same instrument on a new survey with as many firms) are the same function of them.

:func:`sample` keys each model by :func:`structure_key` (the graph, its constants, and
the names and types of its shared variables, but not their values), compiles the first
model of each structure, and for the next ones swaps in the new shared values
(``CompiledPyMCModel.with_data``), the new initial-point function and the new
coordinates.  Reuse is exact: the same seed gives the same draws as a fresh compile
(``tests/test_compiled.py``).  The cache lives in the process and holds the last
:data:`CACHE_SIZE` structures.

Across processes, :func:`_compile` is nutpie's ``compile_pymc_model`` with two disk
caches under PyTensor's compile directory.  The PyTensor functions of each structure (the
rewritten log-density, gradient and expand graphs) are pickled without the data, so a new
process unpickles them instead of rewriting the graphs again (about 5 s).  The C callbacks
are numba-cached, keyed by PyTensor's own key of the compiled graph: nutpie's callbacks are
closures over a numba dispatcher, which numba cannot key, so without this every new
process linked the whole log-density into the callback and optimized it again (15-20 s
for the default instrument).  With both, a new process compiles a known structure in
about 4 s; a model whose graph PyTensor cannot key (an operation without a cache key)
compiles its callbacks as nutpie does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import sys
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["structure_key", "sample", "clear_cache", "CACHE_SIZE"]

#: compiled models kept in the process (least recently used dropped first)
CACHE_SIZE = 8
_CACHE: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every compiled model of this process."""
    with _LOCK:
        _CACHE.clear()


def _graph_outputs(model) -> list:
    # deterministics in terms of the value variables, as nutpie compiles them (no RNGs)
    return [model.logp(), *model.replace_rvs_by_values(model.deterministics)]


def structure_key(model, outs: list | None = None) -> str:
    """A hash of everything that the compiled model depends on except shared values.

    The printed graph of the log-density and of the deterministics, every constant's
    dtype, shape and bytes, every shared variable's name and type, the value of each
    dimension length (the number of free parameters depends on them) and the value
    variables' names and transforms.  Data and prior settings held in shared variables
    are left out: models that differ only in them share a key.
    """
    import pytensor
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs

    outs = _graph_outputs(model) if outs is None else outs
    h = hashlib.sha256()
    # node ids are letters in traversal order: the same for every build of one structure
    h.update(pytensor.printing.debugprint(outs, file="str", print_type=True).encode())
    dims = {name: int(length.get_value()) if isinstance(length, SharedVariable) else int(length.eval())
            for name, length in model.dim_lengths.items()}
    h.update(repr(sorted(dims.items())).encode())
    h.update(repr([(v.name, str(v.type), type(model.rvs_to_transforms.get(model.values_to_rvs[v])).__name__)
                   for v in model.value_vars]).encode())
    for v in graph_inputs(outs):
        if isinstance(v, Constant):
            data = np.asarray(v.data)
            h.update(f"C{data.dtype}{data.shape}".encode())
            h.update(np.ascontiguousarray(data).tobytes())
        elif isinstance(v, SharedVariable):
            h.update(f"S{v.name}{v.type}".encode())
    return h.hexdigest()


def _shared_values(outs: list) -> dict[str, np.ndarray]:
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    return {v.name: v.get_value() for v in graph_inputs(outs) if isinstance(v, SharedVariable) and v.name is not None}


def _init_fn(model):
    """PyMC's initial-point function of ``model`` as nutpie makes it (support point, jittered)."""
    from pymc.initial_point import make_initial_point_fn

    return make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs), default_strategy="support_point",
                                 return_transformed=True)


def _flat_init(model, init, shapes: dict[str, tuple[int, ...]]):
    """``init`` flattened into nutpie's vector of free parameters, as nutpie does."""
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper, _wrap_with_lock

    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    return _rv_dict_to_flat_array_wrapper(_wrap_with_lock(init), names=names, shapes=[shapes[n] for n in names])


def _values_for(names, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's value of each shared variable the compiled functions read."""
    missing = [n for n in names if n not in values]
    if missing:  # cannot happen for equal keys; refuse rather than sample the wrong model
        raise RuntimeError(f"compiled model does not match: no shared variable(s) {missing}")
    return {n: values[n] for n in names}


def _rebind(compiled, model, values: dict[str, np.ndarray], init):
    """The compiled model of another model of the same structure, bound to ``model``
    (``values``: its shared values; ``init``: its initial-point function)."""
    import pandas as pd

    out = compiled.with_data(**_values_for(compiled.shared_data, values))
    coords = dict(compiled.coords or {})
    for name, vals in model.coords.items():
        if vals is not None:
            coords[name] = pd.Index(vals)
    # the new model's initial points (they depend on its priors)
    return dataclasses.replace(out, initial_point_func=_flat_init(model, init, compiled.shapes), _coords=coords)


# PyTensor functions of each structure (nutpie's ``_make_functions``: the rewritten
# log-density, gradient and expand graphs), pickled under PyTensor's compile directory:
# a new process unpickles them (under 1 s) instead of rewriting the graphs (about 5 s).
# The shared values (the survey's data) are emptied before pickling: the file holds the
# graph only, and the current model's values are swapped in as for a cached model.
_FUNCTIONS_VERSION = "1"


def _functions_path(key: str) -> Path:
    import pytensor

    return Path(pytensor.config.base_compiledir) / "smeintl_functions" / f"{key}.pkl"


def _versions() -> tuple[str, ...]:
    """What both disk caches depend on besides the graph: Python and the compiling packages."""
    import numba
    import nutpie
    import pymc
    import pytensor

    return (sys.version, pytensor.__version__, pymc.__version__, nutpie.__version__, numba.__version__)


def _disk_key(key: str) -> str:
    return hashlib.sha256(repr((_FUNCTIONS_VERSION, key, _versions())).encode()).hexdigest()


def _load_functions(key: str):
    path = _functions_path(key)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception:  # noqa: BLE001 - an unreadable entry is compiled again and replaced
        return None


def _save_functions(key: str, functions: tuple) -> None:
    """Pickle ``functions`` atomically, with every shared value emptied while it is written."""
    path = _functions_path(key)
    shared = {v for fn in functions[2:4] for v in fn.get_shared()}
    saved = {v: v.get_value(borrow=True) for v in shared}
    tmp = None
    try:
        for v in shared:
            try:
                v.set_value(np.zeros((0,) * v.type.ndim, dtype=v.type.dtype), borrow=True)
            except Exception:  # noqa: BLE001 - a static shape: keep the value
                pass
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as fh:
            tmp = fh.name
            pickle.dump(functions, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
    except Exception:  # noqa: BLE001 - no disk cache (read-only, unpicklable): compile next time
        pass
    finally:
        for v, value in saved.items():
            v.set_value(value, borrow=True)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


# The C callbacks that nutpie's sampler calls: nutpie's own ``_make_c_logp_func`` and
# ``_make_c_expand_func``, written as module-level source so that numba can cache them on
# disk.  nutpie defines them as closures over a numba dispatcher, whose pickle differs in
# every process, so numba's cache never hits and every new process links the whole
# log-density into the callback and optimizes it again (most of a warm compile).
_CALLBACK_VERSION = "1"
_LOGP_SRC = """
def logp_numba(dim, x_, out_, logp_, user_data_):
    if dim != n_dim:
        return -1
    try:
        x = numba.carray(x_, (n_dim,))
        out = numba.carray(out_, (n_dim,))
        logp = numba.carray(logp_, ())
        logp_val, grad = extract(x, user_data_)
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:  # noqa: BLE001
        return 1
    return 0
"""
_EXPAND_SRC = """
def expand_numba(dim, expanded, x_, out_, user_data_):
    if dim != n_dim:
        return -1
    if expanded != n_expanded:
        return -1
    try:
        x = numba.carray(x_, (n_dim,))
        out = numba.carray(out_, (n_expanded,))
        (values,) = extract(x, user_data_)
        out[...] = values
    except Exception:  # noqa: BLE001
        return -2
    return 0
"""


def _callback(src: str, name: str, c_sig, inner_key: str | None, extract, user_data, shared_names,
              n_dim: int, n_expanded: int):
    """numba C callback of ``src``, disk-cached when PyTensor could key the inner function."""
    import numba
    import pytensor
    from pytensor.link.numba.cache import compile_numba_function_src

    env = {"__name__": __name__, "np": np, "numba": numba, "extract": extract, "n_dim": n_dim, "n_expanded": n_expanded}
    if inner_key is not None:
        # everything the callback's code depends on: the inner function (PyTensor's key of
        # its graph), the layout of the shared data, the sizes, the source and the versions
        parts = (_CALLBACK_VERSION, src, inner_key, user_data.dtype.descr, tuple(shared_names), n_dim, n_expanded,
                 pytensor.config.numba__fastmath, _versions())
        key = hashlib.sha256(repr(parts).encode()).hexdigest()
        try:
            with warnings.catch_warnings():
                # data over 1 MB frozen into the callback (nutpie's template of the shared
                # arrays) make it uncacheable; numba then compiles it as before
                warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=numba.NumbaWarning)
                return numba.cfunc(c_sig, cache=True)(
                    compile_numba_function_src(src, name, global_env=env, cache_key=key))
        except Exception as exc:  # noqa: BLE001 - an unreadable cache entry must not stop the fit
            warnings.warn(f"numba's disk cache of the compiled model could not be used ({type(exc).__name__}: "
                          f"{exc}); compiling it again", RuntimeWarning, stacklevel=3)
    return numba.cfunc(c_sig)(compile_numba_function_src(src, name, global_env=env))


def _compile(model, key: str, values: dict[str, np.ndarray], init):
    """nutpie's ``compile_pymc_model(model)`` (numba backend, default settings), with
    PyTensor functions and C callbacks cached on disk (``key``: the structure's key;
    ``values``: the model's shared values; ``init``: its initial-point function)."""
    import numba
    from nutpie.compile_pymc import (CompiledPyMCModel, _make_functions, _prepare_dims_and_coords,
                                     _wrap_with_lock, make_extraction_fn, make_user_data)
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    dkey = _disk_key(key)
    functions = _load_functions(dkey)
    if functions is None:
        n_dim, n_expanded, logp_fn_pt, expand_fn_pt, _init, shape_info = _make_functions(
            model, mode="NUMBA", compute_grad=True, join_expanded=True, pymc_initial_point_fn=_wrap_with_lock(init))
        functions = (n_dim, n_expanded, logp_fn_pt, expand_fn_pt, shape_info)
        _save_functions(dkey, functions)
    n_dim, n_expanded, logp_fn_pt, expand_fn_pt, shape_info = functions
    shapes = {n: tuple(sh) for n, _, sh in zip(*shape_info)}
    shared_vars: dict[str, Any] = {}
    for val in [*logp_fn_pt.get_shared(), *expand_fn_pt.get_shared()]:
        if val.name in shared_vars and shared_vars[val.name] is not val:
            raise ValueError(f"Shared variables must have unique names: {val.name}")
        shared_vars[val.name] = val
    # the model's own values (functions from the disk cache hold empty ones)
    shared_data = {n: np.array(v, order="C", copy=True) for n, v in _values_for(shared_vars, values).items()}
    for arr in shared_data.values():
        arr.flags.writeable = False
    user_data = make_user_data(shared_vars, shared_data)

    d = numba.types
    callbacks = []
    for fn_pt, src, name, sig in (
        (logp_fn_pt, _LOGP_SRC, "logp_numba",
         d.int64(d.uint64, d.CPointer(d.double), d.CPointer(d.double), d.CPointer(d.double), d.voidptr)),
        (expand_fn_pt, _EXPAND_SRC, "expand_numba",
         d.int64(d.uint64, d.uint64, d.CPointer(d.double), d.CPointer(d.double), d.voidptr)),
    ):
        inner = fn_pt.vm.jit_fn
        names = [v.name for v in fn_pt.get_shared()]
        extract = make_extraction_fn(inner, shared_data, names, user_data.dtype)
        callbacks.append(_callback(src, name, sig, CACHED_SRC_FUNCTIONS.get(inner.py_func), extract,
                                   user_data, names, n_dim, n_expanded))
    dims, coords = _prepare_dims_and_coords(model, shape_info)
    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords, _shapes=shapes,
        compiled_logp_func=callbacks[0], compiled_expand_func=callbacks[1],
        initial_point_func=_flat_init(model, init, shapes),
        shared_data=shared_data, user_data=user_data, n_expanded=n_expanded, shape_info=shape_info,
        logp_func=logp_fn_pt, expand_func=expand_fn_pt)


def compiled_model(model) -> tuple[Any, bool, float]:
    """``(compiled nutpie model, reused?, seconds)`` for ``model``."""
    t0 = time.perf_counter()
    outs = _graph_outputs(model)
    init = _init_fn(model)
    # the free parameters' shapes too: the compiled functions are built for them
    shapes = sorted((name, np.shape(v)) for name, v in init(0).items())
    key = hashlib.sha256((structure_key(model, outs) + repr(shapes)).encode()).hexdigest()
    values = _shared_values(outs)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
    if cached is not None:
        return _rebind(cached, model, values, init), True, time.perf_counter() - t0
    compiled = _compile(model, key, values, init)
    with _LOCK:
        _CACHE[key] = compiled
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled, False, time.perf_counter() - t0


def sample(model, *, draws: int, tune: int, chains: int, target_accept: float, random_seed: int,
           progressbar: bool, low_rank: bool = False) -> tuple[Any, dict[str, Any]]:
    """Sample ``model`` with nutpie through the compile cache.

    Returns the InferenceData (posterior, sample stats, observed and constant data, as
    ``pymc.sample(nuts_sampler="nutpie")`` builds it) and ``{"compile_s", "compile_reused"}``.
    ``low_rank``: nutpie's diagonal plus low-rank mass matrix adaptation.
    """
    import nutpie
    import pymc as pm
    from arviz import dict_to_dataset
    from arviz.data.base import make_attrs
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants, find_observations
    from pymc.util import _get_seeds_per_chain

    compiled, reused, t_compile = compiled_model(model)
    t0 = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, target_accept=target_accept,
                          seed=_get_seeds_per_chain(random_seed, 1)[0], progress_bar=progressbar,
                          low_rank_modified_mass_matrix=bool(low_rank))
    t_sample = time.perf_counter() - t0
    # as pymc.sample does for nutpie: the observed and constant data from the model
    coords, dims = coords_and_dims_for_inferencedata(model)
    constant_data = dict_to_dataset(find_constants(model), library=pm, coords=coords, dims=dims, default_dims=[])
    observed_data = dict_to_dataset(find_observations(model), library=pm, coords=coords, dims=dims, default_dims=[])
    for k, v in make_attrs({"sampling_time": t_sample, "tuning_steps": tune}, library=nutpie).items():
        idata.posterior.attrs[k] = v
    idata.add_groups({"constant_data": constant_data, "observed_data": observed_data}, coords=coords, dims=dims)
    return idata, {"compile_s": t_compile, "compile_reused": reused}
