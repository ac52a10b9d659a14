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
    # 300 examinees, at most 32 distinct rows of answers: the scores integrated out on the grid,
    # said on the console and in the methods appendix with the grid's check
    assert "quadrature parameterization" in captured.out
    assert "integrates each firm's latent score out of the likelihood" in report
    assert "a firm's log-likelihood changed by at most" in report
    # the scores drawn after sampling are named in the diagnostics table, not diagnosed again
    assert "drawn given each draw (quadrature)" in report and "not diagnosed" in report
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


def test_compare_fits_of_two_specs_on_the_same_data(irt_csv, tmp_path, capsys):
    fits = []
    for k, model in enumerate((MODEL, "a =~ i1 + i2 + i3\nb =~ i4 + i5")):
        out = tmp_path / f"fit{k}.nc"
        assert main(["fit", str(irt_csv), "--model", model, "--id-column", "person", "--quick", "--no-progress",
                     "--seed", "3", "--out", str(out)]) == 0
        fits.append(str(out))
    capsys.readouterr()
    assert main(["compare-fits", *fits, "--format", "csv"]) == 0
    table = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert set(table["model"]) == {"fit0", "fit1"} and sorted(table["rank"]) == [0, 1]
    assert table["elpd_diff"].min() == 0 and (table["elpd_diff"] >= 0).all()
    assert main(["compare-fits", fits[0]]) == 2
    assert "two or more" in capsys.readouterr().err


def test_invariance_needs_groups(irt_csv, tmp_path, capsys):
    args = ["fit", str(irt_csv), "--model", MODEL, "--id-column", "person", "--quick", "--out", str(tmp_path / "f.nc")]
    assert main([*args, "--invariance", "approximate"]) == 2
    err = capsys.readouterr().err
    assert "needs the group level" in err and "no group column" in err and "Traceback" not in err
    assert main([*args, "--group-column", "school", "--no-group", "--invariance", "metric"]) == 2
    assert "--no-group" in capsys.readouterr().err
    assert not (tmp_path / "f.nc").exists()


def test_run_with_approximate_invariance_reports_the_items(irt_csv, tmp_path, capsys):
    out = tmp_path / "inv"
    rc = main(["run", str(irt_csv), "--model", MODEL, "--id-column", "person", "--group-column", "school",
               "--invariance", "approximate", "--quick", "--no-progress", "--no-robustness", "--seed", "4",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = (out / "report.md").read_text()
    assert "Measurement invariance across industries" in report and "Leave-one-firm-out" in report
    params = pd.read_csv(out / "parameters.csv")
    assert {"loading_deviation", "intercept_deviation"} <= set(params["block"])
    assert main(["summary", str(out / "fit.nc"), "--delta", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "P(> 0.5)" in text and "flagged items:" in text
