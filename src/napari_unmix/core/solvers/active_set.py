"""Exact fixed-H NNLS for many pixels at once: passive-set enumeration and pivoting.

Every pixel ``x_p`` asks for ``w_p = argmin_{w >= 0} ||x_p - w H||``.  With
``G = H H^T`` (k x k) and ``B = X H^T`` (n x k), formed once per block of pixels,
that is the small quadratic programme ``min 1/2 w G w^T - b_p w^T`` over
``w >= 0``.  Its optimum is characterised by a *passive set* ``F`` (the components
allowed to be non-zero) that passes the KKT tests: the least-squares solution on
``F``, ``w_F = b_F G_FF^{-1}``, is positive, and every component outside ``F`` has
a non-negative gradient ``y = w G - b``.

One number decides both tests for a component ``j``
------------------------------------------------------
Let ``v_j(F')`` be the value of ``w_j`` in the least-squares solution on
``F' = F | {j}``.  For ``j`` in ``F`` that is ``w_j`` itself; for ``j`` outside
``F`` it equals ``-y_j / S_j`` with the Schur complement ``S_j > 0``, so
``y_j < 0`` exactly when ``v_j(F | {j}) > 0``.  Both tests therefore read the same
linear functional ``b @ q`` (``q`` a column of ``G_F'F'^{-1}``): ``F`` is optimal
when ``j in F  <=>  v_j(F | {j}) > 0`` for every ``j``.  The functional is
evaluated once per pixel, so rounding can never make a component look wrong both
inside and outside ``F``; a component whose value is zero within rounding (a
degenerate optimum, e.g. noise-free data with zero abundances) is consistently
kept out.  The bound used for "within rounding" is ``4 k eps sum_i |q_i|``
times the pixel's ``||b||_1``.

Two ways to find ``F``
----------------------
* **Enumeration** (``k <= 6``, :mod:`.active_set_enumeration`): one matrix
  product evaluates all ``k 2^(k-1)`` functionals for a block of pixels and
  table look-ups on their packed signs leave the optimal set.  No iteration and
  no per-pixel branching; faster than pivoting for every k it covers.
* **Block principal pivoting** (Kim & Park 2011, :mod:`.active_set_pivoting`),
  for larger ``k`` and for the rare pixels the enumeration leaves without a
  consistent set (values at rounding level).  Every pixel runs its own exchange
  sequence, all advanced together, with the backup rule that rules out cycling.

Both read their functionals from the scaled basis of :mod:`.active_set_basis`
(unit-norm spectra, pseudo-inverse solves on passive sets, iterative refinement
on ill-conditioned ones: its docstring has the numerical choices and the
accuracy limit) and are written once for numpy and torch over the array shims
of :mod:`.active_set_ops`.  This module checks the inputs and drives the blocks.

Numerical choices
-----------------
* ``G``, ``B`` and every solve are in float64, also for float32 input.  An error
  ``dB`` in ``B`` moves the objective by about ``dB G^{-1} dB^T``; with
  overlapping spectra (small eigenvalues of ``G``) float32 accumulation of ``B``
  would exceed the 1e-6 relative accuracy asked of an exact solver.  ``B`` is
  formed a few hundred rows at a time (a float64 copy of those rows of ``X``), so
  temporaries stay ``O(block x n_channels)`` and ``O(block x k 2^k)``, never
  ``O(n_pixels)``.  The result comes back in the dtype of ``X``.
* Pixels the pivoting has not solved after ``max_iter`` exchanges are flagged in
  ``NNLSFit.capped`` and get NaN abundances (as the SciPy backend does), so a
  capped pixel is visible instead of silently wrong.
* The numpy version runs in the calling thread by default; given a pool of
  workers (``workers``, :class:`~napari_unmix.core.parallel.Workers`, which
  ``solve_nnls`` passes) it shares the blocks over them, every pixel solved by the
  same calls whatever the number of workers; torch uses its own intra-op threads.

References
----------
Jingu Kim and Haesun Park, "Fast nonnegative matrix factorization: an
active-set-like method and comparisons", SIAM J. Sci. Comput. 33(6), 3261-3281,
2011.
"""

from __future__ import annotations

import threading

import numpy as np

from ..parallel import Workers
from ._common import NNLSFit
from .active_set_basis import TABLE_MAX_K, Basis, Refinement
from .active_set_enumeration import ENUM_MAX_K, Enumeration
from .active_set_ops import NumpyOps, TorchOps
from .active_set_pivoting import CodedSets, GroupedSets, pivot
from .active_set_sums import BlockFitSums, squares_of
from .pooled import ordered_pair_sums

