"""One compiled nutpie model per model structure, reused across data and priors.

nutpie compiles a PyMC model's log-density and its gradient to a numba C callback
(``nutpie.compile_pymc_model``, about 15 s for the default instrument).
:class:`~smeintl.measurement.MeasurementModel` puts every data array and every prior
setting into shared variables (``measurement.model._Inputs``), so models that differ only in
those values (a refit under wider priors, the replications of a simulation study, the
same instrument on a new survey with as many firms) are the same function of them.

:func:`sample` keys each model by :func:`structure_key` (its generative graph, constants,
and the names and types of its shared variables, but not their values), compiles the
first model of each structure, and for the next ones swaps in the new shared values
(nutpie's ``CompiledPyMCModel.with_data``), the new coordinates, and the new initial
points (the first model's initial-point function evaluated at the new values).  A reused
structure costs about 15 ms: neither the log-density graph nor an initial-point function
is built again.  Reuse is exact: the same seed gives the same draws as a fresh compile
(``tests/test_compiled.py``).  The cache lives in the process and holds the last
:data:`CACHE_SIZE` structures.  Only nutpie's and PyMC's public APIs are used; across
processes, PyTensor's own numba cache keeps the log-density's compiled kernels, and the
C callback nutpie wraps around them is compiled again in each process.

:func:`sample` runs nutpie's chains with the BLAS libraries (OpenBLAS of NumPy and SciPy,
which numba's linear algebra calls) limited to one thread each (:func:`one_blas_thread`).
Each chain is a thread already; a log-density with matrix operations (the marginal
likelihood of all-continuous instruments: inverses and Cholesky factors per missingness
pattern) otherwise starts BLAS threads of its own inside every chain, whose waiting spins
on the machine's cores: the Holzinger-Swineford CFA sampled in 2.7 s with one BLAS thread
and 155 s (156 CPU s) without, while another process kept the 2-core machine busy.  The
draws are the same (``tests/test_compiled.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from . import compat

__all__ = ["structure_key", "sample", "compiled_model", "clear_cache", "one_blas_thread", "CACHE_SIZE"]

#: compiled models kept in the process (least recently used dropped first)
CACHE_SIZE = 8
_CACHE: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every compiled model of this process."""
    with _LOCK:
        _CACHE.clear()


def _generative_outputs(model) -> list:
    """The model as written: its random variables (with the observed values), potentials
    and deterministics.  Printing this graph takes milliseconds; deriving the
    log-density (``model.logp()``) takes about a second for the default instrument."""
    return [*model.free_RVs, *model.observed_RVs, *model.potentials, *model.deterministics,
            *(model.rvs_to_values[rv] for rv in model.observed_RVs)]


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def structure_key(model) -> str:
    """A hash of everything that the compiled model depends on except shared values.

    The printed generative graph (random variables with their observed values,
    potentials and deterministics; random generators' addresses left out), every
    constant's dtype, shape and bytes, every shared variable's name and type, the value
    of each dimension length (the number of free parameters depends on them) and the
    value variables' names and transforms.  Data and prior settings held in shared
    variables are left out: models that differ only in them share a key.  The
    log-density is derived from this graph by PyMC and by the likelihood code in
    :mod:`smeintl.measurement`.
    """
    import pytensor
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs

    outs = _generative_outputs(model)
    h = hashlib.sha256()
    # node ids are letters in traversal order: the same for every build of one structure
    h.update(_ADDRESS.sub("", pytensor.printing.debugprint(outs, file="str", print_type=True)).encode())
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
        elif isinstance(v, SharedVariable) and v.name is not None:  # unnamed: the random generators
            h.update(f"S{v.name}{v.type}".encode())
    return h.hexdigest()


def _shared_variables(model) -> dict[str, Any]:
    """The model's named shared variables (its data and prior settings)."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    return {v.name: v for v in graph_inputs(_generative_outputs(model))
            if isinstance(v, SharedVariable) and v.name is not None}


def _init_fn(model):
    """PyMC's initial-point function of ``model`` as nutpie makes it (support point, jittered)."""
    from pymc.initial_point import make_initial_point_fn

    return make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs), default_strategy="support_point",
                                 return_transformed=True)


