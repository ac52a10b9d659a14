"""Simulate surveys from the measurement model with known truth.

:func:`simulate_survey` draws latent scores and item answers from the same
generative model that :class:`~smeintl.measurement.MeasurementModel` fits, and
returns the survey (in the layout the file readers accept) beside the true
parameters and latent scores.  It is the basis of parameter-recovery tests,
simulation-based calibration and comparison studies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from .measurement import ItemLayout, MeasurementModel, draw_items, standardization_of
from .spec import Spec

__all__ = ["Simulation", "simulate_survey", "prior_params", "typical_params", "truth_on_fit_scale"]


@dataclass(frozen=True)
class Simulation:
    """A simulated survey with its truth."""

    survey: "object"  # smeintl.data.Survey
    params: dict[str, np.ndarray]
    eta: np.ndarray  # (F, C) true latent scores
    seed: int

    def to_frame(self) -> pd.DataFrame:
        return self.survey.to_frame()


def typical_params(spec: Spec, *, n_groups: int = 5, loading: float = 1.5, correlation: float = 0.4,
                   group_sd: float = 0.5, random_seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible fixed "true" parameters for recovery studies.

    Loadings all equal to ``loading`` (0.8 for counts, where the log link makes
    effects multiplicative), equally spaced cutpoints, percent items with about a
    third exact zeros at eta = 0, counts centred at cap / 3, latent correlation
    ``correlation`` between every pair of constructs, group means spread with sd
    ``group_sd`` (centred to sum to zero).
    """
    lay = ItemLayout.from_spec(spec)
    rng = np.random.default_rng([int(random_seed), 11])
    C = len(lay.constructs)
    p: dict[str, np.ndarray] = {}
    p["loading"] = np.array([f.typical_loading(float(loading)) for f in lay.families()])
    for block in lay.blocks():
        p.update(block.family.typical(lay, block, rng))
    if C > 1:
        R = np.full((C, C), float(correlation))
        np.fill_diagonal(R, 1.0)
        p["corr"] = R
    if n_groups and n_groups > 1:
        g = rng.normal(0.0, group_sd, (n_groups, C))
        p["group_mean"] = g - g.mean(0)
    return p


def prior_params(spec: Spec, *, n_groups: int = 5, random_seed: int = 0) -> dict[str, np.ndarray]:
    """One draw of every parameter from the model's prior (the spec's priors).

    Used by simulation-based calibration: the prior is the PyMC model's own, so
    there is one definition of it (the cutpoints restricted to increasing rows, as
    :meth:`MeasurementModel.prior_predictive` draws them).
    """
    from .data import survey_from_frame

    lay = ItemLayout.from_spec(spec)
    placeholder = _placeholder_frame(spec, max(n_groups, 2) * 2, n_groups)
    survey = survey_from_frame(placeholder, spec, source="<placeholder>")
    model = MeasurementModel(spec, group=n_groups > 1)
    out = model.prior_predictive(survey, draws=1, random_seed=random_seed)["params"]
    out = {k: v[0] for k, v in out.items() if k != "eta"}
    if len(lay.constructs) == 1:
        out.pop("corr", None)
    return out


def _placeholder_frame(spec: Spec, n_firms: int, n_groups: int) -> pd.DataFrame:
    cols: dict[str, object] = {spec.id_column: [f"P{f:04d}" for f in range(n_firms)]}
    if spec.group_column:
        cols[spec.group_column] = [f"G{(f % max(n_groups, 1)) + 1}" for f in range(n_firms)]
    for it in spec.items:
        cols[it.name] = np.full(n_firms, it.min)
    return pd.DataFrame(cols)


def simulate_survey(
    spec: Spec,
    n_firms: int,
    params: Mapping[str, np.ndarray] | None = None,
    *,
    n_groups: int = 5,
    missing: float = 0.0,
    random_seed: int,
    outcome: bool = True,
) -> Simulation:
    """Draw a survey of ``n_firms`` firms from the generative model.

    Parameters
    ----------
    spec : the instrument.
    params : true parameters (keys as in :func:`smeintl.measurement.posterior_params`,
        without a sample axis); default :func:`typical_params`.
    n_groups : number of groups (industries ``G1`` ...), firms assigned in turn.
    missing : share of item answers deleted completely at random (each item keeps
        at least one answer).
    random_seed : required; the same seed gives the same survey.
    outcome : add an ``outcome`` column, 5 + sum of the latent scores + N(0, 1.5^2).
    """
    from .data import survey_from_frame

    if n_firms < 2:
        raise ValueError("n_firms must be at least 2")
    lay = ItemLayout.from_spec(spec)
    C = len(lay.constructs)
    use_groups = spec.group_column is not None and n_groups > 1
    p = {k: np.asarray(v, dtype=float) for k, v in (params or typical_params(spec, n_groups=n_groups if use_groups else 0, random_seed=random_seed)).items()}
    rng = np.random.default_rng([int(random_seed), 7])
    groups = np.arange(n_firms) % max(n_groups, 1)
    R = p.get("corr", np.eye(C))
    L = np.linalg.cholesky(R)
    eta = rng.standard_normal((n_firms, C)) @ L.T
    if use_groups and "group_mean" in p:
        eta = eta + p["group_mean"][groups]
    std = standardization_of(lay)
    X = draw_items(p, eta, lay, rng, standardization=std)
    for block in lay.blocks():
        X[:, block.idx] = block.family.finish_simulated(X[:, block.idx], lay.lo[block.idx], lay.hi[block.idx])
    if missing > 0:
        drop = rng.random(X.shape) < missing
        for j in range(X.shape[1]):
            if drop[:, j].all():
                drop[rng.integers(n_firms), j] = False
        X[drop] = np.nan
    frame: dict[str, object] = {spec.id_column: [f"S{f + 1:05d}" for f in range(n_firms)]}
    if spec.group_column:
        frame[spec.group_column] = [f"G{g + 1}" for g in groups] if use_groups else ["G1"] * n_firms
    if outcome and spec.outcome_column:
        frame[spec.outcome_column] = np.round(5.0 + eta.sum(1) + rng.normal(0, 1.5, n_firms), 3)
    for k, name in enumerate(lay.names):
        frame[name] = X[:, k]
    df = pd.DataFrame(frame)
    survey = survey_from_frame(df, spec, source=f"<simulated seed={random_seed}>")
    return Simulation(survey, p, eta, int(random_seed))


def truth_on_fit_scale(spec: Spec, params: Mapping[str, np.ndarray], fit) -> dict[str, np.ndarray]:
    """True parameters of a simulated survey on the scale on which ``fit`` (a fit of that
    survey) estimates them: what a recovery or calibration check compares.

    Simulated surveys state their truth with continuous items on their declared range
    (centre, range / 6); fits standardize continuous items by the sample mean and sd, so
    their loadings, intercepts and residual sds are rescaled (each family's
    ``to_fit_scale``; other families are unchanged).
    """
    from .measurement import fit_standardization

    lay = ItemLayout.from_spec(spec)
    out = {k: np.array(v, dtype=float, copy=True) for k, v in params.items()}
    simulated, fitted = standardization_of(lay), fit_standardization(fit)
    if simulated is None or fitted is None:
        return out
    for block in lay.blocks():
        out.update(block.family.to_fit_scale(out, block, simulated, fitted))
    return out
