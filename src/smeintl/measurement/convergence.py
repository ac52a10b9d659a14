"""Rank-normalized split R-hat and bulk and tail ESS of many scalars at once.

ArviZ (0.x and 1.x alike) computes these one scalar at a time in a Python loop: for the
20,000 latent scores of a 10,000-firm fit that is about a minute (25 s R-hat, 19 s bulk
ESS, 16 s tail ESS with ArviZ 0.23; 49 s in all with ArviZ 1.3).  The functions here are
the same formulas (Vehtari, Gelman, Simpson, Carpenter and Bürkner 2021, as ArviZ writes
them: Blom's rank normalization, split chains, the folded R-hat, Geyer's initial monotone
sequence on the FFT autocovariance, the 5% and 95% quantile indicators of the tail ESS)
over a batch axis, in chunks of bounded memory.  ``tests/test_convergence.py`` checks
them against ArviZ's own on both stacks; :func:`smeintl.measurement.diagnostics.diagnose`
uses them for the per-firm scores and ArviZ for every other variable.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len
from scipy import special

__all__ = ["convergence", "TAIL_PROB", "CHUNK"]

#: the quantiles whose indicators the tail ESS follows (Vehtari et al. 2021; ArviZ 0.x's
#: default; ArviZ 1's follows its ``stats.ci_prob``: 0.11 and 0.89).  ``diagnose`` passes
#: it to ArviZ as well, so that both stacks give the same tail ESS
TAIL_PROB = (0.05, 0.95)

#: scalars per chunk: bounds the FFT's work arrays (about 60 MB at 2 x 900 draws)
CHUNK = 2000


def convergence(x: np.ndarray, prob: tuple[float, float] = TAIL_PROB) -> dict[str, np.ndarray]:
    """Rank-normalized split R-hat (``"rhat"``), bulk ESS (``"ess_bulk"``) and tail ESS
    (``"ess_tail"``, the smaller ESS of the indicators of the ``prob`` quantiles, type 7)
    of each scalar of ``x`` ``(chain, draw, *batch)``, each of shape ``batch``.

    NaN where a scalar has a non-finite draw or there are fewer than 4 draws (and, for
    R-hat, fewer than 2 chains), as ArviZ gives.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim < 2:
        raise ValueError(f"expected (chain, draw, ...) draws, got shape {x.shape}")
    batch = x.shape[2:]
    flat = np.moveaxis(x.reshape(x.shape[0], x.shape[1], -1), -1, 0)  # (S, chain, draw)
    out = {k: np.full(flat.shape[0], np.nan) for k in ("rhat", "ess_bulk", "ess_tail")}
    if x.shape[1] >= 4:
        for lo in range(0, flat.shape[0], CHUNK):
            part = flat[lo:lo + CHUNK]
            ok = np.isfinite(part).all(axis=(1, 2))
            if not ok.any():
                continue
            a = part[ok]
            s = _split(a)
            z = _z_scale(s)
            if x.shape[0] >= 2:
                folded = np.abs(s - np.median(s.reshape(s.shape[0], -1), axis=1)[:, None, None])
                out["rhat"][lo:lo + CHUNK][ok] = np.maximum(_rhat(z), _rhat(_z_scale(folded)))
            out["ess_bulk"][lo:lo + CHUNK][ok] = _ess(z)
            q = np.quantile(a.reshape(a.shape[0], -1), list(prob), axis=1)  # (2, S)
            out["ess_tail"][lo:lo + CHUNK][ok] = np.minimum(
                *(_ess(_split((a <= qi[:, None, None]).astype(float))) for qi in q))
    return {k: v.reshape(batch) for k, v in out.items()}


def _split(a: np.ndarray) -> np.ndarray:
    """Each chain's first and last half as chains of their own (an odd middle draw dropped)."""
    half = a.shape[-1] // 2
    return np.concatenate([a[..., :half], a[..., a.shape[-1] - half:]], axis=-2)


