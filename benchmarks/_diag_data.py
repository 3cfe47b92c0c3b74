"""Scenes of the diagnostics benchmark and tests (``diagnostics.py``, ``tests/core/test_*``).

``separable_scene``: an image whose every component has pure pixels, the case in
which NNMF is unique (so random starts must agree), with Poisson noise (never
negative, so nothing is clipped).  ``gaussian_nnls_scene``: fixed spectra and
abundances well inside the positive range with Gaussian noise, the case in which
the analytic standard errors of NNLS are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scene", "gaussian_nnls_scene", "separable_scene"]


@dataclass
class Scene:
    X: np.ndarray          # (n_pixels, n_channels)
    W: np.ndarray          # (n_pixels, k) true abundances
    H: np.ndarray          # (k, n_channels) true spectra
    spatial_shape: tuple
    sigma: float = 0.0     # Gaussian noise level (0 for Poisson)


def bands(n_channels: int, centres, width: float) -> np.ndarray:
    nu = np.linspace(0.0, 1.0, n_channels)
    c = np.asarray(centres, dtype=float)
    return np.exp(-0.5 * ((nu[None, :] - c[:, None]) / width) ** 2)


def separable_scene(*, shape=(32, 32), n_channels: int = 32, k: int = 4, counts: float = 100.0,
                    width: float = 0.08, seed: int = 1) -> Scene:
    """Sparse Dirichlet-like mixtures (about a tenth of the pixels > 95 % pure) of
    ``k`` Gaussian bands, brightness 0.5-1.5, Poisson counts (``counts`` per unit)."""
    rng = np.random.default_rng(seed)
    H = bands(n_channels, np.linspace(0.2, 0.8, k), width)
    n = int(np.prod(shape))
    W = rng.gamma(0.3, 1.0, (n, k))
    W = W / W.sum(axis=1, keepdims=True) * rng.uniform(0.5, 1.5, (n, 1))
    X = rng.poisson(counts * W @ H).astype(np.float64) / counts
    return Scene(X=X, W=W, H=H, spatial_shape=tuple(shape))


def gaussian_nnls_scene(*, n_pixels: int = 4000, n_channels: int = 64, k: int = 3,
                        sigma: float = 0.02, low: float = 0.5, high: float = 1.5,
                        zero_fraction: float = 0.0, seed: int = 0) -> Scene:
    """Overlapping bands on a floor of 0.2, abundances uniform in ``[low, high]`` (a
    fraction set to 0, every pixel keeping one), white Gaussian noise of standard
    deviation ``sigma`` (the data stay positive: nothing is clipped)."""
    rng = np.random.default_rng(seed)
    H = 0.2 + bands(n_channels, np.linspace(0.3, 0.7, k), 0.12)
    W = rng.uniform(low, high, (n_pixels, k))
    if zero_fraction:
        zero = rng.random(W.shape) < zero_fraction
        zero[np.arange(n_pixels), rng.integers(0, k, n_pixels)] = False
        W[zero] = 0.0
    X = W @ H + sigma * rng.standard_normal((n_pixels, n_channels))
    return Scene(X=X, W=W, H=H, spatial_shape=(n_pixels,), sigma=sigma)
