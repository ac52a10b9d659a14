"""Simulation studies: parameter recovery, simulation-based calibration, method comparison.

A *study* is a TOML file (see ``docs/study.md`` and the bundled
``study_example.toml``, :mod:`smeintl.resources`): an instrument spec, a grid of conditions (the
cartesian product of the ``[grid]`` lists), a number of replications per condition,
fit settings and a seed.  :func:`run_study` runs every replication and writes, into
one output folder:

``reps/<design>-c<cond>-r<rep>.csv``
    the rows of one finished replication, written atomically (temp file + rename) by
    the client as soon as the replication returns; ``<...>.error.json`` instead when
    it failed (with the traceback).  A rerun skips every finished replication
    (resume) and retries the failed ones.
``results.csv``
    the tidy table: one row per replication and quantity, sorted by design,
    condition, replication, kind, family and quantity, so that a run on the local
    cores and a run on a Dask cluster give byte-identical files for the same seed.
``summary.csv``
    per condition: bias, RMSE, 90% interval coverage and interval width per
    quantity family and quantity; type recovery rates, Brier scores, reliability.
``sbc_ranks.csv`` / ``sbc_uniformity.csv``
    simulation-based calibration ranks and the chi-square uniformity test.
``conditions.csv``, ``study.json``, ``timings.csv``, ``figures/*.png``.

Two *designs* of replication:

``fixed`` (kinds ``recovery`` and ``comparison``)
    true parameters fixed per condition (:func:`smeintl.simulate.typical_params`
    with the condition's loading, correlation, group sd, and a latent mean shift per
    construct), a fresh survey per replication, one fit.  Recovery compares the
    posterior (mean, 90% equal-tailed interval) with the truth for loadings, latent
    correlations, group means and latent scores; comparison types every firm by the
    deterministic method on its answers, by the posterior (modal true-score and modal
    replicated type, :func:`smeintl.predictive.compare`) and by the truth (the
    deterministic method on the firm's true scores, :func:`true_types`).
``sbc`` (kind ``sbc``)
    Talts et al. (2018): parameters drawn from the model's prior
    (:func:`smeintl.simulate.prior_params`), a survey simulated from them, one fit,
    and the rank of each true value among the (thinned) posterior draws.  Uses the
    grid's ``n_firms``, ``missing`` and ``n_groups`` only (one SBC condition per
    distinct combination; the truth-setting columns are ignored).

Seeding: replication ``rep`` of condition ``cond`` uses
``numpy.random.SeedSequence([seed, cond, rep])`` (``[seed, cond, rep, 1]`` for the
SBC design) for its survey and its fit; the true parameters of a condition use
``SeedSequence([seed, cond])``.  Results do not depend on where, or in what order,
replications ran.

Execution: a :class:`dask.distributed.LocalCluster` (one single-threaded worker
process per core) by default, or the Dask cluster whose scheduler address is given.
Workers compute and return rows; only the client writes files, so a cluster does not
need a shared file system (its workers need ``smeintl`` installed).

Modules: :mod:`~smeintl.study.config` (the study file, defaults, :class:`Study`),
:mod:`~smeintl.study.parameters` (parameter names and labels),
:mod:`~smeintl.study.replication` (one replication, seeded by index),
:mod:`~smeintl.study.store` (the output folder's files),
:mod:`~smeintl.study.runner` (local or Dask cluster execution, resume),
:mod:`~smeintl.study.results` (tables and figures of a finished study),
:mod:`~smeintl.study.cli` (the command line).
"""

from __future__ import annotations

from .cli import add_study_arguments, cmd_study, study_main
from .config import DESIGNS, GRID_KEYS, KINDS, RESULT_COLUMNS, Study, StudyError, Task, load_study, parse_study
from .replication import replication_seeds, run_replication, shift_params, true_types
from .results import StudyRun, collect, sbc_uniformity, summarize
from .runner import run_study

# also importable from here, as before the split (not in __all__)
from .config import PROB, RELIABILITY_BINS, SBC_GRID_KEYS  # noqa: F401
from .replication import condition_seed  # noqa: F401
from .store import finished_tasks  # noqa: F401

__all__ = [
    "KINDS",
    "DESIGNS",
    "GRID_KEYS",
    "RESULT_COLUMNS",
    "StudyError",
    "Study",
    "Task",
    "StudyRun",
    "load_study",
    "parse_study",
    "replication_seeds",
    "shift_params",
    "true_types",
    "run_replication",
    "run_study",
    "collect",
    "summarize",
    "sbc_uniformity",
    "add_study_arguments",
    "cmd_study",
    "study_main",
]
