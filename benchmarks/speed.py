"""Speed of small standard models: smeintl next to a hand-written PyMC model and the ML peers.

    .venv/bin/python benchmarks/speed.py                       # every case, default draws
    .venv/bin/python benchmarks/speed.py --cases cfa --repeat 3
    .venv/bin/python benchmarks/speed.py --cold                # adds smeintl's cold-cache fit
    .venv/bin/python benchmarks/speed.py --numpyro --no-peers  # adds PyMC's JAX path (needs numpyro)

Cases (data as in ``benchmarks/validate.py``):

``cfa``: Holzinger and Swineford (1939), 301 pupils, the three-factor CFA of x1-x9
(``semopy.examples.holzinger39``), smeintl's spec from the lavaan-style syntax, no group level
(the marginal parameterization: all items continuous).  ``2pl``: LSAT section 7, 5 binary
items, 1000 examinees (``mirt.load_dataset("LSAT7")``), a 2PL.  ``bundled``: the default
instrument on the bundled survey (``smeintl fit hitachi_synthetic.csv``), smeintl only.

Runners, each in a fresh process timed from outside (interpreter start, imports, model build,
compile, sampling, and for smeintl everything ``smeintl fit`` does after: latent scores,
log-likelihood, posterior predictive, diagnostics, saving the fit):

- ``smeintl``: ``python -m smeintl fit DATA --model ... --seed S`` once to warm the disk
  caches, then timed (a user running ``smeintl fit`` twice); with ``--cold``, also a first
  run with empty PyTensor and numba caches (``PYTENSOR_FLAGS=base_compiledir=...``,
  ``NUMBA_CACHE_DIR``);
- ``pymc``: a hand-written PyMC model as in PyMC's CFA and IRT examples (one latent score per
  pupil or examinee: an MvNormal with an LKJ correlation prior, or a Normal; the items'
  Normal or Bernoulli likelihood), with smeintl's identification and default priors so that
  both sample the same posterior; ``nutpie.compile_pymc_model`` and ``nutpie.sample`` with
  nutpie's defaults and the same draws, one BLAS thread as smeintl samples (without it the
  CFA's MvNormal starts OpenBLAS threads in every chain: 81 s of sampling for 4 x (100 + 100)
  draws on the busy machine); warmed once like smeintl;
- ``semopy`` (CFA: ``semopy.Model`` ML fit) and ``mirt`` (2PL: ``mirt.fit_mirt``), skipped
  with a note when not importable (the ``validate`` extra);
- ``api``: the same fit twice in one Python process (``MeasurementModel.fit``), as a notebook
  or script fits again with another seed, survey or prior of the same structure; the second
  fit reuses the compiled model, and its row times it with what ``smeintl fit`` does after
  sampling (``save_fit``, ``summarize_fit``), without the process's imports and compile;
- ``numpyro`` (with ``--numpyro``): smeintl's own model of the case
  (``MeasurementModel.build(survey, inputs="constant")``) sampled by PyMC's JAX path,
  ``pymc.sample(nuts_sampler="numpyro")``, the chains in parallel on one XLA host device per
  chain, JAX's persistent compilation cache warmed once like smeintl's.  JAX and NumPyro are
  not dependencies of smeintl: the row is skipped with a note when they are not importable,
  and says so when the model has an operation without a JAX form (smeintl's fused
  likelihood kernels, ``families.kernels.CellsLogp``).  It times import, build, the JAX
  trace and compile with a 5 + 5 draw run, and the full sampling after it; no posterior
  predictive, diagnostics or saving, so its wall time is a lower bound of a whole fit.

Reported per row: wall s, sampling s (the sampler's own), compile s, min bulk ESS over the
model parameters (loadings, intercepts, residual sds and correlations; not the latent
scores), ESS per wall second and per sampling second, max R-hat, divergences, the child's
own peak RSS (its ``VmHWM``, ``benchmarks/peak.py``; ``ru_maxrss`` would count this parent's
memory), its CPU time (``os.wait4``), and the load average before the run.  Ratios: smeintl's ESS/s over
the hand-written model's, and smeintl's wall time over the peer's.  The table is printed as
Markdown and written with the CSV under ``benchmarks/speed-results/`` (``--out``).  Every
random step takes ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from peak import read_mb, wrap  # noqa: E402  (benchmarks/peak.py)

CFA_MODEL = {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]}
IRT_ITEMS = [f"Item{k}" for k in range(1, 6)]
CASES = ("cfa", "2pl", "bundled")
#: the model parameters whose min bulk ESS is compared, per runner
SMEINTL_PARAMS = {"cfa": ["loading", "cont_intercept", "cont_sigma", "corr"], "2pl": ["loading", "binary_intercept"]}
PYMC_PARAMS = {"cfa": ["loading", "intercept", "sigma", "corr"], "2pl": ["loading", "intercept"]}


def model_text(case: str) -> str:
    if case == "cfa":
        return "\n".join(f"{c} =~ {' + '.join(items)}" for c, items in CFA_MODEL.items())
    return f"ability =~ {' + '.join(IRT_ITEMS)}"


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def write_data(case: str, folder: Path) -> tuple[Path | None, str]:
    """The case's survey as a CSV in ``folder``, or ``(None, why)`` when its source package is
    missing."""
    if case == "bundled":
        from smeintl.resources import bundled

        return Path(bundled("hitachi_synthetic.csv")), ""
    try:
        if case == "cfa":
            from semopy.examples import holzinger39

            frame = holzinger39.get_data().reset_index(drop=True)
        else:
            import mirt

            ds = mirt.load_dataset("LSAT7")
            frame = pd.DataFrame(np.asarray(ds["data"], dtype=int), columns=IRT_ITEMS)
    except ImportError as exc:
        return None, f"data not available ({exc.name} not installed: the 'validate' extra)"
    path = folder / f"{case}.csv"
    frame.to_csv(path, index=False)
    return path, ""


# ---------------------------------------------------------------------------------------------
# the children (one process per timed run)
# ---------------------------------------------------------------------------------------------
def _pymc_model(case: str, frame: pd.DataFrame):
    """The hand-written PyMC model: latent scores per person, smeintl's default priors."""
    import pymc as pm

    if case == "cfa":
        items = [i for its in CFA_MODEL.values() for i in its]
        Y = frame[items].to_numpy(dtype=float)
        Z = (Y - Y.mean(0)) / Y.std(0, ddof=1)  # smeintl's scale: the sample standardization
        factor = np.repeat(np.arange(len(CFA_MODEL)), 3)
        coords = {"item": items, "factor": list(CFA_MODEL), "obs": np.arange(len(Z))}
        with pm.Model(coords=coords) as model:
            loading = pm.LogNormal("loading", -0.5, 0.5, dims="item")
            intercept = pm.Normal("intercept", 0.0, 1.0, dims="item")
            sigma = pm.HalfNormal("sigma", 1.0, dims="item")
            corr = pm.LKJCorr("corr", n=len(CFA_MODEL), eta=2.0, return_matrix=True)
            ksi = pm.MvNormal("ksi", mu=np.zeros(len(CFA_MODEL)), cov=corr, dims=("obs", "factor"))
            mu = intercept + ksi[:, factor] * loading
            pm.Normal("y", mu=mu, sigma=sigma, observed=Z)
        return model
    Y = frame[IRT_ITEMS].to_numpy(dtype=int)
    coords = {"item": IRT_ITEMS, "obs": np.arange(len(Y))}
    with pm.Model(coords=coords) as model:
        theta = pm.Normal("theta", 0.0, 1.0, dims="obs")
        loading = pm.LogNormal("loading", 0.0, 0.5, dims="item")
        intercept = pm.Normal("intercept", 0.0, 1.5, dims="item")
        pm.Bernoulli("y", logit_p=theta[:, None] * loading + intercept, observed=Y)
    return model


