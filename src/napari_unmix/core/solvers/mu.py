"""Multiplicative-update NNMF (Lee & Seung), in numpy and in PyTorch (CPU or CUDA).

One iteration is

    W <- W * (X H^T) / (W H H^T + eps),   H <- H * (W^T X) / (W^T W H + eps)

with ``eps`` the machine epsilon of the data's dtype.  The reconstruction error is
not computed every iteration (on a GPU that would force a device sync per step) but
at iteration 0 and every ``track_error_every`` iterations; the run stops by the
rule of :class:`~._common.SampledErrorStopping`.

An exact zero in ``W`` or ``H`` stays zero under these updates: ``core.nmf`` lifts a
copy of custom inits before calling these solvers.  Because each step only rescales
entries, MU moves gently away from its starting point; that is why it is the
default for *seeded* NNMF, where the seeds are meant to pick the basin the
solution ends in (faster block solvers such as HALS take much larger first steps).

The loop is written once and runs on numpy arrays or torch tensors alike, so both
backends perform the same sequence of operations.
"""

from __future__ import annotations

import numpy as np

from ..device import get_torch, resolve_device, to_numpy, to_torch
from ._common import NMFFit, SampledErrorStopping, one_blas_thread, residual_norm

__all__ = ["fit_mu_numpy", "fit_mu_torch"]


def _mu_loop(X, W, H, free, *, max_iter, tol, eps, every, report, xp) -> NMFFit:
    """MU iterations on numpy arrays or torch tensors (``xp``); W and H updated in place."""
    stop = SampledErrorStopping(tol, every, eps, report=report,
                                max_iter=max_iter)
    stop.record(0, residual_norm(X, W, H, xp=xp))
    update_H = free is None or bool(free.any())
    converged, n_iter = False, 0
    for it in range(1, max_iter + 1):
        W *= (X @ H.T) / (W @ (H @ H.T) + eps)
        if update_H:
            ratio = (W.T @ X) / ((W.T @ W) @ H + eps)
            if free is None:
                H *= ratio
            else:
                H[free] = H[free] * ratio[free]
        n_iter = it
        if stop.is_sample(it):
            if stop.record(it, residual_norm(X, W, H, xp=xp)):
                converged = True
                break
    return NMFFit(W=W, H=H, n_iter=n_iter, converged=converged, history=stop.history)


def _free_rows(locked, k):
    if locked is None or not np.any(locked):
        return None
    return ~np.asarray(locked, dtype=bool).reshape(k)


def fit_mu_numpy(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                 track_error_every: int = 10, **_ignored) -> NMFFit:
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

    Notes
    -----
    BLAS is held to one thread during the run (see ``_common.one_blas_thread``).
    """
    eps = X.dtype.type(np.finfo(X.dtype).eps)
    with one_blas_thread():
        return _mu_loop(X, np.array(W, dtype=X.dtype), np.array(H, dtype=X.dtype),
                        _free_rows(locked, H.shape[0]), max_iter=max_iter, tol=tol, eps=eps,
                        every=track_error_every, report=report, xp="numpy")


def fit_mu_torch(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                 track_error_every: int = 10, device: str = "auto", **_ignored) -> NMFFit:
    """Fit ``X ~ W H`` by multiplicative updates in torch (``device``: CUDA when available).

    Same parameters as :func:`fit_mu_numpy`, plus the torch ``device``.
    """
    torch = get_torch()
    device = resolve_device(device)
    eps = float(np.finfo(X.dtype).eps)
    with torch.no_grad():
        free = _free_rows(locked, H.shape[0])
        fit = _mu_loop(to_torch(X, device), to_torch(W, device).clone(),
                       to_torch(H, device).clone(),
                       None if free is None else to_torch(free, device),
                       max_iter=max_iter, tol=tol, eps=eps, every=track_error_every,
                       report=report, xp="torch")
        fit.W, fit.H = to_numpy(fit.W), to_numpy(fit.H)
        return fit
