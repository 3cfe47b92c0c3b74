"""Fixed-H NNLS: abundances of trusted spectra, ``min_W ||X - W H||_F`` with ``W >= 0``.

The chunked engine itself is :func:`~napari_unmix.core.solvers.solve_nnls`.  With an
abundance model (``abundance="sum-to-one"`` or ``"sum-le-one"``) every row of ``W``
also sums to one (at most one): fully constrained least squares, solved exactly on
top of the exact NNLS solvers (:mod:`~napari_unmix.core.solvers.simplex`).

Every pixel is an independent problem, so the data is processed in pixel chunks:
memory stays bounded whatever the image size, progress is reported per chunk and a
run can be cancelled between chunks.  The fitted ``W`` keeps its scale: with ``H``
fixed, rescaling ``W`` would change the fit.

The Poisson loss (``loss="poisson"``): ``w_p = argmin_{w >= 0} D(x_p || w H)``, the
Poisson likelihood of photon counts, where least squares weighs every channel alike.
It is solved by the EM multiplicative updates with a per-pixel stopping rule
(:mod:`~napari_unmix.core.solvers.kl`), on the data divided by the power of two that
puts its maximum into ``[1, 2)`` (``D`` is homogeneous: the minimiser of the scaled
problem is the scaled minimiser, so only the solver's eps sees the scale).  The
result adds the per-pixel deviance ``2 D`` (``arrays["deviance"]``) and its total and
mean (``summary.deviance``, ``summary.mean_deviance``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._validation import check_iter_options, check_positive_int, check_spectra
from .chunked.scheduler import is_dask_array
from .data import CheckedMatrix, check_matrix, check_negative_policy, data_scale
from .device import backend_for_device
from .diagnostics import identifiability
from .parallel import check_n_jobs
from .poisson import poisson_deviance
from .progress import Reporter
from .result import UnmixResult
from .solvers import check_loss, solve_nnls
from .solvers.pooled import fit_norms, norms_from_sums, solved_rows
from .solvers.simplex import check_abundance
from .summaries import NegativeInfo, NNLSSummary

__all__ = ["nnls", "solve_nnls"]


def nnls(X, H, *, solver="auto", backend="auto", tol=1e-4, max_iter=1000, chunk_size=None,
         callback=None, negative="raise", device="auto", restart=False,
         abundance="free", loss="frobenius", component_names=None, n_jobs=None) -> UnmixResult:
    """Fit non-negative abundances of fixed spectra ``H`` to every pixel of ``X``.

    Solves ``w_p = argmin_{w >= 0} ||x_p - w H||_2`` for each pixel spectrum ``x_p``
    (``loss="poisson"``: ``argmin_{w >= 0} D(x_p || w H)``).

    Parameters
    ----------
    X : array_like, shape (n_pixels, n_channels)
        Pixel spectra (see :func:`~napari_unmix.core.stack_to_matrix`).  A dask array
        is solved block by block (:mod:`~napari_unmix.core.chunked.nnls`; the tiles
        are the in-memory ones bit for bit) and ``W`` comes back as a dask array.
    H : array_like, shape (k, n_channels)
        Trusted, non-negative component spectra; kept fixed.
    solver : str, default "auto"
        Algorithm: ``"lawson-hanson"`` (exact active set), ``"fista"`` (projected
        gradient, stopped by ``tol``), ``"mu"`` (the Poisson loss), or any other
        registered in ``core.solvers.NNLS_SOLVERS``; ``"auto"`` picks the fastest
        exact one (for the Poisson loss, ``mu``).
    backend : str, default "auto"
        Implementation: ``"scipy"`` (per pixel), ``"torch"`` (CPU or CUDA), ...
    tol : float, default 1e-4
        Relative-change tolerance of the iterative backends (ignored by exact ones);
        for the Poisson loss, of each pixel's divergence over 10 iterations.
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
    abundance : {"free", "sum-to-one", "sum-le-one"}, default "free"
        The abundance model: no sum constraint, ``sum(w_p) = 1`` (FCLS) or
        ``sum(w_p) <= 1`` for every pixel.  The sum constraints need an exact
        solver (FISTA is refused).  ``summary.n_constraint_active`` counts the
        pixels where ``sum(w_p) <= 1`` is active.
    loss : {"frobenius", "poisson"}, default "frobenius"
        Least squares, or the Poisson loss for photon counts (module documentation;
        free abundances only).
    component_names : sequence of str, optional
        Names of the spectra (result and warnings).
    n_jobs : int, optional
        Worker threads that share the pixel blocks on the CPU, with scikit-learn's
        meaning: ``None`` (default) or ``-1`` every core this process may use, or a
        positive number (:mod:`~napari_unmix.core.parallel`).  The abundances do not
        depend on it (bit for bit).  ``summary.n_jobs`` is the number that ran.

    Returns
    -------
    UnmixResult
        ``mode="nnls"``, ``W`` on its fitted scale, ``H`` the given spectra.  The
        summary lists per-chunk iteration counts, ``max_chunk_iter`` and whether any
        pixel or chunk hit ``max_iter`` (which also raises a ``ConvergenceWarning``);
        for the Poisson loss also the deviance (``arrays["deviance"]`` per pixel).

    Raises
    ------
    Cancelled
        When ``callback`` returns False.
    """
    check_positive_int(chunk_size, name="chunk_size", optional=True)
    if is_dask_array(X.X if isinstance(X, CheckedMatrix) else X):
        from .chunked.blocks import require_known_chunks
        from .chunked.nnls import nnls_dask  # blockwise, W lazy (core.chunked)

        require_known_chunks(X)  # before anything counts its pixels
        return nnls_dask(X, H, solver=solver, backend=backend, tol=tol, max_iter=max_iter,
                         chunk_size=chunk_size, callback=callback, negative=negative,
                         device=device, restart=restart, abundance=abundance, loss=loss,
                         component_names=component_names, n_jobs=n_jobs)
    t0 = time.perf_counter()
    backend = backend_for_device(backend, device)  # a named GPU: the torch solvers
    data = check_matrix(X, negative=check_negative_policy(negative))
    X, neg_info = data.X, data.negative
    H = check_spectra(H, n_features=X.shape[1], dtype=X.dtype)
    check_iter_options(tol, max_iter)
    check_n_jobs(n_jobs)
    if component_names is not None and len(component_names) != H.shape[0]:
        raise ValueError(f"{len(component_names)} component names for {H.shape[0]} spectra.")
    condition, problems = identifiability(H, names=component_names)
    for msg in problems:
        warnings.warn(f"Fixed-H NNLS: {msg}", UserWarning, stacklevel=2)
    report = Reporter(callback, "nnls")
    poisson = check_loss(loss) == "poisson"
    scale = data_scale(X) if poisson else 1.0
    W, info = solve_nnls(X if scale == 1.0 else X / X.dtype.type(scale), H, solver=solver,
                         backend=backend, tol=tol, max_iter=max_iter, chunk_size=chunk_size,
                         device=device, restart=restart, report=report,
                         abundance=check_abundance(abundance), loss=loss, n_jobs=n_jobs,
                         fit_sums=True)
    if scale != 1.0:
        W *= X.dtype.type(scale)
    spec = info["spec"]
    capped = info["capped"]
    n_capped = int(capped.sum())
    chunk_iters = info["chunk_iters"]
    max_chunk_iter = max(chunk_iters) if chunk_iters else 0
    hit_cap = n_capped > 0 or not all(info["chunk_converged"])
    ok, n_ok = solved_rows(W)         # capped pixels are NaN; ok is None: all solved
    # formed by the solver as it went (the numpy active set), or on the pool, block by
    # block, over the solved pixels (no copy of X)
    norms = norms_from_sums(info["fit_sums"]) if scale == 1.0 and ok is None else None
    err, x_norm = norms or fit_norms(X, W, H, n_jobs=n_jobs, ok=ok)
    if n_ok == 0:
        err = float("nan")
    summary = NNLSSummary(
        solver=spec.algorithm,
        backend=spec.backend,
        exact=spec.exact,
        n_chunks=len(chunk_iters),
        chunk_size=info["chunk_size"],
        chunk_iters=chunk_iters,
        max_chunk_iter=max_chunk_iter,
        max_iter=int(max_iter),
        hit_max_iter=bool(hit_cap),
        n_capped_pixels=n_capped,
        capped_pixels=(np.flatnonzero(capped)[:1000].tolist() if spec.exact or poisson
                       else []),
        reconstruction_err=err,
        relative_error=err / max(x_norm, np.finfo(float).tiny),
        negative=NegativeInfo.from_dict(neg_info),
        dtype=str(X.dtype),
        abundance=abundance,
        n_constraint_active=(int(info["active"].sum()) if abundance == "sum-le-one"
                             else None),
        loss=loss,
        n_error_pixels=n_ok,
        condition_number=condition,
        identifiability=problems,
        n_jobs=info["n_jobs"],
        device=info["device"],
        time_s=time.perf_counter() - t0,
    )
    arrays = {}
    if poisson:
        deviance = poisson_deviance(X, W, H)
        arrays["deviance"] = deviance.astype(X.dtype)
        summary = summary.replace(deviance=float(deviance.sum()),
                                  mean_deviance=float(deviance.mean()))
    if hit_cap:
        from sklearn.exceptions import ConvergenceWarning

        if spec.exact:
            what = (f"{n_capped} pixel(s) hit max_iter={max_iter} and were set to NaN "
                    "(listed in summary['capped_pixels']; the errors are over the other "
                    f"{n_ok} pixels)")
        elif poisson:
            what = (f"{n_capped} pixel(s) stopped at max_iter={max_iter} before reaching "
                    f"tol={tol} (their last iterates are kept; listed in "
                    "summary['capped_pixels'])")
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
        "abundance": abundance, "loss": loss, "n_jobs": n_jobs,
    }
    return UnmixResult(W=W, H=H.copy(), mode="nnls", backend=spec.backend, device=info["device"],
                       n_iter=max_chunk_iter, reconstruction_err=err, summary=summary,
                       params=params, arrays=arrays,
                       component_names=list(component_names or []))
