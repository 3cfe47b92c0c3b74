"""Fixed-H NNLS over pixel chunks: the engine behind ``core.nnls`` and the NNLS seeds.

Every pixel is an independent problem, so the data is solved a chunk of pixels at a
time with a registered NNLS solver: memory stays bounded by the chunk whatever the
image size, and progress is reported (and a cancel honoured) between chunks.  Under
a sum constraint on the abundances (``abundance``) each chunk is solved by
:func:`~.simplex.fit_simplex` on top of the chosen exact solver.  ``loss="poisson"``
picks a solver that fits the Poisson loss (free abundances only).

Every core (``n_jobs``, :mod:`~napari_unmix.core.parallel`).  On the CPU a chunk is
cut into work blocks of :data:`BLOCK_BYTES` of ``X`` (their size depends on the data
only) that a pool of worker threads solves, each block by one call of the solver,
BLAS at one thread per worker; a solver that shares one set-up over its blocks
(``SolverSpec.shares_workers``: the numpy active set) gets the pool itself and cuts
its own blocks.  Every pixel's abundances are computed by the same calls whatever
``n_jobs`` is, so ``W`` is bit-identical for every ``n_jobs``.  On CUDA the chunks run
one after another on the device; for the solvers that take device data
(``SolverSpec.device_input``) ``X`` is kept there when it fits the device's memory
budget, else streamed, the next chunk's copy overlapping the current one's solve
(:class:`~napari_unmix.core.streaming.DeviceBlocks`).
"""

from __future__ import annotations

import numpy as np

from ..device import resolve_device
from ..parallel import Workers
from ..streaming import DeviceBlocks, is_tensor, plan_blocks
from . import pick_nnls_solver
from ._common import chunk_slices, rows_per_chunk
from .pooled import ordered_pair_sums
from .simplex import fit_simplex

__all__ = ["BLOCK_BYTES", "solve_nnls"]

#: Bytes of ``X`` per work block of a CPU solve (one solver call per block).
BLOCK_BYTES = 2 * 2**20


def _solve_block(spec, Xb, H, dev, abundance, options):
    if abundance == "free":
        return spec.func(Xb, H, device=dev, **options)
    return fit_simplex(Xb, H, abundance=abundance, nnls=spec.func, device=dev, **options)


def _merge(fits, slices, k, dtype):
    """One fit of the blocks ``slices`` of a chunk (their fits in block order)."""
    n = slices[-1].stop if slices else 0
    W = np.empty((n, k), dtype=dtype)
    capped = np.zeros(n, dtype=bool)
    active = np.zeros(n, dtype=bool)
    for sl, fit in zip(slices, fits, strict=True):
        W[sl] = fit.W
        if fit.capped is not None:
            capped[sl] = fit.capped
        if getattr(fit, "active", None) is not None:
            active[sl] = fit.active
    n_iter = max((int(f.n_iter) for f in fits), default=0)
    return W, capped, active, n_iter, all(bool(f.converged) for f in fits)


