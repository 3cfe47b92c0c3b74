"""The synthetic stack shared by the benchmarks (``nmf_speed``, ``nnls_speed``, ``peers``).

Deterministic for a given seed: ``n_pixels`` pixel spectra of ``n_channels``
channels made of ``n_components`` Gaussian resonances whose widths (0.12-0.2 of
the spectral range) are much larger than the spacing of their centres (0.35-0.65),
so the spectra overlap strongly and the unmixing is ill-conditioned.  Abundances
are sparse (a pixel holds a component with probability 0.3, exponential
amplitudes).  Gaussian noise of ``noise`` times the signal's RMS is added and
negative values are clipped to 0; ``X`` is float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Stack", "make_stack"]


@dataclass
class Stack:
    """A synthetic stack and its ground truth."""

    #: float32 (n_pixels, n_channels): the noisy, clipped data
    X: np.ndarray
    #: float64 (n_pixels, n_channels): ``W_true @ H_true`` before noise
    X_clean: np.ndarray
    #: float64 (n_pixels, k): true abundances
    W_true: np.ndarray
    #: float64 (k, n_channels): true spectra (each peaks at 1)
    H_true: np.ndarray

    @property
    def noise_floor(self) -> float:
        """``||X - X_clean||_F / ||X||_F``: what a perfect k-component fit leaves."""
        x = self.X.astype(np.float64)
        return float(np.linalg.norm(x - self.X_clean) / np.linalg.norm(x))


def make_stack(n_pixels: int = 512 * 512, n_channels: int = 64, n_components: int = 5,
               noise: float = 0.01, seed: int = 0) -> Stack:
    """Build the deterministic benchmark stack (see the module docstring)."""
    rng = np.random.default_rng(seed)
    nu = np.linspace(0.0, 1.0, n_channels)
    centers = np.linspace(0.35, 0.65, n_components) + rng.uniform(-0.02, 0.02, n_components)
    widths = rng.uniform(0.12, 0.2, n_components)  # >> spacing of the centres: strong overlap
    H = np.exp(-0.5 * ((nu[None, :] - centers[:, None]) / widths[:, None]) ** 2)
    W = rng.exponential(1.0, (n_pixels, n_components)) \
        * (rng.random((n_pixels, n_components)) < 0.3)
    X_clean = W @ H
    sigma = noise * np.sqrt(np.mean(X_clean ** 2))
    X = np.maximum(X_clean + sigma * rng.standard_normal(X_clean.shape), 0.0)
    return Stack(X=X.astype(np.float32), X_clean=X_clean, W_true=W, H_true=H)
