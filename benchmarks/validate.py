"""Validation against maximum-likelihood peers: smeintl's posterior next to semopy and mirt.

For each data set the peer is fitted by maximum likelihood (wall clock timed), smeintl
by NUTS (wall clock timed, model build and compile included), and every parameter that
both estimate is printed side by side: the peer's estimate and standard error, smeintl's
posterior mean, sd and central 90% interval, and whether the peer's estimate lies in
that interval.  With a few hundred respondents and weakly informative priors the
posterior is close to normal around the ML estimate, so the ML estimate is expected
near the middle of the interval: one outside it points at a prior that matters, a
different model, or a sampling problem.

    .venv/bin/python benchmarks/validate.py                 # every data set, the spec's default draws
    .venv/bin/python benchmarks/validate.py --quick         # the spec's quick draws
    .venv/bin/python benchmarks/validate.py --cases hs39 lsat7 --out /tmp/validate --seed 3

Writes under ``--out`` (default ``benchmarks/validate-results/``): ``<case>.csv`` (one
row per compared parameter), ``all.csv`` (every case), ``timings.csv`` and
``summary.md`` (the tables and the wall and CPU times).  The times depend on the other
work on the machine: on a two-core machine shared with other jobs the same fits (identical
draws) took 20-50 s at a load average of 3 and 90-370 s at 6, so compare times only
from runs on an otherwise idle machine.

Data sets and parameterizations
-------------------------------
``hs39``: Holzinger and Swineford (1939), 301 pupils, the three-factor CFA of x1-x9
(``semopy.examples.holzinger39``).  ``poldem``: Bollen's political democracy data, 75
countries, the measurement part only (three correlated factors, no residual
covariances: smeintl's model has none).  Peer: semopy.  smeintl's latent scores have sd
1, so the data-unit loadings are compared with a semopy fit that fixes the factor
variances at 1 and frees every loading (``f =~ l1*x1 + ...``, ``f ~~ 1*f``: semopy
reads ``NA*x1`` as a parameter *named* NA, shared by every ``NA*`` loading, so each
loading gets its own label instead); the standardized loadings are that fit's
standardized solution (``inspect(std_est=True)``; its standard errors by the delta
method from semopy's inverse information), checked against the default marker-variable
fit (first loading 1), whose standardized solution must agree.  Intercepts come from
semopy's ``ModelMeans`` (FIML) with the same description; residual sds are the square
roots of the residual variances (delta-method standard errors); correlations are the
factor covariances of the variance-1 fit.

``lsat7``: LSAT section 7, 5 binary items, 1000 examinees (the public pattern-frequency
table, as ``mirt.load_dataset("LSAT7")`` ships it), a 2PL.  ``va_grm``: mirt's
``verbal_aggression`` set, 316 x 24 items scored 0/1/2, a graded response model (note:
the PyPI package simulates this set from a GRM with its own random parameters; it is
not De Boeck and Wilson's data).  Peer: the PyPI package ``mirt`` (a Python
reimplementation of R's mirt; EM with Gauss-Hermite quadrature, Oakes standard
errors).  It reports the IRT parameterization, P(y >= k) = logistic(a (theta - b_k));
smeintl's linear predictor is intercept + lambda * eta (binary) and
P(y >= k) = logistic(lambda * eta - c_k) (ordinal), theta and eta standard normal, so
lambda = a, intercept = -a b and c_k = a b_k (standard errors by the delta method from
mirt's parameter covariance).  The standardized loading is a / sqrt(a^2 + pi^2 / 3) in
both.  As a check on the peer, the same models are fitted by an independent marginal ML
here (:func:`irt_ml`: 61-point Gauss-Hermite quadrature, BFGS, observed-information
standard errors); its estimates are the ``ml_est`` / ``ml_se`` columns.  mirt runs with
61 quadrature points (R mirt's default for one dimension) and EM tolerance 1e-6
(:data:`MIRT_QUADPTS`, :data:`MIRT_TOL`): with PyPI mirt's defaults its estimates were
up to 0.03 from the ML estimate.

Of the other sets PyPI mirt 1.2.0 ships, ``LSAT6`` has 569 rows, not the published
1000 (its pattern counts do not match Bock and Lieberman's table), ``Attitude`` (a
simulated GRM) has unordered generating thresholds and categories nobody chose (mirt's
GRM reports NaN standard errors for the five of its ten items with an empty category),
and the rest are simulated binary or nominal sets.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "validate-results"
PROB = 0.9
LOGISTIC_VAR = math.pi**2 / 3

#: the columns of a comparison table, in order
COLUMNS = ["case", "block", "lhs", "op", "rhs", "scale", "item", "construct",
           "peer_est", "peer_se", "ml_est", "ml_se",
           "mean", "sd", "lower", "upper", "inside", "z", "sd_ratio", "rhat", "ess_bulk", "peer_source"]

KEY = ["block", "lhs", "op", "rhs", "scale"]


class _Clock:
    """Wall-clock and CPU seconds (this process, every thread) of a ``with`` block.

    The CPU time is the steadier number on a machine shared with other work: the wall
    time of a fit grows with the other processes' load, its CPU time much less."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
        return False


