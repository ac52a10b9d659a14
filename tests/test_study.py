"""Tests of smeintl.study: simulation studies (recovery, SBC, method comparison).

Layers:

* the study file: parsing, defaults, conditions, every validation error names the file
  and the key;
* the pieces: seeds, the latent-mean shift (same data as shifted latent scores), the
  SBC chi-square test;
* the runner's bookkeeping with a fake replication (no fits; an in-process Dask
  cluster so the monkeypatch reaches the worker): failures recorded and retried,
  resume, refusing a folder of another study, growing the replications;
* the tiny bundled study ``study_tiny.toml`` end to end with real fits: on a local
  cluster started by the runner, on a ``LocalCluster`` started here on 127.0.0.1
  (identical tables), and killed mid-way in a subprocess then resumed (finished
  replications untouched, same final table);
* (slow) simulation-based calibration of a small model: ranks pass the uniformity test.
"""

from __future__ import annotations

import filecmp
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smeintl.measurement import ItemLayout, expected_scaled, standardization_of
from smeintl.simulate import typical_params
from smeintl.spec import SpecError, load_spec
from smeintl.study import (
    RESULT_COLUMNS,
    StudyError,
    load_study,
    parse_study,
    replication_seeds,
    run_study,
    sbc_uniformity,
    shift_params,
    study_main,
    true_types,
)

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
TINY = BUNDLE_DIR / "study_tiny.toml"
EXAMPLE = BUNDLE_DIR / "study_example.toml"
BINARY = ROOT / "tests" / "data" / "specs" / "binary_one.toml"


def _study_text(**over) -> str:
    """A valid study on the tiny instrument; ``over`` replaces whole lines by key."""
    base = {
        "instrument": f'instrument = "{(BUNDLE_DIR / "tiny_instrument.toml").as_posix()}"',
        "seed": "seed = 5",
        "replications": "replications = 2",
        "kind": 'kind = ["recovery", "comparison"]',
        "grid": "[grid]\nn_firms = [30, 40]\nloading = [1.0, 2.0]\nn_groups = [3]",
        "fit": "[fit]\ndraws = 50\ntune = 50\nchains = 1",
        "extra": "",
    }
    base.update(over)
    return "\n".join([
        "[study]", base["instrument"], base["seed"], base["replications"], base["kind"], "", base["grid"], "",
        base["fit"], "", base["extra"],
    ])


# ---------------------------------------------------------------------------
# the study file
def test_bundled_studies_load():
    st = load_study(TINY)
    assert st.name == "tiny" and st.kinds == ("recovery", "comparison")
    assert len(st.conditions) == 2 and st.replications == 2
    assert [t.name for t in st.tasks()] == ["fixed-c000-r0000", "fixed-c000-r0001", "fixed-c001-r0000",
                                            "fixed-c001-r0001"]
    assert st.instrument.name == "tiny"
    ex = load_study(EXAMPLE)
    assert ex.instrument.name == "hitachi"
    assert len(ex.conditions) == 16 and ex.designs == ("fixed", "sbc")
    # SBC runs one condition per distinct (n_firms, missing, n_groups)
    assert ex.sbc_conditions() == [0, 2, 8, 10]
    assert len(ex.tasks()) == (16 + 4) * ex.replications
    assert ex.sbc["n_draws"] == 100


def test_conditions_are_the_cartesian_product_first_key_slowest():
    st = parse_study(_study_text(grid="[grid]\nn_firms = [30, 40]\nloading = [1.0, 2.0]\nshift_doi = [-0.5, 0]"),
                     "s.toml")
    c = st.conditions
    assert list(c.n_firms) == [30, 30, 30, 30, 40, 40, 40, 40]
    assert list(c.loading) == [1.0, 1.0, 2.0, 2.0] * 2
    assert list(c.shift_doi) == [-0.5, 0.0] * 4
    assert set(c.shift_independence) == {0.0}
    assert st.condition(5) == {"n_firms": 40, "loading": 1.0, "missing": 0.0, "n_groups": 5, "correlation": 0.4,
                               "group_sd": 0.5, "shift_doi": 0.0, "shift_independence": 0.0}


