"""Fixed-H NNLS: abundances of trusted spectra, ``min_W ||X - W H||_F`` with ``W >= 0``.

Every pixel is an independent problem, so the data is processed in pixel chunks:
memory stays bounded whatever the image size, progress is reported per chunk and a
run can be cancelled between chunks.  The fitted ``W`` keeps its scale: with ``H``
fixed, rescaling ``W`` would change the fit.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._validation import check_data_matrix, check_spectra
from .device import resolve_device
from .preprocess import apply_negative_policy
from .progress import Reporter
from .result import UnmixResult
from .solvers import pick_nnls_solver
from .solvers._common import chunk_slices, residual_norm, rows_per_chunk

__all__ = ["nnls", "solve_nnls"]


def _check_iter_options(tol, max_iter):
    if not (isinstance(max_iter, (int, np.integer)) and not isinstance(max_iter, bool)) \
            or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}.")
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}.")


def solve_nnls(X, H, *, solver="auto", backend="auto", tol=1e-4, max_iter=1000,
               chunk_size=None, device="auto", restart=False, report=None):
    """Solve fixed-H NNLS on validated arrays, chunk by chunk.

    The engine behind :func:`nnls` (and the NNLS W-seed builder): no validation,
    no result object.  Returns ``(W, info)`` where ``info`` holds the per-chunk
    iteration counts, the capped pixels and the resolved backend / device.
    """
    spec = pick_nnls_solver(solver, backend)
    dev = resolve_device(device) if spec.needs_torch else "cpu"
    n, m = X.shape
    k = H.shape[0]
    if chunk_size is None:
        chunk_size = rows_per_chunk(max(m, k), X.itemsize)
    slices = chunk_slices(n, chunk_size)
    W = np.empty((n, k), dtype=X.dtype)
    capped = np.zeros(n, dtype=bool)
    chunk_iters, chunk_converged = [], []
    for i, sl in enumerate(slices):
        fit = spec.func(X[sl], H, max_iter=max_iter, tol=tol, device=dev, restart=restart)
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
    }
    return W, info


def nnls(X, H, *, solver="auto", backend="auto", tol=1e-4, max_iter=1000, chunk_size=None,
         callback=None, negative="raise", device="auto", restart=False) -> UnmixResult:
    """Fit non-negative abundances of fixed spectra ``H`` to every pixel of ``X``.

    Solves ``w_p = argmin_{w >= 0} ||x_p - w H||_2`` for each pixel spectrum ``x_p``.

    Parameters
    ----------
    X : array_like, shape (n_pixels, n_channels)
        Pixel spectra (see :func:`~napari_unmix.core.stack_to_matrix`).
    H : array_like, shape (k, n_channels)
        Trusted, non-negative component spectra; kept fixed.
    solver : str, default "auto"
        Algorithm: ``"lawson-hanson"`` (exact active set), ``"fista"`` (projected
        gradient, stopped by ``tol``), or any other registered in
        ``core.solvers.NNLS_SOLVERS``; ``"auto"`` picks the fastest exact one.
    backend : str, default "auto"
        Implementation: ``"scipy"`` (per pixel), ``"torch"`` (CPU or CUDA), ...
    tol : float, default 1e-4
        Relative-change tolerance of the iterative backends (ignored by exact ones).
    max_iter : int, default 1000
        Iteration cap per pixel (SciPy) or per chunk (iterative backends).
    chunk_size : int, optional
        Pixels per chunk; by default about 64 MB of data per chunk.
    callback : callable, optional
        ``callback(ProgressInfo) -> bool | None`` after every chunk; ``False`` cancels.
    negative : {"raise", "clip", "offset"}, default "raise"
        Treatment of negative data values (see ``core.preprocess``).
    device : str, default "auto"
        torch device for torch backends (CUDA when available).
    restart : bool, default False
        Adaptive (function-value) restart for the FISTA backend.

    Returns
    -------
    UnmixResult
        ``mode="nnls"``, ``W`` on its fitted scale, ``H`` the given spectra.  The
        summary lists per-chunk iteration counts, ``max_chunk_iter`` and whether any
        pixel or chunk hit ``max_iter`` (which also raises a ``ConvergenceWarning``).

    Raises
    ------
    Cancelled
        When ``callback`` returns False.
    """
    t0 = time.perf_counter()
    X = check_data_matrix(X)
    X, neg_info = apply_negative_policy(X, negative)
    H = check_spectra(H, n_features=X.shape[1], dtype=X.dtype)
    _check_iter_options(tol, max_iter)
    if chunk_size is not None and (int(chunk_size) < 1):
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")
    report = Reporter(callback, "nnls")
    W, info = solve_nnls(X, H, solver=solver, backend=backend, tol=tol, max_iter=max_iter,
                         chunk_size=chunk_size, device=device, restart=restart, report=report)
    spec = info["spec"]
    capped = info["capped"]
    n_capped = int(capped.sum())
    chunk_iters = info["chunk_iters"]
    max_chunk_iter = max(chunk_iters) if chunk_iters else 0
    hit_cap = n_capped > 0 or not all(info["chunk_converged"])
    ok = ~np.isnan(W).any(axis=1)
    X_ok, W_ok = (X, W) if ok.all() else (X[ok], W[ok])  # no copy in the usual case
    err = residual_norm(X_ok, W_ok, H) if ok.any() else float("nan")
    x_norm = float(np.sqrt(np.einsum("ij,ij->i", X_ok, X_ok).sum(dtype=np.float64)))
    summary = {
        "algorithm": spec.algorithm,
        "exact": spec.exact,
        "n_chunks": len(chunk_iters),
        "chunk_size": info["chunk_size"],
        "chunk_iters": chunk_iters,
        "max_chunk_iter": max_chunk_iter,
        "max_iter": int(max_iter),
        "hit_max_iter": bool(hit_cap),
        "n_capped_pixels": n_capped,
        "capped_pixels": np.flatnonzero(capped)[:1000].tolist() if spec.exact else [],
        "reconstruction_err": err,
        "relative_error": err / max(x_norm, np.finfo(float).tiny),
        "negative": neg_info,
        "dtype": str(X.dtype),
        "time_s": time.perf_counter() - t0,
    }
    if hit_cap:
        from sklearn.exceptions import ConvergenceWarning

        if spec.exact:
            what = (f"{n_capped} pixel(s) hit max_iter={max_iter} and were set to NaN "
                    "(listed in summary['capped_pixels'])")
        else:
            n_bad = sum(not c for c in info["chunk_converged"])
            what = (f"{n_bad} of {len(chunk_iters)} chunk(s) stopped at max_iter={max_iter} "
                    f"before reaching tol={tol}")
        warnings.warn(f"Fixed-H NNLS: {what}. Raise max_iter and run again.",
                      ConvergenceWarning, stacklevel=2)
    params = {
        "mode": "nnls", "n_components": int(H.shape[0]), "solver": spec.algorithm,
        "backend": spec.backend,
        "tol": float(tol), "max_iter": int(max_iter), "chunk_size": chunk_size,
        "negative": negative, "device": device, "restart": bool(restart),
    }
    return UnmixResult(W=W, H=H.copy(), mode="nnls", backend=spec.backend, device=info["device"],
                       n_iter=max_chunk_iter, reconstruction_err=err, summary=summary,
                       params=params)
