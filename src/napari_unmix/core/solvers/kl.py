"""The Poisson loss: multiplicative updates for the Kullback-Leibler divergence, numpy and torch.

Photon counts (fluorescence, low-count Raman) are Poisson distributed; their negative
log-likelihood is, up to a constant, the generalised Kullback-Leibler divergence

    D(X || WH) = sum_ic X_ic log(X_ic / (WH)_ic) - X_ic + (WH)_ic

(``2 D`` is the Poisson deviance).  A zero count contributes ``(WH)_ic`` only.  Where
least squares weighs every channel alike, ``D`` weighs a residual by ``1 / (WH)_ic``,
the inverse of the Poisson variance.  Both solvers here are the multiplicative
updates of Lee & Seung (2001), which for this loss are the EM algorithm of the Poisson
model (Richardson-Lucy): each update minimises exactly a majorising (auxiliary)
function of the objective, so the objective never increases.

NNMF (:func:`fit_kl_numpy`, :func:`fit_kl_torch`)
    One iteration, in the order of scikit-learn's ``mu`` solver
    (``beta_loss="kullback-leibler"``, the same update with the same start):

        W <- W * ((X / WH) H^T) / (1 H^T)      (1 H^T: the row sums of H)
        H <- H * (W^T (X / WH)) / (W^T 1)      (W^T 1: the column sums of W, new W)

    Both half-steps are computed in pixel blocks (``BLOCK_BYTES`` of ``X``; on CUDA
    the whole of ``X`` is one block when it fits the device's memory budget, else it
    is streamed in blocks, ``core.streaming``): a block's rows of ``W`` are updated,
    then its share of ``W^T (X / WH)`` and of ``W^T 1`` is computed while the block
    is still in the caches, and the shares are summed in block order.  This is the
    same algorithm, with ``X`` read once per iteration and temporaries the size of
    one block; in numpy ``n_jobs`` worker threads share the blocks and the result
    does not depend on their number.

    *Anchoring.*  With weights ``lambda_j >= 0`` and anchor spectra ``H0`` the
    objective is ``D + sum_j lambda_j ||H_j - H0_j||^2``.  Lee & Seung's auxiliary
    function of ``D`` in ``H`` is, entry by entry (``h = H_jc``, ``h_t`` its current
    value), ``a h - b log h`` + const with ``a = sum_i W_ij`` and
    ``b = h_t [W^T (X / W H_t)]_jc``; the penalty is already separable, so
    ``g(h) = a h - b log h + lambda (h - h0)^2`` majorises the anchored objective and
    touches it at ``h_t``.  Its exact minimiser over ``h > 0`` is the positive root of
    ``2 lambda h^2 + p h - b = 0``, ``p = a - 2 lambda h0``:

        h = 2 b / (p + sqrt(p^2 + 8 lambda b))          if p > 0
        h = (sqrt(p^2 + 8 lambda b) - p) / (4 lambda)   otherwise

    (the two forms are equal; each is the one without cancellation).  Minimising a
    majoriser that touches the objective cannot increase the objective, so the
    anchored iteration is monotone too.  ``lambda = 0`` gives ``b / a``, the plain
    update; a row with ``b = 0`` moves to ``max(0, h0 - a / (2 lambda))``, so an
    anchored entry is not stuck at zero.  Locked rows are never updated.

    *Stopping rule.*  The objective (``D``, plus the anchor penalty) is computed in
    float64 at iteration 0 and every ``track_error_every`` iterations and the run
    stops by :class:`~._common.SampledErrorStopping` (relative improvement over the
    previous sample ``<= tol``); the samples are the fit's ``history``.

Fixed-H NNLS (:func:`fit_nnls_kl_numpy`, :func:`fit_nnls_kl_torch`)
    ``W`` only, ``H`` fixed: every pixel is an independent problem, solved by the
    ``W`` update above (the EM iteration of Poisson regression), started from the
    pixel's total count split evenly, ``w_j = sum_c x_c / (k sum_c H_jc)`` (the
    start already has the right total; the updates keep it).  Every
    ``check_every`` iterations the divergence of each pixel is computed and a pixel
    stops when its relative improvement since the last check is ``<= tol``
    (``(D_prev - D) <= tol * D``); stopped pixels are taken out of the iteration,
    so the others run on alone, and the result of a pixel does not depend on the
    other pixels of its chunk.  Pixels still running at ``max_iter`` keep their last
    iterate and are marked ``capped``.  An all-zero pixel starts, and stays, at
    ``w = 0``, its optimum.  A spectrum with no signal (all zero) gets ``w = 0``.

Guards (eps)
    ``W H`` is floored before the division ``X / WH`` and the log: NNMF at
    ``eps * max(X)``, NNLS at ``eps * max(x_p)`` per pixel (``eps`` the machine
    epsilon of the data's dtype), a bound relative to the data, so multiplying ``X``
    by a constant changes nothing but the scale (``core.nmf`` and ``core.nnls`` also
    divide the data by the power of two that puts its maximum in ``[1, 2)``).  A zero
    denominator (a spectrum or an abundance column that is all zero) is replaced by 1:
    its numerator is zero too.  As with every multiplicative update, an exact zero in
    the start stays zero: ``core.nmf`` lifts a copy of a custom start (``mu_eps_lift``).

One loop serves numpy arrays and torch tensors alike (:class:`_Ops` holds the few
operations that are spelled differently), so both backends compute the same.
"""

