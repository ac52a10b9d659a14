"""One compiled nutpie model per model structure, reused across data, priors and processes.

nutpie compiles a PyMC model's log-density and its gradient to a numba C callback.
:class:`~smeintl.measurement.MeasurementModel` puts every data array and every prior
setting into shared variables (``measurement.model._Inputs``), so models that differ only in
those values (a refit under wider priors, the replications of a simulation study, the
same instrument on a new survey with as many firms) are the same function of them.

:func:`sample` keys each model by :func:`structure_key` (its generative graph, constants,
and the names and types of its shared variables, but not their values), compiles the
first model of each structure, and for the next ones swaps in the new shared values
(``CompiledPyMCModel.with_data``), the new coordinates, and the new initial points (the
first model's initial-point function evaluated at the new values).  A reused structure
costs about 15 ms: neither the log-density graph nor an initial-point function is built
again.  Reuse is exact: the same seed gives the same draws as a fresh compile
(``tests/test_compiled.py``).  The cache lives in the process and holds the last
:data:`CACHE_SIZE` structures.

Across processes, :func:`_compile` is nutpie's ``compile_pymc_model`` with disk caches
under PyTensor's compile directory, keyed by the structure, the free parameters' shapes,
the package versions and the source of the likelihood code (:func:`_versions`).  The C
callbacks are numba-cached: nutpie's callbacks are closures over a numba dispatcher, which
numba cannot key, so without this every new process linked the whole log-density into the
callback and optimized it again (15-20 s for the default instrument).  When both callbacks
are cached, a new process reads only the structure's layout (sizes, shapes, shared
variables) and loads them: under 1 s for the default instrument, without deriving the
log-density.  Otherwise the PyTensor functions of the structure (the rewritten
log-density, gradient and expand graphs), pickled without the data, are unpickled (about
1.5 s) or made (about 5 s), and the callbacks compiled from them.  A model whose graph
PyTensor cannot key (an operation without a cache key) compiles its callbacks as nutpie
does, and is not stored.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import re
import sys
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["structure_key", "sample", "on_disk", "clear_cache", "CACHE_SIZE"]

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
    :mod:`smeintl.measurement`; the disk caches add both to the key (:func:`_versions`).
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


def _flat_init(model, init, shapes: dict[str, tuple[int, ...]]):
    """``init`` flattened into nutpie's vector of free parameters (the free variables in
    the model's order, each raveled; one call at a time: nutpie calls it from its chains'
    threads)."""
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
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


def _values_for(names, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's value of each shared variable the compiled functions read."""
    missing = [n for n in names if n not in values]
    if missing:  # cannot happen for equal keys; refuse rather than sample the wrong model
        raise RuntimeError(f"compiled model does not match: no shared variable(s) {missing}")
    return {n: values[n] for n in names}


def _rebind(compiled, model, values: dict[str, np.ndarray], init):
    """The compiled model of another model of the same structure, bound to ``model``
    (``values``: its shared values; ``init``: its initial-point function)."""
    out = compiled.with_data(**_values_for(compiled.shared_data, values))
    # the new model's initial points (they depend on its priors); its coordinates are
    # set on the draws (:func:`sample`)
    return dataclasses.replace(out, initial_point_func=_flat_init(model, init, compiled.shapes))


# PyTensor functions of each structure (nutpie's ``_make_functions``: the rewritten
# log-density, gradient and expand graphs), pickled under PyTensor's compile directory,
# with the structure's layout next to them: a new process reads only the layout when the
# callbacks are in numba's cache, and unpickles the functions (about 1.5 s, instead of
# rewriting the graphs, about 5 s) only when a callback must be compiled.  The shared
# values (the survey's data) are emptied before pickling: the file holds the graph only,
# and the current model's values are swapped in as for a cached model.
_FUNCTIONS_VERSION = "1"


#: folders of the disk cache for other versions of the likelihood code are removed once
#: unused for this many days
STALE_DAYS = 30


def _cache_root() -> Path:
    import pytensor

    return Path(pytensor.config.base_compiledir) / "smeintl_functions"


def _functions_path(key: str, suffix: str = ".pkl") -> Path:
    """Where the disk cache keeps ``key``: a folder per version of the likelihood code
    (:func:`_code_hash`), so entries of older code are never read and go as a whole."""
    return _cache_root() / _code_hash()[:16] / f"{key}{suffix}"


