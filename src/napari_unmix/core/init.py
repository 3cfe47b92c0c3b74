"""Unguided initialisations for random NNMF, and seeding of ``random_state``.

``"nndsvd"`` is the non-negative double SVD of Boutsidis & Gallopoulos (2008):
each leading singular pair is split into its positive and negative parts and the
dominant part kept.  ``"nndsvda"`` fills its zeros with the data mean (better for
multiplicative updates, which cannot move exact zeros), ``"nndsvdar"`` with small
random values.  ``"random"`` draws half-normal factors scaled to the data mean.
"""

from __future__ import annotations

import numbers

import numpy as np

from .solvers._common import chunk_slices
from .solvers.pooled import gram_sum

__all__ = ["INITS", "MAX_RANDOM_STATE", "balance_seeds", "initialize_factors",
           "leading_svd", "resolve_random_state"]

INITS = ("nndsvda", "nndsvd", "nndsvdar", "random")

#: The largest ``random_state``: scikit-learn and ``RandomState`` take 32-bit seeds.
MAX_RANDOM_STATE = 2**32 - 1


def resolve_random_state(random_state) -> int:
    """Turn ``random_state`` into a concrete int seed that can be recorded.

    ``None`` draws fresh entropy; an int from 0 to ``2**32 - 1`` (what scikit-learn
    and ``numpy.random.RandomState`` accept) is kept; a ``numpy.random.RandomState``
    or ``Generator`` is asked for one seed.  Recording the int in a result's params
    is what makes every run reproducible.

    Raises
    ------
    TypeError
        For anything else (a bool, a float, a string).
    ValueError
        For an int out of that range.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    if isinstance(random_state, bool):
        raise TypeError("random_state must be None, an int or a numpy random generator.")
    if isinstance(random_state, numbers.Integral):
        if not 0 <= random_state <= MAX_RANDOM_STATE:
            raise ValueError(f"random_state must be an integer from 0 to {MAX_RANDOM_STATE} "
                             f"(2**32 - 1), got {random_state}.")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise TypeError(
        f"random_state must be None, an int or a numpy random generator, got {random_state!r}."
    )


#: Up to this many channels the leading singular pairs come from the channels' Gram
#: matrix (exact, one pass over the pixels); above it from a randomized SVD.
GRAM_SVD_MAX_CHANNELS = 512


#: Rows of ``X`` converted to float64 at a time by :func:`leading_svd`.
SVD_BLOCK_ROWS = 16384


def leading_svd(X: np.ndarray, k: int, *, random_state: int = 0, workers=None):
    """The ``k`` leading singular triplets ``(U (n, k), S (k,), Vt (k, m))`` of ``X``.

    A spectral matrix has many more pixels than channels.  For up to
    :data:`GRAM_SVD_MAX_CHANNELS` channels the leading right singular subspace
    (``k`` + 8 vectors) is read from the eigenvectors of ``X^T X``, accumulated in
    float64 block by block, and the triplets come from ``X`` projected onto it,
    ``Y = X V`` (a Rayleigh-Ritz step: the eigenpairs of the small ``Y^T Y``).  That
    is exact up to float64 rounding (singular values ``1e-5`` of the largest keep
    about six digits) and costs two passes over ``X``; scikit-learn's
    ``randomized_svd`` (used for wider or wider-than-tall matrices) makes 2 x 7
    power-iteration passes with 15 vectors and LU factorisations of ``n x 15``
    matrices, several times as long on a 512 x 512 x 64 stack.

    ``workers`` (a :class:`~napari_unmix.core.parallel.Workers` pool) share the
    blocks of rows, each block's Gram product summed in block order, so the result
    does not depend on their number; BLAS then runs one thread per worker and no
    BLAS thread is left spinning for the solver that follows.
    """
    n, m = X.shape
    if m > GRAM_SVD_MAX_CHANNELS or n < m:
        from sklearn.utils.extmath import randomized_svd

        return randomized_svd(X, k, random_state=random_state)
    blocks = chunk_slices(n, SVD_BLOCK_ROWS)
    _, V = np.linalg.eigh(gram_sum(X, blocks, workers))
    p = min(m, k + 8)
    V = np.ascontiguousarray(V[:, ::-1][:, :p])                  # the leading subspace
    Y = np.empty((n, p))

    def project(sl):
        Y[sl] = np.asarray(X[sl], dtype=np.float64) @ V

    if workers is None:
        for sl in blocks:
            project(sl)
    else:
        workers.map(project, blocks)
    ev, Wy = np.linalg.eigh(Y.T @ Y)      # p x p: the singular pairs of Y
    order = np.argsort(ev)[::-1][:k]
    S = np.sqrt(np.maximum(ev[order], 0.0))
    Wy = Wy[:, order]
    U = (Y @ Wy) / np.where(S > 0, S, 1.0)
    return U, S, (V @ Wy).T


def initialize_factors(X: np.ndarray, n_components: int, *, init: str = "nndsvda",
                       random_state: int = 0, data_scale: float = 1.0,
                       workers=None) -> tuple[np.ndarray, np.ndarray]:
    """Initial ``W (n, k)`` and ``H (k, m)`` for NNMF, in ``X``'s dtype.

    Parameters
    ----------
    X : ndarray (n_pixels, n_channels), non-negative
    n_components : int
    init : {"nndsvda", "nndsvd", "nndsvdar", "random"}
    random_state : int
    data_scale : float, default 1.0
        A power of two ``c``: the start made is that of ``X / c``, with ``H`` times
        ``c`` (``W`` the same), bit for bit, without a scaled copy of ``X``
        (``core.nmf`` fits HALS on the data as it is).
    workers : Workers, optional
        A pool that shares the SVD's blocks of rows (:func:`leading_svd`).
    """
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}; choose one of {', '.join(INITS)}.")
    rng = np.random.default_rng(random_state)
    n, m = X.shape
    k = n_components
    c = float(data_scale)
    mean = float(X.mean(dtype=np.float64)) / c   # exact: c is a power of two
    if init == "random":
        scale = np.sqrt(max(mean, 0.0) / k)
        H = scale * np.abs(rng.standard_normal((k, m)))
        W = scale * np.abs(rng.standard_normal((n, k)))
        return W.astype(X.dtype), (H * c).astype(X.dtype)

    U, S, Vt = leading_svd(X, k, random_state=random_state, workers=workers)
    S = S / c     # the singular values of X / c (U and Vt are the same)
    W = np.zeros((n, k), dtype=np.float64)
    H = np.zeros((k, m), dtype=np.float64)
    W[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    H[0] = np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, k):
        u, v = U[:, j], Vt[j]
        up, un = np.maximum(u, 0), np.maximum(-u, 0)
        vp, vn = np.maximum(v, 0), np.maximum(-v, 0)
        n_up, n_vp = np.linalg.norm(up), np.linalg.norm(vp)
        n_un, n_vn = np.linalg.norm(un), np.linalg.norm(vn)
        if n_up * n_vp >= n_un * n_vn:
            uu, vv, sigma = up / max(n_up, 1e-300), vp / max(n_vp, 1e-300), n_up * n_vp
        else:
            uu, vv, sigma = un / max(n_un, 1e-300), vn / max(n_vn, 1e-300), n_un * n_vn
        lam = np.sqrt(S[j] * sigma)
        W[:, j] = lam * uu
        H[j] = lam * vv
    tiny = 1e-6 * max(float(W.max(initial=0.0)), float(H.max(initial=0.0)), 1e-300)
    W[W < tiny] = 0.0
    H[H < tiny] = 0.0
    if init == "nndsvda":
        W[W == 0] = mean
        H[H == 0] = mean
    elif init == "nndsvdar":
        W[W == 0] = abs(mean * rng.standard_normal(int((W == 0).sum())) / 100)
        H[H == 0] = abs(mean * rng.standard_normal(int((H == 0).sum())) / 100)
    return W.astype(X.dtype), (H * c).astype(X.dtype)


def balance_seeds(X, W0, H0) -> tuple[np.ndarray, np.ndarray]:
    """Rescale the seed maps so that ``W0 H0`` matches the data's scale.

    Generated seed maps have unit maximum while seed spectra keep their count
    scale, so ``W0 H0`` can be many times the data; the first solver steps then
    jump far from the seeds.  This finds amplitudes ``a_j >= 0`` minimising
    ``||X - W0 diag(a) H0||_F`` (a small NNLS problem on the Gram matrices) and
    returns ``W0 * a`` (shapes unchanged: each map is multiplied by one number).

    Parameters
    ----------
    X : ndarray (n, m)
    W0 : ndarray (n, k), H0 : ndarray (k, m)
        Non-negative seeds (not modified).

    Returns
    -------
    W : ndarray (n, k)
        ``W0 * a``, in ``W0``'s dtype.
    a : ndarray (k,)
        The amplitudes (float64); an amplitude the fit puts at 0 is kept at
        1e-3 of the largest, so that no component starts empty.
    """
    from scipy.optimize import nnls as scipy_nnls

    W0d = np.asarray(W0, dtype=np.float64)
    H0d = np.asarray(H0, dtype=np.float64)
    P = np.asarray(X @ np.asarray(H0, dtype=X.dtype).T, dtype=np.float64)  # X H0^T: one pass
    b = np.einsum("ij,ij->j", W0d, P)
    G = (W0d.T @ W0d) * (H0d @ H0d.T)
    # min a^T G a - 2 b^T a over a >= 0, as NNLS on a Cholesky factor (ridge for
    # duplicate seeds, whose G is singular)
    ridge = 1e-12 * max(float(np.trace(G)), np.finfo(float).tiny)
    L = np.linalg.cholesky(G + ridge * np.eye(G.shape[0]))
    a, _ = scipy_nnls(L.T, np.linalg.solve(L, b))
    top = float(a.max(initial=0.0))
    a = np.maximum(a, 1e-3 * top) if top > 0 else np.ones_like(a)
    return (W0d * a).astype(np.asarray(W0).dtype), a


def seed_scale_moves(w_peaks, h_peaks, dtype, *, rows=None) -> list[tuple[int, int]]:
    """The powers of two to share between seed maps and spectra (see
    :func:`keep_seed_squares_in_range`), from each map's and spectrum's peak.

    Returns ``(component, e)`` for every component in ``rows`` (all by default) whose
    map or spectrum peaks beyond :data:`~napari_unmix.core.data.UNSCALED_EXPONENT`
    of ``dtype``: its map is to be divided, its spectrum multiplied by ``2**e``,
    which gives both peaks about the same exponent.
    """
    from .data import UNSCALED_EXPONENT

    limit = UNSCALED_EXPONENT.get(np.dtype(dtype))
    if limit is None:
        return []
    moves = []
    for j in range(len(w_peaks)) if rows is None else rows:
        w_peak, h_peak = float(w_peaks[j]), float(h_peaks[j])
        if not (w_peak > 0 and h_peak > 0 and np.isfinite(w_peak) and np.isfinite(h_peak)):
            continue
        e_w, e_h = int(np.frexp(w_peak)[1]), int(np.frexp(h_peak)[1])
        if max(abs(e_w), abs(e_h)) > limit:
            moves.append((int(j), (e_w - e_h) // 2))
    return moves


def keep_seed_squares_in_range(W, H, *, rows=None) -> tuple[np.ndarray, np.ndarray, list]:
    """Share a power of two between a seed map and its spectrum where either one's
    squares would leave the dtype's range.

    Seeds in units far from the data's (spectra at unit maximum for a stack of values
    near 1e-20, say) leave the whole difference in one factor: the map fitted or
    balanced to the data, or the spectrum divided by the data's scale.  Squared, its
    values under- or overflow float32 and the solver returns NaN.  For every
    component ``j`` in ``rows`` (all by default; the caller leaves locked rows out,
    they are returned bit-identical) whose map or spectrum peaks beyond
    :data:`~napari_unmix.core.data.UNSCALED_EXPONENT`, ``W[:, j]`` is divided and
    ``H[j]`` multiplied by the power of two ``2**e`` that gives both peaks about the
    same exponent (:func:`seed_scale_moves`): exact in floating point, ``W H``
    unchanged.

    Returns
    -------
    W, H : ndarray
        The rescaled factors (the inputs themselves when nothing moved).
    moved : list of (int, int)
        ``(component, e)`` for every component whose scale moved.
    """
    W, H = np.asarray(W), np.asarray(H)
    moved = seed_scale_moves(W.max(axis=0, initial=0.0), H.max(axis=1, initial=0.0),
                             W.dtype, rows=rows)
    if not moved:
        return W, H, []
    W, H = W.copy(), H.copy()
    for j, e in moved:
        W[:, j] = np.ldexp(W[:, j], -e)
        H[j] = np.ldexp(H[j], e)
    return W, H, moved
