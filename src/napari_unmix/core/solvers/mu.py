"""Multiplicative-update NNMF (Lee & Seung), in numpy and in PyTorch (CPU or CUDA).

One iteration is

    W <- W * (X H^T) / (W H H^T + g_W),   H <- H * (W^T X) / (W^T W H + g_H)

where the guards against a zero denominator are relative to the scale of the
denominator they guard, ``g_W[j] = eps^2 (max_i W[i] @ H H^T)[j]`` per column of
``W`` and ``g_H[j] = eps^2 (W^T W max_c H[:, c] + lambda_j max_c H[j])`` per row of
``H`` (``eps`` the machine epsilon of the data's dtype), plus the dtype's smallest
normal number so that an all-zero factor gives no 0/0.  Each is an upper bound of
its column's (row's) denominator times ``eps^2``: far below its rounding, so the
steps are scikit-learn's (which only replaces exact zeros), yet a ratio over a
guarded zero stays below ``1 / eps^2`` times the data's scale.  MU is
invariant in exact arithmetic under the rescaling ``W D, D^-1 H`` (``D`` a
positive diagonal) and, after its first W step, under ``a W`` (the step undoes
the ``a``); these guards scale the same way, so seeds in any units give the same
maps up to the scale.  (An absolute ``eps`` did not: with ``H0`` times 1e-6 it
dominated ``W H H^T`` and damped every step into a false "converged".)  The
reconstruction error is
not computed every iteration (on a GPU that would force a device sync per step) but
at iteration 0 and every ``track_error_every`` iterations; the run stops by the
rule of :class:`~._common.SampledErrorStopping`.

An exact zero in ``W`` or ``H`` stays zero under these updates: ``core.nmf`` lifts a
copy of custom inits before calling these solvers.  Because each step only rescales
entries, MU moves gently away from its starting point; that is why it is the
default for *seeded* NNMF, where the seeds are meant to pick the basin the
solution ends in (faster block solvers such as HALS take much larger first steps).

Anchoring (seeded NNMF): with weights ``lambda_j`` and anchor spectra ``H0`` the
objective gains ``sum_j lambda_j ||H[j] - H0[j]||^2`` and the ``H`` update becomes
``H <- H * (W^T X + lambda H0) / (W^T W H + lambda H + g_H)``, the multiplicative
update of the anchored objective (numerator and denominator are the negative and
positive parts of its gradient); the stopping rule then watches that objective.

The loop is written once and runs on numpy arrays or torch tensors alike, so both
backends perform the same sequence of operations.  It goes over the pixels in
blocks: a block's rows of ``W`` are updated (each row needs only ``H``), then its
shares of ``W^T X`` and ``W^T W`` are computed while the block is at hand, so ``X``
is read once per iteration.  In numpy the blocks (``BLOCK_BYTES``) are shared by
``n_jobs`` worker threads and the shares summed in block order (the result does not
depend on ``n_jobs``); in torch ``X`` is one block on the device when it fits its
memory budget and is streamed there in blocks otherwise (``core.streaming``).

The Poisson loss (``loss="poisson"``): the multiplicative updates of the
Kullback-Leibler divergence instead, in :mod:`~.kl` (same start, locks and anchors).
"""

from __future__ import annotations

import numpy as np

from ..device import get_torch, resolve_device, to_numpy, to_torch
from ..parallel import Workers
from ..streaming import BlockSource, plan_blocks
from ._common import NMFFit, SampledErrorStopping, chunk_slices, rows_per_chunk
from .kl import fit_kl_numpy, fit_kl_torch
from .pooled import ordered_sum

__all__ = ["BLOCK_BYTES", "fit_mu_numpy", "fit_mu_torch"]

#: Bytes of ``X`` per pixel block of the numpy iteration (one task of a worker).
BLOCK_BYTES = 2 * 2**20


