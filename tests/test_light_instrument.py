"""A new user's instrument from the syntax alone: a plain binary 2PL from a data file with
extra columns (an id, a text column, a covariate), through the main job (`smeintl run
--model`), and what `prior-check` shows for it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from smeintl.cli import main

MODEL = "ability =~ i1 + i2 + i3 + i4 + i5"


@pytest.fixture(scope="module")
def irt_csv(tmp_path_factory):
    rng = np.random.default_rng(7)
    n = 300
    theta = rng.standard_normal(n)
    a = np.array([0.8, 1.2, 1.6, 1.0, 2.0])
    d = np.array([1.0, 0.3, -0.2, -0.8, 0.5])
    p = 1 / (1 + np.exp(-(a * theta[:, None] + d)))
    frame = pd.DataFrame((rng.random((n, 5)) < p).astype(int), columns=[f"i{k}" for k in range(1, 6)])
    frame.insert(0, "person", [f"P{k:04d}" for k in range(n)])
    frame["school"] = rng.choice(["north", "south"], n)
    frame["age"] = rng.integers(10, 16, n)
    path = tmp_path_factory.mktemp("irt") / "irt.csv"
    frame.to_csv(path, index=False)
    return path


def test_run_a_2pl_from_the_syntax_alone(irt_csv, tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["run", str(irt_csv), "--model", MODEL, "--id-column", "person", "--quick", "--no-progress",
               "--seed", "3", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # the inferred scales are shown; the extra columns are not items and are ignored
    assert "scales of the items" in captured.err and "only 0 and 1" in captured.err
    assert "comparison not run: the spec declares no ideal types" in captured.out
    report = (out / "report.md").read_text()
    assert "Not run: the spec declares no ideal types" in report
    params = pd.read_csv(out / "parameters.csv")
    loadings = params[(params["block"] == "loading") & (params["scale"] == "logit")]
    assert sorted(loadings["item"]) == ["i1", "i2", "i3", "i4", "i5"]
    assert (loadings["mean"] > 0).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert "comparison" in manifest["skipped"] and "[[items]]" in manifest["spec_text"]
    # no group column: no group level in the fit
    assert "group_sd" not in set(params["variable"])


def test_prior_check_shows_the_priors_on_their_scales(irt_csv, capsys):
    assert main(["prior-check", str(irt_csv), "--model", MODEL, "--id-column", "person", "--draws", "50"]) == 0
    out = capsys.readouterr().out
    assert "priors of model" in out
    assert "loading, logit scale per latent sd" in out and "intercept, logit scale" in out
    assert "residual_sd" not in out and "group_sd" not in out  # not used by this instrument
    assert "prior predictive check: 50 draws" in out
