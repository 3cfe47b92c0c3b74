"""A dask stack as a lazy pixel matrix, checked once block by block.

:func:`pixel_matrix` is ``stack_to_matrix`` for a dask stack: the spectral axis is
moved last and, where it is split over several chunks, rechunked to one, and the
spatial axes are flattened, so that every block of ``X`` is a set of whole pixel
spectra ``(rows, n_channels)``.  Merging the spectral chunks of a stack stored one
channel per chunk (a TIFF read page by page, a zarr store of whole-plane chunks)
would make one block of every channel of a whole plane, the whole stack for a single
plane; the spatial chunks are then cut so that no block passes dask's
``array.chunk-size`` (:func:`whole_spectra`).  Nothing is computed.  The dtype rule
is the in-memory one (float32 and float64 kept, integers of up to 16 bits to
float32, wider ones to float64).

:func:`check_blocks` is ``check_matrix`` for it: one pass over the blocks counts
NaN, Inf and negative values and takes the minimum and maximum
(:class:`BlockStats`); the errors are those of the in-memory checks, word for word,
and the negative-value policy is applied lazily with the same semantics
(``"clip"``: ``max(x, 0)``; ``"offset"``: ``x - min``, the global minimum found by
that pass, floored at 0).  The result is an ordinary
:class:`~napari_unmix.core.data.CheckedMatrix` whose ``X`` is the dask matrix, so a
checked dask matrix goes through ``nnls`` / ``nmf`` / ``pca`` as a checked numpy one
does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import NONFINITE_REMEDY, float_dtype
from ..data import CheckedMatrix, check_negative_policy, normalize_axis
from .scheduler import compute

__all__ = ["BlockStats", "block_limit", "block_pixel_matrix", "block_stats", "check_blocks",
           "require_known_chunks",
           "check_finite_counts", "fitted_max", "checked_input", "float_dtype", "pixel_matrix",
           "prepare_dask_stack", "row_blocks", "whole_spectra"]

_NEGATIVE_REMEDY = ("Background-subtracted CRS data often dips below zero: pass "
                    "negative='clip' to set negative values to 0, or negative='offset' to "
                    "shift all data up by the minimum. The choice is recorded in the "
                    "result's params.")


def _spectra_last(stack, spectral_axis, dtype=None):
    """The stack with its spectral axis last, in one chunk along it (:func:`whole_spectra`;
    ``dtype`` the dtype the matrix is to have)."""
    import dask.array as da

    if stack.ndim < 2:
        raise ValueError(
            f"A spectral stack needs a spectral axis and at least one spatial axis; got an "
            f"array with shape {stack.shape}. A single spectrum is not an image: pass it "
            "as a (1, n_channels) matrix instead.")
    if any(s == 0 for s in stack.shape):
        raise ValueError(f"The stack is empty (shape {stack.shape}).")
    axis = normalize_axis(spectral_axis, stack.ndim)
    return whole_spectra(da.moveaxis(stack, axis, -1),
                         float_dtype(stack.dtype, name="stack", force=dtype).itemsize)


def block_limit() -> int:
    """Bytes a block of whole spectra may take when its spectral axis is merged: dask's
    ``array.chunk-size`` setting (128 MiB unless configured)."""
    import dask
    from dask.utils import parse_bytes

    return int(parse_bytes(dask.config.get("array.chunk-size")))


def _split(chunks, size):
    """Each chunk of ``chunks`` cut into near-equal pieces of at most ``size``."""
    out = []
    for c in chunks:
        n = -(-c // size)
        out.extend([c // n + 1] * (c % n) + [c // n] * (n - c % n))
    return tuple(out)


def whole_spectra(arr, itemsize: int):
    """``arr`` (spectral axis last) in one chunk along its last axis, its blocks bounded.

    Where the spectral axis is split over several chunks (a TIFF read one page per
    channel, a zarr store chunked one channel per chunk), merging it makes blocks of
    every channel of the stack's spatial chunks, which for whole-plane chunks is the
    whole stack in one task.  The spatial chunks are then cut, leading axis first and
    inside the stack's own chunk boundaries, until a block of ``itemsize``-byte values
    is at most :func:`block_limit` bytes.  Chunks that already span the spectral axis
    are kept as the stack has them.
    """
    if len(arr.chunks[-1]) == 1:
        return arr
    m = int(arr.shape[-1])
    room = max(1, block_limit() // max(1, m * int(itemsize)))   # pixels per block
    chunks = list(arr.chunks[:-1])
    for a in range(len(chunks)):
        rest = int(np.prod([max(c) for c in chunks[a + 1:]], dtype=np.int64))
        if max(chunks[a]) * rest <= room:
            break
        chunks[a] = _split(chunks[a], max(1, room // rest))
    return arr.rechunk((*chunks, (m,)))


def pixel_matrix(stack, spectral_axis: int = 0, *, dtype=None):
    """A dask stack as a lazy ``X (n_pixels, n_channels)`` and its spatial shape.

    Every block of ``X`` spans the whole spectral axis; only that axis is rechunked
    (when it is split), and the pixel rows are in C order of the spatial axes, as
    ``stack_to_matrix`` gives them.  When the chunks split a trailing spatial axis,
    dask gathers whole image rows into each block (several tiles at once):
    :func:`block_pixel_matrix` keeps one tile per block instead.
    """
    moved = _spectra_last(stack, spectral_axis, dtype)
    spatial_shape = tuple(int(s) for s in moved.shape[:-1])
    m = int(moved.shape[-1])
    X = moved.reshape(-1, m)
    target = float_dtype(stack.dtype, name="stack", force=dtype)
    if X.dtype != target:
        X = X.astype(target)
    return X, spatial_shape


def _tile_rows(block, dtype):
    """One tile ``(*tile_shape, C)`` as its pixel rows ``(n, C)`` in C order: a view of
    the tile as read (spectral axis first) where it is contiguous, no copy."""
    b = np.moveaxis(np.asarray(block), -1, 0)
    rows = b.reshape(b.shape[0], -1).T
    return rows if rows.dtype == dtype else rows.astype(dtype)


def block_pixel_matrix(stack, spectral_axis: int = 0, *, dtype=None):
    """A dask stack as a lazy pixel matrix with one tile of the stack per row block.

    Returns ``(X, layout)``: the rows are the pixels of the stack's spatial blocks,
    block after block (C order of the block grid, C order inside each block), as
    :class:`~napari_unmix.core.pixel_layout.PixelLayout` ``layout`` records.  Each
    block of ``X`` is one tile, read once: no block is bigger than the stack's own
    chunks.  Where only the first spatial axis is split the order is C order and
    ``X`` is :func:`pixel_matrix`'s.  Turn results back into images with
    :func:`~.store.rows_to_c_order` (``run_analysis`` does).
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    from ..pixel_layout import PixelLayout

    moved = _spectra_last(stack, spectral_axis, dtype)
    layout = PixelLayout(moved.shape[:-1], moved.chunks[:-1])
    if layout.is_c_order:
        X, _ = pixel_matrix(stack, spectral_axis, dtype=dtype)
        return X, layout
    m = int(moved.shape[-1])
    target = float_dtype(stack.dtype, name="stack", force=dtype)
    name = f"tile-rows-{tokenize(moved, target)}"
    grid = moved.numblocks[:-1]
    dsk, rows = {}, []
    for i, idx in enumerate(np.ndindex(*grid)):
        dsk[(name, i, 0)] = (_tile_rows, (moved.name, *idx, 0), target)
        rows.append(int(np.prod([moved.chunks[a][j] for a, j in enumerate(idx)])))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[moved])
    return da.Array(graph, name, chunks=(tuple(rows), (m,)), dtype=target), layout


