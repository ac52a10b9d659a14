"""The headline findings an instrument declares: the ``[[findings]]`` tables of a spec.

A finding is a statement about the firms that the deterministic method makes and the
posterior predictive comparison (:mod:`smeintl.findings`) tests.  Each has a ``key``, a
``title``, a ``kind`` (one of :data:`FINDING_KINDS`), the kind's parameters and an
optional ``definition`` (text; generated from the kind and the parameters when absent).
A spec without ``[[findings]]`` declares none.

Kinds and their parameters (defaults after ``=``):

- ``share_above``: ``construct``, ``share``: the share of firms flagged on the construct
  (index >= the spec's threshold) is greater than ``share``;
- ``share_between``: ``construct``, ``range = [lo, hi]``: that share lies in [lo, hi];
- ``no_type``: ``type``: no firm's nearest ideal type is ``type`` (a declared type);
- ``groups_differ``: ``construct``, ``alpha = 0.05``, ``min_effect_f = 0.25``: one-way
  ANOVA of the index on the groups gives p < alpha; posterior: latent Cohen's f of the
  group means > min_effect_f;
- ``positive_correlation``: ``constructs = [a, b]``, ``alpha = 0.05``: Pearson r of the
  two indices > 0 with one-sided p < alpha; posterior: latent correlation > 0.

An unknown key in a finding is refused with the kind's allowed keys and the closest of
them (:func:`smeintl.errors.did_you_mean`).  Standard library only (imported by
:mod:`smeintl.spec`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .errors import did_you_mean

__all__ = ["FINDING_KINDS", "FindingKind", "Finding", "parse_findings", "default_definition"]

#: keys every ``[[findings]]`` table may have, whatever its kind
COMMON_KEYS: tuple[str, ...] = ("key", "title", "kind", "definition")


@dataclass(frozen=True)
class FindingKind:
    """One kind of finding: its parameters in order, the defaults of the optional ones,
    and its criterion in a few words."""

    name: str
    parameters: tuple[str, ...]
    defaults: Mapping[str, Any]
    criterion: str


#: the kinds of finding, by name (the computations are in :mod:`smeintl.findings`)
FINDING_KINDS: dict[str, FindingKind] = {
    k.name: k
    for k in (
        FindingKind("share_above", ("construct", "share"), {},
                    "share of firms flagged on the construct > share"),
        FindingKind("share_between", ("construct", "range"), {},
                    "share of firms flagged on the construct in [lo, hi]"),
        FindingKind("no_type", ("type",), {},
                    "number of firms whose nearest ideal type is the type == 0"),
        FindingKind("groups_differ", ("construct", "alpha", "min_effect_f"), {"alpha": 0.05, "min_effect_f": 0.25},
                    "one-way ANOVA of the index on the groups: p < alpha; posterior: latent Cohen's f > min_effect_f"),
        FindingKind("positive_correlation", ("constructs", "alpha"), {"alpha": 0.05},
                    "Pearson r of the two indices > 0 with one-sided p < alpha; posterior: latent correlation > 0"),
    )
}


@dataclass(frozen=True)
class Finding:
    """A headline finding declared by the instrument (``[[findings]]``).

    ``parameters``: the kind's parameters as ``(name, value)`` pairs in the kind's order,
    defaults filled in (``construct``/``type``: str; ``constructs``: a pair of str;
    ``share``, ``alpha``, ``min_effect_f``: float; ``range``: a pair of floats).
    ``definition``: the operational definition as written in the spec, or the generated
    default (:func:`default_definition`).
    """

    key: str
    title: str
    kind: str
    definition: str
    parameters: tuple[tuple[str, Any], ...] = ()

    @property
    def params(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.parameters)

    @property
    def constructs(self) -> tuple[str, ...]:
        """The constructs the finding refers to (``construct`` or ``constructs``)."""
        p = self.params
        if "constructs" in p:
            return tuple(p["constructs"])
        return (p["construct"],) if "construct" in p else ()

    def parameter_text(self) -> str:
        """The parameters as ``name = value, ...`` (``range = [0.1, 0.3]``)."""
        return ", ".join(f"{k} = {_value_text(v)}" for k, v in self.parameters)


def _value_text(v: Any) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def default_definition(kind: str, params: Mapping[str, Any]) -> str:
    """The operational definition of a finding of ``kind`` with ``params`` (used when
    the spec gives no ``definition``)."""
    p = params
    if kind == "share_above":
        c = p["construct"]
        return (f"Share of firms whose {c} index is >= the spec's {c} threshold, among the firms whose index is "
                f"defined, is greater than {p['share']:g}. Deterministic: on the observed answers. Posterior "
                "probability: share of posterior draws whose true-score share exceeds it (replicated: the same on "
                "the replicated surveys).")
    if kind == "share_between":
        c = p["construct"]
        lo, hi = p["range"]
        return (f"Share of firms whose {c} index is >= the spec's {c} threshold, among the firms whose index is "
                f"defined, lies in [{lo:.2f}, {hi:.2f}]. Deterministic: on the observed answers. Posterior "
                "probability: share of draws whose true-score share lies in the range (replicated: the same on "
                "the replicated surveys).")
    if kind == "no_type":
        t = p["type"]
        return (f"No firm's nearest ideal type is {t}: the count of such firms is 0. Deterministic: on the observed "
                f"answers. Posterior probability: share of draws in which no firm's true-score type is {t} "
                "(replicated: the same on the replicated surveys).")
    if kind == "groups_differ":
        c, a = p["construct"], p["alpha"]
        return (f"Deterministic: one-way ANOVA (equal variances) of the {c} index on industry (the spec's group "
                f"column) over the firms with the index gives p < {a:g}. Posterior probability: probability that "
                f"the industries' latent {c} means (the model's group_mean, sum-to-zero, on the latent scale whose "
                "within-industry sd is 1) spread by more than the effect size min_effect_f, Cohen's f = "
                f"sqrt(mean over industries of mean_g^2) > {p['min_effect_f']:g}. Replicated: share of replicated "
                f"surveys on which the ANOVA gives p < {a:g}. Not estimable without an industry level in the fit.")
    if kind == "positive_correlation":
        a, b = p["constructs"]
        return (f"Deterministic: Pearson correlation of the {a} and {b} indices over the firms with both is "
                f"positive with one-sided p < {p['alpha']:g}. Posterior probability: probability that the latent "
                f"correlation of {a} and {b} (the model's corr, the within-industry correlation of the latent "
                "scores) is > 0. Replicated: share of replicated surveys on which the deterministic criterion "
                "holds.")
    raise ValueError(f"unknown finding kind {kind!r}; allowed: {', '.join(FINDING_KINDS)}")


def _check_param(name: str, value: Any, key: str, constructs: Sequence[str], types: Sequence[str],
                 problems: list[str]) -> Any:
    """The parameter's value in its stored type, or None (a problem is recorded)."""
    where = f"{key}.{name}"
    if name == "construct":
        if not isinstance(value, str) or value not in constructs:
            problems.append(f"{where}: {value!r} is not a declared construct; declared: {list(constructs)}")
            return None
        return value
    if name == "constructs":
        if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}: need a list of two construct names, got {value!r}")
            return None
        bad = [v for v in value if v not in constructs]
        if bad:
            problems.append(f"{where}: {', '.join(map(repr, bad))} not a declared construct; "
                            f"declared: {list(constructs)}")
            return None
        if value[0] == value[1]:
            problems.append(f"{where}: need two different constructs, got {value!r}")
            return None
        return (value[0], value[1])
    if name == "type":
        if not isinstance(value, str) or value not in types:
            problems.append(f"{where}: {value!r} is not a declared ideal type ([[profiles.types]]); "
                            f"declared: {list(types)}")
            return None
        return value
    if name == "share":
        if not _num(value) or not 0 <= value <= 1:
            problems.append(f"{where}: must be a number in [0, 1], got {value!r}")
            return None
        return float(value)
    if name == "range":
        if (not isinstance(value, list) or len(value) != 2 or not all(_num(v) for v in value)
                or not 0 <= value[0] <= value[1] <= 1):
            problems.append(f"{where}: must be [lo, hi] with 0 <= lo <= hi <= 1, got {value!r}")
            return None
        return (float(value[0]), float(value[1]))
    if name == "alpha":
        if not _num(value) or not 0 < value < 1:
            problems.append(f"{where}: must be a number in (0, 1), got {value!r}")
            return None
        return float(value)
    if name == "min_effect_f":
        if not _num(value) or value < 0:
            problems.append(f"{where}: must be a number >= 0, got {value!r}")
            return None
        return float(value)
    raise AssertionError(name)  # every kind's parameter is handled above


