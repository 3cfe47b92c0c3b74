"""Sums over pixel blocks on the worker pool, taken in block order.

The numpy solvers evaluate their objective, and the Gram products of their
half-steps, block by block on a :class:`~napari_unmix.core.parallel.Workers` pool.
Each block's share is computed by the same calls whatever the number of workers,
and the shares are added one after another in block order, so the totals are
bit-identical for every ``n_jobs``.
"""

from __future__ import annotations

import numpy as np

from ._common import chunk_slices, kl_divergence, residual_norm, rows_per_chunk, sum_of_squares

__all__ = ["BLOCK_BYTES", "blocks_of", "fit_norms", "gram_sum", "norms_from_sums",
           "ordered_pair_sums", "ordered_sum", "solved_rows",
           "trusted_sums",
           "pooled_kl_divergence", "pooled_residual_norm"]

#: Bytes of ``X`` per block of a pooled evaluation.
BLOCK_BYTES = 4 * 2**20


def blocks_of(X, block_bytes: int = BLOCK_BYTES):
    """The pixel blocks of ``X`` (n, m): slices of about ``block_bytes`` of it."""
    return chunk_slices(X.shape[0], rows_per_chunk(X.shape[1], X.itemsize, budget=block_bytes))


def ordered_sum(shares):
    """``shares[0] + shares[1] + ...`` in that order (numbers or arrays)."""
    total = None
    for s in shares:
        total = s if total is None else total + s
    return total


def ordered_pair_sums(pairs):
    """:func:`ordered_sum` of the first and of the second items of ``pairs``, or None
    when there are no pairs or one of them is None (a share that is missing)."""
    pairs = list(pairs)
    if not pairs or any(p is None for p in pairs):
        return None
    return ordered_sum(p[0] for p in pairs), ordered_sum(p[1] for p in pairs)


def gram_sum(X, blocks, workers=None) -> np.ndarray:
    """``X^T X`` in float64, each block of rows (``blocks``: slices) converted and
    multiplied on ``workers`` (or in turn when None), the blocks' products summed in
    block order: the same matrix for every number of workers."""
    def gram(sl):
        block = np.asarray(X[sl], dtype=np.float64)
        return block.T @ block

    parts = [gram(b) for b in blocks] if workers is None else workers.map(gram, blocks)
    G = np.zeros((X.shape[1], X.shape[1]))
    for part in parts:                      # in block order
        G += part
    return G


def pooled_residual_norm(X, W, H, workers, blocks=None) -> float:
    """``||X - W H||_F`` from the blocks' squared errors (each by ``residual_norm``)."""
    blocks = blocks_of(X) if blocks is None else blocks
    parts = workers.map(lambda sl: residual_norm(X[sl], W[sl], H) ** 2, blocks)
    return float(np.sqrt(ordered_sum(parts) or 0.0))


def pooled_kl_divergence(X, W, H, workers, *, floor, blocks=None) -> float:
    """``D(X || W H)`` from the blocks' divergences (each by ``kl_divergence``)."""
    blocks = blocks_of(X) if blocks is None else blocks
    parts = workers.map(lambda sl: kl_divergence(X[sl], W[sl], H, floor=floor), blocks)
    return float(ordered_sum(parts) or 0.0)


#: Norms outside ``[2**-400, 2**400]`` are computed again on the data divided by a
#: power of two (their squares would under- or overflow float64 in the sums).
_NORM_RANGE = (2.0**-400, 2.0**400)


def fit_norms(X, W, H, *, n_jobs=None, ok=None):
    """``(||X - W H||_F, ||X||_F)`` over the rows ``ok`` (a mask; default all), on a
    pool of ``n_jobs`` workers: each block's squares by ``residual_norm`` and
    ``sum_of_squares``, summed in block order.  Data whose squares leave float64's
    range (``|X|`` beyond about 1e150, or below 1e-150) are summed again divided by
    the power of two of their largest magnitude (``X / c`` and ``W / c``: exact), and
    the norms scaled back."""
    from ..data import data_scale
    from ..parallel import Workers

    blocks = blocks_of(X)

    def norms(c):
        f = None if c == 1.0 else X.dtype.type(c)

        def part(sl):
            Xb, Wb = X[sl], W[sl]
            if ok is not None and not ok[sl].all():
                Xb, Wb = Xb[ok[sl]], Wb[ok[sl]]
            if Xb.shape[0] == 0:
                return 0.0, 0.0
            if f is not None:
                Xb, Wb = Xb / f, Wb / f
            return residual_norm(Xb, Wb, H) ** 2, sum_of_squares(Xb)

        with Workers(n_jobs, len(blocks)) as workers:
            sq_err, sq_x = ordered_pair_sums(workers.map(part, blocks)) or (0.0, 0.0)
        return c * float(np.sqrt(sq_err)), c * float(np.sqrt(sq_x))

    err, x_norm = norms(1.0)
    lo, hi = _NORM_RANGE
    if not (lo < x_norm < hi and err < hi):
        c = data_scale(X)
        if c != 1.0:
            err, x_norm = norms(c)
    return err, x_norm


def solved_rows(W):
    """``(ok, n_ok)``: the mask of the rows of ``W`` without NaN (a capped pixel of an
    exact solver) and their number; ``ok`` is None when every row is solved, found by
    one reduction instead of a row-wise mask of the whole ``W``."""
    if not np.isnan(W).any():
        return None, W.shape[0]
    ok = ~np.isnan(W).any(axis=1)
    return ok, int(ok.sum())


def trusted_sums(sums):
    """A solver's float64 squared sums ``(sum ||x - w H||^2, sum ||x||^2)``
    (``fit_sums``), or None when there are none or they left the range in which
    squares need no rescaling (outside the square of :data:`_NORM_RANGE`; the
    caller then computes the norms from the data, as :func:`fit_norms` does)."""
    if sums is None:
        return None
    sq_err, sq_x = sums
    lo, hi = _NORM_RANGE
    return sums if lo * lo < sq_x < hi * hi and sq_err < hi * hi else None


def norms_from_sums(sums):
    """``(||X - W H||_F, ||X||_F)`` from :func:`trusted_sums` of ``sums``, or None."""
    sums = trusted_sums(sums)
    return None if sums is None else (float(np.sqrt(sums[0])), float(np.sqrt(sums[1])))