def test_target_accept_auto_resolves_for_the_fits_sampler():
    from smeintl.measurement import AUTO_TARGET_ACCEPT

    for sampler in ("pymc", "nutpie"):
        st = parse_study(_study_text(fit=f"[fit]\ndraws = 50\nsampler = '{sampler}'"), "s.toml")
        assert st.fit["target_accept"] == AUTO_TARGET_ACCEPT[sampler]
    st = parse_study(_study_text(fit="[fit]\ndraws = 50\ntarget_accept = 0.85"), "s.toml")
    assert st.fit["target_accept"] == 0.85


def test_hash_ignores_replications_and_name_but_not_the_design():
    a = parse_study(_study_text(), "a.toml")
    b = parse_study(_study_text(replications="replications = 9").replace("[study]", '[study]\nname = "x"'), "b.toml")
    assert a.hash == b.hash
    assert parse_study(_study_text(seed="seed = 6"), "c.toml").hash != a.hash
    assert parse_study(_study_text(fit="[fit]\ndraws = 51\ntune = 50\nchains = 1"), "c.toml").hash != a.hash


@pytest.mark.parametrize(
    "over, key",
    [
        ({"seed": "seed = -1"}, "study.seed"),
        ({"seed": ""}, "study.seed"),
        ({"replications": "replications = 0"}, "study.replications"),
        ({"kind": 'kind = ["recovery", "bootstrap"]'}, "study.kind"),
        ({"instrument": 'instrument = "nope.toml"'}, "study.instrument"),
        ({"grid": "[grid]\nn_firms = [2]"}, "grid.n_firms"),
        ({"grid": "[grid]\nn_firms = [30.5]"}, "grid.n_firms"),
        ({"grid": "[grid]\nloading = [0]"}, "grid.loading"),
        ({"grid": "[grid]\nmissing = [1.0]"}, "grid.missing"),
        ({"grid": "[grid]\ncorrelation = [1.0]"}, "grid.correlation"),
        ({"grid": "[grid]\nshift_exports = [1.0]"}, "grid.shift_exports"),
        ({"grid": "[grid]\nnoise = [1.0]"}, "grid.noise"),
        ({"grid": "[grid]\nn_firms = [30, 30]"}, "grid.n_firms"),
        ({"grid": "[grid]\nn_firms = [8]\nn_groups = [5]"}, "grid.n_firms"),
        ({"fit": "[fit]\ndraws = 0"}, "fit.draws"),
        ({"fit": "[fit]\nsampler = 'stan'"}, "fit.sampler"),
        ({"fit": "[fit]\ntarget_accept = 'fast'"}, "fit.target_accept"),
        ({"fit": "[fit]\nwarmup = 10"}, "fit.warmup"),
        ({"extra": "[sbc]\nparameters = ['loading[99]']"}, "sbc.parameters"),
        ({"extra": "[sbc]\nparameters = ['corr[0, 0]']"}, "sbc.parameters"),
        ({"extra": "[sbc]\nparameters = ['eta[0, exports]']"}, "sbc.parameters"),
        ({"extra": "[sbc]\nparameters = ['cutpoints_4[0]']"}, "sbc.parameters"),
        ({"extra": "[sbc]\nbins = 1000"}, "sbc.bins"),
        ({"extra": "[output]\nx = 1"}, "[output]"),
    ],
)
def test_validation_errors_name_the_file_and_key(over, key):
    with pytest.raises(StudyError) as exc:
        parse_study(_study_text(**over), "studies/bad.toml", base_dir=BUNDLE_DIR)
    msg = str(exc.value)
    assert "studies/bad.toml" in msg and key in msg, msg
    assert isinstance(exc.value, SpecError)  # the CLI reports it as a user error (exit 2)


