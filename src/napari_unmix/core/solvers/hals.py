"""HALS: hierarchical alternating least squares NNMF, in numpy (torch: ``hals_torch``).

HALS (Cichocki & Phan 2009; see also Gillis' survey, 2014) is block coordinate
descent on ``||X - W H||_F^2`` where each block is one column of ``W`` or one row
of ``H``.  With the other blocks fixed, the best non-negative value of a block has
a closed form, so every block update is an exact minimisation and the objective
never increases.  All the updates of one half-step need only two small Gram
products, which is what makes HALS fast:

* ``W`` half-step.  ``A = X H^T`` (n x k) and ``B = H H^T`` (k x k) are formed
  once; then, for ``j = 0 .. k-1`` in turn,
  ``W[:, j] <- max(0, (A[:, j] - sum_{l != j} W[:, l] B[l, j]) / B[j, j])``,
  using the columns already updated in this sweep (Gauss-Seidel order).
* ``H`` half-step.  ``C = W^T X`` (k x m) and ``D = W^T W`` (k x k), then
  ``H[j] <- max(0, (C[j] - sum_{l != j} D[j, l] H[l]) / D[j, j])`` for each row
  that is not locked.

Only ``X H^T`` and ``W^T X`` read ``X``; everything else costs ``O(n k^2)`` or
less.

Anchoring (seeded NNMF).  With anchor weights ``lambda_j >= 0`` and anchor spectra
``H0`` the objective is ``||X - W H||_F^2 + sum_j lambda_j ||H[j] - H0[j]||^2``: a
pull of each spectrum towards its seed.  Its ``H`` block update stays closed-form,
``H[j] <- max(0, (C[j] - sum_{l != j} D[j, l] H[l] + lambda_j H0[j]) /
(D[j, j] + lambda_j))``, so every block update still minimises the (anchored)
objective exactly and it never increases.  ``lambda_j = 0`` is plain HALS; the
anchored rows keep their scale (the anchor fixes it), so they are left out of the
scale balance below.  The stopping rule then watches the anchored objective.

Because the half-step's Gram products are the expensive part, each
half-step repeats its sweep over the blocks several times (``w_sweeps`` /
``h_sweeps``) on the same ``A, B`` (or ``C, D``): the "accelerated HALS" idea of
Gillis & Glineur (2012), with a fixed number of sweeps so that the numpy and the
torch versions do exactly the same sequence of operations.  Repeating the ``W``
sweeps (which nearly solves each pixel's small NNLS problem) was the most
robust gain on strongly overlapping spectra in ``benchmarks/nmf_speed.py``:
with 8 sweeps the error of 200 scikit-learn ``cd`` iterations was reached in
10-45 iterations on eight synthetic stacks; with one sweep (plain HALS, which
is what ``cd`` does) it took 110 or more on the two stacks tried.

Over-relaxation (option, off by default).  With ``omega != 1`` each block moves
``omega`` times the way to its closed-form value and is then projected:
``w <- max(0, w + omega * (w* - w))``, ``w*`` the unconstrained block minimiser
(projected SOR, Cryer 1971).  With one block free the objective is, entry by
entry, a 1-D parabola centred on ``w*``; for ``0 < omega < 2`` the relaxed point
is no farther from ``w*`` than ``w`` was, and so is its projection (0 lies
between the relaxed point and ``w >= 0``), so every block update still lowers
the objective or keeps it.  It is not the default: ``omega = 1.8`` sometimes
reached an error in fewer iterations, sometimes in more, and in seeded runs it
jumped away from the seed's basin (spectra ending farther from the truth than
the seeds in ``tests/core/test_series.py``).

Extrapolation (the default; ``extrapolate=False`` for plain HALS).  Each iteration may
start from spectra extrapolated beyond the last two, with a restart whenever that
raises the objective (Ang & Gillis 2019; :mod:`.extrapolation`): 2-5 times fewer
iterations to the noise-scaled stop on the benchmark stack and the real scenes.

The ``W`` update of one pixel depends only on that pixel's row of ``X``.  On the
CPU the pixels are therefore processed in blocks (``CPU_BLOCK_BYTES`` of ``X``):
for each block ``A`` is formed, the block's rows of ``W`` are swept, and the
block's shares of ``C = W^T X`` and ``D = W^T W`` are computed while the block
of ``X`` is still in the CPU caches.  This is the same algorithm as above
(``A`` and ``C`` are each still computed once per iteration), but ``X`` is
streamed from memory once per iteration instead of twice, and the numpy version
can hand the blocks to several threads.  The shares are summed in block order,
so the result does not depend on the number of threads.  On CUDA the whole of
``X`` is one block.

Safeguards
----------
*Empty components.*  A division by ``B[j, j] = ||H[j]||^2`` (or
``D[j, j] = ||W[:, j]||^2``) is only made when that value is above
``eps^2 * max_l B[l, l]`` (and a normal floating-point number); otherwise the
block is treated as empty and set to zero, which is its exact minimiser in the
limit.  A free row of ``H`` that is empty after its half-step (all zero, or
below that relative threshold) would leave its component dead for good, since
``W[:, j]`` is then zero too.  Such a row is re-seeded with the flat spectrum
``2 * eps * max(H)`` (a tiny positive floor): the next ``W`` half-step then fits
the component to whatever residual is left, and the half-step after it reshapes
the spectrum.  Genuine zeros elsewhere in ``W`` and ``H`` are kept.  Locked rows
are never touched, so their abundance column may legitimately end at zero.

*Scale balance.*  ``W[:, j] H[j]`` is unchanged when ``W[:, j]`` is multiplied
by ``s`` and ``H[j]`` divided by it.  HALS itself is equivariant to this
rescaling, but left alone the two scales can drift apart (for example from a
unit-maximum ``W0`` seed with count-scale ``H0``) until one of them under- or
overflows.  At iteration 0, every 10 iterations, at every error sample and at
the end, each free component is rescaled so that ``||W[:, j]||`` and
``||H[j]||`` agree to within a factor of 2, using a power of two for ``s``:
multiplying by a power of two is exact in floating point (barring
under/overflow), so ``W H`` is left bit-for-bit unchanged.  Locked rows keep the
caller's scale.

Stopping rule
-------------
The error ``E = ||X - W H||_F`` is computed exactly (in pixel chunks, summed in
float64) at iteration 0 and every ``track_error_every`` iterations, and the run
stops at the first sample whose relative improvement over the previous sample
is ``<= tol`` (:class:`~._common.SampledErrorStopping`).  The test is relative,
so multiplying ``X`` by a constant changes neither when nor whether it stops.
"""

