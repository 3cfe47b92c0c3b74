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

__all__ = ["INITS", "initialize_factors", "resolve_random_state"]

INITS = ("nndsvda", "nndsvd", "nndsvdar", "random")


def resolve_random_state(random_state) -> int:
    """Turn ``random_state`` into a concrete int seed that can be recorded.

    ``None`` draws fresh entropy; an int is kept; a ``numpy.random.RandomState`` or
    ``Generator`` is asked for one seed.  Recording the int in a result's params is
    what makes every run reproducible.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    if isinstance(random_state, bool):
        raise TypeError("random_state must be None, an int or a numpy random generator.")
    if isinstance(random_state, numbers.Integral):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}.")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise TypeError(
        f"random_state must be None, an int or a numpy random generator, got {random_state!r}."
    )


def initialize_factors(X: np.ndarray, n_components: int, *, init: str = "nndsvda",
                       random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Initial ``W (n, k)`` and ``H (k, m)`` for NNMF, in ``X``'s dtype.

    Parameters
    ----------
    X : ndarray (n_pixels, n_channels), non-negative
    n_components : int
    init : {"nndsvda", "nndsvd", "nndsvdar", "random"}
    random_state : int
    """
    if init not in INITS:
        raise ValueError(f"Unknown init {init!r}; choose one of {', '.join(INITS)}.")
    rng = np.random.default_rng(random_state)
    n, m = X.shape
    k = n_components
    mean = float(X.mean(dtype=np.float64))
    if init == "random":
        scale = np.sqrt(max(mean, 0.0) / k)
        H = scale * np.abs(rng.standard_normal((k, m)))
        W = scale * np.abs(rng.standard_normal((n, k)))
        return W.astype(X.dtype), H.astype(X.dtype)

    from sklearn.utils.extmath import randomized_svd

    U, S, Vt = randomized_svd(X, k, random_state=random_state)
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
    return W.astype(X.dtype), H.astype(X.dtype)
