"""Fixed-H NNLS per pixel with SciPy's Lawson-Hanson active-set solver.

Exact (it stops at the KKT optimum) but a Python-level loop over pixels.  SciPy's
``nnls`` has no tolerance, only an iteration limit; when it reaches that limit it
raises ``RuntimeError`` instead of returning an approximation.  Such pixels are
caught, recorded in ``NNLSFit.capped`` and get NaN abundances, so that they are
visible instead of silently wrong.  SciPy does not say how many iterations a
solved pixel took: ``n_iter`` is ``max_iter`` when a pixel hit it, else 0.
"""

from __future__ import annotations

import numpy as np

from ._common import NNLSFit

__all__ = ["fit_nnls_scipy"]


def fit_nnls_scipy(X, H, *, max_iter: int, **_ignored) -> NNLSFit:
    """Solve ``min_w ||x_p - w H||`` with ``w >= 0`` for every row ``x_p`` of ``X``."""
    from scipy.optimize import nnls

    A = np.ascontiguousarray(H.T, dtype=np.float64)
    n, k = X.shape[0], H.shape[0]
    W = np.empty((n, k), dtype=X.dtype)
    capped = np.zeros(n, dtype=bool)
    for p in range(n):
        try:
            W[p] = nnls(A, np.asarray(X[p], dtype=np.float64), maxiter=max_iter)[0]
        except RuntimeError:
            W[p] = np.nan
            capped[p] = True
    return NNLSFit(W=W, n_iter=max_iter if capped.any() else 0, converged=not capped.any(),
                   capped=capped)
