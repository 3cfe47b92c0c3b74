"""Random and seeded NNMF: ``min ||X - W H||_F^2`` with ``W, H >= 0``.

This module checks the input, builds or completes the initial factors, applies the
MU eps lift, dispatches to a registered solver (``core.solvers.NMF_SOLVERS``) and
assembles the fit summary.  Solvers are pure functions; nothing here modifies the
caller's ``X``, ``W0`` or ``H0``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._validation import as_float_array, check_iter_options, check_n_components, check_nonnegative
from .data import check_matrix, check_negative_policy
from .device import resolve_device
from .init import INITS, initialize_factors, resolve_random_state
from .progress import Reporter
from .result import UnmixResult
from .solvers import pick_nmf_solver, solve_nnls
from .solvers._common import NMFFit, residual_norm
from .summaries import NegativeInfo, NMFSummary

__all__ = ["nmf"]


def _check_seed(A, shape, name, dtype):
    A = as_float_array(A, name=name)
    if A.shape != shape:
        raise ValueError(
            f"{name} has shape {A.shape}, but shape {shape} is needed "
            f"({'(n_pixels, n_components)' if name == 'W0' else '(n_components, n_channels)'})."
        )
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or infinite values; seeds must be finite.")
    check_nonnegative(A, name=name, remedy="Seeds must be >= 0; clip or rebuild them.")
    if not A.any():
        raise ValueError(
            f"{name} is all zeros: no iterative update can move an all-zero seed. "
            "Give a seed with some positive values, or leave it out (None)."
        )
    # documented conversion: seeds take the data's dtype
    return A.astype(dtype, copy=False)


def _locked_mask(locked, k):
    if locked is None:
        return None
    arr = np.asarray(locked)
    if arr.dtype == bool:
        if arr.shape != (k,):
            raise ValueError(f"locked must have one flag per component ({k}), got {arr.shape}.")
        mask = arr.copy()
    else:
        mask = np.zeros(k, dtype=bool)
        idx = arr.astype(int).ravel()
        if idx.size and (idx.min() < -k or idx.max() >= k):
            raise ValueError(f"locked indices {idx.tolist()} are out of range for {k} components.")
        mask[idx] = True
    return mask if mask.any() else None


def _mu_lift(A, eps, rows=None):
    """Copy of ``A`` with entries below ``eps`` raised to ``eps`` (optionally some rows)."""
    out = A.copy()
    if rows is None:
        low = out < eps
    else:
        low = np.zeros_like(out, dtype=bool)
        low[rows] = out[rows] < eps
    out[low] = eps
    return out, int(low.sum())


def _fit_all_locked(X, H, *, max_iter, report):
    """Seeded NNMF with every spectrum locked: exact fixed-H NNLS for W."""
    W, info = solve_nnls(X, H, max_iter=max_iter, report=report)
    converged = not info["capped"].any() and all(info["chunk_converged"])
    history = [(0, residual_norm(X, W, H))]
    fit = NMFFit(W=W, H=H.copy(), n_iter=max(info["chunk_iters"], default=0),
                 converged=converged, history=history)
    return info["spec"], info["device"], fit


def nmf(X, n_components, *, W0=None, H0=None, solver="auto", backend="auto", init="nndsvda",
        tol=1e-4, max_iter=1000, random_state=None, callback=None, locked=None,
        negative="raise", device="auto", track_error_every=10,
        mu_eps_lift=True) -> UnmixResult:
    """Non-negative matrix factorisation ``X ~ W H``, random or seeded.

    Parameters
    ----------
    X : array_like, shape (n_pixels, n_channels), or CheckedMatrix
        Non-negative pixel spectra.  A :class:`~napari_unmix.core.data.CheckedMatrix`
        (already validated, its negative policy applied) is used without further
        checks.
    n_components : int
        Number of components ``k``; ``1 <= k <= min(n_pixels, n_channels)``.
    W0 : array_like, shape (n_pixels, k), optional
        Initial abundances.  Given alone, ``H0`` is fitted to it by NNLS.
    H0 : array_like, shape (k, n_channels), optional
        Initial spectra.  Given alone, ``W0`` is fitted to it by NNLS (on its fitted
        scale).  Passing ``W0`` and/or ``H0`` makes the run *seeded*; seeds are
        converted to ``X``'s dtype and never modified.
    solver : str, default "auto"
        Algorithm: ``"hals"`` (block coordinate descent), ``"mu"`` (multiplicative
        updates), ``"cd"`` (scikit-learn coordinate descent), or any other registered
        in ``core.solvers.NMF_SOLVERS``.  ``"auto"`` takes the fastest solver for
        random NNMF (HALS) and multiplicative updates for seeded NNMF, whose small
        steps keep the solution in the basin the seeds chose.
    backend : str, default "auto"
        Implementation: ``"sklearn"``, ``"torch"``, ...
    init : {"nndsvda", "nndsvd", "nndsvdar", "random"}, default "nndsvda"
        Unguided initialisation used when no seed is given.
    tol : float, default 1e-4
        Stopping tolerance.  The project's own solvers stop at the first sampled
        iteration whose relative error improvement over the previous sample is
        ``<= tol``; scikit-learn uses its own rule.
    max_iter : int, default 1000
        Iteration cap.  Reaching it raises a ``ConvergenceWarning`` and sets
        ``summary["hit_max_iter"]``.
    random_state : int, RandomState, Generator or None
        Seed of the initialisation.  ``None`` draws one; the int actually used is
        stored in ``params["random_state"]`` so that the run can be repeated.
    callback : callable, optional
        ``callback(ProgressInfo) -> bool | None`` at every sampled iteration;
        returning False raises :class:`~napari_unmix.core.progress.Cancelled`.
    locked : bool array (k,) or sequence of int, optional
        Rows of ``H0`` kept fixed (spectral locking); needs ``H0``.  With every row
        locked the problem is fixed-H NNLS: ``W`` is then solved exactly by the
        fastest exact NNLS solver, whatever ``solver`` says (the summary records it).
    negative : {"raise", "clip", "offset"}, default "raise"
        Treatment of negative values in ``X`` (recorded in params).
    device : str, default "auto"
        torch device for torch backends: CUDA when available, else CPU.
    track_error_every : int, default 10
        Iterations between error samples of the project's own solvers.
    mu_eps_lift : bool, default True
        For ``solver="mu"`` only: raise initial entries below the dtype's machine
        epsilon to that epsilon, on a copy handed to the solver, because an exact
        zero never moves under multiplicative updates.  Turn off only to study that
        effect.

    Returns
    -------
    UnmixResult
        ``mode`` is ``"nmf"`` or ``"seeded-nmf"``.

    Raises
    ------
    ValueError, TypeError
        For invalid data, seeds or options, with what to do about it.
    Cancelled
        When ``callback`` returns False.
    """
    t0 = time.perf_counter()
    data = check_matrix(X, negative=check_negative_policy(negative))
    X, neg_info = data.X, data.negative
    n, m = X.shape
    seeded = W0 is not None or H0 is not None
    mode = "seeded-nmf" if seeded else "nmf"
    k = check_n_components(n_components, n, m, mode=mode)
    check_iter_options(tol, max_iter)
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}; choose one of {', '.join(INITS)}.")
    if X.max() == 0:
        raise ValueError("X is all zeros: there is nothing to factorise.")
    lock = _locked_mask(locked, k)
    if lock is not None and H0 is None:
        raise ValueError("locked spectra need H0: pass the spectra to keep fixed as H0.")
    seed = resolve_random_state(random_state)
    spec = pick_nmf_solver(solver, backend, partial_lock=lock is not None and not lock.all(),
                           seeded=seeded)
    dev = resolve_device(device) if spec.needs_torch else "cpu"

    init_info = {}
    if seeded:
        W_init = None if W0 is None else _check_seed(W0, (n, k), "W0", X.dtype)
        H_init = None if H0 is None else _check_seed(H0, (k, m), "H0", X.dtype)
        if W_init is None:
            W_init, _ = solve_nnls(X, H_init, max_iter=max(max_iter, 10 * k))
            init_info = {"W0": "nnls fit to H0", "H0": "given"}
        elif H_init is None:
            Ht, _ = solve_nnls(np.ascontiguousarray(X.T), np.ascontiguousarray(W_init.T),
                               max_iter=max(max_iter, 10 * k))
            H_init = np.ascontiguousarray(Ht.T)
            init_info = {"W0": "given", "H0": "nnls fit to W0"}
        else:
            init_info = {"W0": "given", "H0": "given"}
        if not W_init.any() or not H_init.any():
            raise ValueError("The completed seed is all zeros; the given seed does not "
                             "explain any of the data. Check the seed against X.")
    else:
        W_init, H_init = initialize_factors(X, k, init=init, random_state=seed)
        init_info = {"W0": init, "H0": init}

    lift = {"applied": False}
    W_in, H_in = W_init, H_init
    if spec.algorithm == "mu" and mu_eps_lift:
        eps = float(np.finfo(X.dtype).eps)
        free_rows = None if lock is None else np.flatnonzero(~lock)
        W_in, n_w = _mu_lift(W_init, eps)
        H_in, n_h = _mu_lift(H_init, eps, rows=free_rows)
        lift = {"applied": True, "eps": eps, "n_lifted_W": n_w, "n_lifted_H": n_h}

    report = Reporter(callback, "nmf")
    t_solve = time.perf_counter()
    if lock is not None and lock.all():
        # every spectrum is fixed: the problem is fixed-H NNLS, solved exactly
        spec, dev, fit = _fit_all_locked(X, H_init, max_iter=max_iter, report=report)
        lift = {"applied": False}
    else:
        fit = spec.func(X, W_in, H_in, solver=spec.algorithm, max_iter=max_iter, tol=tol,
                        locked=lock, report=report, random_state=seed,
                        track_error_every=track_error_every, device=dev)
    solve_time = time.perf_counter() - t_solve
    W, H = fit.W, fit.H
    if lock is not None:
        H[lock] = H_init[lock]  # locked rows are returned bit-identical to the seed
    err = residual_norm(X, W, H)
    all_locked = lock is not None and bool(lock.all())
    hit_cap = not fit.converged and (fit.n_iter >= max_iter or all_locked)
    if hit_cap:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"NNMF ({spec.algorithm}/{spec.backend}) stopped at max_iter={max_iter} before "
            f"meeting tol={tol}. Raise max_iter (or loosen tol) and run again.",
            ConvergenceWarning, stacklevel=2)
    x_norm = float(np.sqrt(np.einsum("ij,ij->i", X, X).sum(dtype=np.float64)))
    summary = NMFSummary(
        solver=spec.algorithm,
        backend=spec.backend,
        device=dev,
        dtype=str(X.dtype),
        n_iter=int(fit.n_iter),
        max_iter=int(max_iter),
        hit_max_iter=bool(hit_cap),
        converged=bool(fit.converged),
        tol=float(tol),
        stopping_rule=("scikit-learn internal" if spec.backend == "sklearn" else
                       f"relative improvement <= tol between error samples every "
                       f"{track_error_every} iterations"),
        error_history=[[int(i), float(e)] for i, e in fit.history],
        reconstruction_err=err,
        relative_error=err / max(x_norm, np.finfo(float).tiny),
        init=init_info,
        mu_eps_lift=lift,
        locked=[] if lock is None else np.flatnonzero(lock).tolist(),
        negative=NegativeInfo.from_dict(neg_info),
        solve_time_s=solve_time,
        time_s=time.perf_counter() - t0,
    )
    params = {
        "mode": mode, "n_components": k, "solver": spec.algorithm, "backend": spec.backend,
        "init": init if not seeded else "custom", "tol": float(tol), "max_iter": int(max_iter),
        "random_state": seed, "negative": negative, "device": device,
        "track_error_every": int(track_error_every), "mu_eps_lift": bool(mu_eps_lift),
        "locked": summary.locked,
    }
    arrays = {}
    if seeded:
        arrays = {"W0": W_init.copy(), "H0": H_init.copy()}
    return UnmixResult(W=W, H=H, mode=mode, backend=spec.backend, device=dev,
                       n_iter=fit.n_iter, reconstruction_err=err, summary=summary,
                       params=params, arrays=arrays)