from __future__ import annotations

import numpy as np

from ..device import get_torch, resolve_device, to_numpy, to_torch
from ..parallel import Workers
from ..streaming import BlockSource, plan_blocks
from ._common import (
    NMFFit,
    NNLSFit,
    SampledErrorStopping,
    chunk_slices,
    kl_divergence,
    one_blas_thread,
    rows_per_chunk,
)
from .pooled import ordered_sum

__all__ = ["fit_kl_numpy", "fit_kl_torch", "fit_nnls_kl_numpy", "fit_nnls_kl_torch"]

#: Bytes of X per pixel block of the NNMF iteration (numpy, torch on the CPU).
BLOCK_BYTES = 8 * 2**20
#: Iterations between the per-pixel stopping tests of the fixed-H solver.
CHECK_EVERY = 10


class _Ops:
    """The operations the loops spell differently for numpy and torch."""

    def __init__(self, xp: str, device=None):
        self.xp = xp
        self.device = device
        self.torch = get_torch() if xp == "torch" else None

    def ratio(self, X, WH, floor):
        """``X / max(WH, floor)``, in the buffer ``WH``."""
        if self.torch is None:
            np.maximum(WH, floor, out=WH)
            return np.divide(X, WH, out=WH)
        if isinstance(floor, float):
            WH.clamp_(min=floor)
        else:
            self.torch.maximum(WH, floor, out=WH)
        return self.torch.div(X, WH, out=WH)

    def sqrt(self, A):
        return np.sqrt(A) if self.torch is None else self.torch.sqrt(A)

    def hypot(self, A, B):
        """``sqrt(A^2 + B^2)`` without over- or underflow."""
        return np.hypot(A, B) if self.torch is None else self.torch.hypot(A, B)

    def f64(self, A):
        return np.asarray(A, dtype=np.float64) if self.torch is None else A.double()

    def like(self, A, ref):
        """``A`` in the dtype of ``ref``."""
        return A.astype(ref.dtype) if self.torch is None else A.to(ref.dtype)

    def where(self, cond, a, b):
        return np.where(cond, a, b) if self.torch is None else self.torch.where(cond, a, b)

    def zeros(self, shape, like):
        if self.torch is None:
            return np.zeros(shape, dtype=like.dtype)
        return self.torch.zeros(shape, dtype=like.dtype, device=like.device)

    def rows(self, A, keep):
        """The rows of ``A`` where the numpy mask ``keep`` is True."""
        if self.torch is None:
            return A[keep]
        return A[self.torch.as_tensor(keep, device=A.device)]

    def put(self, out, idx, A):
        """``out[idx] = A`` into the numpy array ``out``."""
        out[idx] = A if self.torch is None else to_numpy(A)


# --------------------------------------------------------------------------- NNMF


