"""docs/tutorial.md runs as written: every ```python block, in order, in one namespace.

The tutorial reads the bundled files relative to the repository root and writes only
under ``SMEINTL_TUTORIAL_OUT``, which the test points at a temporary folder.  The fit in
the tutorial uses the same sampler settings as ``conftest.QUICK`` (seed 11), so
PyTensor's compile cache is shared with the session fit.
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown text, in order."""
    return [m.group(1) for m in _BLOCK.finditer(text)]


def test_tutorial_blocks_parse():
    blocks = python_blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    for k, code in enumerate(blocks):
        ast.parse(code, filename=f"tutorial block {k + 1}")
    text = TUTORIAL.read_text(encoding="utf-8")
    # same sampler settings as the session fit (compile cache reuse) and said to be short
    assert "draws=250, tune=400, chains=2, random_seed=11" in text
    assert "deliberately short" in text


def test_robustness_code_only_when_module_exists():
    text = TUTORIAL.read_text(encoding="utf-8")
    uses = "smeintl.robustness import" in "".join(python_blocks(text))
    exists = (ROOT / "src" / "smeintl" / "robustness" / "__init__.py").is_file()
    assert not uses or exists


def test_tutorial_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SMEINTL_TUTORIAL_OUT", str(tmp_path))
    ns: dict = {"__name__": "tutorial"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, code in enumerate(python_blocks(TUTORIAL.read_text(encoding="utf-8"))):
            try:
                exec(compile(code, f"docs/tutorial.md, python block {k + 1}", "exec"), ns)
            except Exception as exc:  # pragma: no cover - the message is the point
                pytest.fail(f"python block {k + 1} of docs/tutorial.md failed: {type(exc).__name__}: {exc}\n{code}")
    out = capsys.readouterr().out
    # it wrote only under OUT, and what it says it wrote is there
    assert ns["OUT"] == tmp_path
    assert (tmp_path / "hitachi-fit.nc").is_file()
    for name in ("firm_types.csv", "findings.csv", "agreement.json"):
        assert (tmp_path / "comparison" / name).is_file()
    for name in ("profile_map", "type_probabilities", "loadings", "ppc"):
        assert (tmp_path / "figures" / f"{name}.png").is_file()
    report = tmp_path / "report"
    assert (report / "index.html").is_file() and (report / "report.md").is_file()
    html = (report / "index.html").read_text(encoding="utf-8")
    assert "Quick run: short chains" in html
    uses_robustness = "smeintl.robustness import" in "".join(python_blocks(TUTORIAL.read_text(encoding="utf-8")))
    assert ("Robustness checks not run" in html) != uses_robustness
    assert html.count("data:image/png;base64,") == 7
    # the printed output carries the main results
    assert "Deterministic ideal-profile method" in out
    assert "Most firms are independent" in out
    assert "open " in out
