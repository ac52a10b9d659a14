"""Simulation studies: parameter recovery, simulation-based calibration, method comparison.

A *study* is a TOML file in ``models/`` (see ``docs/study.md`` and
``models/study_example.toml``): an instrument spec, a grid of conditions (the
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
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import re
import sys
import time
import tomllib
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .spec import Spec, SpecError, load_spec, valid_target_accept
from .spec import _num as _is_num

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

#: kinds of analysis a study can ask for
KINDS = ("recovery", "comparison", "sbc")
#: replication designs: fixed truth per condition, or truth drawn from the prior
DESIGNS = ("fixed", "sbc")
#: grid keys (besides ``shift_<construct>``), in the order conditions are enumerated
GRID_KEYS = ("n_firms", "loading", "missing", "n_groups", "correlation", "group_sd")
#: grid keys the SBC design uses
SBC_GRID_KEYS = ("n_firms", "missing", "n_groups")
#: columns of a replication file and of ``results.csv`` (before the condition columns)
RESULT_COLUMNS = (
    "design",
    "condition",
    "replication",
    "status",
    "kind",
    "family",
    "quantity",
    "true",
    "estimate",
    "error",
    "sq_error",
    "lo",
    "hi",
    "width",
    "covered",
    "n",
    "message",
)
#: interval probability of the recovery and comparison quantities
PROB = 0.9
#: bins of the reliability curve (posterior type probabilities)
RELIABILITY_BINS = 10
_FIT_KEYS = ("draws", "tune", "chains", "sampler", "target_accept", "group", "compare_draws")
_SBC_KEYS = ("parameters", "thin", "bins")
_STUDY_KEYS = ("name", "description", "instrument", "seed", "replications", "kind")
_REP_RE = re.compile(r"^(fixed|sbc)-c(\d+)-r(\d+)\.csv$")
_ERR_RE = re.compile(r"^(fixed|sbc)-c(\d+)-r(\d+)\.error\.json$")
_SBC_PARAM_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[([^\]]*)\])?\s*$")
_SBC_NAMES = (
    "loading",
    "corr",
    "eta",
    "group_mean",
    "group_sd",
    "binary_intercept",
    "pct_intercept",
    "pct_precision",
    "count_intercept",
    "count_inv_dispersion",
    "cont_intercept",
    "cont_sigma",
)


# ---------------------------------------------------------------------------
# errors and the study specification
# ---------------------------------------------------------------------------
class StudyError(SpecError):
    """A study file is invalid, or an output folder cannot be used for it.

    A subclass of :class:`~smeintl.spec.SpecError` (so the command line reports it as
    a user error); ``problems`` lists every problem found.
    """

    def __init__(self, source: str, problems: Sequence[str] | str, *, what: str = "invalid study file"):
        if isinstance(problems, str):
            problems = [problems]
        self.source = str(source)
        self.problems = list(problems)
        if what:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            msg = f"{what} {self.source}: {len(self.problems)} problem(s)\n{lines}"
        else:
            msg = f"{self.source}: " + "; ".join(self.problems)
        ValueError.__init__(self, msg)

    def __reduce__(self):
        return (_rebuild_study_error, (self.source, self.problems, str(self)))


def _rebuild_study_error(source, problems, msg):
    e = StudyError(source, problems, what="")
    ValueError.__init__(e, msg)
    return e


@dataclass(frozen=True)
class Task:
    """One replication: a design, a condition index and a replication index."""

    design: str
    condition: int
    replication: int

    @property
    def name(self) -> str:
        return f"{self.design}-c{self.condition:03d}-r{self.replication:04d}"


@dataclass(frozen=True, eq=False)
class Study:
    """A validated study (see :func:`load_study`)."""

    name: str
    description: str
    source: str
    text: str
    instrument: Spec
    instrument_path: str
    seed: int
    replications: int
    kinds: tuple[str, ...]
    grid: Mapping[str, tuple]
    conditions: pd.DataFrame  # index = condition, columns = grid keys
    fit: Mapping[str, Any]
    sbc: Mapping[str, Any]

    # ---- derived ------------------------------------------------------------
    @property
    def designs(self) -> tuple[str, ...]:
        out = []
        if "recovery" in self.kinds or "comparison" in self.kinds:
            out.append("fixed")
        if "sbc" in self.kinds:
            out.append("sbc")
        return tuple(out)

    @property
    def condition_columns(self) -> tuple[str, ...]:
        return tuple(self.conditions.columns)

    def sbc_conditions(self) -> list[int]:
        """Condition indices run by the SBC design: the first condition of each
        distinct (n_firms, missing, n_groups)."""
        seen: dict[tuple, int] = {}
        for c, row in self.conditions.iterrows():
            key = tuple(row[k] for k in SBC_GRID_KEYS)
            seen.setdefault(key, int(c))
        return sorted(seen.values())

    def tasks(self) -> list[Task]:
        """Every replication of the study, in (design, condition, replication) order."""
        out: list[Task] = []
        for design in self.designs:
            conds = self.sbc_conditions() if design == "sbc" else list(self.conditions.index)
            for c in conds:
                for r in range(self.replications):
                    out.append(Task(design, int(c), r))
        return out

    def condition(self, c: int) -> dict[str, Any]:
        row = self.conditions.loc[c]
        out: dict[str, Any] = {}
        for k in self.conditions.columns:
            v = row[k]
            out[k] = int(v) if k in ("n_firms", "n_groups") else float(v)
        return out

    def config(self) -> dict[str, Any]:
        """Everything that determines the result of a replication (not the number of
        replications, the name or the description): what :attr:`hash` covers."""
        return {
            "seed": self.seed,
            "kinds": list(self.kinds),
            "conditions": {k: [float(x) for x in self.conditions[k]] for k in self.conditions.columns},
            "fit": dict(self.fit),
            "sbc": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.sbc.items()},
            "instrument_hash": self.instrument.hash,
        }

    @property
    def hash(self) -> str:
        """SHA-256 of :meth:`config` (an output folder holds results of one hash)."""
        return hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()

    def condition_label(self, c: int) -> str:
        d = self.condition(c)
        short = {"n_firms": "n", "loading": "lambda", "missing": "miss", "n_groups": "G",
                 "correlation": "r", "group_sd": "tau"}
        parts = []
        for k, v in d.items():
            if len(set(self.conditions[k])) > 1 or k == "n_firms":
                parts.append(f"{short.get(k, k)}={v:g}")
        return f"c{c}: " + " ".join(parts)


def load_study(path: str | Path) -> Study:
    """Load and validate a study file; the instrument path is relative to it."""
    p = Path(path)
    if not p.exists():
        raise StudyError(str(p), ["file not found"])
    return parse_study(p.read_text(encoding="utf-8"), source=str(p), base_dir=p.parent)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)



def _optional_table(raw: dict, table: str, known: Sequence[str], problems: list[str]) -> dict:
    """``raw[table]`` (empty when absent); a non-table or an unknown key is added to ``problems``."""
    value = raw.get(table, {})
    if not isinstance(value, dict):
        problems.append(f"[{table}]: must be a table")
        return {}
    problems.extend(f"{table}.{k}: unknown key; known: {', '.join(known)}" for k in value if k not in known)
    return value

def parse_study(text: str, source: str = "<string>", base_dir: str | Path | None = None) -> Study:
    """Parse and validate study TOML text.  Every problem is collected and reported
    at once in a :class:`StudyError` naming ``source`` and the offending key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(source, [f"not valid TOML: {exc}"]) from None
    problems: list[str] = []
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    for k in raw:
        if k not in ("study", "grid", "fit", "sbc"):
            problems.append(f"[{k}]: unknown table; known: [study], [grid], [fit], [sbc]")
    st = raw.get("study")
    if not isinstance(st, dict):
        raise StudyError(source, problems + ["[study]: the table is required (instrument, seed, replications, kind)"])
    for k in st:
        if k not in _STUDY_KEYS:
            problems.append(f"study.{k}: unknown key; known: {', '.join(_STUDY_KEYS)}")
    name = str(st.get("name", Path(source).stem))
    description = str(st.get("description", ""))
    seed = st.get("seed")
    if not _is_int(seed) or seed < 0:
        problems.append(f"study.seed: required, a whole number >= 0, got {seed!r}")
        seed = 0
    reps = st.get("replications")
    if not _is_int(reps) or reps < 1:
        problems.append(f"study.replications: required, a whole number >= 1, got {reps!r}")
        reps = 1
    kind = st.get("kind", "recovery")
    kinds = [kind] if isinstance(kind, str) else kind
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        problems.append(f"study.kind: a kind or a list of kinds from {list(KINDS)}, got {kind!r}")
        kinds = ["recovery"]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        problems.append(f"study.kind: unknown kind(s) {bad}; allowed: {', '.join(KINDS)}")
    kinds = tuple(k for k in KINDS if k in kinds)  # canonical order, no duplicates

    # ---- instrument ---------------------------------------------------------
    inst = st.get("instrument")
    spec: Spec | None = None
    inst_path = ""
    if not isinstance(inst, str) or not inst:
        problems.append("study.instrument: required, the path of an instrument spec (relative to the study file)")
    else:
        ip = Path(inst)
        ip = ip if ip.is_absolute() else base / ip
        inst_path = str(ip)
        if not ip.exists():
            problems.append(f"study.instrument: instrument spec {inst!r} not found (looked for {ip})")
        else:
            try:
                spec = load_spec(ip)
            except SpecError as exc:
                problems.append(f"study.instrument: {inst!r} is not a valid instrument spec:\n{exc}")
    if spec is None:
        raise StudyError(source, problems)
    cnames = spec.construct_names
    has_groups = spec.group_column is not None

    # ---- grid ---------------------------------------------------------------
    grid_raw = raw.get("grid", {})
    if not isinstance(grid_raw, dict):
        problems.append("[grid]: must be a table of key = [values]")
        grid_raw = {}
    shift_keys = tuple(f"shift_{c}" for c in cnames)
    defaults: dict[str, list] = {
        "n_firms": [100],
        "loading": [1.5],
        "missing": [0.0],
        "n_groups": [5 if has_groups else 1],
        "correlation": [0.4],
        "group_sd": [0.5],
        **{k: [0.0] for k in shift_keys},
    }
    known = (*GRID_KEYS, *shift_keys)
    for k in grid_raw:
        if k not in known:
            extra = ""
            if k.startswith("shift_"):
                extra = f" (the instrument's constructs are {list(cnames)})"
            problems.append(f"grid.{k}: unknown key{extra}; known: {', '.join(known)}")
    grid: dict[str, tuple] = {}
    for k in known:
        v = grid_raw.get(k, defaults[k])
        vals = v if isinstance(v, list) else [v]
        key = f"grid.{k}"
        if not vals:
            problems.append(f"{key}: needs at least one value")
            vals = defaults[k]
        if k in ("n_firms", "n_groups"):
            if not all(_is_int(x) for x in vals):
                problems.append(f"{key}: whole numbers required, got {v!r}")
                vals = defaults[k]
            elif k == "n_firms" and min(vals) < 3:
                problems.append(f"{key}: at least 3 firms, got {v!r}")
            elif k == "n_groups":
                if min(vals) < 1:
                    problems.append(f"{key}: at least 1 group, got {v!r}")
                elif not has_groups and max(vals) > 1:
                    problems.append(
                        f"{key}: the instrument {spec.name!r} has no group column, so n_groups must be 1, got {v!r}"
                    )
        else:
            if not all(_is_num(x) for x in vals):
                problems.append(f"{key}: numbers required, got {v!r}")
                vals = defaults[k]
            elif k == "loading" and min(vals) <= 0:
                problems.append(f"{key}: loadings must be > 0, got {v!r}")
            elif k == "missing" and not all(0 <= x < 1 for x in vals):
                problems.append(f"{key}: shares of missing answers must be in [0, 1), got {v!r}")
            elif k == "correlation" and not all(-1 < x < 1 for x in vals):
                problems.append(f"{key}: correlations must be in (-1, 1), got {v!r}")
            elif k == "group_sd" and min(vals) < 0:
                problems.append(f"{key}: must be >= 0, got {v!r}")
        if len(set(vals)) != len(vals):
            problems.append(f"{key}: duplicate values {v!r}")
        grid[k] = tuple(vals)
    if "n_groups" in grid and all(_is_int(x) for x in grid["n_groups"]):
        for x in grid["n_firms"]:
            if _is_int(x) and x < 2 * max(grid["n_groups"]):
                problems.append(f"grid.n_firms: {x} firms are too few for {max(grid['n_groups'])} groups (need 2 per group)")
                break

    # ---- fit ----------------------------------------------------------------
    from .measurement import auto_sampler, resolve_target_accept

    fit_raw = _optional_table(raw, "fit", _FIT_KEYS, problems)
    s = spec.sampler
    fit: dict[str, Any] = {
        "draws": fit_raw.get("draws", int(s["quick_draws"])),
        "tune": fit_raw.get("tune", int(s["quick_tune"])),
        "chains": fit_raw.get("chains", int(s["quick_chains"])),
        # auto: nutpie where installed; each worker compiles a model structure once and
        # reuses it for every replication (smeintl._compiled)
        "sampler": fit_raw.get("sampler", auto_sampler() if s["sampler"] == "auto" else s["sampler"]),
        "target_accept": fit_raw.get("target_accept", s["target_accept"]),
        "group": fit_raw.get("group", True),
        "compare_draws": fit_raw.get("compare_draws", 0),
    }
    for k in ("draws", "chains"):
        if not _is_int(fit[k]) or fit[k] < 1:
            problems.append(f"fit.{k}: a whole number >= 1, got {fit[k]!r}")
    if not _is_int(fit["tune"]) or fit["tune"] < 0:
        problems.append(f"fit.tune: a whole number >= 0, got {fit['tune']!r}")
    if fit["sampler"] not in ("pymc", "nutpie"):
        problems.append(f"fit.sampler: 'pymc' or 'nutpie', got {fit['sampler']!r}")
    if not valid_target_accept(fit["target_accept"]):
        problems.append(f"fit.target_accept: 'auto' or a number in (0, 1), got {fit['target_accept']!r}")
    elif fit["sampler"] in ("pymc", "nutpie"):
        fit["target_accept"] = resolve_target_accept(fit["target_accept"], fit["sampler"])
    if not isinstance(fit["group"], bool):
        problems.append(f"fit.group: true or false, got {fit['group']!r}")
    if not _is_int(fit["compare_draws"]) or fit["compare_draws"] < 0:
        problems.append(f"fit.compare_draws: a whole number >= 0 (0 = all draws), got {fit['compare_draws']!r}")
    if "correlation" in grid_raw and len(cnames) < 2:
        problems.append(f"grid.correlation: the instrument {spec.name!r} has one construct, no latent correlation")
    if "group_sd" in grid_raw and not has_groups:
        problems.append(f"grid.group_sd: the instrument {spec.name!r} has no group column, no group level")

    # ---- sbc ----------------------------------------------------------------
    sbc_raw = _optional_table(raw, "sbc", _SBC_KEYS, problems)
    total = (fit["draws"] * fit["chains"]) if _is_int(fit["draws"]) and _is_int(fit["chains"]) else 100
    thin = sbc_raw.get("thin", max(1, math.ceil(total / 100)))
    if not _is_int(thin) or thin < 1:
        problems.append(f"sbc.thin: a whole number >= 1, got {thin!r}")
        thin = 1
    L = len(range(0, total, thin))  # thinned draws per fit; ranks are 0..L
    bins = sbc_raw.get("bins", min(10, L + 1))
    if not _is_int(bins) or not 2 <= bins <= L + 1:
        problems.append(f"sbc.bins: a whole number in [2, {L + 1}] (the thinned draws + 1), got {bins!r}")
        bins = 2
    default_params = [x for x in _default_sbc_parameters(spec, grid) if fit["group"] is not False or "group" not in x]
    params = sbc_raw.get("parameters", default_params)
    if isinstance(params, str):
        params = [params]
    if not isinstance(params, list) or not params or not all(isinstance(x, str) for x in params):
        problems.append(f"sbc.parameters: a list of names like 'loading[0]' or 'eta[0, doi]', got {params!r}")
        params = []
    else:
        for prm in params:
            msg = _check_sbc_parameter(prm, spec, grid)
            if not msg and prm.strip().startswith("group_") and fit["group"] is False:
                msg = "the fits have no group level (fit.group = false)"
            if msg:
                problems.append(f"sbc.parameters: {prm!r}: {msg}")
    sbc = {"parameters": tuple(params), "thin": thin, "bins": bins, "n_draws": L}

    if problems:
        raise StudyError(source, problems)
    rows = list(itertools.product(*(grid[k] for k in known)))
    conditions = pd.DataFrame(rows, columns=list(known))
    conditions.index.name = "condition"
    conditions = conditions[[k for k in known]]
    # condition columns that never vary and carry no meaning for the instrument are kept
    # (a study's table always has the same columns), except the correlation of a
    # one-construct instrument
    if len(cnames) < 2:
        conditions = conditions.drop(columns=["correlation"])
    if not has_groups:
        conditions = conditions.drop(columns=["group_sd"])
    return Study(
        name=name,
        description=description,
        source=source,
        text=text,
        instrument=spec,
        instrument_path=inst_path,
        seed=int(seed),
        replications=int(reps),
        kinds=kinds,
        grid=grid,
        conditions=conditions,
        fit=fit,
        sbc=sbc,
    )