# ---------------------------------------------------------------------------------------------
# data sets
# ---------------------------------------------------------------------------------------------
@dataclass
class Peer:
    """A peer's estimates: ``table`` (columns KEY + item, construct, peer_est, peer_se,
    peer_source, and ml_est / ml_se where an independent ML check exists), the wall time
    of its fits and notes."""

    table: pd.DataFrame
    seconds: float
    tool: str
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = float("nan")


@dataclass
class Case:
    name: str
    title: str
    kind: str  # "cfa" or "irt"
    load: Callable[[], pd.DataFrame]
    model: dict[str, list[str]]  # construct -> items
    peer: Callable[["Case", pd.DataFrame], Peer]
    scales: dict[str, str] | None = None
    id_column: str | None = None

    @property
    def model_text(self) -> str:
        return "\n".join(f"{c} =~ {' + '.join(items)}" for c, items in self.model.items())

    @property
    def items(self) -> list[str]:
        return [i for items in self.model.values() for i in items]


def _holzinger() -> pd.DataFrame:
    from semopy.examples import holzinger39

    return holzinger39.get_data().reset_index(drop=True)


def _poldem() -> pd.DataFrame:
    from semopy.examples import political_democracy

    return political_democracy.get_data().reset_index(drop=True)


def _mirt_frame(name: str) -> pd.DataFrame:
    import mirt

    ds = mirt.load_dataset(name)
    names = ds.get("item_names") or [f"Item{j + 1}" for j in range(ds["data"].shape[1])]
    return pd.DataFrame(np.asarray(ds["data"], dtype=int), columns=names)


# ---------------------------------------------------------------------------------------------
# semopy (CFA)
# ---------------------------------------------------------------------------------------------
def _semopy_description(model: dict[str, list[str]]) -> str:
    """Factor variances 1, every loading free (its own label ``l_<item>``, start 0.5),
    residual variances labelled ``e_<item>``."""
    lines = [f"{c} =~ " + " + ".join(f"l_{i}*{i}" for i in items) for c, items in model.items()]
    lines += [f"{c} ~~ 1*{c}" for c in model]
    lines += [f"{i} ~~ e_{i}*{i}" for items in model.values() for i in items]
    loads = " ".join(f"l_{i}" for items in model.values() for i in items)
    lines.append(f"START(0.5) {loads}")
    return "\n".join(lines)


