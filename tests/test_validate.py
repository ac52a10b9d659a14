"""smeintl against maximum-likelihood peers (slow: run with ``make test-slow``).

The comparison of ``benchmarks/validate.py`` on one CFA (Holzinger-Swineford 1939, peer
semopy) and one 2PL (LSAT section 7, peer the PyPI package mirt): every peer estimate
(loadings in data units and standardized, intercepts, residual sds, latent
correlations; IRT slopes and intercepts on the logit scale) must lie inside smeintl's
central 90% posterior interval.  With these sample sizes the posterior is close to
normal around the ML estimate, so the ML estimate sits well inside the interval, not
at its edge (in the full run |z| = |ML - posterior mean| / posterior sd is at most 0.33
for the CFA and 0.54 for the 2PL, the largest being LSAT item 3's slope, shrunk by the
LogNormal(0, 0.5) loading prior): one outside is a real disagreement.

Skipped when semopy or mirt is not installed (neither is a dependency of smeintl).
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from conftest import ROOT

VALIDATE = ROOT / "benchmarks" / "validate.py"

#: sampling settings: more than the quick ones, so that the 90% interval ends are stable
SETTINGS = dict(draws=500, tune=500, chains=2)


@pytest.fixture(scope="module")
def validate():
    pytest.importorskip("semopy", reason="semopy (the CFA peer) is not installed")
    pytest.importorskip("mirt", reason="mirt (the IRT peer, PyPI package mirt) is not installed")
    spec = importlib.util.spec_from_file_location("smeintl_validate", VALIDATE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _check(table, blocks):
    print()
    print(table.drop(columns=["case", "peer_source", "item", "construct"]).to_string(
        index=False, float_format=lambda x: f"{x:.3f}"))
    assert set(blocks) <= set(table.block), f"blocks compared: {sorted(set(table.block))}"
    outside = table[~table.inside]
    assert outside.empty, "peer estimates outside smeintl's 90% interval:\n" + outside.to_string()
    assert np.all(np.isfinite(table.peer_se)), "a peer standard error is missing"


@pytest.mark.slow
def test_cfa_holzinger_swineford_matches_semopy(validate):
    table, peer, fit = validate.run_case(validate.CASES["hs39"], seed=1, **SETTINGS)
    assert len(table) == 9 * 4 + 3  # loadings (data, standardized), intercepts, residual sds; 3 correlations
    _check(table, ["loading", "intercept", "residual_sd", "correlation"])
    assert fit.diagnostics["max_rhat"] < 1.05


@pytest.mark.slow
def test_2pl_lsat7_matches_mirt(validate):
    table, peer, fit = validate.run_case(validate.CASES["lsat7"], seed=1, **SETTINGS)
    assert len(table) == 5 * 3  # slope on the logit scale and standardized, intercept
    _check(table, ["loading", "intercept"])
    # the peer itself agrees with the independent marginal ML of the benchmark
    assert np.nanmax(np.abs(table.peer_est - table.ml_est)) < 0.01
    assert fit.diagnostics["max_rhat"] < 1.05
