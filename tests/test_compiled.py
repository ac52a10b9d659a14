"""One compiled nutpie model per model structure: keys, and exact reuse across data and priors."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from conftest import BUNDLE_DIR
from smeintl import compat

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


def test_start_offsets_reach_the_initial_points(tiny):
    """``start``: offsets added to the named free variables' jittered initial points, for a
    new and a reused structure alike, the cached entry left with PyMC's own; an unknown
    name, an offset of the wrong shape and a low-rank mass matrix without its cutoff are
    refused."""
    from smeintl import _compiled
    from smeintl.measurement import MeasurementModel

    spec, a, b = tiny
    _compiled.clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = MeasurementModel(spec).build(a)
        name = first.rvs_to_values[first.free_RVs[-1]].name
        plain, _r, _s = _compiled.compiled_model(first)
        size = int(np.prod(plain.shapes[name]))
        offset = np.arange(size, dtype=float).reshape(plain.shapes[name]) + 5.0
        new = _compiled.with_start(plain, first, {name: offset})
        second = MeasurementModel(spec).build(b)
        own, reused, _s = _compiled.compiled_model(second)
        again = _compiled.with_start(own, second, {name: offset})
        cached, reused_cached, _s = _compiled.compiled_model(first)
    assert reused and reused_cached
    for with_start, without in ((new, plain), (again, own)):
        diff = with_start.initial_point_func(4) - without.initial_point_func(4)
        np.testing.assert_allclose(diff[-size:], offset.ravel(), rtol=1e-12)  # the last free variable
        np.testing.assert_array_equal(diff[:-size], 0.0)
    # the cache keeps PyMC's own start
    np.testing.assert_array_equal(cached.initial_point_func(4), plain.initial_point_func(4))
    with pytest.raises(ValueError, match="no free variable"):
        _compiled.with_start(plain, first, {"nonexistent": np.zeros(1)})
    with pytest.raises(ValueError, match="has shape"):
        _compiled.with_start(plain, first, {name: np.zeros(size + 1)})
    with pytest.raises(ValueError, match="eigval_cutoff"):
        _compiled.sample(first, draws=5, tune=5, chains=1, target_accept=0.8, random_seed=1, progressbar=False,
                         low_rank=True)


def test_mass_matrix_choice_is_used_and_recorded(tiny, monkeypatch):
    """``mass_matrix``: "low_rank" reaches nutpie (other draws than the diagonal with the
    same seed), "auto" switches at LOW_RANK_MIN_FIRMS, and the fit records what it used."""
    from smeintl.measurement import MeasurementModel
    from smeintl.measurement import sampling

    spec, a, _b = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diag = MeasurementModel(spec).fit(a, random_seed=7, mass_matrix="diag", **SHORT)
        low = MeasurementModel(spec).fit(a, random_seed=7, mass_matrix="low_rank", **SHORT)
        assert a.n_firms < sampling.LOW_RANK_MIN_FIRMS
        auto_small = MeasurementModel(spec).fit(a, random_seed=7, **SHORT)
        monkeypatch.setattr(sampling, "LOW_RANK_MIN_FIRMS", a.n_firms)
        auto_large = MeasurementModel(spec).fit(a, random_seed=7, **SHORT)
        # the eigenvalue cutoff reaches nutpie: another cutoff, other draws
        monkeypatch.setattr(sampling, "LOW_RANK_EIGVAL_CUTOFF", 1.01)
        other_cutoff = MeasurementModel(spec).fit(a, random_seed=7, mass_matrix="low_rank", **SHORT)
    assert [f.attrs["mass_matrix"] for f in (diag, low, auto_small, auto_large)] == ["diag", "low_rank", "diag",
                                                                                     "low_rank"]
    assert "mass_matrix_eigval_cutoff" not in diag.attrs
    assert low.attrs["mass_matrix_eigval_cutoff"] == auto_large.attrs["mass_matrix_eigval_cutoff"] == 3.0
    assert other_cutoff.attrs["mass_matrix_eigval_cutoff"] == 1.01
    assert spec.sampler["target_accept"] == "auto" and diag.attrs["target_accept"] == 0.9  # auto, nutpie
    assert not np.array_equal(diag.posterior["loading"].values, low.posterior["loading"].values)
    assert not np.array_equal(other_cutoff.posterior["loading"].values, low.posterior["loading"].values)
    np.testing.assert_array_equal(diag.posterior["loading"].values, auto_small.posterior["loading"].values)
    np.testing.assert_array_equal(low.posterior["loading"].values, auto_large.posterior["loading"].values)


def test_large_surveys_cap_the_tree_depth(tiny, monkeypatch):
    """From LARGE_FIRMS firms the tree depth cap reaches nutpie (no draw takes more than
    2^depth leapfrog steps) and the fit records it; below, nutpie's own cap, not recorded."""
    from smeintl.measurement import MeasurementModel
    from smeintl.measurement import sampling

    spec, a, _b = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = MeasurementModel(spec).fit(a, random_seed=7, **SHORT)
        monkeypatch.setattr(sampling, "LARGE_FIRMS", a.n_firms)
        monkeypatch.setattr(sampling, "MAX_TREE_DEPTH_LARGE", 1)
        capped = MeasurementModel(spec).fit(a, random_seed=7, **SHORT)
    assert "max_tree_depth" not in plain.attrs and capped.attrs["max_tree_depth"] == 1
    steps = [compat.group(f, "sample_stats")["n_steps"].values for f in (plain, capped)]
    assert steps[1].max() <= 2 < steps[0].max()


