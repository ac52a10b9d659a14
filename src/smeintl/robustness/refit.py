"""The model-comparison refits before the fit: which models it refits
(:func:`comparison_plan`), and their compilation, without sampling, in a second process
while the main fit runs (:func:`start_refit_compile`, :class:`RefitCompile`), each refit
starting once its own model is compiled."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

from ..spec import Spec
from .context import MODEL_VARIANTS, FitAttrs, RobustnessContext
from .variants import ordinal_survey, spec_variant, survey_for


def comparison_plan(ctx: RobustnessContext) -> tuple[list[tuple[str, tuple[Any, Spec, bool]]], dict[str, str]]:
    """The refits of ``model_comparison``: ``([(model, (survey, spec, group)), ...],
    {model: why it is not fitted})``, from the fit's spec and options."""
    for m in ctx.models:
        if m not in MODEL_VARIANTS:
            raise ValueError(f"unknown model variant {m!r}; known: {', '.join(MODEL_VARIANTS)}")
    fit_spec = ctx.fit_spec
    plan: list[tuple[str, tuple[Any, Spec, bool]]] = []
    skipped: dict[str, str] = {}
    for m in ctx.models:
        if m == "no_industry":
            if not ctx.fit_group:
                skipped[m] = "the given fit has no industry level"
                continue
            plan.append((m, (survey_for(fit_spec, ctx.survey), fit_spec, False)))
        elif m == "one_construct":
            sv, reason = spec_variant(fit_spec, "one_construct")
            if sv is None:
                skipped[m] = reason
                continue
            plan.append((m, (survey_for(sv, ctx.survey), sv, ctx.fit_group)))
        elif m == "all_ordinal":
            # the evaluation spec's profiles and thresholds with the fit's priors and sampler
            sv, reason = spec_variant(replace(ctx.spec, priors=fit_spec.priors, sampler=fit_spec.sampler),
                                      "all_ordinal")
            if sv is None:
                skipped[m] = reason
                continue
            plan.append((m, (ordinal_survey(sv, ctx.survey), sv, ctx.fit_group)))
    return plan, skipped


def context_before_fit(spec: Spec, survey, *, group: bool, parameterization: str, models: Sequence[str],
                        refit_kwargs: Mapping[str, Any] | None) -> RobustnessContext:
    """The context the refits will have once a fit of ``spec`` on ``survey`` with these
    options exists: enough to plan and build the refits' models before it does."""
    return RobustnessContext(idata=FitAttrs(group, parameterization), survey=survey, spec=spec,
                             models=tuple(models), refit_kwargs=dict(refit_kwargs or {}))


def compile_refit_models(spec: Spec, survey, *, group: bool = True, parameterization: str = "auto",
                         models: Sequence[str] = MODEL_VARIANTS,
                         refit_kwargs: Mapping[str, Any] | None = None,
                         on_compiled: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Compile, without sampling, the models that ``model_comparison`` refits for a fit of
    ``spec`` on ``survey`` (``group``, ``parameterization``: the fit's options), so that
    the refits load them from the disk caches.  Only nutpie's models are compiled ahead;
    with PyMC's NUTS as the refit sampler nothing is done.  ``on_compiled(model)`` is called
    as each is done, in :data:`REFIT_COMPILE_ORDER`.  Returns ``{model: {"compile_s",
    "compile_reused"}}``."""
    ctx = context_before_fit(spec, survey, group=group, parameterization=parameterization, models=models,
                              refit_kwargs=refit_kwargs)
    if ctx.refit_sampler() != "nutpie":
        return {}
    plan, _skipped = comparison_plan(ctx)
    out = {}
    for m, (surv, sv, g) in in_compile_order(plan):
        out[m] = ctx.refit_model(sv, group=g).compile(surv)
        if on_compiled is not None:
            on_compiled(m)
    return out


#: the order in which the model-comparison refits' models are compiled ahead, and refitted:
#: the variants least like the fit first, since while the fit's own model compiles in
#: another process they share few of its operations; by the time the no-industry model
#: (most alike) comes, numba's disk cache holds the fit's operations
REFIT_COMPILE_ORDER: tuple[str, ...] = ("all_ordinal", "one_construct", "no_industry")


def in_compile_order(plan):
    return sorted(plan, key=lambda p: REFIT_COMPILE_ORDER.index(p[0]))


def _compile_refits_quietly(spec: Spec, survey, kwargs: dict[str, Any], done) -> None:
    """The second process of :func:`start_refit_compile`: its output would interleave with
    the run's, and a failure only means the refits compile their models themselves.
    ``done``: a queue that gets each model's name once its structure is compiled."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    warnings.simplefilter("ignore")
    compile_refit_models(spec, survey, **kwargs, on_compiled=done.put)


class RefitCompile:
    """The models of the model-comparison refits compiling in a second process (see
    :func:`start_refit_compile`); ``done`` is the queue on which it announces each one."""

    def __init__(self, process, done):
        self.process = process
        self.done_queue = done
        self.compiled: set[str] = set()

    def wait_for(self, model: str, timeout: float | None = None) -> float:
        """Wait until the process has compiled ``model``'s structure or ended (at most
        ``timeout`` seconds, then stop it); returns the seconds waited.  The refit can then
        start, on its own core, while the process compiles the next structure; whatever
        it did not compile, the refits compile themselves."""
        import queue

        t0 = time.perf_counter()
        while model not in self.compiled:
            ended = not self.process.is_alive()  # before reading: what it announced is then all queued
            try:
                self.compiled.add(self.done_queue.get(timeout=0.2))
                continue
            except queue.Empty:
                if ended:
                    break
            if timeout is not None and time.perf_counter() - t0 > timeout:
                self.stop()
                break
        return time.perf_counter() - t0

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def start_refit_compile(model, survey, *, models: Sequence[str] = MODEL_VARIANTS,
                        refit_kwargs: Mapping[str, Any] | None = None) -> RefitCompile | None:
    """Start compiling the model-comparison refits' models in a second process, to run
    while ``model`` (a :class:`~smeintl.measurement.MeasurementModel`, not fitted yet)
    compiles and samples on ``survey``; :meth:`RefitCompile.wait` before the refits.

    Only when it pays: the refits sample with nutpie, the machine has a second core, and
    ``model``'s own compiled model is not in the disk caches (a cold cache; the refits'
    models are then almost surely missing too, and each takes 15-35 s to compile for the
    default instrument).  Returns None otherwise, having built ``model``'s graph once to
    look it up (a fraction of a second).
    """
    import multiprocessing

    kwargs = dict(group=model.group, parameterization=model.parameterization, models=tuple(models),
                  refit_kwargs=dict(refit_kwargs or {}))
    ctx = context_before_fit(model.spec, survey, **kwargs)
    if (os.cpu_count() or 1) < 2 or ctx.refit_sampler() != "nutpie" or model.compiled_on_disk(survey):
        return None
    mp = multiprocessing.get_context("spawn")
    done = mp.Queue()
    process = mp.Process(target=_compile_refits_quietly, args=(model.spec, survey, kwargs, done), daemon=True,
                         name="smeintl-refit-compile")
    process.start()
    return RefitCompile(process, done)
