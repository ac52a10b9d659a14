"""Benchmark: wall time, effective sample size per second and peak memory of smeintl fits.

Prints one table and writes it as CSV.  Run on an otherwise idle machine:

    .venv/bin/python benchmarks/bench.py                 # the default set of rows
    .venv/bin/python benchmarks/bench.py --rows run fit41 # selected rows
    .venv/bin/python benchmarks/bench.py --sizes 41 1000 10000 --samplers pymc nutpie
    .venv/bin/python benchmarks/bench.py --rows fit --sizes 10000 --samplers nutpie --fit-defaults

Every row runs in a fresh subprocess, and its peak memory is that process's own high-water
mark (``VmHWM``, ``benchmarks/peak.py``): ``ru_maxrss`` of a child would count this parent's
memory too.  A ``run`` row's peak is its main process's, without the second process that
starts the model-comparison refits; the study rows report none (their fits run in Dask
workers).  ``run``
rows time ``smeintl run`` on the bundled data with an empty PyTensor compile cache
(a fresh ``PYTENSOR_FLAGS=base_compiledir=...``) and with a warm one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from peak import read_mb, wrap  # noqa: E402  (benchmarks/peak.py)
BUNDLE = "src/smeintl/bundled"  # the bundled files, relative to ROOT
PY = sys.executable

FIT_CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
from smeintl import load_spec
from smeintl.simulate import simulate_survey, typical_params
from smeintl.data import load_survey
from smeintl.measurement import MeasurementModel, diagnose
cfg = json.loads(sys.argv[1])
spec = load_spec(cfg["spec"])
if cfg["n"] == 0:
    survey = load_survey(cfg["data"], spec)
else:
    truth = typical_params(spec, n_groups=5, random_seed=1)
    survey = simulate_survey(spec, cfg["n"], truth, n_groups=5, missing=0.03, random_seed=1).survey
t0 = time.perf_counter()
idata = MeasurementModel(spec, parameterization=cfg["param"]).fit(
    survey, draws=cfg["draws"], tune=cfg["tune"], chains=cfg["chains"], random_seed=cfg["seed"],
    sampler=cfg["sampler"], progressbar=False, log_likelihood=cfg["n"] <= 2000,
    posterior_predictive=cfg["n"] <= 2000)
wall = time.perf_counter() - t0
d = diagnose(idata)
sample_s = json.loads(idata.attrs["timing"])["sample_s"]
sc = d.scores or {}
a = idata.attrs
print(json.dumps({"wall_s": wall, "sample_s": sample_s, "min_ess_bulk": d.min_ess_bulk,
                  "max_rhat": d.max_rhat, "divergences": d.divergences, "worst_ess": d.worst.get("ess_bulk"),
                  "scores_max_rhat": sc.get("max_rhat"), "scores_rhat_over": sc.get("n_over"),
                  "scores_rhat_chance": sc.get("expected_over"), "scores_rhat_bound": sc.get("bound_over"),
                  "settings": f"{a['chains']}x({a['tune']}+{a['draws']})", "failed": bool(d.failed)}))
"""


#: seconds one row may run before it is stopped and reported as timed out (--timeout)
TIMEOUT = [3600.0]


def _run(cmd: list[str], env=None) -> subprocess.CompletedProcess | dict:
    """Run the Python command ``cmd``; the completed process, with ``peak_mb`` its own peak
    memory (``peak.wrap``), or a dict with the error."""
    with tempfile.TemporaryDirectory(prefix="peak-") as tmp:
        peak_file = Path(tmp) / "peak"
        try:
            r = subprocess.run(wrap(cmd, peak_file), capture_output=True, text=True, env=env, cwd=ROOT,
                               timeout=TIMEOUT[0])
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {TIMEOUT[0]:.0f} s", "wall_s": TIMEOUT[0]}
        r.peak_mb = read_mb(peak_file)
    return r


def _cold_env(cold: bool) -> dict:
    env = dict(os.environ)
    if cold:
        # PyTensor's compile directory (with its numba cache) and numba's own cache
        # (smeintl's likelihood kernels) both empty
        env["PYTENSOR_FLAGS"] = f"base_compiledir={tempfile.mkdtemp(prefix='pytensor-cold-')}"
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cold-")
    return env


def _child(code: str, arg: str, env=None) -> dict:
    r = _run([PY, "-c", code, arg], env=env)
    if isinstance(r, dict):
        return r
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1]) | {"peak_mb": r.peak_mb}


def bench_fit(n: int, sampler: str, spec: str, param: str, draws: int, tune: int, chains: int,
              seed: int = 1) -> dict:
    cfg = dict(n=n, sampler=sampler, spec=str(ROOT / spec), data=str(ROOT / BUNDLE / "hitachi_synthetic.csv"),
               param=param, draws=draws, tune=tune, chains=chains, seed=seed)
    res = _child(FIT_CHILD, json.dumps(cfg))
    if "error" not in res:
        res["ess_per_s"] = res["min_ess_bulk"] / res["sample_s"]
    return res


