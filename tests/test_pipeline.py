"""The main job end to end (``smeintl run --quick``) and its atomic writing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from smeintl.cli import main

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
DATA = BUNDLE_DIR / "hitachi_synthetic.csv"

EXPECTED = [
    "index.html", "report.md", "fit.nc", "manifest.json", "firms.csv", "summary.json",
    "firm_types.csv", "sample_stats.csv", "findings.csv", "loadings.csv", "latent_correlation.csv",
    "industry_means.csv", "latent_scores.csv", "reliability.csv", "robustness/robustness.csv",
]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "report"
    rc = main(["run", "--quick", "--out", str(out), "--seed", "11", "--no-progress"])
    assert rc == 0
    return out


def test_all_files_present(quick_report):
    for name in EXPECTED:
        assert (quick_report / name).exists(), name
    assert list(quick_report.glob("figures/*.png"))


def test_manifest_complete(quick_report, hitachi_spec, hitachi_survey):
    m = json.loads((quick_report / "manifest.json").read_text())
    assert m["spec_text"] == hitachi_spec.text and m["spec_hash"] == hitachi_spec.hash
    assert m["data_hash"] == hitachi_survey.data_hash
    assert m["seed"] == 11 and m["quick"] is True
    assert m["diagnostics_verdict"] in ("passed", "FAILED")
    assert {"pymc", "numpy", "arviz", "smeintl", "python"} <= set(m["versions"])
    for step in ("validate the data", "deterministic ideal-profile method", "fit the measurement model",
                 "diagnostics and parameter tables", "posterior predictive comparison", "robustness checks",
                 "write the report", "total"):
        assert step in m["timings_s"], step


def test_report_says_quick_and_has_sections(quick_report):
    html = (quick_report / "index.html").read_text()
    assert "quick run" in html.lower()
    for heading in ("Data", "Deterministic", "Measurement model", "Comparison", "Robustness", "Methods"):
        assert heading in html, heading


def test_tables_match_the_cli_commands(quick_report, tmp_path):
    # firms.csv is what `smeintl indices` writes
    assert main(["indices", str(DATA), "--out", str(tmp_path / "ind")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(quick_report / "firms.csv"), pd.read_csv(tmp_path / "ind" / "firms.csv"))
    # findings and firm types are what `smeintl compare` writes from the report's own fit
    assert main(["compare", str(quick_report / "fit.nc"), "--data", str(DATA), "--out", str(tmp_path / "cmp")]) == 0
    for name in ("findings.csv", "firm_types.csv", "sample_stats.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(quick_report / name), pd.read_csv(tmp_path / "cmp" / name))


def test_refuses_to_overwrite(quick_report, capsys):
    before = (quick_report / "manifest.json").read_bytes()
    assert main(["run", "--quick", "--out", str(quick_report)]) == 2
    assert "--force" in capsys.readouterr().err
    assert (quick_report / "manifest.json").read_bytes() == before


def test_interrupted_run_leaves_no_folder(tmp_path, monkeypatch, capsys):
    import smeintl.predictive as predictive

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(predictive, "compare", boom)
    out = tmp_path / "report"
    rc = main(["run", "--quick", "--out", str(out), "--draws", "30", "--tune", "30", "--chains", "1",
               "--no-progress", "--no-robustness"])
    assert rc == 130
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no partial folder left either


def test_failed_run_leaves_no_folder_and_keeps_data(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    lines = DATA.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("n_customers")] = "-3"
    bad.write_text("\n".join([lines[0], ",".join(row)] + lines[2:]) + "\n")
    before = bad.read_bytes()
    out = tmp_path / "report"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    assert "column 'n_customers': value -3 is out of range" in capsys.readouterr().err
    assert not out.exists()
    assert bad.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_committed_example_matches_current_spec_and_data(hitachi_spec, hitachi_survey):
    """reports/hitachi-synthetic/ was made by `smeintl run` on the bundled data: its
    manifest must match the current spec and data (regenerate it when either changes)."""
    example = ROOT / "reports" / "hitachi-synthetic"
    m = json.loads((example / "manifest.json").read_text())
    assert m["spec_hash"] == hitachi_spec.hash, "spec changed: regenerate reports/hitachi-synthetic"
    assert m["data_hash"] == hitachi_survey.data_hash, "data changed: regenerate reports/hitachi-synthetic"
    assert m["quick"] is False
    for name in ("index.html", "report.md", "findings.csv", "firm_types.csv", "firms.csv"):
        assert (example / name).exists(), name