def test_validation_collects_every_problem_and_instrument_specific_rules():
    with pytest.raises(StudyError) as exc:
        parse_study(_study_text(seed="seed = 'x'", grid="[grid]\nloading = [-1]\nnoise = [2]"), "s.toml")
    assert len(exc.value.problems) == 3
    # an instrument without a group column: n_groups must be 1, no group_sd
    text = f'[study]\ninstrument = "{BINARY.as_posix()}"\nseed = 1\nreplications = 1\n[grid]\nn_groups = [3]\n'
    with pytest.raises(StudyError, match="grid.n_groups: the instrument 'binary_one' has no group column"):
        parse_study(text, "s.toml")
    # one construct: no correlation
    text = f'[study]\ninstrument = "{BINARY.as_posix()}"\nseed = 1\nreplications = 1\n[grid]\ncorrelation = [0.2]\n'
    with pytest.raises(StudyError, match="grid.correlation"):
        parse_study(text, "s.toml")
    st = parse_study(f'[study]\ninstrument = "{BINARY.as_posix()}"\nseed = 1\nreplications = 1\nkind = "sbc"\n', "s.toml")
    assert "correlation" not in st.conditions and "group_sd" not in st.conditions
    assert st.sbc["parameters"] == ("loading[0]", "eta[0, 0]")
    assert st.sbc["quantities"] == ("loglik", "index_mean")  # the data-dependent test quantities by default
    for bad in ('"deviance"', '["loglik", 3]'):
        with pytest.raises(StudyError, match="sbc.quantities"):
            parse_study(f'[study]\ninstrument = "{BINARY.as_posix()}"\nseed = 1\nreplications = 1\nkind = "sbc"\n'
                        f'[sbc]\nquantities = {bad}\n', "s.toml")
    with pytest.raises(StudyError, match="file not found"):
        load_study(BUNDLE_DIR / "no_such_study.toml")


# ---------------------------------------------------------------------------
# pieces
def test_replication_seeds_depend_only_on_study_seed_and_indices():
    a = replication_seeds(1, 2, 3)
    assert a == replication_seeds(1, 2, 3)
    assert a == {k: int(v) for k, v in zip(
        ("simulate", "fit", "prior"), np.random.SeedSequence([1, 2, 3]).generate_state(3, dtype=np.uint32))}
    others = [replication_seeds(1, 2, 4), replication_seeds(1, 3, 3), replication_seeds(2, 2, 3),
              replication_seeds(1, 2, 3, "sbc")]
    assert all(o["simulate"] != a["simulate"] and o["fit"] != a["fit"] for o in others)


def test_shift_params_equals_shifted_latent_scores():
    spec = load_spec()  # every item family: ordinal, percent, count
    lay = ItemLayout.from_spec(spec)
    p = typical_params(spec, n_groups=0, random_seed=3)
    eta = np.random.default_rng(0).standard_normal((25, 2))
    shift = {"doi": -0.8, "independence": 0.4}
    std = standardization_of(lay)
    a = expected_scaled(shift_params(spec, p, shift), eta, lay, standardization=std)
    b = expected_scaled(p, eta + np.array([-0.8, 0.4]), lay, standardization=std)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # the input is not modified; no shift is the identity
    np.testing.assert_array_equal(shift_params(spec, p, {})["cutpoints_5"], p["cutpoints_5"])
    # a negative DOI shift makes fewer firms internationalizing (true types)
    eta = np.random.default_rng(1).standard_normal((2000, 2))
    codes0, names = true_types(spec, p, eta)
    codes1, _ = true_types(spec, shift_params(spec, p, {"doi": -0.8}), eta)
    intl = [k for k, n in enumerate(names) if n in ("independent_international", "mnc_follower")]
    assert np.isin(codes1, intl).mean() < np.isin(codes0, intl).mean() - 0.1