def _free_names(model) -> list[str]:
    """The names of ``model``'s free variables on the sampler's scale, in nutpie's order."""
    return [model.rvs_to_values[rv].name for rv in model.free_RVs]


def _flat_init(model, init, shapes: dict[str, tuple[int, ...]]):
    """``init`` flattened into nutpie's vector of free parameters (the free variables in
    the model's order, each raveled; one call at a time: nutpie calls it from its chains'
    threads)."""
    names = _free_names(model)
    lock = threading.Lock()

    def flat(seed=None) -> np.ndarray:
        with lock:
            point = init(seed)
        parts = []
        for name in names:
            value = np.asarray(point[name])
            if tuple(value.shape) != tuple(shapes[name]):
                raise ValueError(f"initial value of {name} has shape {value.shape}, expected {shapes[name]}")
            parts.append(value.ravel().astype("float64"))
        return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0))

    return flat


def with_start(compiled, model, offsets: dict[str, np.ndarray]):
    """``compiled`` with ``offsets`` added to the named free variables' initial values (on
    the sampler's scale, after the jitter), as PyMC adds its jitter to an ``initval``."""
    names = _free_names(model)
    unknown = sorted(set(offsets) - set(names))
    if unknown:
        raise ValueError(f"no free variable(s) {unknown} to offset; the model has {names}")
    parts = []
    for name in names:
        shape = tuple(compiled.shapes[name])
        value = np.asarray(offsets.get(name, np.zeros(shape)), dtype="float64")
        if value.shape != shape:
            raise ValueError(f"offset of {name} has shape {value.shape}, expected {shape}")
        parts.append(value.ravel())
    shift = np.concatenate(parts) if parts else np.zeros(0)
    base = compiled.initial_point_func
    return dataclasses.replace(compiled, initial_point_func=lambda seed=None: base(seed) + shift)