def row_blocks(X):
    """The row slices of the blocks of a dask matrix ``X`` (one per row chunk)."""
    bounds = np.cumsum((0, *X.chunks[0]))
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _stats_block(x):
    x = np.asarray(x)
    if x.size == 0:
        return np.array([[0, 0, 0, np.inf, -np.inf, 0.0]])
    finite = np.isfinite(x)
    n_nan = int(np.isnan(x).sum())
    n_inf = int(x.size - finite.sum() - n_nan)
    vals = x[finite] if n_nan or n_inf else x
    lo = float(vals.min()) if vals.size else np.inf
    hi = float(vals.max()) if vals.size else -np.inf
    n_neg = int((vals < 0).sum()) if lo < 0 else 0
    top = float(np.abs(vals).max()) if vals.size else 0.0
    return np.array([[n_nan, n_inf, n_neg, lo, hi, top]], dtype=np.float64)


@dataclass(frozen=True)
class BlockStats:
    """What one pass over the blocks found (over the finite values)."""

    n_nan: int
    n_inf: int
    n_negative: int
    min: float
    max: float
    max_abs: float


def block_stats(X) -> BlockStats:
    """Counts of NaN / Inf / negative values, min, max and max |x| of a dask matrix."""
    (parts,) = compute(X.map_blocks(_stats_block, chunks=((1,) * X.numblocks[0], (6,)),
                                    dtype=np.float64))
    return BlockStats(n_nan=int(parts[:, 0].sum()), n_inf=int(parts[:, 1].sum()),
                      n_negative=int(parts[:, 2].sum()), min=float(parts[:, 3].min()),
                      max=float(parts[:, 4].max()), max_abs=float(parts[:, 5].max()))


