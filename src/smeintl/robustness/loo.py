"""The integrated LOO of ``model_comparison``: the per-firm log-likelihood with the
firm's latent scores integrated out by adaptive Gauss-Hermite quadrature
(:mod:`smeintl.measurement.loo`, which a fit's summary and ``compare_models`` use too)."""

from __future__ import annotations

import numpy as np

from ..measurement.loo import INTEGRATED_MAX_DRAWS, INTEGRATION_CHECK_NODES, INTEGRATION_NODES, integrated_fit
from ..measurement.loo import integrated_loglik as _measurement_integrated_loglik
from ..spec import Spec

__all__ = ["INTEGRATION_NODES", "INTEGRATION_CHECK_NODES", "INTEGRATED_MAX_DRAWS", "integrated_loglik",
           "integrated_idata"]


def integrated_loglik(idata, spec: Spec, survey, *, group: bool, nodes: int = INTEGRATION_NODES, scale: float = 1.0,
                      draws: np.ndarray | None = None) -> np.ndarray:
    """Per-firm log-likelihood with the firm's latent scores integrated out, ``(S, F)``
    (:func:`smeintl.measurement.loo.integrated_loglik` on the answers of ``survey``;
    ``group=False``: latent means 0 for every firm)."""
    return _measurement_integrated_loglik(idata, spec, survey, nodes=nodes, scale=scale, draws=draws, group=group)


def integrated_idata(fit, spec: Spec, survey, group: bool, parameterization: str, check: bool = False):
    """A fit with the posterior (thinned to at most :data:`INTEGRATED_MAX_DRAWS`
    draws) and the integrated per-firm log-likelihood as ``responses``; with ``check``
    also the largest difference, over up to 10 draws, between the quadrature with
    :data:`INTEGRATION_NODES` and with :data:`INTEGRATION_CHECK_NODES` nodes
    (:func:`smeintl.measurement.loo.integrated_fit`)."""
    return integrated_fit(fit, spec, survey, group=group, parameterization=parameterization, check=check)