def _mu_loop(src, W, H, free, *, max_iter, tol, eps, every, report, lam=None, H0=None,
             stop=None) -> NMFFit:
    """MU iterations over the pixel blocks of ``src`` (a ``BlockSource``); ``W`` and ``H``
    (numpy arrays or torch tensors) are updated in place.

    A block's rows of ``W`` are updated, then its shares of ``W^T X`` and ``W^T W``
    (with the new ``W``) computed while the block is at hand; the shares are summed
    in block order.  ``lam`` (k,) and ``H0`` (k, m), of the same array type in
    float64, anchor the rows of ``H``: the anchored update of that small ``(k, m)``
    block is formed in float64, so that a strength at which the row is as good as
    locked (``lam H`` beyond float32's range) gives ``H0``, not inf / inf.
    """
    def objective():
        err = src.residual_norm(W, H)
        if lam is None:
            return err
        d = H - H0
        pen = float(((d * d).sum(1) * lam).sum())
        return float(np.sqrt(err * err + pen))

    if stop is None:
        stop = SampledErrorStopping(tol, every, eps, report=report, max_iter=max_iter)
    tiny = _tiny(W)
    rel = eps * eps  # the guards' size relative to the denominators' bounds
    stop.record(0, objective())
    update_H = free is None or bool(free.any())
    if lam is not None:
        lam_col = lam[:, None]
        lam_H0 = lam_col * H0
    converged, n_iter = False, 0
    for it in range(1, max_iter + 1):
        HHt = H @ H.T
        Ht = H.T
        guard_W = rel * (_amax(W, 0) @ HHt) + tiny     # (k,): per column of W

        def block(sl, Xb, HHt=HHt, Ht=Ht, guard_W=guard_W):
            Wb = W[sl]
            Wb *= (Xb @ Ht) / (Wb @ HHt + guard_W)
            if update_H:
                return Wb.T @ Xb, Wb.T @ Wb
            return None

        shares = src.map(block)
        if update_H:
            C = ordered_sum(c for c, _ in shares)            # W^T X, in block order
            D = ordered_sum(d for _, d in shares)            # W^T W
            h_max = _amax(H, 1)
            if lam is None:
                guard_H = rel * (D @ h_max) + tiny          # (k,): per row of H
                ratio = C / (D @ H + guard_H[:, None])
            else:  # in float64 (see above), then back to the data's dtype
                H64, D64 = _as_float64(H), _as_float64(D)
                guard_H = rel * (D64 @ _amax(H64, 1) + lam * _amax(H64, 1)) + tiny
                ratio = _like((_as_float64(C) + lam_H0)
                              / (D64 @ H64 + lam_col * H64 + guard_H[:, None]), H)
            if free is None:
                H *= ratio
            else:
                H[free] = H[free] * ratio[free]
        n_iter = it
        if stop.is_sample(it):
            if stop.record(it, objective()):
                converged = True
                break
    return NMFFit(W=W, H=H, n_iter=n_iter, converged=converged, history=stop.history)


def _as_float64(A):
    """``A`` (numpy array or torch tensor) in float64."""
    return A.astype(np.float64) if isinstance(A, np.ndarray) else A.double()


def _like(A, ref):
    """``A`` in the dtype of ``ref`` (numpy or torch)."""
    return A.astype(ref.dtype) if isinstance(A, np.ndarray) else A.to(ref.dtype)


def _amax(A, axis):
    """The maxima of ``A`` (numpy array or torch tensor) along ``axis``."""
    return A.max(axis=axis) if isinstance(A, np.ndarray) else A.amax(axis)


def _tiny(A) -> float:
    """The smallest normal number of ``A``'s dtype (numpy or torch)."""
    name = str(A.dtype).removeprefix("torch.")
    return float(np.finfo(np.dtype(name)).tiny)


def _free_rows(locked, k):
    if locked is None or not np.any(locked):
        return None
    return ~np.asarray(locked, dtype=bool).reshape(k)


def _anchor(anchor_weights, anchor_spectra, locked, k):
    if anchor_weights is None:
        return None, None
    lam = np.asarray(anchor_weights, dtype=np.float64).reshape(k)
    if locked is not None:
        lam = np.where(np.asarray(locked, dtype=bool).reshape(k), 0.0, lam)
    if not lam.any():
        return None, None
    return lam, np.asarray(anchor_spectra)


def _check_loss(loss):
    if loss not in ("frobenius", "poisson"):
        raise ValueError(f"Unknown loss {loss!r}; multiplicative updates fit 'frobenius' or "
                         "'poisson'.")
    return loss == "poisson"


