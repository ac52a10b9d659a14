"""The Python API of the main job (``smeintl.analyze``) and the package's import layering."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import smeintl
from smeintl.cli import main

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
DATA = BUNDLE_DIR / "hitachi_synthetic.csv"

#: files whose text carries the run's timings or creation time (compared without them)
TIMED = {"manifest.json", "index.html", "report.md"}


@pytest.fixture(scope="module")
def analysis():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smeintl.analyze(DATA, seed=11, quick=True, robustness=False, progress=False, log=False)


@pytest.fixture(scope="module")
def api_and_cli_reports(analysis, tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    api_out = analysis.write_report(base / "api", log=False)
    cli_out = base / "cli"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["run", str(DATA), "--quick", "--no-robustness", "--seed", "11", "--out", str(cli_out),
                   "--no-progress"])
    assert rc == 0
    return api_out, cli_out


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_analysis_results(analysis, hitachi_spec, hitachi_survey):
    assert isinstance(analysis, smeintl.Analysis)
    assert analysis.spec.hash == hitachi_spec.hash
    assert analysis.survey.data_hash == hitachi_survey.data_hash
    assert analysis.data_path == DATA and analysis.seed == 11 and analysis.quick is True
    assert analysis.robustness is None
    s = hitachi_spec.sampler
    assert analysis.fit_settings == {"draws": s["quick_draws"], "tune": s["quick_tune"],
                                     "chains": s["quick_chains"], "sampler": None}
    assert list(analysis.timings) == list(smeintl.api.STEPS[:-1])
    with pytest.raises(Exception):
        analysis.seed = 12  # frozen


def test_summary_text_to_dict(analysis):
    from conftest import HITACHI_FINDINGS as FINDINGS

    table = analysis.summary()
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == [f.key for f in FINDINGS]
    assert {"title", "deterministic", "posterior_probability", "replicated_probability", "verdict"} <= set(table.columns)
    assert table["posterior_probability"].between(0, 1).all()
    text = analysis.text()
    assert "Most firms are independent" in text and "quick run" in text and "Robustness checks: not run." in text
    d = analysis.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["seed"] == 11 and d["data"]["hash"] == analysis.survey.data_hash
    assert [f["finding"] for f in d["comparison"]["findings"]] == list(table.index)
    # the model checks ran and are in the text and the dict
    assert analysis.checks is not None and "Model checks: global rank_lr PPP" in text
    assert d["checks"]["method"] == analysis.checks.method
    assert len(d["checks"]["pairs"]) == len(analysis.spec.items) * (len(analysis.spec.items) - 1) // 2
    assert d["deterministic"]["types"]["counts"] == analysis.deterministic.summary["types"]["counts"]


def test_result_vocabulary(analysis):
    det, comp = analysis.deterministic, analysis.comparison
    # the deterministic summary is still the dict it was, and called the headline table
    assert det.summary["types"]["n"] == 41
    table = det.summary()
    assert isinstance(table, pd.DataFrame)
    types = table[table["kind"] == "type"].set_index("name")
    assert types["count"].to_dict() == det.summary["types"]["counts"]
    assert det.text() == det.summary_text()
    assert det.to_dict() == json.loads(json.dumps(det.summary))
    assert type(det.to_dict()) is dict
    # the comparison
    assert isinstance(comp.summary(), pd.DataFrame)
    cd = comp.to_dict()
    json.dumps(cd, allow_nan=False)
    assert cd["n_firms"] == 41 and cd["n_draws"] == comp.n_draws
    assert "Most firms are independent" in comp.text()


def test_write_report_same_files_as_cli(api_and_cli_reports):
    api_out, cli_out = api_and_cli_reports
    assert _files(api_out) == _files(cli_out)
    for name in ("index.html", "report.md", "fit.nc", "manifest.json", "firms.csv", "findings.csv"):
        assert (api_out / name).is_file(), name
    assert not (api_out / "robustness").exists()
    # the model checks: tables, the report section and its heatmap
    for name in ("summary.csv", "global.csv", "items.csv", "pairs.csv"):
        assert (api_out / "checks" / name).is_file(), name
    pairs = pd.read_csv(api_out / "checks" / "pairs.csv")
    assert len(pairs) == 105 and pairs["ppp"].between(0, 1).all()
    assert "## 4. Model checks" in (api_out / "report.md").read_text()
    assert (api_out / "figures" / "residual_correlations.png").is_file()
    assert json.loads((api_out / "manifest.json").read_text())["checks"] == "run"
    # same seed, same numbers: every table identical
    for name in _files(api_out):
        if name not in TIMED and not name.endswith((".nc", ".png")):
            assert (api_out / name).read_bytes() == (cli_out / name).read_bytes(), name
    ma, mc = (json.loads((d / "manifest.json").read_text()) for d in (api_out, cli_out))
    for m in (ma, mc):
        del m["created"], m["timings_s"]
    assert ma == mc


def test_analyze_without_checks(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = smeintl.analyze(DATA, seed=11, quick=True, robustness=False, checks=False, progress=False, log=False)
    assert a.checks is None and a.to_dict()["checks"] is None and "Model checks" not in a.text()
    out = a.write_report(tmp_path / "r", log=False)
    assert not (out / "checks").exists() and "The model checks were not run." in (out / "report.md").read_text()
    assert json.loads((out / "manifest.json").read_text())["checks"] == "skipped"


def test_write_report_refuses_existing_folder(analysis, api_and_cli_reports):
    api_out, _ = api_and_cli_reports
    before = (api_out / "manifest.json").read_bytes()
    with pytest.raises(smeintl.UserError, match="force"):
        analysis.write_report(api_out, log=False)
    assert (api_out / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in api_out.parent.iterdir()) == ["api", "cli"]  # no partial folder left


def test_inputs_are_checked_before_any_work(hitachi_survey, tmp_path):
    from smeintl.data import DataError

    text = (BUNDLE_DIR / "hitachi.toml").read_text(encoding="utf-8")
    other = smeintl.parse_spec(text.replace('description = "', 'description = "A variant: ', 1), source="<variant>")
    assert other.hash != hitachi_survey.spec.hash
    with pytest.raises(smeintl.UserError, match="validated against spec"):
        smeintl.analyze(hitachi_survey, spec=other, log=False)
    with pytest.raises(DataError):
        smeintl.analyze(tmp_path / "missing.csv", log=False)
    with pytest.raises(TypeError):
        smeintl.analyze(42, log=False)


def test_user_error_is_one_class():
    import smeintl.cli
    import smeintl.errors

    assert smeintl.cli.UserError is smeintl.errors.UserError is smeintl.UserError


def test_public_names():
    for name in smeintl.__all__:
        assert getattr(smeintl, name) is not None, name
        assert name in dir(smeintl), name
    with pytest.raises(AttributeError):
        smeintl.no_such_name  # noqa: B018


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_import_smeintl_does_not_import_pymc():
    r = _python("import smeintl, sys; assert 'pymc' not in sys.modules, 'pymc imported'; "
                "assert 'arviz' not in sys.modules, 'arviz imported'")
    assert r.returncode == 0, r.stderr


def test_pipeline_and_api_do_not_import_the_cli():
    r = _python("import sys, smeintl.pipeline, smeintl.api; assert 'smeintl.cli' not in sys.modules, 'cli imported'")
    assert r.returncode == 0, r.stderr


def test_indices_command_does_not_import_pymc(tmp_path):
    r = _python(f"import sys; from smeintl.cli import main; "
                f"assert main(['indices', {str(DATA)!r}, '--out', {str(tmp_path / 'ind')!r}]) == 0; "
                f"assert 'pymc' not in sys.modules, 'pymc imported'")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ind" / "firms.csv").is_file()