def _anchored_h(H, C, a, lam_col, two_lam_H0, ops):
    """The exact minimiser of the anchored auxiliary function (module docstring).

    Computed in float64 (a k x m term) with ``sqrt(p^2 + 8 lambda b)`` as
    ``hypot(p, sqrt(8 lambda) sqrt(b))``: no square of ``p`` or product
    ``lambda b`` is formed, so no anchor strength overflows (``p * p`` did in
    float32 from ``lambda h0`` about 1e19 on: NaN).  ``lam_col`` and
    ``two_lam_H0`` are float64; the result has ``H``'s dtype.
    """
    b = ops.f64(H) * ops.f64(C)
    p = ops.f64(a)[:, None] - two_lam_H0
    s = ops.hypot(p, ops.sqrt(8.0 * lam_col) * ops.sqrt(b))
    pos = p > 0
    # each form only where it is used; the other's denominator made harmless
    h = ops.where(pos, 2.0 * b / (p + s + ~pos), (s - p) / (4.0 * lam_col + (lam_col == 0)))
    return ops.like(h, H)


def _kl_loop(src, W, H, free, *, max_iter, tol, eps, floor, every, report, ops, lam=None,
             H0=None, stop=None) -> NMFFit:
    """KL multiplicative updates over the blocks of ``src`` (a ``BlockSource``); ``W`` and
    ``H`` (numpy arrays or tensors) updated in place, the blocks' shares of
    ``W^T (X / WH)`` and ``W^T 1`` summed in block order."""
    k = H.shape[0]

    def objective():
        d = ordered_sum(src.map(lambda sl, Xb: kl_divergence(Xb, W[sl], H, floor=floor,
                                                             xp=ops.xp)))
        if lam is not None:  # float64: lambda (h - h0)^2 may leave the data's dtype
            diff = ops.f64(H) - ops.f64(H0)
            d += float(((diff * diff).sum(1) * lam).sum())
        return d

    if stop is None:
        stop = SampledErrorStopping(tol, every, eps, report=report, max_iter=max_iter)
    stop.record(0, objective())
    update_H = free is None or bool(free.any())
    if lam is not None:  # float64 (k x m): 2 lambda h0 may leave the data's dtype
        lam_col = lam[:, None]
        two_lam_H0 = 2.0 * lam_col * ops.f64(H0)
    converged, n_iter = False, 0
    for it in range(1, max_iter + 1):
        hs = H.sum(1)
        den_w = hs + (hs == 0)
        Ht = H.T

        def block(sl, Xb, den_w=den_w, Ht=Ht):
            Wb = W[sl]
            R = ops.ratio(Xb, Wb @ H, floor)
            Wb *= (R @ Ht) / den_w
            if not update_H:
                return None
            R = ops.ratio(Xb, Wb @ H, floor)
            return Wb.T @ R, Wb.sum(0)

        shares = src.map(block)
        if update_H:
            C = ordered_sum(c for c, _ in shares)
            a = ordered_sum(s for _, s in shares)
            if C is None:                         # no pixels
                C, a = ops.zeros((k, H.shape[1]), H), ops.zeros((k,), H)
            if lam is None:
                new = H * (C / (a + (a == 0))[:, None])
            else:
                new = _anchored_h(H, C, a, lam_col, two_lam_H0, ops)
            if free is None:
                H[...] = new
            else:
                H[free] = new[free]
        n_iter = it
        if stop.is_sample(it) and stop.record(it, objective()):
            converged = True
            break
    return NMFFit(W=W, H=H, n_iter=n_iter, converged=converged, history=stop.history)


def _free_rows(locked, k):
    if locked is None or not np.any(locked):
        return None
    return ~np.asarray(locked, dtype=bool).reshape(k)


def _anchor(anchor_weights, anchor_spectra, free, k, dtype):
    """Anchor weights (k,), float64 (0 on locked rows; a strength beyond ``dtype``'s
    range stays finite), and spectra in ``dtype``, or ``(None, None)``."""
    if anchor_weights is None:
        return None, None
    lam = np.asarray(anchor_weights, dtype=np.float64).reshape(k)
    if not np.isfinite(lam).all() or (lam < 0).any():
        raise ValueError(f"anchor_weights must be {k} finite values >= 0, got "
                         f"{anchor_weights!r}.")
    if free is not None:
        lam = np.where(free, lam, 0.0)
    if not lam.any():
        return None, None
    return lam, np.asarray(anchor_spectra, dtype=dtype)


def _data_floor(X) -> float:
    top = float(X.max()) if X.size else 0.0
    return float(np.finfo(X.dtype).eps) * (top if top > 0 else 1.0)


