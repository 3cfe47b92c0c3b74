"""Spectrum fallbacks: the spectrum of a component that has no usable spectrum seed.

``"residual"`` (default)
    a. the basis is every usable spectrum found so far;
    b. the component's working data is used;
    c. every pixel spectrum (a random subset of at most ``max_pixels``, drawn with
       the run's random state) is fitted by NNLS with the basis;
    d. the positive part of the fit residual is kept;
    e. the pixels with the strongest residual are selected: by residual norm, or
       with ``residual_score=True`` by residual norm times ``1 - max_j cos(r_p,
       b_j)``, which prefers residuals the basis does not already resemble;
    f. each selected residual spectrum is divided by its own maximum, they are
       averaged, smoothed (Gaussian, 1 channel) and clamped at zero;
    g. the result is scaled so that its maximum is the median maximum of the basis
       spectra (or of the selected pixel spectra when the basis is empty).
    When the estimate is unusable (no residual left, non-finite, or parallel to a
    basis spectrum), the random spectrum below is used instead, and the report
    says why.
``"random"``
    A smooth random spectrum drawn from the run's random state, on the scale of the
    basis.
``"none"``
    No fallback: a component without a spectrum seed is an error.

Each fallback returns a :class:`FallbackSpectrum`: the spectrum and its provenance.
They are registered in :data:`H_FALLBACKS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..solvers import solve_nnls
from ..sources.base import cosine_to

__all__ = ["H_FALLBACKS", "FallbackSpectrum", "random_spectrum", "residual_spectrum"]

_TINY = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class FallbackSpectrum:
    """A fallback's spectrum and where it came from.

    Attributes
    ----------
    values : ndarray (n_channels,)
    source : {"residual", "random"}
        The fallback that produced it.
    note : str
        Why the residual estimate was replaced by a random spectrum ("" otherwise).
    """

    values: np.ndarray
    source: str
    note: str = ""


def residual_spectrum(X, basis, *, rng, score_based=True, max_pixels=20000,
                      nnls_backend="auto"):
    """Steps c-g of the residual fallback.

    Returns
    -------
    spectrum : ndarray (n_channels,) or None
        None when the estimate is unusable.
    reason : str
        Why it is unusable ("" otherwise).
    """
    n, m = X.shape
    if n > max_pixels:
        idx = np.sort(rng.choice(n, max_pixels, replace=False))
        Xs = np.asarray(X[idx], dtype=np.float64)
    else:
        Xs = np.asarray(X, dtype=np.float64)
    if basis.shape[0]:
        Wb, _ = solve_nnls(Xs, basis, backend=nnls_backend, max_iter=max(1000, 30 * len(basis)))
        Wb = np.nan_to_num(Wb, nan=0.0)
        R = np.maximum(Xs - Wb @ basis, 0.0)
    else:
        R = Xs.copy()
    r = np.linalg.norm(R, axis=1)
    scale = float(np.linalg.norm(Xs, axis=1).max()) if Xs.size else 0.0
    if not np.isfinite(r).all() or scale <= 0 or r.max() <= 1e-6 * scale:
        return None, "the seeded spectra already explain the data (no positive residual left)"
    score = r
    if score_based and basis.shape[0]:
        cos = np.stack([cosine_to(R, b) for b in basis], axis=1).max(axis=1)
        score = r * (1.0 - cos)
    n_pos = int((score > 0).sum())
    if n_pos == 0:
        return None, "every residual spectrum is parallel to a seeded spectrum"
    n_sel = min(n_pos, max(5, min(200, int(np.ceil(0.02 * len(score))))))
    top = np.argsort(-score, kind="stable")[:n_sel]
    cand = R[top]
    peaks = cand.max(axis=1)
    cand = cand[peaks > 0] / peaks[peaks > 0, None]
    if cand.shape[0] == 0:
        return None, "no strong residual pixel"
    from scipy.ndimage import gaussian_filter1d

    h = cand.mean(axis=0)
    if m >= 3:
        h = gaussian_filter1d(h, 1.0, mode="nearest")
    h = np.maximum(h, 0.0)
    if not np.isfinite(h).all() or h.max() <= 0:
        return None, "the averaged residual is zero"
    if basis.shape[0]:
        if float(np.max([np.dot(h, b) / (np.linalg.norm(h) * np.linalg.norm(b) + _TINY)
                         for b in basis])) > 0.999:
            return None, "the residual spectrum repeats a seeded spectrum"
        amp = float(np.median(basis.max(axis=1)))
    else:
        amp = float(np.median(Xs[top].max(axis=1)))
    return h * (amp / h.max()), ""


def random_spectrum(m, amp, rng) -> np.ndarray:
    """A smooth random spectrum of ``m`` channels between ``0.1 amp`` and ``amp``."""
    from scipy.ndimage import gaussian_filter1d

    v = rng.random(m)
    if m >= 3:
        v = gaussian_filter1d(v, max(1.0, m / 16.0), mode="nearest")
    v = v - v.min()
    mx = v.max()
    v = v / mx if mx > 0 else np.ones(m)
    return (0.1 + 0.9 * v) * amp


def _amplitude(X, basis) -> float:
    if basis.shape[0]:
        return float(np.median(basis.max(axis=1)))
    return float(np.asarray(X).max()) or 1.0


def _random_fallback(X, basis, *, rng, **_):
    return FallbackSpectrum(random_spectrum(X.shape[1], _amplitude(X, basis), rng), "random")


def _residual_fallback(X, basis, *, rng, residual_score=True, max_pixels=20000,
                       nnls_backend="auto"):
    h, why = residual_spectrum(X, basis, rng=rng, score_based=residual_score,
                               max_pixels=int(max_pixels), nnls_backend=nnls_backend)
    if h is not None:
        return FallbackSpectrum(h, "residual")
    return FallbackSpectrum(random_spectrum(X.shape[1], _amplitude(X, basis), rng), "random",
                            note=f"the residual estimate failed ({why}); a random smooth "
                            "spectrum was used instead.")


#: Fallbacks by name; ``"none"`` has no function (components without a spectrum are
#: an error).
H_FALLBACKS: dict[str, Callable[..., FallbackSpectrum] | None] = {
    "residual": _residual_fallback,
    "random": _random_fallback,
    "none": None,
}