def _prune_stale() -> None:
    """Remove the cache folders of other likelihood code unused for :data:`STALE_DAYS` days."""
    import shutil

    here = _functions_path("x").parent
    cutoff = time.time() - STALE_DAYS * 86400
    try:
        for d in here.parent.iterdir():
            if d != here and (not d.is_dir() or d.stat().st_mtime < cutoff):
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
    except OSError:
        pass


#: the modules whose code defines a model's log-density and how it is compiled (relative to
#: the package); summaries, diagnostics, reports and the rest are not part of the key
_LOGP_MODULES = ("measurement/model.py", "measurement/latent.py", "measurement/layout.py", "families/*.py",
                 "_numba.py", "_compiled.py")


def _code_fingerprint(source: str) -> str:
    """The code of a module without its docstrings and comments (``ast.dump`` of the tree
    with docstrings removed): editing documentation keeps every cached model."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


@functools.lru_cache(maxsize=1)
def _code_hash() -> str:
    """The code (not the docs) of the modules that define the log-density and how it is
    compiled (:data:`_LOGP_MODULES`, as read when first needed in the process): the
    structure key holds the generative graph only, so the likelihood code is keyed here."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for pattern in _LOGP_MODULES:
        for path in sorted(root.glob(pattern)):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(_code_fingerprint(path.read_text(encoding="utf-8")).encode())
    return h.hexdigest()


def _versions() -> tuple[str, ...]:
    """What both disk caches depend on besides the structure: Python, the compiling
    packages, their settings that change the compiled code, and smeintl's likelihood code."""
    import numba
    import nutpie
    import pymc
    import pytensor

    return (sys.version, pytensor.__version__, pymc.__version__, nutpie.__version__, numba.__version__,
            pytensor.config.floatX, str(pytensor.config.numba__fastmath), _code_hash())


def _disk_key(key: str) -> str:
    return hashlib.sha256(repr((_FUNCTIONS_VERSION, key, _versions())).encode()).hexdigest()


def _read(path: Path):
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception:  # noqa: BLE001 - an unreadable entry is compiled again and replaced
        return None


