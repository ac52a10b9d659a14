"""What the checks share: their settings, and :class:`RobustnessContext` (the inputs of
one :func:`~smeintl.robustness.run_robustness` call and its cached intermediate results:
the fit's spec and options read from its attrs, the baselines, the refits)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import compat
from .. import predictive as _pred
from ..indices import compute_indices
from ..predictive import compare
from ..profiles import type_arrays
from ..spec import Spec, parse_spec
from .findings import det_verdicts, finding_rows, posterior_verdicts
from .verdict import Verdict, na_verdicts

#: default settings of every refit (prior-sensitivity and model-comparison refits); the
#: sampler and target_accept are the fit spec's ``[sampler]`` unless given
DEFAULT_REFIT: dict[str, Any] = {"draws": 300, "tune": 400, "chains": 2}

#: alternative models of ``model_comparison``
MODEL_VARIANTS: tuple[str, ...] = ("no_industry", "one_construct", "all_ordinal")
#: when ``prior_sensitivity`` refits under wider and narrower priors
PRIOR_REFITS: tuple[str, ...] = ("auto", "always", "never")

#: least number of firms for the checks that need many (otherwise the check says why)
MIN_FIRMS: dict[str, int] = {"bootstrap": 10, "model": 20, "factor_analysis": 10}
#: Pareto k above which importance weights are unreliable
KHAT_MAX = 0.7


def _attrs(idata) -> dict:
    return getattr(idata, "attrs", {}) or {}


@dataclass
class RobustnessContext:
    """Inputs and shared, cached intermediate results of one :func:`run_robustness` call."""

    idata: Any
    survey: Any
    spec: Spec
    seed: int = 20190601
    bootstrap_draws: int = 2000
    refit_kwargs: dict = field(default_factory=dict)
    progress: bool = True
    prob: float = 0.9
    models: tuple[str, ...] = MODEL_VARIANTS
    prior_refits: str = "auto"
    #: model-comparison refits started ahead in a second process (:mod:`.ahead`), or None
    ahead: Any = None
    _cache: dict = field(default_factory=dict, repr=False)

    # ---- fit ---------------------------------------------------------------
    @property
    def n_firms(self) -> int:
        return int(self.survey.n_firms)

    def fit_problem(self) -> str | None:
        """Why the fit cannot be used (None when it can)."""
        if "fit_problem" in self._cache:
            return self._cache["fit_problem"]
        prob = None
        if self.idata is None:
            prob = "no fit given (pass a fit of the measurement model)"
        else:
            h = _attrs(self.idata).get("data_hash")
            if h is not None and h != self.survey.data_hash:
                prob = (f"the fit was made on different data (fit data hash {str(h)[:12]}, survey "
                        f"{self.survey.data_hash[:12]})")
            else:
                try:
                    _pred._check_spec(self.idata, self.spec)
                except ValueError as exc:
                    prob = str(exc)
        self._cache["fit_problem"] = prob
        return prob

    def refit_problem(self, what: str) -> str | None:
        """Why a check that refits the model (for ``what``) cannot run: too few firms, an
        unusable fit, no per-firm log-likelihood; None when it can."""
        if self.n_firms < MIN_FIRMS["model"]:
            return f"too few firms ({self.n_firms}) for {what}: need at least {MIN_FIRMS['model']}"
        prob = self.fit_problem()
        if prob:
            return prob
        if not compat.has_group(self.idata, "log_likelihood") or "responses" not in compat.group(self.idata, "log_likelihood"):
            return "the fit has no per-firm log-likelihood ('responses')"
        return None

    @property
    def fit_spec(self) -> Spec:
        if "fit_spec" not in self._cache:
            text = _attrs(self.idata).get("spec_text") if self.idata is not None else None
            self._cache["fit_spec"] = parse_spec(text, source="<fit spec>") if text else self.spec
        return self._cache["fit_spec"]

    @property
    def fit_group(self) -> bool:
        return bool(int(_attrs(self.idata).get("group", 1))) and self.fit_spec.group_column is not None

    @property
    def fit_invariance(self) -> str:
        """The fit's measurement-invariance level (``"none"`` for fits made before it existed)."""
        return str(_attrs(self.idata).get("invariance", "none"))

    @property
    def fit_parameterization(self) -> str:
        return str(_attrs(self.idata).get("parameterization", "auto"))

    def comparison(self):
        """:func:`~smeintl.predictive.compare` of the given fit (all draws), cached."""
        if "comparison" not in self._cache:
            self._cache["comparison"] = compare(self.idata, self.survey, self.spec, prob=self.prob,
                                                random_seed=self.seed)
        return self._cache["comparison"]

    # ---- deterministic -----------------------------------------------------
    def indices(self):
        if "indices" not in self._cache:
            self._cache["indices"] = compute_indices(self.survey, self.spec)
        return self._cache["indices"]

    def deterministic(self):
        """:func:`~smeintl.profiles.run_deterministic` on the observed data, cached."""
        from ..profiles import run_deterministic

        if "det" not in self._cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._cache["det"] = run_deterministic(self.survey, spec=self.spec)
        return self._cache["det"]

    def baseline_types(self) -> dict[str, Any]:
        """:func:`~smeintl.profiles.type_arrays` of the observed indices, cached."""
        if "base_ta" not in self._cache:
            self._cache["base_ta"] = type_arrays(self.indices().indices.to_numpy(), self.spec)
        return self._cache["base_ta"]

    def baseline_rows(self) -> pd.DataFrame:
        if "baseline_rows" not in self._cache:
            ind = self.indices().indices.to_numpy()
            self._cache["baseline_rows"] = finding_rows(self.spec, self.survey, ind)
        return self._cache["baseline_rows"]

    def baseline_det(self) -> dict[str, Verdict]:
        """The deterministic method's verdicts on the observed data."""
        return det_verdicts(self.baseline_rows(), self.indices().indices.to_numpy(), self.spec)

    def baseline_post(self) -> dict[str, Verdict]:
        """The posterior verdicts of the given fit (not evaluated when it cannot be used)."""
        if "baseline_post" not in self._cache:
            prob = self.fit_problem()
            self._cache["baseline_post"] = (na_verdicts(self.spec, prob) if prob
                                            else posterior_verdicts(self.comparison().findings))
        return self._cache["baseline_post"]

    # ---- refits --------------------------------------------------------------
    def refit_settings(self) -> dict[str, Any]:
        kw = {**DEFAULT_REFIT, **(self.refit_kwargs or {})}
        kw.setdefault("sampler", str(self.fit_spec.sampler.get("sampler", "pymc")))
        return kw

    def refit_sampler(self) -> str:
        """The sampler of the refits: the refit settings' (default the fit spec's), with
        ``"auto"`` resolved; PyMC's NUTS where nutpie is not installed."""
        from ..measurement import _has_nutpie

        sampler = self.refit_settings()["sampler"]
        if sampler in ("nutpie", "auto") and not _has_nutpie():
            return "pymc"
        return "nutpie" if sampler == "auto" else sampler

    def refit_model(self, spec: Spec, *, group: bool, standardized_scores: bool | str = "auto"):
        """The measurement model of a refit: ``spec``, with the fit's parameterization where
        the variant allows it (marginal needs all-continuous items)."""
        from ..measurement import MeasurementModel

        par = self.fit_parameterization
        if par == "marginal" and not all(it.family.linear for it in spec.items):
            par = "auto"
        if par == "quadrature":  # the variant may not allow it (two constructs); "auto" picks it where it pays
            par = "auto"
        # the fit's invariance level where the refit keeps the group level (deviations need groups)
        inv = self.fit_invariance if group else "none"
        return MeasurementModel(spec, group=group, parameterization=par if par in ("latent", "marginal") else "auto",
                                standardized_scores=standardized_scores, invariance=inv)

    def refit(self, spec: Spec, survey, *, group: bool, offset: int):
        """A refit of the measurement model with the refit settings (seed + offset)."""
        kw = self.refit_settings()
        kw.pop("sampler")
        sampler = self.refit_sampler()
        model = self.refit_model(spec, group=group)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return model.fit(survey, random_seed=int(self.seed) + offset, progressbar=False, sampler=sampler, **kw)
            except Exception:
                if sampler == "nutpie":  # fall back to PyMC's NUTS
                    return model.fit(survey, random_seed=int(self.seed) + offset, progressbar=False, sampler="pymc", **kw)
                raise

    def bar(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress or total == 0, leave=False)
