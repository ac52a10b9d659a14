"""The model-comparison refits that ``smeintl run`` starts ahead, in a second process, while
it fits the model (``smeintl.robustness.ahead``): the same refits as the check's own, used
only for the fit they were started for, and nothing left behind."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from smeintl import load_spec
from smeintl.measurement import MeasurementModel
from smeintl.resources import bundled
from smeintl.robustness import run_robustness
from smeintl.robustness.ahead import KEYS, fit_attrs_ahead, start
from smeintl.robustness.context import RobustnessContext
from smeintl.robustness.refit import comparison_plan, refit_offsets
from smeintl.simulate import simulate_survey, typical_params

MODELS = ("no_industry",)


@pytest.fixture(scope="module")
def tiny():
    spec = load_spec(bundled("tiny_instrument.toml"))
    survey = simulate_survey(spec, 120, typical_params(spec, n_groups=2, random_seed=5), n_groups=2,
                             random_seed=5).survey
    model = MeasurementModel(spec)
    with start(model, survey, spec, seed=7, models=MODELS) as ahead:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = model.fit(survey, draws=200, tune=200, chains=2, random_seed=7, progressbar=False)
        yield spec, survey, model, fit, ahead


def test_the_fit_records_what_the_refits_were_started_for(tiny):
    spec, survey, model, fit, _ = tiny
    assert {k: fit.attrs.get(k) for k in KEYS} == {k: fit_attrs_ahead(model, survey).get(k) for k in KEYS}


def _started(ahead, model, timeout=120):
    """Wait until the second process has claimed ``model`` (it starts that refit)."""
    import time

    deadline = time.time() + timeout
    while not (ahead.folder / f"{model}.claim").exists() and ahead.process.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert (ahead.folder / f"{model}.claim").exists()


def test_the_check_takes_the_refits_made_ahead(tiny):
    spec, survey, _, fit, ahead = tiny
    _started(ahead, "no_industry")  # else the check would take the refit over (next test)
    ctx = RobustnessContext(idata=fit, survey=survey, spec=spec, seed=7, progress=False, models=MODELS)
    got = ahead.fits(ctx, list(MODELS))
    assert set(got) == set(MODELS) and got["no_industry"][1] > 0
    # the check takes them: their time is the second process's
    res = run_robustness(fit, survey, spec, checks=["model_comparison"], seed=7, models=MODELS, progress=False,
                         ahead=ahead).checks[0]
    table = res.table.set_index("model")
    assert res.passed is not None and table.loc["no_industry", "seconds"] == pytest.approx(got["no_industry"][1])
    assert np.isfinite(table.loc["no_industry", "elpd_loo"])


def test_refits_made_ahead_are_the_checks_own(tiny):
    """The same draws as the check's own refit in this process (it costs that refit)."""
    spec, survey, _, fit, ahead = tiny
    ctx = RobustnessContext(idata=fit, survey=survey, spec=spec, seed=7, progress=False, models=MODELS)
    got = ahead.fits(ctx, list(MODELS))
    plan, _ = comparison_plan(ctx)
    (m, (surv, sv, group)), = plan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = ctx.refit(sv, surv, group=group, offset=refit_offsets(plan)[m])
    for name in ("loading", "eta"):
        np.testing.assert_array_equal(got[m][0].posterior[name].values, own.posterior[name].values)


def test_refits_started_for_another_fit_are_not_used(tiny):
    spec, survey, _, fit, ahead = tiny
    for other in (dict(seed=8), dict(seed=7, refit_kwargs={"draws": 100})):
        ctx = RobustnessContext(idata=fit, survey=survey, spec=spec, progress=False, models=MODELS, **other)
        assert ahead.fits(ctx, list(MODELS)) == {}


def test_closing_stops_the_second_process_and_removes_its_folder(tiny):
    spec, survey, model, _, _ = tiny
    ahead = start(model, survey, spec, seed=9, models=MODELS)
    process, folder = ahead.process, ahead.folder
    assert folder.is_dir() and process.poll() is None
    ahead.close()
    assert process.poll() is not None and not folder.exists()
    ahead.close()  # twice is harmless


def test_a_script_without_a_main_guard_is_not_run_again(tmp_path):
    """The second process imports smeintl and runs the refits, nothing of the caller's script:
    a script calling ``analyze`` (which starts it) at its top level runs once.  (With
    multiprocessing's spawn, the child ran the script again up to that call and failed there.)"""
    import subprocess
    import sys

    marker = tmp_path / "ran.txt"
    script = tmp_path / "no_guard.py"
    script.write_text(
        "import pathlib, warnings\n"
        "warnings.simplefilter('ignore')\n"
        f"with open({str(marker)!r}, 'a') as f:\n"
        "    f.write('ran\\n')\n"
        "from smeintl import load_spec\n"
        "from smeintl.measurement import MeasurementModel\n"
        "from smeintl.resources import bundled\n"
        "from smeintl.robustness.ahead import start\n"
        "from smeintl.simulate import simulate_survey, typical_params\n"
        "spec = load_spec(bundled('tiny_instrument.toml'))\n"
        "survey = simulate_survey(spec, 60, typical_params(spec, n_groups=2, random_seed=5), n_groups=2,\n"
        "                         random_seed=5).survey\n"
        "ahead = start(MeasurementModel(spec), survey, spec, seed=7, models=())\n"
        "rc = ahead.process.wait(timeout=300)\n"
        "print('child', rc, (ahead.folder / 'done').exists())\n"
        "ahead.close()\n", encoding="utf-8")
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "child 0 True" in r.stdout, r.stdout + r.stderr[-3000:]
    assert marker.read_text() == "ran\n"
    assert "Traceback" not in r.stderr, r.stderr[-3000:]


def test_the_check_refits_what_the_second_process_has_not_started(tiny):
    """Once the fit is done, the check takes the refits the second process has not started
    (from the end of the plan) and refits them itself; the second process skips them."""
    spec, survey, model, fit, _ = tiny
    with start(model, survey, spec, seed=7, models=MODELS) as ahead:
        assert ahead.take("no_industry")  # before the new process has imported anything
        assert not ahead.take("no_industry")  # once only
        assert ahead.process.wait(timeout=300) == 0 and (ahead.folder / "done").exists()
        assert not (ahead.folder / "no_industry.nc").exists()
        ctx = RobustnessContext(idata=fit, survey=survey, spec=spec, seed=7, progress=False, models=MODELS)
        assert ahead.matches(ctx) and ahead.fits(ctx, list(MODELS)) == {}
        # the check refits it in this process
        res = run_robustness(fit, survey, spec, checks=["model_comparison"], seed=7, models=MODELS, progress=False,
                             ahead=ahead).checks[0]
    table = res.table.set_index("model")
    assert np.isfinite(table.loc["no_industry", "elpd_loo"]) and table.loc["no_industry", "seconds"] > 0
