"""Prior helpers shared by the families' PyMC likelihoods and the latent structure.

``prior`` turns a spec ``[priors]`` entry into a PyMC variable whose settings are model
inputs (``measurement.model._Inputs``); ``shifted`` draws a location parameter relative to
the standardized latent scores (see ``MeasurementModel._standardized``).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["prior", "shifted", "default_cutpoint_means", "LOCATION_DISTS"]

#: prior families with a location parameter ``mu``, which the standardized item
#: parameterization shifts (see ``MeasurementModel._standardized``)
LOCATION_DISTS = ("Normal", "StudentT", "Logistic", "Laplace")


def shifted(pm, dist, name: str, mu, shift=None, *, dims=None, **params):
    """``dist(name, mu=mu, ...)``; with ``shift`` (a tensor broadcasting against ``mu``) the
    free variable is ``<name>_std = name + shift``, drawn with its location moved by the
    shift, and ``name`` is reported as a deterministic (``MeasurementModel._standardized``).
    Returns the free variable."""
    if shift is None:
        return dist(name, mu=mu, dims=dims, **params)
    free = dist(f"{name}_std", mu=mu + shift, dims=dims, **params)
    pm.Deterministic(name, free - shift, dims=dims)
    return free


def prior(pm, name: str, entry: Mapping[str, Any], inputs, *, shift=None, **kwargs):
    """The prior ``entry`` of variable ``name``; with ``shift`` see :func:`shifted`."""
    params = {k: inputs.prior(name, k, v) for k, v in entry.items() if k != "dist"}
    dist = getattr(pm, str(entry.get("dist", "Normal")))
    if shift is None:
        return dist(name, **params, **kwargs)
    return shifted(pm, dist, name, params.pop("mu"), shift, **params, **kwargs)


def default_cutpoint_means(K: int) -> np.ndarray:
    """Logits of the cumulative shares of K equiprobable categories."""
    p = np.arange(1, K) / K
    return np.log(p) - np.log1p(-p)
