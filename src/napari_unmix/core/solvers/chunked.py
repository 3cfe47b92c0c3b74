"""Fixed-H NNLS over pixel chunks: the engine behind ``core.nnls`` and the NNLS seeds.

Every pixel is an independent problem, so the data is solved a chunk of pixels at a
time with a registered NNLS solver: memory stays bounded by the chunk whatever the
image size, and progress is reported (and a cancel honoured) between chunks.  Under
a sum constraint on the abundances (``abundance``) each chunk is solved by
:func:`~.simplex.fit_simplex` on top of the chosen exact solver.  ``loss="poisson"``
picks a solver that fits the Poisson loss (free abundances only).
"""

from __future__ import annotations

import numpy as np

from ..device import resolve_device
from . import pick_nnls_solver
from ._common import chunk_slices, one_blas_thread, rows_per_chunk
from .simplex import fit_simplex

__all__ = ["solve_nnls"]


def solve_nnls(X, H, *, solver="auto", backend="auto", tol=1e-4, max_iter=1000,
               chunk_size=None, device="auto", restart=False, report=None, abundance="free",
               loss="frobenius"):
    """Solve fixed-H NNLS on validated arrays, chunk by chunk.

    No validation and no result object: ``X`` (n_pixels, n_channels) and ``H``
    (k, n_channels) must be finite and ``H`` non-negative.  ``abundance`` is the
    abundance model (``"free"``, ``"sum-to-one"``, ``"sum-le-one"``); the sum
    constraints need an exact solver.  ``loss`` is the loss to fit
    (``core.solvers.LOSSES``; for ``"poisson"`` ``X`` must be non-negative too).

    Returns
    -------
    W : ndarray (n_pixels, k), in the dtype of ``X``
    info : dict
        ``spec`` (the SolverSpec that ran), ``device``, ``chunk_size``,
        ``chunk_iters`` and ``chunk_converged`` (per chunk; under a sum constraint
        the iterations are the batched NNLS solves of the multiplier search),
        ``capped`` (a boolean mask of the pixels that hit the iteration cap) and
        ``active`` (the pixels where the sum constraint is active; all for
        ``"sum-to-one"``, none for ``"free"``).
    """
    spec = pick_nnls_solver(solver, backend, abundance=abundance, loss=loss)
    dev = resolve_device(device) if spec.needs_torch else "cpu"
    n, m = X.shape
    k = H.shape[0]
    if chunk_size is None:
        chunk_size = rows_per_chunk(max(m, k), X.itemsize)
    slices = chunk_slices(n, chunk_size)
    W = np.empty((n, k), dtype=X.dtype)
    capped = np.zeros(n, dtype=bool)
    active = np.zeros(n, dtype=bool)
    chunk_iters, chunk_converged = [], []
    for i, sl in enumerate(slices):
        if abundance == "free":
            fit = spec.func(X[sl], H, max_iter=max_iter, tol=tol, device=dev, restart=restart,
                            loss=loss)
        else:
            with one_blas_thread():  # thin products: BLAS threads only compete
                fit = fit_simplex(X[sl], H, abundance=abundance, nnls=spec.func,
                                  max_iter=max_iter, tol=tol, device=dev, restart=restart)
            active[sl] = fit.active
        W[sl] = fit.W
        if fit.capped is not None:
            capped[sl] = fit.capped
        chunk_iters.append(int(fit.n_iter))
        chunk_converged.append(bool(fit.converged))
        if report is not None:
            report(i + 1, len(slices), None)
    info = {
        "spec": spec,
        "device": dev,
        "chunk_size": int(chunk_size),
        "chunk_iters": chunk_iters,
        "chunk_converged": chunk_converged,
        "capped": capped,
        "active": active,
    }
    return W, info