def _active_vcov(m) -> tuple[list[str], np.ndarray]:
    """semopy's inverse expected information, with the names of its active parameters."""
    names = [k for k, p in m.parameters.items() if p.active]
    return names, np.asarray(m.calc_fim(inverse=True)[1], dtype=float)


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def semopy_peer(case: Case, frame: pd.DataFrame) -> Peer:
    import logging

    import semopy

    logging.getLogger().setLevel(logging.ERROR)  # "No fixed loadings for ...": intended
    data = frame[case.items].astype(float)
    constructs = list(case.model)
    construct_of = {i: c for c, its in case.model.items() for i in its}
    desc = _semopy_description(case.model)
    timings: dict[str, float] = {}
    notes: list[str] = []

    cpu = 0.0
    with _Clock() as c:
        m = semopy.Model(desc)
        res = m.fit(data)
    timings["semopy Model, factor variances 1"], cpu = c.wall, cpu + c.cpu
    est = m.inspect(std_est=True)
    names, vcov = _active_vcov(m)
    idx = {n: k for k, n in enumerate(names)}
    vals = dict(zip(names, np.asarray(m.param_vals, dtype=float)))

    with _Clock() as c:
        marker = semopy.Model(case.model_text)
        marker.fit(data)
    timings["semopy Model, marker loadings"], cpu = c.wall, cpu + c.cpu
    mest = marker.inspect(std_est=True)

    with _Clock() as c:
        mm = semopy.ModelMeans(desc)
        mm.fit(data)
    timings["semopy ModelMeans (intercepts)"], cpu = c.wall, cpu + c.cpu
    means = mm.inspect()

    # loadings are identified up to the sign of each factor; smeintl's are positive
    lam = {i: vals[f"l_{i}"] for i in case.items}
    flip = {c: -1.0 if sum(lam[i] for i in its) < 0 else 1.0 for c, its in case.model.items()}
    if any(f < 0 for f in flip.values()):
        notes.append("semopy converged to a reflected solution for "
                     + ", ".join(c for c, f in flip.items() if f < 0) + "; signs flipped back")

    rows = []
    src = "semopy Model (factor variances 1)"
    for i in case.items:
        c = construct_of[i]
        li, ei = f"l_{i}", f"e_{i}"
        a, th = vals[li], vals[ei]
        va, vt, cov = vcov[idx[li], idx[li]], vcov[idx[ei], idx[ei]], vcov[idx[li], idx[ei]]
        rows.append(dict(block="loading", lhs=c, op="=~", rhs=i, scale="data", item=i, construct=c,
                         peer_est=flip[c] * a, peer_se=math.sqrt(va), peer_source=src))
        tot = a * a + th
        g = np.array([th / tot**1.5, -a / (2 * tot**1.5)])
        V = np.array([[va, cov], [cov, vt]])
        rows.append(dict(block="loading", lhs=c, op="=~", rhs=i, scale="standardized", item=i, construct=c,
                         peer_est=flip[c] * a / math.sqrt(tot), peer_se=math.sqrt(float(g @ V @ g)),
                         peer_source=src + ", std_est; SE delta method"))
        rows.append(dict(block="residual_sd", lhs=i, op="~~", rhs=i, scale="data", item=i, construct=c,
                         peer_est=math.sqrt(th), peer_se=math.sqrt(vt) / (2 * math.sqrt(th)),
                         peer_source=src + ", sqrt of residual variance; SE delta method"))
        r = means[(means.lval == i) & (means.op == "~") & (means.rval == "1")].iloc[0]
        rows.append(dict(block="intercept", lhs=i, op="~1", rhs="", scale="data", item=i, construct=c,
                         peer_est=_num(r.Estimate), peer_se=_num(r["Std. Err"]),
                         peer_source="semopy ModelMeans (FIML)"))
    for a_, ca in enumerate(constructs):
        for cb in constructs[a_ + 1:]:
            r = est[(est.op == "~~") & (((est.lval == ca) & (est.rval == cb)) | ((est.lval == cb) & (est.rval == ca)))]
            r = r.iloc[0]
            rows.append(dict(block="correlation", lhs=ca, op="~~", rhs=cb, scale="latent", item=None, construct=None,
                             peer_est=flip[ca] * flip[cb] * _num(r.Estimate), peer_se=_num(r["Std. Err"]),
                             peer_source=src))
    table = pd.DataFrame(rows)

    # the marker-variable fit (semopy's default identification) must have the same standardized solution
    diffs = []
    for i in case.items:
        c = construct_of[i]
        s1 = est[(est.op == "~") & (est.lval == i) & (est.rval == c)]["Est. Std"].iloc[0]
        s2 = mest[(mest.op == "~") & (mest.lval == i) & (mest.rval == c)]["Est. Std"].iloc[0]
        diffs.append(abs(abs(float(s1)) - abs(float(s2))))
    notes.append(f"standardized loadings of the variance-1 fit vs semopy's default marker fit: max |diff| "
                 f"{max(diffs):.1e}")
    notes.append(f"semopy objective {res.name_obj}, optimizer {res.name_method}, converged: {bool(res.success)}")
    return Peer(table, sum(timings.values()), f"semopy {semopy.__version__}", notes, timings, cpu)


