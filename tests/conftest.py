"""Shared fixtures: the bundled spec and data, and one real (short) fit shared by the session."""

from __future__ import annotations

import signal
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
DATA = BUNDLE_DIR / "hitachi_synthetic.csv"
SPEC = BUNDLE_DIR / "hitachi.toml"
SPECS = ROOT / "tests" / "data" / "specs"

# The Ctrl-C tests need Python's own SIGINT handling, in this process and in the commands they
# start.  A runner started as a background job of a shell without job control (``cmd &`` in a
# script, ``nohup``) inherits SIGINT ignored; Python then installs no KeyboardInterrupt handler,
# and smeintl, as a Unix program should, leaves an ignored SIGINT ignored.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

#: short but real sampling settings for the default suite
QUICK = dict(draws=250, tune=400, chains=2)
#: the seed of the session's fit of the default instrument (``hitachi_fit``)
HITACHI_SEED = 12


def _hitachi_findings():
    from smeintl.spec import load_spec

    return load_spec(SPEC).findings


#: the paper's six headline findings, as the bundled instrument declares them
HITACHI_FINDINGS = _hitachi_findings()


@pytest.fixture(scope="session")
def hitachi_spec():
    from smeintl import load_spec

    return load_spec(SPEC)


@pytest.fixture(scope="session")
def hitachi_survey(hitachi_spec):
    from smeintl.data import load_survey

    return load_survey(DATA, hitachi_spec)


@pytest.fixture(scope="session")
def hitachi_fit(hitachi_spec, hitachi_survey):
    """A real short fit of the default instrument on the bundled data (nutpie, 2 x (400 + 250)).

    Chains this short stick now and then: of 25 seeds (11-35), 2 gave a max R-hat over 1.1
    (min bulk ESS about 10) with fastmath off, as the fits compile, and none with it on, where
    seed 32 reached 1.092 (ESS 17); the median min bulk ESS was about 95 either way.  Seed 11,
    used before the compile settings changed, is one of the two; seed 12 gives 1.031."""
    from smeintl.measurement import MeasurementModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MeasurementModel(hitachi_spec).fit(hitachi_survey, random_seed=HITACHI_SEED, progressbar=False, **QUICK)


@pytest.fixture(scope="session")
def hitachi_fit_path(hitachi_fit, tmp_path_factory):
    from smeintl.measurement import save_fit

    return save_fit(hitachi_fit, tmp_path_factory.mktemp("fit") / "hitachi-fit.nc")