def test_a_given_max_tree_depth_reaches_either_sampler(tiny):
    """``max_tree_depth`` given to the fit caps nutpie's trajectories and PyMC's NUTS's trees
    at any number of firms, and is recorded; anything but 1-20 or "auto" is refused."""
    from smeintl.measurement import MeasurementModel

    spec, a, _b = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        given = MeasurementModel(spec).fit(a, random_seed=7, max_tree_depth=1, **SHORT)
        pymc_fit = MeasurementModel(spec).fit(a, random_seed=9, sampler="pymc", draws=30, tune=30, chains=1,
                                              progressbar=False, max_tree_depth=1)
    assert given.attrs["max_tree_depth"] == pymc_fit.attrs["max_tree_depth"] == 1
    assert compat.group(given, "sample_stats")["n_steps"].values.max() <= 2
    stats = compat.group(pymc_fit, "sample_stats")
    assert stats["tree_depth"].values.max() <= 1 and stats["reached_max_treedepth"].values.any()
    for bad in (0, 21, 2.5, True, "deep"):
        with pytest.raises(ValueError, match="max_tree_depth must be 'auto' or an integer from 1 to 20"):
            MeasurementModel(spec).fit(a, random_seed=7, max_tree_depth=bad, **SHORT)


def test_mass_matrix_refuses_unknown_values_and_pymc_low_rank(tiny):
    from smeintl.measurement import MeasurementModel

    spec, a, _b = tiny
    with pytest.raises(ValueError, match="mass_matrix must be 'auto', 'diag' or 'low_rank', got 'dense'"):
        MeasurementModel(spec).fit(a, random_seed=1, mass_matrix="dense", **SHORT)
    with pytest.raises(ValueError, match="needs the nutpie sampler"):
        MeasurementModel(spec).fit(a, random_seed=1, mass_matrix="low_rank", **{**SHORT, "sampler": "pymc"})


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
        ll = pm.compute_log_likelihood(compat.to_arviz(idata), model=model, var_names=names, extend_inferencedata=False,
                                       progressbar=False)
        total = sum(ll[n].values.sum(-1) for n in names)
        np.testing.assert_allclose(total, idata.log_likelihood["responses"].values.sum(-1), rtol=1e-10)
        with caplog.at_level(logging.INFO, logger="pymc"), model:
            pp = compat.group(pm.sample_posterior_predictive(compat.to_arviz(idata), var_names=names, random_seed=1,
                                                             progressbar=False, extend_inferencedata=False),
                              "posterior_predictive")
    sampled = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Sampling:")]
    assert sampled == ["Sampling: [y_binary, y_ordinal4]"]
    y = pp["y_ordinal4"].values
    assert y.shape[:2] == (2, 60) and set(np.unique(y)) <= {0.0, 1.0, 2.0, 3.0}
    assert set(np.unique(pp["y_binary"].values)) <= {0.0, 1.0}