# ---------------------------------------------------------------------------------------------
# mirt (IRT) and an independent marginal ML
# ---------------------------------------------------------------------------------------------
def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class _GradedML:
    """Marginal likelihood of a unidimensional graded model (2PL for two categories):
    P(y_j >= m | theta) = logistic(a_j theta + d_jm), theta ~ N(0, 1), integrated by
    Gauss-Hermite quadrature.  Parameters per item: a_j, d_j1 > ... > d_j,K-1."""

    def __init__(self, Y: np.ndarray, n_nodes: int = 61):
        self.Y = np.asarray(Y, dtype=int)
        self.N, self.J = self.Y.shape
        self.K = [int(self.Y[:, j].max()) + 1 for j in range(self.J)]
        x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
        self.nodes, self.logw = x, np.log(w / w.sum())
        self.onehot = [np.eye(K)[self.Y[:, j]] for j, K in enumerate(self.K)]  # (N, K)
        self.slices, k = [], 0
        for K in self.K:
            self.slices.append(slice(k, k + K))
            k += K
        self.n_params = k

    def start(self) -> np.ndarray:
        p = []
        for j, K in enumerate(self.K):
            ge = np.array([(self.Y[:, j] >= m).mean() for m in range(1, K)]).clip(0.01, 0.99)
            p += [1.0, *np.log(ge / (1 - ge))]
        return np.array(p)

    def _item(self, theta, j):
        a, d = theta[self.slices[j]][0], theta[self.slices[j]][1:]
        F = _sigmoid(a * self.nodes[:, None] + d[None, :])  # (Q, K-1)
        ones, zeros = np.ones((len(self.nodes), 1)), np.zeros((len(self.nodes), 1))
        Fp = np.hstack([ones, F, zeros])  # F_0 .. F_K
        P = np.clip(Fp[:, :-1] - Fp[:, 1:], 1e-300, None)  # (Q, K)
        f = np.hstack([zeros, F * (1 - F), zeros])  # f_0 .. f_K
        return a, P, f

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        items = [self._item(theta, j) for j in range(self.J)]
        L = self.logw[None, :].repeat(self.N, 0)
        for j, (_, P, _) in enumerate(items):
            L = L + self.onehot[j] @ np.log(P).T  # (N, Q)
        mx = L.max(1, keepdims=True)
        ll_p = mx[:, 0] + np.log(np.exp(L - mx).sum(1))
        post = np.exp(L - ll_p[:, None])  # (N, Q)
        g = np.zeros(self.n_params)
        for j, (a, P, f) in enumerate(items):
            r = post.T @ self.onehot[j]  # (Q, K) expected counts
            rp = r / P
            s = self.slices[j]
            g[s.start] = np.sum(rp * self.nodes[:, None] * (f[:, :-1] - f[:, 1:]))
            K = self.K[j]
            for m in range(1, K):
                g[s.start + m] = np.sum(f[:, m] * (rp[:, m] - rp[:, m - 1]))
        return float(ll_p.sum()), g

    def fit(self) -> tuple[np.ndarray, np.ndarray]:
        from scipy.optimize import minimize

        res = minimize(lambda t: tuple(-v for v in self.value_and_grad(t)), self.start(), jac=True,
                       method="BFGS", options={"gtol": 1e-7, "maxiter": 5000})
        theta = res.x
        # observed information: central differences of the analytic gradient
        H = np.empty((self.n_params, self.n_params))
        for k in range(self.n_params):
            h = 1e-5 * max(1.0, abs(theta[k]))
            e = np.zeros(self.n_params)
            e[k] = h
            H[:, k] = -(self.value_and_grad(theta + e)[1] - self.value_and_grad(theta - e)[1]) / (2 * h)
        H = (H + H.T) / 2
        return theta, np.linalg.inv(H)