def test_sbc_uniformity_chi_square():
    rng = np.random.default_rng(0)
    L = 100  # ranks 0..100: 101 values in 10 bins, unequal expected counts

    def frame(ranks):
        n = len(ranks)
        return pd.DataFrame({"design": "sbc", "condition": 0, "replication": np.arange(n), "status": "ok",
                             "kind": "sbc", "quantity": "loading[b1]", "true": 0.0, "estimate": ranks.astype(float),
                             "n": L})

    ranks, uni = sbc_uniformity(frame(rng.integers(0, L + 1, 400)), 10)
    assert len(ranks) == 400 and uni.p_value.iloc[0] > 0.01 and uni.df.iloc[0] == 9
    # exact expectation: all ranks at the bin boundaries of equal probability still pass
    _, uni = sbc_uniformity(frame(np.arange(L + 1)), 10)
    assert uni.chi2.iloc[0] == pytest.approx(0.0)
    # an overconfident posterior piles ranks at the ends
    skew = np.concatenate([rng.integers(0, 5, 100), rng.integers(96, 101, 100), rng.integers(0, 101, 100)])
    _, uni = sbc_uniformity(frame(skew), 10)
    assert uni.p_value.iloc[0] < 1e-6


# ---------------------------------------------------------------------------
# the runner's bookkeeping, with a fake replication
@pytest.fixture()
def inproc_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
                      silence_logs=logging.ERROR) as cl:
        yield cl.scheduler_address


def _fake_rows(study, task):
    if task.condition == 1 and task.replication == 0 and os.environ.get("SMEINTL_TEST_FAIL") == "1":
        raise RuntimeError("boom in c1 r0")
    seed = replication_seeds(study.seed, task.condition, task.replication, task.design)["simulate"]
    v = np.random.default_rng(seed).normal(size=2)
    return [
        {"design": task.design, "condition": task.condition, "replication": task.replication, "status": "ok",
         "kind": "recovery", "family": "loading", "quantity": q, "true": 1.0, "estimate": 1.0 + x, "error": x,
         "sq_error": x * x, "lo": 0.0, "hi": 2.0, "width": 2.0, "covered": float(abs(x) < 1), "n": 1, "message": ""}
        for q, x in zip(("loading[a]", "loading[b]"), v)
    ]


def test_runner_records_failures_retries_and_resumes(tmp_path, monkeypatch, inproc_cluster):
    import smeintl.study.replication as study_mod  # run_replication looks _replication_rows up there

    monkeypatch.setattr(study_mod, "_replication_rows", _fake_rows)
    monkeypatch.setenv("SMEINTL_TEST_FAIL", "1")
    st = parse_study(_study_text(), "s.toml")  # 4 conditions x 2 replications
    out = tmp_path / "out"
    r1 = run_study(st, out, scheduler=inproc_cluster, progress=False, figures=False)
    assert (r1.n_tasks, r1.n_run, r1.n_failed, r1.n_skipped) == (8, 8, 1, 0)
    err = json.loads((out / "reps" / "fixed-c001-r0000.error.json").read_text())
    assert "boom in c1 r0" in err["error"] and "Traceback" in err["traceback"] and "RuntimeError" in err["traceback"]
    res = pd.read_csv(out / "results.csv")
    assert list(res.columns[:3]) == ["design", "condition", "replication"]
    assert set(RESULT_COLUMNS) <= set(res.columns) and "n_firms" in res.columns
    bad = res[res.status == "failed"]
    assert len(bad) == 1 and bad.condition.iloc[0] == 1 and "boom" in bad.message.iloc[0]
    assert (res.status == "ok").sum() == 7 * 2
    cond = pd.read_csv(out / "conditions.csv")
    assert list(cond.fixed_failed) == [0, 1, 0, 0] and list(cond.fixed_ok) == [2, 1, 2, 2]
    summ = pd.read_csv(out / "summary.csv")
    assert set(summ.quantity) == {"loading[a]", "loading[b]", "(all)"}
    assert summ[(summ.condition == 1) & (summ.quantity == "(all)")].n_reps.iloc[0] == 1

    # rerun: only the failed replication runs again; finished files are not rewritten
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "reps").glob("*.csv")}
    monkeypatch.setenv("SMEINTL_TEST_FAIL", "0")
    r2 = run_study(st, out, scheduler=inproc_cluster, progress=False, figures=False)
    assert (r2.n_run, r2.n_failed, r2.n_skipped) == (1, 0, 7)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "reps").glob("*.csv")}
    assert all(after[k] == v for k, v in before.items())
    assert not (out / "reps" / "fixed-c001-r0000.error.json").exists()
    res2 = pd.read_csv(out / "results.csv")
    assert (res2.status == "ok").all() and len(res2) == 16

    # nothing left: a third run only rebuilds the tables, identical bytes
    text = (out / "results.csv").read_bytes()
    r3 = run_study(st, out, scheduler=inproc_cluster, progress=False, figures=False)
    assert (r3.n_run, r3.n_skipped) == (0, 8) and (out / "results.csv").read_bytes() == text

    # --collect-only rebuilds the tables from the replication files, runs nothing
    f = tmp_path / "s.toml"
    f.write_text(_study_text())
    (out / "results.csv").unlink()
    assert study_main([str(f), "--out", str(out), "--collect-only", "--no-figures"]) == 0
    assert (out / "results.csv").read_bytes() == text

    # more replications extend the study (same hash)
    st4 = parse_study(_study_text(replications="replications = 3"), "s.toml")
    r4 = run_study(st4, out, scheduler=inproc_cluster, progress=False, figures=False)
    assert (r4.n_run, r4.n_skipped) == (4, 8)
    assert pd.read_csv(out / "results.csv").replication.max() == 2

    # a different design is refused in the same folder
    with pytest.raises(StudyError, match="another study configuration"):
        run_study(parse_study(_study_text(seed="seed = 99"), "s.toml"), out, scheduler=inproc_cluster)
    # ... and so is a folder that is not a study folder
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("x")
    with pytest.raises(StudyError, match="not a study folder"):
        run_study(st, other, scheduler=inproc_cluster)


