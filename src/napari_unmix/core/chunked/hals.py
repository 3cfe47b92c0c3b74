"""HALS NNMF over the blocks of a dask matrix, one pass over ``X`` per iteration.

The in-memory HALS (:mod:`~napari_unmix.core.solvers.hals`) already works pixel
block by pixel block: the ``W`` half-step of a pixel needs only its own row of
``X`` and the small ``H H^T``, ``X H^T`` of its block, and the ``H`` half-step needs
only ``C = W^T X`` and ``D = W^T W``, sums of the blocks' shares.  Here the blocks
are the dask chunks:

* every iteration is one ``blockwise`` task per block: the block's rows of ``W``
  (kept between iterations as a persisted dask array, ``n_pixels x k``, in this
  process or on the cluster) get their ``W`` sweeps given ``H``, and the block
  returns its new rows and its shares of ``C`` and ``D``;
* the client sums the shares in block order and does the ``H`` half-step (anchors
  ``lambda_j``, locked rows, the revival of empty rows and the power-of-two scale
  balance exactly as in memory: the same functions).  A balance of ``W`` is not
  applied to the stored blocks but passed to the next pass as a factor per column
  (a power of two: exact);
* the error at the samples comes from the Gram identity
  ``||X - W H||^2 = ||X||^2 - 2 <H, W^T X> + <W^T W, H H^T>`` with the shares taken
  in float64 at those iterations (``||X||^2`` once, in the first pass), plus the
  anchor's penalty; the error of the start comes from the blocks' residuals in the
  first pass.

The stopping rule object is the in-memory one (``core.solvers.stopping``), so the
rule, ``stopped_by`` and the error history mean the same.  Progress is reported at
the samples and a cancel (the callback) stops the run between iterations.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..solvers._common import (
    RESIDUAL_CHUNK_BYTES,
    NMFFit,
    chunk_slices,
    residual_norm,
    rows_per_chunk,
    sum_of_squares,
)
from ..solvers.extrapolation import EXTRAPOLATE, Extrapolation
from ..solvers.hals import (
    H_SWEEPS,
    OMEGA,
    W_SWEEPS,
    anchor_penalty,
    balance_np,
    h_step_np,
    loop_points,
    safe_inverse_np,
    w_block_np,
)
from .scheduler import compute, persist

__all__ = ["as_row_blocks", "fit_hals_dask", "gram_pass"]


def as_row_blocks(W, X):
    """``W (n, k)`` (numpy or dask) as a persisted dask array with the row chunks of ``X``."""
    import dask.array as da

    from .scheduler import is_dask_array

    W = W.rechunk((X.chunks[0], -1)) if is_dask_array(W) else \
        da.from_array(np.asarray(W), chunks=(X.chunks[0], W.shape[1]))
    return persist(W)[0]


def gram64(x, w):
    """``(W^T X, W^T W)`` of one block in float64, a few MB of rows at a time: a whole
    float64 copy of a 64 MiB float32 tile would double what a task holds."""
    x = np.asarray(x)
    k, m = w.shape[1], x.shape[1]
    C, D = np.zeros((k, m)), np.zeros((k, k))
    for sl in chunk_slices(x.shape[0], rows_per_chunk(m, 8, budget=RESIDUAL_CHUNK_BYTES)):
        w64 = np.asarray(w[sl], dtype=np.float64)
        C += w64.T @ x[sl].astype(np.float64)
        D += w64.T @ w64
    return C, D


def _gram_block(x, w):
    C, D = gram64(x, w)
    return np.concatenate([C.ravel(), D.ravel(), [sum_of_squares(np.asarray(x))]])[None]


def gram_pass(X, W):
    """``(W^T X, W^T W, ||X||^2)`` in float64, from one pass over the blocks."""
    import dask.array as da

    k, m = W.shape[1], X.shape[1]
    parts = da.blockwise(_gram_block, "ij", X, "ij", W, "ik", concatenate=True,
                         adjust_chunks={"i": 1, "j": 1 + k * m + k * k},
                         dtype=np.float64, meta=np.empty((0, 0)))   # a row per block
    s = np.asarray(compute(parts)[0])
    C = s[:, : k * m].sum(axis=0).reshape(k, m)
    D = s[:, k * m: k * m + k * k].sum(axis=0).reshape(k, k)
    return C, D, float(s[:, -1].sum())


def _hals_block(x, w, s, Hs, Bh, H_start, want64, first, w_sweeps):
    """One block's W half-step; its shares (and the start's residual, ||x||^2)."""
    x = np.asarray(x)
    dtype = x.dtype
    k, m = Hs.shape
    Wt = np.array((np.asarray(w) * s).T, dtype=dtype, order="C")   # (k, c)
    c = x.shape[0]
    res = residual_norm(x, Wt.T, H_start) ** 2 if H_start is not None else 0.0
    CB = np.empty((1, k, m), dtype=dtype)
    DB = np.empty((1, k, k), dtype=dtype)
    w_block_np(x, Wt, Hs, Bh, w_sweeps, CB, DB, np.empty(c, dtype=dtype), 0, slice(0, c))
    parts = [CB.ravel().astype(np.float64), DB.ravel().astype(np.float64)]
    if want64:
        C64, D64 = gram64(x, Wt.T)
        parts += [C64.ravel(), D64.ravel()]
    parts.append(np.array([res, sum_of_squares(x) if first else 0.0]))
    return np.ascontiguousarray(Wt.T), np.concatenate(parts)[None]


def _first(t):
    return t[0]


def _second(t):
    return t[1]


def _pass(X, W, s, Hs, Bh, H_start, want64, first, w_sweeps):
    import dask.array as da

    k, m = Hs.shape
    nb = X.numblocks[0]
    width = (k * m + k * k) * (1 + bool(want64)) + 2
    fit = da.blockwise(_hals_block, "i", X, "ij", W, "ik", s, None, Hs, None, Bh, None,
                       H_start, None, want64, None, first, None, w_sweeps, None,
                       concatenate=True, dtype=object, meta=np.empty((0,), dtype=object),
                       token="hals-block")
    W_new = fit.map_blocks(_first, dtype=X.dtype, chunks=(X.chunks[0], (k,)), new_axis=[1])
    stats = fit.map_blocks(_second, dtype=np.float64, chunks=((1,) * nb, (width,)),
                           new_axis=[1])
    W_new, stats = persist(W_new, stats)
    return W_new, np.asarray(compute(stats)[0])


def fit_hals_dask(X, W, H, free, *, max_iter, stop, lam=None, H0=None, fallback=1.0,
                  w_sweeps=W_SWEEPS, h_sweeps=H_SWEEPS, omega=OMEGA,
                  extrapolate=EXTRAPOLATE) -> NMFFit:
    """HALS on the dask matrix ``X`` from ``W`` (persisted, the row chunks of ``X``) and
    ``H`` (numpy), as ``fit_hals_numpy`` does it in memory.

    ``free`` the rows of ``H`` that move, ``lam`` / ``H0`` the anchor weights and
    spectra (or None), ``stop`` the rule (``core.solvers.stopping``, with the
    reporter), ``fallback`` ``sqrt(max X)`` (the revival's floor), ``extrapolate``
    the extrapolation of ``H`` between iterations (``core.solvers.extrapolation``;
    an undone step goes back to the persisted ``W`` it started from).  Returns an
    :class:`~napari_unmix.core.solvers._common.NMFFit` whose ``W`` is a persisted
    dask array; ``fit.x_sq`` is ``||X||^2`` and ``fit.err_sq`` the final squared error.
    """
    dtype = X.dtype
    eps = float(np.finfo(dtype).eps)
    k, m = H.shape
    H = np.array(H, dtype=dtype, order="C")
    free_rows = np.flatnonzero(free)
    balanced = free if lam is None else free & (lam == 0)
    if lam is not None:
        lam_d = lam.astype(dtype)
        lam_H0 = (lam[:, None] * np.asarray(H0, dtype=np.float64)).astype(dtype)
    s = np.ones(k, dtype=dtype)           # the pending power-of-two scale of W's columns

    def balance(nw2):
        ones = np.ones((k, 1), dtype=dtype)
        balance_np(ones, H, balanced, nw2)    # H in place; ones[:, 0] = W's factors
        return s * ones[:, 0]

    nw2 = np.asarray(compute((W.astype(np.float64) ** 2).sum(axis=0))[0])
    s = balance(nw2)
    H_start = H.copy()
    converged = False
    n_iter = 0
    x_sq = err_sq = 0.0
    ext = Extrapolation(H, free) if extrapolate and free_rows.size else None

    def iteration(W, s, it, want64):
        """One pass: the W half-step over the blocks, then the H half-step (in place);
        the new W (persisted), the blocks' shares, ``W^T X`` and ``W^T W`` (float64)
        and ``W^T W`` in the data's dtype."""
        B = H @ H.T
        inv = safe_inverse_np(np.diag(B), eps, dtype)
        Bh = B * (omega * inv)[:, None]
        np.fill_diagonal(Bh, omega - 1.0)
        Hs = H * (omega * inv)[:, None]
        W_new, st = _pass(X, W, s, Hs, Bh, H_start if it == 1 else None, want64, it == 1,
                          w_sweeps)
        o = k * m + k * k if want64 and exact and not ext.off else 0  # float64 shares
        C64 = st[:, o: o + k * m].sum(axis=0).reshape(k, m)     # in block order
        D64 = st[:, o + k * m: o + k * m + k * k].sum(axis=0).reshape(k, k)
        C, D = C64.astype(dtype), D64.astype(dtype)
        if it == 1:
            stop.record(0, float(np.sqrt(st[:, -2].sum() + anchor_penalty(H, lam, H0))))
            if ext is not None:
                ext.know_norm(float(st[:, -1].sum()))
        if free_rows.size:
            h_step_np(H, C, D, free, free_rows, lam_d=lam_d if lam is not None else None,
                      lam_H0=lam_H0 if lam is not None else None, omega=omega,
                      h_sweeps=h_sweeps, fallback=fallback)
        return W_new, st, C64, D64, D

    def objective(out):
        return ext.objective(out[2], out[3], H, anchor_penalty(H, lam, H0))

    # below float64, float64 shares while the extrapolation decides (.extrapolation)
    exact = ext is not None and ext.needs_float64(dtype)
    for it in range(1, max_iter + 1):
        want64 = stop.is_sample(it) or it == max_iter or (exact and not ext.off)
        step = partial(iteration, W, s, it, want64)
        # an undone step starts again from the persisted W it started from: nothing
        # to keep or put back
        W, st, _, _, D = step() if ext is None else ext.run(
            H, step, objective, lambda: None, lambda: None)
        s = np.ones(k, dtype=dtype)
        if it == 1:
            x_sq = float(st[:, -1].sum())
        n_iter = it
        if want64:
            o = k * m + k * k
            C64 = st[:, o: o + k * m].sum(axis=0).reshape(k, m)
            D64 = st[:, o + k * m: o + k * m + k * k].sum(axis=0).reshape(k, k)
            H64 = H.astype(np.float64)
            err_sq = max(x_sq - 2.0 * float(np.vdot(H64, C64))
                         + float(np.vdot(D64, H64 @ H64.T)), 0.0)
        do_balance, sample = loop_points(it, max_iter, stop)
        error = float(np.sqrt(err_sq + anchor_penalty(H, lam, H0))) if sample else None
        if do_balance:
            s = balance(np.diag(D))
            if ext is not None:
                ext.rescale((1.0 / s).astype(dtype))  # s: the factors of W
        if sample and stop.record(it, error):
            converged = True
            break
    import dask.array as da

    W = persist(W * da.from_array(s, chunks=k))[0] if (s != 1).any() else W
    fit = NMFFit(W=W, H=H, n_iter=n_iter, converged=converged, history=stop.history)
    fit.x_sq, fit.err_sq = x_sq, err_sq
    fit.extrapolation = None if ext is None else ext.record()
    return fit