def child_pymc(case: str, data: Path, out: Path, seed: int, draws: int, tune: int, chains: int) -> None:
    t0 = time.perf_counter()
    import nutpie
    from threadpoolctl import threadpool_limits

    from smeintl import compat

    frame = pd.read_csv(data)
    t1 = time.perf_counter()
    model = _pymc_model(case, frame)
    t2 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model)
    t3 = time.perf_counter()
    # one BLAS thread, as smeintl samples (its ``_compiled.one_blas_thread``): the MvNormal's
    # Cholesky factor in every chain otherwise starts OpenBLAS threads of its own, and the
    # comparison would be of that, not of the models
    with threadpool_limits(limits=1, user_api="blas"):
        trace = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed, progress_bar=False)
    t4 = time.perf_counter()
    fit = compat.as_fit(trace)
    compat.write_fit(fit, str(out))
    t5 = time.perf_counter()
    out.with_suffix(".json").write_text(json.dumps({
        "import_s": t1 - t0, "build_s": t2 - t1, "compile_s": t3 - t2, "sampling_s": t4 - t3, "save_s": t5 - t4}))


def _spec_and_survey(case: str, data: Path):
    """smeintl's spec and survey of a case, as ``smeintl fit`` builds them from its arguments."""
    from smeintl.api import read_spec
    from smeintl.data import load_survey, read_table
    from smeintl.syntax import spec_from_model

    if case == "bundled":
        spec = read_spec(None)
    else:
        extra = {"id_column": "id"} if case == "cfa" else {}
        spec = spec_from_model(model_text(case), read_table(data, sheet=0, encoding=None), **extra).spec
    return spec, load_survey(data, spec)


