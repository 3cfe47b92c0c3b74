"""Types and helpers shared by the solver modules.

A solver is a pure function: arrays in, a :class:`NMFFit` or :class:`NNLSFit` out.
It never modifies its inputs and never imports napari or Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NMFFit", "NNLSFit", "SampledErrorStopping", "chunk_slices", "kl_divergence",
           "sum_of_squares",
           "one_blas_thread", "residual_norm", "rows_per_chunk"]

#: Default bound on the bytes of one pixel chunk of X (and of its temporaries).
CHUNK_BYTES = 64 * 2**20


@dataclass
class NMFFit:
    """What an NNMF solver returns."""

    W: np.ndarray
    H: np.ndarray
    n_iter: int
    converged: bool
    #: ``(iteration, objective)`` at every sampled iteration, the init included: the
    #: error ``||X - WH||_F`` (Frobenius loss; with an anchor ``sqrt(error^2 +
    #: penalty)``), or the divergence ``D(X || WH)`` (+ penalty) for the Poisson loss
    history: list = field(default_factory=list)
    #: the worker threads that shared the pixel blocks (``core.parallel``)
    n_jobs: int = 1
    #: HALS: what the extrapolation did (``Extrapolation.record``); None otherwise
    extrapolation: dict | None = None


@dataclass
class NNLSFit:
    """What a fixed-H NNLS solver returns for one chunk of pixels."""

    W: np.ndarray
    n_iter: int
    converged: bool
    #: boolean (n_pixels,) mask of pixels whose solve hit the iteration cap
    capped: np.ndarray | None = None
    #: ``(sum ||x_p - w_p H||^2, sum ||x_p||^2)`` over the pixels, in float64, for the
    #: returned ``W``, when the solver was asked for them (``fit_sums=True``) and could
    #: form them as it went (None otherwise: the caller computes them itself)
    fit_sums: tuple[float, float] | None = None


class SampledErrorStopping:
    """The sampled relative-improvement stopping rule of the iterative NNMF solvers.

    The reconstruction error ``E = ||X - WH||_F`` is evaluated at iteration 0 (the
    initial factors) and then every ``every`` iterations only.  The run stops at the
    first sample ``k`` with ``(E[k-1] - E[k]) / max(E[k-1], eps) <= tol``, i.e. the
    comparison is with the previous *sample*, ``every`` iterations back, not with the
    previous iteration.

    With ``report`` (a solver's progress callback ``report(iteration, max_iter,
    error)``), :meth:`record` also passes every sample on to it.
    """

    def __init__(self, tol: float, every: int, eps: float, *, report=None,
                 max_iter: int | None = None):
        if every < 1:
            raise ValueError(f"track_error_every must be >= 1, got {every}.")
        self.tol = float(tol)
        self.every = int(every)
        self.eps = float(eps)
        self.report = report
        self.max_iter = max_iter
        self.history: list[tuple[int, float]] = []

    def is_sample(self, iteration: int) -> bool:
        return iteration % self.every == 0

    def update(self, iteration: int, error: float) -> bool:
        """Record a sample; return True when the rule says stop."""
        error = float(error)
        previous = self.history[-1][1] if self.history else None
        self.history.append((int(iteration), error))
        if previous is None:
            return False
        return (previous - error) / max(previous, self.eps) <= self.tol

    def record(self, iteration: int, error: float) -> bool:
        """:meth:`update`, then report the sample; return True when the rule says stop."""
        done = self.update(iteration, error)
        if self.report is not None:
            self.report(iteration, self.max_iter, error)
        return done


def rows_per_chunk(n_cols: int, itemsize: int, *, budget: int = CHUNK_BYTES) -> int:
    """Rows of an ``(n, n_cols)`` array that fit in ``budget`` bytes (at least 1)."""
    return max(1, budget // max(1, n_cols * itemsize))


def chunk_slices(n: int, size: int):
    """``slice`` objects covering ``range(n)`` in steps of ``size``."""
    size = max(1, int(size))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


#: Bytes of one chunk of the residual ``X - W H`` (one temporary of this size).
RESIDUAL_CHUNK_BYTES = 8 * 2**20


#: A float64 sum of squares outside this range may have under- or overflowed.
_SAFE_SQUARES = (1e-280, 1e280)
#: Sums of squares computed in a dtype that can be trusted: beyond them some squares
#: under- or overflowed (by the dtype's name, numpy's and torch's alike).
_SQUARES_IN = {"float32": (1e-30, 1e36), "float64": (1e-280, 1e280),
               "float16": (1e-4, 6e4), "bfloat16": (1e-30, 1e36)}


def sum_of_squares(A, *, xp: str = "numpy") -> float:
    """``sum(A**2)`` as a float64 number, without under- or overflow.

    The squares are summed in float64; when the sum is not a normal number (values
    below about 1e-140 or above 1e140 in float64, or zeros from an underflow), the
    array is divided by its largest magnitude first and the sum scaled back.

    Parameters
    ----------
    A : numpy array or torch tensor (``xp``)
    xp : {"numpy", "torch"}

    Returns
    -------
    float
    """
    if xp == "torch":
        total = float(A.double().square().sum())
    else:
        A = np.asarray(A)
        if A.ndim == 2 and A.dtype.name in _SQUARES_IN:
            # squares summed per row in the data's dtype (one row: tens to hundreds
            # of terms), the rows in float64: five times faster than casting every
            # element; trusted only inside the dtype's safe range
            total = float(np.einsum("ij,ij->i", A, A).sum(dtype=np.float64))
            lo, hi = _SQUARES_IN[A.dtype.name]
            if lo < total < hi:
                return total
        flat = A.reshape(-1)
        total = float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    if _SAFE_SQUARES[0] < total < _SAFE_SQUARES[1]:
        return total
    top = float(A.abs().max()) if xp == "torch" else float(np.max(np.abs(A), initial=0.0))
    if top == 0.0 or not np.isfinite(top):
        return 0.0 if top == 0.0 else float("inf")
    if xp == "torch":
        return float((A.double() / top).square().sum()) * top * top
    B = np.asarray(A, dtype=np.float64).reshape(-1) / top
    return float(np.einsum("i,i->", B, B)) * top * top


def residual_norm(X, W, H, *, chunk_rows: int | None = None, xp: str = "numpy") -> float:
    """``||X - W H||_F`` computed in row chunks, accumulated in float64.

    Works on numpy arrays (``xp="numpy"``) or torch tensors (``xp="torch"``) on any
    device, without building the full residual matrix: one chunk of about 8 MB is
    the only temporary.  Squares are summed per row in the data's dtype (a few
    dozen to a few hundred terms) and the row sums in float64; a chunk whose squares
    under- or overflow the data's dtype (float32 residuals below about 1e-19 or
    above about 1e19) is summed again by :func:`sum_of_squares`.
    """
    n, m = X.shape
    if chunk_rows is None:
        itemsize = X.element_size() if xp == "torch" else X.itemsize
        chunk_rows = rows_per_chunk(m, itemsize, budget=RESIDUAL_CHUNK_BYTES)
    total = 0.0
    for sl in chunk_slices(n, chunk_rows):
        R = W[sl] @ H
        if xp == "torch":
            R.sub_(X[sl])
            part = float(R.square().sum(dim=1).double().sum())
        else:
            np.subtract(R, X[sl], out=R)
            part = float(np.einsum("ij,ij->i", R, R).sum(dtype=np.float64))
        lo, hi = _SQUARES_IN[str(R.dtype).rsplit(".", 1)[-1]]
        if not lo < part < hi and (part != 0.0 or _any(R, xp)):
            part = sum_of_squares(R, xp=xp)  # the squares under- or overflowed
        total += part
    return float(np.sqrt(total))


def _any(A, xp) -> bool:
    return bool(A.any()) if xp == "torch" else bool(np.any(A))


def kl_divergence(X, W, H, *, floor, per_row: bool = False, chunk_rows: int | None = None,
                  xp: str = "numpy"):
    """Generalised Kullback-Leibler divergence ``D(X || W H)``, in row chunks, in float64.

    ``D = sum X log(X / Y) - X + Y`` with ``Y = max(W H, floor)``: an entry with
    ``X = 0`` contributes ``Y``, and ``W H`` below ``floor`` counts as ``floor`` (the
    floor the Poisson solvers divide by, so that the value they watch is finite; a
    channel that no spectrum covers then adds ``x log(x / floor)``).  ``2 D`` is the
    Poisson deviance.

    Parameters
    ----------
    X, W, H : numpy arrays or torch tensors (``xp``), (n, m), (n, k), (k, m)
    floor : float or array (n, 1)
        Lower bound of ``W H``: one value, or one per row.
    per_row : bool, default False
        Return the divergence of every row, a float64 numpy array (n,), instead of
        the total.
    chunk_rows : int, optional
        Rows per chunk; by default about 8 MB of float64 per chunk.
    xp : {"numpy", "torch"}

    Returns
    -------
    float or ndarray (n,)
    """
    n, m = X.shape
    if chunk_rows is None:
        chunk_rows = rows_per_chunk(m, 8, budget=RESIDUAL_CHUNK_BYTES)
    rows = np.empty(n) if per_row else None
    total = 0.0
    for sl in chunk_slices(n, chunk_rows):
        fl = floor[sl] if getattr(floor, "ndim", 0) == 2 else floor
        if xp == "torch":
            import torch

            Xc = X[sl].double()
            Y = torch.clamp(W[sl].double() @ H.double(), min=0.0)
            Y = torch.maximum(Y, torch.as_tensor(fl, dtype=Y.dtype, device=Y.device))
            # X log(X / Y) with 0 log 0 = 0: xlogy(X, X) - xlogy(X, Y)
            d = (torch.xlogy(Xc, Xc) - torch.xlogy(Xc, Y) - Xc + Y).sum(dim=1)
            d = d.cpu().numpy()
        else:
            Xc = np.asarray(X[sl], dtype=np.float64)
            Y = np.asarray(W[sl], dtype=np.float64) @ np.asarray(H, dtype=np.float64)
            np.maximum(Y, fl, out=Y)
            pos = Xc > 0
            logs = np.zeros_like(Xc)
            np.log(Xc, out=logs, where=pos)
            logs -= np.log(Y)
            d = np.einsum("ij,ij->i", Xc, logs) - Xc.sum(axis=1) + Y.sum(axis=1)
        if per_row:
            rows[sl] = d
        else:
            total += float(d.sum())
    return rows if per_row else total


def one_blas_thread():
    """Context manager holding BLAS to one thread (``threadpoolctl``).

    The numpy solvers multiply a tall ``X`` by a thin factor (k columns): such
    products gain little from BLAS threads, and a multi-threaded OpenBLAS that
    competes with other threads (the napari GUI, a busy machine) made them 10-25x
    slower here (``benchmarks/nmf_speed.py``).  The cores are used by worker threads
    over pixel blocks instead (``core.parallel``, whose re-entrant
    :func:`~napari_unmix.core.parallel.single_threaded` this is: nested inside a
    pool it costs nothing).
    """
    from ..parallel import single_threaded

    return single_threaded()


ReportFn = Callable[..., None]
