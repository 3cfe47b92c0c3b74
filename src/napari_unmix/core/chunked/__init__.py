"""Dask arrays as input: the modes over pixel blocks that span the spectral axis.

A dask stack or matrix given to ``core.nnls``, ``core.nmf``, ``core.pca``,
``core.run_analysis`` or ``core.unmix_series`` is routed here; the result is an
ordinary :class:`~napari_unmix.core.result.UnmixResult` whose ``W`` is a dask array
(``result.is_lazy``; ``result.compute()`` or ``np.asarray(result.W)`` brings it into
memory, :func:`store_maps` writes the maps to a store).  dask (and distributed) are
imported only when an input is a dask array.

Modules
    ``scheduler``  what is a dask array; persist with progress and cancel; the active
                   ``dask.distributed`` Client (used when there is one, never created)
    ``blocks``     a dask stack as a lazy pixel matrix (C order, or one tile per row
                   block); the one validation pass and the negative-value policy,
                   block by block
    ``nnls``       fixed-H NNLS by ``map_blocks`` over the in-memory solver
    ``hals``       one-pass-per-iteration HALS NNMF (W in blocks, H on the client); the
                   per-block shares of ``W^T X``, ``W^T W`` (seed balance, anchors)
    ``nmf``        ``core.nmf`` for a dask matrix: seeds, init from a pooled sample,
                   stopping rules, summary
    ``pca``        PCA from a covariance accumulated over blocks, lazy scores
    ``store``      the maps of a lazy result, lazily or written to a store
"""

from .scheduler import active_client, is_dask_array

__all__ = ["active_client", "block_pixel_matrix", "is_dask_array", "lazy_maps", "nmf_dask",
           "nnls_dask", "pca_dask", "pixel_matrix", "rows_to_c_order", "rows_to_maps",
           "store_maps"]

_LAZY = {"lazy_maps": "store", "store_maps": "store", "nnls_dask": "nnls",
         "nmf_dask": "nmf", "pca_dask": "pca", "pixel_matrix": "blocks",
         "block_pixel_matrix": "blocks", "rows_to_c_order": "store", "rows_to_maps": "store"}


def __getattr__(name):  # the dask-importing modules load on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