def fit_mu_numpy(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                 track_error_every: int = 10, anchor_weights=None, anchor_spectra=None,
                 loss: str = "frobenius", n_jobs=None, block_bytes: int = BLOCK_BYTES,
                 stop=None, **kwargs) -> NMFFit:
    """Fit ``X ~ W H`` by multiplicative updates in numpy.

    Parameters
    ----------
    X : ndarray (n, m); W : ndarray (n, k); H : ndarray (k, m)
        Data and initial factors (not modified), all of one float dtype.
    max_iter, tol, track_error_every
        Iteration cap and the sampled stopping rule.
    locked : bool ndarray (k,), optional
        Rows of H kept fixed.
    report : callable, optional
        ``report(iteration, max_iter, error)`` at every sample.
    anchor_weights : array_like (k,), optional
        Anchor weights ``lambda_j >= 0`` (module docstring); 0 leaves a row free.
    anchor_spectra : ndarray (k, m), optional
        The spectra the rows of ``H`` are pulled towards.
    loss : {"frobenius", "poisson"}, default "frobenius"
        ``"poisson"``: :func:`~.kl.fit_kl_numpy` (the Kullback-Leibler updates) with
        the same arguments.
    n_jobs : int, optional
        Worker threads that share the pixel blocks (``core.parallel``); the result
        does not depend on it.
    block_bytes : int
        Bytes of ``X`` per pixel block.
    stop : SampledErrorStopping, optional
        The stopping rule (default: the sampled relative-improvement rule).

    Notes
    -----
    BLAS is held to one thread per worker during the run (``core.parallel``).
    """
    if _check_loss(loss):
        return fit_kl_numpy(X, W, H, max_iter=max_iter, tol=tol, locked=locked, report=report,
                            track_error_every=track_error_every, anchor_weights=anchor_weights,
                            anchor_spectra=anchor_spectra, n_jobs=n_jobs, stop=stop, **kwargs)
    eps = X.dtype.type(np.finfo(X.dtype).eps)
    lam, H0 = _anchor(anchor_weights, anchor_spectra, locked, H.shape[0])
    slices = chunk_slices(X.shape[0], rows_per_chunk(X.shape[1], X.itemsize,
                                                     budget=block_bytes))
    with Workers(n_jobs, len(slices)) as workers:
        fit = _mu_loop(BlockSource(X, slices, workers=workers), np.array(W, dtype=X.dtype),
                       np.array(H, dtype=X.dtype), _free_rows(locked, H.shape[0]),
                       max_iter=max_iter, tol=tol, eps=eps, every=track_error_every,
                       report=report, lam=lam,
                       H0=None if H0 is None else np.asarray(H0, dtype=np.float64), stop=stop)
    fit.n_jobs = workers.n
    return fit


def fit_mu_torch(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                 track_error_every: int = 10, device: str = "auto", anchor_weights=None,
                 anchor_spectra=None, loss: str = "frobenius", stop=None,
                 budget: int | None = None, **kwargs) -> NMFFit:
    """Fit ``X ~ W H`` by multiplicative updates in torch (``device``: CUDA when available).

    Same parameters as :func:`fit_mu_numpy`, plus the torch ``device``
    (``loss="poisson"``: :func:`~.kl.fit_kl_torch`).  ``X`` stays on the device
    when it fits its memory budget (``budget`` bytes, default
    ``core.streaming.device_memory_budget``), else it is streamed there block by
    block at every pass, the copies overlapping the compute
    (:mod:`~napari_unmix.core.streaming`); ``W`` and ``H`` stay on the device.
    """
    if _check_loss(loss):
        return fit_kl_torch(X, W, H, max_iter=max_iter, tol=tol, locked=locked, report=report,
                            track_error_every=track_error_every, device=device,
                            anchor_weights=anchor_weights, anchor_spectra=anchor_spectra,
                            stop=stop, budget=budget, **kwargs)
    torch = get_torch()
    device = resolve_device(device)
    eps = float(np.finfo(X.dtype).eps)
    resident, slices = plan_blocks(X.shape[0], X.shape[1] * X.itemsize, device, budget=budget)
    with torch.no_grad():
        free = _free_rows(locked, H.shape[0])
        lam, H0 = _anchor(anchor_weights, anchor_spectra, locked, H.shape[0])
        fit = _mu_loop(BlockSource(X, slices, device=device, resident=resident),
                       to_torch(np.asarray(W, dtype=X.dtype), device).clone(),
                       to_torch(np.asarray(H, dtype=X.dtype), device).clone(),
                       None if free is None else to_torch(free, device),
                       max_iter=max_iter, tol=tol, eps=eps, every=track_error_every,
                       report=report,
                       lam=None if lam is None else to_torch(lam, device),
                       H0=None if H0 is None else to_torch(np.asarray(H0, dtype=np.float64),
                                                           device), stop=stop)
        fit.W, fit.H = to_numpy(fit.W), to_numpy(fit.H)
        return fit
