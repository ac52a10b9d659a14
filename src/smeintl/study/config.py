"""Study files: loading and validating a study TOML (:func:`load_study`,
:func:`parse_study`), the code defaults of its ``[grid]``, ``[fit]`` and ``[sbc]``
tables, and the validated :class:`Study` with its conditions and replications
(:class:`Task`)."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ..errors import did_you_mean
from ..resources import resolve
from ..spec import Spec, SpecError, load_spec, valid_target_accept
from ..spec import _num as _is_num
from ..spec_checks import SAMPLER_LEAST, unknown_keys, whole_number
from .parameters import _check_sbc_parameter, _default_sbc_parameters

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
_SBC_KEYS = ("parameters", "quantities", "thin", "bins")
#: the data-dependent SBC test quantities (``[sbc] quantities``; default: all)
SBC_QUANTITIES = ("loglik", "index_mean")
_STUDY_KEYS = ("name", "description", "instrument", "seed", "replications", "kind")
_TABLES = ("study", "grid", "fit", "sbc")


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
    """Load and validate a study file; the instrument path is relative to it.

    A bare name of a bundled study (``study_tiny.toml``, ``study_example.toml``) that is
    not in the working folder is the bundled file; a study's ``instrument`` is looked for
    next to the study file first, then, as a bare name, among the bundled files
    (``hitachi.toml``, ``tiny_instrument.toml``): see :func:`smeintl.resources.resolve`."""
    p = resolve(path)
    if not p.exists():
        raise StudyError(str(p), ["file not found"])
    if p.is_dir():
        raise StudyError(str(p), ["is a folder, not a study file (TOML, e.g. the bundled study_example.toml)"])
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError(str(p), [f"not a text file (undecodable byte at position {exc.start}); a study file "
                                  f"is TOML text in UTF-8"]) from None
    except OSError as exc:
        raise StudyError(str(p), [f"cannot read the file ({exc.strerror or exc})"]) from None
    return parse_study(text, source=str(p), base_dir=p.parent)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _optional_table(raw: dict, table: str, known: Sequence[str], problems: list[str]) -> dict:
    """``raw[table]`` (empty when absent); a non-table or an unknown key is added to ``problems``."""
    value = raw.get(table, {})
    if not isinstance(value, dict):
        problems.append(f"[{table}]: must be a table")
        return {}
    unknown_keys(value, known, table, problems, table_name=f"[{table}]")
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
    problems.extend(f"[{k}]: unknown table{did_you_mean(k, _TABLES)}; allowed: {', '.join(_TABLES)}"
                    for k in raw if k not in _TABLES)
    st = raw.get("study")
    if not isinstance(st, dict):
        raise StudyError(source, problems + ["[study]: the table is required (instrument, seed, replications, kind)"])
    unknown_keys(st, _STUDY_KEYS, "study", problems, table_name="[study]")
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
        problems.append("study.instrument: required, the path of an instrument spec (relative to the study file, "
                        "or the name of a bundled one)")
    else:
        ip = resolve(inst, base)  # next to the study file, else a bundled instrument
        inst_path = str(ip)
        try:
            found = ip.exists()
        except (OSError, ValueError):  # e.g. a NUL character in the path
            found = False
        if not found:
            problems.append(f"study.instrument: instrument spec {inst!r} not found (looked for {ip})")
        elif ip.is_dir():
            problems.append(f"study.instrument: {inst!r} is a folder, not an instrument spec (looked for {ip})")
        else:
            try:
                spec = load_spec(ip)
            except SpecError as exc:
                problems.append(f"study.instrument: {inst!r} is not a valid instrument spec:\n{exc}")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"study.instrument: {inst!r} cannot be read as an instrument spec (TOML text): "
                                f"{exc}")
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
            problems.append(f"grid.{k}: unknown key in [grid]{did_you_mean(k, known)}{extra}; "
                            f"allowed: {', '.join(known)}")
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
    from ..measurement import auto_sampler, resolve_target_accept

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
    for k, least in SAMPLER_LEAST.items():  # the least values of the spec's [sampler] and --draws etc.
        msg = whole_number(fit[k], least)
        if msg:
            problems.append(f"fit.{k}: {msg}")
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
    whole = all(whole_number(fit[k], SAMPLER_LEAST[k]) is None for k in ("draws", "chains"))
    total = fit["draws"] * fit["chains"] if whole else 100  # bad draws or chains are reported already
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
    quantities = sbc_raw.get("quantities", list(SBC_QUANTITIES))
    if isinstance(quantities, str):
        quantities = [quantities]
    if not isinstance(quantities, list) or not all(isinstance(x, str) and x in SBC_QUANTITIES for x in quantities):
        problems.append(f"sbc.quantities: a list of {', '.join(repr(q) for q in SBC_QUANTITIES)} (or []), "
                        f"got {quantities!r}")
        quantities = []
    sbc = {"parameters": tuple(params), "quantities": tuple(quantities), "thin": thin, "bins": bins, "n_draws": L}

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
