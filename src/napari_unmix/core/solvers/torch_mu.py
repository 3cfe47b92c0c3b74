"""Multiplicative-update NNMF (Lee & Seung) in PyTorch, on CPU or CUDA.

The update is

    W <- W * (X H^T) / (W H H^T + eps),   H <- H * (W^T X) / (W^T W H + eps)

with ``eps`` the machine epsilon of the data's dtype.  The reconstruction error is
not computed every iteration (on a GPU that would force a device sync per step) but
at iteration 0 and every ``track_error_every`` iterations; the run stops by the
rule of :class:`~._common.SampledErrorStopping`.  An exact zero in ``W`` or ``H``
stays zero under these updates: the caller (``core.nmf``) lifts a copy of custom
inits before calling this solver.
"""

from __future__ import annotations

import numpy as np

from ..device import get_torch, resolve_device, to_numpy, to_torch
from ._common import NMFFit, SampledErrorStopping, residual_norm

__all__ = ["fit_mu_torch"]



def fit_mu_torch(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                 track_error_every: int = 10, device: str = "auto", **_ignored) -> NMFFit:
    """Fit ``X ~ W H`` by multiplicative updates in torch.

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
    device : str
        torch device, ``"auto"`` for CUDA when available.
    """
    torch = get_torch()
    device = resolve_device(device)
    dtype = X.dtype
    eps = float(np.finfo(dtype).eps)
    with torch.no_grad():
        Xt = to_torch(X, device)
        Wt = to_torch(W, device).clone()
        Ht = to_torch(H, device).clone()
        free = None
        if locked is not None and np.any(locked):
            free = to_torch(~np.asarray(locked, dtype=bool), device)
        stop = SampledErrorStopping(tol, track_error_every, eps)
        err = residual_norm(Xt, Wt, Ht, xp="torch")
        stop.update(0, err)
        if report is not None:
            report(0, max_iter, err)
        converged = False
        n_iter = 0
        for it in range(1, max_iter + 1):
            HHt = Ht @ Ht.T
            Wt.mul_((Xt @ Ht.T) / (Wt @ HHt + eps))
            if free is None or bool(free.any()):
                WtX = Wt.T @ Xt
                ratio = WtX / ((Wt.T @ Wt) @ Ht + eps)
                if free is None:
                    Ht.mul_(ratio)
                else:
                    Ht[free] = Ht[free] * ratio[free]
            n_iter = it
            if stop.is_sample(it):
                err = residual_norm(Xt, Wt, Ht, xp="torch")
                done = stop.update(it, err)
                if report is not None:
                    report(it, max_iter, err)
                if done:
                    converged = True
                    break
        return NMFFit(W=to_numpy(Wt), H=to_numpy(Ht), n_iter=n_iter, converged=converged,
                      history=stop.history)