def test_same_seed_same_draws_whatever_the_process_ran_before(tiny, tmp_path):
    """A PyMC-sampler fit gives the same draws in a fresh process as in one that has run
    nutpie fits before (every model uses the same digamma, :mod:`smeintl._numba`, whichever
    backend PyTensor compiles it with), to the last bit.  On PyTensor 3, whose numba
    backend PyMC's sampler uses, they differed by up to 3e-11 relative after the earlier
    test modules while numba's fastmath was on (kernels compiled in the process against
    kernels read from the cache: ``measurement.model.exact_kernels``)."""
    import subprocess
    import sys

    from smeintl.data import survey_to_csv
    from smeintl.measurement import MeasurementModel, load_fit

    spec, a, _b = tiny
    kw = dict(draws=30, tune=30, chains=1, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MeasurementModel(spec).fit(a, random_seed=1, **SHORT)  # a nutpie fit first, in this process
        here = MeasurementModel(spec).fit(a, random_seed=9, sampler="pymc", **kw)
    # PyMC's own NUTS (its sample stats), not nutpie through pm.sample (PyMC 6's default
    # where nutpie is installed)
    stats = compat.group(here, "sample_stats")
    assert here.attrs["sampler"] == "pymc" and "tree_depth" in stats and "depth" not in stats
    survey_file = tmp_path / "a.csv"
    survey_to_csv(a, survey_file)
    out = tmp_path / "fresh.nc"
    code = ("import warnings; warnings.simplefilter('ignore')\n"
            "from smeintl.data import load_spec, load_survey\n"
            "from smeintl.measurement import MeasurementModel, save_fit\n"
            f"spec = load_spec({str(TINY)!r}); s = load_survey({str(survey_file)!r}, spec)\n"
            f"save_fit(MeasurementModel(spec).fit(s, random_seed=9, sampler='pymc', **{kw!r}), {str(out)!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh, _model = load_fit(out)
    np.testing.assert_array_equal(compat.group(here, "posterior")["loading"].values,
                                  compat.group(fresh, "posterior")["loading"].values)


def test_kernels_compile_without_fastmath_inside_and_as_before_outside():
    import pytensor

    from smeintl.measurement.model import exact_kernels

    before = pytensor.config.numba__fastmath
    with exact_kernels():
        assert pytensor.config.numba__fastmath is False
    assert pytensor.config.numba__fastmath == before


@pytest.mark.slow
def test_same_draws_from_freshly_compiled_and_cached_kernels(tiny, tmp_path):
    """A fit's first run on a machine (PyTensor's numba kernels compiled, written to an empty
    cache) gives the draws of every later run (the kernels read back from the cache), for
    both samplers, to the last bit.  With numba's fastmath the two differed on PyTensor 3
    (the log-density in its last bit, then every draw): ``measurement.model.exact_kernels``.
    Slow (about 2 minutes: every kernel of both samplers compiled into an empty cache); in
    the default suite the study's local and Dask tables (``tests/test_study.py``) are the
    same check across processes on a warm cache."""
    import os
    import subprocess
    import sys

    from smeintl.data import survey_to_csv
    from smeintl.measurement import load_fit

    spec, a, _b = tiny
    survey_file = tmp_path / "a.csv"
    survey_to_csv(a, survey_file)
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / 'compiledir'}"}
    kw = dict(draws=30, tune=30, chains=1, progressbar=False)
    draws = []
    for run in ("cold", "warm"):
        code = ("import warnings; warnings.simplefilter('ignore')\n"
                "from smeintl.data import load_spec, load_survey\n"
                "from smeintl.measurement import MeasurementModel, save_fit\n"
                f"spec = load_spec({str(TINY)!r}); s = load_survey({str(survey_file)!r}, spec)\n"
                f"for sampler in ('nutpie', 'pymc'):\n"
                f"    fit = MeasurementModel(spec).fit(s, random_seed=9, sampler=sampler, **{kw!r})\n"
                f"    save_fit(fit, {str(tmp_path)!r} + f'/{run}-{{sampler}}.nc')\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        draws.append([compat.group(load_fit(tmp_path / f"{run}-{s}.nc")[0], "posterior")["loading"].values
                      for s in ("nutpie", "pymc")])
    for cold, warm in zip(*draws):
        np.testing.assert_array_equal(cold, warm)


def test_chains_run_with_one_blas_thread_and_the_same_draws(monkeypatch):
    """nutpie's chains run with one BLAS thread per library (the marginal likelihood's
    matrix operations call OpenBLAS inside every chain); the draws are those of a fit
    without the limit, to the last bit."""
    import contextlib

    import pandas as pd
    from threadpoolctl import threadpool_info

    from smeintl import _compiled, spec_from_model
    from smeintl.data import survey_from_frame
    from smeintl.measurement import MeasurementModel

    with _compiled.one_blas_thread():
        inside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert inside and set(inside) == {1}
    rng = np.random.default_rng(11)
    eta = rng.standard_normal((80, 2))
    frame = pd.DataFrame({f"x{k}": eta[:, k // 3] + rng.normal(0, 0.7, 80) + 0.123 for k in range(6)})
    built = spec_from_model("f1 =~ x0 + x1 + x2\nf2 =~ x3 + x4 + x5", frame)
    survey = survey_from_frame(frame, built.spec, source="blas")
    model = MeasurementModel(built.spec, group=False)
    assert model.parameterization == "marginal"
    kw = dict(random_seed=4, log_likelihood=False, posterior_predictive=False, **SHORT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limited = model.fit(survey, **kw)
        monkeypatch.setattr(_compiled, "one_blas_thread", contextlib.nullcontext)
        free = model.fit(survey, **kw)
    for name in ("loading", "corr", "cont_sigma"):
        np.testing.assert_array_equal(compat.group(limited, "posterior")[name].values,
                                      compat.group(free, "posterior")[name].values)
