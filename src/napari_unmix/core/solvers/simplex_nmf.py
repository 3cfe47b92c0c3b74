"""NNMF under an abundance model: exact W steps (FCLS) alternated with HALS H steps.

The objective is ``||X - W H||_F^2 + sum_j lambda_j ||H[j] - H0[j]||^2`` over
``H >= 0`` and ``W`` in the set of the abundance model (:mod:`.simplex`): every
row ``w >= 0`` with ``sum(w) = 1`` (``"sum-to-one"``), ``sum(w) <= 1``
(``"sum-le-one"``) or no sum constraint (``"free"``); the anchor term is the
seeded NNMF's pull of the spectra towards their seeds (:mod:`.hals`).

One iteration
-------------
* *W step.*  Every pixel's abundances are solved exactly for the current ``H`` by
  :func:`~.simplex.fit_simplex` (FCLS for the sum constraints, NNLS for
  ``"free"``).  It is warm-started: the passive sets and multipliers of the
  previous ``W`` are tried, and certified, first, so once the passive sets have
  settled most pixels need no NNLS solve at all.
* *H step.*  The HALS update of :mod:`.hals`: with ``C = W^T X`` and
  ``D = W^T W``, ``h_sweeps`` sweeps over the free rows of
  ``H[j] <- max(0, (C[j] - sum_{l != j} D[j, l] H[l] + lambda_j H0[j]) /
  (D[j, j] + lambda_j))``, each the exact minimiser of its block.  Locked rows are
  never touched; anchored rows are pulled towards their seeds.

Both steps minimise the objective exactly over their block, so it never
increases (up to rounding).

Every core: the W step's pixels are independent, so pixel blocks (``BLOCK_BYTES``
of ``X``) are solved by ``n_jobs`` worker threads, each also computing its block's
share of ``W^T X`` and ``W^T W``; the shares (and the blocks' squared errors) are
summed in block order, so the result does not depend on ``n_jobs``.

Scale
    Under a sum constraint ``W`` carries no scale: the rows of ``H`` carry the
    data's.  There is nothing to balance (HALS's power-of-two rescaling would
    break the constraint), and none is needed: ``W`` is recomputed from ``H`` at
    every step.

Empty components
    A free row whose abundance column is all zero (no pixel uses it) is left as it
    is: every spectrum fits equally well (an anchored one moves to its seed).  A
    row the H step sets to zero is its exact minimiser and is kept: under a sum
    constraint a zero spectrum is a legitimate "dark" endmember.  A pixel whose W
    step did not finish (flagged by the NNLS search, see :mod:`.simplex`) keeps its
    previous abundances, which are feasible, so the objective still does not
    increase.

Stopping rule
    As HALS: the objective (its square root) is evaluated at iteration 0 and
    every ``track_error_every`` iterations, and the run stops at the first sample
    whose relative improvement over the previous one is ``<= tol``
    (:class:`~._common.SampledErrorStopping`).
"""

from __future__ import annotations

import numpy as np

from ..parallel import Workers
from ._common import NMFFit, SampledErrorStopping, chunk_slices, rows_per_chunk
from .hals import H_SWEEPS, anchor_penalty, check_anchor, check_hals_inputs
from .pooled import ordered_sum, pooled_residual_norm
from .simplex import MAX_STEPS, check_abundance, fit_simplex

__all__ = ["BLOCK_BYTES", "fit_fcls_hals"]

#: Bytes of ``X`` per pixel block (one task of a worker in the W step).
BLOCK_BYTES = 4 * 2**20


