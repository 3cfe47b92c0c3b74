"""PCA of a dask matrix: :func:`pca_dask` (``core.pca``'s path), one pass over the blocks.

Each block returns its pixel count, its channel means and its centred scatter matrix
``M2_b = (X_b - mean_b)^T (X_b - mean_b)`` in float64 (and its NaN / Inf counts and
largest magnitude); the blocks are merged in block order by the pairwise update of
Chan, Golub and LeVeque (1979), ``M2 = M2_a + M2_b + d d^T n_a n_b / n`` with
``d = mean_b - mean_a``, which stays accurate where ``sum x x^T - n mean mean^T``
would cancel.  From the merged moments everything of ``core.pca`` follows without
another pass: the deviations ``sqrt(diag(M2) / n)``, the covariance of the
standardised data ``D^-1 M2 D^-1 / (n - 1)``, its eigenvectors, ``||X||^2 =
sum_j M2_jj + n mean_j^2`` and the reconstruction error ``||(Z - Z P^T P) D||_F^2 =
sum_i D_ii^2 [(I - Q) Z^T Z (I - Q)]_ii``, ``Q = P^T P``.  The scaling by the power of
two of the data's largest magnitude, the constant-channel rule, the signs and the
scree are those of ``core.pca``; loadings and scores agree with it to floating-point
rounding.  The scores ``W`` are lazy: ``(X - mean) / scale @ P^T`` per block.
"""

from __future__ import annotations

import time
import uuid
import warnings

import numpy as np

from .._validation import check_n_components
from ..data import CheckedMatrix, data_scale
from ..progress import Reporter
from ..result import UnmixResult
from ..summaries import PCASummary
from .blocks import check_finite_counts, float_dtype, whole_spectra
from .scheduler import active_client, compute, persist

__all__ = ["pca_dask"]


def _moments(x):
    x = np.asarray(x)
    m = x.shape[1]
    n_nan = int(np.isnan(x).sum())
    n_inf = int(np.isinf(x).sum())
    out = np.zeros((1, 4 + m + m * m))
    out[0, :4] = (x.shape[0], n_nan, n_inf, float(np.abs(x).max(initial=0.0))
                  if not (n_nan or n_inf) else 0.0)
    if x.shape[0] and not (n_nan or n_inf):
        mean = x.mean(axis=0, dtype=np.float64)
        d = x - mean
        out[0, 4:4 + m] = mean
        out[0, 4 + m:] = (d.T @ d).ravel()
    return out


def _merge(parts, m):
    n = 0.0
    mean = np.zeros(m)
    M2 = np.zeros((m, m))
    for row in parts:          # in block order
        nb = row[0]
        if nb == 0:
            continue
        mb = row[4:4 + m]
        Mb = row[4 + m:].reshape(m, m)
        if n == 0:
            n, mean, M2 = nb, mb.copy(), Mb.copy()
            continue
        d = mb - mean
        total = n + nb
        mean = mean + d * (nb / total)
        M2 = M2 + Mb + np.outer(d, d) * (n * nb / total)
        n = total
    return n, mean, M2


def _scores(x, mean, scale, P, c, dtype):
    xs = np.asarray(x) if c == 1.0 else np.asarray(x) / np.asarray(x).dtype.type(c)
    T = (((xs - mean) / scale) @ P.T).astype(dtype)
    return T


def pca_dask(X, n_components, *, standardize=True, chunk_size=None, callback=None,
             n_jobs=None) -> UnmixResult:
    """``core.pca`` for a dask ``X`` (or a CheckedMatrix holding one); ``chunk_size`` and
    ``n_jobs`` are dask's (its chunks, its workers).  ``W`` (the scores) is lazy."""
    t0 = time.perf_counter()
    X = X.X if isinstance(X, CheckedMatrix) else X
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D matrix (n_pixels, n_channels), got shape "
                         f"{X.shape}.")
    dtype = float_dtype(X.dtype, name="X")
    X = X.astype(dtype) if X.dtype != dtype else X
    X = whole_spectra(X, X.dtype.itemsize)
    n, m = X.shape
    if n < 2:
        raise ValueError(f"X has shape {X.shape} but needs at least 2 pixel(s) and 1 "
                         "channel(s).")
    k = check_n_components(n_components, n, m, mode="PCA")
    report = Reporter(callback, "pca")
    nb = X.numblocks[0]
    moments = X.map_blocks(_moments, dtype=np.float64,
                           chunks=((1,) * nb, (4 + m + m * m,)),
                           name=f"pca-moments-{uuid.uuid4().hex}")   # a run's own keys
    (moments,) = persist(moments, total=nb + 1,
                         on_block=lambda done, total: report(done, total))
    parts = np.asarray(compute(moments)[0])
    check_finite_counts(int(parts[:, 1].sum()), int(parts[:, 2].sum()), name="X")
    top = float(parts[:, 3].max())
    c = data_scale(np.array([top]))
    n_f, mean, M2 = _merge(parts, m)
    mean, M2 = mean / c, M2 / (c * c)     # the data over c (exact: a power of two)
    std = np.sqrt(np.clip(np.diag(M2) / n_f, 0.0, None))
    constant = np.flatnonzero(std <= 8 * np.finfo(dtype).eps * np.maximum(np.abs(mean), 1.0))
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
    Zg = M2 / np.outer(scale, scale)            # Z^T Z
    cov = Zg / (n - 1)
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
    Ic = np.eye(m) - P.T @ P
    sq_err = float(np.clip(np.einsum("ii,i->", Ic @ Zg @ Ic, scale * scale), 0.0, None))
    x_norm = float(np.sqrt(np.trace(M2) + n * float(mean @ mean)))
    err = float(np.sqrt(sq_err))
    # the scores, lazily: in the data's units without standardisation
    T = X.map_blocks(_scores, mean, scale, P, c, dtype, dtype=dtype, chunks=(X.chunks[0], (k,)))
    if not standardize and c != 1.0:
        T = T * dtype.type(c)
    err, x_norm, mean = err * c, x_norm * c, mean * c
    if standardize:
        scale = scale * c
        scale[constant] = 1.0
    report(nb + 1, nb + 1, err)
    client = active_client()
    summary = PCASummary(
        n_components=k, explained_variance_ratio=ratio[:k].tolist(),
        cumulative_explained_variance=float(ratio[:k].sum()),
        constant_channels=constant.tolist(), standardize=bool(standardize),
        reconstruction_err=err, relative_error=err / max(x_norm, np.finfo(float).tiny),
        dtype=str(dtype), time_s=time.perf_counter() - t0,
        extra={"chunked": {"n_blocks": nb, "scheduler": "distributed" if client else
                           "local"}})
    summary = summary.replace(n_jobs=1, device="cpu")
    params = {"mode": "pca", "n_components": k, "standardize": bool(standardize),
              "chunk_size": chunk_size, "n_jobs": n_jobs}
    return UnmixResult(W=T, H=P.astype(dtype), mode="pca", backend="numpy", device="cpu",
                       n_iter=0, reconstruction_err=err, summary=summary, params=params,
                       explained_variance_ratio=ratio,
                       arrays={"mean": mean, "scale": scale,
                               "explained_variance": eigval if standardize else eigval * c * c})
