"""Random and seeded NNMF: ``min ||X - W H||_F^2`` (or ``D(X || WH)``) with ``W, H >= 0``.

This module checks the input, builds or completes the initial factors, applies the
MU eps lift, dispatches to a registered solver (``core.solvers.NMF_SOLVERS``) and
assembles the fit summary.  Solvers are pure functions; nothing here modifies the
caller's ``X``, ``W0`` or ``H0``.

Seeded runs
    *Balanced start.*  Generated seed maps have unit maximum while seed spectra keep
    their count scale (the seeding engine's convention), so ``W0 H0`` is usually
    many times the data.  Before the solver starts, each map is multiplied by the
    amplitude that best fits the data (:func:`~napari_unmix.core.init.balance_seeds`);
    shapes do not change, the stored seeds (``result.arrays``) are the given ones,
    and the amplitudes are recorded (``summary.init["balanced"]``).  Where the seeds'
    units are so far from the data's that the map would carry a factor whose square
    leaves the dtype's range (spectra near 1 for float32 values near 1e-20), a power
    of two is shared between the map and its spectrum
    (:func:`~napari_unmix.core.init.keep_seed_squares_in_range`; recorded as
    ``summary.init["scale moved to H"]``): ``W H`` is the same, the solver sees both
    factors in range.  Unbalanced seeds (no anchor) get the same.

    *Anchoring (trust in the seeds).*  ``anchor`` adds
    ``sum_j lambda_j ||H[j] - H0[j]||^2`` to the objective, a pull of every seeded
    spectrum towards its seed, with ``lambda_j = anchor_j ||W_start[:, j]||^2``
    (``W_start`` the balanced seed map).  That makes ``anchor`` scale-free: the
    penalty of a spectrum that moved by ``d`` is ``anchor_j`` times what the data
    term would pay if every pixel of that component were misfitted by ``d``, so
    ``anchor = 1`` gives the seed as much weight as the data's evidence about the
    spectrum, whatever the units or the number of pixels.  0 is the free fit (the
    specification's seeded NNMF); ``inf`` locks the row (fixed-H NNLS for it).

    *Drift and collapse.*  The summary reports, per component, the angle between
    the fitted spectrum and its seed, and the closest pair of fitted spectra
    (:mod:`~napari_unmix.core.diagnostics`); both warn past their limits.

Abundance models
    ``abundance="sum-to-one"`` (``"sum-le-one"``) asks every row of ``W`` to sum to
    one (at most one): fractions of the pixel.  The solver then alternates exact
    W steps under the constraint (FCLS) with HALS H steps (``fcls`` in
    ``core.solvers.NMF_SOLVERS``, :mod:`~napari_unmix.core.solvers.simplex_nmf`).
    ``W`` carries no scale then, the rows of ``H`` carry the data's: the start is
    ``W`` = the constrained fit of the data on the start's ``H`` (no balance of
    the seeds), and for random NNMF the unguided init's ``H`` is first multiplied
    by the mean row sum of its ``W``, so that ``W H`` keeps the data's scale with
    rows of ``W`` that sum to about one.

The Poisson loss
    ``loss="poisson"`` minimises the generalised Kullback-Leibler divergence
    ``D(X || WH)``, the Poisson likelihood of photon counts, by its multiplicative
    updates (:mod:`~napari_unmix.core.solvers.kl`; only ``mu`` fits it).  Locks and
    anchors work as above, with the anchor weights of the Poisson data term
    (:func:`~napari_unmix.core.poisson.poisson_anchor_weights`); a seed given as
    ``H0`` alone is completed by the Poisson NNLS.  The objective the stopping rule
    watches is ``D`` (plus the penalty), ``error_history`` holds it, and the summary
    adds the deviance ``2 D`` (total and per pixel mean), whose per-pixel image is
    ``result.arrays["deviance"]``.

Scale
    The data is divided by the power of two that brings its maximum into
    ``[1, 2)`` before the solver runs (exact in floating point; a copy of ``X``
    unless its maximum is there already).  Every solver then sees values near 1,
    so a tiny or a huge stack gives the same maps up to the scale, no eps
    (MU's, scikit-learn's tolerances) means something else at another scale, and
    no squared norm under- or overflows.  The factor is recorded
    (``summary.data_scale``); ``W``, ``H`` and the errors come back in the data's
    units.  HALS needs no copy: its iterates on ``2**s X`` are exactly ``2**s``
    times those on ``X`` (``SolverSpec.scale_exact``), so it fits ``X`` as it is,
    told the data's scale for its balance of ``W`` against ``H``, whenever
    ``|s|`` keeps its squared norms far inside the dtype's range
    (``core.data.fits_unscaled``: ``|s| <= 32`` in float32); ``summary.data_scale``
    is then 1.0.  The maps are the same as with the copy, which would cost one more
    ``X`` of memory.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._validation import check_iter_options, check_n_components, check_positive_int
from .chunked.scheduler import is_dask_array
from .data import CheckedMatrix, check_matrix, check_negative_policy, data_scale, fits_unscaled
from .device import backend_for_device, resolve_device
from .diagnostics import seed_drift
from .init import (
    INITS,
    balance_seeds,
    initialize_factors,
    keep_seed_squares_in_range,
    resolve_random_state,
)
from .parallel import Workers, check_n_jobs
from .poisson import poisson_anchor_weights, poisson_deviance
from .progress import Reporter
from .result import UnmixResult
from .seed_checks import check_seed, resolve_locks
from .solvers import check_loss, pick_nmf_solver, solve_nnls
from .solvers._common import NMFFit, kl_divergence, residual_norm
from .solvers.simplex import check_abundance
from .solvers.stopping import check_stop, make_stop
from .summaries import NegativeInfo, NMFSummary

__all__ = ["nmf"]


def _mu_lift(A, eps, *, axis, rows=None):
    """Copy of ``A`` with entries below ``eps`` times their line's maximum raised to it.

    The lines are the columns of ``W`` (``axis=0``) or the rows of ``H`` (``axis=1``):
    the floor is relative, so it means the same whatever the seeds' units (MU is
    invariant under ``W D, D^-1 H``); an all-zero line takes the maximum of ``A``.
    ``rows``: only those rows are lifted.  Returns the copy and the number lifted.
    """
    out = A.copy()
    peak = out.max(axis=axis, keepdims=True)
    floor = eps * np.where(peak > 0, peak, out.max())
    low = out < floor
    if rows is not None:
        keep = np.ones(out.shape[0], dtype=bool)
        keep[rows] = False
        low[keep] = False
    out[low] = np.broadcast_to(floor, out.shape)[low]
    return out, int(low.sum())


def _n_sum_one(W) -> int:
    """Rows of ``W`` that sum to one (to rounding): where ``sum <= 1`` is active."""
    s = np.asarray(W, dtype=np.float64).sum(axis=1)
    return int((s >= 1.0 - 64 * W.shape[1] * np.finfo(W.dtype).eps).sum())


def _fit_all_locked(X, H, *, max_iter, report, abundance="free", loss="frobenius",
                    tol=1e-4, n_jobs=None):
    """Seeded NNMF with every spectrum locked: exact fixed-H NNLS (FCLS) for W (or the
    Poisson NNLS, to ``tol``)."""
    W, info = solve_nnls(X, H, max_iter=max_iter, report=report, abundance=abundance,
                         loss=loss, tol=tol, n_jobs=n_jobs)
    converged = not info["capped"].any() and all(info["chunk_converged"])
    history = [(0, residual_norm(X, W, H) if loss == "frobenius" else
                kl_divergence(X, W, H, floor=float(np.finfo(X.dtype).eps)))]
    fit = NMFFit(W=W, H=H.copy(), n_iter=max(info["chunk_iters"], default=0),
                 converged=converged, history=history, n_jobs=info["n_jobs"])
    return info["spec"], info["device"], fit


def nmf(X, n_components, *, W0=None, H0=None, solver="auto", backend="auto", init="nndsvda",
        tol=1e-4, max_iter=1000, random_state=None, callback=None, locked=None,
        anchor=None, negative="raise", device="auto", track_error_every=10,
        mu_eps_lift=True, balance=None, component_names=None,
        abundance="free", loss="frobenius", stop="auto", n_jobs=None) -> UnmixResult:
    """Non-negative matrix factorisation ``X ~ W H``, random or seeded.

    Parameters
    ----------
    X : array_like, shape (n_pixels, n_channels), or CheckedMatrix
        Non-negative pixel spectra.  A :class:`~napari_unmix.core.data.CheckedMatrix`
        (already validated, its negative policy applied) is used without further
        checks.  A dask array is fitted by HALS over its blocks, one pass per
        iteration (:mod:`~napari_unmix.core.chunked.nmf`: least squares, free
        abundances), and ``W`` comes back as a dask array.
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
        in ``core.solvers.NMF_SOLVERS``.  ``"auto"`` takes HALS for random NNMF and
        for anchored seeded NNMF (the anchor keeps its large steps in the seeds'
        basin), and multiplicative updates for a free seeded fit (``anchor`` 0 or
        None), whose small steps keep it near the seeds.
    backend : str, default "auto"
        Implementation: ``"numpy"``, ``"torch"``, ``"sklearn"``, ...
    init : {"nndsvda", "nndsvd", "nndsvdar", "random"}, default "nndsvda"
        Unguided initialisation used when no seed is given.
    tol : float, default 1e-4
        Stopping tolerance.  The project's own solvers stop at the first sampled
        iteration whose relative improvement of the objective over the previous
        sample is ``<= tol`` (and, by default, earlier by the noise-scaled rule of
        ``stop``); scikit-learn uses its own rule.
    max_iter : int, default 1000
        Iteration cap.  Reaching it raises a ``ConvergenceWarning`` and sets
        ``summary.hit_max_iter``.
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
    anchor : float or array_like (k,), optional
        Trust in the seed spectra: the relative strength of the pull of every
        spectrum towards its ``H0`` row (module documentation).  0: free; ``inf``:
        locked.  Needs ``H0``.  Passing it (0 included) declares ``W0`` / ``H0``
        *seeds*: the start is balanced (``balance``) and drifted or collapsed
        components are warned about.  Left out (None), ``W0`` / ``H0`` are a custom
        initialisation used as given (scikit-learn's ``init="custom"``), and the
        drift is only reported in the summary.  ``run_analysis`` passes the
        config's trust (1 by default).
    negative : {"raise", "clip", "offset"}, default "raise"
        Treatment of negative values in ``X`` (recorded in params).
    device : str, default "auto"
        torch device for torch backends: CUDA when available, else CPU.
    track_error_every : int, default 10
        Iterations between error samples of the project's own solvers.
    mu_eps_lift : bool, default True
        For ``solver="mu"`` only: raise initial entries below the dtype's machine
        epsilon times the maximum of their column of ``W`` (row of ``H``) to that
        floor, on a copy handed to the solver, because an exact zero never moves
        under multiplicative updates (a relative floor: the same whatever the
        seeds' units).  Turn off only to study that
        effect.
    balance : bool, optional
        Seeded runs with both ``W0`` and ``H0``: rescale each seed map so that
        ``W0 H0`` fits the data's scale before the solver starts (module
        documentation).  Default: when ``anchor`` is given.
    component_names : sequence of str, optional
        Names of the components (result and warnings).
    abundance : {"free", "sum-to-one", "sum-le-one"}, default "free"
        The abundance model of ``W`` (module documentation): no sum constraint,
        every row summing to one, or to at most one.  The sum constraints need a
        solver that keeps them (``"auto"`` takes ``fcls``; others are refused) and
        replace the seeds' balance by a constrained fit of ``W`` to ``H0``.
    loss : {"frobenius", "poisson"}, default "frobenius"
        Least squares, or the Poisson loss ``D(X || WH)`` for photon counts (module
        documentation); ``"auto"`` then takes multiplicative updates, solvers that
        cannot fit it are refused, and so are the sum constraints.
    stop : {"auto", "noise", "tol"}, default "auto"
        The stopping rule (``core.solvers.stopping``).  ``"noise"``: stop once the
        error is within 1 % of the rank-k truncated SVD residual of the data (no
        k-component fit can go below it: what is left is noise), or when the
        squared error stalls against that noise energy, or by ``tol``;
        ``"tol"``: the specification's relative-improvement rule alone.
        ``"auto"``: ``"noise"`` for random NNMF by HALS and FCLS on least squares,
        ``"tol"`` for seeded runs (their anchors and drift were tuned with it), the
        multiplicative updates and ``tol=0`` (every iteration up to ``max_iter``).
        ``summary.stopping_rule`` says which rule ran and ``summary.stopped_by``
        what ended the run (``"noise"``,
        ``"noise-stall"``, ``"tol"``, ``"max_iter"``, ``"solver"`` for
        scikit-learn's rule, ``"exact"`` when every spectrum was locked).
    n_jobs : int, optional
        Worker threads that share the pixel blocks of the numpy solvers
        (``core.parallel``: ``None`` or -1 every core this process may use).  The
        result does not depend on it (bit for bit); torch uses its device.

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
    check_positive_int(track_error_every, name="track_error_every")
    if is_dask_array(X.X if isinstance(X, CheckedMatrix) else X):
        from .chunked.blocks import require_known_chunks
        from .chunked.nmf import nmf_dask  # HALS over the blocks (core.chunked)

        require_known_chunks(X)  # before anything counts its pixels
        return nmf_dask(X, n_components, W0=W0, H0=H0, solver=solver, backend=backend,
                        init=init, tol=tol, max_iter=max_iter, random_state=random_state,
                        callback=callback, locked=locked, anchor=anchor, negative=negative,
                        device=device, track_error_every=track_error_every,
                        mu_eps_lift=mu_eps_lift, balance=balance,
                        component_names=component_names, abundance=abundance, loss=loss,
                        stop=stop, n_jobs=n_jobs)
    t0 = time.perf_counter()
    backend = backend_for_device(backend, device)  # a named GPU: the torch solvers
    data = check_matrix(X, negative=check_negative_policy(negative))
    X, neg_info = data.X, data.negative
    n, m = X.shape
    seeded = W0 is not None or H0 is not None
    mode = "seeded-nmf" if seeded else "nmf"
    k = check_n_components(n_components, n, m, mode=mode)
    check_iter_options(tol, max_iter)
    check_stop(stop)
    check_n_jobs(n_jobs)
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}; choose one of {', '.join(INITS)}.")
    if X.max() == 0:
        raise ValueError("The data is all zeros (every pixel, every channel): there is "
                         "nothing to factorise.")
    if component_names is not None and len(component_names) != k:
        raise ValueError(f"{len(component_names)} component names for {k} components.")
    lock, strength, free, anchored = resolve_locks(locked, anchor, k, H0)
    seed = resolve_random_state(random_state)
    abundance = check_abundance(abundance)
    constrained = abundance != "free"
    poisson = check_loss(loss) == "poisson"
    spec = pick_nmf_solver(solver, backend, partial_lock=lock is not None and not lock.all(),
                           seeded=seeded, anchored=anchored, abundance=abundance, loss=loss)
    dev = resolve_device(device) if spec.needs_torch else "cpu"
    own_scale = data_scale(X)
    # a solver exact under powers of two fits X as it is; the others fit a scaled copy
    unscaled = spec.scale_exact and fits_unscaled(own_scale, X.dtype)
    scale = 1.0 if unscaled else own_scale   # what the solver's X is divided by
    x_scale = own_scale if unscaled else 1.0  # the power of two the solver's X is at
    Xs = X if scale == 1.0 else X / X.dtype.type(scale)

    init_info = {}
    if seeded:
        W_init = None if W0 is None else check_seed(W0, (n, k), "W0", X.dtype)
        H_init = None if H0 is None else check_seed(H0, (k, m), "H0", X.dtype)
        if W_init is None:
            W_init, _ = solve_nnls(X, H_init, max_iter=max(max_iter, 10 * k),
                                   abundance=abundance, loss=loss, n_jobs=n_jobs)
            fitted = abundance if constrained else "poisson nnls" if poisson else "nnls"
            init_info = {"W0": f"{fitted} fit to H0", "H0": "given"}
        elif H_init is None:
            Ht, _ = solve_nnls(np.ascontiguousarray(X.T), np.ascontiguousarray(W_init.T),
                               max_iter=max(max_iter, 10 * k), loss=loss, n_jobs=n_jobs)
            H_init = np.ascontiguousarray(Ht.T)
            init_info = {"W0": "given", "H0": f"{'poisson ' if poisson else ''}nnls fit to W0"}
        else:
            init_info = {"W0": "given", "H0": "given"}
        if not W_init.any() or not H_init.any():
            raise ValueError("The completed seed is all zeros; the given seed does not "
                             "explain any of the data. Check the seed against X.")
        H_start = H_init if scale == 1.0 else H_init / X.dtype.type(scale)
        W_start = W_init
        if balance is None:
            balance = anchor is not None and not constrained
        if constrained and W0 is not None:   # W carries no scale: fit it to the spectra
            W_start, _ = solve_nnls(Xs, H_start, max_iter=max(max_iter, 10 * k),
                                    abundance=abundance, n_jobs=n_jobs)
            init_info["W start"] = f"{abundance} fit to H0"
        elif balance and W0 is not None and H0 is not None:
            W_start, amplitudes = balance_seeds(Xs, W_init, H_start)
            init_info["balanced"] = amplitudes.tolist()
        if not constrained:
            # seeds in units far from the data's leave the whole difference in one
            # factor, beyond what its squares can hold in X's dtype
            W_start, H_start, moved = keep_seed_squares_in_range(
                W_start, H_start, rows=None if lock is None else np.flatnonzero(~lock))
            if moved:
                init_info["scale moved to H"] = {str(j): f"2**{e}" for j, e in moved}
    else:
        with Workers(n_jobs) as pool:  # its products shared out; no BLAS thread left
            W_init, H_start = initialize_factors(Xs, k, init=init, random_state=seed,
                                                 data_scale=x_scale, workers=pool)
        W_start = W_init
        init_info = {"W0": init, "H0": init}
        if constrained:  # H takes W's scale; W starts as the constrained fit on it
            H_start = H_start * X.dtype.type(max(float(W_init.sum(axis=1).mean()), 1e-30))
            W_init, _ = solve_nnls(Xs, H_start, max_iter=max(max_iter, 10 * k),
                                   abundance=abundance, n_jobs=n_jobs)
            W_start = W_init
            init_info = {"W0": f"{abundance} fit to H0",
                         "H0": f"{init}, times the mean row sum of its W"}
        H_init = H_start if scale == 1.0 else H_start * X.dtype.type(scale)
    lam = None
    if anchored:
        finite = np.where(np.isfinite(strength) & free, strength, 0.0)
        lam = (poisson_anchor_weights(finite, W_start, Xs) if poisson else
               finite * np.einsum("ij,ij->j", W_start, W_start, dtype=np.float64))

    lift = {"applied": False}
    W_in, H_in = W_start, H_start
    if spec.algorithm == "mu" and mu_eps_lift:
        eps = float(np.finfo(X.dtype).eps)
        free_rows = None if lock is None else np.flatnonzero(~lock)
        W_in, n_w = _mu_lift(W_start, eps, axis=0)
        H_in, n_h = _mu_lift(H_start, eps, axis=1, rows=free_rows)
        lift = {"applied": True, "eps": eps, "relative_to": "the maximum of each W column "
                "and H row", "n_lifted_W": n_w, "n_lifted_H": n_h}

    report = Reporter(callback, "nmf", error_scale=scale)  # errors in the data's units
    all_locked = lock is not None and bool(lock.all())
    t_solve = time.perf_counter()  # the stopping rule's noise estimate counts as solving
    rule = None if all_locked else make_stop(stop, spec, Xs, k, tol=tol,
                                             every=track_error_every, report=report,
                                             max_iter=max_iter, loss=loss, seeded=seeded,
                                             n_jobs=n_jobs, data_scale=x_scale)
    if all_locked:
        # every spectrum is fixed: the problem is fixed-H NNLS, solved exactly
        spec, dev, fit = _fit_all_locked(Xs, H_start, max_iter=max_iter, report=report,
                                         abundance=abundance, loss=loss, tol=tol,
                                         n_jobs=n_jobs)
        lift = {"applied": False}
    else:
        fit = spec.func(Xs, W_in, H_in, solver=spec.algorithm, max_iter=max_iter, tol=tol,
                        locked=lock, report=report, random_state=seed,
                        track_error_every=track_error_every, device=dev,
                        anchor_weights=lam, anchor_spectra=None if lam is None else H_start,
                        loss=loss, stop=rule, n_jobs=n_jobs,
                        **({"abundance": abundance} if constrained else {}),
                        **({"data_scale": x_scale} if unscaled else {}))
    solve_time = time.perf_counter() - t_solve
    W, Hs = fit.W, fit.H
    err = scale * residual_norm(Xs, W, Hs)
    H = Hs if scale == 1.0 else Hs * X.dtype.type(scale)
    if lock is not None:
        H[lock] = H_init[lock]  # locked rows are returned bit-identical to the seed
    hit_cap = not fit.converged and (fit.n_iter >= max_iter or all_locked)
    if hit_cap:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"NNMF ({spec.algorithm}/{spec.backend}) stopped at max_iter={max_iter} before "
            f"meeting tol={tol}. Raise max_iter (or loosen tol) and run again.",
            ConvergenceWarning, stacklevel=2)
    drift = None
    if seeded and H0 is not None:
        drift, messages = seed_drift(H, H_init, names=component_names)
        for msg in messages if anchor is not None else ():
            warnings.warn(f"Seeded NNMF: {msg}", UserWarning, stacklevel=2)
    x_norm = scale * float(np.sqrt(np.einsum("ij,ij->i", Xs, Xs).sum(dtype=np.float64)))
    history = [[int(i), float(e) * scale] for i, e in fit.history]
    anchors = None
    if seeded:
        anchors = [None if (lock is not None and lock[j]) else
                   (0.0 if strength is None else float(strength[j])) for j in range(k)]
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
                       "exact fixed-H NNLS (every spectrum locked)" if rule is None else
                       rule.describe(scale)
                       + (" (the objective: the divergence D(X || WH))" if poisson else "")
                       + (" (the objective includes the anchor)" if anchored else "")),
        stopped_by=("exact" if all_locked and not hit_cap else "max_iter" if hit_cap else
                    "solver" if rule is None else rule.stopped_by or "max_iter"),
        n_jobs=int(getattr(fit, "n_jobs", 1)),
        extrapolation=getattr(fit, "extrapolation", None),
        error_history=history,
        reconstruction_err=err,
        relative_error=err / max(x_norm, np.finfo(float).tiny),
        init=init_info,
        mu_eps_lift=lift,
        locked=[] if lock is None else np.flatnonzero(lock).tolist(),
        anchor=anchors,
        data_scale=scale,
        seed_drift=drift,
        negative=NegativeInfo.from_dict(neg_info),
        solve_time_s=solve_time,
        abundance=abundance,
        n_constraint_active=_n_sum_one(W) if abundance == "sum-le-one" else None,
        loss=loss,
        time_s=time.perf_counter() - t0,
    )
    params = {
        "mode": mode, "n_components": k, "solver": spec.algorithm, "backend": spec.backend,
        "init": init if not seeded else "custom", "tol": float(tol), "max_iter": int(max_iter),
        "random_state": seed, "negative": negative, "device": device,
        "track_error_every": int(track_error_every), "mu_eps_lift": bool(mu_eps_lift),
        "locked": summary.locked, "anchor": anchors, "balance": bool(balance),
        "abundance": abundance, "loss": loss, "stop": stop, "n_jobs": n_jobs,
    }
    arrays = {}
    if seeded:
        arrays = {"W0": W_init.copy(), "H0": H_init.copy()}
    if poisson:
        deviance = poisson_deviance(X, W, H)
        arrays["deviance"] = deviance.astype(X.dtype)
        summary = summary.replace(deviance=float(deviance.sum()),
                                  mean_deviance=float(deviance.mean()))
    return UnmixResult(W=W, H=H, mode=mode, backend=spec.backend, device=dev,
                       n_iter=fit.n_iter, reconstruction_err=err, summary=summary,
                       params=params, arrays=arrays,
                       component_names=list(component_names or []))
