"""One compiled nutpie model per model structure: keys, and exact reuse across data and priors."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from conftest import BUNDLE_DIR

pytest.importorskip("nutpie")

TINY = BUNDLE_DIR / "tiny_instrument.toml"
SHORT = dict(draws=60, tune=60, chains=2, sampler="nutpie", progressbar=False)


@pytest.fixture(scope="module")
def tiny():
    from smeintl import load_spec
    from smeintl.simulate import simulate_survey, typical_params

    spec = load_spec(TINY)
    truth = typical_params(spec, n_groups=3, random_seed=2)
    a = simulate_survey(spec, 60, truth, n_groups=3, missing=0.05, random_seed=3).survey
    b = simulate_survey(spec, 60, truth, n_groups=3, missing=0.10, random_seed=4).survey
    ids = b.items.index.map(lambda s: f"other-{s}")  # different firm ids: coordinates must follow the data
    b = dataclasses.replace(b, firms=b.firms.set_axis(ids), items=b.items.set_axis(ids))
    return spec, a, b


def _scaled(spec, factor):
    from smeintl.robustness import spec_variant

    out, _why = spec_variant(spec, "priors", factor)
    assert out is not None
    return out


def _key(spec, survey, **kw):
    from smeintl._compiled import structure_key
    from smeintl.measurement import MeasurementModel

    return structure_key(MeasurementModel(spec, **kw).build(survey))


def test_structure_key_ignores_data_and_priors_only(tiny):
    from smeintl.simulate import simulate_survey, typical_params

    spec, a, b = tiny
    k = _key(spec, a)
    assert _key(spec, b) == k  # other answers, other missingness, other firm ids
    assert _key(_scaled(spec, 2.0), a) == k  # every prior sd doubled
    assert _key(spec, a, group=False) != k  # no industry level: another graph
    other_n = simulate_survey(spec, 61, typical_params(spec, n_groups=3, random_seed=2), n_groups=3,
                              random_seed=3).survey
    assert _key(spec, other_n) != k  # one more firm: one more pair of latent scores


def test_reused_compiled_model_samples_exactly_like_a_fresh_compile(tiny):
    """Data and priors swapped into a cached compiled model give the same draws, to the
    last bit, as compiling the new model from scratch with the same seed."""
    from smeintl import _compiled
    from smeintl.measurement import MeasurementModel

    spec, a, b = tiny
    spec2 = _scaled(spec, 0.5)
    _compiled.clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = MeasurementModel(spec).fit(a, random_seed=5, **SHORT)
        reused = MeasurementModel(spec2).fit(b, random_seed=6, **SHORT)
        _compiled.clear_cache()
        fresh = MeasurementModel(spec2).fit(b, random_seed=6, **SHORT)
    t_first, t_reused, t_fresh = (json.loads(f.attrs["timing"]) for f in (first, reused, fresh))
    assert not t_first["compile_reused"] and t_reused["compile_reused"] and not t_fresh["compile_reused"]
    for name in ("loading", "corr", "eta", "group_mean"):
        np.testing.assert_array_equal(reused.posterior[name].values, fresh.posterior[name].values)
    np.testing.assert_array_equal(reused.log_likelihood["responses"].values, fresh.log_likelihood["responses"].values)
    assert list(reused.posterior["eta"].coords["firm"].values) == list(b.items.index)
    # and the data really were swapped: the first fit's posterior differs
    assert not np.array_equal(first.posterior["loading"].values, reused.posterior["loading"].values)


def test_public_compile_path_when_nutpie_internals_are_missing(tiny, monkeypatch):
    """Where nutpie lacks the internals the disk cache builds on, the structure is compiled
    with nutpie's public compile_pymc_model, reused across data as before, and the fit
    is complete (the model's own firm labels on the draws)."""
    from smeintl import _compiled
    from smeintl.measurement import MeasurementModel

    spec, a, b = tiny

    def missing(*args, **kwargs):
        raise ImportError("cannot import name '_make_functions' from 'nutpie.compile_pymc'")

    monkeypatch.setattr(_compiled, "_compile_cached", missing)
    monkeypatch.setattr(_compiled, "_FALLBACK", [])
    _compiled.clear_cache()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = MeasurementModel(spec).fit(a, random_seed=5, **SHORT)
            second = MeasurementModel(spec).fit(b, random_seed=6, **SHORT)
    finally:
        _compiled.clear_cache()
    assert _compiled._FALLBACK and "_make_functions" in _compiled._FALLBACK[0]
    assert json.loads(second.attrs["timing"])["compile_reused"]
    assert first.posterior["loading"].shape == (2, 60, len(spec.items))
    assert list(second.posterior["eta"].coords["firm"].values) == list(b.items.index)
    assert np.isfinite(second.log_likelihood["responses"].values).all()


def test_build_refuses_unknown_inputs_mode(tiny):
    from smeintl.measurement import MeasurementModel

    spec, a, _b = tiny
    with pytest.raises(ValueError, match="inputs must be 'shared' or 'constant', got 'numpy'"):
        MeasurementModel(spec).build(a, inputs="numpy")


def test_constant_inputs_give_the_same_log_density(tiny):
    """The PyMC-sampler build (constants) and the nutpie build (packed inputs) are one model."""
    from smeintl.measurement import MeasurementModel

    spec, a, _b = tiny
    shared = MeasurementModel(spec).build(a, inputs="shared")
    const = MeasurementModel(spec).build(a, inputs="constant")
    point = shared.initial_point(random_seed=1)
    assert shared.compile_logp()(point) == pytest.approx(const.compile_logp()(point), rel=1e-12)


def _logp_and_grad(compiled, x):
    import ctypes

    ptr = ctypes.POINTER(ctypes.c_double)
    grad, logp = np.zeros(compiled.n_dim), np.zeros(())
    rc = compiled.compiled_logp_func.ctypes(compiled.n_dim, x.ctypes.data_as(ptr), grad.ctypes.data_as(ptr),
                                            logp.ctypes.data_as(ptr), compiled.user_data.ctypes.data)
    assert rc == 0
    return float(logp), grad


def _compile_fresh(model):
    from smeintl import _compiled

    _compiled.clear_cache()  # forget it in this process: the compile reads the disk
    compiled, reused, _s = _compiled.compiled_model(model)
    assert not reused
    return compiled


def test_compile_comes_from_the_disk_caches_and_matches_nutpie(tiny, monkeypatch):
    """A new compile of a known structure takes both C callbacks from numba's disk cache
    and only the structure's layout from the functions cache; without the layout it
    loads the PyTensor functions (pickled without the data); with the callbacks missing
    from numba's cache it builds them from those functions.  Every way gives nutpie's own log-density
    and gradient for the new model's data."""
    import pickle

    import nutpie

    from smeintl import _compiled, _numba
    from smeintl.measurement import MeasurementModel

    spec, a, b = tiny
    _numba.register()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compile_fresh(MeasurementModel(spec).build(a))  # writes the caches if they are not there yet
        model_b = MeasurementModel(_scaled(spec, 2.0)).build(b)
        reference = nutpie.compile_pymc_model(model_b)
        from_layout = _compile_fresh(model_b)
        layouts = list(_compiled._functions_path("x").parent.glob("*.layout"))
        assert layouts
        with monkeypatch.context() as m:  # no layout: the pickled functions are read
            m.setattr(_compiled, "_read", lambda p, read=_compiled._read: None if p.suffix == ".layout" else read(p))
            from_functions = _compile_fresh(model_b)
        real_callback = _compiled._callback

        def not_cached(src, name, sig, key, extract, n_dim, n_expanded):  # as if numba's cache missed
            if extract is None:
                return None, False
            return real_callback(src, name, sig, key, extract, n_dim, n_expanded)

        with monkeypatch.context() as m:  # layout there, callbacks not loadable: made from the functions
            m.setattr(_compiled, "_callback", not_cached)
            recompiled = _compile_fresh(model_b)
    assert from_layout.logp_func is None and from_functions.logp_func is not None
    assert from_layout.compiled_logp_func.cache_hits == 1 and from_layout.compiled_expand_func.cache_hits == 1
    assert from_functions.compiled_logp_func.cache_hits == 1 and from_functions.compiled_expand_func.cache_hits == 1
    assert recompiled.logp_func is not None
    files = list(_compiled._functions_path("x").parent.glob("*.pkl"))
    assert files
    for f in files:  # no survey data on disk (scalars, such as the number of firms, stored as 0)
        with open(f, "rb") as fh:
            stored = pickle.load(fh)
        assert all(v.get_value().size == 0 or (v.get_value().ndim == 0 and v.get_value() == 0)
                   for fn in stored[2:4] for v in fn.get_shared())
    x = np.random.default_rng(0).normal(scale=0.3, size=reference.n_dim)
    lp_ref, grad_ref = _logp_and_grad(reference, x)
    for compiled in (from_layout, from_functions, recompiled):
        assert compiled.n_dim == reference.n_dim and compiled.n_expanded == reference.n_expanded
        lp, grad = _logp_and_grad(compiled, x)
        assert lp == lp_ref
        np.testing.assert_array_equal(grad, grad_ref)


def test_reuse_leaves_the_first_models_values_alone(tiny):
    """A reused structure evaluates its initial points through the first model's shared
    variables; they hold the first model's values again afterwards."""
    from smeintl import _compiled
    from smeintl.measurement import MeasurementModel

    spec, a, b = tiny
    _compiled.clear_cache()
    first = MeasurementModel(spec).build(a)
    before = {n: v.get_value().copy() for n, v in _compiled._shared_variables(first).items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compiled.compiled_model(first)
        second = MeasurementModel(_scaled(spec, 2.0)).build(b)
        compiled, reused, _s = _compiled.compiled_model(second)
    assert reused
    x0 = compiled.initial_point_func(3)
    after = _compiled._shared_variables(first)
    for n, v in before.items():
        np.testing.assert_array_equal(after[n].get_value(), v)
    # the initial point is the second model's: its own initial-point function gives it
    own = _compiled._flat_init(second, _compiled._init_fn(second), compiled.shapes)(3)
    np.testing.assert_array_equal(x0, own)


def test_mass_matrix_choice_is_used_and_recorded(tiny, monkeypatch):
    """``mass_matrix``: "low_rank" reaches nutpie (other draws than the diagonal with the
    same seed), "auto" switches at LOW_RANK_MIN_FIRMS, and the fit records what it used."""
    from smeintl.measurement import MeasurementModel
    from smeintl.measurement import model as measurement

    spec, a, _b = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diag = MeasurementModel(spec).fit(a, random_seed=7, mass_matrix="diag", **SHORT)
        low = MeasurementModel(spec).fit(a, random_seed=7, mass_matrix="low_rank", **SHORT)
        assert a.n_firms < measurement.LOW_RANK_MIN_FIRMS
        auto_small = MeasurementModel(spec).fit(a, random_seed=7, **SHORT)
        monkeypatch.setattr(measurement, "LOW_RANK_MIN_FIRMS", a.n_firms)
        auto_large = MeasurementModel(spec).fit(a, random_seed=7, **SHORT)
    assert [f.attrs["mass_matrix"] for f in (diag, low, auto_small, auto_large)] == ["diag", "low_rank", "diag",
                                                                                     "low_rank"]
    assert spec.sampler["target_accept"] == "auto" and diag.attrs["target_accept"] == 0.9  # auto, nutpie
    assert not np.array_equal(diag.posterior["loading"].values, low.posterior["loading"].values)
    np.testing.assert_array_equal(diag.posterior["loading"].values, auto_small.posterior["loading"].values)
    np.testing.assert_array_equal(low.posterior["loading"].values, auto_large.posterior["loading"].values)


def test_mass_matrix_refuses_unknown_values_and_pymc_low_rank(tiny):
    from smeintl.measurement import MeasurementModel

    spec, a, _b = tiny
    with pytest.raises(ValueError, match="mass_matrix must be 'auto', 'diag' or 'low_rank', got 'dense'"):
        MeasurementModel(spec).fit(a, random_seed=1, mass_matrix="dense", **SHORT)
    with pytest.raises(ValueError, match="needs the nutpie sampler"):
        MeasurementModel(spec).fit(a, random_seed=1, mass_matrix="low_rank", **{**SHORT, "sampler": "pymc"})


def test_graph_function_is_found_behind_pytensors_cache_wrapper():
    """The callback inlines PyTensor's graph function; numba cannot inline ``*args``, so
    PyTensor's ``f(*args): return jitable_func(*args)`` wrapper is looked through, and a
    function with nothing behind it falls back to nutpie's extraction (None)."""
    import numba

    from smeintl._compiled import _explicit_py_func

    def graph(x, a):
        return x + a

    inner = numba.njit(graph)
    env = {"jitable_func": inner}
    exec("def wrapper(*args): return jitable_func(*args)", env)
    assert _explicit_py_func(numba.njit(env["wrapper"])) is graph
    assert _explicit_py_func(inner) is graph
    exec("def bare(*args): return args[0]", env)
    env.pop("jitable_func")
    assert _explicit_py_func(numba.njit(env["bare"])) is None


def test_refit_models_compile_ahead_and_are_found_on_disk(tiny):
    """``compile_refit_models`` compiles the model-comparison refits' structures without
    sampling; a later refit finds them in the disk caches (a new process would too)."""
    from smeintl._compiled import clear_cache
    from smeintl.robustness import compile_refit_models
    from smeintl.robustness.refit import comparison_plan as _comparison_plan
    from smeintl.robustness.refit import context_before_fit as _context_before_fit

    spec, a, _b = tiny
    announced = []
    out = compile_refit_models(spec, a, models=("no_industry",), on_compiled=announced.append)
    assert set(out) == {"no_industry"} and out["no_industry"]["compile_s"] > 0
    assert announced == ["no_industry"]
    ctx = _context_before_fit(spec, a, group=True, parameterization="auto", models=("no_industry",), refit_kwargs=None)
    [(name, (survey, spec_v, group))] = _comparison_plan(ctx)[0]
    assert name == "no_industry" and group is False
    clear_cache()  # not in this process any more: only the disk caches can know it
    assert ctx.refit_model(spec_v, group=group).compiled_on_disk(survey)
    # PyMC's NUTS as the refit sampler: nothing is compiled ahead
    assert compile_refit_models(spec, a, models=("no_industry",), refit_kwargs={"sampler": "pymc"}) == {}


def test_refit_compile_runs_in_a_second_process_only_when_the_cache_is_cold(tiny, monkeypatch):
    import os

    from smeintl.measurement import MeasurementModel
    from smeintl.robustness import run_robustness, start_refit_compile

    spec, a, _b = tiny
    model = MeasurementModel(spec)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(MeasurementModel, "compiled_on_disk", lambda self, survey: True)
    assert start_refit_compile(model, a) is None  # warm cache: nothing to do
    monkeypatch.setattr(MeasurementModel, "compiled_on_disk", lambda self, survey: False)
    assert start_refit_compile(model, a, refit_kwargs={"sampler": "pymc"}) is None
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert start_refit_compile(model, a) is None  # no second core
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    job = start_refit_compile(model, a, models=("no_industry",))
    assert job is not None and job.process.is_alive()
    # the refit waits for its own structure only: the process announces each one as it is done
    assert job.wait_for("no_industry", timeout=600) >= 0
    assert job.compiled == {"no_industry"}
    job.process.join(60)
    assert job.process.exitcode == 0
    assert job.wait_for("one_construct", timeout=5) < 5  # not in the process's plan: no wait once it ended
    # a run whose checks do not refit stops a compile nobody needs
    job = start_refit_compile(model, a, models=("no_industry",))
    run_robustness(None, a, spec, checks=["thresholds"], progress=False, refit_compile=job)
    assert not job.process.is_alive()


def test_code_key_ignores_documentation_but_not_code():
    """The disk caches are keyed by the likelihood code without its docstrings and
    comments: a documentation edit keeps every cached model, a code edit does not."""
    from smeintl import _compiled

    src = '"""Module doc."""\n\ndef f(x):\n    """What f does."""\n    # a comment\n    return x * 2\n'
    docs_edited = '"""Another doc."""\n\ndef f(x):\n    """Reworded."""\n    return x * 2  # other comment\n'
    code_edited = '"""Module doc."""\n\ndef f(x):\n    """What f does."""\n    return x * 3\n'
    fp = _compiled._code_fingerprint
    assert fp(src) == fp(docs_edited)
    assert fp(src) != fp(code_edited)
    assert "measurement/summary.py" not in _compiled._LOGP_MODULES


def test_pymc_log_likelihood_and_posterior_predictive_work_on_a_fit(tiny, caplog):
    """The likelihood is the model's observed variables: PyMC's compute_log_likelihood on a
    nutpie fit gives the stored per-firm log-likelihood, and its sample_posterior_predictive
    draws only the observed variables (the parameters from the fit's draws, the model's
    inputs from its constant_data group)."""
    import logging

    import pymc as pm

    from smeintl.measurement import MeasurementModel

    spec, a, _b = tiny
    mm = MeasurementModel(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = mm.fit(a, random_seed=5, **SHORT)
        model = mm.build(a)
        names = [rv.name for rv in model.observed_RVs]
        assert names == ["y_ordinal4", "y_binary"]
        ll = pm.compute_log_likelihood(idata, model=model, var_names=names, extend_inferencedata=False,
                                       progressbar=False)
        total = sum(ll[n].values.sum(-1) for n in names)
        np.testing.assert_allclose(total, idata.log_likelihood["responses"].values.sum(-1), rtol=1e-10)
        with caplog.at_level(logging.INFO, logger="pymc"), model:
            pp = pm.sample_posterior_predictive(idata, var_names=names, random_seed=1, progressbar=False,
                                                extend_inferencedata=False).posterior_predictive
    sampled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Sampling:")]
    assert sampled == ["Sampling: [y_binary, y_ordinal4]"]
    y = pp["y_ordinal4"].values
    assert y.shape[:2] == (2, 60) and set(np.unique(y)) <= {0.0, 1.0, 2.0, 3.0}
    assert set(np.unique(pp["y_binary"].values)) <= {0.0, 1.0}


def test_disk_cache_folder_per_code_version_and_stale_ones_pruned(tmp_path, monkeypatch):
    """Entries of other likelihood code are in other folders (never read) and go once unused
    for STALE_DAYS days; loose files of the old flat layout go at once."""
    import os
    import time

    from smeintl import _compiled

    monkeypatch.setattr(_compiled, "_cache_root", lambda: tmp_path / "smeintl_functions")
    here = _compiled._functions_path("k").parent
    assert here.name == _compiled._code_hash()[:16]
    root = here.parent
    old, recent = root / "old-code", root / "recent"
    for d in (old, recent):
        d.mkdir(parents=True)
        (d / "k.pkl").write_bytes(b"x")
    stamp = time.time() - (_compiled.STALE_DAYS + 1) * 86400
    os.utime(old, (stamp, stamp))
    (root / "flat.pkl").write_bytes(b"x")
    _compiled._prune_stale()
    assert not old.exists() and recent.exists() and not (root / "flat.pkl").exists()