def test_runner_rejects_bad_options(tmp_path):
    st = parse_study(_study_text(), "s.toml")
    with pytest.raises(StudyError, match="--workers"):
        run_study(st, tmp_path / "o", scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(StudyError, match="--workers"):
        run_study(st, tmp_path / "o", workers=0)
    with pytest.raises(StudyError, match="cannot connect to the Dask scheduler"):
        run_study(st, tmp_path / "o2", scheduler="tcp://127.0.0.1:9", progress=False, connect_timeout=2)


def test_cli_dry_run_and_user_errors(tmp_path, capsys):
    assert study_main([str(TINY), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 condition(s) x 2 replication(s) = 4 replication(s)" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(_study_text(kind='kind = "bootstrap"'))
    assert study_main([str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "study.kind" in err


# ---------------------------------------------------------------------------
# the tiny study with real fits
@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The tiny study on a local cluster started by the runner (2 worker processes)."""
    out = tmp_path_factory.mktemp("study") / "local"
    t0 = time.perf_counter()
    res = run_study(TINY, out, workers=2, progress=False)
    res.seconds = time.perf_counter() - t0
    return res


@pytest.fixture(scope="module")
def dask_cluster():
    """A real dask.distributed LocalCluster on loopback (2 single-threaded worker processes)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR) as cl:
        yield cl


def test_tiny_study_end_to_end_locally(local_run):
    out = local_run.out
    assert (local_run.n_run, local_run.n_failed) == (4, 0)
    for name in ("results.csv", "summary.csv", "conditions.csv", "timings.csv", "study.json", "study.toml",
                 "instrument.toml", "figures/recovery.png", "figures/type_recovery.png", "figures/reliability.png"):
        assert (out / name).exists(), name
    # the instrument as a record that means the same on another machine (not this one's path)
    assert json.loads((out / "study.json").read_text())["instrument"] in (
        "bundled:tiny_instrument.toml", "src/smeintl/bundled/tiny_instrument.toml")
    res = pd.read_csv(out / "results.csv")
    assert (res.status == "ok").all()
    assert sorted(res[["condition", "replication"]].drop_duplicates().itertuples(index=False)) == [
        (0, 0), (0, 1), (1, 0), (1, 1)]
    # the table is sorted as documented
    order = res.sort_values(["condition", "replication", "kind", "family", "quantity"], kind="mergesort").index
    assert list(order) == list(range(len(res)))
    rec = res[res.kind == "recovery"]
    assert set(rec.family) == {"loading", "thresholds", "binary_intercept", "corr", "group_mean", "eta"}
    # thresholds: every cutpoint of both likert items, true values increasing within an item
    thr = rec[(rec.family == "thresholds") & (rec.condition == 0) & (rec.replication == 0)]
    assert list(thr.quantity) == [f"cutpoints_4[{i},{k}]" for i in ("d_stage", "i_dependence") for k in (1, 2, 3)]
    assert (np.diff(thr["true"].to_numpy().reshape(2, 3), axis=1) > 0).all()
    assert (rec[rec.family == "loading"]["true"] == 1.5).all()
    assert set(rec[rec.family == "eta"].quantity) == {"eta[doi]", "eta[independence]"}
    assert set(rec[rec.family == "eta"].n) == {30, 40}
    assert rec.covered.between(0, 1).all()
    # posterior means are near the truth: loadings within a loose band
    assert rec[rec.family == "loading"].estimate.between(0.3, 5).all()
    comp = res[res.kind == "comparison"]
    tr = comp[comp.family == "type_recovery"]
    assert set(tr.quantity) == {"deterministic", "modal_true_score", "modal_replicated"}
    assert tr.estimate.between(0, 1).all() and tr.estimate.mean() > 0.4  # better than chance (4 types)
    brier = comp[comp.family == "brier"].set_index(["condition", "replication", "quantity"]).estimate
    assert brier.between(0, 2).all()
    rel = comp[comp.family == "reliability_true_score"]
    # each firm contributes one probability per type: 4 types x firms per replication
    assert rel.groupby(["condition", "replication"]).n.sum().tolist() == [120, 120, 160, 160]
    shares = comp[comp.family == "type_share_posterior"]
    assert np.allclose(shares.groupby(["condition", "replication"])["true"].sum(), 1.0)
    diag = res[res.kind == "diagnostics"]
    assert set(diag.quantity) == {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "failed",
                                  "scores_max_rhat", "scores_rhat_over", "scores_rhat_bound"}
    summ = pd.read_csv(out / "summary.csv")
    allrows = summ[summ.quantity == "(all)"]
    assert {("recovery", f) for f in ("loading", "corr", "group_mean", "eta")} <= set(
        zip(allrows.kind, allrows.family))
    assert summ[summ.quantity == "(all)"].n_reps.eq(2).all()
    print(f"\ntiny study locally (2 workers): {local_run.seconds:.1f} s")


def assert_same_table(a, b):
    """The same table, byte for byte: a fit's draws are the same in any process, whatever
    it ran before and whether PyTensor's kernels were compiled or read from the cache
    (tests/test_compiled.py)."""
    if filecmp.cmp(a, b, shallow=False):
        return
    pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b), check_exact=True, obj=a.name)
    raise AssertionError(f"{a.name}: the same values, written differently")


def test_tiny_study_on_a_dask_cluster_gives_identical_tables(local_run, dask_cluster, tmp_path):
    out = tmp_path / "dask"
    t0 = time.perf_counter()
    res = run_study(TINY, out, scheduler=dask_cluster.scheduler_address, progress=False, figures=False)
    print(f"\ntiny study on a LocalCluster via its address: {time.perf_counter() - t0:.1f} s")
    assert (res.n_run, res.n_failed) == (4, 0)
    for name in ("results.csv", "summary.csv", "conditions.csv"):
        assert_same_table(local_run.out / name, out / name)
    for f in sorted((local_run.out / "reps").glob("*.csv")):
        assert_same_table(f, out / "reps" / f.name)
    # the workers ran on the cluster, not in this process
    hosts = pd.read_csv(out / "timings.csv")
    assert os.getpid() not in set(hosts.pid)


def test_killed_study_resumes_without_redoing_finished_replications(local_run, dask_cluster, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "smeintl.study", str(TINY), "--out", str(out), "--workers", "2", "--no-progress",
         "--no-figures"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    t0 = time.perf_counter()
    try:
        while True:
            done = list((out / "reps").glob("*.csv")) if (out / "reps").exists() else []
            if done or proc.poll() is not None or time.perf_counter() - t0 > 300:
                break
            time.sleep(0.1)
    finally:
        # kill the whole process group: the study and the worker processes it started
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    t_kill = time.perf_counter() - t0
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-3000:]
    for _ in range(50):  # the group is gone (no orphaned workers writing later)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("worker processes of the killed study survived")
    finished = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "reps").glob("*.csv")}
    assert 1 <= len(finished) < 4, finished
    assert not (out / "results.csv").exists()
    # rerun (on the cluster's warm workers): skips the finished replications
    t1 = time.perf_counter()
    res = run_study(TINY, out, scheduler=dask_cluster.scheduler_address, progress=False, figures=False)
    print(f"\nkilled after {t_kill:.1f} s with {len(finished)} finished; resume {time.perf_counter() - t1:.1f} s")
    assert res.n_skipped == len(finished) and res.n_run == 4 - len(finished) and res.n_failed == 0
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "reps").glob("*.csv")}
    assert all(after[k] == v for k, v in finished.items())
    assert not list((out / "reps").glob(".*.tmp"))
    for name in ("results.csv", "summary.csv"):
        assert_same_table(local_run.out / name, out / name)


