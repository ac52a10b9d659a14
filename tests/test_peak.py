"""``benchmarks/peak.py``: a benchmark child's own peak memory, not its parent's."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

PEAK = ROOT / "benchmarks" / "peak.py"
LINUX = Path("/proc/self/status").exists()


@pytest.fixture(scope="module")
def peak():
    spec = importlib.util.spec_from_file_location("smeintl_bench_peak", PEAK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not LINUX, reason="VmHWM is in Linux's /proc")
def test_the_peak_is_the_childs_own_not_the_parents(peak, tmp_path):
    parent = np.ones(300 * 2**20 // 8)  # 300 MB touched in this (the parent) process
    code = "import numpy as np; a = np.ones(50 * 2**20 // 8); print(a.sum())"  # about 50 MB more than numpy
    proc = subprocess.Popen(peak.wrap([sys.executable, "-c", code], tmp_path / "peak"), stdout=subprocess.PIPE)
    out = proc.stdout.read().decode()
    _pid, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and out.strip() == str(float(50 * 2**20 // 8))
    own = peak.read_mb(tmp_path / "peak")
    assert 50 < own < 200, own  # numpy and the 50 MB array: well under the parent's 300 MB
    assert usage.ru_maxrss / 1024 > 300  # what ru_maxrss says: the parent's memory counted
    del parent


def test_modules_scripts_and_exit_codes_pass_through(peak, tmp_path):
    r = subprocess.run(peak.wrap([sys.executable, "-m", "json.tool", "--compact"], tmp_path / "m"),
                       input='{"a": [1, 2]}', capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == '{"a":[1,2]}'
    assert peak.read_mb(tmp_path / "m") > 1

    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.argv[1:])\nsys.exit(3)\n")
    r = subprocess.run(peak.wrap([sys.executable, str(script), "x", "--y"], tmp_path / "s"), capture_output=True,
                       text=True)
    assert r.returncode == 3 and r.stdout.strip() == "['x', '--y']"
    assert peak.read_mb(tmp_path / "s") > 1  # written at exit after sys.exit too

    r = subprocess.run(peak.wrap([sys.executable, "-c", "import sys; print(sys.argv[1:])", "a"], tmp_path / "c"),
                       capture_output=True, text=True)
    assert r.stdout.strip() == "['a']"


def test_no_peak_file_reads_as_none(peak, tmp_path):
    assert peak.read_mb(tmp_path / "missing") is None
    r = subprocess.run(peak.wrap([sys.executable, "-c", "import os; os._exit(0)"], tmp_path / "x"))
    assert r.returncode == 0 and peak.read_mb(tmp_path / "x") is None