def solve_nnls(X, H, *, solver="auto", backend="auto", tol=1e-4, max_iter=1000,
               chunk_size=None, device="auto", restart=False, report=None, abundance="free",
               loss="frobenius", n_jobs=None, block_bytes=BLOCK_BYTES, fit_sums=False):
    """Solve fixed-H NNLS on validated arrays, chunk by chunk.

    No validation and no result object: ``X`` (n_pixels, n_channels) and ``H``
    (k, n_channels) must be finite and ``H`` non-negative.  ``abundance`` is the
    abundance model (``"free"``, ``"sum-to-one"``, ``"sum-le-one"``); the sum
    constraints need an exact solver.  ``loss`` is the loss to fit
    (``core.solvers.LOSSES``; for ``"poisson"`` ``X`` must be non-negative too).
    ``n_jobs``: the worker threads of a CPU solve (:mod:`~napari_unmix.core.parallel`;
    the result does not depend on it); ``block_bytes``: the bytes of ``X`` per work
    block.  ``fit_sums``: ask the solver for the fit's squared norms as it goes
    (``NNLSFit.fit_sums``; the numpy active set forms them while each block is in
    cache, saving the caller a second pass over ``X``).

    Returns
    -------
    W : ndarray (n_pixels, k), in the dtype of ``X``
    info : dict
        ``spec`` (the SolverSpec that ran), ``device``, ``n_jobs`` (the workers that
        ran: 1 on a CUDA device), ``chunk_size``, ``chunk_iters`` and
        ``chunk_converged`` (per chunk; under a sum constraint the iterations are the
        batched NNLS solves of the multiplier search), ``capped`` (a boolean mask of
        the pixels that hit the iteration cap) and ``active`` (the pixels where the
        sum constraint is active; all for ``"sum-to-one"``, none for ``"free"``) and
        ``fit_sums`` (``(sum ||x - w H||^2, sum ||x||^2)`` over every pixel, in chunk
        order, when asked for and every chunk's solver formed them; else None).
    """
    spec = pick_nnls_solver(solver, backend, abundance=abundance, loss=loss)
    dev = resolve_device(device) if spec.needs_torch else "cpu"
    on_device = spec.needs_torch and not str(dev).startswith("cpu")
    stream = on_device and spec.device_input and abundance == "free"
    n, m = X.shape
    k = H.shape[0]
    itemsize = X.element_size() if is_tensor(X) else X.itemsize
    if chunk_size is None and stream:   # resident: one chunk; else the streamed blocks
        _, planned = plan_blocks(n, m * itemsize, dev)
        chunk_size = planned[0].stop if planned else 1
    elif chunk_size is None:
        chunk_size = rows_per_chunk(max(m, k), itemsize)
    slices = chunk_slices(n, chunk_size)
    block_rows = rows_per_chunk(m, itemsize, budget=block_bytes)
    W = np.empty((n, k), dtype=np.dtype(str(X.dtype).replace("torch.", "")))
    capped = np.zeros(n, dtype=bool)
    active = np.zeros(n, dtype=bool)
    chunk_iters, chunk_converged = [], []
    options = {"max_iter": max_iter, "tol": tol, "restart": restart, "loss": loss}
    shares = spec.shares_workers and abundance == "free"
    sums = [] if fit_sums and shares and not on_device else None
    n_tasks = None if shares else max(len(chunk_slices(min(chunk_size, n), block_rows)), 1)
    with Workers(1 if on_device else n_jobs, n_tasks, torch_too=spec.needs_torch) as pool:
        chunks = DeviceBlocks(X, dev, slices) if stream else ((sl, X[sl]) for sl in slices)
        for i, (sl, Xc) in enumerate(chunks):
            if on_device:
                fit = _solve_block(spec, Xc, H, dev, abundance, options)
                Wc, cap_c, act_c = fit.W, fit.capped, getattr(fit, "active", None)
                n_it, conv = int(fit.n_iter), bool(fit.converged)
                Wc = Wc.cpu().numpy() if is_tensor(Wc) else Wc
            elif shares:
                fit = spec.func(Xc, H, device=dev, workers=pool, fit_sums=sums is not None,
                                **options)
                Wc, cap_c, act_c = fit.W, fit.capped, None
                n_it, conv = int(fit.n_iter), bool(fit.converged)
                if sums is not None:
                    sums.append(fit.fit_sums)
            else:
                blocks = chunk_slices(Xc.shape[0], block_rows)
                fits = pool.map(lambda b, Xc=Xc: _solve_block(spec, Xc[b], H, dev, abundance,
                                                              options), blocks)
                Wc, cap_c, act_c, n_it, conv = _merge(fits, blocks, k, W.dtype)
            W[sl] = Wc
            if cap_c is not None:
                capped[sl] = cap_c
            if act_c is not None:
                active[sl] = act_c
            chunk_iters.append(n_it)
            chunk_converged.append(conv)
            if report is not None:
                report(i + 1, len(slices), None)
    info = {
        "spec": spec,
        "device": dev,
        "n_jobs": pool.n,
        "chunk_size": int(chunk_size),
        "chunk_iters": chunk_iters,
        "chunk_converged": chunk_converged,
        "capped": capped,
        "active": active,
        "fit_sums": None if sums is None else ordered_pair_sums(sums),
    }
    return W, info