__all__ = ["fit_nnls_active_set_numpy", "fit_nnls_active_set_torch"]

#: pixels handled together on the CPU (numpy and torch) by the enumeration and the
#: pivoting (whose rounds have a fixed cost), and on a CUDA device
#: the enumeration's float64 values per block (4 MB): on two worker threads 2**19
#: was 10 % (k = 5) and 24 % (k = 6) faster than 2**18 on the benchmark stack, one
#: thread the same or faster (smaller blocks pay numpy's per-call cost, which holds
#: the GIL, more often; 2**20 was slower for k >= 5: out of cache)
_BLOCK_ENUM_VALUES = 1 << 19
_BLOCK_PIVOT = 16384
_BLOCK_CUDA = 1 << 16
#: rows of X converted to float64 at a time while forming B on the CPU
_RHS_ROWS = 512

_METHODS = ("auto", "enumerate", "pivot")
_TINY = float(np.finfo(np.float64).tiny)


def _check_inputs(X, H, max_iter, method):
    X = np.asarray(X)
    H = np.asarray(H)
    if X.ndim != 2 or H.ndim != 2:
        raise ValueError(f"X and H must be 2-D, got shapes {X.shape} and {H.shape}.")
    if X.shape[1] != H.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} channel(s) but H has {H.shape[1]}; the spectra in H must "
            "be sampled on the channels of X.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) \
            or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}.")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}; got {method!r}.")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    return X, H


