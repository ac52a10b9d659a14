"""Command line of the model commands: fit, summary, prior-check, compare."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest

from smeintl.cli import main
from conftest import HITACHI_FINDINGS as FINDINGS

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
DATA = BUNDLE_DIR / "hitachi_synthetic.csv"


def test_fit_cli_writes_fit_and_reports_diagnostics(tmp_path, capsys):
    out = tmp_path / "fit.nc"
    rc = main(["fit", str(DATA), "--out", str(out), "--draws", "60", "--tune", "60", "--chains", "1",
               "--seed", "3", "--no-progress"])
    assert rc == 0
    assert out.exists()
    captured = capsys.readouterr()
    # 60 draws cannot reach 400 effective draws: the failure is said in plain words
    assert "DIAGNOSTICS FAILED" in captured.out
    assert "not reliable" in captured.err
    # refuses to overwrite
    assert main(["fit", str(DATA), "--out", str(out), "--draws", "60", "--tune", "60", "--chains", "1"]) == 2
    assert "--force" in capsys.readouterr().err


def test_summary_cli(hitachi_fit_path, capsys):
    assert main(["summary", str(hitachi_fit_path)]) == 0
    out = capsys.readouterr().out
    assert "Loadings" in out and "Latent correlation" in out and "R-hat" in out


def test_check_cli(hitachi_fit_path, tmp_path, capsys):
    out = tmp_path / "checks"
    assert main(["check", str(hitachi_fit_path), "--out", str(out), "--seed", "4"]) == 0
    text = capsys.readouterr().out
    assert "Model checks" in text and "rank_lr" in text and "Item pairs:" in text
    for name in ("summary.csv", "global.csv", "items.csv", "pairs.csv", "residual_correlations.png",
                 "item_checks.png", "global_checks.png"):
        assert (out / name).is_file(), name
    before = (out / "pairs.csv").read_bytes()
    assert main(["check", str(hitachi_fit_path), "--out", str(out), "--seed", "4"]) == 2  # no --force
    assert "--force" in capsys.readouterr().err and (out / "pairs.csv").read_bytes() == before
    assert main(["check", str(hitachi_fit_path), "--format", "json", "--seed", "4"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["global"][0]["check"] == "rank_lr" and len(d["pairs"]) == 105
    assert main(["check", str(hitachi_fit_path), "--format", "csv", "--seed", "4"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(table["level"])[-2:] == ["item", "pair"]


def test_summary_cli_with_checks(hitachi_fit_path, capsys):
    assert main(["summary", str(hitachi_fit_path), "--no-loo", "--checks", "--seed", "4"]) == 0
    text = capsys.readouterr().out
    assert text.index("Parameters:") < text.index("Model checks") and "Item pairs:" in text
    assert main(["summary", str(hitachi_fit_path), "--no-loo", "--checks", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "parameters" in d and d["checks"]["global"][0]["check"] == "rank_lr"
    assert main(["summary", str(hitachi_fit_path), "--checks", "--format", "csv"]) == 2
    assert "--checks goes with" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "1.5"], "--alpha"),
    (["--max-draws", "3"], "--max-draws must be at least 10"),
])
def test_check_cli_bad_options(hitachi_fit_path, capsys, argv, message):
    assert main(["check", str(hitachi_fit_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_check_cli_fit_without_predictive(hitachi_fit, tmp_path, capsys):
    from smeintl import compat
    from smeintl.measurement import save_fit

    post = compat.group(hitachi_fit, "posterior")
    path = save_fit(compat.new_fit({"posterior": post}, hitachi_fit.attrs), tmp_path / "bare.nc")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bare.nc" in err and "posterior_predictive" in err and "Traceback" not in err


def test_summary_cli_bad_file(tmp_path, capsys):
    bad = tmp_path / "x.nc"
    bad.write_text("nope")
    assert main(["summary", str(bad)]) == 2
    assert "not a readable fit" in capsys.readouterr().err


def test_prior_check_cli(capsys):
    assert main(["prior-check", "--draws", "100"]) == 0
    out = capsys.readouterr().out
    assert "export_share" in out and "implied construct indices" in out


def test_compare_cli(hitachi_fit_path, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(hitachi_fit_path), "--data", str(DATA), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    firm_types = pd.read_csv(out / "firm_types.csv")
    findings = pd.read_csv(out / "findings.csv")
    assert len(firm_types) == 41
    p_cols = [c for c in firm_types.columns if c.startswith("p_") and not c.endswith("_rep")][:4]
    assert (firm_types[p_cols].sum(axis=1).round(9) == 1).all()
    assert list(findings.columns[:5]) == ["finding", "definition", "deterministic", "posterior_probability", "verdict"]
    assert findings["posterior_probability"].between(0, 1).all()
    # the printed table shows the file's probabilities and verdicts
    for _, row in findings.iterrows():
        assert f"{row['posterior_probability']:.2f}" in printed
        assert str(row["verdict"]) in printed
    assert "Agreement" in printed


def test_compare_cli_refuses_other_data(hitachi_fit_path, tmp_path, capsys):
    other = tmp_path / "other.csv"
    lines = DATA.read_text().splitlines()
    other.write_text("\n".join(lines[:-1]) + "\n")  # one firm fewer
    assert main(["compare", str(hitachi_fit_path), "--data", str(other), "--out", str(tmp_path / "c")]) == 2
    assert "different data" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_robustness_cli_writes_matrix_and_checks(hitachi_fit_path, tmp_path, capsys):
    out = tmp_path / "rob"
    rc = main(["robustness", str(hitachi_fit_path), "--data", str(DATA), "--out", str(out),
               "--checks", "thresholds", "bootstrap", "--bootstrap", "50", "--seed", "5", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    matrix = pd.read_csv(out / "robustness.csv")
    assert {"thresholds: 0.4", "thresholds: 0.6", "bootstrap: firms"} <= set(matrix.columns)
    assert len(matrix) == len(FINDINGS)
    assert (out / "thresholds.csv").exists() and (out / "bootstrap.csv").exists()
    assert "[bootstrap]" in printed and "[thresholds]" in printed
    # same seed, same bootstrap table
    out2 = tmp_path / "rob2"
    assert main(["robustness", str(hitachi_fit_path), "--data", str(DATA), "--out", str(out2),
                 "--checks", "bootstrap", "--bootstrap", "50", "--seed", "5", "--no-progress"]) == 0
    assert (out / "bootstrap.csv").read_bytes() == (out2 / "bootstrap.csv").read_bytes()
    # an existing folder is not overwritten without --force
    before = (out / "robustness.csv").read_bytes()
    assert main(["robustness", str(hitachi_fit_path), "--data", str(DATA), "--out", str(out),
                 "--checks", "thresholds"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "robustness.csv").read_bytes() == before


@pytest.mark.parametrize("argv, message", [
    (["--bootstrap", "0"], "--bootstrap must be at least 1, got 0"),
    (["--refit-draws", "2"], "--refit-draws must be at least 10"),
    (["--refit-chains", "0"], "--refit-chains must be at least 1"),
    (["--checks", "nonsense"], "unknown check(s) nonsense; allowed: factor_analysis, industry_regression, thresholds"),
])
def test_robustness_cli_bad_options(hitachi_fit_path, tmp_path, capsys, argv, message):
    out = tmp_path / "rob"
    assert main(["robustness", str(hitachi_fit_path), "--data", str(DATA), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_robustness_cli_bad_model_choice(hitachi_fit_path, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["robustness", str(hitachi_fit_path), "--models", "two_level"])
    assert e.value.code == 2
    assert "invalid choice: 'two_level'" in capsys.readouterr().err


def test_robustness_cli_refit_settings(hitachi_fit_path, tmp_path, capsys):
    """Refit options reach the refits: one tiny model-comparison refit through the CLI."""
    out = tmp_path / "rob"
    rc = main(["robustness", str(hitachi_fit_path), "--data", str(DATA), "--out", str(out),
               "--checks", "model_comparison", "--models", "no_industry", "--refit-draws", "40",
               "--refit-tune", "60", "--refit-chains", "1", "--refit-sampler", "pymc", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "model_comparison.csv")
    assert "no_industry" in " ".join(map(str, table.iloc[:, 0]))
    assert "one_construct" not in " ".join(map(str, table.iloc[:, 0]))
    assert "[model_comparison]" in printed
