"""The measurement model: items as indicators of correlated latent constructs.

One generalized latent variable model is built from a :class:`~smeintl.spec.Spec`.
Each firm f has latent scores eta_f (one per construct).  Each item i loads on its
construct c(i) with a positive loading lambda_i; reverse-coded items get the sign
s_i = -1, so the linear predictor of item i for firm f is

    lp_fi = s_i * lambda_i * eta_{f, c(i)}  (+ an intercept where the family has one)

and the likelihood is the item family's (:mod:`smeintl.families`: ordinal items an
ordered logistic, percent items an ordered beta, counts a negative binomial, binary
items a Bernoulli, continuous items a Normal on the standardized item).

Identification: latent variance fixed to 1 within group, loadings positive
(LogNormal prior), latent correlation with an LKJ prior.  Group (industry) latent
means are partially pooled and sum-to-zero; latent scores non-centred, centred or split
(:mod:`.latent`); from ``STANDARDIZE_AT`` firms the item parameters are sampled on the
latent scores standardized by their own sample mean and sd (the same posterior, without
the ridges along which intercepts and cutpoints trade off against the mean of all
scores and the loadings against their spread).

Item non-response: each family's likelihood runs over observed cells only.

All-continuous instruments use the *marginal* parameterization: the latent scores
are integrated out (y_f ~ MvNormal(a + Lambda mu_g, Lambda R Lambda' + Psi) on each
firm's observed items), so the cost does not grow with a per-firm parameter vector;
latent scores are drawn afterwards from their exact conditional normal (:mod:`.posterior`).
One-construct instruments whose rows of answers repeat across firms (a few binary or
ordinal items, many firms) use the *quadrature* parameterization: the scores are
integrated out on a grid, each distinct row of answers evaluated once (:mod:`.quadrature`).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .. import compat
from .. import families as fam
from ..families.model import LOCATION_DISTS, prior
from ..spec import Spec
from . import posterior as post
from .diagnostics import diagnose
from .generative import increasing_prior_rows, posterior_params
from .invariance import deviations, draw_items_by_group
from .latent import _centered_scores, _lkj_cholesky, _split_scores, marginal_likelihood, split_start
from .layout import ItemLayout, standardization_of
from .quadrature import add_quadrature, quadrature_likelihood
from .sampling import (resolve_draws, resolve_eigval_cutoff, resolve_mass_matrix, resolve_max_tree_depth,
                       resolve_sampler, resolve_target_accept)

__all__ = ["MeasurementModel", "Built", "no_traces", "exact_kernels", "INVARIANCE", "FREE_DEVIATION_SD",
           "PARAMETERIZATIONS"]

#: ``MeasurementModel(parameterization=...)``: the scores sampled per firm (``"latent"``),
#: integrated out exactly for all-continuous instruments (``"marginal"``) or on a grid for
#: one construct (``"quadrature"``); ``"auto"`` picks
PARAMETERIZATIONS = ("auto", "latent", "marginal", "quadrature")

#: the measurement invariance levels of ``MeasurementModel(invariance=...)``
INVARIANCE = ("none", "configural", "metric", "scalar", "approximate")
#: per level, the prior of the group deviations of (loadings, locations): None (equal across
#: groups), "free" (:data:`FREE_DEVIATION_SD`) or "approximate" (``[priors] invariance_sd``)
_DEVIATIONS: dict[str, tuple[str | None, str | None]] = {
    "none": (None, None), "scalar": (None, None), "metric": (None, "free"), "configural": ("free", "free"),
    "approximate": ("approximate", "approximate"),
}
#: sd of the "free" group deviations of the configural and metric levels: of the log loadings
#: (the loading prior's own log-scale sd) and of the locations (link scale; the intercept
#: prior's 1.5 would let the sum-to-zero deviations of few firms wander without bound)
FREE_DEVIATION_SD = {"loading": 0.5, "location": 1.0}


@dataclass(frozen=True)
class Built:
    """What :meth:`MeasurementModel._build` chose for one survey: the latent
    parameterization used, whether the item parameters are on standardized scores, the
    continuous items' standardization, each firm's group code and the sampler's start
    (offsets of free variables' initial values; the split scores start at the answers'
    scores, :func:`~.latent.split_start`; None: PyMC's own start)."""

    latent: str
    standardized: bool
    standardization: Mapping[str, np.ndarray] | None
    group_codes: np.ndarray
    start: Mapping[str, np.ndarray] | None = None


class _Inputs:
    """The data arrays and prior settings of one model, packed into three shared vectors.

    Every value enters the graph as a slice of ``inputs_int`` or ``inputs_float`` between
    offsets held in ``inputs_offsets``, never as a constant.  A model's graph then depends
    on its structure only: new data or new priors of the same structure give the same
    graph (PyTensor's disk cache serves them, and :mod:`smeintl._compiled` reuses one
    compiled nutpie model for all of them).  Packed, because nutpie's compiled wrapper
    unpacks each shared variable separately: 30 separate ones made every compile of the
    default instrument about 15 s longer than these three.

    ``shared=False`` makes every input a constant instead: PyTensor's C backend (PyMC's
    own sampler) runs one thunk per operation, and the slices cost it more than the
    compile they save (study throughput 226 -> 204 fits per hour on one worker).
    """

    def __init__(self, shared: bool = True):
        import pytensor

        self.shared = bool(shared)
        self.pack = {"int": pytensor.shared(np.zeros(0, dtype=np.int64), name="inputs_int"),
                     "float": pytensor.shared(np.zeros(0, dtype=np.float64), name="inputs_float")}
        self.offsets = pytensor.shared(np.zeros(0, dtype=np.int64), name="inputs_offsets")
        self._parts: dict[str, list[np.ndarray]] = {"int": [], "float": []}
        self._bounds: list[int] = []
        self.names: list[str] = []

    def add(self, name: str, value, dtype=None):
        """``value`` as a symbolic input (its shape is kept when it has two or more axes)."""
        if name in self.names:
            raise ValueError(f"duplicate model input {name!r}")
        v = np.asarray(value, dtype=dtype)
        if not self.shared:
            import pytensor.tensor as pt

            self.names.append(name)
            return pt.as_tensor(v)
        kind = "int" if v.dtype.kind in "iub" else "float"
        flat = v.astype(np.int64 if kind == "int" else np.float64).ravel()
        k = len(self.names)
        start = sum(p.size for p in self._parts[kind])
        self._parts[kind].append(flat)
        self._bounds += [start, start + flat.size]
        self.names.append(name)
        # values are set as they come, so the graph can be evaluated at any point of the build
        self.pack[kind].set_value(np.concatenate(self._parts[kind]))
        self.offsets.set_value(np.asarray(self._bounds, dtype=np.int64))
        x = self.pack[kind][self.offsets[2 * k]:self.offsets[2 * k + 1]]
        if v.ndim == 0:
            return x[0]
        return x if v.ndim == 1 else x.reshape(v.shape)

    def prior(self, name: str, key: str, value):
        return self.add(f"prior_{name}_{key}", value, dtype=float)


def no_traces():
    """A context in which PyTensor records no stack trace for the nodes it creates.

    The traces only serve PyTensor's error messages about a user's own graph.  Without
    them, building the default instrument's model takes 0.26 instead of 0.32 s and
    compiling its initial-point function 0.45 instead of 0.86 s (every fit does both).
    """
    import pytensor

    return pytensor.config.change_flags(traceback__limit=0)


def exact_kernels():
    """A context in which PyTensor's numba backend compiles without fastmath.

    With fastmath, a kernel compiled in this process and the same kernel read back from
    PyTensor's numba disk cache can differ in the last bit (PyTensor 3: the default
    instrument's log-density at one point, ``-0x1.6c2e308f5840ep+10`` compiled fresh and
    ``...840fp+10`` from the cache), and NUTS turns one bit into other draws: on Python 3.13
    a fit's first run on a machine differed from every later run with the same seed, and a
    study's tables from a local run and from a Dask cluster differed.  Without fastmath both
    agree, and the warm fit of the default instrument takes as long (17.7 vs 17.9 s).
    """
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


class MeasurementModel:
    """Generalized latent variable model of a spec's items.

    Parameters
    ----------
    spec : Spec
        The instrument: items, constructs, priors and sampler defaults.
    group : bool
        Partially pooled latent means per level of ``spec.group_column``
        (industry); ``False`` switches the level off.
    parameterization : {"auto", "latent", "marginal", "quadrature"}
        ``"marginal"`` integrates the latent scores out (all-continuous
        instruments only); ``"quadrature"`` integrates one construct's scores out on a
        grid (:mod:`.quadrature`; no group-specific item parameters); ``"auto"`` picks
        marginal where possible, quadrature for one construct where the survey's rows of
        answers repeat enough (:attr:`QUADRATURE_ROWS_PER_FIRM`), else latent;
        :meth:`for_survey` gives the model with the choice made for a survey.
    group_parameterization : {"auto", "centered", "noncentered"}
        How the group means are sampled (the same model); ``"auto"``: see ``CENTER_GROUPS_AT``.
    latent_parameterization : {"auto", "centered", "noncentered", "split"}
        How the latent scores are sampled (the same model); ``"split"``: centred, as each
        construct's sample mean, log sd and standardized shape (:func:`_split_scores`;
        implies standardized scores).  ``"auto"``: see ``CENTER_LATENT_AT``; split where
        the scores are centred and standardized.
    standardized_scores : {"auto", True, False}
        Sample the item parameters on the latent scores standardized by their sample
        mean and sd (the same model; see :meth:`_standardized`); ``"auto"``: from
        ``STANDARDIZE_AT`` firms, where the priors allow.  Latent parameterization only.
    invariance : {"none", "configural", "metric", "scalar", "approximate"}
        Measurement invariance across the groups (docs/invariance.md).  ``"none"`` (default)
        and ``"scalar"``: every item's loading and intercept (cutpoints) are the same in
        every group, the group latent means free (the same model and graph).  The others add
        sum-to-zero group deviations (``ZeroSumNormal`` over the groups): of each item's log
        loading, ``loading_dev`` (item, group), loading in group g = loading * exp(dev), and
        of each item's location, ``intercept_dev`` (item, group), added to the linear
        predictor (the intercept moves with it, ordinal cutpoints against it).
        ``"approximate"``: both with sd ``[priors] invariance_sd`` (0.1: approximately
        equal, blavaan's ``wiggle``); ``"configural"``: both free
        (:data:`FREE_DEVIATION_SD`); ``"metric"``: loadings equal, locations free.  Free
        locations take over the group latent means, which configural and metric fix at 0.
        Needs the group level and two or more groups; latent parameterization only.

    Nothing is built or sampled in the constructor; :meth:`fit` returns the fit.
    """

    def __init__(self, spec: Spec, *, group: bool = True, parameterization: str = "auto",
                 group_parameterization: str = "auto", latent_parameterization: str = "auto",
                 standardized_scores: bool | str = "auto", invariance: str = "none"):
        if invariance not in INVARIANCE:
            raise ValueError(f"invariance must be one of {', '.join(map(repr, INVARIANCE))}, got {invariance!r}")
        self.invariance = invariance
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {', '.join(map(repr, PARAMETERIZATIONS))}, "
                             f"got {parameterization!r}")
        self.spec = spec
        self.layout = ItemLayout.from_spec(spec)
        self.group = bool(group) and spec.group_column is not None
        if parameterization == "marginal" and not self.layout.all_continuous:
            raise ValueError(
                "the marginal parameterization needs an all-continuous instrument; "
                f"this spec has scales {sorted(set(self.layout.scales))}"
            )
        if parameterization == "quadrature" and (why := self._no_quadrature()):
            raise ValueError(f"the quadrature parameterization {why}")
        if self._deviations != (None, None):
            if not self.group:
                raise ValueError(f"invariance={invariance!r} compares groups: it needs the group level (a spec "
                                 "group_column and group=True)")
            if parameterization in ("marginal", "quadrature"):
                raise ValueError(f"invariance={invariance!r} needs the latent parameterization (group-specific "
                                 f"item parameters are not in the {parameterization} likelihood)")
            parameterization = "latent"
        #: "auto" resolved per survey where the choice depends on the data (:meth:`for_survey`)
        self._auto = parameterization == "auto"
        if parameterization == "auto":
            parameterization = "marginal" if self.layout.all_continuous else "latent"
        self.parameterization = parameterization
        if group_parameterization not in ("auto", "centered", "noncentered"):
            raise ValueError("group_parameterization must be 'auto', 'centered' or 'noncentered', "
                             f"got {group_parameterization!r}")
        self.group_parameterization = group_parameterization
        if latent_parameterization not in ("auto", "centered", "noncentered", "split"):
            raise ValueError("latent_parameterization must be 'auto', 'centered', 'noncentered' or 'split', "
                             f"got {latent_parameterization!r}")
        self.latent_parameterization = latent_parameterization
        if standardized_scores not in ("auto", True, False):
            raise ValueError(f"standardized_scores must be 'auto', True or False, got {standardized_scores!r}")
        if latent_parameterization == "split":
            # the split scores are the standardized scores' own coordinates
            if standardized_scores is False:
                raise ValueError("latent_parameterization='split' samples standardized scores: it cannot be "
                                 "combined with standardized_scores=False")
            standardized_scores = True
        self._check_priors()
        if standardized_scores is True and not self._standardizable():
            raise ValueError("standardized_scores=True needs a LogNormal loading prior and an intercept prior with a "
                             f"location 'mu' ({', '.join(LOCATION_DISTS)}); got loading "
                             f"{self.spec.priors['loading'].get('dist')!r}, intercept "
                             f"{self.spec.priors['intercept'].get('dist', 'Normal')!r}")
        self.standardized_scores = standardized_scores

    def for_survey(self, survey) -> "MeasurementModel":
        """The model that fits ``survey``: this one, or without the group level when the survey
        has fewer than two groups (one group's mean is not identified apart from the latent
        scale, and its ``group_sd`` would be its prior alone), or with the quadrature
        parameterization where ``"auto"`` picks it for this survey (:meth:`_prefers_quadrature`)."""
        if self._auto and self.parameterization == "latent" and self._prefers_quadrature(survey):
            return MeasurementModel(self.spec, group=self.group, parameterization="quadrature",
                                    group_parameterization=self.group_parameterization,
                                    latent_parameterization=self.latent_parameterization,
                                    standardized_scores=self.standardized_scores,
                                    invariance=self.invariance).for_survey(survey)
        if not self.group or len(survey.group_names) >= 2:
            return self
        if self._deviations != (None, None):
            from ..errors import UserError

            raise UserError(f"invariance={self.invariance!r} compares item parameters across groups, and the "
                            f"survey has {len(survey.group_names)} group(s) in its column "
                            f"{self.spec.group_column!r}: it needs two or more")
        return MeasurementModel(self.spec, group=False, parameterization=self.parameterization,
                                group_parameterization=self.group_parameterization,
                                latent_parameterization=self.latent_parameterization,
                                standardized_scores=self.standardized_scores, invariance=self.invariance)

    def _no_quadrature(self) -> str | None:
        """Why the quadrature parameterization cannot fit this model (None: it can)."""
        C = len(self.layout.constructs)
        if C != 1:
            return f"integrates one construct's scores; this spec has {C} constructs ({', '.join(self.layout.constructs)})"
        if self._deviations != (None, None):
            return f"needs item parameters equal across groups (invariance={self.invariance!r} lets them differ)"
        kernel_less = sorted({b.family.name for b in self.layout.blocks() if b.family.kernel is None})
        if kernel_less:
            return f"needs each item family's likelihood kernel; {', '.join(kernel_less)} has none"
        return None

    #: ``parameterization="auto"`` integrates one construct's scores out by quadrature when
    #: the distinct rows of answers times the grid points are at most this many times the
    #: number of firms, i.e. when rows repeat across firms (few categorical items, many
    #: firms).  The rows' sums over the grid cost a few additions per answer and point; the
    #: sampler then moves the item parameters alone, in a third to a half of the leapfrog
    #: steps.  Measured (nutpie, 4 x 1000 draws): eight binary items, 2,000 firms (at most
    #: 256 rows, 7.8 per firm): sampling 12.9 s to a min bulk ESS of 3,116 against 52.4 s to
    #: 1,872 with the scores sampled (6.7 vs 16.1 leapfrog steps per draw); the same
    #: posterior means of the loadings to 0.01.  The threshold is on the safe side: at 500
    #: firms (165 rows, 20 per firm) the quadrature still gave 2.5 times the ESS per second
    #: (10.2 s to 3,231 against 17.7 s to 2,236), at 150 firms (81 rows, 33 per firm) the
    #: sampled scores gave 2.6 times (1.9 s to 1,969 against 6.1 s to 2,464)
    QUADRATURE_ROWS_PER_FIRM = 8

    def _prefers_quadrature(self, survey) -> bool:
        from .quadrature import POINTS, answer_rows

        if self.layout.all_continuous or self._no_quadrature():
            return False
        X = survey.items[list(self.layout.names)].to_numpy(dtype=float)
        rows = answer_rows(X, np.asarray(survey.groups) if self.group else None)[0]
        return rows.size * POINTS <= self.QUADRATURE_ROWS_PER_FIRM * X.shape[0]

    @property
    def _deviations(self) -> tuple[str | None, str | None]:
        """The prior of the group deviations of (loadings, locations), see :data:`_DEVIATIONS`."""
        return _DEVIATIONS[self.invariance]

    @property
    def _group_means(self) -> bool:
        """Whether the model has group latent means: with the group level, except where free
        location deviations take their place (configural, metric)."""
        return self.group and self._deviations[1] != "free"

    #: groups at least this large get centred group means under ``group_parameterization="auto"``
    CENTER_GROUPS_AT = 25

    def _group_centered(self, gidx: np.ndarray, G: int) -> bool:
        if self.group_parameterization != "auto":
            return self.group_parameterization == "centered"
        sizes = np.bincount(gidx, minlength=G)
        return bool(sizes.min() >= self.CENTER_GROUPS_AT)

    #: ``latent_parameterization="auto"`` samples the latent scores centred when every group
    #: (or the whole sample, without groups) has this many firms ...
    CENTER_LATENT_AT = 200
    #: ... and every construct has this many items (enough answers to pin each firm's score)
    CENTER_LATENT_ITEMS = 6

    def _latent_centered(self, gidx: np.ndarray, G: int) -> bool:
        """Centred latent scores (eta ~ MvNormal(group mean, R)) or non-centred (eta = mean + L z).

        Non-centred scores move jointly with their group mean: with thousands of firms per
        group that coupling makes the sampler take long trajectories.  Centred, the group
        mean given the scores is pinned down by the many firms and each score is informed
        by the firm's own answers.  With few items per construct each score is vague and
        centred scores form a funnel with the loadings, so the automatic choice also asks
        for ``CENTER_LATENT_ITEMS`` items per construct.  Measured on the default instrument
        (1,000 firms in 5 groups, nutpie, 2 x 500 draws): min bulk ESS 191 centred vs 127
        non-centred at the same number of leapfrog steps."""
        if self.latent_parameterization != "auto":
            return self.latent_parameterization == "centered"
        sizes = np.bincount(gidx, minlength=max(G, 1))
        items = np.bincount(self.layout.construct, minlength=len(self.layout.constructs))
        return bool(sizes.min() >= self.CENTER_LATENT_AT and items.min() >= self.CENTER_LATENT_ITEMS)

    def _latent_choice(self, gidx: np.ndarray, G: int) -> str:
        """"centered", "noncentered" or "split" (centred scores sampled as their sample
        mean, log sd and standardized shape, :func:`_split_scores`; ``"auto"`` takes it
        where the scores are centred and the item parameters standardized)."""
        if self.latent_parameterization in ("noncentered", "centered", "split"):
            return self.latent_parameterization
        if not self._latent_centered(gidx, G):
            return "noncentered"
        return "split" if self._standardized(len(gidx)) else "centered"

    #: ``standardized_scores="auto"`` samples the item parameters on the sample-standardized
    #: scores from this many firms
    STANDARDIZE_AT = 200

    def _standardizable(self) -> bool:
        pri = self.spec.priors
        return (pri["loading"].get("dist") == "LogNormal"
                and pri["intercept"].get("dist", "Normal") in LOCATION_DISTS and "mu" in pri["intercept"])

    def _standardized(self, n_firms: int) -> bool:
        """Whether the item parameters are sampled relative to the sample of latent scores.

        With many firms the likelihood pins each item's linear predictor, so the item
        intercepts and cutpoints trade off exactly against the mean of all latent scores and
        the loadings against their spread; only the scores' population prior (mean 0, sd 1)
        holds these directions, as loosely as one over the square root of the number of
        firms.  A diagonal mass matrix cannot follow such ridges (with centred scores the
        sample mean and sd are best sampled as coordinates of their own: :func:`_split_scores`).
        Standardized, the items
        see the scores centred and scaled by their own sample mean and sd across firms, and
        the free item parameters are those on that scale:

            loading_std = loading * sd(eta_c),   shift_i = sign_i * loading_i * mean(eta_c)
            cutpoints_std = cutpoints - shift,   intercept_std = intercept + shift

        The priors move with them (a LogNormal loading's log-location by log sd(eta_c), a
        location prior's ``mu`` by the shift), so the model is the same posterior over the
        reported parameters, exactly: a change of variables, not a new prior.  The reported
        ``loading``, ``cutpoints_*`` and intercepts are deterministic functions of the
        standardized ones.  (The loadings' change of scale adds log sd(eta_c) per item to
        the free variables' log prior; :func:`smeintl.robustness` evaluates the analyst's
        priors on a model without it.)
        """
        if self.standardized_scores != "auto":
            return bool(self.standardized_scores)
        return n_firms >= self.STANDARDIZE_AT and self._standardizable()

    def _standardized_items(self, pm, pt, inp, eta, lp_pri, split=None):
        """Standardized scores for the likelihood, the loadings (free ``loading_std``,
        reported ``loading``) and the per-item shift of intercepts and cutpoints (see
        :meth:`_standardized`).  ``split``: the standardized scores, sample means and sds
        where the scores are sampled that way (:func:`_split_scores`)."""
        lay = self.layout
        if split is None:
            mean, sd = eta.mean(axis=0), eta.std(axis=0)
            standardized = (eta - mean) / sd
        else:
            standardized, mean, sd = split
        params = {k: inp.prior("loading", k, v) for k, v in lp_pri.items() if k != "dist"}
        params["mu"] = params["mu"] + pt.log(sd)[lay.construct]
        loading_std = pm.LogNormal("loading_std", **params, dims="item")
        loading = pm.Deterministic("loading", loading_std / sd[lay.construct], dims="item")
        shift = lay.sign * loading * mean[lay.construct]
        return standardized, loading_std, shift, loading, mean

    # ---------------------------------------------------------------- helpers
    def _check_priors(self) -> None:
        dists = {self.spec.priors[k].get("dist") for k in ("loading", *(f.loading_prior for f in fam.families()))}
        if len(dists) != 1:
            raise ValueError(
                f"priors.loading, priors.loading_count and priors.loading_continuous must use one distribution, got {dists}"
            )

    def _loading_prior_arrays(self) -> dict[str, np.ndarray]:
        pri = self.spec.priors
        entries = [pri[f.loading_prior] for f in self.layout.families()]
        names = [k for k in entries[0] if k != "dist"]
        return {"dist": entries[0]["dist"], **{n: np.array([float(e[n]) for e in entries]) for n in names}}
    def coords(self, survey) -> dict[str, list]:
        lay = self.layout
        c: dict[str, list] = {
            "firm": list(map(str, survey.items.index)),
            "item": list(lay.names),
            "construct": list(lay.constructs),
        }
        for block in lay.blocks():
            c.update(block.family.coords(lay, block))
        if len(lay.constructs) > 1:
            c["construct_"] = list(lay.constructs)
        if self.group:
            c["group"] = list(survey.group_names)
        return c

    def _standardization(self, survey) -> dict[str, np.ndarray] | None:
        """Continuous items are modelled on z = (y - mean) / sd with each item's sample mean
        and sd, so the default priors are scale-free: the same answers in other units (or
        with another declared range) give the same standardized results and loadings in
        data units scaled accordingly.  The fit's attrs record them (``standardization``)."""
        return standardization_of(self.layout, survey.items[list(self.layout.names)].to_numpy(dtype=float))

    # ---------------------------------------------------------------- build
    def build(self, survey, *, inputs: str = "shared"):
        """Build the PyMC model for a survey (no sampling).

        Returns the ``pymc.Model``; the model object itself is not changed (the choices
        made for this survey come with :meth:`_build`).

        ``inputs="shared"`` (default): data and prior settings are inputs of the graph (see
        ``_Inputs``), so every survey and prior of this structure gives the same graph;
        ``"constant"``: they are constants, which PyMC's own sampler runs faster.
        """
        if inputs not in ("shared", "constant"):
            raise ValueError(f"inputs must be 'shared' or 'constant', got {inputs!r}")
        return self.for_survey(survey)._build(survey, inputs=inputs)[0]

    def _build(self, survey, *, inputs: str = "shared") -> tuple[Any, "Built"]:
        """The model and what was chosen for this survey (:class:`Built`)."""
        import pymc as pm
        import pytensor.tensor as pt

        from .._numba import register

        # PyTensor's numba backend (nutpie's, and PyMC's default one on PyTensor 3) computes
        # digamma with smeintl's cacheable version in every model, whatever the process has
        # run before: the same seed gives the same draws in any process
        register()

        lay = self.layout
        pri = self.spec.priors
        X = survey.items[list(lay.names)].to_numpy(dtype=float)
        F, I = X.shape
        C = len(lay.constructs)
        coords = self.coords(survey)
        std = self._standardization(survey)
        group_codes = np.asarray(survey.groups, dtype=int) if self.group else np.zeros(F, dtype=int)

        inp = _Inputs(shared=inputs == "shared")
        standardized_used = self.parameterization == "latent" and self._standardized(F)
        latent_used = self.latent_parameterization
        with pm.Model(coords=coords) as model:
            lp_pri = self._loading_prior_arrays()
            # on standardized scores the loadings are drawn after the scores (see _standardized)
            loading = None if standardized_used else prior(pm, "loading", lp_pri, inp, dims="item")
            # latent correlation (LKJ prior through canonical partial correlations)
            if C > 1:
                chol = _lkj_cholesky(pm, pt, C, inp.prior("lkj", "eta", float(pri["lkj_eta"]["eta"])))
                pm.Deterministic("corr", chol @ chol.T, dims=("construct", "construct_"))
            else:
                chol = pt.ones((1, 1))
            # group means
            if self._group_means:
                G = len(survey.group_names)
                gidx = np.asarray(survey.groups, dtype=int)
                gidx_data = inp.add("data_group", gidx)
                tau = prior(pm, "group_sd", pri["group_sd"], inp, dims="construct")
                # ZeroSumNormal constrains its *last* axes: groups go last, then transpose.
                if self._group_centered(gidx, G):
                    # many firms per group: the data pin each mean down, centred mixes better
                    gc = pm.ZeroSumNormal("group_c", sigma=tau[:, None], dims=("construct", "group"),
                                          n_zerosum_axes=1)
                    gmean = pm.Deterministic("group_mean", gc.T, dims=("group", "construct"))
                else:
                    gz = pm.ZeroSumNormal("group_z", sigma=1.0, dims=("construct", "group"), n_zerosum_axes=1)
                    gmean = pm.Deterministic("group_mean", gz.T * tau, dims=("group", "construct"))
                mu_f = gmean[gidx_data]
            else:
                G = 0
                mu_f = pt.zeros((F, C))

            if self.parameterization == "latent":
                latent_used = self._latent_choice(group_codes, G)
                split = None
                if latent_used == "split":
                    eta, *split = _split_scores(pm, pt, mu_f, chol, lay.constructs, F)
                elif latent_used == "centered":
                    eta = _centered_scores(pm, pt, mu_f, chol, lay.constructs)
                else:
                    z = pm.Normal("z", 0.0, 1.0, dims=("firm", "construct"))
                    eta = pm.Deterministic("eta", mu_f + z @ chol.T, dims=("firm", "construct"))
                reported = mean = None
                if standardized_used:
                    eta, loading, shift, reported, mean = self._standardized_items(pm, pt, inp, eta, lp_pri, split)
                else:
                    shift = None
                dev = None
                if self._deviations != (None, None):
                    dev = self._group_deviations(pm, pt, inp, loading, reported, mean, group_codes,
                                                 len(survey.group_names))
                self._likelihoods(pm, pt, inp, X, eta, loading, std, shift=shift, deviations=dev)
            elif self.parameterization == "quadrature":
                quadrature_likelihood(pm, pt, inp, self.layout, self.spec.priors, X,
                                      gmean if self._group_means else None, G, loading, std,
                                      group_codes if self.group else None)
            else:
                marginal_likelihood(pm, pt, inp, self.layout, self.spec.priors, X, mu_f if self.group else None,
                                    chol, loading, std, group_codes)
        start = split_start(X, lay) if latent_used == "split" else None
        return model, Built(latent_used, bool(standardized_used), std, group_codes, start)


    def _group_deviations(self, pm, pt, inp, loading, reported, mean, group_codes: np.ndarray, G: int):
        """The group deviations of the loadings and locations (see ``invariance``) as what
        the likelihood reads: ``{"signed": (G * I,) or None, "location": (G, I) or None,
        "groups": (F,)}``.

        ``loading_dev`` (item, group) ~ ZeroSumNormal over the groups: group g's loading is
        ``loading * exp(loading_dev[:, g])`` (positive, geometric mean over the groups the
        loading); ``intercept_dev`` (item, group), likewise sum-to-zero, is added to the
        linear predictor of the group's answers.  Their sds are prior inputs.  On
        standardized scores (``loading``: the free ``loading_std``; ``reported``: the
        loadings; ``mean``: the scores' sample means) the same model is

            signed_gi = s_i loading_std_i exp(d_ig),
            location_gi = intercept_dev_ig + s_i reported_i (exp(d_ig) - 1) mean_c(i)

        (the standardized intercepts and cutpoints already carry s_i reported_i mean_c(i))."""
        lay = self.layout
        kinds = self._deviations

        def sd(kind: str, what: str):
            value = FREE_DEVIATION_SD[what] if kind == "free" else float(self.spec.priors["invariance_sd"]["sigma"])
            return inp.prior(f"invariance_{what}", "sigma", value)

        signed = location = None
        if kinds[0]:
            d = pm.ZeroSumNormal("loading_dev", sigma=sd(kinds[0], "loading"), dims=("item", "group"),
                                 n_zerosum_axes=1)
            ratio = pt.exp(d.T)  # (G, I)
            signed = ((loading * lay.sign)[None, :] * ratio).reshape((-1,))
            if mean is not None:
                location = (lay.sign * reported * mean[lay.construct])[None, :] * (ratio - 1.0)
        if kinds[1]:
            a = pm.ZeroSumNormal("intercept_dev", sigma=sd(kinds[1], "location"), dims=("item", "group"),
                                 n_zerosum_axes=1)
            location = a.T if location is None else location + a.T
        return {"signed": signed, "location": location, "groups": np.asarray(group_codes, dtype=np.int64), "G": G}

    def _likelihoods(self, pm, pt, inp, X, eta, loading, std, shift=None, deviations=None):
        """One likelihood per block of items (:meth:`ItemLayout.blocks`), added by the
        block's family (:meth:`smeintl.families.Family.build`).  Each answer's linear
        predictor is ``eta[f, c(item)] * loading * sign + intercept``; the data are
        model inputs.

        ``shift`` (per item, or None): ``eta`` are the standardized scores and ``loading``
        the standardized loadings; intercepts and cutpoints are drawn shifted (see
        :meth:`_standardized`)."""
        lay = self.layout
        extra: dict[str, Any] = {}
        signed = loading * lay.sign
        if deviations is not None:  # group-specific loadings and locations (``invariance``)
            extra = {"groups": deviations["groups"], "n_groups": deviations["G"],
                     "group_signed": deviations["signed"] is not None, "location_dev": deviations["location"]}
            if deviations["signed"] is not None:
                signed = deviations["signed"]
        ctx = fam.BuildContext(pm=pm, pt=pt, inputs=inp, priors=self.spec.priors, layout=lay, X=X,
                               eta_flat=eta.reshape((-1,)), signed=signed, shift=shift,
                               standardization=std, n_constructs=len(lay.constructs), **extra)
        for block in lay.blocks():
            block.family.build(ctx, block)

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        survey,
        *,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int = 0,
        sampler: str | None = None,
        target_accept: float | str | None = None,
        cores: int | None = None,
        progressbar: bool = True,
        log_likelihood: bool = True,
        posterior_predictive: bool = True,
        mass_matrix: str = "auto",
        max_tree_depth: int | str = "auto",
    ):
        """Sample the posterior and return the fit, an :class:`xarray.DataTree` (:mod:`smeintl.compat`).

        The result holds the posterior (with latent scores ``eta``), a posterior
        predictive survey for every item, the per-firm log-likelihood (``responses``: the sum over each firm's observed answers),
        the observed data, and attrs recording the spec text, data hash, seed,
        sampler, mass matrix, package versions and the diagnostics verdict.

        ``target_accept``: a number in (0, 1), or ``"auto"`` (:data:`~.sampling.AUTO_TARGET_ACCEPT`:
        0.9 with nutpie, 0.95 with PyMC's NUTS; with nutpie 0.8 from :data:`~.sampling.LARGE_FIRMS`
        firms); default the spec's ``[sampler]``.  The attrs record the number used.

        ``draws``, ``tune``, ``chains``: default the spec's ``[sampler]``; from its
        ``large_firms`` firms its ``large_*`` settings (:data:`~.sampling.LARGE_SURVEY`).

        ``mass_matrix``: ``"diag"`` (diagonal), ``"low_rank"`` (nutpie's diagonal plus
        low-rank adaptation, nutpie only) or ``"auto"``: low-rank with nutpie from
        :data:`~.sampling.LOW_RANK_MIN_FIRMS` firms.  With many firms the item intercepts and
        cutpoints all trade off against the mean of the latent scores, a direction
        that a diagonal mass matrix cannot follow (default instrument, 1,000 firms,
        2 x 400 draws: min bulk ESS 15 diagonal, 132 low-rank; 300 firms: 39 vs
        239); with few firms the group sd's geometry dominates and the diagonal mixes
        better (41 firms, 4 x 1000: 656 vs 234; 100 firms: 203 vs 84).

        ``max_tree_depth``: NUTS's maximum tree depth (1 to :data:`~.sampling.MAX_TREE_DEPTH`), or
        ``"auto"``: 7 with nutpie from :data:`~.sampling.LARGE_FIRMS` firms, else the sampler's own (10).
        """
        import pymc as pm

        if (own := self.for_survey(survey)) is not self:
            return own.fit(survey, draws=draws, tune=tune, chains=chains, random_seed=random_seed, sampler=sampler,
                           target_accept=target_accept, cores=cores, progressbar=progressbar,
                           log_likelihood=log_likelihood, posterior_predictive=posterior_predictive,
                           mass_matrix=mass_matrix, max_tree_depth=max_tree_depth)
        if random_seed is None:
            raise ValueError("random_seed is required: every fit takes an explicit seed")
        s = self.spec.sampler
        draws, tune, chains = resolve_draws(s, survey.n_firms, draws, tune, chains)
        sampler = resolve_sampler(sampler or s["sampler"])
        target_accept = resolve_target_accept(target_accept or s["target_accept"], sampler, survey.n_firms)
        mass_matrix = resolve_mass_matrix(mass_matrix, sampler, survey.n_firms)
        cutoff = resolve_eigval_cutoff(mass_matrix, survey.n_firms)
        depth = resolve_max_tree_depth(sampler, survey.n_firms, max_tree_depth)
        t0 = time.perf_counter()
        # nutpie: one compiled model per structure (_compiled); PyMC NUTS: constants run faster
        with no_traces():
            model, built = self._build(survey, inputs="shared" if sampler == "nutpie" else "constant")
        t_build = time.perf_counter() - t0
        start = built.start  # jittered as usual
        with model, warnings.catch_warnings(), no_traces(), exact_kernels():
            warnings.filterwarnings("ignore", category=UserWarning, module="pymc")
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            t1 = time.perf_counter()
            timing: dict[str, Any] = {}
            if sampler == "nutpie":
                from .. import _compiled

                # one compiled model per structure in this process (data and priors are inputs)
                idata, timing = _compiled.sample(model, draws=draws, tune=tune, chains=chains,
                                                 target_accept=target_accept, random_seed=int(random_seed),
                                                 progressbar=progressbar, low_rank=mass_matrix == "low_rank",
                                                 eigval_cutoff=cutoff, start=start, max_tree_depth=depth)
            else:
                idata = compat.as_fit(pm.sample(
                    # PyMC's own NUTS: PyMC 6 would otherwise run nutpie where it is installed
                    nuts_sampler="pymc",
                    draws=draws, tune=tune, chains=chains, random_seed=int(random_seed),
                    progressbar=progressbar, compute_convergence_checks=False,
                    # chains run one after another by default: on small machines PyMC's
                    # multiprocess sampling was measured 5-50x slower than sequential chains
                    cores=cores if cores is not None else 1,
                    target_accept=target_accept, initvals=start,
                    **({"nuts": {"max_treedepth": depth}} if depth is not None else {}),
                ))
            t_sample = time.perf_counter() - t1
            if log_likelihood and self.parameterization == "latent":
                post.add_firm_loglik(self, idata, survey, built.standardization)
        std = built.standardization
        if self.parameterization == "marginal":
            if log_likelihood:
                post.add_marginal_loglik(self, idata, survey, std)
            post.add_marginal_eta(self, idata, survey, std, random_seed)
        elif self.parameterization == "quadrature":  # also records the grid's check, which diagnose reads
            add_quadrature(self, idata, survey, std, random_seed, log_likelihood=log_likelihood)
        if posterior_predictive:
            post.add_posterior_predictive(self, idata, survey, std, random_seed)
        post.add_observed(self, idata, survey)
        post.add_constant_data(idata, model)
        # the attrs first: diagnose reads the parameterization (scores drawn after sampling)
        idata.attrs.update(
            post.fit_attrs(self, built, survey, random_seed, sampler, mass_matrix, draws, tune, chains, target_accept,
                           eigval_cutoff=cutoff, max_tree_depth=depth))
        diag = diagnose(idata)
        idata.attrs.update({
            "diagnostics": json.dumps(diag.to_dict()),
            "failed": int(diag.failed),
            "timing": json.dumps({"build_s": t_build, "sample_s": t_sample, **timing}),
        })
        return idata

    # ---------------------------------------------------------------- prior predictive
    def prior_predictive(self, survey, *, draws: int = 500, random_seed: int = 0) -> dict[str, Any]:
        """Draw surveys from the prior predictive (same firms, groups and missingness).

        Returns a dict with ``params`` (prior draws), ``eta`` and ``items`` (draws, F, I).

        Cutpoints carry an ordered transform: their prior is the normal prior restricted to
        increasing rows, which PyMC's forward draws ignore (they draw the unrestricted
        normal). A draw whose row of an item's cutpoints is not increasing takes instead the
        next increasing row among further forward draws of the cutpoints (rejection: exact,
        since the cutpoints' prior does not depend on the other parameters).
        """
        import pymc as pm

        # the same model without the change of variables: the split scores' mean and log sd
        # have flat densities, which cannot be drawn forward
        plain = MeasurementModel(self.spec, group=self.for_survey(survey).group, parameterization=self.parameterization,
                                 group_parameterization=self.group_parameterization, standardized_scores=False,
                                 invariance=self.invariance)
        model, built = plain._build(survey)
        names = [v.name for v in model.free_RVs] + [d.name for d in model.deterministics]
        with model, warnings.catch_warnings(), exact_kernels():
            warnings.simplefilter("ignore")
            pri = pm.sample_prior_predictive(draws=draws, var_names=names, random_seed=int(random_seed))
        P = posterior_params(pri, self.spec, group="prior")
        P.update(increasing_prior_rows(model, P, np.random.default_rng([int(random_seed), 5])))
        std = built.standardization
        if "eta" not in P:
            rng0 = np.random.default_rng([int(random_seed), 3])
            C = len(self.layout.constructs)
            R = P["corr"] if C > 1 else np.ones((draws, 1, 1))
            L = np.linalg.cholesky(R)
            z = rng0.standard_normal((draws, survey.n_firms, C))
            mu = P["group_mean"][:, np.asarray(survey.groups)] if "group_mean" in P else 0.0
            P["eta"] = mu + np.einsum("sij,sfj->sfi", L, z)
        rng = np.random.default_rng([int(random_seed), 4])
        dev = deviations(pri, group="prior")
        Y = draw_items_by_group(P, dev, P["eta"], survey.groups, self.layout, rng, standardization=std)
        return {"params": P | {f"{k}_dev": v for k, v in dev.items()}, "eta": P["eta"], "items": Y}


# ---------------------------------------------------------------------------