def child_api(case: str, data: Path, out: Path, seed: int, draws: int, tune: int, chains: int) -> None:
    """Two fits of the case in one Python process, as a notebook or a script fits again (another
    seed, survey or prior of the same structure): the second reuses the compiled model. Timed:
    the second fit with what ``smeintl fit`` does after it (saving, the summary's diagnostics)."""
    from smeintl.measurement import MeasurementModel, save_fit, summarize_fit

    spec, survey = _spec_and_survey(case, data)
    kw = {"draws": draws, "tune": tune, "chains": chains, "random_seed": seed, "progressbar": False}
    t0 = time.perf_counter()
    MeasurementModel(spec).fit(survey, **kw)
    t1 = time.perf_counter()
    fit = MeasurementModel(spec).fit(survey, **kw)
    save_fit(fit, out, overwrite=True)
    summarize_fit(fit, spec)
    t2 = time.perf_counter()
    out.with_suffix(".json").write_text(json.dumps({"first_s": t1 - t0, "second_s": t2 - t1}))


def child_numpyro(case: str, data: Path, out: Path, seed: int, draws: int, tune: int, chains: int) -> None:
    t0 = time.perf_counter()
    import jax
    import pymc as pm

    jax.config.update("jax_compilation_cache_dir", str(out.parent / "jax-cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    from smeintl import compat
    from smeintl.measurement import MeasurementModel

    t1 = time.perf_counter()
    spec, survey = _spec_and_survey(case, data)
    model = MeasurementModel(spec).build(survey, inputs="constant")
    t2 = time.perf_counter()
    kw = {"chains": chains, "nuts_sampler": "numpyro", "progressbar": False, "compute_convergence_checks": False,
          "nuts_sampler_kwargs": {"chain_method": "parallel"}}
    try:
        with model:
            pm.sample(draws=5, tune=5, random_seed=seed, **kw)  # the trace and compile
            t3 = time.perf_counter()
            trace = pm.sample(draws=draws, tune=tune, random_seed=seed, **kw)
    except NotImplementedError as exc:  # an operation without a JAX form
        out.with_suffix(".json").write_text(json.dumps({"error": str(exc)}))
        return
    t4 = time.perf_counter()
    compat.write_fit(compat.as_fit(trace), str(out))
    out.with_suffix(".json").write_text(json.dumps({
        "import_s": t1 - t0, "build_s": t2 - t1, "compile_s": t3 - t2, "sampling_s": t4 - t3}))


def child_peer(case: str, data: Path, out: Path) -> None:
    t0 = time.perf_counter()
    frame = pd.read_csv(data)
    if case == "cfa":
        import semopy

        t1 = time.perf_counter()
        model = semopy.Model(model_text(case))
        res = model.fit(frame)
        ok, what = bool(getattr(res, "success", True)), f"semopy {semopy.__version__} ML"
    else:
        import mirt

        t1 = time.perf_counter()
        res = mirt.fit_mirt(frame[IRT_ITEMS].to_numpy(dtype=int), model="2PL", item_names=IRT_ITEMS)
        ok, what = bool(res.converged), f"mirt {mirt.__version__} 2PL (EM)"
    t2 = time.perf_counter()
    out.write_text(json.dumps({"import_s": t1 - t0, "fit_s": t2 - t1, "converged": ok, "what": what}))


# ---------------------------------------------------------------------------------------------
# the parent: timed children and their results
# ---------------------------------------------------------------------------------------------
def run_child(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run the Python command ``cmd``; its wall time, its own peak RSS in MB (``peak.wrap``: not
    the ``ru_maxrss`` of the child, which counts this parent's memory), its CPU time, exit
    status, the load before it and its output."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="peak-") as tmp:
        peak_file = Path(tmp) / "peak"
        t0 = time.perf_counter()
        proc = subprocess.Popen(wrap(cmd, peak_file), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd)
        # read before waiting: a full pipe would block the child
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        peak = read_mb(peak_file)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "peak_rss_mb": np.nan if peak is None else peak,
            "cpu_s": usage.ru_utime + usage.ru_stime, "rc": proc.returncode, "load": load, "output": output}


def _min_ess(fit, names: list[str]) -> tuple[float, float, int]:
    """(min bulk ESS, max R-hat, divergences) over ``names`` (a correlation matrix's constant
    diagonal left out)."""
    import warnings

    from smeintl import compat

    post = compat.group(fit, "posterior")[names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess, rhat = compat.ess(post, method="bulk"), compat.rhat(post)
    e = np.concatenate([np.asarray(v.values, dtype=float).ravel() for v in ess.data_vars.values()])
    r = np.concatenate([np.asarray(v.values, dtype=float).ravel() for v in rhat.data_vars.values()])
    ss = compat.group(fit, "sample_stats")
    return float(np.nanmin(e)), float(np.nanmax(r)), int(ss["diverging"].values.sum())


def _draw_args(args) -> list[str]:
    """The run's seed and draws as command-line options (``smeintl fit``'s and the children's)."""
    return ["--seed", str(args.seed), "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)]


def _child_cmd(kind: str, case: str, data: Path, out: Path, args) -> list[str]:
    """This script run as the ``kind`` child of ``case`` with the run's seed and draws."""
    return [sys.executable, str(Path(__file__).resolve()), "--child", kind, case, str(data), str(out), *_draw_args(args)]


def _smeintl_columns(fit, case: str) -> dict:
    """A smeintl fit's sampling and compile seconds, and its min bulk ESS, max R-hat and
    divergences: over the model parameters of ``SMEINTL_PARAMS``, or for the bundled
    instrument smeintl's own diagnostics (every reported parameter)."""
    from smeintl import compat

    timing = json.loads(fit.attrs["timing"])
    cols = {"sampling_s": float(compat.group(fit, "posterior").attrs["sampling_time"]),
            "compile_s": float(timing.get("compile_s", np.nan))}
    if case in SMEINTL_PARAMS:
        checks = _min_ess(fit, SMEINTL_PARAMS[case])
    else:
        d = json.loads(fit.attrs["diagnostics"])
        checks = d["min_ess_bulk"], d["max_rhat"], d["divergences"]
    return cols | dict(zip(("min_ess_bulk", "max_rhat", "divergences"), checks))


def smeintl_cmd(case: str, data: Path, out: Path, args) -> list[str]:
    cmd = [sys.executable, "-m", "smeintl", "fit", str(data), "--out", str(out), "--force", "--no-progress",
           *_draw_args(args)]
    if case == "cfa":
        cmd += ["--model", model_text(case), "--id-column", "id"]
    elif case == "2pl":
        cmd += ["--model", model_text(case)]
    return cmd


def smeintl_row(case: str, data: Path, work: Path, args, *, cold: bool = False) -> dict:
    from smeintl import compat

    out = work / f"smeintl-{case}.nc"
    cmd = smeintl_cmd(case, data, out, args)
    env = dict(os.environ)
    if cold:
        cache = Path(tempfile.mkdtemp(prefix="cold-", dir=work))
        env["PYTENSOR_FLAGS"] = ",".join(filter(None, [env.get("PYTENSOR_FLAGS"), f"base_compiledir={cache / 'pytensor'}"]))
        env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    else:
        run_child(cmd, env=env, cwd=work)  # the warm-up: `smeintl fit` run once before
    res = run_child(cmd, env=env, cwd=work)
    row = {"case": case, "runner": "smeintl fit (cold caches)" if cold else "smeintl fit (warm)",
           **{k: res[k] for k in ("wall_s", "peak_rss_mb", "cpu_s", "load")}}
    if res["rc"] != 0:
        return row | {"note": f"exit {res['rc']}: {res['output'][-300:]}"}
    fit = compat.read_fit(str(out))
    row |= _smeintl_columns(fit, case)
    row["note"] = (f"{fit.attrs['parameterization']} parameterization, mass matrix {fit.attrs['mass_matrix']}, "
                   f"target_accept {float(fit.attrs['target_accept']):g}; {'passed' if not int(fit.attrs['failed']) else 'FAILED'} "
                   "its diagnostics")
    return row


def _child_row(kind: str, case: str, data: Path, work: Path, args, runner: str, *, warm: bool = True,
               env: dict | None = None) -> tuple[dict, dict | None, object]:
    """Run this script's ``kind`` child of ``case`` (once before, untimed, where ``warm``: the
    disk caches). Returns the row so far, the child's JSON and its fit; (row, None, None)
    where the child failed, the row's note saying how; the fit is None where the JSON holds an
    ``error``."""
    from smeintl import compat

    out = work / f"{kind}-{case}.nc"
    cmd = _child_cmd(kind, case, data, out, args)
    if warm:
        run_child(cmd, env=env, cwd=work)
    res = run_child(cmd, env=env, cwd=work)
    row = {"case": case, "runner": runner, **{k: res[k] for k in ("wall_s", "peak_rss_mb", "cpu_s", "load")}}
    if res["rc"] != 0:
        return row | {"note": f"exit {res['rc']}: {res['output'][-300:]}"}, None, None
    t = json.loads(out.with_suffix(".json").read_text())
    return row, t, None if "error" in t else compat.read_fit(str(out))


def pymc_row(case: str, data: Path, work: Path, args) -> dict:
    row, t, fit = _child_row("pymc", case, data, work, args, "hand-written PyMC + nutpie (warm)")
    if t is None:
        return row
    row |= {"sampling_s": t["sampling_s"], "compile_s": t["compile_s"]}
    row["min_ess_bulk"], row["max_rhat"], row["divergences"] = _min_ess(fit, PYMC_PARAMS[case])
    row["note"] = ("latent scores sampled per person; nutpie's defaults (diagonal mass matrix, target_accept 0.8), "
                   "one BLAS thread")
    return row


def api_row(case: str, data: Path, work: Path, args) -> dict:
    row, t, fit = _child_row("api", case, data, work, args, "smeintl API, second fit in one process", warm=False)
    row.pop("cpu_s")  # of both fits
    if t is None:
        return row | {"wall_s": np.nan}
    row |= {"wall_s": t["second_s"], **_smeintl_columns(fit, case)}
    reused = json.loads(fit.attrs["timing"]).get("compile_reused")
    row["note"] = (f"MeasurementModel.fit, save_fit and summarize_fit of the second fit (the compiled model reused: "
                   f"{reused}); the first fit of the process took {t['first_s']:.1f} s")
    return row


def numpyro_row(case: str, data: Path, work: Path, args) -> dict:
    runner = "smeintl's model + PyMC's numpyro NUTS (warm XLA cache)"
    try:
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    except ImportError as exc:
        return {"case": case, "runner": runner, "note": f"skipped: {exc.name} not installed (not a dependency of smeintl)"}
    env = dict(os.environ)
    env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS"),
                                              f"--xla_force_host_platform_device_count={args.chains}"]))
    row, t, fit = _child_row("numpyro", case, data, work, args, runner, env=env)
    if t is None:
        return row
    if fit is None:
        return row | {"wall_s": np.nan, "note": f"not run: {t['error']}"}
    row |= {"sampling_s": t["sampling_s"], "compile_s": t["compile_s"]}
    if case in SMEINTL_PARAMS:
        row["min_ess_bulk"], row["max_rhat"], row["divergences"] = _min_ess(fit, SMEINTL_PARAMS[case])
    row["note"] = (f"import {t['import_s']:.1f} s, build {t['build_s']:.2f} s; compile = JAX trace and compile with "
                   "a 5 + 5 draw run; no posterior predictive, diagnostics or saving")
    return row


def peer_row(case: str, data: Path, work: Path, args) -> dict:
    name, module = ("semopy", "semopy") if case == "cfa" else ("mirt", "mirt")
    row = {"case": case, "runner": f"{name} (ML)"}
    try:
        __import__(module)
    except ImportError:
        return row | {"note": f"skipped: {module} not installed (the 'validate' extra)"}
    out = work / f"{name}-{case}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "peer", case, str(data), str(out)]
    run_child(cmd, cwd=work)
    res = run_child(cmd, cwd=work)
    row |= {k: res[k] for k in ("wall_s", "peak_rss_mb", "cpu_s", "load")}
    if res["rc"] != 0:
        return row | {"note": f"exit {res['rc']}: {res['output'][-300:]}"}
    t = json.loads(out.read_text())
    return row | {"sampling_s": np.nan, "fit_s": t["fit_s"],
                  "note": f"{t['what']}: fit {t['fit_s']:.3f} s, import {t['import_s']:.2f} s; converged {t['converged']}"}


def add_ratios(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    t["ess_per_s"] = t["min_ess_bulk"] / t["wall_s"]
    t["ess_per_sampling_s"] = t["min_ess_bulk"] / t["sampling_s"]
    ratios = []
    for _, r in t.iterrows():
        same = t[t.case == r.case]
        ref = same[same.runner.str.startswith("smeintl fit (warm)")]
        text = ""
        if len(ref):
            s = ref.iloc[0]
            if r.runner.startswith("hand-written"):
                text = (f"smeintl {s.ess_per_s / r.ess_per_s:.2f}x the ESS/s (wall), "
                        f"{s.ess_per_sampling_s / r.ess_per_sampling_s:.2f}x (sampling)")
            elif r.runner.startswith(("smeintl's model", "smeintl API")) and np.isfinite(r.get("wall_s", np.nan)):
                text = f"smeintl fit takes {s.wall_s / r.wall_s:.2f}x its wall time"
            elif r.runner.endswith("(ML)") and np.isfinite(r.get("wall_s", np.nan)):
                text = f"smeintl takes {s.wall_s / r.wall_s:.0f}x the wall time ({s.wall_s / r.fit_s:.0f}x the fit alone)"
        ratios.append(text)
    t["ratio"] = ratios
    return t


COLUMNS = ["case", "runner", "wall_s", "sampling_s", "compile_s", "min_ess_bulk", "ess_per_s", "ess_per_sampling_s",
           "max_rhat", "divergences", "peak_rss_mb", "cpu_s", "load", "ratio", "note"]


def markdown(t: pd.DataFrame) -> str:
    head = ["case", "runner", "wall s", "sampling s", "compile s", "min bulk ESS", "ESS/s (wall)", "ESS/s (sampling)",
            "max R-hat", "div.", "peak RSS MB", "CPU s", "load", "ratio", "note"]

    def fmt(v, col):
        if isinstance(v, str):
            return v
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        if col in ("divergences",):
            return str(int(v))
        if col in ("max_rhat",):
            return f"{v:.3f}"
        if col in ("min_ess_bulk", "peak_rss_mb"):
            return f"{v:.0f}"
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in t.iterrows():
        lines.append("| " + " | ".join(fmt(r.get(c, ""), c) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument("--seed", type=int, default=20190601, help="every run's seed (default: smeintl's own)")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--repeat", type=int, default=1, help="timed runs of each row (each its own line)")
    p.add_argument("--cold", action="store_true", help="also smeintl's fit with empty compile caches")
    p.add_argument("--no-peers", action="store_true", help="smeintl only (and --numpyro's row if given)")
    p.add_argument("--numpyro", action="store_true",
                   help="also smeintl's model sampled by PyMC's numpyro NUTS (needs jax and numpyro)")
    p.add_argument("--out", type=Path, default=HERE / "speed-results")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, case, data, out = args.child
        if kind == "api":
            child_api(case, Path(data), Path(out), args.seed, args.draws, args.tune, args.chains)
        elif kind == "numpyro":
            child_numpyro(case, Path(data), Path(out), args.seed, args.draws, args.tune, args.chains)
        elif kind == "pymc":
            child_pymc(case, Path(data), Path(out), args.seed, args.draws, args.tune, args.chains)
        else:
            child_peer(case, Path(data), Path(out))
        return 0

    rows = []
    with tempfile.TemporaryDirectory(prefix="smeintl-speed-") as tmp:
        work = Path(tmp)
        for case in args.cases:
            data, why = write_data(case, work)
            if data is None:
                rows.append({"case": case, "runner": "all", "note": f"skipped: {why}"})
                continue
            if args.cold:
                rows.append(smeintl_row(case, data, work, args, cold=True))
            for _ in range(args.repeat):
                rows.append(smeintl_row(case, data, work, args))
                rows.append(api_row(case, data, work, args))
                if args.numpyro:
                    rows.append(numpyro_row(case, data, work, args))
                if case != "bundled" and not args.no_peers:
                    rows.append(pymc_row(case, data, work, args))
                    rows.append(peer_row(case, data, work, args))
                print(f"{case}: {rows[-1].get('runner')} done (load {os.getloadavg()[0]:.2f})", file=sys.stderr,
                      flush=True)
    table = add_ratios(pd.DataFrame(rows).reindex(columns=sorted(set(COLUMNS) | {"fit_s"}, key=lambda c: (
        COLUMNS.index(c) if c in COLUMNS else len(COLUMNS)))))
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    table.insert(0, "measured", stamp)
    table[["measured", *COLUMNS]].to_csv(args.out / "speed.csv", index=False)
    md = (f"Measured {stamp}; {args.chains} chains x {args.draws} draws after {args.tune} tuning, seed {args.seed}; "
          f"{os.cpu_count()} cores; load = 1-minute load average before each run.\n\n" + markdown(table) + "\n")
    (args.out / "speed.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