from __future__ import annotations

import numpy as np

from ..parallel import Workers, check_n_jobs
from ._common import (
    NMFFit,
    SampledErrorStopping,
    chunk_slices,
    residual_norm,
    rows_per_chunk,
    sum_of_squares,
)
from .extrapolation import EXTRAPOLATE, Extrapolation
from .pooled import ordered_sum

__all__ = ["anchor_penalty", "balance_np", "check_anchor", "check_hals_inputs", "fit_hals_numpy",
           "h_step_np", "loop_points", "revive_np", "safe_inverse_np", "w_block_np"]

#: Sweeps over the columns of W per iteration (all on one ``X H^T``).
W_SWEEPS = 8
#: Sweeps over the rows of H per iteration (all on one ``W^T X``).
H_SWEEPS = 4
#: Bytes of X per pixel block on the CPU.  A block's W sweeps are about 120 small
#: numpy calls whatever its size, so small blocks pay numpy's per-call overhead
#: (and the worker pool's per-block one) many times; large ones leave the cores'
#: caches and leave too few blocks for the workers.  On the benchmark stack (512 x
#: 512 px x 64 ch, k = 5, 2-core AMD EPYC, 512 KiB L2 per core; ``w_sweeps`` 8),
#: medians of 3, ms per iteration, 1 / 2 / 4 / 8 MiB blocks: 72 / 49 / 38 / 35 on 2
#: cores, 52 / 41 / 38 / 51 on 1 core, and 133 / 103 / 61 / 57 with k = 10 on 2
#: cores.  (An earlier machine of this project measured the opposite on one core,
#: 38 ms with 1 MB blocks and 51 ms with 8 MB: the best size depends on the CPU, and 4 MiB
#: lies between the two.)  4 MiB is 16384 pixels of 64 float32 channels: 16
#: blocks for 512 x 512 px.  The blocks do not depend on ``n_jobs``, so neither do
#: the results.
CPU_BLOCK_BYTES = 4 * 2**20
#: Over-relaxation factor of every block update, in (0, 2); 1 is plain HALS.
OMEGA = 1.0
#: Balance the W/H scales at least this often (iterations).
BALANCE_EVERY = 10