def _z_scale(a: np.ndarray) -> np.ndarray:
    """Blom's normal scores of each scalar's ranks over all its chains and draws, ties
    given their average rank (``scipy.stats.rankdata``'s ``"average"``, which loops over
    rows).  Twice an average rank is a whole number, so the scores come from one table."""
    flat = a.reshape(a.shape[0], -1)
    S, n = flat.shape
    order = np.argsort(flat, axis=1)
    s = np.take_along_axis(flat, order, axis=1)
    pos = np.broadcast_to(np.arange(n), (S, n))
    first = np.ones((S, n), dtype=bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    last = np.ones((S, n), dtype=bool)
    last[:, :-1] = first[:, 1:]
    start = np.maximum.accumulate(np.where(first, pos, 0), axis=1)
    end = np.minimum.accumulate(np.where(last, pos, n)[:, ::-1], axis=1)[:, ::-1]
    table = special.ndtri((np.arange(2 * n + 1) / 2.0 - 3 / 8) / (n - 2 * 3 / 8 + 1))
    z = np.empty((S, n))
    np.put_along_axis(z, order, table[start + end + 2], axis=1)  # 2 x rank = start + end + 2
    return z.reshape(a.shape)


def _rhat(a: np.ndarray) -> np.ndarray:
    n = a.shape[-1]
    between = n * np.var(a.mean(axis=-1), axis=-1, ddof=1)
    within = np.mean(np.var(a, axis=-1, ddof=1), axis=-1)
    return np.sqrt((between / within + n - 1) / n)


def _autocov(a: np.ndarray) -> np.ndarray:
    n = a.shape[-1]
    m = next_fast_len(2 * n)
    c = a - a.mean(axis=-1, keepdims=True)
    f = np.fft.rfft(c, n=m, axis=-1)
    f *= np.conjugate(f)
    return np.fft.irfft(f, n=m, axis=-1)[..., :n] / n


def _ess(a: np.ndarray) -> np.ndarray:
    """ESS of each scalar's ``(chain, draw)`` draws ``a`` ``(S, chain, draw)``: Geyer's
    initial positive and monotone sequences, as ArviZ's loop over lags writes them."""
    S, M, N = a.shape
    size = M * N
    acov = _autocov(a).mean(axis=1)  # (S, N): the chains' mean autocovariance
    mean_var = acov[:, 0] * N / (N - 1.0)
    var_plus = mean_var * (N - 1.0) / N
    if M > 1:
        var_plus = var_plus + np.var(a.mean(axis=-1), axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov) / var_plus[:, None]
    rho[:, 0] = 1.0
    # the pairs (rho[2k], rho[2k + 1]) that the initial positive sequence looks at: pair 0,
    # then k = 1 .. k_max while 2k - 1 < N - 3, stopping after the first with a sum <= 0
    k_max = max((N - 3) // 2, 0)
    pairs = rho[:, :2 * k_max + 2].reshape(S, k_max + 1, 2)
    P = pairs.sum(axis=-1)  # (S, k_max + 1)
    stop = P[:, 1:] <= 0.0
    if k_max:
        k_end = np.where(stop.any(axis=1), stop.argmax(axis=1) + 1, k_max)
    else:
        k_end = np.zeros(S, dtype=int)
    k_end = np.where(P[:, 0] > 0.0, k_end, 0)  # no pair looked at when the first sums <= 0
    # the monotone sequence: each kept pair's sum at most the one before it
    mono = np.minimum.accumulate(P, axis=1)
    kept = np.arange(k_max + 1)[None, :] < k_end[:, None]
    total = np.where(kept, mono, 0.0).sum(axis=1)
    last_even = rho[np.arange(S), 2 * k_end]
    P_end = P[np.arange(S), k_end]
    # the last pair's even term counts where it is positive or its pair was kept (sum >= 0);
    # with no pair looked at it is rho[0] = 1
    extra = np.where((last_even > 0) | ((P_end >= 0) & (k_end > 0)), last_even, 0.0)
    tau = np.maximum(-1.0 + 2.0 * total + extra, 1.0 / np.log10(size))
    used = np.arange(N)[None, :] < 2 * k_end[:, None] + 1
    bad = np.isnan(np.where(used, rho, 0.0)).any(axis=1)
    out = np.where(bad, np.nan, size / tau)
    constant = (a.reshape(S, -1).max(axis=1) - a.reshape(S, -1).min(axis=1)) < np.finfo(float).resolution
    return np.where(constant, float(size), out)
