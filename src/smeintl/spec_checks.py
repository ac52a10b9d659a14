"""The checks of a spec's tables that :mod:`smeintl.spec` runs besides the structure of
constructs, items and profiles: the keys every table allows, the ``[instrument]``
columns, and the ``[priors]``, ``[sampler]`` and ``[baseline]`` settings.

* **Unknown keys.**  Every table has a fixed set of keys (:data:`TABLE_KEYS`; an item
  also takes the range keys its family reads, a ``[priors]`` entry its distribution's
  parameters, a ``[[findings]]`` table its kind's).  A key outside the set, which would
  otherwise be ignored without a word (``revers = true`` for ``reverse``), is one problem
  naming the table, the key, the allowed keys and the closest allowed one
  (:func:`unknown_keys`, with :func:`smeintl.errors.did_you_mean`).
* **Whole numbers.**  The sampler's ``draws``/``chains`` (and ``quick_*``) are whole
  numbers of at least 1, ``tune`` at least 0 (:data:`SAMPLER_LEAST`, the same least values
  as the command line's ``--draws``/``--tune``/``--chains`` and
  :func:`smeintl.api.fit_settings`, in their wording: :func:`whole_number`); the baseline
  test's ``draws``, ``min_test_firms`` and ``min_calibration`` at least 1 and its ``seed``
  in ``[0, MAX_SEED]`` (the range of ``--seed``).
* **Priors.**  A prior that names a distribution takes one of :data:`PRIOR_DISTS` with
  the support of the default's (positive for loadings, precisions and sds; any real
  number for the intercept) and exactly that distribution's parameters, each a finite
  number (positive where the distribution needs it).

Every problem is appended to a list; nothing raises.  Standard library only.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence

from .errors import did_you_mean

__all__ = [
    "MAX_SEED",
    "SAMPLER_LEAST",
    "SAMPLERS",
    "TABLE_KEYS",
    "ITEM_KEYS",
    "PRIOR_DISTS",
    "unknown_keys",
    "whole_number",
    "valid_target_accept",
    "check_instrument",
    "check_priors",
    "check_sampler",
    "check_baseline",
]

#: the largest seed the samplers and the baseline test take (``--seed`` has the same bound)
MAX_SEED = 2**32 - 1
#: the least value of each sampler setting (as ``--draws``, ``--tune``, ``--chains``)
SAMPLER_LEAST = {"draws": 1, "tune": 0, "chains": 1}
#: the values of ``[sampler] sampler``
SAMPLERS = ("auto", "pymc", "nutpie")
#: the least value of each whole-number setting of ``[baseline]`` (seed: at most MAX_SEED)
BASELINE_LEAST = {"draws": 1, "seed": 0, "min_test_firms": 1, "min_calibration": 1}

#: the keys of an item besides the range keys its family reads (``min``, ``max``, ``cap``)
ITEM_KEYS = ("name", "label", "construct", "subdimension", "scale", "reverse", "weight")
#: the keys an item's range may be declared with; each must be a number
RANGE_KEYS = ("min", "max", "cap")

#: the keys of each table of a spec, by the table's name in messages
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "spec": ("instrument", "constructs", "items", "profiles", "subdimension_profiles", "empirical", "baseline",
             "priors", "sampler", "findings"),
    "[instrument]": ("name", "description", "id_column", "group_column", "outcome_column", "extra_columns",
                     "covariates"),
    "[[constructs]]": ("name", "label", "flag", "subdimensions", "subdimension_weights"),
    "[profiles]": ("dimensions", "thresholds", "standardize", "squared", "hybrid_epsilon", "types"),
    "[[profiles.types]]": ("name", "coords", "weights"),
    "[subdimension_profiles]": ("dimensions", "types"),
    "[[subdimension_profiles.types]]": ("name", "coords", "weights"),
    "[empirical]": ("outcome", "top_share", "dimensions"),
    "[baseline]": tuple(BASELINE_LEAST),
}

#: the distributions a prior may name, with their parameters (True: any real number,
#: False: positive); positive-valued ones serve the priors whose default is positive
PRIOR_DISTS: dict[str, dict[str, bool]] = {
    # positive support: loadings, precision, dispersion, sds
    "LogNormal": {"mu": True, "sigma": False},
    "HalfNormal": {"sigma": False},
    "Gamma": {"alpha": False, "beta": False},
    "InverseGamma": {"alpha": False, "beta": False},
    "Exponential": {"lam": False},
    "HalfCauchy": {"beta": False},
    "HalfStudentT": {"nu": False, "sigma": False},
    "Weibull": {"alpha": False, "beta": False},
    # real support: intercepts
    "Normal": {"mu": True, "sigma": False},
    "StudentT": {"nu": False, "mu": True, "sigma": False},
    "Logistic": {"mu": True, "s": False},
    "Laplace": {"mu": True, "b": False},
    "Cauchy": {"alpha": True, "beta": False},
}
_REAL_SUPPORT = ("Normal", "StudentT", "Logistic", "Laplace", "Cauchy")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _names(keys: Sequence[str]) -> str:
    return ", ".join(keys)


def unknown_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str, problems: list[str], *,
                 table_name: str) -> None:
    """One problem per key of ``table`` outside ``allowed``: ``{where}.{key}: unknown key in
    {table_name} (did you mean ...?); allowed: ...``."""
    for k in table:
        if k not in allowed:
            problems.append(f"{where}.{k}: unknown key in {table_name}{did_you_mean(k, allowed)}; "
                            f"allowed: {_names(allowed)}")


def whole_number(value: Any, least: int, most: int | None = None) -> str | None:
    """Why ``value`` is not a whole number in ``[least, most]`` (``most`` None: no upper
    bound), in the wording of :func:`smeintl.api.fit_settings` (``must be a whole number of
    at least 1, got 0``); None when it is one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        return f"must be a whole number of at least {least}, got {value!r}"
    if most is not None and value > most:
        return f"must be a whole number of at most {most}, got {value!r}"
    return None


