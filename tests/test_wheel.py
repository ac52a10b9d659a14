"""The package as a user installs it: the bundled files are found, and the built wheel
carries them.

* fast: :mod:`smeintl.resources` finds every file of ``src/smeintl/bundled/`` (the same
  bytes), ``resolve``, the loaders and the command line read bare bundled names from
  any folder, and the package-data globs of ``pyproject.toml`` cover every bundled file;
* the wheel: built from a clean copy of the sources (``pip wheel``; without build
  isolation when this environment's setuptools can build it, else with it), its file
  list holds the bundled files; installed with ``--no-deps`` into a fresh virtual
  environment outside the checkout (the dependencies are this environment's, named by a
  ``.pth`` file written after the install, so the checkout's editable smeintl is not on
  the path), ``smeintl run --quick`` with no data, run in an empty folder, writes a
  report from the bundled survey and instrument.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from smeintl import resources
from smeintl.resources import DEFAULT_DATA, DEFAULT_SPEC, bundled, bundled_names, resolve

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"
#: what the package ships besides code
EXPECTED = {"README.md", "hitachi.toml", "hitachi_synthetic.csv", "study_example.toml", "study_tiny.toml",
            "tiny_instrument.toml"}


def _bundle_files() -> set[str]:
    return {p.name for p in BUNDLE_DIR.iterdir()
            if p.is_file() and not p.name.startswith("__") and p.suffix not in (".py", ".pyc")}


# ---------------------------------------------------------------------------
# fast
# ---------------------------------------------------------------------------
def test_resources_find_every_bundled_file():
    assert _bundle_files() == EXPECTED
    assert set(bundled_names()) == EXPECTED and list(bundled_names()) == sorted(EXPECTED)
    assert {DEFAULT_DATA, DEFAULT_SPEC} <= EXPECTED
    for name in EXPECTED:
        path = bundled(name)
        assert isinstance(path, Path) and path.is_file()
        assert path.read_bytes() == (BUNDLE_DIR / name).read_bytes()
    with pytest.raises(FileNotFoundError, match="no bundled file 'nope.toml'; the bundled files are README.md"):
        bundled("nope.toml")
    with pytest.raises(FileNotFoundError):
        bundled("__init__.py")  # code is not a bundled file


def test_resolve_prefers_the_given_path_then_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve("hitachi.toml") == bundled("hitachi.toml")      # not here: the bundled one
    assert resolve(Path("study_tiny.toml")) == bundled("study_tiny.toml")
    assert resolve("./hitachi.toml") == Path("hitachi.toml")      # a path, not a bare name
    assert resolve("sub/hitachi.toml") == Path("sub/hitachi.toml")
    assert resolve("missing.toml") == Path("missing.toml")        # "not found" names what was given
    assert resolve("a\x00b.toml") == Path("a\x00b.toml")
    (tmp_path / "hitachi.toml").write_text("mine", encoding="utf-8")
    assert resolve("hitachi.toml") == Path("hitachi.toml")        # a file here wins
    other = tmp_path / "other"
    other.mkdir()
    assert resolve("hitachi.toml", other) == bundled("hitachi.toml")
    assert resolve("hitachi.toml", tmp_path) == tmp_path / "hitachi.toml"
    assert resolve(tmp_path / "x.toml", other) == tmp_path / "x.toml"


def test_bundled_names_work_from_any_folder(tmp_path, monkeypatch):
    """A spec, a study and a study's instrument named by their bundled names load from a
    folder without them; a study copied out of the package still finds its instrument."""
    from smeintl.api import read_spec
    from smeintl.spec import load_spec
    from smeintl.study.config import load_study

    monkeypatch.chdir(tmp_path)
    assert load_spec().source == str(bundled(DEFAULT_SPEC))
    assert load_spec("tiny_instrument.toml").name == "tiny"
    assert read_spec("hitachi.toml").source == str(bundled("hitachi.toml"))
    study = load_study("study_tiny.toml")
    assert Path(study.instrument_path) == bundled("tiny_instrument.toml")
    copy = tmp_path / "studies" / "mine.toml"
    copy.parent.mkdir()
    shutil.copyfile(bundled("study_tiny.toml"), copy)
    assert Path(load_study(copy).instrument_path) == bundled("tiny_instrument.toml")


def test_cli_reads_bundled_names_from_any_folder(tmp_path, monkeypatch, capsys):
    from smeintl.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["validate", "hitachi_synthetic.csv"]) == 0
    assert "valid for spec hitachi (41 firms, 15 items)" in capsys.readouterr().out
    assert main(["validate", "hitachi_synthetic.csv", "--spec", "hitachi.toml"]) == 0
    assert main(["indices", "hitachi_synthetic.csv", "--out", "ind"]) == 0
    assert (tmp_path / "ind" / "firms.csv").is_file()
    capsys.readouterr()
    assert main(["validate", "missing.csv"]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_package_data_covers_every_bundled_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"][resources.BUNDLE]
    for name in _bundle_files():
        assert any(fnmatch.fnmatch(name, g) for g in globs), f"{name} is not package data: add it to pyproject.toml"


# ---------------------------------------------------------------------------
# the wheel
# ---------------------------------------------------------------------------
def _pip(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env,
                          timeout=600, **kw)


def _build_wheel(tmp: Path) -> Path:
    """Build the wheel from a clean copy of the sources (no stale ``build/`` of the
    checkout, nothing written into it)."""
    src = tmp / "source"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for pattern in ("LICEN[CS]E*", "MANIFEST.in", "setup.py", "setup.cfg"):
        for extra in ROOT.glob(pattern):
            shutil.copy2(extra, src / extra.name)
    shutil.copytree(ROOT / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build"))
    out = tmp / "wheelhouse"
    # this environment's setuptools and wheel first (offline); when they cannot build the
    # project (too old for its metadata, no bdist_wheel), pip's isolated build environment
    local = _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src))
    if local.returncode != 0:
        isolated = _pip("wheel", "--no-deps", "-w", str(out), str(src))
        if isolated.returncode != 0:
            text = isolated.stdout + isolated.stderr
            if any(s in text for s in ("No matching distribution", "Could not find a version",
                                       "Failed to establish a new connection", "Network is unreachable")):
                pytest.skip("cannot build the wheel: this environment's setuptools cannot, and the package "
                            f"index is out of reach for an isolated build:\n{local.stderr[-1500:]}")
            pytest.fail(f"pip wheel failed:\n{local.stdout[-3000:]}{local.stderr[-3000:]}\n---\n"
                        f"{isolated.stdout[-3000:]}{isolated.stderr[-3000:]}")
    wheels = list(out.glob("smeintl-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _venv(where: Path, wheel: Path) -> Path:
    """A fresh virtual environment with the wheel installed (``--no-deps``), then this
    environment's site-packages appended for the dependencies; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=300)
    py = where / "bin" / "python"
    r = _pip("--python", str(py), "install", "--no-deps", "--no-index", str(wheel))
    assert r.returncode == 0, r.stdout + r.stderr
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # written after the install, so that pip did not see the checkout's smeintl; the lines
    # of a .pth file are put on sys.path as they are (the .pth files there, such as the
    # editable install's, are not read)
    (Path(purelib) / "_smeintl_test_deps.pth").write_text(
        "".join(f"{p}\n" for p in site.getsitepackages()), encoding="utf-8")
    return py


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def test_wheel_carries_the_bundled_files_and_runs_from_any_folder(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in [*EXPECTED, "__init__.py"]:
        assert f"smeintl/bundled/{name}" in names, sorted(n for n in names if "bundled" in n)
    assert "smeintl/resources.py" in names and "smeintl/cli.py" in names

    venv = tmp_path / "venv"
    py = _venv(venv, wheel)
    work = tmp_path / "work"  # an empty folder outside the checkout
    work.mkdir()
    env = _clean_env()
    where = subprocess.run(
        [str(py), "-c", "import smeintl, smeintl.resources as r; print(smeintl.__file__); "
                        "print(r.bundled(r.DEFAULT_SPEC)); print(r.bundled(r.DEFAULT_DATA))"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert Path(line).resolve().is_relative_to(venv.resolve()), where.stdout  # the wheel's, not the checkout's

    report = tmp_path / "report"
    run = subprocess.run([str(venv / "bin" / "smeintl"), "run", "--quick", "--no-progress", "--out", str(report)],
                         cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    for name in ("index.html", "report.md", "manifest.json"):
        assert (report / name).is_file(), name
    manifest = json.loads((report / "manifest.json").read_text(encoding="utf-8"))
    assert Path(manifest["data_source"]).resolve().is_relative_to(venv.resolve())
    assert Path(manifest["spec_source"]).resolve().is_relative_to(venv.resolve())
    assert list(work.iterdir()) == []  # nothing written into the working folder