def _clip(x):
    return np.maximum(x, 0, dtype=x.dtype)


def _offset(x, low):
    out = x - x.dtype.type(low)
    np.maximum(out, 0, out=out)  # exact zero at the minimum despite rounding
    return out


def require_known_chunks(X, name: str = "X"):
    """Refuse a dask array whose chunk sizes are unknown (NaN, e.g. after boolean
    indexing): its pixels cannot be counted or split without computing them."""
    X = X.X if isinstance(X, CheckedMatrix) else X
    if any(np.isnan(c) for axis in X.chunks for c in axis):
        raise ValueError(
            f"{name} is a dask array whose chunk sizes are unknown (shape {X.shape}; e.g. "
            f"after boolean indexing). Call {name}.compute_chunk_sizes() (or "
            f"{name}.to_dask_array(lengths=True) for a dask dataframe) first.")
    return X


def check_blocks(X, *, negative: str | None = None, name: str = "X", min_samples: int = 1,
                 ) -> tuple[CheckedMatrix, BlockStats]:
    """Validate a dask matrix in one pass and apply the negative-value policy lazily.

    Returns the :class:`~napari_unmix.core.data.CheckedMatrix` (its ``X`` a dask
    array) and the :class:`BlockStats` of the data before the policy.
    """
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D matrix (n_pixels, n_channels), got shape {X.shape}. "
            "Turn an image stack into one with napari_unmix.core.stack_to_matrix.")
    X = X.astype(float_dtype(X.dtype, name=name)) \
        if float_dtype(X.dtype, name=name) != X.dtype else X
    n, m = X.shape
    if n < min_samples or m < 1:
        raise ValueError(f"{name} has shape {X.shape} but needs at least {min_samples} "
                         "pixel(s) and 1 channel(s).")
    X = whole_spectra(X, X.dtype.itemsize)
    stats = block_stats(X)
    check_finite_counts(stats.n_nan, stats.n_inf, name=name)
    if negative is None:
        return CheckedMatrix(X, None), stats
    check_negative_policy(negative)
    info = {"policy": negative, "n_negative": stats.n_negative, "min_value": stats.min,
            "offset": 0.0}
    if stats.n_negative == 0:
        return CheckedMatrix(X, info), stats
    if negative == "raise":
        raise ValueError(f"{name} holds {stats.n_negative} negative value(s) (minimum "
                         f"{stats.min:.6g}); this mode needs non-negative input. "
                         f"{_NEGATIVE_REMEDY}")
    if negative == "clip":
        return CheckedMatrix(X.map_blocks(_clip, dtype=X.dtype), info), stats
    info["offset"] = -stats.min
    return CheckedMatrix(X.map_blocks(_offset, stats.min, dtype=X.dtype), info), stats


def check_finite_counts(n_nan: int, n_inf: int, *, name: str = "X") -> None:
    """The in-memory error for data holding ``n_nan`` NaN and ``n_inf`` Inf values."""
    if n_nan or n_inf:
        raise ValueError(f"{name} contains {n_nan} NaN and {n_inf} infinite value(s). "
                         f"{NONFINITE_REMEDY}")


def fitted_max(stats: BlockStats, negative: dict | None, dtype) -> float:
    """The maximum of the data after its negative-value policy (exact: rounding is
    monotonic, so the largest shifted value is the shifted maximum, rounded)."""
    if negative is None or not negative.get("n_negative"):
        return stats.max
    if negative["policy"] == "clip":
        return max(stats.max, 0.0)
    t = np.dtype(dtype).type
    return float(max(t(stats.max) - t(stats.min), t(0)))


def prepare_dask_stack(stack, *, spectral_axis: int = 0, spectral_values=None,
                       negative: str | None = "raise", name: str = "stack"):
    """``core.data.prepare_stack`` for a dask stack: the lazy pixel matrix, checked in one
    pass, as the :class:`~napari_unmix.core.data.PreparedData` the modes take."""
    from ..data import prepared_data

    X, layout = block_pixel_matrix(stack, spectral_axis)
    raw, _ = check_blocks(X, negative=negative, name=name)
    data = prepared_data(raw, layout.spatial_shape, spectral_values, spectral_axis)
    if not layout.is_c_order:
        data.layout = layout
    return data


def checked_input(X, negative):
    """``(CheckedMatrix, BlockStats or None)`` for a solver's dask input: a matrix
    already checked (its negative policy applied) as it is, else one checking pass
    with the policy ``negative``."""
    if isinstance(X, CheckedMatrix) and X.negative is not None:
        return X, None
    return check_blocks(X.X if isinstance(X, CheckedMatrix) else X,
                        negative=check_negative_policy(negative))