def irt_ml(Y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Independent marginal ML of a unidimensional 2PL / graded model on ``Y`` (N x J,
    categories 0..K-1): ``{"a": (est, se), "d": (est (J, K-1) padded with NaN, se)}``
    in the slope-intercept form P(y >= m) = logistic(a theta + d_m)."""
    model = _GradedML(Y)
    theta, V = model.fit()
    se = np.sqrt(np.diag(V))
    J, Kmax = model.J, max(model.K)
    a = np.array([theta[s.start] for s in model.slices])
    a_se = np.array([se[s.start] for s in model.slices])
    d = np.full((J, Kmax - 1), np.nan)
    d_se = np.full((J, Kmax - 1), np.nan)
    for j, s in enumerate(model.slices):
        d[j, : model.K[j] - 1] = theta[s][1:]
        d_se[j, : model.K[j] - 1] = se[s][1:]
    return {"a": (a, a_se), "d": (d, d_se)}


#: quadrature points and EM tolerance of the mirt fits: R mirt's default for one dimension is 61
#: points; PyPI mirt's defaults (21 points, tol 1e-4) leave the GRM slopes of ``va_grm`` up to
#: 0.03 (0.15 SE) from the ML estimate (quadrature error) and LSAT7's up to 0.007 (EM stopped early)
MIRT_QUADPTS = 61
MIRT_TOL = 1e-6


def mirt_peer(case: Case, frame: pd.DataFrame) -> Peer:
    import mirt

    items = case.items
    (construct,) = case.model
    Y = frame[items].to_numpy(dtype=int)
    K = int(Y.max()) + 1
    kind = "2PL" if K == 2 else "GRM"
    timings: dict[str, float] = {}
    extra = {} if kind == "2PL" else {"n_categories": K}
    with _Clock() as c:
        res = mirt.fit_mirt(Y, model=kind, item_names=list(items), n_quadpts=MIRT_QUADPTS, tol=MIRT_TOL, **extra)
    timings[f"mirt fit_mirt {kind} (EM, SEs)"], cpu = c.wall, c.cpu
    with _Clock() as c:
        ml = irt_ml(Y)
    timings["independent ML check (not counted)"] = c.wall
    labels = list(res.vcov_labels)
    V = np.asarray(res.vcov, dtype=float)
    pos = {n: k for k, n in enumerate(labels)}
    coef = res.coef()
    coef = coef.to_pandas() if hasattr(coef, "to_pandas") else pd.DataFrame(coef)
    notes = [f"mirt {kind} ({MIRT_QUADPTS} quadrature points, tol {MIRT_TOL:g}): converged {bool(res.converged)}, "
             f"{res.n_iterations} EM iterations, "
             f"log-likelihood {res.log_likelihood:.4f}, SE method {res.se_method}"]
    src = f"mirt {kind}"
    rows = []

    def cov(x, y):
        return V[pos[x], pos[y]]

    a_ml, a_ml_se = ml["a"]
    d_ml, d_ml_se = ml["d"]
    for j, i in enumerate(items):
        la = f"discrimination[{i}]"
        a = float(coef.loc[i, "discrimination"])
        va = cov(la, la)
        rows.append(dict(block="loading", lhs=construct, op="=~", rhs=i, scale="logit", item=i, construct=construct,
                         peer_est=a, peer_se=math.sqrt(va), ml_est=a_ml[j], ml_se=a_ml_se[j], peer_source=src + " a"))
        tot = a * a + LOGISTIC_VAR
        dstd = LOGISTIC_VAR / tot**1.5
        s_ml = a_ml[j] / math.sqrt(a_ml[j] ** 2 + LOGISTIC_VAR)
        rows.append(dict(block="loading", lhs=construct, op="=~", rhs=i, scale="standardized", item=i,
                         construct=construct, peer_est=a / math.sqrt(tot), peer_se=dstd * math.sqrt(va),
                         ml_est=s_ml, ml_se=LOGISTIC_VAR / (a_ml[j] ** 2 + LOGISTIC_VAR) ** 1.5 * a_ml_se[j],
                         peer_source=src + " a / sqrt(a^2 + pi^2/3); SE delta method"))
        for m in range(K - 1):
            if kind == "2PL":
                lb, b = f"difficulty[{i}]", float(coef.loc[i, "difficulty"])
            else:
                lb, b = f"thresholds[{i},{m}]", float(coef.loc[i, f"thresholds_{m + 1}"])
            vb, cab = cov(lb, lb), cov(la, lb)
            var = b * b * va + a * a * vb + 2 * a * b * cab  # of a * b (and of -a * b)
            if kind == "2PL":
                rows.append(dict(block="intercept", lhs=i, op="~1", rhs="", scale="logit", item=i,
                                 construct=construct, peer_est=-a * b, peer_se=math.sqrt(var),
                                 ml_est=d_ml[j, 0], ml_se=d_ml_se[j, 0],
                                 peer_source=src + " d = -a b; SE delta method"))
            else:
                rows.append(dict(block="threshold", lhs=i, op="|", rhs=f"t{m + 1}", scale="logit", item=i,
                                 construct=construct, peer_est=a * b, peer_se=math.sqrt(var),
                                 ml_est=-d_ml[j, m], ml_se=d_ml_se[j, m],
                                 peer_source=src + f" a b_{m + 1}; SE delta method"))
    table = pd.DataFrame(rows)
    dev = np.abs(table.peer_est - table.ml_est)
    sed = np.abs(table.peer_se / table.ml_se - 1)
    notes.append(f"mirt vs the independent ML check: max |estimate diff| {np.nanmax(dev):.1e}, "
                 f"max relative SE diff {np.nanmax(sed):.1%}")
    peer_s = sum(v for k, v in timings.items() if "not counted" not in k)
    return Peer(table, peer_s, f"mirt {mirt.__version__} (PyPI)", notes, timings, cpu)


CASES: dict[str, Case] = {
    "hs39": Case(
        "hs39", "Holzinger-Swineford 1939: three-factor CFA of x1-x9, 301 pupils", "cfa", _holzinger,
        {"visual": ["x1", "x2", "x3"], "textual": ["x4", "x5", "x6"], "speed": ["x7", "x8", "x9"]},
        semopy_peer, scales={f"x{k}": "continuous" for k in range(1, 10)}, id_column="id"),
    "poldem": Case(
        "poldem", "Political democracy (Bollen 1989): measurement part, three correlated factors, 75 countries",
        "cfa", _poldem,
        {"ind60": ["x1", "x2", "x3"], "dem60": ["y1", "y2", "y3", "y4"], "dem65": ["y5", "y6", "y7", "y8"]},
        semopy_peer, scales={**{f"x{k}": "continuous" for k in range(1, 4)},
                             **{f"y{k}": "continuous" for k in range(1, 9)}}),
    "lsat7": Case(
        "lsat7", "LSAT section 7: 2PL, 5 binary items, 1000 examinees", "irt", lambda: _mirt_frame("LSAT7"),
        {"ability": [f"Item{k}" for k in range(1, 6)]}, mirt_peer),
    "va_grm": Case(
        "va_grm", "mirt's verbal_aggression set (simulated GRM): 24 items scored 0/1/2, 316 persons", "irt",
        lambda: _mirt_frame("verbal_aggression"), {"aggression": [f"VA{k}" for k in range(1, 25)]}, mirt_peer),
}


# ---------------------------------------------------------------------------------------------
# smeintl
# ---------------------------------------------------------------------------------------------
@dataclass
class SmeintlFit:
    table: pd.DataFrame
    seconds: float
    settings: dict[str, int]
    diagnostics: dict[str, float]
    timing: dict[str, float]
    cpu_seconds: float = float("nan")


def fit_smeintl(case: Case, frame: pd.DataFrame, *, quick: bool = False, seed: int = 1,
                draws: int | None = None, tune: int | None = None, chains: int | None = None) -> SmeintlFit:
    """smeintl's fit of ``case`` (spec from the model syntax, no group level): its parameter
    table and the wall time of the fit (model build, compile and sampling)."""
    from smeintl import parameter_table, spec_from_model
    from smeintl.api import fit_settings
    from smeintl.data import survey_from_frame
    from smeintl.measurement import MeasurementModel, diagnose

    built = spec_from_model(case.model_text, frame, scales=case.scales, name=case.name, id_column=case.id_column)
    survey = survey_from_frame(frame, built.spec, source=case.name)
    settings = fit_settings(built.spec, quick=quick, draws=draws, tune=tune, chains=chains)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _Clock() as c:
            fit = MeasurementModel(built.spec, group=False).fit(survey, random_seed=seed, progressbar=False,
                                                                log_likelihood=False, posterior_predictive=False,
                                                                **settings)
    d = diagnose(fit)
    table = parameter_table(fit, built.spec, prob=PROB)
    diag = {"max_rhat": float(d.max_rhat), "min_ess_bulk": float(d.min_ess_bulk), "divergences": int(d.divergences),
            "sampler": str(fit.attrs.get("sampler", "")),
            "parameterization": str(fit.attrs.get("parameterization", "")),
            "mean_steps": _mean_steps(fit)}
    return SmeintlFit(table, c.wall, settings, diag, _timing(fit), c.cpu)


def _timing(fit) -> dict[str, float]:
    """Model build, compile and sampling seconds from the fit's attrs (``sample_s`` there
    includes the compile)."""
    t = json.loads(fit.attrs.get("timing", "{}"))
    build, sample, comp = (float(t.get(k, np.nan)) for k in ("build_s", "sample_s", "compile_s"))
    out = {"build": build, "compile": comp, "sampling": sample - comp if np.isfinite(comp) else sample}
    return {k: v for k, v in out.items() if np.isfinite(v)}


def _mean_steps(fit) -> float:
    """Mean leapfrog steps per draw (NaN where the fit does not record them)."""
    from smeintl import compat

    try:
        stats = compat.group(fit, "sample_stats")
    except KeyError:
        return float("nan")
    for name in ("n_steps", "tree_size"):
        if name in stats:
            return float(stats[name].mean())
    return float("nan")


def compare(case: Case, peer: Peer, sm: SmeintlFit) -> pd.DataFrame:
    """One row per peer parameter with smeintl's posterior summary of the same parameter."""
    st = sm.table.copy()
    st["rhs"] = st["rhs"].fillna("")
    pt = peer.table.copy()
    pt["rhs"] = pt["rhs"].fillna("")
    for col in ("ml_est", "ml_se"):
        if col not in pt:
            pt[col] = np.nan
    merged = pt.merge(st[KEY + ["mean", "sd", "lower", "upper", "rhat", "ess_bulk"]], on=KEY, how="left",
                      validate="one_to_one")
    missing = merged["mean"].isna()
    if missing.any():
        raise RuntimeError(f"{case.name}: no smeintl row for " + ", ".join(
            " ".join(map(str, r)) for r in merged.loc[missing, KEY].itertuples(index=False)))
    merged["inside"] = (merged.peer_est >= merged.lower) & (merged.peer_est <= merged.upper)
    merged["z"] = (merged.peer_est - merged["mean"]) / merged["sd"]
    merged["sd_ratio"] = merged["sd"] / merged.peer_se
    merged["case"] = case.name
    return merged[COLUMNS]


