"""Fit files written on either stack read back on both.

``tests/data/fits`` holds small fits made by ``make_fit.py`` there: one written by
smeintl 0.1 before fits became trees (Python 3.11, PyMC 5, ArviZ 0.x ``InferenceData``)
and one written on Python 3.13 with PyMC 6 and ArviZ 1.  Each must load, summarize,
diagnose and feed the predictive comparison on the running stack.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from smeintl import compat
from smeintl.data import load_spec
from smeintl.measurement import diagnose, load_fit, save_fit, summarize_fit
from smeintl.predictive import compare
from smeintl.simulate import simulate_survey

FITS = sorted((Path(__file__).parent / "data" / "fits").glob("*.nc"))
GROUPS = {"posterior", "sample_stats", "log_likelihood", "posterior_predictive", "observed_data", "constant_data"}


def test_both_stacks_are_represented():
    names = {p.stem for p in FITS}
    assert any("arviz0" in n for n in names) and any("arviz1" in n for n in names), names


@pytest.mark.parametrize("path", FITS, ids=[p.stem for p in FITS])
def test_fit_file_reads_on_this_stack(path, tmp_path):
    _fit, model = load_fit(path)
    spec = model.spec  # the instrument as stored in the file
    assert spec.item_names == load_spec("tiny_instrument.toml").item_names
    survey = simulate_survey(spec, 30, n_groups=3, random_seed=7).survey
    # the same simulated survey on every stack: the file's data hash matches
    fit, _model = load_fit(path, spec=spec, survey=survey)
    assert GROUPS <= set(compat.group_names(fit))
    post = compat.group(fit, "posterior")
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 20
    assert post["eta"].shape == (2, 20, 30, len(spec.construct_names))
    assert list(post["loading"].coords["item"].values) == list(spec.item_names)
    ll = compat.group(fit, "log_likelihood")["responses"]
    assert ll.shape == (2, 20, 30) and np.isfinite(ll.values).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = summarize_fit(fit, spec)
        diag = diagnose(fit)
        comp = compare(fit, survey, spec)
    assert len(summary.loadings) == len(spec.items)
    assert np.isfinite(diag.max_rhat) and diag.failed  # 2 x 20 draws: too few, and said so
    assert comp.n_draws == 40
    # written again on this stack, it reads back the same
    again, _ = load_fit(save_fit(fit, tmp_path / "again.nc"), spec=spec, survey=survey)
    for name in GROUPS:
        a, b = compat.group(fit, name), compat.group(again, name)
        for v in a.data_vars:
            np.testing.assert_array_equal(a[v].values, b[v].values)
    assert dict(again.attrs) == dict(fit.attrs)
