"""PCA of channel-standardised spectra: ``Z ~ T P``, with a scree.

Each channel is centred and divided by its standard deviation (population, ddof=0,
as ``sklearn.preprocessing.StandardScaler``) so that bright channels do not dominate.
The principal axes are the eigenvectors of the channel covariance of ``Z``, which is
accumulated over pixel blocks in float64: memory stays at a few blocks beyond ``X``
(the scores ``T`` aside).

Scale
    The means, deviations, covariance and errors are computed on the data divided
    by the power of two that brings its largest magnitude into ``[1, 2)``
    (:func:`~napari_unmix.core.data.data_scale`, exact in floating point; block by
    block, so that no copy of ``X`` is made) and scaled back, so data of order
    1e-30 or 1e30 give the same loadings, scores (up to the scale) and relative
    error as data of order 1, and no square over- or underflows.  A channel counts
    as constant when its deviation is below ``eps`` times the data's scale (not an
    absolute number), and constant channels are warned about.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._validation import check_n_components, check_positive_int
from .chunked.scheduler import is_dask_array
from .data import CheckedMatrix, check_matrix, data_scale
from .parallel import Workers, check_n_jobs
from .progress import Reporter
from .result import UnmixResult
from .solvers._common import chunk_slices, rows_per_chunk
from .solvers.pooled import ordered_sum
from .summaries import PCASummary

__all__ = ["BLOCK_BYTES", "pca"]

#: Bytes of float64 temporaries per work block of the covariance and score passes.
BLOCK_BYTES = 2 * 2**20


def _blocks(chunk: slice, m: int):
    """The work blocks of one chunk: their size depends on the data, not on n_jobs."""
    size = rows_per_chunk(m, 8, budget=BLOCK_BYTES)
    return [slice(a, min(a + size, chunk.stop)) for a in range(chunk.start, chunk.stop, size)]


def pca(X, n_components, *, standardize=True, chunk_size=None, callback=None,
        n_jobs=None) -> UnmixResult:
    """Principal component analysis of pixel spectra.

    Parameters
    ----------
    X : array_like, shape (n_pixels, n_channels)
        Pixel spectra; at least 2 pixels.  Negative values are fine.  A dask array is
        reduced in one pass over its blocks (:mod:`~napari_unmix.core.chunked.pca`)
        and the scores ``W`` come back as a dask array.
    n_components : int
        Number of components kept, ``1 <= k <= min(n_pixels, n_channels)``.
    standardize : bool, default True
        Scale every channel to unit variance after centring.  A constant channel
        (no variance above rounding) is only centred: it becomes all zeros and
        contributes nothing, instead of producing NaN.  Such channels are listed in
        ``summary.constant_channels`` and warned about.  With ``False`` channels are
        only centred.
    chunk_size : int, optional
        Pixels per chunk for the covariance and score passes.
    callback : callable, optional
        ``callback(ProgressInfo)`` per chunk; returning False cancels.
    n_jobs : int, optional
        Worker threads that share the pixel blocks of the covariance and score
        passes (``core.parallel``: ``None`` or -1 every core this process may use).
        Each block's share is summed in block order: the result does not depend on
        it.

    Returns
    -------
    UnmixResult
        ``W`` holds the scores ``T`` (n_pixels, k), ``H`` the loadings ``P``
        (k, n_channels) with unit norm, signed so that each loading's largest
        absolute entry is positive.  ``explained_variance_ratio`` covers *all*
        ``n_channels`` components (for a scree plot); ``arrays`` holds the channel
        ``mean`` and ``scale``.  ``reconstruction_err`` is ``||X - X_hat||_F`` in the
        data's units with ``X_hat = (T P) * scale + mean``.
    """
    check_n_jobs(n_jobs)
    check_positive_int(chunk_size, name="chunk_size", optional=True)
    if is_dask_array(X.X if isinstance(X, CheckedMatrix) else X):
        from .chunked.blocks import require_known_chunks
        from .chunked.pca import pca_dask  # one pass over the blocks (core.chunked)

        require_known_chunks(X)  # before anything counts its pixels
        return pca_dask(X, n_components, standardize=standardize, chunk_size=chunk_size,
                        callback=callback, n_jobs=n_jobs)
    with Workers(n_jobs) as workers:  # one BLAS thread per worker (core.parallel)
        return _pca(X, n_components, standardize=standardize, chunk_size=chunk_size,
                    callback=callback, workers=workers)


def _pca(X, n_components, *, standardize, chunk_size, callback, workers) -> UnmixResult:
    t0 = time.perf_counter()
    X_in = check_matrix(X, min_samples=2).X
    n, m = X_in.shape
    k = check_n_components(n_components, n, m, mode="PCA")
    c = data_scale(X_in)
    f = X_in.dtype.type(c)
    if chunk_size is None:
        chunk_size = rows_per_chunk(m, 8)
    slices = chunk_slices(n, chunk_size)
    report = Reporter(callback, "pca")
    n_steps = 2 * len(slices) + 1

    def scaled(b):
        """Block ``b`` of the data divided by ``c`` (magnitudes in [1, 2); exact): the
        whole of it is never copied."""
        return X_in[b] if c == 1.0 else X_in[b] / f

    mean = X_in.mean(axis=0, dtype=np.float64) / c   # exact: c is a power of two

    def squared_deviations(b):
        D = scaled(b) - mean
        return np.einsum("ij,ij->j", D, D)

    blocks = _blocks(slice(0, n), m)
    std = np.sqrt(ordered_sum(workers.map(squared_deviations, blocks)) / n)
    # constant: no variation above rounding, relative to the (scaled) data
    constant = np.flatnonzero(std <= 8 * np.finfo(X_in.dtype).eps * np.maximum(np.abs(mean), 1.0))
    scale = np.ones(m) if not standardize else np.where(std > 0, std, 1.0)
    scale[constant] = 1.0
    if constant.size == m:
        raise ValueError("Every channel is constant: the data has no variance for PCA.")
    if constant.size:
        listed = ", ".join(str(int(i)) for i in constant[:10]) + \
            (" ..." if constant.size > 10 else "")
        warnings.warn(f"PCA: {constant.size} of {m} channel(s) are constant (channel(s) "
                      f"{listed}); they are centred to zero and carry no variance. Leave "
                      "them out of the stack if they are dead channels.", UserWarning,
                      stacklevel=3)

    def gram(b):
        Z = (scaled(b) - mean) / scale
        return Z.T @ Z

    cov = np.zeros((m, m))
    for i, sl in enumerate(slices):
        cov += ordered_sum(workers.map(gram, _blocks(sl, m)))   # in block order
        report(i + 1, n_steps)
    cov /= n - 1
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval = np.clip(eigval[order], 0.0, None)
    eigvec = eigvec[:, order]
    total = eigval.sum()
    if total <= 0:
        raise ValueError("Every channel is constant: the data has no variance for PCA.")
    ratio = eigval / total
    P = eigvec[:, :k].T
    signs = np.sign(P[np.arange(k), np.abs(P).argmax(axis=1)])
    P *= np.where(signs == 0, 1.0, signs)[:, None]

    T = np.empty((n, k), dtype=X_in.dtype)

    def scores(b):
        Xb = scaled(b)
        Z = (Xb - mean) / scale
        T_block = Z @ P.T
        T[b] = T_block
        R = (Z - T_block @ P) * scale
        return np.array([np.einsum("ij,ij->", R, R, dtype=np.float64),
                         np.einsum("ij,ij->", Xb, Xb, dtype=np.float64)])

    sq_err = x_sq = 0.0
    for i, sl in enumerate(slices):
        sq_block, x_block = ordered_sum(workers.map(scores, _blocks(sl, m)))
        sq_err += float(sq_block)
        x_sq += float(x_block)
        report(len(slices) + i + 1, n_steps)
    x_norm = float(np.sqrt(x_sq))
    err = float(np.sqrt(sq_err))
    if not standardize and c != 1.0:  # the scores are in the data's units
        T *= T.dtype.type(c)
    err, x_norm, mean = err * c, x_norm * c, mean * c
    if standardize:
        scale = scale * c
        scale[constant] = 1.0  # a constant channel's zero loading needs no scale
    report(n_steps, n_steps, err)
    summary = PCASummary(
        n_components=k,
        explained_variance_ratio=ratio[:k].tolist(),
        cumulative_explained_variance=float(ratio[:k].sum()),
        constant_channels=constant.tolist(),
        standardize=bool(standardize),
        reconstruction_err=err,
        relative_error=err / max(x_norm, np.finfo(float).tiny),
        dtype=str(X_in.dtype),
        time_s=time.perf_counter() - t0,
    )
    summary = summary.replace(n_jobs=workers.n, device="cpu")
    params = {"mode": "pca", "n_components": k, "standardize": bool(standardize),
              "chunk_size": chunk_size, "n_jobs": workers.requested}
    return UnmixResult(W=T, H=P.astype(X_in.dtype), mode="pca", backend="numpy", device="cpu",
                       n_iter=0, reconstruction_err=err, summary=summary, params=params,
                       explained_variance_ratio=ratio,
                       arrays={"mean": mean, "scale": scale,
                               "explained_variance": eigval if standardize else eigval * c * c})