def _solve(X, basis: Basis, ops, rhs, *, max_iter: int, block: int | None, method: str,
           workers=None, cuda: bool = False, W=None, fit_sums: bool = False) -> NNLSFit:
    n = X.shape[0]
    if W is None:                     # the result on the host (else: a tensor given)
        W = np.zeros((n, basis.active.size), dtype=X.dtype)
    capped = np.zeros(n, dtype=bool)
    if n == 0 or basis.k == 0:        # no pixels, or every spectrum is zero: w = 0 fits
        return NNLSFit(W=W, n_iter=0, converged=True, capped=capped)
    k = basis.k
    if method == "auto":
        method = "enumerate" if k <= ENUM_MAX_K else "pivot"
    if method == "enumerate" and k > ENUM_MAX_K:
        raise ValueError(f"method='enumerate' supports up to {ENUM_MAX_K} non-zero "
                         f"spectra, got {k}; use method='pivot' or 'auto'.")
    enumeration = Enumeration(basis, ops) if method == "enumerate" else None
    if block is None and cuda:
        block = _BLOCK_CUDA
    elif block is None and enumeration is not None:
        block = min(8192, max(256, _BLOCK_ENUM_VALUES // enumeration.Mx.shape[1]))
    elif block is None:
        block = _BLOCK_PIVOT
    block = max(1, int(block))
    if k <= TABLE_MAX_K:
        basis.pivot_table()                       # build once, before any worker
    refine = Refinement(basis, ops) if basis.needs_refine else None
    norms = ops.asarray(basis.norms)
    max_iter = int(max_iter)

    own = threading.local()                       # each thread's passive-set scratch
    sums = BlockFitSums(basis) if fit_sums else None
    shares = [None] * -(-n // block)                          # per block, in block order

    def run(first: int, last: int) -> int:
        """Solve the pixels first:last block by block; return the most exchanges used."""
        sets = getattr(own, "sets", None)
        if sets is None:
            sets = own.sets = (CodedSets if k <= TABLE_MAX_K else GroupedSets)(basis, ops)
        most = 0
        for start in range(first, last, block):
            stop = min(start + block, last)
            b_raw, x_squares = rhs(X[start:stop])
            # ||b||_1 sets the scale of the KKT tests' rounding bounds; an all-zero
            # row stays zero (0 / tiny = 0) and gets w = 0
            scale = ops.maximum(ops.row_abssum(b_raw), _TINY)
            b = b_raw / scale[:, None]
            cap = None
            if enumeration is not None:
                w, undecided = enumeration(b)
                if bool(undecided.any()):         # values at rounding level: pivot those
                    rows = ops.arange(b.shape[0])[undecided]
                    w_rows, exchanges, cap_rows = pivot(b[rows], sets, max_iter, ops)
                    w[rows] = w_rows
                    cap = ops.zeros_bool(b.shape[0])
                    cap[rows] = cap_rows
                    most = max(most, int(exchanges.max()))
            else:
                w, exchanges, cap = pivot(b, sets, max_iter, ops)
                most = max(most, int(exchanges.max()))
            if refine is not None:
                w = refine(b, w)
            w = w * (scale[:, None] / norms)
            if not isinstance(W, np.ndarray):     # stays on the device
                W[start:stop, ops.asarray(basis.active)] = w.to(W.dtype)
            elif k == basis.active.size:
                ops.store(W[start:stop], w)
            else:
                W[start:stop, basis.active] = ops.to_numpy(w)
            if cap is not None:
                capped[start:stop] = ops.to_numpy(cap)
            if sums is not None and x_squares is not None:
                shares[start // block] = sums(b_raw, x_squares, W[start:stop], X[start:stop])
        return most

    if workers is None:
        n_iter = run(0, n)
    else:                                         # the blocks on the pool, in any order
        n_iter = max(workers.map(lambda start: run(start, min(start + block, n)),
                                 range(0, n, block)))
    totals = ordered_pair_sums(shares) if sums is not None and not capped.any() else None
    return NNLSFit(W=W, n_iter=n_iter, converged=not capped.any(), capped=capped,
                   fit_sums=totals)


def fit_nnls_active_set_numpy(X, H, *, max_iter: int = 1000, tol=None, method: str = "auto",
                              block_size: int | None = None, n_threads: int = 1,
                              workers=None, fit_sums: bool = False, **_ignored) -> NNLSFit:
    """Exact fixed-H NNLS for the pixels of ``X`` (one chunk), in numpy.

    Parameters
    ----------
    X : ndarray, shape (n_pixels, n_channels)
        Pixel spectra (float32 or float64; ``W`` comes back in the same dtype).
    H : ndarray, shape (k, n_channels)
        Fixed spectra.
    max_iter : int, default 1000
        Cap on the passive-set exchanges of a pixel in the pivoting.  Pixels not
        optimal by then are flagged in ``capped`` and set to NaN.  The enumeration
        (``k <= 6`` non-zero spectra) does not iterate; only the rare pixels it
        leaves undecided are pivoted.
    tol : float, optional
        Ignored: the solver stops at the KKT optimum, not at a tolerance.
    method : {"auto", "enumerate", "pivot"}, default "auto"
        ``"auto"`` enumerates the passive sets for ``k <= 6`` non-zero spectra and
        pivots otherwise; both give the same optimum.  ``"enumerate"`` refuses more
        than 6 non-zero spectra.
    block_size : int, optional
        Pixels handled together.  By default, for the enumeration, as many as
        keep its ``k max(2^(k-1), 8) + 1`` values per pixel within ``2^19`` values
        (4 MB, so that they stay in cache), clamped to 256 .. 8192: 8192 pixels
        for ``k <= 4``, 6472 for k = 5, 2716 for k = 6; 16384 for the pivoting.
        Temporaries are ``O(workers x block_size x max(k 2^k, n_channels))``,
        independent of the number of pixels.
    n_threads : int, default 1
        Worker threads sharing the blocks when no ``workers`` are given.
    workers : Workers, optional
        A pool of worker threads (:class:`~napari_unmix.core.parallel.Workers`) to
        share the blocks over (numpy releases the GIL in its kernels); BLAS is then
        already held to one thread per worker.  The result does not depend on it.
    fit_sums : bool, default False
        Also return ``NNLSFit.fit_sums``, the squared residual and data norms of the
        fit, formed block by block while each block is in cache (no second pass
        over ``X``; in block order, so the same for every number of workers).  None
        when a pixel was capped.

    Returns
    -------
    NNLSFit
        ``W`` (n_pixels, k); ``n_iter`` the largest number of exchanges a pixel
        needed (0 when the enumeration decided every pixel); ``converged`` False
        when a pixel hit ``max_iter``.
    """
    X, H = _check_inputs(X, H, max_iter, method)
    basis = Basis(H)
    HnT = np.ascontiguousarray(basis.Hn.T)
    ops = NumpyOps()

    def rhs(Xb):
        """``Xb Hn^T`` in float64, and ``sum(Xb**2)`` when ``fit_sums`` (else None)."""
        if Xb.dtype == np.float64:
            return Xb @ HnT, squares_of(Xb) if fit_sums else None
        out = np.empty((Xb.shape[0], HnT.shape[1]))
        squares = 0.0
        for r in range(0, Xb.shape[0], _RHS_ROWS):
            rows = Xb[r:r + _RHS_ROWS].astype(np.float64)   # in cache: both from one copy
            np.matmul(rows, HnT, out=out[r:r + _RHS_ROWS])
            if fit_sums:
                squares += squares_of(rows)
        return out, squares if fit_sums else None

    if workers is not None:
        return _solve(X, basis, ops, rhs, max_iter=max_iter, method=method,
                      block=block_size, workers=workers, fit_sums=fit_sums)
    with Workers(n_threads) as pool:  # small products: one BLAS thread per worker
        return _solve(X, basis, ops, rhs, max_iter=max_iter, method=method,
                      block=block_size, workers=pool if pool.n > 1 else None,
                      fit_sums=fit_sums)


def _cuda_block(n, k, m, device) -> int:
    """Pixels per block on a CUDA device: as many as keep the float64 temporaries of a
    block (about ``(k 2^k + 2 m)`` values per pixel) within 1/8 of the free memory,
    at most 2 GB, and at least :data:`_BLOCK_CUDA`."""
    from ..streaming import device_memory_budget

    per_pixel = 8 * (k * max(2 ** max(k - 1, 0), 8) + 2 * m + 4 * k + 8)
    budget = min(device_memory_budget(device) // 4, 2 * 2**30)
    return max(_BLOCK_CUDA, min(n, budget // per_pixel))


def fit_nnls_active_set_torch(X, H, *, max_iter: int = 1000, tol=None, device: str = "auto",
                              method: str = "auto", block_size: int | None = None,
                              **_ignored) -> NNLSFit:
    """Exact fixed-H NNLS for the pixels of ``X`` (one chunk), in PyTorch.

    The algorithm and tables of :func:`fit_nnls_active_set_numpy`, run on
    ``device`` (CPU or CUDA; ``"auto"`` picks CUDA when available) in float64.  A
    numpy ``X`` moves to the device one block at a time and only ``W`` comes back.
    ``X`` may also be a torch tensor already on the device (resident data, e.g. a
    chunk that ``solve_nnls`` streamed there): ``W`` then stays on the device too
    (``NNLSFit.W`` is a tensor in ``X``'s dtype) and nothing is copied but the
    per-block flags.  On CUDA a block holds as many pixels as fit 1/8 of the free
    device memory (at least 65536, see :func:`_cuda_block`), so that a large
    resident stack is solved in a few large kernels; on the CPU the block sizes of
    the numpy version.  Parameters and result as for the numpy version; torch runs
    its own threads, so there is no ``n_threads``.
    """
    from ..device import get_torch, resolve_device, to_device
    from ..streaming import is_tensor

    torch = get_torch()
    resident = is_tensor(X)
    if resident:
        if X.ndim != 2 or np.ndim(H) != 2 or X.shape[1] != np.shape(H)[1]:
            raise ValueError(f"X (n_pixels, n_channels) and H (k, n_channels) do not fit: "
                             f"{tuple(X.shape)} and {np.shape(H)}.")
        device = str(X.device)
        _check_inputs(np.zeros((0, X.shape[1])), H, max_iter, method)
        H = np.asarray(H)
    else:
        X, H = _check_inputs(X, H, max_iter, method)
        device = resolve_device(device)
    basis = Basis(H)
    ops = TorchOps(torch, device)
    on_cuda = str(device).startswith("cuda")
    HnT = ops.asarray(basis.Hn.T)
    rows = _BLOCK_CUDA if on_cuda else _RHS_ROWS
    if block_size is None and on_cuda:
        block_size = _cuda_block(X.shape[0], basis.k, X.shape[1], device)

    def rhs(Xb):
        if not resident:
            Xb = to_device(np.ascontiguousarray(Xb), device)
        if Xb.dtype == torch.float64:
            return Xb @ HnT, None
        out = torch.empty((Xb.shape[0], HnT.shape[1]), dtype=torch.float64, device=device)
        for r in range(0, Xb.shape[0], rows):
            torch.matmul(Xb[r:r + rows].to(torch.float64), HnT, out=out[r:r + rows])
        return out, None

    with torch.no_grad():
        W = (torch.zeros((X.shape[0], basis.active.size), dtype=X.dtype, device=device)
             if resident else None)
        return _solve(X, basis, ops, rhs, max_iter=max_iter, method=method,
                      block=block_size, cuda=on_cuda, W=W)