# ---------------------------------------------------------------------------
# simulation-based calibration
def test_prior_draws_of_cutpoints_are_increasing(hitachi_spec):
    # the cutpoints' prior is the normal restricted to increasing rows (an ordered transform);
    # a forward draw of the untransformed normal would break it for some items
    from smeintl.simulate import prior_params

    for seed in (3, 4):
        p = prior_params(hitachi_spec, n_groups=5, random_seed=seed)
        for name in ("pct_cutpoints", "cutpoints_5"):
            assert (np.diff(p[name], axis=-1) > 0).all(), (name, seed)
    again = prior_params(hitachi_spec, n_groups=5, random_seed=4)
    assert all(np.array_equal(again[k], p[k]) for k in p)  # same seed, same draw


def test_simulated_percent_answers_inside_the_range_stay_inside(hitachi_spec):
    # rounding an interior answer onto 0 or 100 would make it an answer of the end masses,
    # which the model did not draw (SBC's log-likelihood test found it at 200 firms)
    from smeintl.measurement import ItemLayout, standardization_of
    from smeintl.measurement.generative import draw_items
    from smeintl.simulate import prior_params, simulate_survey

    lay = ItemLayout.from_spec(hitachi_spec)
    blk = next(b for b in lay.blocks() if b.family.name == "percent")
    lo, hi = lay.lo[blk.idx], lay.hi[blk.idx]
    moved = 0
    for seed in range(6):
        p = prior_params(hitachi_spec, n_groups=5, random_seed=seed)
        rng = np.random.default_rng(seed)
        X = draw_items(p, rng.standard_normal((200, 2)), lay, rng, standardization=standardization_of(lay))[:, blk.idx]
        inside = (X > lo) & (X < hi)
        moved += int((inside & ((np.round(X, 2) <= lo) | (np.round(X, 2) >= hi))).sum())
        F = blk.family.finish_simulated(X, lo, hi)
        assert ((F > lo) & (F < hi))[inside].all()
        assert np.array_equal(F[~inside], X[~inside])  # the end masses' answers as drawn
        assert np.abs(F - X).max() <= 0.01 + 1e-12 and np.allclose(F, np.round(F, 2))
    assert moved > 0  # plain rounding would have moved some: the test can fail
    sim = simulate_survey(hitachi_spec, 200, prior_params(hitachi_spec, n_groups=5, random_seed=1), n_groups=5,
                          random_seed=1, outcome=False)
    names = [lay.names[k] for k in blk.idx]
    V = sim.survey.items[names].to_numpy(dtype=float)
    assert np.isin(V[(V <= lo) | (V >= hi)], [0.0, 100.0]).all()