def valid_target_accept(value: Any) -> bool:
    """What ``target_accept`` may be, in a spec's ``[sampler]`` and a study's ``[fit]``:
    ``"auto"`` or a number in (0, 1)."""
    return value == "auto" or (_num(value) and 0 < value < 1)


def as_table(value: Any, name: str, problems: list[str]) -> dict:
    """``value`` when it is a table (empty when None: the table is absent); a problem
    naming ``[name]`` otherwise."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    problems.append(f"[{name}]: must be a table, got {value!r}")
    return {}


def name_list(value: Any, where: str, problems: list[str], *, what: str,
              empty: bool = True) -> tuple[str, ...] | None:
    """``value`` as a tuple of distinct non-empty strings (at least one unless ``empty``);
    None and a problem otherwise."""
    if (not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value)
            or not (value or empty)):
        problems.append(f"{where}: must be a {'' if empty else 'non-empty '}list of {what} names "
                        f"(non-empty strings), got {value!r}")
        return None
    dup = sorted({v for v in value if value.count(v) > 1})
    if dup:
        problems.append(f"{where}: duplicate name(s) {', '.join(map(repr, dup))}; each {what} once")
        return None
    return tuple(value)


def boolean(raw: Mapping[str, Any], key: str, where: str, default: bool, problems: list[str]) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        problems.append(f"{where}.{key}: must be true or false, got {value!r}")
        return default
    return value


# ---------------------------------------------------------------------------
# [instrument]
# ---------------------------------------------------------------------------
def check_instrument(inst: Mapping[str, Any], default_name: str, problems: list[str]) -> dict[str, Any]:
    """The ``[instrument]`` settings: ``name``, ``description``, the firm columns
    (``id_column``, and ``id_declared``: whether the spec names it; ``group_column`` and
    ``outcome_column``, None when ``""`` or false; ``extra_columns``, numeric; ``covariates``,
    carried through as read), each checked; the firm columns must be distinct."""
    unknown_keys(inst, TABLE_KEYS["[instrument]"], "instrument", problems, table_name="[instrument]")
    out: dict[str, Any] = {}
    for key, default in (("name", default_name), ("description", "")):
        v = inst.get(key, default)
        if not isinstance(v, str):
            problems.append(f"instrument.{key}: must be a string, got {v!r}")
            v = default
        out[key] = v
    out["id_declared"] = "id_column" in inst
    v = inst.get("id_column", "firm_id")
    if not isinstance(v, str) or not v.strip():
        problems.append(f"instrument.id_column: must be a column name (a non-empty string), got {v!r}")
        v = "firm_id"
    out["id_column"] = v
    for key, default in (("group_column", "industry"), ("outcome_column", "outcome")):
        v = inst.get(key, default)
        if v is False or v == "":
            v = None
        elif not isinstance(v, str) or not v.strip():
            problems.append(f"instrument.{key}: must be a column name, or \"\" (or false) for none, got {v!r}")
            v = default
        out[key] = v
    extra = inst.get("extra_columns", ["employees"])
    names = name_list(extra, "instrument.extra_columns", problems, what="column")
    out["extra_columns"] = names if names is not None else ()
    cov = name_list(inst.get("covariates", []), "instrument.covariates", problems, what="column")
    out["covariates"] = cov if cov is not None else ()
    seen: dict[str, str] = {}
    for key in ("id_column", "group_column", "outcome_column", "extra_columns", "covariates"):
        for name in (out[key] if key in ("extra_columns", "covariates") else (out[key],)):
            if name is None:
                continue
            if name in seen:
                problems.append(f"instrument.{key}: {name!r} is also the {seen[name]}; each firm column once")
            else:
                seen[name] = key
    return out


# ---------------------------------------------------------------------------
# [priors], [sampler], [baseline]
# ---------------------------------------------------------------------------
def _allowed_dists(default: Mapping[str, Any]) -> tuple[str, ...]:
    real = default["dist"] in _REAL_SUPPORT
    return tuple(d for d in PRIOR_DISTS if (d in _REAL_SUPPORT) == real)


def _check_prior(name: str, entry: Mapping[str, Any], default: Mapping[str, Any],
                 problems: list[str]) -> dict[str, Any] | None:
    """A ``[priors]`` entry merged with its default (another distribution replaces the
    default's parameters), or None (problems appended)."""
    where = f"priors.{name}"
    n0 = len(problems)
    if "dist" in default:
        dist = entry.get("dist", default["dist"])
        allowed_dists = _allowed_dists(default)
        if not isinstance(dist, str) or dist not in allowed_dists:
            if not isinstance(dist, str):
                what = f"must be the name of a distribution, got {dist!r}"
            elif dist in _REAL_SUPPORT:  # a known distribution of the other support
                what = f"{dist!r} takes negative values too, and {name} is positive"
            elif dist in PRIOR_DISTS:
                what = f"{dist!r} takes positive values only, and {name} may be any real number"
            else:
                what = f"unknown distribution {dist!r}{did_you_mean(dist, allowed_dists)}"
            problems.append(f"{where}.dist: {what}; allowed: {_names(allowed_dists)}")
            return None
        params = PRIOR_DISTS[dist]
        allowed = ("dist", *params)
        table_name = f"[priors] {name}, a {dist} prior"
    else:  # a fixed form (cutpoint sds, LKJ eta): the default's parameters only
        dist = None
        params = {k: k == "mu" for k in default}
        allowed = tuple(default)
        table_name = f"[priors] {name}"
    unknown_keys(entry, allowed, where, problems, table_name=table_name)
    same = dist is None or dist == default["dist"]
    merged = {**default, **entry} if same else dict(entry)
    for p, real in params.items():
        if p not in merged:
            problems.append(f"{where}.{p}: required for a {dist} prior (parameters: {_names(params)})")
            continue
        v, d = merged[p], default.get(p)
        if isinstance(d, list):
            if not isinstance(v, list) or len(v) != len(d) or not all(_num(x) for x in v):
                problems.append(f"{where}.{p}: must be a list of {len(d)} numbers, got {v!r}")
        elif real and not _num(v):
            problems.append(f"{where}.{p}: must be a number, got {v!r}")
        elif not real and (not _num(v) or v <= 0):
            problems.append(f"{where}.{p}: must be a positive number, got {v!r}")
    return merged if len(problems) == n0 else None


def check_priors(raw: Any, defaults: Mapping[str, Mapping[str, Any]], problems: list[str]) -> dict[str, dict]:
    """The priors: ``defaults`` with each ``[priors]`` entry merged in (checked)."""
    priors = {k: dict(v) for k, v in defaults.items()}
    raw = as_table(raw, "priors", problems)
    unknown_keys(raw, tuple(defaults), "priors", problems, table_name="[priors]")
    for k, v in raw.items():
        if k not in defaults:
            continue
        if not isinstance(v, dict):
            problems.append(f"priors.{k}: must be a table like {{ dist = 'Normal', sigma = 1 }}, got {v!r}")
            continue
        merged = _check_prior(k, v, defaults[k], problems)
        if merged is not None:
            priors[k] = merged
    return priors


def check_sampler(raw: Any, defaults: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """The sampler settings: ``defaults`` with ``[sampler]`` merged in; ``draws``,
    ``tune``, ``chains`` and their ``quick_*`` and ``large_*`` whole numbers from
    :data:`SAMPLER_LEAST` (``large_firms`` from 1),
    ``sampler`` one of :data:`SAMPLERS`, ``target_accept`` ``"auto"`` or in (0, 1)."""
    raw = as_table(raw, "sampler", problems)
    unknown_keys(raw, tuple(defaults), "sampler", problems, table_name="[sampler]")
    sampler = dict(defaults)
    sampler.update((k, v) for k, v in raw.items() if k in defaults)
    for key, least in SAMPLER_LEAST.items():
        for k in (key, f"quick_{key}", f"large_{key}"):
            msg = whole_number(sampler[k], least)
            if msg:
                problems.append(f"sampler.{k}: {msg}")
    msg = whole_number(sampler["large_firms"], 1)
    if msg:
        problems.append(f"sampler.large_firms: {msg}")
    s = sampler["sampler"]
    if s not in SAMPLERS:
        problems.append(f"sampler.sampler: must be one of 'auto', 'pymc', 'nutpie', got {s!r}"
                        + did_you_mean(s, SAMPLERS))
    if not valid_target_accept(sampler["target_accept"]):
        problems.append(f"sampler.target_accept: must be 'auto' or a number in (0, 1), "
                        f"got {sampler['target_accept']!r}")
    return sampler


def check_baseline(raw: Any, defaults: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """The baseline test's settings: ``defaults`` with ``[baseline]`` merged in, each a
    whole number (:data:`BASELINE_LEAST`; the seed at most :data:`MAX_SEED`)."""
    raw = as_table(raw, "baseline", problems)
    unknown_keys(raw, TABLE_KEYS["[baseline]"], "baseline", problems, table_name="[baseline]")
    baseline = dict(defaults)
    for k, least in BASELINE_LEAST.items():
        if k not in raw:
            continue
        msg = whole_number(raw[k], least, MAX_SEED if k == "seed" else None)
        if msg:
            problems.append(f"baseline.{k}: {msg}")
        else:
            baseline[k] = int(raw[k])
    return baseline
