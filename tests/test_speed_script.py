"""``benchmarks/speed.py``'s rows without their timed fits: what a row says when its runner
cannot run, and the table that the script prints from such rows.

The timed runs themselves are benchmarks (``benchmarks/RESULTS.md``), not tests.
"""

from __future__ import annotations

import importlib.util
import sys
from argparse import Namespace

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

SPEED = ROOT / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("smeintl_speed", SPEED)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _args(**kw):
    return Namespace(**({"seed": 1, "draws": 10, "tune": 10, "chains": 2} | kw))


def test_numpyro_row_is_skipped_with_a_note_without_jax(speed, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # import jax raises ImportError
    row = speed.numpyro_row("cfa", tmp_path / "cfa.csv", tmp_path, _args())
    assert row["case"] == "cfa" and "numpyro" in row["runner"]
    assert row["note"] == "skipped: jax not installed (not a dependency of smeintl)"
    assert "wall_s" not in row  # nothing was run


def test_the_table_keeps_rows_that_did_not_run(speed):
    rows = [
        {"case": "cfa", "runner": "smeintl fit (warm)", "wall_s": 20.0, "sampling_s": 2.0, "compile_s": 12.0,
         "min_ess_bulk": 2000.0, "max_rhat": 1.003, "divergences": 0},
        {"case": "cfa", "runner": "smeintl's model + PyMC's numpyro NUTS (warm XLA cache)", "wall_s": 12.5,
         "sampling_s": 3.5, "compile_s": 4.0, "min_ess_bulk": 1800.0, "max_rhat": 1.002, "divergences": 0},
        {"case": "cfa", "runner": "smeintl API, second fit in one process", "wall_s": 4.0, "sampling_s": 2.0,
         "compile_s": 0.01, "min_ess_bulk": 2000.0, "max_rhat": 1.003, "divergences": 0},
        {"case": "2pl", "runner": "smeintl fit (warm)", "wall_s": 24.0, "sampling_s": 3.0, "compile_s": 10.0,
         "min_ess_bulk": 3800.0, "max_rhat": 1.003, "divergences": 0},
        {"case": "2pl", "runner": "smeintl's model + PyMC's numpyro NUTS (warm XLA cache)", "wall_s": np.nan,
         "note": "not run: No JAX conversion for the given `Op`: CellsLogp{family='binary'}"},
    ]
    table = speed.add_ratios(pd.DataFrame(rows).reindex(columns=speed.COLUMNS))
    assert table.loc[0, "ess_per_s"] == pytest.approx(100.0)
    assert table.loc[1, "ratio"] == "smeintl fit takes 1.60x its wall time"
    assert table.loc[2, "ratio"] == "smeintl fit takes 5.00x its wall time"
    assert table.loc[4, "ratio"] == ""  # no ratio for a row that did not run
    md = speed.markdown(table).splitlines()
    assert len(md) == 2 + len(rows)
    assert md[-1].startswith("| 2pl | smeintl's model + PyMC's numpyro NUTS (warm XLA cache) |  |")
    assert md[-1].rstrip().endswith("CellsLogp{family='binary'} |")