def _default_sbc_parameters(spec: Spec, grid: Mapping[str, tuple]) -> list[str]:
    out = ["loading[0]", "eta[0, 0]"]
    if len(spec.constructs) > 1:
        out.append("corr[0, 1]")
    if spec.group_column is not None and max(grid.get("n_groups", (1,))) > 1 and min(grid.get("n_groups", (1,))) > 1:
        out.append("group_mean[0, 0]")
    return out


def _parse_sbc_parameter(text: str) -> tuple[str, tuple[str | int, ...]]:
    m = _SBC_PARAM_RE.match(text)
    if not m:
        raise ValueError("expected NAME or NAME[i, j] with positions or labels")
    name, inner = m.group(1), m.group(2)
    idx: list[str | int] = []
    if inner is not None and inner.strip():
        for tok in inner.split(","):
            tok = tok.strip().strip("'\"")
            idx.append(int(tok) if re.fullmatch(r"-?\d+", tok) else tok)
    return name, tuple(idx)


def _param_dims(spec: Spec, name: str) -> tuple[str, ...] | None:
    from .measurement import ItemLayout

    lay = ItemLayout.from_spec(spec)
    fam = {"binary_intercept": "binary", "pct_intercept": "percent", "pct_precision": "percent",
           "count_intercept": "count", "count_inv_dispersion": "count", "cont_intercept": "continuous",
           "cont_sigma": "continuous"}
    if name == "loading":
        return ("item",)
    if name == "corr":
        return ("construct", "construct_") if len(lay.constructs) > 1 else None
    if name == "eta":
        return ("firm", "construct")
    if name == "group_mean":
        return ("group", "construct") if spec.group_column else None
    if name == "group_sd":
        return ("construct",) if spec.group_column else None
    if name in fam:
        pre = {"binary": "binary", "percent": "pct", "count": "count", "continuous": "cont"}[fam[name]]
        return (f"{pre}_item",) if lay.family(fam[name]).size else None
    return None


