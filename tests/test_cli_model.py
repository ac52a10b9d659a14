"""Command line of the model commands: fit, summary, prior-check, compare."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from smeintl.cli import main

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "hitachi_synthetic.csv"


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