def run_case(case: Case, *, quick: bool = False, seed: int = 1, draws=None, tune=None, chains=None,
             log=print) -> tuple[pd.DataFrame, Peer, SmeintlFit]:
    frame = case.load()
    log(f"[{case.name}] {case.title}")
    peer = case.peer(case, frame)
    log(f"[{case.name}] peer ({peer.tool}) {peer.seconds:.2f} s wall, {peer.cpu_seconds:.2f} s CPU")
    sm = fit_smeintl(case, frame, quick=quick, seed=seed, draws=draws, tune=tune, chains=chains)
    log(f"[{case.name}] smeintl {sm.seconds:.1f} s wall, {sm.cpu_seconds:.1f} s CPU ({sm.settings})")
    return compare(case, peer, sm), peer, sm


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------
def _f(x, d=3) -> str:
    return "" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{d}f}"


def _param(r) -> str:
    rhs = f" {r.rhs}" if r.rhs else ""
    return f"`{r.lhs} {r.op}{rhs}`".replace("|", "\\|")  # a threshold's "|" inside a table cell


def markdown_table(t: pd.DataFrame) -> str:
    has_ml = t["ml_est"].notna().any()
    head = ["parameter", "scale", "peer est", "peer SE"] + (["ML check"] if has_ml else []) + \
           ["smeintl mean", "sd", "90% interval", "inside", "z", "sd / SE"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in t.itertuples(index=False):
        cells = [_param(r), r.scale, _f(r.peer_est), _f(r.peer_se)] + ([_f(r.ml_est)] if has_ml else []) + \
                [_f(r.mean), _f(r.sd), f"[{_f(r.lower)}, {_f(r.upper)}]", "yes" if r.inside else "**NO**",
                 _f(r.z, 2), _f(r.sd_ratio, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ("smeintl", "semopy", "mirt", "pymc", "nutpie", "pytensor", "numpy", "scipy", "pandas"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "not installed"
    return out


def _smeintl_source() -> str:
    """Where the smeintl that ran comes from: its git commit (and whether its ``src/`` has
    uncommitted changes), or its folder."""
    import subprocess

    import smeintl

    where = Path(smeintl.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"smeintl from {where}"
    return f"smeintl at commit {head}" + (" with uncommitted changes in its package" if dirty else "")


def summary_markdown(results: list[tuple[Case, pd.DataFrame, Peer, SmeintlFit]], *, quick: bool, seed: int,
                     load: tuple[float, float] = (float("nan"), float("nan"))) -> str:
    v = _versions()
    out = ["# smeintl against maximum-likelihood peers", "",
           f"Generated by `benchmarks/validate.py{' --quick' if quick else ''} --seed {seed}` on "
           f"{platform.machine()} with {os.cpu_count()} CPUs, Python {v['python']}, {_smeintl_source()}: "
           + ", ".join(f"{k} {v[k]}" for k in v if k != "python") + ".", "",
           "Peer: ML estimate and standard error; smeintl: posterior mean, sd and central 90% interval; "
           "*inside*: the peer's estimate lies in that interval; *z* = (peer - mean) / sd; "
           "*sd / SE*: posterior sd over the peer's standard error; *ML check* (IRT): the same model "
           "fitted by this script's own marginal ML (61-point Gauss-Hermite quadrature), a check on the "
           "peer.  Times are of the whole fit (smeintl: model build, compile and sampling, without "
           "posterior predictive draws or pointwise log-likelihood); CPU seconds are this process's, "
           "every thread, and depend less than wall seconds on other work on the machine "
           f"(load average {load[0]:.1f} at the start, {load[1]:.1f} at the end).", "",
           "| data set | peer | peer wall s | peer CPU s | smeintl wall s | smeintl CPU s | "
           "smeintl draws x chains (tune) | max R-hat | min bulk ESS | divergences | inside 90% |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case, t, peer, sm in results:
        s = sm.settings
        out.append(f"| {case.name} | {peer.tool} | {peer.seconds:.2f} | {peer.cpu_seconds:.2f} | "
                   f"{sm.seconds:.1f} | {sm.cpu_seconds:.1f} | "
                   f"{s['draws']} x {s['chains']} ({s['tune']}) | {sm.diagnostics['max_rhat']:.3f} | "
                   f"{sm.diagnostics['min_ess_bulk']:.0f} | {sm.diagnostics['divergences']} | "
                   f"{int(t.inside.sum())} of {len(t)} |")
    for case, t, peer, sm in results:
        out += ["", f"## {case.name}: {case.title}", "", "```", case.model_text, "```", ""]
        times = "; ".join(f"{k} {v:.2f} s" for k, v in peer.timings.items())
        out.append(f"- peer: {peer.tool}; {times}")
        sm_t = ", ".join(f"{k} {v:.1f} s" for k, v in sm.timing.items())
        out.append(f"- smeintl: {sm.seconds:.1f} s wall ({sm_t}); sampler {sm.diagnostics['sampler']}, "
                   f"{sm.diagnostics['mean_steps']:.1f} leapfrog steps per draw, "
                   f"parameterization {sm.diagnostics['parameterization'] or 'latent'}")
        for n in peer.notes:
            out.append(f"- {n}")
        outside = t[~t.inside]
        out.append(f"- {int(t.inside.sum())} of {len(t)} peer estimates inside smeintl's 90% interval"
                   + ("" if outside.empty else "; outside: " + ", ".join(
                       f"{_param(r)} ({r.scale}, z {r.z:.2f})" for r in outside.itertuples(index=False))))
        for block in t.block.unique():
            out += ["", f"### {block}", "", markdown_table(t[t.block == block])]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the spec's quick draws, tune and chains")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=1, help="smeintl's random seed (default 1)")
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES), help="data sets (default all)")
    ap.add_argument("--draws", type=int)
    ap.add_argument("--tune", type=int)
    ap.add_argument("--chains", type=int)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()[0]
    results = []
    for name in args.cases:
        case = CASES[name]
        t, peer, sm = run_case(case, quick=args.quick, seed=args.seed, draws=args.draws, tune=args.tune,
                               chains=args.chains)
        t.to_csv(args.out / f"{name}.csv", index=False)
        results.append((case, t, peer, sm))
    pd.concat([r[1] for r in results]).to_csv(args.out / "all.csv", index=False)
    trows = []
    for case, t, peer, sm in results:
        trows.append({"case": case.name, "peer": peer.tool, "peer_s": round(peer.seconds, 3),
                      "peer_cpu_s": round(peer.cpu_seconds, 3), "smeintl_s": round(sm.seconds, 2),
                      "smeintl_cpu_s": round(sm.cpu_seconds, 2), **sm.settings,
                      **{k: sm.diagnostics[k] for k in ("max_rhat", "min_ess_bulk", "divergences", "mean_steps")},
                      "inside": int(t.inside.sum()), "compared": len(t)})
    pd.DataFrame(trows).to_csv(args.out / "timings.csv", index=False)
    md = summary_markdown(results, quick=args.quick, seed=args.seed, load=(load0, os.getloadavg()[0]))
    (args.out / "summary.md").write_text(md)
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 30):
        for case, t, peer, sm in results:
            print(f"\n== {case.name}: {case.title}")
            print(t.drop(columns=["case", "peer_source", "item", "construct"]).to_string(
                index=False, float_format=lambda x: f"{x:.3f}"))
        print()
        print(pd.DataFrame(trows).to_string(index=False))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
