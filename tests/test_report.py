"""The report (Markdown + self-contained HTML) and its figures.

Built once per module from the session's real short fit (``hitachi_fit``).  The real
short fit fails its diagnostics, so the "passing" report replaces the diagnostics'
problems with none, and the "failing" one lists made-up problems.
"""

from __future__ import annotations

import base64
import dataclasses
from html import escape as html_escape
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from smeintl import compat, plots
from smeintl.report import SECTIONS, write_report

FAIL_PROBLEMS = (
    "R-hat 1.200 > 1.01 (worst: corr): chains disagree",
    "3 divergent transitions: the sampler missed part of the posterior",
)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(hitachi_spec, hitachi_survey, hitachi_fit):
    from smeintl.measurement import summarize_fit, versions
    from smeintl.predictive import compare
    from smeintl.profiles import run_deterministic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = run_deterministic(hitachi_survey)
        fs = summarize_fit(hitachi_fit, hitachi_spec)
        comp = compare(hitachi_fit, hitachi_survey, hitachi_spec)
    manifest = {
        "spec_hash": hitachi_spec.hash,
        "data_hash": hitachi_survey.data_hash,
        "seed": 11,
        "versions": versions(),
        "timings_s": {"validate the data": 0.05, "fit the measurement model": 41.2},
        "created": "2025-01-02T03:04:05Z",
        "fit_settings": {"draws": 250, "tune": 400, "chains": 2},
    }
    return dict(spec=hitachi_spec, survey=hitachi_survey, det=det, idata=hitachi_fit, fit_summary=fs,
                comparison=comp, manifest=manifest)


@pytest.fixture(scope="module")
def checks(hitachi_fit, hitachi_spec):
    from smeintl.measurement import fit_checks

    return fit_checks(hitachi_fit, hitachi_spec, seed=3)


#: the figures of a report with every part run: the report's own, and the model checks' heatmap
ALL_FIGURES = (*plots.CAPTIONS, "residual_correlations")


def _with_problems(fs, problems):
    return dataclasses.replace(fs, diagnostics=dataclasses.replace(fs.diagnostics, problems=tuple(problems)))


@pytest.fixture(scope="module")
def passing(inputs, checks, tmp_path_factory):
    """Report of a fit whose diagnostics pass, with the model checks; not quick; no robustness."""
    out = tmp_path_factory.mktemp("report-pass")
    kw = dict(inputs, fit_summary=_with_problems(inputs["fit_summary"], ()))
    paths = write_report(out, **kw, robustness=None, checks=checks, quick=False)
    return out, paths


@pytest.fixture(scope="module")
def failing(inputs, tmp_path_factory):
    """Report of a failing fit, quick run, with a robustness result carrying markup-like text."""
    out = tmp_path_factory.mktemp("report-fail")
    rob = SimpleNamespace(
        matrix=pd.DataFrame({"check": ["loadings <FA>", "shares & bootstrap"], "agrees": [True, False],
                             "max_diff": [0.0412, 0.3]}),
        checks=[
            SimpleNamespace(name="Factor analysis & loadings", passed=True, table=pd.DataFrame({"a": [1]}),
                            text="FA loadings agree: r = 0.93 <script>alert(1)</script>"),
            SimpleNamespace(name="Firm bootstrap", passed=False, table=None, text="share moved by 0.30\nsecond line"),
        ],
    )
    kw = dict(inputs, fit_summary=_with_problems(inputs["fit_summary"], FAIL_PROBLEMS))
    paths = write_report(out, **kw, robustness=rob, quick=True)
    return out, paths


def _html(folder: Path) -> str:
    return (folder / "index.html").read_text(encoding="utf-8")