def _write(path: Path, obj) -> None:
    """Pickle ``obj`` to ``path`` atomically; no disk cache (read-only, unpicklable) is no error."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False, suffix=".tmp") as fh:
            tmp = fh.name
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        tmp = None
    except Exception:  # noqa: BLE001
        pass
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _load_functions(key: str):
    return _read(_functions_path(key))


def _save_functions(key: str, functions: tuple) -> None:
    """Pickle ``functions`` atomically, with every shared value emptied while it is written
    (and drop the cache folders of old likelihood code, :func:`_prune_stale`)."""
    _prune_stale()
    shared = {v for fn in functions[2:4] for v in fn.get_shared()}
    saved = {v: v.get_value(borrow=True) for v in shared}
    try:
        for v in shared:
            try:
                v.set_value(np.zeros((0,) * v.type.ndim, dtype=v.type.dtype), borrow=True)
            except Exception:  # noqa: BLE001 - a static shape: keep the value
                pass
        _write(_functions_path(key), functions)
    finally:
        for v, value in saved.items():
            v.set_value(value, borrow=True)


# The C callbacks that nutpie's sampler calls: nutpie's own ``_make_c_logp_func`` and
# ``_make_c_expand_func``, written as module-level source so that numba can cache them on
# disk.  nutpie defines them as closures over a numba dispatcher, whose pickle differs in
# every process, so numba's cache never hits and every new process links the whole
# log-density into the callback and optimizes it again (most of a warm compile).
_CALLBACK_VERSION = "2"
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


def _explicit_py_func(inner):
    """The Python function of PyTensor's compiled graph ``inner`` with its parameters
    named, or None.  PyTensor wraps a graph it caches as ``f(*args): return
    jitable_func(*args)``; numba cannot inline a function with ``*args``."""
    import inspect

    fn = inner.py_func
    for _ in range(3):
        params = inspect.signature(fn).parameters.values()
        if not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            return fn
        wrapped = fn.__globals__.get("jitable_func")
        if wrapped is None or not hasattr(wrapped, "py_func"):
            return None
        fn = wrapped.py_func
    return None


def _extraction_fn(inner, shared_data: dict[str, np.ndarray], names: list[str], record_dtype):
    """``extract(x, user_data)``: ``inner(x, *shared arrays)`` with the shared arrays read
    from nutpie's user data, as nutpie's ``make_extraction_fn``, but with ``inner``'s body
    inlined (numba's ``inline="always"``, at the level of its IR).

    nutpie's version calls ``inner`` as a compiled function.  numba compiles that function
    into a library of its own (optimized, then turned into machine code), and the callback
    links the library in, optimizes the whole log-density again and emits it again: about
    27 s of a cold compile of the default instrument.  Inlined, the log-density's graph
    function is compiled once, as part of the callback.  Falls back to nutpie's version
    when ``inner`` has no named parameters.
    """
    import numba
    from nutpie.compile_pymc import address_as_void_pointer, make_extraction_fn

    py_func = _explicit_py_func(inner)
    if py_func is None:
        return make_extraction_fn(inner, shared_data, names, record_dtype)
    env = {"numba": numba, "record_dtype": record_dtype, "address_as_void_pointer": address_as_void_pointer,
           "inner": numba.njit(inline="always")(py_func)}
    lines = ["def extract(x, user_data_):",
             "    shared = numba.carray(user_data_, (), record_dtype)['shared']"]
    for i, name in enumerate(names):
        arr = shared_data[name]
        env[f"dtype{i}"] = np.dtype(arr.dtype)
        lines.append(f"    flat{i} = numba.carray(address_as_void_pointer(shared['data'][{name!r}][()]), "
                     f"int(shared['size'][{name!r}][()]), dtype{i})")
        if arr.ndim == 0:
            lines.append(f"    s{i} = flat{i}.reshape(())")
        else:
            lines.append(f"    shape{i} = shared['shape'][{name!r}]")
            lines.append(f"    s{i} = flat{i}.reshape(({''.join(f'shape{i}[{k}], ' for k in range(arr.ndim))}))")
    lines.append(f"    return inner(x{''.join(f', s{i}' for i in range(len(names)))})")
    exec(compile("\n".join(lines), "<smeintl extract>", "exec"), env)
    return numba.njit(inline="always")(env["extract"])


def _callback_key(src: str, dkey: str, user_data, shared_names, n_dim: int, n_expanded: int) -> str:
    # everything the callback's code depends on: the structure's disk key (graph, shapes,
    # versions and likelihood code), the layout of the shared data, the sizes and the source
    parts = (_CALLBACK_VERSION, src, dkey, user_data.dtype.descr, tuple(shared_names), n_dim, n_expanded)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _callback(src: str, name: str, c_sig, key: str | None, extract, n_dim: int, n_expanded: int):
    """``(numba C callback of src, stored in numba's disk cache?)``.

    ``key``: its disk-cache key (None: not cached).  ``extract`` None: load it from the
    cache only, ``(None, False)`` when it is not there (the code cannot be compiled
    without the log-density's function).
    """
    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    env = {"__name__": __name__, "np": np, "numba": numba, "extract": extract, "n_dim": n_dim, "n_expanded": n_expanded}
    if key is not None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", numba.NumbaWarning)
                fn = numba.cfunc(c_sig, cache=True)(compile_numba_function_src(src, name, global_env=env, cache_key=key))
            # data over 1 MB frozen into the callback (nutpie's template of the shared
            # arrays) make it uncacheable; numba then compiles it without storing it
            stored = True
            for w in caught:
                if "Cannot cache compiled function" in str(w.message):
                    stored = False
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            return fn, stored
        except Exception as exc:  # noqa: BLE001 - not in the cache, or an unreadable entry
            if extract is None:
                return None, False
            warnings.warn(f"numba's disk cache of the compiled model could not be used ({type(exc).__name__}: "
                          f"{exc}); compiling it again", RuntimeWarning, stacklevel=3)
    return numba.cfunc(c_sig)(compile_numba_function_src(src, name, global_env=env)), False


def _compile(model, dkey: str, values: dict[str, np.ndarray], init):
    """The compiled model through the disk caches (:func:`_compile_cached`), or where
    this nutpie lacks the internals they build on, nutpie's public
    ``compile_pymc_model`` (the same model, compiled in full in every process)."""
    try:
        return _compile_cached(model, dkey, values, init)
    except (ImportError, AttributeError) as exc:
        import nutpie

        _FALLBACK.append(f"{type(exc).__name__}: {exc}")
        compiled = nutpie.compile_pymc_model(model)
        return dataclasses.replace(compiled, initial_point_func=_flat_init(model, init, compiled.shapes))


#: why the public compile path was taken in this process (empty: the disk caches served)
_FALLBACK: list[str] = []


def _compile_cached(model, dkey: str, values: dict[str, np.ndarray], init):
    """nutpie's ``compile_pymc_model(model)`` (numba backend, default settings), with
    PyTensor functions and C callbacks cached on disk (``dkey``: the structure's disk key;
    ``values``: the model's shared values; ``init``: its initial-point function).

    When both callbacks of the structure are in numba's cache, only the layout stored
    next to the functions (``<dkey>.layout``: sizes, parameter shapes, shared variables)
    is read: neither the log-density nor the pickled functions are needed (they take
    about 1.5 s to load, since unpickling links the graph again).  The compiled model's
    ``logp_func`` and ``expand_func`` (PyTensor functions nutpie keeps for Python use)
    are then None; the sampler uses the callbacks only.
    """
    layout_path = _functions_path(dkey, ".layout")
    layout = _read(layout_path)
    if layout is not None:
        compiled, _stored = _assemble(model, dkey, layout, values, init, None)
        if compiled is not None:
            return compiled
    functions = _load_functions(dkey)
    if functions is None:
        from nutpie.compile_pymc import _make_functions

        n_dim, n_expanded, logp_fn_pt, expand_fn_pt, _init, shape_info = _make_functions(
            model, mode="NUMBA", compute_grad=True, join_expanded=True, pymc_initial_point_fn=init)
        functions = (n_dim, n_expanded, logp_fn_pt, expand_fn_pt, shape_info)
        _save_functions(dkey, functions)
    n_dim, n_expanded, logp_fn_pt, expand_fn_pt, shape_info = functions
    layout = {"n_dim": n_dim, "n_expanded": n_expanded, "shape_info": shape_info,
              "shared": [[(v.name, v.type.ndim) for v in fn.get_shared()] for fn in (logp_fn_pt, expand_fn_pt)]}
    compiled, stored = _assemble(model, dkey, layout, values, init, (logp_fn_pt, expand_fn_pt))
    if stored:
        _write(layout_path, layout)
    return compiled


def _dims_and_coords(model, shape_info) -> tuple[dict, dict]:
    """The draws' dimensions and coordinates as nutpie names them: the model's coordinates
    (a dimension without labels numbered), and one label per unconstrained parameter."""
    import itertools

    import pandas as pd

    coords = {}
    for name, vals in model.coords.items():
        coords[name] = pd.Index(vals) if vals is not None else pd.RangeIndex(int(model.dim_lengths[name].eval()))
    values = {v.name for v in model.value_vars}
    labels = []
    for base, _, shape in zip(*shape_info):
        if base in values:
            labels += [base if len(shape) == 0 else f"{base}_{'.'.join(map(str, idx))}"
                       for idx in itertools.product(*[range(n) for n in shape])]
    coords["unconstrained_parameter"] = pd.Index(labels)
    return model.named_vars_to_dims, coords


def _assemble(model, dkey: str, layout: dict, values: dict[str, np.ndarray], init, functions):
    """``(compiled nutpie model, both callbacks in numba's disk cache?)`` from a
    structure's ``layout``, the model's shared ``values`` and the callbacks: compiled
    from ``functions`` (the PyTensor log-density and expand functions), or with
    ``functions`` None loaded from numba's cache only (``(None, False)`` when they are
    not there)."""
    import types

    import numba
    from nutpie.compile_pymc import CompiledPyMCModel, make_user_data
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    n_dim, n_expanded, shape_info = layout["n_dim"], layout["n_expanded"], layout["shape_info"]
    shapes = {n: tuple(sh) for n, _, sh in zip(*shape_info)}
    ndims: dict[str, int] = {}
    for name, ndim in [x for names in layout["shared"] for x in names]:
        if ndims.setdefault(name, ndim) != ndim:
            raise ValueError(f"Shared variables must have unique names: {name}")
    # the model's own values (functions from the disk cache hold empty ones)
    shared_data = {n: np.array(v, order="C", copy=True) for n, v in _values_for(ndims, values).items()}
    for arr in shared_data.values():
        arr.flags.writeable = False
    user_data = make_user_data({n: types.SimpleNamespace(ndim=k) for n, k in ndims.items()}, shared_data)

    d = numba.types
    sigs = (d.int64(d.uint64, d.CPointer(d.double), d.CPointer(d.double), d.CPointer(d.double), d.voidptr),
            d.int64(d.uint64, d.uint64, d.CPointer(d.double), d.CPointer(d.double), d.voidptr))
    callbacks, stored = [], True
    for i, (src, name) in enumerate(((_LOGP_SRC, "logp_numba"), (_EXPAND_SRC, "expand_numba"))):
        names = [n for n, _ in layout["shared"][i]]
        key = _callback_key(src, dkey, user_data, names, n_dim, n_expanded)
        if functions is None:
            cb, ok = _callback(src, name, sigs[i], key, None, n_dim, n_expanded)
            if cb is None:
                return None, False
        else:
            inner = functions[i].vm.jit_fn
            # a graph PyTensor cannot key (an operation without a cache key) is not cached
            cacheable = CACHED_SRC_FUNCTIONS.get(inner.py_func) is not None
            extract = _extraction_fn(inner, shared_data, names, user_data.dtype)
            cb, ok = _callback(src, name, sigs[i], key if cacheable else None, extract, n_dim, n_expanded)
        callbacks.append(cb)
        stored = stored and ok
    dims, coords = _dims_and_coords(model, shape_info)
    compiled = CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords, _shapes=shapes,
        compiled_logp_func=callbacks[0], compiled_expand_func=callbacks[1],
        initial_point_func=_flat_init(model, init, shapes),
        shared_data=shared_data, user_data=user_data, n_expanded=n_expanded, shape_info=shape_info,
        logp_func=functions[0] if functions else None, expand_func=functions[1] if functions else None)
    return compiled, stored


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


def _marker_path(key: str) -> Path:
    """Where the disk key of a structure whose layout is stored is recorded (the disk key
    adds the free parameters' shapes, which only an initial-point function can tell)."""
    return _functions_path(_disk_key(key), ".known")


def on_disk(model) -> bool:
    """Whether ``model``'s structure is compiled in this process or stored in the disk
    caches, so that a compile loads it (about 1 s) instead of compiling it (a minute or
    more for the default instrument).  Costs the structure key (milliseconds)."""
    key = structure_key(model)
    with _LOCK:
        if key in _CACHE:
            return True
    dkey = _read(_marker_path(key))
    return isinstance(dkey, str) and _functions_path(dkey, ".layout").is_file()


def compiled_model(model) -> tuple[Any, bool, float]:
    """``(compiled nutpie model, reused?, seconds)`` for ``model``.

    A structure seen before in this process reuses its compiled model and its
    initial-point function (new shared values swapped in): neither the log-density nor
    the initial-point function of ``model`` is built.  A new one is compiled through
    the disk caches, keyed by the structure and the free parameters' shapes.
    """
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
    shapes = _shapes(init)
    dkey = _disk_key(key + repr(sorted(shapes.items())))
    compiled = _compile(model, dkey, values, init)
    if _functions_path(dkey, ".layout").is_file() and _read(_marker_path(key)) != dkey:
        _write(_marker_path(key), dkey)
    with _LOCK:
        _CACHE[key] = _Entry(compiled, init, shared)
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled, False, time.perf_counter() - t0


#: nutpie's low-rank mass matrix keeps the posterior's eigen-directions whose variance is off
#: from the diagonal's by more than this factor (nutpie's default: 100).  With many firms
#: the directions that matter (the latent scores' mean and spread against the item
#: parameters) are off by less: default instrument, 2 x (300 + 200) draws, min bulk ESS
#: at 2,000 firms 67 -> 115 (113 -> 174 on standardized scores), at 10,000 firms on
#: standardized scores 50 -> 85 (2 x (250 + 250)), in the same sampling time.
LOW_RANK_EIGVAL_CUTOFF = 3.0


def sample(model, *, draws: int, tune: int, chains: int, target_accept: float, random_seed: int,
           progressbar: bool, low_rank: bool = False) -> tuple[Any, dict[str, Any]]:
    """Sample ``model`` with nutpie through the compile cache.

    Returns the InferenceData (posterior, sample stats, observed and constant data, as
    ``pymc.sample(nuts_sampler="nutpie")`` builds it) and ``{"compile_s", "compile_reused"}``.
    ``low_rank``: nutpie's diagonal plus low-rank mass matrix adaptation.
    """
    import nutpie

    compiled, reused, t_compile = compiled_model(model)
    t0 = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, target_accept=target_accept,
                          seed=int(random_seed), progress_bar=progressbar,
                          low_rank_modified_mass_matrix=bool(low_rank),
                          **({"mass_matrix_eigval_cutoff": LOW_RANK_EIGVAL_CUTOFF} if low_rank else {}))
    t_sample = time.perf_counter() - t0
    # the model's own coordinates (a reused compiled model carries its first model's labels)
    post = idata.posterior
    labels = {name: list(vals) for name, vals in model.coords.items()
              if vals is not None and name in post.dims and len(vals) == post.sizes[name]}
    idata.posterior = post.assign_coords(labels)
    idata.posterior.attrs.update({
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
        "inference_library": "nutpie", "inference_library_version": nutpie.__version__,
        "sampling_time": t_sample, "tuning_steps": tune,
    })
    return idata, {"compile_s": t_compile, "compile_reused": reused}