def bench_fit_cli(cold: bool, sampler: str) -> dict:
    """``smeintl fit`` on the bundled data with the spec's default draws (cold or warm cache)."""
    out = Path(tempfile.mkdtemp(prefix="bench-fit-")) / "fit.nc"
    t0 = time.perf_counter()
    r = _run([PY, "-m", "smeintl.cli", "fit", str(ROOT / BUNDLE / "hitachi_synthetic.csv"), "--out", str(out),
              "--sampler", sampler, "--seed", "1", "--no-progress"], env=_cold_env(cold))
    wall = time.perf_counter() - t0
    if isinstance(r, dict):
        return r
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1]}
    from smeintl.measurement import diagnose, load_fit

    idata, _model = load_fit(out)
    d = diagnose(idata)
    sample_s = json.loads(idata.attrs["timing"])["sample_s"]
    return {"wall_s": wall, "sample_s": sample_s, "min_ess_bulk": d.min_ess_bulk, "ess_per_s": d.min_ess_bulk / sample_s,
            "max_rhat": d.max_rhat, "divergences": d.divergences, "peak_mb": r.peak_mb}


STUDY = """[study]
name = "bench"
instrument = "{instrument}"
seed = 7
replications = {reps}
kind = ["recovery"]

[grid]
n_firms = [100, 200]
loading = [1.5]
missing = [0.05]
n_groups = [3]
correlation = [0.4]

[fit]
draws = 300
tune = 300
chains = 2
sampler = "{sampler}"
"""


def bench_study(workers: int, reps: int, sampler: str) -> dict:
    """Throughput of ``smeintl study`` (2 conditions x ``reps`` replications of the tiny
    six-item instrument) on a local Dask cluster of ``workers`` single-threaded workers."""
    d = Path(tempfile.mkdtemp(prefix="bench-study-"))
    (d / "study.toml").write_text(STUDY.format(instrument=ROOT / BUNDLE / "tiny_instrument.toml", reps=reps,
                                               sampler=sampler))
    t0 = time.perf_counter()
    r = _run([PY, "-m", "smeintl.cli", "study", str(d / "study.toml"), "--out", str(d / "out"),
              "--workers", str(workers), "--no-progress", "--no-figures"])
    wall = time.perf_counter() - t0
    if isinstance(r, dict):
        return r
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1]}
    fits = 2 * reps
    return {"wall_s": wall, "fits": fits, "fits_per_hour": fits / wall * 3600}


def bench_run(cold: bool, extra: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-run-")) / "report"
    t0 = time.perf_counter()
    r = _run([PY, "-m", "smeintl.cli", "run", "--out", str(out), "--no-progress", *extra], env=_cold_env(cold))
    wall = time.perf_counter() - t0
    if isinstance(r, dict):
        return r
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1]}
    man = json.loads((out / "manifest.json").read_text())
    d = man["diagnostics"]
    return {"wall_s": wall, "sample_s": man["timings_s"].get("fit the measurement model"),
            "min_ess_bulk": d["min_ess_bulk"], "max_rhat": d["max_rhat"], "divergences": d["divergences"],
            "peak_mb": r.peak_mb, "ess_per_s": None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=["run", "fitcli", "fit", "continuous", "study"],
                    choices=["run", "fitcli", "fit", "continuous", "study"], help="which groups of rows")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds one row may run (default 3600)")
    ap.add_argument("--study-reps", type=int, default=4, help="replications per condition of the study rows")
    ap.add_argument("--sizes", nargs="+", type=int, default=[41, 1000, 10000])
    ap.add_argument("--samplers", nargs="+", default=["pymc", "nutpie"])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--fit-defaults", action="store_true",
                    help="fit rows take the fit's own draws, tune and chains (the spec's [sampler], large_* from "
                         "its large_firms firms) instead of --draws/--tune/--chains")
    ap.add_argument("--seed", type=int, default=1, help="sampler seed of the fit rows (default 1; the data are fixed)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.csv"))
    a = ap.parse_args(argv)
    TIMEOUT[0] = a.timeout
    if a.fit_defaults:
        a.draws = a.tune = a.chains = None
    rows = []

    def add(name, res):
        rows.append({"row": name, **res})
        print(f"  {name}: {res}", flush=True)

    if "run" in a.rows:
        add("smeintl run (cold cache)", bench_run(True, []))
        add("smeintl run (warm cache)", bench_run(False, []))
    if "fitcli" in a.rows:
        for smp in a.samplers:
            add(f"smeintl fit {smp} (cold cache)", bench_fit_cli(True, smp))
            add(f"smeintl fit {smp} (warm cache)", bench_fit_cli(False, smp))
    if "fit" in a.rows:
        for n in a.sizes:
            for s in a.samplers:
                add(f"fit hitachi n={n} {s}",
                    bench_fit(0 if n == 41 else n, s, f"{BUNDLE}/hitachi.toml", "auto", a.draws, a.tune, a.chains,
                              a.seed))
    if "continuous" in a.rows:
        for param in ("marginal", "latent"):
            for s in a.samplers:
                add(f"fit continuous n=1000 {param} {s}",
                    bench_fit(1000, s, "tests/data/specs/continuous_two.toml", param, a.draws, a.tune, a.chains,
                              a.seed))
    if "study" in a.rows:
        for s in a.samplers:
            for w in (1, 2):
                add(f"study throughput, {s}, {w} Dask worker(s)", bench_study(w, a.study_reps, s))
    cols = ["row", "settings", "wall_s", "sample_s", "min_ess_bulk", "worst_ess", "ess_per_s", "max_rhat", "divergences",
            "scores_max_rhat", "scores_rhat_over", "scores_rhat_chance", "scores_rhat_bound", "failed", "peak_mb",
            "fits_per_hour", "error"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)

    def fmt(v, col=""):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.3f}" if col.endswith("max_rhat") else f"{v:.1f}"
        return str(v)

    print("\n" + " | ".join(cols))
    print(" | ".join("---" for _ in cols))
    for r in rows:
        print(" | ".join(fmt(r.get(c), c) for c in cols))
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
