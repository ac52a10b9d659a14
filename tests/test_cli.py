"""Command line: outputs of the deterministic commands and clean errors for user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from smeintl.cli import main

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
DATA = BUNDLE_DIR / "hitachi_synthetic.csv"
SPEC = BUNDLE_DIR / "hitachi.toml"


def test_indices_writes_firms_and_summary(tmp_path, capsys):
    out = tmp_path / "ind"
    assert main(["indices", str(DATA), "--out", str(out)]) == 0
    firms = pd.read_csv(out / "firms.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert len(firms) == 41
    for col in ["firm_id", "industry", "s_export_share", "stage", "doi", "independence",
                "sullivan_doi", "dist_mnc_follower", "type", "internationalizing", "independent"]:
        assert col in firms.columns
    assert summary["n_firms"] == 41
    printed = capsys.readouterr().out
    assert "internationalizing" in printed and "Types" in printed
    # the printed shares are the file's
    assert firms["internationalizing"].sum() == 8


def test_indices_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "ind"
    out.mkdir()
    (out / "firms.csv").write_text("precious\n")
    assert main(["indices", str(DATA), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "firms.csv").read_text() == "precious\n"


def test_bad_data_exit_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    text = DATA.read_text().splitlines()
    header = text[0].split(",")
    row = text[1].split(",")
    row[header.index("overseas_growth")] = "7"
    bad.write_text("\n".join([text[0], ",".join(row)] + text[2:]) + "\n")
    before = bad.read_bytes()
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "smeintl.cli", "indices", str(bad), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "row 2, column 'overseas_growth': value 7 is out of range" in r.stderr
    assert "1 to 5" in r.stderr
    assert not out.exists()
    assert bad.read_bytes() == before


def test_validate_reports_every_problem(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    lines = DATA.read_text().splitlines()
    header = lines[0].split(",")
    r1, r2 = lines[1].split(","), lines[2].split(",")
    r1[header.index("export_share")] = "130"
    r2[header.index("intl_stage")] = "2.5"
    bad.write_text("\n".join([lines[0], ",".join(r1), ",".join(r2)] + lines[3:]) + "\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert "column 'export_share': value 130 is out of range" in err
    assert "column 'intl_stage': value 2.5 is not a whole number" in err


def test_validate_good_file(capsys):
    assert main(["validate", str(DATA)]) == 0
    assert "valid" in capsys.readouterr().out


def test_bad_spec_exit_2(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.read_text().replace('scale = "stage"', 'scale = "stages"'))
    assert main(["validate", str(DATA), "--spec", str(spec)]) == 2
    err = capsys.readouterr().err
    assert str(spec) in err and "unknown scale type 'stages'" in err and "likert" in err


def test_missing_file_exit_2(tmp_path, capsys):
    assert main(["indices", str(tmp_path / "nope.csv")]) == 2
    assert "not found" in capsys.readouterr().err


def test_fit_parameterization_the_spec_cannot_take_exit_2(tmp_path, capsys):
    out = tmp_path / "fit.nc"
    assert main(["fit", str(DATA), "--parameterization", "quadrature", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--parameterization quadrature" in err and "2 constructs" in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(SystemExit) as exc:  # argparse's own check of the choices
        main(["fit", str(DATA), "--parameterization", "grid", "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'grid'" in err and "quadrature" in err.split("invalid choice")[1]