def check_anchor(anchor_weights, anchor_spectra, H, free):
    """Anchor weights (k,) float64 (0 where not anchored, or locked) and the anchor
    spectra; ``(None, None)`` when no free row is anchored."""
    if anchor_weights is None:
        return None, None
    lam = np.asarray(anchor_weights, dtype=np.float64).reshape(-1)
    if lam.shape != (H.shape[0],) or not np.isfinite(lam).all() or (lam < 0).any():
        raise ValueError(f"anchor_weights must be {H.shape[0]} finite values >= 0, got "
                         f"{anchor_weights!r}.")
    if anchor_spectra is None or np.shape(anchor_spectra) != H.shape:
        raise ValueError(f"anchor_spectra must have the shape of H {H.shape}.")
    lam = np.where(free, lam, 0.0)
    if not lam.any():
        return None, None
    return lam, np.asarray(anchor_spectra)


def anchor_penalty(H, anchor_weights, anchor_spectra) -> float:
    """``sum_j lambda_j ||H[j] - H0[j]||^2`` in float64 (numpy arrays)."""
    if anchor_weights is None:
        return 0.0
    d = np.asarray(H, dtype=np.float64) - np.asarray(anchor_spectra, dtype=np.float64)
    return float(np.dot(anchor_weights, np.einsum("ij,ij->i", d, d)))