def _values_for(names, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's value of each shared variable the compiled functions read."""
    missing = [n for n in names if n not in values]
    if missing:  # cannot happen for equal keys; refuse rather than sample the wrong model
        raise RuntimeError(f"compiled model does not match: no shared variable(s) {missing}")
    return {n: values[n] for n in names}


def _rebind(compiled, model, values: dict[str, np.ndarray], init):
    """The compiled model of another model of the same structure, bound to ``model``
    (``values``: its shared values; ``init``: its initial-point function)."""
    out = compiled.with_data(**_values_for(compat.shared_names(compiled), values))
    # the new model's initial points (they depend on its priors); its coordinates are
    # set on the draws (:func:`sample`)
    return dataclasses.replace(out, initial_point_func=_flat_init(model, init, compiled.shapes))



@dataclasses.dataclass
class _Entry:
    """A structure compiled in this process: the compiled model, and the initial-point
    function of the first model of the structure with that model's shared variables."""

    compiled: Any
    init: Any
    shared: dict[str, Any]

    def init_for(self, values: dict[str, np.ndarray]):
        """The initial-point function of another model of this structure (``values``: its
        shared values).  The function reads them through the first model's shared
        variables, which hold them only while it runs (one call at a time)."""
        vars_ = {n: self.shared[n] for n in _values_for(self.shared, values)}

        def init(seed=None):
            with _INIT_LOCK:
                saved = {n: v.get_value(borrow=True) for n, v in vars_.items()}
                try:
                    for n, v in vars_.items():
                        v.set_value(values[n], borrow=True)
                    return self.init(seed)
                finally:
                    for n, v in vars_.items():
                        v.set_value(saved[n], borrow=True)

        return init


_INIT_LOCK = threading.Lock()


def _shapes(init) -> dict[str, tuple[int, ...]]:
    return {name: tuple(np.shape(v)) for name, v in init(0).items()}


def compiled_model(model) -> tuple[Any, bool, float]:
    """``(compiled nutpie model, reused?, seconds)`` for ``model``.

    A structure seen before in this process reuses its compiled model and its
    initial-point function (new shared values swapped in): neither the log-density nor
    the initial-point function of ``model`` is built.  A new one is compiled by nutpie's
    ``compile_pymc_model``.
    """
    import nutpie

    t0 = time.perf_counter()
    key = structure_key(model)
    shared = _shared_variables(model)
    values = {n: v.get_value() for n, v in shared.items()}
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
    if cached is not None:
        init = cached.init_for(values)
        # the compiled functions are built for these shapes (fixed by the key's dimensions)
        if all(cached.compiled.shapes.get(n) == sh for n, sh in _shapes(init).items()):
            return _rebind(cached.compiled, model, values, init), True, time.perf_counter() - t0
    init = _init_fn(model)
    compiled = nutpie.compile_pymc_model(model)
    # the initial points of PyMC's function kept for this structure (evaluated at the shared
    # values of the model at hand when the structure is reused)
    compiled = dataclasses.replace(compiled, initial_point_func=_flat_init(model, init, compiled.shapes))
    with _LOCK:
        _CACHE[key] = _Entry(compiled, init, shared)
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled, False, time.perf_counter() - t0


def one_blas_thread():
    """A context in which the BLAS libraries loaded in the process use one thread each
    (threadpoolctl's ``threadpool_limits``, as PyMC's own ``pm.sample`` limits them)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def sample(model, *, draws: int, tune: int, chains: int, target_accept: float, random_seed: int,
           progressbar: bool, low_rank: bool = False, eigval_cutoff: float | None = None,
           start: dict[str, np.ndarray] | None = None, max_tree_depth: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Sample ``model`` with nutpie through the compile cache.

    Returns the fit (an :class:`xarray.DataTree`: posterior and sample stats, see
    :mod:`smeintl.compat`) and ``{"compile_s", "compile_reused"}``.
    ``low_rank``: nutpie's diagonal plus low-rank mass matrix adaptation, keeping the
    eigen-directions whose variance is off from the diagonal's by more than ``eigval_cutoff``
    (required with ``low_rank``; :func:`smeintl.measurement.sampling.resolve_eigval_cutoff`).
    ``start``: offsets added to the named free variables' jittered initial points
    (:func:`with_start`), as PyMC's ``initvals`` are jittered.  ``max_tree_depth``: nutpie's
    ``maxdepth`` (None: its default).
    """
    import nutpie

    if low_rank and eigval_cutoff is None:
        raise ValueError("a low-rank mass matrix needs its eigval_cutoff")
    compiled, reused, t_compile = compiled_model(model)
    if start:  # this model's own start (the cache keeps PyMC's)
        compiled = with_start(compiled, model, start)
    t0 = time.perf_counter()
    with one_blas_thread():  # the chains are the threads (module docstring)
        draws_ = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, target_accept=target_accept,
                               seed=int(random_seed), progress_bar=progressbar,
                               low_rank_modified_mass_matrix=bool(low_rank),
                               **({"mass_matrix_eigval_cutoff": float(eigval_cutoff)} if low_rank else {}),
                               **({"maxdepth": int(max_tree_depth)} if max_tree_depth is not None else {}))
    t_sample = time.perf_counter() - t0
    fit = compat.as_fit(draws_)
    # the model's own coordinates (a reused compiled model carries its first model's labels)
    post = compat.group(fit, "posterior")
    labels = {name: list(vals) for name, vals in model.coords.items()
              if vals is not None and name in post.dims and len(vals) == post.sizes[name]}
    post = post.assign_coords(labels)
    post.attrs.update({
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
        "inference_library": "nutpie", "inference_library_version": nutpie.__version__,
        "sampling_time": t_sample, "tuning_steps": tune,
    })
    compat.set_group(fit, "posterior", post)
    return fit, {"compile_s": t_compile, "compile_reused": reused}
