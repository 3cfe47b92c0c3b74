"""``core.nmf`` for a dask matrix: :func:`nmf_dask` (random, seeded, anchored, locked).

The data is checked in one pass (:mod:`.blocks`), divided by the power of two of its
maximum (lazily, exact), and fitted by HALS over its blocks (:mod:`.hals`, one pass
per iteration).  What differs from memory is only where the data is needed whole:

* *Random start.*  ``init`` (``"nndsvda"`` ...) runs, as in memory, on a pooled
  sample of at most :data:`SAMPLE_PIXELS` pixels drawn with the run's
  ``random_state``; it gives the start's spectra ``H0``, and the start's maps are the
  exact NNLS fit of every pixel to them (:mod:`.nnls`, one pass).
* *Seeds.*  ``H0`` alone: ``W0`` is the blockwise NNLS fit, as in memory.  ``W0``
  alone: ``H0`` is the NNLS fit of the channels on ``W0``'s Gram matrices (one pass
  for ``W^T X``, ``W^T W``).  The balance of the seeds and the anchor weights
  ``lambda_j = anchor_j ||W_j||^2`` come from the same Gram matrices.
* *Stopping.*  The rules of ``core.solvers.stopping``; the noise level of the
  ``"noise"`` rule is estimated from the same deterministic stride sample of pixels
  as in memory (read from the blocks).
* Every spectrum locked: the blockwise exact NNLS (:mod:`.nnls`).

Least squares and free abundances only, by HALS (``solver="auto"`` or ``"hals"``):
other losses, abundance models or solvers are refused with what to do.  The
summary is an :class:`~napari_unmix.core.summaries.NMFSummary` as in memory; ``W``
is a persisted dask array.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from .._validation import check_iter_options, check_n_components
from ..data import COMPUTE_FIRST, data_scale
from ..diagnostics import seed_drift
from ..init import INITS, initialize_factors, resolve_random_state, seed_scale_moves
from ..progress import Reporter
from ..result import UnmixResult
from ..seed_checks import check_seed, resolve_locks
from ..solvers import NMF_SOLVERS
from ..solvers.stopping import check_stop, make_stop
from ..summaries import NegativeInfo, NMFSummary
from .blocks import check_blocks, checked_input, fitted_max
from .hals import as_row_blocks, fit_hals_dask, gram_pass
from .nnls import nnls_blocks
from .scheduler import active_client, compute, is_dask_array, persist

__all__ = ["SAMPLE_PIXELS", "nmf_dask"]

#: Pixels of the pooled sample a random start is computed from.
SAMPLE_PIXELS = 65536


def _refuse(solver, backend, abundance, loss, device):
    if solver not in ("auto", "hals") or backend not in ("auto", "numpy"):
        raise ValueError(f"A dask input is fitted by HALS in numpy over its blocks; "
                         f"solver={solver!r} with backend={backend!r} needs the data in "
                         f"memory: {COMPUTE_FIRST}, or use solver='auto' and backend='auto'.")
    if abundance != "free" or loss != "frobenius":
        raise ValueError("A dask input is fitted by least squares with free abundances; "
                         f"abundance={abundance!r} with loss={loss!r} needs the data in "
                         f"memory: {COMPUTE_FIRST}, or use abundance='free' and "
                         "loss='frobenius'.")
    if str(device).startswith("cuda"):
        raise ValueError("A dask input runs on dask's workers (CPU): use device='cpu'; to "
                         f"fit it on a CUDA device, {COMPUTE_FIRST}.")


def _nnls_fit(Xs, H, max_iter):
    outputs, _ = nnls_blocks(Xs, H, options={"max_iter": max_iter, "device": "cpu"})
    return persist(outputs[0])[0]


def _h_from_w(C, D):
    """``argmin_{H >= 0} ||X - W H||`` from ``C = W^T X``, ``D = W^T W`` (per channel)."""
    from scipy.optimize import nnls as scipy_nnls

    ridge = 1e-12 * max(float(np.trace(D)), np.finfo(float).tiny)
    L = np.linalg.cholesky(D + ridge * np.eye(D.shape[0]))
    rhs = np.linalg.solve(L, C)
    return np.stack([scipy_nnls(L.T, rhs[:, j])[0] for j in range(C.shape[1])], axis=1)


def _balance(C, D, H0):
    """The amplitudes of ``core.init.balance_seeds`` from the Gram matrices."""
    from scipy.optimize import nnls as scipy_nnls

    H0d = np.asarray(H0, dtype=np.float64)
    b = np.einsum("jc,jc->j", C, H0d)
    G = D * (H0d @ H0d.T)
    ridge = 1e-12 * max(float(np.trace(G)), np.finfo(float).tiny)
    L = np.linalg.cholesky(G + ridge * np.eye(G.shape[0]))
    a, _ = scipy_nnls(L.T, np.linalg.solve(L, b))
    top = float(a.max(initial=0.0))
    return np.maximum(a, 1e-3 * top) if top > 0 else np.ones_like(a)


def nmf_dask(X, n_components, *, W0=None, H0=None, solver="auto", backend="auto",
             init="nndsvda", tol=1e-4, max_iter=1000, random_state=None, callback=None,
             locked=None, anchor=None, negative="raise", device="auto",
             track_error_every=10, mu_eps_lift=True, balance=None, component_names=None,
             abundance="free", loss="frobenius", stop="auto", n_jobs=None) -> UnmixResult:
    """``core.nmf`` for a dask ``X`` (module documentation); the options are its own."""
    t0 = time.perf_counter()
    _refuse(solver, backend, abundance, loss, device)
    data, stats = checked_input(X, negative)
    X, neg_info = data.X, data.negative
    if stats is None:
        from .blocks import block_stats

        stats, neg_for_max = block_stats(X), None
    else:
        neg_for_max = neg_info
    n, m = X.shape
    seeded = W0 is not None or H0 is not None
    mode = "seeded-nmf" if seeded else "nmf"
    k = check_n_components(n_components, n, m, mode=mode)
    check_iter_options(tol, max_iter)
    check_stop(stop)
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}; choose one of {', '.join(INITS)}.")
    top = fitted_max(stats, neg_for_max, X.dtype)
    if top == 0:
        raise ValueError("The data is all zeros (every pixel, every channel): there is "
                         "nothing to factorise.")
    if component_names is not None and len(component_names) != k:
        raise ValueError(f"{len(component_names)} component names for {k} components.")
    lock, strength, free, anchored = resolve_locks(locked, anchor, k, H0)
    seed = resolve_random_state(random_state)
    spec = NMF_SOLVERS[("hals", "numpy")]
    scale = data_scale(np.array([top]))
    t = X.dtype.type
    Xs = X if scale == 1.0 else X.map_blocks(np.divide, t(scale), dtype=X.dtype)
    cap = max(max_iter, 10 * k)

    init_info = {}
    gram = None
    if seeded:
        H_init = None if H0 is None else check_seed(H0, (k, m), "H0", X.dtype)
        if W0 is None:
            W_init = _nnls_fit(X, H_init, cap)
            init_info = {"W0": "nnls fit to H0", "H0": "given"}
        else:
            if is_dask_array(W0):
                if W0.shape != (n, k):
                    raise ValueError(f"W0 has shape {W0.shape}, but shape {(n, k)} is needed "
                                     "((n_pixels, n_components)).")
                W_init = as_row_blocks(check_blocks(W0, negative="raise", name="W0")[0]
                                       .X.astype(X.dtype), X)
            else:
                W_init = as_row_blocks(check_seed(W0, (n, k), "W0", X.dtype), X)
            if H_init is None:
                gram = gram_pass(X, W_init)
                H_init = _h_from_w(gram[0], gram[1]).astype(X.dtype)
                init_info = {"W0": "given", "H0": "nnls fit to W0"}
            else:
                init_info = {"W0": "given", "H0": "given"}
        if not H_init.any():
            raise ValueError("The completed seed is all zeros; the given seed does not "
                             "explain any of the data. Check the seed against X.")
        H_start = H_init if scale == 1.0 else H_init / t(scale)
        W_start = W_init
        if balance is None:
            balance = anchor is not None
        amplitudes = np.ones(k)
        if balance and W0 is not None and H0 is not None:
            gram = gram_pass(Xs, W_init)
            amplitudes = _balance(gram[0], gram[1], H_start)
            W_start = persist(W_init * amplitudes.astype(X.dtype))[0]
            init_info["balanced"] = amplitudes.tolist()
        # seeds in units far from the data's (core.init.keep_seed_squares_in_range):
        # a power of two moves between map and spectrum, W H unchanged
        w_peaks = compute(W_start.max(axis=0))[0]
        moves = seed_scale_moves(w_peaks, H_start.max(axis=1), X.dtype,
                                 rows=None if lock is None else np.flatnonzero(~lock))
        if moves:
            shift = np.zeros(k, dtype=int)
            for j, e in moves:
                shift[j] = e
            W_start = persist(W_start * np.ldexp(np.ones(k, X.dtype), -shift))[0]
            H_start = np.ldexp(H_start, shift[:, None]).astype(X.dtype)
            amplitudes = amplitudes * np.ldexp(1.0, -shift)
            init_info["scale moved to H"] = {str(j): f"2**{e}" for j, e in moves}
    else:
        rng = np.random.default_rng(seed)
        n_sample = min(n, SAMPLE_PIXELS)
        idx = np.sort(rng.choice(n, size=n_sample, replace=False))
        sample = np.asarray(compute(Xs[idx])[0])
        _, H_start = initialize_factors(sample, k, init=init, random_state=seed)
        W_start = W_init = _nnls_fit(Xs, H_start, cap)
        init_info = {"W0": "nnls fit to H0", "H0": f"{init} on a pooled sample of "
                     f"{n_sample} pixels"}
        H_init = H_start if scale == 1.0 else H_start * t(scale)
    lam = None
    if anchored:
        finite = np.where(np.isfinite(strength) & free, strength, 0.0)
        if gram is None or "balanced" not in init_info:
            gram = gram_pass(Xs, W_start)
            nw2 = np.diag(gram[1])
        else:
            nw2 = np.diag(gram[1]) * amplitudes ** 2
        lam = finite * nw2

    report = Reporter(callback, "nmf", error_scale=scale)  # errors in the data's units
    all_locked = lock is not None and bool(lock.all())
    t_solve = time.perf_counter()
    rule = None
    if all_locked:
        from .nnls import nnls_dask

        res = nnls_dask(Xs, H_start, max_iter=max_iter, callback=callback, negative="clip")
        W, Hs = res.W, H_start.copy()
        n_iter = res.n_iter
        converged = not res.summary.hit_max_iter
        history = [(0, res.reconstruction_err)]
        err = scale * res.reconstruction_err
        x_norm = scale * res.reconstruction_err / max(res.summary.relative_error, 1e-300)
        extrapolation = None
    else:
        rule = make_stop(stop, spec, Xs, k, tol=tol, every=track_error_every, report=report,
                         max_iter=max_iter, loss=loss, seeded=seeded)
        fit = fit_hals_dask(Xs, W_start, H_start, free, max_iter=max_iter, stop=rule,
                            lam=lam, H0=None if lam is None else H_start,
                            fallback=float(np.sqrt(top / scale)))
        W, Hs, n_iter, converged, history = fit.W, fit.H, fit.n_iter, fit.converged, \
            fit.history
        err = scale * float(np.sqrt(fit.err_sq))
        x_norm = scale * float(np.sqrt(fit.x_sq))
        extrapolation = fit.extrapolation
    solve_time = time.perf_counter() - t_solve
    H = Hs if scale == 1.0 else Hs * t(scale)
    if lock is not None:
        H[lock] = H_init[lock]
    hit_cap = not converged and (n_iter >= max_iter or all_locked)
    if hit_cap:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"NNMF ({spec.algorithm}/{spec.backend}) stopped at max_iter={max_iter} before "
            f"meeting tol={tol}. Raise max_iter (or loosen tol) and run again.",
            ConvergenceWarning, stacklevel=3)
    drift = None
    if seeded and H0 is not None:
        drift, messages = seed_drift(H, H_init, names=component_names)
        for msg in messages if anchor is not None else ():
            warnings.warn(f"Seeded NNMF: {msg}", UserWarning, stacklevel=3)
    anchors = None
    if seeded:
        anchors = [None if (lock is not None and lock[j]) else
                   (0.0 if strength is None else float(strength[j])) for j in range(k)]
    client = active_client()
    summary = NMFSummary(
        solver=spec.algorithm, backend=spec.backend, device="cpu", dtype=str(X.dtype),
        n_iter=int(n_iter), max_iter=int(max_iter), hit_max_iter=bool(hit_cap),
        converged=bool(converged), tol=float(tol),
        stopping_rule=("exact fixed-H NNLS (every spectrum locked)" if rule is None else
                       rule.describe(scale)
                       + (" (the objective includes the anchor)" if anchored else "")),
        stopped_by=("exact" if all_locked and not hit_cap else "max_iter" if hit_cap else
                    rule.stopped_by or "max_iter"),
        n_jobs=1, extrapolation=extrapolation,
        error_history=[[int(i), float(e) * scale] for i, e in history],
        reconstruction_err=err, relative_error=err / max(x_norm, np.finfo(float).tiny),
        init=init_info, mu_eps_lift={"applied": False},
        locked=[] if lock is None else np.flatnonzero(lock).tolist(), anchor=anchors,
        data_scale=scale, seed_drift=drift, negative=NegativeInfo.from_dict(neg_info),
        solve_time_s=solve_time, abundance=abundance, loss=loss,
        time_s=time.perf_counter() - t0,
        extra={"chunked": {"n_blocks": X.numblocks[0], "scheduler": "distributed" if client
                           else "local"}})
    params = {
        "mode": mode, "n_components": k, "solver": spec.algorithm, "backend": spec.backend,
        "init": init if not seeded else "custom", "tol": float(tol), "max_iter": int(max_iter),
        "random_state": seed, "negative": negative, "device": device,
        "track_error_every": int(track_error_every), "mu_eps_lift": bool(mu_eps_lift),
        "locked": summary.locked, "anchor": anchors, "balance": bool(balance),
        "abundance": abundance, "loss": loss, "stop": stop, "n_jobs": n_jobs,
    }
    arrays = {"W0": W_init, "H0": H_init.copy()} if seeded else {}
    return UnmixResult(W=W, H=H, mode=mode, backend=spec.backend, device="cpu", n_iter=n_iter,
                       reconstruction_err=err, summary=summary, params=params, arrays=arrays,
                       component_names=list(component_names or []))
