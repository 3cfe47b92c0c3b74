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

__all__ = ["BLOCK_BYTES", "blocks_of", "fit_norms", "ordered_sum", "pooled_kl_divergence",
           "pooled_residual_norm"]

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


def fit_norms(X, W, H, *, n_jobs=None, ok=None):
    """``(||X - W H||_F, ||X||_F)`` over the rows ``ok`` (a mask; default all), on a
    pool of ``n_jobs`` workers: each block's squares by ``residual_norm`` and
    ``sum_of_squares`` (safe from under- and overflow), summed in block order."""
    from ..parallel import Workers

    blocks = blocks_of(X)

    def part(sl):
        Xb, Wb = X[sl], W[sl]
        if ok is not None and not ok[sl].all():
            Xb, Wb = Xb[ok[sl]], Wb[ok[sl]]
        if Xb.shape[0] == 0:
            return 0.0, 0.0
        return residual_norm(Xb, Wb, H) ** 2, sum_of_squares(Xb)

    with Workers(n_jobs, len(blocks)) as workers:
        parts = workers.map(part, blocks)
    return (float(np.sqrt(ordered_sum(p[0] for p in parts) or 0.0)),
            float(np.sqrt(ordered_sum(p[1] for p in parts) or 0.0)))