def fit_kl_numpy(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                 track_error_every: int = 10, anchor_weights=None, anchor_spectra=None,
                 block_bytes: int = BLOCK_BYTES, n_jobs=None, stop=None,
                 **_ignored) -> NMFFit:
    """Fit ``X ~ W H`` under the Poisson loss (KL multiplicative updates) in numpy.

    Parameters
    ----------
    X : ndarray (n, m); W : ndarray (n, k); H : ndarray (k, m)
        Data (>= 0) and initial factors (not modified), all of one float dtype.
    max_iter, tol, track_error_every
        Iteration cap and the sampled stopping rule (module docstring).
    locked : bool ndarray (k,), optional
        Rows of H kept fixed.
    report : callable, optional
        ``report(iteration, max_iter, objective)`` at every sample.
    anchor_weights : array_like (k,), optional
        ``lambda_j >= 0`` of the anchored objective (module docstring); 0 leaves a
        row free.
    anchor_spectra : ndarray (k, m), optional
        The spectra the rows of ``H`` are pulled towards (``H0``).
    block_bytes : int
        Bytes of ``X`` per pixel block.
    n_jobs : int, optional
        Worker threads that share the blocks (``core.parallel``); the result does
        not depend on it.
    stop : SampledErrorStopping, optional
        The stopping rule (default: the sampled relative-improvement rule).

    Returns
    -------
    NMFFit
        ``history`` holds the objective ``D`` (plus the anchor penalty).
    """
    free = _free_rows(locked, H.shape[0])
    lam, H0 = _anchor(anchor_weights, anchor_spectra, free, H.shape[0], X.dtype)
    eps = float(np.finfo(X.dtype).eps)
    slices = chunk_slices(X.shape[0], rows_per_chunk(X.shape[1], X.itemsize,
                                                     budget=block_bytes))
    with Workers(n_jobs, len(slices)) as workers:
        fit = _kl_loop(BlockSource(X, slices, workers=workers), np.array(W, dtype=X.dtype),
                       np.array(H, dtype=X.dtype), free, max_iter=max_iter, tol=tol, eps=eps,
                       floor=_data_floor(X), every=track_error_every, report=report,
                       ops=_Ops("numpy"), lam=lam, H0=H0, stop=stop)
    fit.n_jobs = workers.n
    return fit


def fit_kl_torch(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                 track_error_every: int = 10, device: str = "auto", anchor_weights=None,
                 anchor_spectra=None, block_bytes: int = BLOCK_BYTES, stop=None,
                 budget: int | None = None, **_ignored) -> NMFFit:
    """Fit ``X ~ W H`` under the Poisson loss in torch (``device``: CUDA when available).

    Same parameters as :func:`fit_kl_numpy`, plus the torch ``device``.  On CUDA
    ``X`` is one block kept on the device when it fits its memory budget
    (``budget`` bytes, default ``core.streaming.device_memory_budget``), else it is
    streamed there in blocks at every pass, copies overlapping compute
    (:mod:`~napari_unmix.core.streaming`); on the CPU the blocks are of
    ``block_bytes``.
    """
    torch = get_torch()
    device = resolve_device(device)
    eps = float(np.finfo(X.dtype).eps)
    free = _free_rows(locked, H.shape[0])
    lam, H0 = _anchor(anchor_weights, anchor_spectra, free, H.shape[0], X.dtype)
    n, m = X.shape
    resident, slices = plan_blocks(n, m * X.itemsize, device, budget=budget,
                                   block_bytes=None if str(device).startswith("cuda")
                                   else block_bytes)
    with torch.no_grad():
        fit = _kl_loop(BlockSource(X, slices, device=device, resident=resident),
                       to_torch(np.asarray(W, dtype=X.dtype), device).clone(),
                       to_torch(np.asarray(H, dtype=X.dtype), device).clone(),
                       None if free is None else to_torch(free, device),
                       max_iter=max_iter, tol=tol, eps=eps, floor=_data_floor(X),
                       every=track_error_every, report=report, ops=_Ops("torch", device),
                       lam=None if lam is None else to_torch(lam, device),
                       H0=None if H0 is None else to_torch(H0, device), stop=stop)
        fit.W, fit.H = to_numpy(fit.W), to_numpy(fit.H)
        return fit