def _md(folder: Path) -> str:
    return (folder / "report.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# files, sections, figures
# ---------------------------------------------------------------------------
def test_all_files_written(passing):
    out, paths = passing
    assert (out / "report.md").is_file() and (out / "index.html").is_file()
    assert paths["report.md"] == out / "report.md" and paths["index.html"] == out / "index.html"
    # every figure is drawable for the default instrument
    for key in plots.CAPTIONS:
        p = out / "figures" / f"{key}.png"
        assert p.is_file(), key
        assert paths[f"figures/{key}.png"] == p
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert p.stat().st_size > 5000
    for rel, p in paths.items():
        assert p.is_file() and p == out / rel


def test_sections_present_in_order(passing):
    out, _ = passing
    for text, fmt in ((_html(out), "<h2>{}</h2>"), (_md(out), "\n## {}\n")):
        pos = []
        for k, (_, title) in enumerate(SECTIONS):
            heading = fmt.format(f"{k + 1}. {title}")
            assert heading in text, heading
            pos.append(text.index(heading))
        assert pos == sorted(pos)
    html = _html(out)
    for anchor, _ in SECTIONS:
        assert f'<section id="{anchor}">' in html
        assert f'href="#{anchor}"' in html


def test_section_contents(passing, inputs):
    out, _ = passing
    html, md = _html(out), _md(out)
    spec, survey = inputs["spec"], inputs["survey"]
    for text in (html, md):
        # data overview: every industry and item listed
        for g in survey.group_names:
            assert g in text
        for it in spec.item_names:
            assert it in text
        # deterministic, model, comparison, robustness, methods, provenance
        for needle in ("Types by industry", "Indices by industry", "Cronbach", "Baseline test", "Loadings",
                       "Latent correlation", "Industry latent means", "Reliability", "Convergence diagnostics",
                       "Findings", "Agreement:", "Per-firm types", "Robustness checks not run",
                       "Most firms are independent", "No firm is an MNC follower", "lkj_eta",
                       spec.hash, survey.data_hash, "pymc", "fit the measurement model"):
            assert needle in text, needle
    assert "passed every diagnostic" in html
    # sampler settings from the fit's attrs in the methods appendix
    assert "target_accept" in md
    # numbers are rounded (no long float reprs in tables)
    assert not re.search(r"\d\.\d{6,}", md)


def test_every_figure_embedded(passing):
    out, paths = passing
    html = _html(out)
    figs = {k: p for k, p in paths.items() if k.startswith("figures/")}
    assert html.count("data:image/png;base64,") == len(figs) == len(ALL_FIGURES)
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(p.read_bytes() for p in figs.values())
    md = _md(out)
    for key in plots.CAPTIONS:
        assert f"(figures/{key}.png)" in md
        assert plots.CAPTIONS[key] in md
        assert html_escape(plots.CAPTIONS[key]) in html


def test_no_external_resources(passing, failing):
    for out, _ in (passing, failing):
        html = _html(out)
        tags = re.findall(r"<(?:img|link|script|iframe|object|embed|source|video|audio)\b[^>]*>", html, flags=re.I)
        for tag in tags:
            assert "http://" not in tag and "https://" not in tag, tag
        assert not re.search(r"<(?:link|script)\b", html, flags=re.I)  # inline CSS, no scripts at all
        for attr in re.findall(r'\b(?:src|href)="([^"]*)"', html):
            assert attr.startswith(("data:", "#")), attr
        assert "@import" not in html and "url(" not in html


def test_no_warning_or_notice_when_passing(passing):
    out, _ = passing
    html = _html(out)
    assert 'class="box warning"' not in html
    assert "Quick run" not in html
    assert "WARNING" not in _md(out)


def test_warning_box_when_diagnostics_failed(failing):
    out, _ = failing
    html, md = _html(out), _md(out)
    assert html.count('class="box warning"') == 1
    box = html.index('class="box warning"')
    assert box < html.index("<h2>1. ")  # at the very top, before the first section
    assert "failed its convergence diagnostics" in html[box:box + 400]
    for p in FAIL_PROBLEMS:
        assert html_escape(p) in html and p in md
    assert "have not settled on the same posterior" in html  # plain words
    assert md.index("WARNING") < md.index("## 1. ")
    assert "FAILED" in html  # diagnostics verdict in the model section


def test_quick_notice(failing):
    out, _ = failing
    html, md = _html(out), _md(out)
    assert "Quick run: short chains, for a first look only" in html
    assert html.index("Quick run") < html.index("<h2>1. ")
    assert "Quick run: short chains, for a first look only" in md


def test_robustness_rendered_and_text_escaped(failing):
    out, _ = failing
    html, md = _html(out), _md(out)
    assert "Robustness checks not run" not in html
    assert "Factor analysis &amp; loadings (passed)" in html
    assert "Firm bootstrap (NOT passed)" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "loadings &lt;FA&gt;" in html and "0.041" in html
    assert "second line" in md


def test_deterministic_only_report(inputs, tmp_path):
    kw = dict(inputs, idata=None, fit_summary=None, comparison=None)
    paths = write_report(tmp_path, **kw, quick=False)
    html = _html(tmp_path)
    assert "not fitted" in html and "comparison was not run" in html
    assert "data:image/png" not in html
    assert set(paths) == {"report.md", "index.html"}
    for k, (_, title) in enumerate(SECTIONS):
        assert f"{k + 1}. {title}" in html


# ---------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------
def test_plots_return_figures_without_pyplot(inputs):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    before = plt.get_fignums()
    spec, det, comp, fs, idata = (inputs[k] for k in ("spec", "det", "comparison", "fit_summary", "idata"))
    figs = [
        plots.plot_profile_map(det, comp, spec),
        plots.plot_type_probabilities(comp, spec),
        plots.plot_loadings(fs),
        plots.plot_latent_correlation(idata),
        plots.plot_industry_means(fs),
        plots.plot_ppc(idata, spec),
        plots.plot_deviation_intervals(comp, spec),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert plt.get_fignums() == before
    assert set(plots.FIGURES) == set(plots.CAPTIONS)
    for name, fn in plots.FIGURES.items():
        assert fn.__doc__ and fn.__name__ == f"plot_{name}"


def test_profile_map_needs_two_dimensions(inputs):
    from smeintl import load_spec

    spec = load_spec(Path(__file__).parent / "data" / "specs" / "binary_one.toml")
    with pytest.raises(ValueError, match="exactly 2 dimensions"):
        plots.plot_profile_map(inputs["det"], inputs["comparison"], spec)


def test_figures_missing_parts_raise(inputs):
    fs = inputs["fit_summary"]
    no_groups = dataclasses.replace(fs, group_means=fs.group_means.iloc[:0])
    with pytest.raises(ValueError, match="industry"):
        plots.plot_industry_means(no_groups)
    post = compat.group(inputs["idata"], "posterior").drop_vars("corr")
    with pytest.raises(ValueError, match="correlation"):
        plots.plot_latent_correlation(compat.new_fit({"posterior": post}))


def test_type_colors_consistent():
    c = plots.type_colors(["a", "b", "hybrid"])
    assert c["hybrid"] == "#9e9e9e" and len({c["a"], c["b"], c["hybrid"]}) == 3
    assert plots.type_colors(["a", "b"]) == {"a": c["a"], "b": c["b"]}


# ---------------------------------------------------------------------------
# headless browser (Chromium from Debian packages)
# ---------------------------------------------------------------------------
def _chromium() -> str:
    for cand in (os.environ.get("SMEINTL_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        if cand and (shutil.which(cand) or (os.path.isabs(cand) and os.access(cand, os.X_OK))):
            return shutil.which(cand) or cand
    pytest.skip("chromium not installed: apt-get install -y chromium (the headless-browser checks need it)")


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    exe = _chromium()
    prof = tmp_path / "chromium-profile"
    prof.mkdir(exist_ok=True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={prof}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90,
                          env={**os.environ, "HOME": str(tmp_path)})


def test_html_screenshot_in_chromium(failing, tmp_path):
    out, _ = failing
    shot = tmp_path / "shot.png"
    res = _run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", "--hide-scrollbars",
                        (out / "index.html").resolve().as_uri())
    assert shot.is_file(), f"no screenshot; chromium said:\n{res.stderr[-3000:]}"
    assert shot.stat().st_size > 20_000
    from PIL import Image

    im = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert im.shape[:2] == (3000, 1200)
    assert len(np.unique(im.reshape(-1, 3)[::97], axis=0)) > 50  # not a blank page
    # the red warning box is visible in the first screen
    top = im[:600]
    pink = (abs(top[..., 0] - 0xFD) <= 3) & (abs(top[..., 1] - 0xEC) <= 3) & (abs(top[..., 2] - 0xEA) <= 3)
    assert pink.sum() > 20_000


def test_html_images_load_without_console_errors(passing, tmp_path):
    out, _ = passing
    page = tmp_path / "check.html"
    probe = ("<script>window.addEventListener('load',function(){var im=Array.from(document.images);"
             "var bad=im.filter(function(i){return !i.complete||i.naturalWidth===0;}).length;"
             "document.title='imgcheck total='+im.length+' broken='+bad;});</script>")
    page.write_text(_html(out).replace("</body>", probe + "</body>"), encoding="utf-8")
    res = _run_chromium(tmp_path, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
                        page.as_uri())
    m = re.search(r"<title>imgcheck total=(\d+) broken=(\d+)</title>", res.stdout)
    assert m, f"probe did not run; stderr:\n{res.stderr[-3000:]}"
    assert int(m.group(1)) == len(ALL_FIGURES)
    assert int(m.group(2)) == 0
    console = [ln for ln in res.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    assert not console, "\n".join(console)


def test_real_robustness_result_rendered(inputs, tmp_path):
    rob_mod = pytest.importorskip("smeintl.robustness")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rob = rob_mod.run_robustness(inputs["idata"], inputs["survey"], inputs["spec"], checks=["thresholds", "bootstrap"],
                                     seed=3, bootstrap_draws=100, progress=False)
    kw = dict(inputs, idata=None, fit_summary=None, comparison=None)  # no figures: fast
    write_report(tmp_path, **kw, robustness=rob, quick=False)
    html, md = _html(tmp_path), _md(tmp_path)
    assert "Robustness checks not run" not in html
    assert "Findings across checks" in html and "Findings matrix (every variant)" in html
    for c in rob.checks:
        assert c.name in md
        first = c.text.strip().splitlines()[0]
        assert first in md
    for col in rob.matrix.columns:
        assert html_escape(col) in html