def check_hals_inputs(X, W, H, locked, w_sweeps, h_sweeps, omega):
    """Check the arrays and options of a HALS fit; return the mask of free rows."""
    for name, value in (("w_sweeps", w_sweeps), ("h_sweeps", h_sweeps)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not 0.0 < omega < 2.0:
        raise ValueError(f"omega must lie strictly between 0 and 2 (1 = plain HALS), "
                         f"got {omega!r}; outside that range the updates can diverge.")
    if X.ndim != 2 or W.ndim != 2 or H.ndim != 2:
        raise ValueError("X, W and H must be 2-D arrays.")
    n, m = X.shape
    k = H.shape[0]
    if W.shape != (n, k) or H.shape != (k, m):
        raise ValueError(f"Shapes do not fit X ~ W H: X {X.shape}, W {W.shape}, H {H.shape}.")
    if X.dtype not in (np.float32, np.float64):
        raise TypeError(f"X must be float32 or float64, got {X.dtype}.")
    if locked is None:
        free = np.ones(k, dtype=bool)
    else:
        locked = np.asarray(locked, dtype=bool)
        if locked.shape != (k,):
            raise ValueError(f"locked must have one flag per component ({k}), "
                             f"got shape {locked.shape}.")
        free = ~locked
    return free


def loop_points(it, max_iter, stop):
    """(balance now, sample now) for iteration ``it``."""
    sample = stop.is_sample(it)
    balance = sample or it % BALANCE_EVERY == 0 or it == max_iter
    return balance, sample


# --------------------------------------------------------------------------- numpy


def safe_inverse_np(diag, eps, dtype):
    """``1 / diag`` where ``diag`` is a usable divisor, else 0 (see module doc)."""
    d = np.asarray(diag, dtype=np.float64)
    top = d.max(initial=0.0)
    ok = (d > eps * eps * top) & (d >= np.finfo(dtype).tiny)
    inv = np.zeros_like(d)
    inv[ok] = 1.0 / d[ok]
    return inv.astype(dtype)


def revive_np(H, free, eps, fallback):
    """Re-seed free rows of H that are empty with a flat tiny floor (in place)."""
    hn2 = np.einsum("ij,ij->i", H, H, dtype=np.float64)
    dead = free & ~(hn2 > eps * eps * hn2.max(initial=0.0))
    if dead.any():
        top = float(H.max(initial=0.0))
        H[dead] = 2.0 * eps * (top if top > 0 else fallback)


def balance_np(Wt, H, free, nw2, data_scale=1.0):
    """Rescale free components by powers of two so ||W[:, j]|| ~ ||H[j]|| / data_scale
    (in place; ``data_scale`` the power of two the data is at, see ``fit_hals_numpy``).

    Returns the factors each row of ``H`` was multiplied by (``H``'s dtype), or
    ``None`` when nothing changed.
    """
    nh2 = np.einsum("ij,ij->i", H, H, dtype=np.float64) / (data_scale * data_scale)
    nw2 = np.asarray(nw2, dtype=np.float64)
    ok = free & (nw2 > 0) & (nh2 > 0) & np.isfinite(nw2) & np.isfinite(nh2)
    if not ok.any():
        return None
    e = np.zeros(H.shape[0])
    e[ok] = np.round(0.25 * np.log2(nh2[ok] / nw2[ok]))
    if not e.any():
        return None
    for j in np.flatnonzero(e):
        Wt[j] *= Wt.dtype.type(2.0 ** e[j])
        H[j] *= H.dtype.type(2.0 ** -e[j])
    return np.exp2(-e).astype(H.dtype)


def fit_hals_numpy(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                   track_error_every: int = 10, w_sweeps: int = W_SWEEPS,
                   h_sweeps: int = H_SWEEPS, block_bytes: int = CPU_BLOCK_BYTES,
                   omega: float = OMEGA, n_threads: int | None = None,
                   anchor_weights=None, anchor_spectra=None, n_jobs=None, stop=None,
                   extrapolate: bool = EXTRAPOLATE, data_scale: float = 1.0,
                   **_ignored) -> NMFFit:
    """Fit ``X ~ W H`` by HALS in numpy (BLAS matrix products, in ``X``'s dtype).

    Parameters
    ----------
    X : ndarray (n, m); W : ndarray (n, k); H : ndarray (k, m)
        Data and initial factors (not modified), float32 or float64.  The
        factors are computed in ``X``'s dtype.
    max_iter, tol, track_error_every
        Iteration cap and the sampled stopping rule (module docstring).
    locked : bool ndarray (k,), optional
        Rows of H kept fixed; they come back bit-identical.
    report : callable, optional
        ``report(iteration, max_iter, error)`` at every error sample.
    w_sweeps, h_sweeps : int
        Sweeps over the blocks per half-step.
    block_bytes : int
        Bytes of ``X`` per pixel block.
    omega : float
        Over-relaxation factor in (0, 2); 1 is plain HALS (module docstring).
    n_jobs : int, optional
        Worker threads that share the pixel blocks (``core.parallel``): ``None``
        or -1 every core this process may use.  The result does not depend on it.
    n_threads : int, optional
        The older name of ``n_jobs`` (a positive number); wins when given.
    stop : SampledErrorStopping, optional
        The stopping rule (``core.solvers.stopping``), made by the caller with
        ``report`` and ``max_iter``; default the sampled relative-improvement rule.
    anchor_weights : array_like (k,), optional
        ``lambda_j >= 0`` of the anchored objective (module docstring), in the
        units of ``||X||^2 / ||H||^2``; 0 leaves a row free.
    anchor_spectra : ndarray (k, m), optional
        The spectra the rows are pulled towards (``H0``).
    extrapolate : bool, default True
        Start each iteration from spectra extrapolated beyond the last two, with
        restarts when that raises the objective (``core.solvers.extrapolation``);
        False for plain HALS.
    data_scale : float, default 1.0
        A power of two ``c``: ``X`` is ``c`` times the data its conventions are set
        for (the scale balance, the floor of a revived row).  The iterates are then
        exactly those of ``X / c`` from ``(W, H / c)``, with ``H`` times ``c``:
        every product and quotient of HALS scales by a power of two, which rounding
        leaves exact.  ``core.nmf`` passes the data's scale and fits ``X`` with no
        scaled copy (``core.data.fits_unscaled``).

    Returns
    -------
    NMFFit

    Notes
    -----
    The pixel blocks are independent in the ``W`` half-step, so ``n_jobs``
    Python threads share them (numpy releases the GIL inside its loops and BLAS
    calls); each block's share of ``C``, ``D`` and of the squared error is summed
    in block order.  BLAS itself is held to one thread per call during the run
    (``threadpoolctl``, installed with scikit-learn): the per-block products are
    too small to split, and on a busy machine a multi-threaded BLAS made each
    iteration up to ten times slower in ``benchmarks/nmf_speed.py``.
    """
    free = check_hals_inputs(X, W, H, locked, w_sweeps, h_sweeps, omega)
    lam, H0 = check_anchor(anchor_weights, anchor_spectra, H, free)
    n_jobs = _n_workers(n_threads, n_jobs)
    n_blocks = len(chunk_slices(X.shape[0], rows_per_chunk(X.shape[1], X.itemsize,
                                                           budget=block_bytes)))
    with Workers(n_jobs, n_blocks) as workers:
        fit = _fit_hals_numpy(X, W, H, free, max_iter=max_iter, tol=tol, report=report,
                              track_error_every=track_error_every, w_sweeps=w_sweeps,
                              h_sweeps=h_sweeps, block_bytes=block_bytes, omega=omega,
                              workers=workers, lam=lam, H0=H0, stop=stop,
                              extrapolate=extrapolate, data_scale=float(data_scale))
    fit.n_jobs = workers.n
    return fit


def w_block_np(X, Wt, Hs, Bh, w_sweeps, CB, DB, tmp, b, sl, exact=None):
    """W half-step on the pixel block ``sl`` (block ``b``); its share of
    ``C = W^T X`` and ``D = W^T W`` goes to ``CB[b]``, ``DB[b]`` (with ``exact``, a
    pair of float64 arrays like them, it goes there instead, summed in float64)."""
    k = Wt.shape[0]
    Xb = X[sl]
    Ab = Hs @ Xb.T  # (k, c): block of (X H^T)^T, already divided by B[j, j]
    Wb = Wt[:, sl]
    t = tmp[: sl.stop - sl.start]
    for _ in range(w_sweeps):
        for j in range(k):
            np.matmul(Bh[j], Wb, out=t)
            np.subtract(Ab[j], t, out=t)
            np.maximum(t, 0, out=Wb[j])
    if exact is None:
        np.matmul(Wb, Xb, out=CB[b])
        np.matmul(Wb, Wb.T, out=DB[b])
    else:  # float64 sums: the objective the extrapolation steers by (.extrapolation)
        W64 = Wb.astype(np.float64)
        np.matmul(W64, Xb.astype(np.float64), out=exact[0][b])
        np.matmul(W64, W64.T, out=exact[1][b])


def _n_workers(n_threads, n_jobs):
    """The ``n_jobs`` of a run: ``n_threads`` (the older name) when given."""
    if n_threads is None:
        return check_n_jobs(n_jobs)
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) \
            or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}.")
    return int(n_threads)


