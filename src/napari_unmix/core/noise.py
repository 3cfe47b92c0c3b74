"""The noise level of a stack, estimated from the data alone (no fit needed).

:func:`estimate_noise` regresses every channel on all the others (the estimate of
HySime, Bioucas-Dias & Nascimento, IEEE TGRS 46:2435, 2008): when the signal lives
in a subspace of few dimensions, the other channels predict a channel's signal and
what they cannot predict is its noise.  The residual sum of squares of channel
``i`` is ``1 / (G^-1)_ii`` with ``G`` the channels' Gram matrix, so every channel
costs one ``C x C`` inverse in all.  It needs many more pixels than channels and
fewer signal dimensions than channels; where the pixels are too few, the second
difference along the spectral axis is used instead (it assumes spectra that are
smooth on the scale of a channel).

:func:`whiten` divides every channel by its noise level, so that the noise of the
result has unit variance in every channel: the scale on which the Marchenko-Pastur
edge of :mod:`~napari_unmix.core.ksuggest` and the chi-square test of
:mod:`~napari_unmix.core.residuals` are read.
"""

from __future__ import annotations

import numpy as np

__all__ = ["estimate_noise", "pixel_sample", "whiten"]

#: Pixels used for the regression estimate (a regular sample of larger stacks).
MAX_PIXELS = 50_000


def pixel_sample(n_pixels: int, max_pixels: int) -> slice | np.ndarray:
    """A deterministic, evenly spread sample of at most ``max_pixels`` row indices."""
    if n_pixels <= max_pixels:
        return slice(None)
    return np.linspace(0, n_pixels - 1, max_pixels).round().astype(np.intp)


def _difference_noise(X: np.ndarray) -> np.ndarray:
    """Noise from the second difference along channels: ``var(x_i - (x_{i-1} + x_{i+1}) / 2)
    = 1.5 sigma^2`` for white noise on a locally linear spectrum (median over channels)."""
    if X.shape[1] < 3:
        return np.full(X.shape[1], float(np.std(X)))
    d = X[:, 1:-1] - 0.5 * (X[:, :-2] + X[:, 2:])
    return np.full(X.shape[1], float(np.sqrt(np.median(d.var(axis=0)) / 1.5)))


def estimate_noise(X, *, max_pixels: int = MAX_PIXELS, return_method: bool = False):
    """Per-channel noise standard deviation of a pixel-by-channel matrix.

    Parameters
    ----------
    X : array_like, shape (n_pixels, n_channels)
        Pixel spectra (finite).
    max_pixels : int
        Regular sample of the pixels used for the estimate.
    return_method : bool
        Also return how it was estimated: ``"regression"`` (every channel on the
        others) or ``"difference"`` (second differences, when there are fewer than
        ``3 * n_channels`` pixels).

    Returns
    -------
    ndarray, shape (n_channels,)
        Standard deviations, in the data's units.  Every value is at least a tiny
        fraction of the data's scale (never 0, so that whitening is defined).
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"estimate_noise needs a (n_pixels, n_channels) matrix, got "
                         f"{X.shape}.")
    X = X[pixel_sample(X.shape[0], max_pixels)]
    n, m = X.shape
    scale = float(np.abs(X).max()) or 1.0
    floor = scale * 1e-12
    if m < 3 or n < 3 * m:
        sigma, method = _difference_noise(X), "difference"
    else:
        Z = X / scale
        norms = np.sqrt(np.einsum("ij,ij->j", Z, Z))
        norms[norms == 0] = 1.0
        Zn = Z / norms
        G = Zn.T @ Zn
        G[np.diag_indices(m)] += 1e-10  # keeps exactly collinear (noise-free) data invertible
        try:
            Gi = np.linalg.inv(G)
        except np.linalg.LinAlgError:
            sigma, method = _difference_noise(X), "difference"
        else:
            rss = 1.0 / np.maximum(np.diag(Gi), 1e-300)
            sigma = np.sqrt(np.maximum(rss, 0.0) / (n - m)) * norms * scale
            method = "regression"
    out = np.maximum(np.asarray(sigma, dtype=np.float64), floor)
    return (out, method) if return_method else out


def whiten(X, sigma) -> np.ndarray:
    """``X`` with every channel divided by its noise level (float64)."""
    return np.asarray(X, dtype=np.float64) / np.asarray(sigma, dtype=np.float64)
