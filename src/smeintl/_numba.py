"""Make PyTensor's numba backend cache the compiled log-density across processes.

PyTensor (2.38) caches a numba-compiled graph on disk only when every operation in it
has a cache key.  Its digamma (``Psi``) is implemented through a SciPy Cython function
pointer, which numba cannot cache, so any model with a Beta or negative binomial
likelihood (whose gradients need digamma) was recompiled from scratch in every
process: about 30 s for the default instrument, paid by every ``smeintl fit``,
every robustness refit and every study replication on a new worker.

:func:`register` gives ``Psi`` a pure-numba implementation with a cache key.  The
value agrees with :func:`scipy.special.digamma` to about 1e-15 relative error
(``tests/test_likelihood_speed.py``).  Registering is idempotent and a no-op without numba.
"""

from __future__ import annotations

import math

_REGISTERED = [False]


def register() -> bool:
    """Register the cacheable digamma with PyTensor's numba backend; True when active."""
    if _REGISTERED[0]:
        return True
    try:
        import numba  # noqa: F401
        from pytensor.link.numba.dispatch import basic as numba_basic
        from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
        from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key
        from pytensor.scalar.math import Psi
    except ImportError:
        return False

    from .families.kernels import _psi_positive

    psi_positive = numba_basic.numba_njit(_psi_positive)

    @register_funcify_and_cache_key(Psi)
    def numba_funcify_Psi(op, node, **kwargs):
        @numba_basic.numba_njit
        def psi(x):
            x = float(x)
            if x <= 0.0:
                if x == math.floor(x):
                    # scipy: -inf at 0, nan at the negative integers
                    return -math.inf if x == 0.0 else math.nan
                # reflection: psi(1 - x) - psi(x) = pi cot(pi x)
                return psi_positive(1.0 - x) - math.pi / math.tan(math.pi * x)
            return psi_positive(x)

        return psi, scalar_op_cache_key(op, cache_version="smeintl-1")

    _REGISTERED[0] = True
    return True