def _fit_hals_numpy(X, W, H, free, *, max_iter, tol, report, track_error_every, w_sweeps,
                    h_sweeps, block_bytes, omega, workers, lam=None, H0=None, stop=None,
                    extrapolate, data_scale=1.0):
    dtype = X.dtype
    eps = float(np.finfo(dtype).eps)
    n, m = X.shape
    k = H.shape[0]
    Wt = np.array(W.T, dtype=dtype, order="C")  # (k, n): one contiguous row per column
    H = np.array(H, dtype=dtype, order="C")
    free_rows = np.flatnonzero(free)
    # anchored rows keep the anchor's scale: no balance for them
    balanced = free if lam is None else free & (lam == 0)
    if lam is not None:
        lam_d = lam.astype(dtype)
        lam_H0 = (lam[:, None] * np.asarray(H0, dtype=np.float64)).astype(dtype)
    fallback = data_scale * float(np.sqrt(X.max(initial=0.0) / data_scale))
    blocks = chunk_slices(n, rows_per_chunk(m, X.itemsize, budget=block_bytes))
    # Each block's share of C and D (and of the squared error) is kept apart and
    # the shares are summed in block order, so the result does not depend on how
    # many threads did the blocks.
    CB = np.empty((len(blocks), k, m), dtype=dtype)
    DB = np.empty((len(blocks), k, k), dtype=dtype)
    rows = max(sl.stop - sl.start for sl in blocks)
    tasks = list(enumerate(blocks))

    def error():
        parts = workers.map(lambda bs: residual_norm(X[bs[1]], Wt[:, bs[1]].T, H,
                                                     chunk_rows=bs[1].stop - bs[1].start) ** 2,
                            tasks)
        return float(np.sqrt(ordered_sum(parts) + anchor_penalty(H, lam, H0)))

    def w_step(Hs, Bh, exact):
        def one(bs):
            tmp = workers.local(f"hals{id(Wt)}", lambda: np.empty(rows, dtype=dtype))
            w_block_np(X, Wt, Hs, Bh, w_sweeps, CB, DB, tmp, *bs, exact=exact)
        workers.map(one, tasks)

    balance_np(Wt, H, balanced, np.einsum("ij,ij->i", Wt, Wt, dtype=np.float64), data_scale)
    ext = None
    if extrapolate and free_rows.size:
        ext = Extrapolation(H, free, ordered_sum(workers.map(
            lambda bs: sum_of_squares(X[bs[1]]), tasks)))
    # below float64 the shares are summed in float64 while the extrapolation is on:
    # its decisions then do not depend on the dtype's rounding (.extrapolation)
    exact = None if ext is None or not ext.needs_float64(dtype) else (
        np.empty(CB.shape), np.empty(DB.shape))
    if stop is None:
        stop = SampledErrorStopping(tol, track_error_every, eps * data_scale, report=report,
                                    max_iter=max_iter)
    stop.record(0, error())
    converged = False
    n_iter = 0
    def iteration():
        """One HALS iteration from (W, H), in place; ``W^T X``, ``W^T W`` of the new W
        (float64) and ``W^T W`` in the data's dtype."""
        # --- W half-step, fused with the accumulation of C = W^T X, D = W^T W
        B = H @ H.T
        inv = safe_inverse_np(np.diag(B), eps, dtype)
        Bh = B * (omega * inv)[:, None]
        np.fill_diagonal(Bh, omega - 1.0)
        Hs = H * (omega * inv)[:, None]
        shares = exact if exact is not None and not ext.off else None
        w_step(Hs, Bh, shares)
        C64 = (CB if shares is None else shares[0]).sum(axis=0, dtype=np.float64)
        D64 = (DB if shares is None else shares[1]).sum(axis=0, dtype=np.float64)
        C, D = C64.astype(dtype), D64.astype(dtype)
        # --- H half-step on the free rows
        if free_rows.size:
            h_step_np(H, C, D, free, free_rows, lam_d=lam_d if lam is not None else None,
                      lam_H0=lam_H0 if lam is not None else None, omega=omega,
                      h_sweeps=h_sweeps, fallback=fallback)
        return C64, D64, D

    if ext is not None:
        W_saved = np.empty_like(Wt)
        steps = (iteration,
                 lambda out: ext.objective(out[0], out[1], H, anchor_penalty(H, lam, H0)),
                 lambda: np.copyto(W_saved, Wt), lambda: np.copyto(Wt, W_saved))
    for it in range(1, max_iter + 1):
        _, _, D = iteration() if ext is None else ext.run(H, *steps)
        n_iter = it
        balance, sample = loop_points(it, max_iter, stop)
        if balance:
            factors = balance_np(Wt, H, balanced, np.diag(D), data_scale)
            if ext is not None:
                ext.rescale(factors)
        if sample:
            err = error()
            if stop.record(it, err):
                converged = True
                break
    fit = NMFFit(W=np.ascontiguousarray(Wt.T), H=H, n_iter=n_iter, converged=converged,
                 history=stop.history)
    fit.extrapolation = None if ext is None else ext.record()
    return fit


def h_step_np(H, C, D, free, free_rows, *, lam_d=None, lam_H0=None, omega=1.0,
              h_sweeps=H_SWEEPS, fallback=1.0) -> None:
    """The H half-step of HALS on the free rows, in place.

    ``C = W^T X`` and ``D = W^T W`` (in ``H``'s dtype), ``free`` the rows to update
    (``free_rows`` their indices); ``lam_d`` / ``lam_H0`` the anchor's strengths and
    ``lambda H0`` (module docstring), ``None`` for a free fit; empty rows re-seeded.
    """
    dtype = H.dtype
    eps = float(np.finfo(dtype).eps)
    diag = np.diag(D) if lam_d is None else np.diag(D) + lam_d
    inv = safe_inverse_np(diag, eps, dtype)
    Dh = D * (omega * inv)[:, None]
    np.fill_diagonal(Dh, omega - 1.0)
    Ch = (C if lam_H0 is None else C + lam_H0) * (omega * inv)[:, None]
    for _ in range(h_sweeps):
        for j in free_rows:
            np.maximum(Ch[j] - Dh[j] @ H, 0, out=H[j])
    revive_np(H, free, eps, fallback)