def test_prior_predictive_cutpoints_follow_the_restricted_prior(hitachi_spec):
    # every draw increasing, and the draws are the restricted normal: their means match those
    # of plain rejection from the unrestricted normal (prior sd of the cutpoints' means < 0.06)
    from smeintl.data import survey_from_frame
    from smeintl.measurement import MeasurementModel
    from smeintl.simulate import _placeholder_frame

    survey = survey_from_frame(_placeholder_frame(hitachi_spec, 10, 5), hitachi_spec, source="<placeholder>")
    model = MeasurementModel(hitachi_spec, group=True)
    P = model.prior_predictive(survey, draws=400, random_seed=2)["params"]
    cut = P["cutpoints_5"]
    assert cut.shape[0] == 400 and (np.diff(cut, axis=-1) > 0).all()
    assert (np.diff(P["pct_cutpoints"], axis=-1) > 0).all()
    # plain rejection from the unrestricted normal prior of one item's cutpoints
    from smeintl.families.model import default_cutpoint_means

    sd = float(hitachi_spec.priors["cutpoint_sd"]["sigma"])
    z = np.random.default_rng(0).normal(default_cutpoint_means(5), sd, size=(400_000, 4))
    z = z[(np.diff(z, axis=-1) > 0).all(axis=-1)]
    rows = np.asarray(cut).reshape(-1, 4)  # 400 draws x 9 items, independent a priori
    se = z.std(axis=0) / np.sqrt(rows.shape[0])
    assert np.all(np.abs(rows.mean(axis=0) - z.mean(axis=0)) < 4 * se), (rows.mean(axis=0), z.mean(axis=0))
    # the unrestricted normal's means differ clearly: the test can tell them apart
    assert np.any(np.abs(default_cutpoint_means(5) - z.mean(axis=0)) > 8 * se)