def _h_step(C, D, H, free_rows, lam, lam_H0, sweeps):
    """HALS sweeps over the free rows of ``H`` (in place), in float64, from
    ``C = W^T X`` and ``D = W^T W``."""
    C = np.asarray(C, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    Hd = H.astype(np.float64)
    den = np.diag(D) + lam
    tiny = np.finfo(np.float64).tiny
    rows = [j for j in free_rows if den[j] > tiny and np.isfinite(den[j])]
    for _ in range(sweeps):
        for j in rows:
            num = C[j] - D[j] @ Hd + D[j, j] * Hd[j] + lam_H0[j]
            np.maximum(num / den[j], 0.0, out=Hd[j])
    H[rows] = Hd[rows]


def fit_fcls_hals(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                  track_error_every: int = 10, h_sweeps: int = H_SWEEPS,
                  anchor_weights=None, anchor_spectra=None, abundance: str = "free",
                  nnls=None, max_steps: int = MAX_STEPS, n_jobs=None,
                  block_bytes: int = BLOCK_BYTES, stop=None, **_ignored) -> NMFFit:
    """Fit ``X ~ W H`` with ``W`` under an abundance model (module documentation).

    Parameters
    ----------
    X : ndarray (n, m); W : ndarray (n, k); H : ndarray (k, m)
        Data and initial factors (not modified), float32 or float64.  ``W`` should
        satisfy the abundance model (it is only used for the error at iteration 0
        and as the warm start of the first W step).
    max_iter, tol, track_error_every
        Iteration cap and the sampled stopping rule.
    locked : bool ndarray (k,), optional
        Rows of ``H`` kept fixed (bit-identical).
    report : callable, optional
        ``report(iteration, max_iter, error)`` at every error sample.
    h_sweeps : int
        Sweeps over the rows of ``H`` per H step.
    anchor_weights, anchor_spectra
        The anchor of seeded NNMF, as for :func:`~.hals.fit_hals_numpy`.
    abundance : {"free", "sum-to-one", "sum-le-one"}, default "free"
        The abundance model of ``W``.
    nnls : callable, optional
        The exact NNLS solver of the W steps (default: numpy active set).
    max_steps : int
        Cap on the NNLS solves of one W step's multiplier search.
    n_jobs : int, optional
        Worker threads that share the pixel blocks of the W steps, of ``W^T X`` and
        of the error (``core.parallel``); the result does not depend on it.
    block_bytes : int
        Bytes of ``X`` per pixel block.
    stop : SampledErrorStopping, optional
        The stopping rule (default: the sampled relative-improvement rule).

    Returns
    -------
    NMFFit
    """
    check_abundance(abundance)
    free = check_hals_inputs(X, W, H, locked, 1, h_sweeps, 1.0)
    lam, H0 = check_anchor(anchor_weights, anchor_spectra, H, free)
    k = H.shape[0]
    dtype = X.dtype
    W = np.array(W, dtype=dtype)
    H = np.array(H, dtype=dtype, order="C")
    free_rows = np.flatnonzero(free).tolist()
    lam_d = np.zeros(k) if lam is None else lam
    lam_H0 = (np.zeros(H.shape) if lam is None
              else lam[:, None] * np.asarray(H0, dtype=np.float64))

    blocks = chunk_slices(X.shape[0], rows_per_chunk(X.shape[1], X.itemsize,
                                                     budget=block_bytes))
    if stop is None:
        stop = SampledErrorStopping(tol, track_error_every, float(np.finfo(dtype).eps),
                                    report=report, max_iter=max_iter)
    with Workers(n_jobs, len(blocks)) as workers:
        def error():
            return float(np.sqrt(pooled_residual_norm(X, W, H, workers, blocks) ** 2
                                 + anchor_penalty(H, lam, H0)))

        def w_block(sl):
            fit = fit_simplex(X[sl], H, abundance=abundance, nnls=nnls, max_steps=max_steps,
                              start=W[sl], mu0=None if mu is None else mu[sl])
            if fit.capped is not None and fit.capped.any():
                fit.W[fit.capped] = W[sl][fit.capped]   # feasible: no increase
            Wb = fit.W
            return Wb, fit.mu, Wb.T @ X[sl], Wb.T @ Wb

        stop.record(0, error())
        mu = None
        converged = False
        n_iter = 0
        for it in range(1, max_iter + 1):
            parts = workers.map(w_block, blocks)
            W = np.concatenate([p[0] for p in parts]) if parts else W
            mu = np.concatenate([p[1] for p in parts]) if parts else mu
            if free_rows:
                _h_step(ordered_sum(p[2] for p in parts), ordered_sum(p[3] for p in parts),
                        H, free_rows, lam_d, lam_H0, h_sweeps)
            n_iter = it
            if stop.is_sample(it):
                if stop.record(it, error()):
                    converged = True
                    break
    fit = NMFFit(W=W, H=H, n_iter=n_iter, converged=converged, history=stop.history)
    fit.n_jobs = workers.n
    return fit
