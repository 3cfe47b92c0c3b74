"""Maps of a lazy result: as a dask array, or written straight to a store.

``W`` of a dask input is ``(n_pixels, k)`` with pixel rows in C order of the spatial
axes; :func:`lazy_maps` turns it into the ``(k, *spatial_shape)`` images
``matrix_to_maps`` gives, lazily.  :func:`store_maps` writes them to anything
``dask.array.store`` takes (a zarr array, an ``h5py`` dataset, a numpy memmap, a
preallocated numpy array: an object with ``__setitem__`` and the maps' shape), one
block at a time, on the active ``dask.distributed`` Client where there is one.  The
OME-Zarr writer of ``napari_unmix.io`` puts its metadata around it.
"""

from __future__ import annotations

import numpy as np

from .scheduler import is_dask_array

__all__ = ["lazy_maps", "rows_to_c_order", "rows_to_maps", "store_maps"]


def _rows_to_tile(rows, tile_shape):
    rows = np.asarray(rows)
    return np.ascontiguousarray(rows.T).reshape((rows.shape[1], *tile_shape))


def rows_to_maps(A, layout):
    """Per-pixel rows ``A (n_pixels, k)`` in the order of ``layout`` (a
    :class:`~napari_unmix.core.pixel_layout.PixelLayout`) as lazy images
    ``(k, *spatial_shape)``, chunked like the stack's tiles (one task per tile)."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    A = A if is_dask_array(A) else da.from_array(np.asarray(A))
    if A.ndim != 2 or A.shape[0] != layout.n_pixels:
        raise ValueError(f"An array of shape {A.shape} does not hold one row per pixel of "
                         f"the spatial shape {layout.spatial_shape}.")
    if layout.is_c_order:
        return lazy_maps(A, layout.spatial_shape)
    slices = list(layout.block_slices())
    rows = tuple(int(np.prod([s.stop - s.start for s in sl])) for _, sl in slices)
    if A.chunks[0] != rows or len(A.chunks[1]) != 1:
        A = A.rechunk((rows, -1))
    k = int(A.shape[1])
    name = f"rows-to-maps-{tokenize(A, layout)}"
    grid = tuple(len(c) for c in layout.chunks)
    dsk = {}
    for i, idx in enumerate(np.ndindex(*grid)):
        tile = tuple(s.stop - s.start for s in slices[i][1])
        dsk[(name, 0, *idx)] = (_rows_to_tile, (A.name, i, 0), tile)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[A])
    return da.Array(graph, name, chunks=((k,), *layout.chunks), dtype=A.dtype)


def rows_to_c_order(A, layout):
    """Per-pixel values in the order of ``layout`` (``(n_pixels,)`` or ``(n_pixels, k)``,
    dask or numpy) in C order of the spatial axes, lazily: what ``stack_to_matrix``'s
    rows would have given."""
    if layout is None or layout.is_c_order:
        return A
    flat = A.ndim == 1
    maps = rows_to_maps(A[:, None] if flat else A, layout)
    C = maps.reshape((maps.shape[0], layout.n_pixels)).T
    return C[:, 0] if flat else C


def lazy_maps(W, spatial_shape):
    """``W (n_pixels, k)`` (dask or numpy) as lazy images ``(k, *spatial_shape)``."""
    import dask.array as da

    W = W if is_dask_array(W) else da.from_array(np.asarray(W))
    spatial_shape = tuple(int(s) for s in spatial_shape)
    n = int(np.prod(spatial_shape))
    if W.ndim != 2 or W.shape[0] != n:
        raise ValueError(f"W has shape {W.shape} but spatial shape {spatial_shape} has "
                         f"{n} pixels.")
    return W.T.reshape((W.shape[1], *spatial_shape))


def store_maps(result, target, spatial_shape=None, *, chunks=None, compute=True, **kwargs):
    """Write the maps of ``result`` (``W`` as ``(k, *spatial_shape)``) to ``target``.

    Parameters
    ----------
    result : UnmixResult or array (n_pixels, k)
        A result (its ``W``, lazy or not) or ``W`` itself.
    target : array-like store
        What ``dask.array.store`` accepts, of shape ``(k, *spatial_shape)``: a zarr
        array, an h5py dataset, a memmap ...  (For a path or a zarr group, call
        :func:`lazy_maps` and ``dask.array.to_zarr`` on it.)
    spatial_shape : tuple of int, optional
        Default ``result.params["spatial_shape"]``, where a run recorded it.
    chunks : tuple, optional
        Rechunk the maps to these chunks before writing (a zarr array's own chunks
        avoid two writers sharing one chunk: pass ``target.chunks``).
    compute : bool, default True
        False returns the delayed store (``dask.array.store(..., compute=False)``).
    **kwargs
        Passed on to ``dask.array.store`` (``lock``, ``return_stored`` ...).

    Returns
    -------
    What ``dask.array.store`` returns (None when computed).
    """
    import dask.array as da

    W = getattr(result, "W", result)
    if spatial_shape is None:
        spatial_shape = getattr(result, "params", {}).get("spatial_shape")
        if spatial_shape is None:
            raise ValueError("store_maps needs spatial_shape (the stack's spatial axes).")
    maps = lazy_maps(W, spatial_shape)
    if tuple(getattr(target, "shape", maps.shape)) != maps.shape:
        raise ValueError(f"target has shape {tuple(target.shape)}; the maps are "
                         f"{maps.shape} (k, *spatial_shape).")
    if chunks is None:
        chunks = getattr(target, "chunks", None)
        chunks = tuple(chunks) if isinstance(chunks, tuple) and len(chunks) == maps.ndim \
            else None
    if chunks is not None:
        maps = maps.rechunk(chunks)
    return da.store(maps, target, compute=compute, **kwargs)