def test_sbc_replication_ranks_the_test_quantities(tmp_path):
    from smeintl.study.config import Task
    from smeintl.study.replication import run_replication

    st = parse_study(f'[study]\ninstrument = "{BINARY.as_posix()}"\nseed = 5\nreplications = 1\nkind = "sbc"\n'
                     '[grid]\nn_firms = [40]\nmissing = [0.1]\n[fit]\ndraws = 60\ntune = 60\nchains = 2\n'
                     'sampler = "pymc"\n[sbc]\nthin = 3\n', "s.toml")
    out = run_replication(st, Task("sbc", 0, 0))
    assert "error" not in out, out.get("traceback")
    rows = pd.DataFrame(out["rows"]).set_index("quantity")
    for q in ("loglik", "index_mean[export_orientation]"):
        assert np.isfinite(rows.loc[q, "true"]), q
        assert rows.loc[q, "n"] == 40 and 0 <= rows.loc[q, "estimate"] <= 40
    assert rows.loc["loglik", "true"] < 0 and 0 < rows.loc["index_mean[export_orientation]", "true"] < 1


# simulation-based calibration (slow)
@pytest.mark.slow
def test_sbc_ranks_of_a_small_model_are_uniform(tmp_path):
    study = tmp_path / "sbc.toml"
    study.write_text(f"""
[study]
name = "sbc_binary"
instrument = "{BINARY.as_posix()}"
seed = 20180101
replications = 100
kind = "sbc"

[grid]
n_firms = [40]
missing = [0.0]
n_groups = [1]

[fit]
draws = 200
tune = 200
chains = 2

[sbc]
parameters = ["loading[0]", "loading[b4]", "eta[0, 0]", "binary_intercept[0]"]
thin = 4
bins = 10
""")
    t0 = time.perf_counter()
    res = run_study(study, tmp_path / "out", progress=False)
    secs = time.perf_counter() - t0
    uni = res.sbc_uniformity
    print(f"\nSBC: {res.n_run} fits in {secs:.0f} s\n{uni.to_string(index=False)}")
    assert res.n_failed == 0
    assert len(uni) == 6 and (uni.n_ranks == 100).all() and (uni.L == 100).all()  # + loglik, index_mean
    assert (uni.p_value > 0.01).all(), uni
    assert (tmp_path / "out" / "figures" / "sbc_ranks_c000.png").exists()
    ranks = pd.read_csv(tmp_path / "out" / "sbc_ranks.csv")
    assert len(ranks) == 400 and ranks["rank"].between(0, 100).all()
