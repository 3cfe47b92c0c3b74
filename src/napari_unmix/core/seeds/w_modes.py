"""W-seed modes: how the seeding engine builds a map (``W0`` column) from spectra.

Every mode is a function ``maps(X, H, *, random_state, nnls_backend, notes)`` that
returns raw (unnormalised) maps ``(n_pixels, k)``, float64, >= 0, of every spectrum
of ``H`` on the working data ``X``; the engine then normalises each map to unit
maximum.  The modes are registered in :data:`W_SEED_MODES` (name -> :class:`WSeedMode`)
in the order of the documentation; :func:`register_w_seed_mode` adds one.

``"nnls"``
    Column ``j`` of the non-negative least-squares fit of every pixel by all
    seeded spectra jointly.  On spatially separable data this gives near-disjoint
    maps (each pixel explained by as few spectra as fit it).
``"selective_score"``
    A soft, competition-aware projection.  With unit spectra ``u_j = h_j/|h_j|``,
    projection ``a_pj = max(x_p . u_j, 0)``, cosine ``c_pj = a_pj / |x_p|`` and the
    largest similarity of ``h_j`` to another seeded spectrum
    ``rho_j = max_{l != j} u_j . u_l``::

        m_pj     = c_pj - max_{l != j} c_pl                # margin over the best competitor
        sigma_pj = clip(1/2 + m_pj / (2 (1 - rho_j)), 0, 1)
        S_pj     = a_pj * sigma_pj

    A pure pixel of ``j`` has margin ``1 - rho_j`` (the largest possible), so
    ``sigma = 1``; a pure pixel of the most similar competitor gets ``sigma = 0``;
    a pixel that matches two spectra equally (a real mixture) gets ``sigma = 1/2``
    for both, so it stays mixed instead of being given to one winner.  Dividing by
    ``1 - rho_j`` makes the score selective even for strongly overlapping spectra.
    With one spectrum, ``sigma = 1`` and the map is the projection.
``"h_weighted"``
    The channel-weighted image ``sum_c x_pc h_jc / sum_c h_jc`` (an image of the
    bands where the spectrum is strong).
``"average"``
    The mean image over channels (the same for every component using it).
``"empty"``
    An almost neutral homogeneous map: ``1 - 0.01 u_p`` with ``u_p`` uniform in
    ``[0, 1)`` from ``random_state`` (the tiny variation breaks ties between
    components).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..solvers import solve_nnls

__all__ = ["W_SEED_MODES", "WSeedMode", "register_w_seed_mode", "w_seed_maps"]


@dataclass(frozen=True)
class WSeedMode:
    """One W-seed mode: its name, the function that builds the maps, and a help line."""

    name: str
    maps: Callable[..., np.ndarray]
    summary: str = ""


#: The W-seed modes, by name, in the order of the documentation.
W_SEED_MODES: dict[str, WSeedMode] = {}


def register_w_seed_mode(name: str, maps: Callable[..., np.ndarray], summary: str = ""):
    """Register a W-seed mode (see the module documentation for ``maps``)."""
    if name in W_SEED_MODES:
        raise ValueError(f"A W-seed mode {name!r} is already registered.")
    W_SEED_MODES[name] = WSeedMode(name, maps, summary)
    return W_SEED_MODES[name]


def _nnls_maps(X, H, *, random_state=0, nnls_backend="auto", notes=None):
    W, _ = solve_nnls(np.ascontiguousarray(X), np.ascontiguousarray(H, dtype=X.dtype),
                      backend=nnls_backend, max_iter=max(1000, 30 * H.shape[0]))
    W = np.asarray(W, dtype=np.float64)
    bad = ~np.isfinite(W).all(axis=1)
    if bad.any():
        notes.append(f"NNLS W-seed: {int(bad.sum())} pixel(s) hit the iteration cap; their "
                     "seed abundances were set to 0.")
        W[bad] = 0.0
    return np.maximum(W, 0.0)


def _selective_maps(X, H, *, random_state=0, nnls_backend="auto", notes=None):
    X = np.asarray(X, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    k = H.shape[0]
    norms = np.linalg.norm(H, axis=1)
    U = H / np.where(norms > 0, norms, 1.0)[:, None]
    A = np.maximum(X @ U.T, 0.0)  # projections a_pj
    if k == 1:
        return A
    xn = np.linalg.norm(X, axis=1)
    C = np.where(xn[:, None] > 0, A / np.where(xn > 0, xn, 1.0)[:, None], 0.0)
    G = U @ U.T
    np.fill_diagonal(G, -np.inf)
    rho = np.clip(G.max(axis=1), -1.0, 1.0)
    S = np.empty_like(A)
    for j in range(k):
        others = np.delete(C, j, axis=1).max(axis=1)
        margin = C[:, j] - others
        width = max(1.0 - rho[j], 1e-6)
        sigma = np.clip(0.5 + margin / (2.0 * width), 0.0, 1.0)
        S[:, j] = A[:, j] * sigma
    return S


def _h_weighted_maps(X, H, *, random_state=0, nnls_backend="auto", notes=None):
    Hd = np.asarray(H, dtype=np.float64)
    s = Hd.sum(axis=1)
    weights = Hd / np.where(s > 0, s, 1.0)[:, None]
    return np.maximum(np.asarray(X, dtype=np.float64) @ weights.T, 0.0)


def _average_maps(X, H, *, random_state=0, nnls_backend="auto", notes=None):
    avg = np.maximum(np.asarray(X, dtype=np.float64).mean(axis=1), 0.0)
    return np.repeat(avg[:, None], H.shape[0], axis=1)


def _empty_maps(X, H, *, random_state=0, nnls_backend="auto", notes=None):
    rng = np.random.default_rng([int(random_state), 0x5EED])
    return 1.0 - 0.01 * rng.random((X.shape[0], H.shape[0]))


register_w_seed_mode("nnls", _nnls_maps, "joint NNLS fit of every pixel by the seed spectra")
register_w_seed_mode("selective_score", _selective_maps,
                     "projection, weighted by the margin over the most similar spectrum")
register_w_seed_mode("h_weighted", _h_weighted_maps,
                     "image of the bands where the spectrum is strong")
register_w_seed_mode("average", _average_maps, "the mean image over channels")
register_w_seed_mode("empty", _empty_maps, "an almost uniform map")


def w_seed_maps(X, H, mode, *, random_state=0, nnls_backend="auto", notes=None):
    """Raw (unnormalised) W-seed maps of every spectrum in ``H`` on data ``X``.

    Parameters
    ----------
    X : ndarray (n_pixels, n_channels), non-negative
    H : ndarray (k, n_channels)
    mode : str
        One of :data:`W_SEED_MODES`.
    random_state : int
        Used by ``"empty"``.
    nnls_backend : str
        NNLS backend of the ``"nnls"`` mode.
    notes : list, optional
        Receives remarks (pixels whose NNLS hit its cap).

    Returns
    -------
    ndarray (n_pixels, k), float64, >= 0
    """
    if mode not in W_SEED_MODES:
        raise ValueError(f"Unknown w_seed_mode {mode!r}; choose one of "
                         f"{', '.join(W_SEED_MODES)}.")
    notes = [] if notes is None else notes
    return W_SEED_MODES[mode].maps(X, H, random_state=random_state,
                                   nnls_backend=nnls_backend, notes=notes)