def _dim_labels(spec: Spec, dim: str, n_firms: int = 0, n_groups: int = 0) -> list[str]:
    """Labels of a model dimension in *natural* order (the order of the true arrays:
    simulate's firm and group order, the spec's item and construct order)."""
    from .measurement import ItemLayout

    lay = ItemLayout.from_spec(spec)
    if dim == "item":
        return list(lay.names)
    if dim in ("construct", "construct_"):
        return list(lay.constructs)
    if dim == "firm":
        return [f"S{f + 1:05d}" for f in range(n_firms)]
    if dim == "group":
        return [f"G{g + 1}" for g in range(n_groups)]
    fams = {"binary_item": "binary", "pct_item": "percent", "count_item": "count", "cont_item": "continuous"}
    if dim in fams:
        return [lay.names[k] for k in lay.family(fams[dim])]
    raise KeyError(dim)


def _check_sbc_parameter(text: str, spec: Spec, grid: Mapping[str, tuple]) -> str | None:
    try:
        name, idx = _parse_sbc_parameter(text)
    except ValueError as exc:
        return str(exc)
    if name not in _SBC_NAMES:
        return f"unknown parameter {name!r}; known: {', '.join(_SBC_NAMES)}"
    dims = _param_dims(spec, name)
    if dims is None:
        return f"the instrument {spec.name!r} has no parameter {name!r}"
    if name == "group_mean" or name == "group_sd":
        if min(grid.get("n_groups", (1,))) < 2:
            return "needs n_groups >= 2 in every condition (the fit has no group level otherwise)"
    if len(idx) != len(dims):
        return f"needs {len(dims)} index(es) ({', '.join(dims)}), got {len(idx)}"
    if name == "corr" and idx[0] == idx[1]:
        return "a diagonal element of the correlation matrix is constant 1"
    n_firms = min(grid.get("n_firms", (1,)))
    n_groups = min(grid.get("n_groups", (1,)))
    for d, i in zip(dims, idx):
        labels = _dim_labels(spec, d, n_firms, n_groups)
        if isinstance(i, int):
            if not 0 <= i < len(labels):
                return f"position {i} out of range for {d} (0 to {len(labels) - 1} in every condition)"
        elif i not in labels:
            return f"{i!r} is not a {d} label; labels: {labels[:10]}"
    return None


# ---------------------------------------------------------------------------
# one replication (runs in a worker)
# ---------------------------------------------------------------------------
def replication_seeds(study_seed: int, condition: int, replication: int, design: str = "fixed") -> dict[str, int]:
    """Seeds of one replication from ``SeedSequence([seed, cond, rep])`` (``[..., 1]``
    for the SBC design): ``simulate``, ``fit`` and ``prior`` (SBC parameter draw)."""
    entropy = [int(study_seed), int(condition), int(replication)] + ([1] if design == "sbc" else [])
    s = np.random.SeedSequence(entropy).generate_state(3, dtype=np.uint32)
    return {"simulate": int(s[0]), "fit": int(s[1]), "prior": int(s[2])}


def condition_seed(study_seed: int, condition: int) -> int:
    """Seed of a condition's true parameters (``SeedSequence([seed, cond])``)."""
    return int(np.random.SeedSequence([int(study_seed), int(condition)]).generate_state(1, dtype=np.uint32)[0])