def parse_findings(raw: Any, *, constructs: Sequence[str], types: Sequence[str],
                   problems: list[str]) -> tuple[Finding, ...]:
    """The ``[[findings]]`` tables of a raw spec (None: no findings), validated against
    the declared ``constructs`` and ideal ``types``; every problem is appended to
    ``problems`` (the findings with problems are left out)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(f, dict) for f in raw):
        problems.append("[[findings]]: must be an array of tables ([[findings]] with key, title, kind, ...)")
        return ()
    out: list[Finding] = []
    seen: dict[str, int] = {}
    for k, f in enumerate(raw):
        fkey = f.get("key")
        key = f"findings[{k}]" + (f" ({fkey})" if isinstance(fkey, str) and fkey else "")
        n0 = len(problems)
        if not isinstance(fkey, str) or not fkey.strip():
            problems.append(f"{key}.key: needs a key (a non-empty string), got {fkey!r}")
        elif fkey in seen:
            problems.append(f"{key}.key: duplicate finding key {fkey!r} (also findings[{seen[fkey]}])")
        else:
            seen[fkey] = k
        title = f.get("title")
        if not isinstance(title, str) or not title.strip():
            problems.append(f"{key}.title: needs a title (a non-empty string), got {title!r}")
        definition = f.get("definition")
        if definition is not None and (not isinstance(definition, str) or not definition.strip()):
            problems.append(f"{key}.definition: must be a non-empty string, got {definition!r}")
        kname = f.get("kind")
        kind = FINDING_KINDS.get(kname) if isinstance(kname, str) else None
        if kind is None:
            what = "needs a kind" if kname is None else f"unknown kind {kname!r}"
            problems.append(f"{key}.kind: {what}; allowed: {', '.join(FINDING_KINDS)}")
            continue
        allowed = (*COMMON_KEYS, *kind.parameters)
        for x in f:
            if x not in allowed:
                problems.append(f"{key}.{x}: unknown key for kind {kind.name!r}{did_you_mean(x, allowed)}; "
                                f"allowed: {', '.join(allowed)}")
        params: list[tuple[str, Any]] = []
        for name in kind.parameters:
            if name not in f:
                if name in kind.defaults:
                    params.append((name, kind.defaults[name]))
                else:
                    problems.append(f"{key}.{name}: required for kind {kind.name!r} "
                                    f"(parameters: {', '.join(kind.parameters)})")
                continue
            params.append((name, _check_param(name, f[name], key, constructs, types, problems)))
        if len(problems) > n0:
            continue
        p = dict(params)
        out.append(Finding(fkey, title, kind.name, definition if definition is not None else
                           default_definition(kind.name, p), tuple(params)))
    return tuple(out)
