"""``smeintl fit`` prints no other package's warnings, and its own stay loud."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

from conftest import DATA


def test_fit_prints_no_foreign_warnings_but_its_own(tmp_path):
    # a fresh cache folder: ArviZ 0.x would announce its refactor (once a day per cache)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONWARNINGS="default")
    out = tmp_path / "fit.nc"
    proc = subprocess.run([sys.executable, "-m", "smeintl", "fit", str(DATA), "--out", str(out), "--draws", "20",
                           "--tune", "20", "--chains", "2", "--no-progress"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr
    import smeintl

    own = os.path.dirname(smeintl.__file__)
    foreign = [line for line in (proc.stdout + proc.stderr).splitlines()
               if "Warning:" in line and not line.startswith(own)]
    assert not foreign, "\n".join(foreign)
    # 2 x 20 draws cannot pass the diagnostics: smeintl's own warning is printed
    assert "the fit FAILED its diagnostics" in proc.stdout + proc.stderr


def test_only_the_listed_warnings_are_filtered():
    """The filters match one category, module and text each: the same text from another
    module, or another category, still shows."""
    from smeintl.exits import FOREIGN_WARNINGS, quiet_foreign_warnings

    assert FOREIGN_WARNINGS
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_foreign_warnings()
        for category, _module, message in FOREIGN_WARNINGS:
            text = message.replace("\\s*", "").replace("\\", "")
            warnings.warn_explicit(text, category, "x.py", 1, module="pytensor.link.c.cmodule"
                                   if category is UserWarning else "arviz")
            warnings.warn_explicit(text, category, "x.py", 1, module="someone_else")
            warnings.warn_explicit(text, RuntimeWarning, "x.py", 1, module="arviz")
    shown = [(w.category, str(w.message)) for w in seen]
    assert len(shown) == 2 * len(FOREIGN_WARNINGS), shown


def test_python_m_smeintl_is_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "smeintl", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage" in proc.stdout