# --------------------------------------------------------------------------- fixed-H NNLS


def _kl_nnls_loop(X, H, floor, *, max_iter, tol, every, ops, dtype) -> NNLSFit:
    """Per-pixel EM with per-pixel stopping (module docstring); returns numpy ``W``."""
    n = X.shape[0]
    k = H.shape[0]
    hs = H.sum(1)
    inv = (hs > 0) / (hs + (hs == 0))           # 1 / sum_c H_jc, 0 for an empty spectrum
    Wa = X.sum(1)[:, None] * (inv / k)          # the pixel's total split evenly
    out = np.empty((n, k), dtype=dtype)
    active = np.arange(n)
    Xa, fa = X, floor
    d_prev = kl_divergence(Xa, Wa, H, floor=fa, per_row=True, xp=ops.xp)
    tiny = np.finfo(np.float64).tiny
    it = 0
    for it in range(1, max_iter + 1):
        R = ops.ratio(Xa, Wa @ H, fa)
        Wa *= (R @ H.T) * inv
        if it % every and it != max_iter:
            continue
        d = kl_divergence(Xa, Wa, H, floor=fa, per_row=True, xp=ops.xp)
        done = (d_prev - d) <= tol * np.maximum(d, tiny)
        if done.any():
            ops.put(out, active[done], ops.rows(Wa, done))
            keep = ~done
            active, d = active[keep], d[keep]
            Wa, Xa, fa = ops.rows(Wa, keep), ops.rows(Xa, keep), ops.rows(fa, keep)
        d_prev = d
        if active.size == 0:
            break
    capped = np.zeros(n, dtype=bool)
    if active.size:
        ops.put(out, active, Wa)
        capped[active] = True
    return NNLSFit(W=out, n_iter=it, converged=not capped.any(), capped=capped)


def _pixel_floor(X):
    """``eps * max(x_p)`` per pixel (a column); ``eps`` for an all-zero pixel, whose
    counts are all zero, so that any positive floor gives it the same iterates."""
    top = X.max(axis=1, keepdims=True)
    return (np.finfo(X.dtype).eps * np.where(top > 0, top, 1)).astype(X.dtype)


def fit_nnls_kl_numpy(X, H, *, max_iter: int = 1000, tol: float = 1e-4,
                      check_every: int = CHECK_EVERY, **_ignored) -> NNLSFit:
    """Fixed-H Poisson NNLS for the pixels of ``X`` (one chunk), in numpy.

    ``w_p = argmin_{w >= 0} D(x_p || w H)`` for every pixel (module docstring).

    Parameters
    ----------
    X : ndarray (n, m)
        Non-negative pixel spectra (counts), float32 or float64 (not modified).
    H : ndarray (k, m)
        Non-negative spectra, kept fixed.
    max_iter : int
        Iteration cap per pixel.
    tol : float
        A pixel stops when its divergence improved by at most ``tol`` (relative) over
        the last ``check_every`` iterations.

    Returns
    -------
    NNLSFit
        ``W`` in ``X``'s dtype; ``n_iter`` the iterations of the slowest pixel;
        ``capped`` the pixels still running at ``max_iter``.
    """
    H = np.asarray(H, dtype=X.dtype)
    with one_blas_thread():
        return _kl_nnls_loop(X, H, _pixel_floor(X), max_iter=max_iter, tol=tol,
                             every=check_every, ops=_Ops("numpy"), dtype=X.dtype)


def fit_nnls_kl_torch(X, H, *, max_iter: int = 1000, tol: float = 1e-4, device: str = "auto",
                      check_every: int = CHECK_EVERY, **_ignored) -> NNLSFit:
    """Fixed-H Poisson NNLS for the pixels of ``X`` (one chunk), in torch (CPU or CUDA).

    Same parameters and result as :func:`fit_nnls_kl_numpy`, plus the torch ``device``.
    """
    torch = get_torch()
    device = resolve_device(device)
    with torch.no_grad():
        return _kl_nnls_loop(to_torch(X, device),
                             to_torch(np.asarray(H, dtype=X.dtype), device),
                             to_torch(_pixel_floor(X), device), max_iter=max_iter, tol=tol,
                             every=check_every, ops=_Ops("torch", device), dtype=X.dtype)