def shift_params(spec: Spec, params: Mapping[str, np.ndarray], shift: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Parameters whose data are those of latent scores shifted by ``shift[construct]``.

    With the latent mean identified at 0, a latent mean shift delta of construct c is
    the same model as moving every item's thresholds: the linear predictor
    ``s_i lambda_i (eta + delta)`` equals ``s_i lambda_i eta + s_i lambda_i delta``, so
    intercepts gain and ordinal cutpoints lose ``s_i lambda_i delta_c(i)``.  The truth
    stays in the fitted model's parameterization (latent mean 0, variance 1).
    """
    from .measurement import ItemLayout

    lay = ItemLayout.from_spec(spec)
    delta = np.array([float(shift.get(c, 0.0)) for c in lay.constructs])
    p = {k: np.array(v, dtype=float, copy=True) for k, v in params.items()}
    if not np.any(delta):
        return p
    d = lay.sign * np.asarray(p["loading"], dtype=float) * delta[lay.construct]  # (I,)
    for K, idx in lay.ordinal_groups().items():
        p[f"cutpoints_{K}"] = p[f"cutpoints_{K}"] - d[idx][:, None]
    for fam, key in (("percent", "pct_intercept"), ("count", "count_intercept"),
                     ("binary", "binary_intercept"), ("continuous", "cont_intercept")):
        idx = lay.family(fam)
        if idx.size:
            p[key] = p[key] + d[idx]
    return p


def true_types(spec: Spec, params: Mapping[str, np.ndarray], eta: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """The true type of every firm: the deterministic method on its true scores.

    True scores are the expected scaled items given the true latent scores ``eta``
    ``(..., F, C)`` and the true item parameters
    (:func:`~smeintl.measurement.expected_scaled`), put on the raw scale and run through
    :func:`~smeintl.indices.index_arrays` and :func:`~smeintl.profiles.type_arrays` --
    the same path as :func:`smeintl.predictive.true_score_items` takes for a posterior
    draw.  Returns ``(codes (..., F), type_names)``.
    """
    from .indices import index_arrays
    from .measurement import ItemLayout, expected_scaled, standardization_of
    from .profiles import type_arrays

    lay = ItemLayout.from_spec(spec)
    V = expected_scaled(params, np.asarray(eta, dtype=float), lay, standardization=standardization_of(lay))
    ind = index_arrays(lay.lo + V * (lay.hi - lay.lo), spec)["indices"]
    ta = type_arrays(ind, spec)
    return np.asarray(ta["type"]), tuple(ta["type_names"])


def _row(task: Task, kind: str, family: str, quantity: str, *, true=np.nan, estimate=np.nan, lo=np.nan,
         hi=np.nan, n=1, error=None, sq_error=None, covered=None, width=None, status="ok", message="") -> dict:
    true, estimate, lo, hi = (float(x) for x in (true, estimate, lo, hi))
    if error is None:
        error = estimate - true
    if sq_error is None:
        sq_error = error**2 if np.isfinite(error) else np.nan
    if width is None:
        width = hi - lo
    if covered is None:
        covered = float(lo <= true <= hi) if np.isfinite(lo) and np.isfinite(hi) and np.isfinite(true) else np.nan
    return {
        "design": task.design,
        "condition": task.condition,
        "replication": task.replication,
        "status": status,
        "kind": kind,
        "family": family,
        "quantity": quantity,
        "true": true,
        "estimate": estimate,
        "error": float(error),
        "sq_error": float(sq_error),
        "lo": lo,
        "hi": hi,
        "width": float(width),
        "covered": float(covered),
        "n": int(n),
        "message": message,
    }


def _quiet() -> None:
    import logging

    import pymc  # noqa: F401 - importing pymc sets its logger's level: set ours after

    for name in ("pymc", "pytensor", "pytensor.tensor.blas", "arviz", "numba", "nutpie"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.simplefilter("ignore")


def _fit(study: Study, survey, n_groups: int, seed: int):
    from .measurement import MeasurementModel

    f = study.fit
    model = MeasurementModel(study.instrument, group=bool(f["group"]) and n_groups > 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(
            survey,
            draws=f["draws"],
            tune=f["tune"],
            chains=f["chains"],
            random_seed=seed,
            sampler=f["sampler"],
            target_accept=f["target_accept"],
            cores=1,
            progressbar=False,
            log_likelihood=False,
            posterior_predictive=False,
        )


def _diagnostic_rows(task: Task, idata) -> list[dict]:
    from .measurement import fit_diagnostics

    d = fit_diagnostics(idata)
    vals = {
        "max_rhat": d.max_rhat,
        "min_ess_bulk": d.min_ess_bulk,
        "min_ess_tail": d.min_ess_tail,
        "divergences": d.divergences,
        "failed": float(d.failed),
    }
    return [_row(task, "diagnostics", "diagnostics", k, estimate=v, error=np.nan) for k, v in vals.items()]


def _posterior_array(idata, name: str) -> np.ndarray:
    a = idata.posterior[name].values
    return a.reshape((-1,) + a.shape[2:])


def _natural_index(idata, name: str, spec: Spec, n_firms: int, n_groups: int):
    """For a posterior variable, per dim: (labels in posterior order, natural positions)."""
    da = idata.posterior[name]
    out = []
    for d in da.dims[2:]:
        labels = [str(x) for x in da.coords[d].values]
        nat = _dim_labels(spec, d, n_firms, n_groups)
        out.append((d, labels, [nat.index(lb) for lb in labels]))
    return out


def _recovery_rows(task: Task, study: Study, idata, params: Mapping[str, np.ndarray], eta: np.ndarray,
                   n_firms: int, n_groups: int) -> list[dict]:
    spec = study.instrument
    qlo, qhi = (1 - PROB) / 2, (1 + PROB) / 2
    rows: list[dict] = []

    def elementwise(name: str, family: str, true: np.ndarray, keep=None):
        post = _posterior_array(idata, name)
        d_info = _natural_index(idata, name, spec, n_firms, n_groups)
        for pos in itertools.product(*(range(len(lbl)) for _d, lbl, _n in d_info)):
            labels = [d_info[k][1][p] for k, p in enumerate(pos)]
            nat = tuple(d_info[k][2][p] for k, p in enumerate(pos))
            if keep is not None and not keep(nat):
                continue
            v = post[(slice(None),) + tuple(pos)]
            lo, hi = np.quantile(v, [qlo, qhi])
            rows.append(_row(task, "recovery", family, f"{name}[{','.join(labels)}]", true=true[nat],
                             estimate=v.mean(), lo=lo, hi=hi))

    elementwise("loading", "loading", np.asarray(params["loading"], dtype=float))
    if "corr" in idata.posterior and "corr" in params:
        elementwise("corr", "corr", np.asarray(params["corr"], dtype=float), keep=lambda nat: nat[0] < nat[1])
    if "group_mean" in idata.posterior and "group_mean" in params:
        elementwise("group_mean", "group_mean", np.asarray(params["group_mean"], dtype=float))
    # latent scores: one row per construct, aggregated over the firms
    post = _posterior_array(idata, "eta")  # (S, F, C) in posterior firm order
    d_info = _natural_index(idata, "eta", spec, n_firms, n_groups)
    firm_nat = np.asarray(d_info[0][2])
    cons_nat = np.asarray(d_info[1][2])
    T = np.asarray(eta, dtype=float)[np.ix_(firm_nat, cons_nat)]  # (F, C) aligned with post
    m = post.mean(0)
    lo, hi = np.quantile(post, [qlo, qhi], axis=0)
    for j, cname in enumerate(d_info[1][1]):
        e = m[:, j] - T[:, j]
        cov = (lo[:, j] <= T[:, j]) & (T[:, j] <= hi[:, j])
        rows.append(_row(task, "recovery", "eta", f"eta[{cname}]", true=T[:, j].mean(), estimate=m[:, j].mean(),
                         lo=lo[:, j].mean(), hi=hi[:, j].mean(), n=T.shape[0], error=e.mean(),
                         sq_error=(e**2).mean(), covered=cov.mean(), width=(hi[:, j] - lo[:, j]).mean()))
    return rows


def _brier(P: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """Mean multi-class Brier score over the rows of ``P`` (F, K) without NaN."""
    ok = np.isfinite(P).all(axis=1) & (truth >= 0)
    if not ok.any():
        return float("nan"), 0
    onehot = np.eye(P.shape[1])[truth[ok]]
    return float(((P[ok] - onehot) ** 2).sum(axis=1).mean()), int(ok.sum())


def _comparison_rows(task: Task, study: Study, idata, survey, params, eta, seed: int) -> list[dict]:
    from .predictive import cohens_kappa, compare

    spec = study.instrument
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = compare(idata, survey, spec, prob=PROB, max_draws=study.fit["compare_draws"] or None,
                       random_seed=seed)
    names = tuple(comp.type_names)
    K = len(names)
    truth, tnames = true_types(spec, params, eta)
    if tuple(tnames) != names:  # pragma: no cover - same spec on both sides
        raise RuntimeError(f"type names differ: {tnames} vs {names}")
    # survey firm order == simulate order; map by id to be safe
    pos = pd.Index([f"S{f + 1:05d}" for f in range(len(truth))]).get_indexer(list(comp.firm_ids))
    truth = truth[pos]
    F = truth.size
    ft = comp.firm_types

    def codes(col) -> np.ndarray:
        lookup = {n: k for k, n in enumerate(names)}
        return np.array([lookup.get(str(v), -1) if not pd.isna(v) else -1 for v in ft[col]], dtype=int)

    det = codes("deterministic_type")
    modal = codes("modal_type")
    modal_rep = codes("modal_type_rep")
    rows: list[dict] = []
    for q, c in (("deterministic", det), ("modal_true_score", modal), ("modal_replicated", modal_rep)):
        rows.append(_row(task, "comparison", "type_recovery", q,  estimate=float((c == truth).mean()),
                         n=F, error=np.nan))
        rows.append(_row(task, "comparison", "kappa", q, 
                         estimate=float(cohens_kappa(c, truth, K)), n=F, error=np.nan))
    rows.append(_row(task, "comparison", "typed", "deterministic",  estimate=float((det >= 0).mean()),
                     n=F, error=np.nan))
    P_true = ft[[f"p_{t}" for t in names]].to_numpy(dtype=float)
    P_rep = ft[[f"p_{t}_rep" for t in names]].to_numpy(dtype=float)
    P_det = np.where((det >= 0)[:, None], np.eye(K)[np.maximum(det, 0)], np.nan)
    for q, P in (("true_score", P_true), ("replicated", P_rep), ("deterministic", P_det)):
        b, n = _brier(P, truth)
        rows.append(_row(task, "comparison", "brier", q, estimate=b, n=n, error=np.nan))
    # type shares: truth vs posterior (true-score draws) and deterministic
    S = comp.true_types  # (S, F)
    typed_det = max(int((det >= 0).sum()), 1)
    for k, t in enumerate(names):
        share_true = float((truth == k).mean())
        draws = (S == k).mean(axis=1)
        lo, hi = np.quantile(draws, [(1 - PROB) / 2, (1 + PROB) / 2])
        rows.append(_row(task, "comparison", "type_share_posterior", f"share[{t}]", true=share_true,
                         estimate=draws.mean(), lo=lo, hi=hi, n=F))
        rows.append(_row(task, "comparison", "type_share_deterministic", f"share[{t}]", true=share_true,
                         estimate=float((det == k).sum() / typed_det), n=int((det >= 0).sum())))
    # reliability of the posterior type probabilities (one-vs-rest over every type)
    for fam, P in (("reliability_true_score", P_true), ("reliability_replicated", P_rep)):
        ok = np.isfinite(P).all(axis=1)
        p = P[ok].ravel()
        y = (np.arange(K)[None, :] == truth[ok][:, None]).ravel().astype(float)
        b = np.minimum((p * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
        for j in range(RELIABILITY_BINS):
            m = b == j
            nn = int(m.sum())
            rows.append(_row(task, "comparison", fam, f"bin{j:02d}", true=y[m].mean() if nn else np.nan,
                             estimate=p[m].mean() if nn else np.nan, n=nn, error=np.nan, covered=np.nan))
    return rows


def _sbc_rows(task: Task, study: Study, idata, params, eta, n_firms: int, n_groups: int) -> list[dict]:
    thin = int(study.sbc["thin"])
    spec = study.instrument
    rows = []
    for text in study.sbc["parameters"]:
        name, idx = _parse_sbc_parameter(text)
        dims = _param_dims(spec, name)
        true_arr = np.asarray(eta if name == "eta" else params[name], dtype=float)
        da = idata.posterior[name]
        sel = {}
        nat = []
        labels = []
        for d, i in zip(dims, idx):
            natural = _dim_labels(spec, d, n_firms, n_groups)
            label = natural[i] if isinstance(i, int) else i
            sel[d] = label
            nat.append(natural.index(label))
            labels.append(label)
        draws = np.asarray(da.sel(sel).values, dtype=float)  # (chain, draw)
        draws = draws.reshape(-1)[::thin]  # chain-major, then thinned
        true = float(true_arr[tuple(nat)])
        rank = int((draws < true).sum())
        q = f"{name}[{','.join(map(str, labels))}]"
        rows.append(_row(task, "sbc", name, q, true=true, estimate=float(rank), lo=0.0, hi=float(draws.size),
                         n=int(draws.size), error=np.nan, covered=np.nan, width=np.nan))
    return rows


def _replication_rows(study: Study, task: Task) -> list[dict]:
    """The rows of one replication (raises on failure)."""
    from .simulate import prior_params, simulate_survey, typical_params

    _quiet()
    cond = study.condition(task.condition)
    spec = study.instrument
    seeds = replication_seeds(study.seed, task.condition, task.replication, task.design)
    n_firms, n_groups, missing = int(cond["n_firms"]), int(cond["n_groups"]), float(cond["missing"])
    use_groups = spec.group_column is not None and n_groups > 1
    if task.design == "fixed":
        p = typical_params(
            spec,
            n_groups=n_groups if use_groups else 0,
            loading=cond["loading"],
            correlation=cond.get("correlation", 0.0),
            group_sd=cond.get("group_sd", 0.0),
            random_seed=condition_seed(study.seed, task.condition),
        )
        p = shift_params(spec, p, {c: cond.get(f"shift_{c}", 0.0) for c in spec.construct_names})
    else:
        p = prior_params(spec, n_groups=n_groups if use_groups else 1, random_seed=seeds["prior"])
        if not (use_groups and study.fit["group"]):
            p.pop("group_mean", None)
            p.pop("group_sd", None)
    sim = simulate_survey(spec, n_firms, p, n_groups=n_groups, missing=missing, random_seed=seeds["simulate"],
                          outcome=False)
    idata = _fit(study, sim.survey, n_groups, seeds["fit"])
    rows = _diagnostic_rows(task, idata)
    if task.design == "fixed":
        if "recovery" in study.kinds:
            rows += _recovery_rows(task, study, idata, sim.params, sim.eta, n_firms, n_groups)
        if "comparison" in study.kinds:
            rows += _comparison_rows(task, study, idata, sim.survey, sim.params, sim.eta, seeds["fit"])
    else:
        rows += _sbc_rows(task, study, idata, sim.params, sim.eta, n_firms, n_groups)
    return rows


def run_replication(study: Study, task: Task) -> dict[str, Any]:
    """Run one replication and return ``{"task", "rows", "meta"}``, or ``{"task",
    "error", "traceback", "meta"}`` when it failed.  Writes nothing (the client does)."""
    import platform

    t0 = time.perf_counter()
    meta = {"host": platform.node(), "pid": os.getpid()}
    try:
        rows = _replication_rows(study, task)
    except Exception as exc:  # noqa: BLE001 - a failed replication is recorded, not raised
        meta["seconds"] = time.perf_counter() - t0
        return {"task": task, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "meta": meta}
    meta["seconds"] = time.perf_counter() - t0
    return {"task": task, "rows": rows, "meta": meta}


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _rows_csv(rows: list[dict]) -> str:
    df = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return df.to_csv(index=False, lineterminator="\n")


def _write_result(out: Path, result: Mapping[str, Any]) -> str:
    """Write a worker's result into ``out/reps``; returns 'ok' or 'failed'."""
    task: Task = result["task"]
    reps = out / "reps"
    meta = dict(result.get("meta", {}))
    meta.update({"task": task.name, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if "rows" in result:
        meta["status"] = "ok"
        _atomic_write(reps / f"{task.name}.meta.json", json.dumps(meta, default=str) + "\n")
        _atomic_write(reps / f"{task.name}.csv", _rows_csv(result["rows"]))
        err = reps / f"{task.name}.error.json"
        if err.exists():
            err.unlink()
        return "ok"
    meta["status"] = "failed"
    _atomic_write(reps / f"{task.name}.meta.json", json.dumps(meta, default=str) + "\n")
    payload = {"task": task.name, "error": result.get("error", ""), "traceback": result.get("traceback", ""),
               **{k: v for k, v in meta.items() if k not in ("task",)}}
    _atomic_write(reps / f"{task.name}.error.json", json.dumps(payload, indent=2, default=str) + "\n")
    return "failed"


def _prepare_out(study: Study, out: Path) -> None:
    """Create the folder, or check that it holds results of this very study."""
    info_path = out / "study.json"
    if out.exists() and any(out.iterdir()):
        if not info_path.exists():
            raise StudyError(str(out), [
                "the output folder exists, is not empty and is not a study folder (no study.json); "
                "choose another --out"], what="cannot use output folder")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StudyError(str(out), [f"study.json is unreadable ({exc})"], what="cannot use output folder") from None
        if info.get("hash") != study.hash:
            raise StudyError(str(out), [
                f"it holds results of another study configuration (hash {str(info.get('hash'))[:12]}, "
                f"study {info.get('source')!r}); {study.source} has hash {study.hash[:12]}. Seed, grid, kinds, "
                "fit and sbc settings and the instrument must be unchanged to resume (only replications may "
                "grow); choose another --out"], what="cannot resume in output folder")
    (out / "reps").mkdir(parents=True, exist_ok=True)
    for tmp in (out / "reps").glob(".*.tmp"):  # left by an interrupted run
        tmp.unlink()
    from .measurement import versions

    info = {
        "name": study.name,
        "description": study.description,
        "source": study.source,
        "instrument": study.instrument_path,
        "instrument_hash": study.instrument.hash,
        "hash": study.hash,
        "seed": study.seed,
        "replications": study.replications,
        "kinds": list(study.kinds),
        "n_conditions": int(len(study.conditions)),
        "n_tasks": len(study.tasks()),
        "config": study.config(),
        "versions": versions(),
    }
    _atomic_write(info_path, json.dumps(info, indent=2, default=str) + "\n")
    _atomic_write(out / "study.toml", study.text)
    _atomic_write(out / "instrument.toml", study.instrument.text)


def finished_tasks(study: Study, out: Path) -> set[Task]:
    """The tasks of ``study`` with a replication file in ``out/reps``."""
    have = set()
    reps = Path(out) / "reps"
    if not reps.exists():
        return have
    wanted = set(study.tasks())
    for p in reps.iterdir():
        m = _REP_RE.match(p.name)
        if m:
            t = Task(m.group(1), int(m.group(2)), int(m.group(3)))
            if t in wanted:
                have.add(t)
    return have


# ---------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------
@dataclass
class StudyRun:
    """What :func:`run_study` did and wrote."""

    out: Path
    n_tasks: int
    n_skipped: int
    n_run: int
    n_failed: int
    failed: list[str] = field(default_factory=list)
    results: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    sbc_uniformity: pd.DataFrame | None = None
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        lines = [
            f"study folder {self.out}: {self.n_tasks} replication(s); {self.n_skipped} already finished "
            f"(skipped), {self.n_run} run now, {self.n_failed} failed ({self.seconds:.1f} s)",
        ]
        for f in self.failed[:20]:
            lines.append(f"  FAILED {f}")
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more (see reps/*.error.json)")
        if self.sbc_uniformity is not None and len(self.sbc_uniformity):
            lines.append("SBC uniformity (chi-square on binned ranks):")
            for r in self.sbc_uniformity.itertuples(index=False):
                lines.append(f"  c{r.condition} {r.quantity}: chi2 = {r.chi2:.2f} (df {r.df}), p = {r.p_value:.3g}, "
                             f"{r.n_ranks} ranks")
        lines.append(f"wrote {self.out / 'results.csv'} and {self.out / 'summary.csv'}")
        return "\n".join(lines)


def _check_workers(client, study: Study) -> None:
    """Every worker must import smeintl (the replications run there)."""
    import importlib.metadata as md

    try:
        got = client.run(md.version, "smeintl")
    except Exception as exc:  # noqa: BLE001
        raise StudyError(str(getattr(client, "scheduler", None) and client.scheduler.address), [
            f"a worker cannot import smeintl ({type(exc).__name__}: {exc}); install the same smeintl, PyMC "
            "and NumPy on every worker"], what="cannot run on cluster") from None
    mine = md.version("smeintl")
    other = {v for v in got.values() if v != mine}
    if other:
        warnings.warn(f"workers run smeintl {sorted(other)}, this process {mine}: results may differ", stacklevel=2)


def run_study(
    study: Study | str | Path,
    out: str | Path | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client=None,
    progress: bool = True,
    retry_failed: bool = True,
    figures: bool = True,
    connect_timeout: float = 30.0,
) -> StudyRun:
    """Run every unfinished replication of ``study`` and write the tables into ``out``.

    ``out`` defaults to ``reports/study-<name>``.  Replications already finished there
    (``reps/*.csv``) are skipped; failed ones (``*.error.json``) are retried unless
    ``retry_failed=False``.  Execution: ``client`` (a ``dask.distributed.Client``) if
    given; else the Dask scheduler at ``scheduler`` (``tcp://host:port``); else a
    ``LocalCluster`` of ``workers`` single-threaded processes (default: the number of
    cores) on 127.0.0.1, closed at the end.  A progress bar (tqdm, on stderr) counts
    finished replications.  The tables are rebuilt from the replication files at the
    end (:func:`collect`), also when nothing was left to run.  ``connect_timeout``:
    seconds to wait for the scheduler.
    """
    t0 = time.perf_counter()
    if not isinstance(study, Study):
        study = load_study(study)
    out = Path(out) if out is not None else Path("reports") / f"study-{study.name}"
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise StudyError(study.source, [f"--workers: a whole number >= 1, got {workers!r}"], what="invalid option for")
    if scheduler and workers is not None:
        raise StudyError(study.source, ["--workers applies to the local cluster; with --scheduler the cluster's "
                                        "own workers run the replications"], what="invalid options for")
    _prepare_out(study, out)
    tasks = study.tasks()
    done = finished_tasks(study, out)
    reps = out / "reps"
    pending = [t for t in tasks if t not in done]
    if not retry_failed:
        pending = [t for t in pending if not (reps / f"{t.name}.error.json").exists()]
    n_run = n_failed = 0
    failed: list[str] = []
    if pending:
        n_run, n_failed, failed = _execute(study, out, pending, len(tasks), len(done), scheduler=scheduler,
                                           workers=workers, client=client, progress=progress,
                                           connect_timeout=connect_timeout)
    res = collect(study, out, figures=figures)
    res.n_tasks, res.n_skipped, res.n_run, res.n_failed, res.failed = len(tasks), len(done), n_run, n_failed, failed
    res.seconds = time.perf_counter() - t0
    return res


def _execute(study, out, pending, n_total, n_done, *, scheduler, workers, client, progress, connect_timeout):
    import logging

    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    cluster = None
    own_client = client is None
    if client is None:
        if scheduler:
            try:
                client = Client(scheduler, timeout=f"{float(connect_timeout)}s")
            except Exception as exc:  # noqa: BLE001
                raise StudyError(str(scheduler), [f"cannot connect to the Dask scheduler ({type(exc).__name__}: {exc})"],
                                 what="cannot run on") from None
        else:
            n = min(workers or os.cpu_count() or 1, len(pending))
            with warnings.catch_warnings():
                # the scheduler's HTTP server falls back to a free port when 8787 is taken
                warnings.filterwarnings("ignore", message=".*already in use", category=UserWarning)
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    n_run = n_failed = 0
    failed: list[str] = []
    futures = []
    try:
        _check_workers(client, study)
        study_f = client.scatter(study, broadcast=True, hash=False)
        futures = [
            client.submit(run_replication, study_f, t, key=f"smeintl-study-{study.hash[:16]}-{t.name}", pure=False,
                          retries=0)
            for t in pending
        ]
        by_key = {f.key: t for f, t in zip(futures, pending)}
        bar = tqdm(total=n_total, initial=n_done, desc=f"study {study.name}", unit="rep", disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        try:
            for fut in as_completed(futures):
                t = by_key[fut.key]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. the worker died (KilledWorker)
                    result = {"task": t, "error": f"{type(exc).__name__}: {exc}",
                              "traceback": "".join(traceback.format_exception(exc)), "meta": {}}
                status = _write_result(out, result)
                n_run += 1
                if status == "failed":
                    n_failed += 1
                    failed.append(f"{t.name}: {result.get('error', '')}")
                    bar.set_postfix(failed=n_failed)
                bar.update(1)
                fut.release()
        finally:
            bar.close()
    finally:
        for f in futures:
            if not f.done():
                f.cancel()
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    return n_run, n_failed, failed


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------
#: pandas >= 3 parses floats exactly by default (and deprecates the option)
_ROUND_TRIP = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def _read_rep(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, **_ROUND_TRIP, keep_default_na=False, na_values=[""],
                     dtype={"design": str, "status": str, "kind": str, "family": str, "quantity": str,
                            "message": str})
    df["message"] = df["message"].fillna("")
    return df


def _load_results(study: Study, out: Path) -> pd.DataFrame:
    reps = out / "reps"
    frames = []
    done = finished_tasks(study, out)
    for t in sorted(done, key=lambda t: (t.design, t.condition, t.replication)):
        frames.append(_read_rep(reps / f"{t.name}.csv"))
    for t in study.tasks():
        if t in done:
            continue
        err = reps / f"{t.name}.error.json"
        if err.exists():
            try:
                msg = json.loads(err.read_text(encoding="utf-8")).get("error", "")
            except (OSError, ValueError):
                msg = "unreadable error file"
            frames.append(pd.DataFrame([{**{c: np.nan for c in RESULT_COLUMNS}, "design": t.design,
                                         "condition": t.condition, "replication": t.replication,
                                         "status": "failed", "kind": "", "family": "", "quantity": "",
                                         "n": 0, "message": str(msg).splitlines()[0][:500] if msg else ""}]))
    if not frames:
        df = pd.DataFrame(columns=list(RESULT_COLUMNS))
    else:
        df = pd.concat([f.astype({"message": str}) for f in frames], ignore_index=True)
    df["design"] = df["design"].astype(str)
    for c in ("kind", "family", "quantity", "message", "status"):
        df[c] = df[c].fillna("").astype(str)
    df["condition"] = df["condition"].astype(int)
    df["replication"] = df["replication"].astype(int)
    df["n"] = df["n"].fillna(0).astype(int)
    df["_d"] = df["design"].map({d: k for k, d in enumerate(DESIGNS)})
    df = df.sort_values(["_d", "condition", "replication", "kind", "family", "quantity"], kind="mergesort")
    df = df.drop(columns="_d").reset_index(drop=True)
    cond = study.conditions.reset_index()
    df = df.merge(cond, on="condition", how="left", sort=False)
    cols = ["design", "condition", "replication", *study.condition_columns,
            *[c for c in RESULT_COLUMNS if c not in ("design", "condition", "replication")]]
    return df[cols]


def summarize(results: pd.DataFrame, study: Study) -> pd.DataFrame:
    """Per condition, kind, family and quantity (and ``(all)`` per family): the number of
    replications, mean true value and estimate, bias (mean error) with its Monte Carlo
    SE, RMSE (root mean squared error), coverage of the 90% intervals and mean width.
    Reliability rows pool the firms of every replication (weights ``n``).  SBC rows are
    summarized by :func:`sbc_uniformity` instead."""
    ok = results[(results.status == "ok") & (results.design == "fixed")]
    rows = []
    for (c, kind, fam), g in ok.groupby(["condition", "kind", "family"], sort=True):
        levels = [(q, gg) for q, gg in g.groupby("quantity", sort=True)]
        if kind in ("recovery",) or fam.startswith("type_share"):
            levels.append(("(all)", g))
        for q, gg in levels:
            R = gg.replication.nunique()
            if fam.startswith("reliability"):
                w = gg.n.to_numpy(dtype=float)
                m = w > 0
                tot = w[m].sum()
                est = float((gg.estimate.to_numpy()[m] * w[m]).sum() / tot) if tot else np.nan
                tru = float((gg["true"].to_numpy()[m] * w[m]).sum() / tot) if tot else np.nan
                rows.append({"condition": c, "kind": kind, "family": fam, "quantity": q, "n_reps": R,
                             "n": int(tot), "true": tru, "estimate": est, "bias": est - tru if tot else np.nan,
                             "bias_mcse": np.nan, "rmse": np.nan, "coverage90": np.nan, "coverage_mcse": np.nan,
                             "width": np.nan, "estimate_mcse": np.nan})
                continue
            per_rep = gg.groupby("replication")
            err_rep = per_rep["error"].mean()
            cov_rep = per_rep["covered"].mean()
            est_rep = per_rep["estimate"].mean()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                cov = float(gg.covered.mean()) if gg.covered.notna().any() else np.nan
                rows.append({
                    "condition": c, "kind": kind, "family": fam, "quantity": q, "n_reps": R,
                    "n": int(gg.n.sum()),
                    "true": float(gg["true"].mean()) if gg["true"].notna().any() else np.nan,
                    "estimate": float(gg.estimate.mean()),
                    "bias": float(gg.error.mean()) if gg.error.notna().any() else np.nan,
                    "bias_mcse": float(err_rep.std(ddof=1) / np.sqrt(R)) if R > 1 and err_rep.notna().any() else np.nan,
                    "rmse": float(np.sqrt(gg.sq_error.mean())) if gg.sq_error.notna().any() else np.nan,
                    "coverage90": cov,
                    "coverage_mcse": float(cov_rep.std(ddof=1) / np.sqrt(R)) if R > 1 and np.isfinite(cov) else np.nan,
                    "width": float(gg.width.mean()) if gg.width.notna().any() else np.nan,
                    "estimate_mcse": float(est_rep.std(ddof=1) / np.sqrt(R)) if R > 1 else np.nan,
                })
    cols = ["condition", "kind", "family", "quantity", "n_reps", "n", "true", "estimate", "estimate_mcse", "bias",
            "bias_mcse", "rmse", "coverage90", "coverage_mcse", "width"]
    df = pd.DataFrame(rows, columns=cols)
    cond = study.conditions.reset_index()
    df = df.merge(cond, on="condition", how="left", sort=False)
    return df[["condition", *study.condition_columns, *cols[1:]]]


def sbc_uniformity(results: pd.DataFrame, bins: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SBC ranks and the chi-square test of their uniformity.

    Ranks ``r`` in ``0..L`` (``L`` thinned draws) are uniform under a calibrated
    model.  They are binned into ``bins`` bins by ``floor(r * bins / (L + 1))``; the
    expected count of each bin is the number of rank values it holds times
    ``n / (L + 1)``, and Pearson's chi-square with ``bins - 1`` degrees of freedom gives
    the p-value.  Returns ``(ranks, uniformity)``: one row per replication and
    parameter, and per SBC condition and parameter (``chi2``, ``df``, ``p_value``,
    ``n_ranks``, ``L``, ``bins``, ``mean_rank_fraction``).
    """
    from scipy import stats

    s = results[(results.design == "sbc") & (results.status == "ok") & (results.kind == "sbc")]
    ranks = pd.DataFrame({
        "condition": s.condition.astype(int), "replication": s.replication.astype(int), "quantity": s.quantity,
        "true": s["true"], "rank": s.estimate.astype(int), "L": s.n.astype(int),
    }).reset_index(drop=True)
    rows = []
    for (c, q), g in ranks.groupby(["condition", "quantity"], sort=True):
        L = int(g.L.iloc[0])
        r = g["rank"].to_numpy()
        B = int(min(bins, L + 1))
        which = (r * B) // (L + 1)
        obs = np.bincount(which, minlength=B).astype(float)
        per_bin = np.bincount((np.arange(L + 1) * B) // (L + 1), minlength=B).astype(float)
        exp = per_bin * len(r) / (L + 1)
        chi2 = float(((obs - exp) ** 2 / exp).sum())
        p = float(stats.chi2.sf(chi2, B - 1))
        rows.append({"condition": int(c), "quantity": q, "n_ranks": int(len(r)), "L": L, "bins": B, "chi2": chi2,
                     "df": B - 1, "p_value": p, "mean_rank_fraction": float((r / L).mean()) if L else np.nan})
    uni = pd.DataFrame(rows, columns=["condition", "quantity", "n_ranks", "L", "bins", "chi2", "df", "p_value",
                                      "mean_rank_fraction"])
    return ranks, uni


def collect(study: Study | str | Path, out: str | Path, *, figures: bool = True) -> StudyRun:
    """(Re)build ``results.csv``, ``summary.csv``, ``conditions.csv``, ``timings.csv``,
    the SBC tables and the figures from the replication files in ``out/reps``."""
    if not isinstance(study, Study):
        study = load_study(study)
    out = Path(out)
    results = _load_results(study, out)
    files = []

    def write(name: str, df: pd.DataFrame) -> None:
        p = out / name
        _atomic_write(p, df.to_csv(index=False, lineterminator="\n"))
        files.append(p)

    write("results.csv", results)
    summary = summarize(results, study)
    write("summary.csv", summary)
    # per condition bookkeeping
    cond = study.conditions.reset_index()
    status = []
    for c in cond.condition:
        row = {"condition": int(c), "label": study.condition_label(int(c))}
        for d in study.designs:
            if d == "sbc" and int(c) not in study.sbc_conditions():
                continue
            sub = results[(results.design == d) & (results.condition == c)]
            ok = sub[sub.status == "ok"].replication.nunique()
            bad = sub[sub.status == "failed"].replication.nunique()
            row[f"{d}_ok"] = int(ok)
            row[f"{d}_failed"] = int(bad)
            row[f"{d}_pending"] = int(study.replications - ok - bad)
        status.append(row)
    write("conditions.csv", cond.merge(pd.DataFrame(status), on="condition", how="left"))
    # timings (not deterministic: a separate file)
    trows = []
    for p in sorted((out / "reps").glob("*.meta.json")):
        try:
            trows.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    write("timings.csv", pd.DataFrame(trows, columns=["task", "status", "seconds", "host", "pid", "finished"]))
    uni = None
    if "sbc" in study.kinds:
        ranks, uni = sbc_uniformity(results, int(study.sbc["bins"]))
        write("sbc_ranks.csv", ranks)
        write("sbc_uniformity.csv", uni)
    if figures:
        try:
            files += _figures(study, out, results, summary, uni)
        except Exception as exc:  # noqa: BLE001 - figures never fail a study
            warnings.warn(f"figures not written: {type(exc).__name__}: {exc}", stacklevel=2)
    failed = results[results.status == "failed"]
    return StudyRun(out=out, n_tasks=len(study.tasks()), n_skipped=0, n_run=0,
                    n_failed=int(failed[["design", "condition", "replication"]].drop_duplicates().shape[0]),
                    failed=[f"{d}-c{c:03d}-r{r:04d}: {m}" for d, c, r, m in
                            failed[["design", "condition", "replication", "message"]].itertuples(index=False)],
                    results=results, summary=summary, sbc_uniformity=uni, files=files)


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------
def _figures(study: Study, out: Path, results: pd.DataFrame, summary: pd.DataFrame, uni) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figdir = out / "figures"
    figdir.mkdir(exist_ok=True)
    paths: list[Path] = []

    def save(fig, name):
        p = figdir / name
        tmp = figdir / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        plt.close(fig)
        os.replace(tmp, p)
        paths.append(p)

    conds = sorted(summary.condition.unique()) if len(summary) else []
    labels = [study.condition_label(int(c)) for c in conds]
    rec = summary[(summary.kind == "recovery") & (summary.quantity == "(all)")]
    if len(rec):
        fams = [f for f in ("loading", "corr", "group_mean", "eta") if f in set(rec.family)]
        fig, axes = plt.subplots(1, 3, figsize=(14, 0.5 * len(conds) + 2.5), sharey=True)
        y = np.arange(len(conds))
        for k, fam in enumerate(fams):
            g = rec[rec.family == fam].set_index("condition").reindex(conds)
            off = (k - (len(fams) - 1) / 2) * 0.8 / max(len(fams), 1)
            for ax, col in zip(axes, ("bias", "rmse", "coverage90")):
                ax.barh(y + off, g[col].to_numpy(dtype=float), height=0.8 / max(len(fams), 1), label=fam)
        axes[0].axvline(0, color="k", lw=0.8)
        axes[2].axvline(PROB, color="k", lw=0.8, ls="--")
        for ax, t in zip(axes, ("bias", "RMSE", "coverage of 90% intervals")):
            ax.set_title(t)
        axes[0].set_yticks(y, labels)
        axes[0].invert_yaxis()
        handles, labs = axes[0].get_legend_handles_labels()
        fig.legend(handles, labs, loc="lower center", ncol=len(fams), fontsize=8, bbox_to_anchor=(0.5, -0.02))
        fig.suptitle(f"Parameter recovery: {study.name}", y=1.03)
        fig.subplots_adjust(bottom=0.18)
        save(fig, "recovery.png")
    comp = summary[summary.kind == "comparison"]
    if len(comp):
        fig, axes = plt.subplots(1, 2, figsize=(13, 0.5 * len(conds) + 2.5), sharey=True)
        y = np.arange(len(conds))
        for fam, ax, qs in (("type_recovery", axes[0], ("deterministic", "modal_true_score", "modal_replicated")),
                            ("brier", axes[1], ("deterministic", "true_score", "replicated"))):
            g = comp[comp.family == fam]
            for k, q in enumerate(qs):
                v = g[g.quantity == q].set_index("condition").reindex(conds).estimate.to_numpy(dtype=float)
                ax.barh(y + (k - 1) * 0.27, v, height=0.27, label=q)
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
        axes[0].set_title("share of firms typed as their true type")
        axes[1].set_title("Brier score of the type probabilities (lower is better)")
        axes[0].set_yticks(y, labels)
        axes[0].invert_yaxis()
        save(fig, "type_recovery.png")
        rel = comp[comp.family.str.startswith("reliability")]
        if len(rel):
            fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
            for ax, fam in zip(axes, ("reliability_true_score", "reliability_replicated")):
                g = rel[rel.family == fam]
                for c in conds:
                    gc = g[(g.condition == c) & (g.n > 0)].sort_values("quantity")
                    ax.plot(gc.estimate, gc["true"], marker="o", label=study.condition_label(int(c)))
                ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
                ax.set_xlabel("posterior type probability (bin mean)")
                ax.set_title(fam.replace("reliability_", "reliability: "))
            axes[0].set_ylabel("observed share of the true type")
            axes[1].legend(fontsize=7)
            save(fig, "reliability.png")
    if uni is not None and len(uni):
        ranks = pd.read_csv(out / "sbc_ranks.csv")
        from scipy import stats

        for c, gc in ranks.groupby("condition"):
            qs = sorted(gc.quantity.unique())
            fig, axes = plt.subplots(1, len(qs), figsize=(3.6 * len(qs), 3.2), squeeze=False)
            for ax, q in zip(axes[0], qs):
                g = gc[gc.quantity == q]
                L = int(g.L.iloc[0])
                B = int(min(study.sbc["bins"], L + 1))
                which = (g["rank"].to_numpy() * B) // (L + 1)
                counts = np.bincount(which, minlength=B)
                per_bin = np.bincount((np.arange(L + 1) * B) // (L + 1), minlength=B)
                exp = per_bin * len(g) / (L + 1)
                lo = stats.binom.ppf(0.005, len(g), per_bin / (L + 1))
                hi = stats.binom.ppf(0.995, len(g), per_bin / (L + 1))
                edges = np.arange(B + 1) - 0.5
                ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color="grey",
                                alpha=0.25, zorder=1)
                ax.bar(np.arange(B), counts, width=0.8, color="tab:blue", alpha=0.85, zorder=2)
                ax.stairs(exp, edges, baseline=None, color="k", lw=0.8, zorder=3)
                ax.set_xticks(np.arange(B))
                p = uni[(uni.condition == c) & (uni.quantity == q)].p_value
                ax.set_title(f"{q}\nchi2 p = {float(p.iloc[0]):.3g}", fontsize=9)
                ax.set_xlabel("rank bin")
            fig.suptitle(f"SBC rank histograms, {study.condition_label(int(c))} (grey: 99% band per bin under "
                         "uniform ranks)", fontsize=10, y=1.06)
            save(fig, f"sbc_ranks_c{int(c):03d}.png")
    return paths


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def add_study_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of ``smeintl study`` to a parser (for the main CLI)."""
    p.add_argument("study", help="study file (TOML), e.g. models/study_example.toml")
    p.add_argument("--out", default=None, help="output folder (default reports/study-<name>); an existing "
                   "folder of the same study is resumed")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a Dask scheduler (tcp://host:8786); default: a local cluster")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: the number of cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures")
    p.add_argument("--no-retry-failed", action="store_true", help="do not rerun failed replications")
    p.add_argument("--dry-run", action="store_true", help="validate, list the conditions and stop")
    p.add_argument("--collect-only", action="store_true",
                   help="rebuild the tables and figures from finished replications; run nothing")
    return p


def cmd_study(args: argparse.Namespace) -> int:
    """Run ``smeintl study`` from parsed arguments (raises :class:`StudyError`)."""
    study = load_study(args.study)
    if args.dry_run:
        tasks = study.tasks()
        print(f"study {study.name} ({study.source}): instrument {study.instrument.name}, seed {study.seed}, "
              f"kinds {', '.join(study.kinds)}, {len(study.conditions)} condition(s) x {study.replications} "
              f"replication(s) = {len(tasks)} replication(s) in all (design fixed: recovery/comparison; sbc)")
        print(study.conditions.to_string())
        print(f"fit: {json.dumps(dict(study.fit))}")
        if "sbc" in study.kinds:
            print(f"sbc: {json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in study.sbc.items()})}; "
                  f"SBC conditions {study.sbc_conditions()}")
        return 0
    if args.collect_only:
        out = Path(args.out) if args.out else Path("reports") / f"study-{study.name}"
        if not (out / "study.json").exists():
            raise StudyError(str(out), ["not a study folder (no study.json)"], what="cannot collect")
        _prepare_out(study, out)
        res = collect(study, out, figures=not args.no_figures)
        res.n_skipped = len(finished_tasks(study, out))
        print(res.text())
        return 0
    res = run_study(study, args.out, scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress,
                    retry_failed=not args.no_retry_failed, figures=not args.no_figures)
    print(res.text())
    return 1 if res.n_failed else 0


def study_main(argv: Sequence[str] | None = None) -> int:
    """``python -m smeintl.study STUDY.toml [--out DIR] [--scheduler ADDRESS] [--workers N]``.

    Exit status: 0 all replications finished, 1 some failed (recorded), 2 a user
    error (bad study file, wrong output folder, unreachable scheduler), 130 interrupted.
    """
    parser = add_study_arguments(argparse.ArgumentParser(
        prog="smeintl study", description="run a simulation study (recovery, SBC, method comparison)"))
    args = parser.parse_args(argv)
    try:
        return cmd_study(args)
    except SpecError as exc:
        print(f"smeintl study: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("smeintl study: interrupted; finished replications are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    from smeintl.study import study_main as _main  # functions must pickle as smeintl.study.*

    sys.exit(_main())
