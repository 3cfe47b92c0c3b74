"""Explicit data treatments that make the "processed" data a mode fits.

Nothing here runs unless asked for, and every treatment reports what it did, so
that results can record it in their ``params`` and ``summary``.  No function here
modifies its input: each returns new data (or the input itself when nothing
changed) together with a dict describing the step.

Steps, in the order :func:`preprocess` applies them:

1. background subtraction (:func:`subtract_background`): one spectrum, taken from
   an ROI, a file / array or a chosen component, is subtracted from every pixel;
2. spectral smoothing (:func:`smooth_spectra`): Savitzky-Golay or Gaussian
   filtering along the channels of every pixel spectrum.

The negative-value policy (:func:`apply_negative_policy`) is separate: it decides
what a non-negative mode does with negative input.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import is_whole_number
from .data import NEGATIVE_POLICIES, apply_negative_policy

__all__ = ["NEGATIVE_POLICIES", "SMOOTHING_METHODS", "Preprocessing", "apply_negative_policy",
           "preprocess", "smooth_spectra", "subtract_background"]

#: Spectral smoothing filters of :func:`smooth_spectra`.
SMOOTHING_METHODS = ("savgol", "gaussian")


def subtract_background(X: np.ndarray, spectrum, *, name: str = "background"):
    """Subtract one background spectrum from every pixel spectrum (never in place).

    Parameters
    ----------
    X : ndarray (n_pixels, n_channels)
    spectrum : array_like (n_channels,)
        The background spectrum, on the same channels as ``X``.
    name : str
        Where the spectrum came from, for the report and errors.

    Returns
    -------
    X : ndarray
        ``X - spectrum``, in ``X``'s dtype.  Values may become negative.
    info : dict
        ``{"step": "background", "source", "n_negative", "min_value"}``.
    """
    b = np.asarray(spectrum, dtype=np.float64)
    if b.shape != (X.shape[1],):
        raise ValueError(
            f"The background spectrum ({name}) has shape {b.shape} but the data has "
            f"{X.shape[1]} channels; give one value per channel.")
    if not np.isfinite(b).all():
        raise ValueError(f"The background spectrum ({name}) holds NaN or infinite values.")
    out = (X - b.astype(X.dtype)).astype(X.dtype, copy=False)
    n_neg = int((out < 0).sum())
    info = {"step": "background", "source": name, "n_negative": n_neg,
            "min_value": float(out.min()) if out.size else 0.0,
            "spectrum_max": float(b.max()) if b.size else 0.0}
    return out, info


def smooth_spectra(X: np.ndarray, *, method: str = "savgol", window_length: int = 7,
                   polyorder: int = 2, sigma: float = 1.0):
    """Smooth every pixel spectrum along the channel axis (never in place).

    Parameters
    ----------
    X : ndarray (n_pixels, n_channels)
    method : {"savgol", "gaussian"}, default "savgol"
        ``"savgol"``: Savitzky-Golay filter (:func:`scipy.signal.savgol_filter`,
        ``mode="interp"``), which keeps peak heights and positions better than a
        moving average.  ``"gaussian"``: Gaussian filter of standard deviation
        ``sigma`` channels (:func:`scipy.ndimage.gaussian_filter1d`,
        ``mode="nearest"``).
    window_length : int, default 7
        Savitzky-Golay window, odd, ``polyorder < window_length <= n_channels``.
    polyorder : int, default 2
        Savitzky-Golay polynomial order.
    sigma : float, default 1.0
        Gaussian width in channels (> 0).

    Returns
    -------
    X : ndarray, in ``X``'s dtype
    info : dict
        The step and its parameters.
    """
    m = X.shape[1]
    if method == "savgol":
        from scipy.signal import savgol_filter

        window_length, polyorder = int(window_length), int(polyorder)
        if window_length % 2 == 0 or window_length < 3:
            raise ValueError(f"window_length must be an odd integer >= 3, got {window_length}.")
        if window_length > m:
            raise ValueError(f"window_length={window_length} is longer than the spectra "
                             f"({m} channels); choose a shorter window.")
        if not 0 <= polyorder < window_length:
            raise ValueError(f"polyorder must be >= 0 and < window_length ({window_length}), "
                             f"got {polyorder}.")
        out = savgol_filter(X, window_length, polyorder, axis=1, mode="interp")
        info = {"step": "smoothing", "method": "savgol", "window_length": window_length,
                "polyorder": polyorder}
    elif method == "gaussian":
        from scipy.ndimage import gaussian_filter1d

        sigma = float(sigma)
        if not np.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"sigma must be a positive number of channels, got {sigma}.")
        out = gaussian_filter1d(X, sigma, axis=1, mode="nearest")
        info = {"step": "smoothing", "method": "gaussian", "sigma": sigma}
    else:
        raise ValueError(f"Unknown smoothing method {method!r}; choose one of "
                         f"{', '.join(SMOOTHING_METHODS)}.")
    out = np.ascontiguousarray(out, dtype=X.dtype)
    info["n_negative"] = int((out < 0).sum())
    return out, info


def _whole(value, name) -> int:
    """A whole number (``7`` or ``7.0`` from JSON); ``7.9`` or ``"7"`` are refused, not
    truncated."""
    if not is_whole_number(value):
        raise ValueError(f"preprocessing {name} must be a whole number, got {value!r}.")
    return int(value)


@dataclass(eq=False)
class Preprocessing:
    """The preprocessing steps of an analysis (what makes the "processed" data).

    Parameters
    ----------
    background : source, optional
        The background spectrum to subtract: a
        :class:`~napari_unmix.core.components.RoiMask`, ``RoiLabel``, ``Spectrum``,
        ``Gaussian``, ``Flat`` (a constant offset) or ``FromComponent`` (the
        spectrum seed of a named component,
        evaluated on the raw data).  ``None``: no subtraction.
    smoothing : {"savgol", "gaussian"} or None
        Spectral smoothing filter; ``None``: none.
    window_length, polyorder, sigma
        Filter parameters (see :func:`smooth_spectra`).
    """

    background: Any = None
    smoothing: str | None = None
    window_length: int = 7
    polyorder: int = 2
    sigma: float = 1.0

    def __post_init__(self):
        from .sources import SOURCES

        if self.background is not None and not getattr(self.background, "background_ok",
                                                       False):
            allowed = [c.__name__ for c in SOURCES.values() if c.background_ok]
            raise TypeError(
                f"Preprocessing.background must be one of {', '.join(allowed)}, got "
                f"{type(self.background).__name__}.")
        if self.smoothing is not None and (not isinstance(self.smoothing, str)
                                           or self.smoothing not in SMOOTHING_METHODS):
            raise ValueError(f"Unknown smoothing {self.smoothing!r}; choose one of "
                             f"{', '.join(SMOOTHING_METHODS)} or None.")
        self.window_length = _whole(self.window_length, "window_length")
        self.polyorder = _whole(self.polyorder, "polyorder")
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, numbers.Real) \
                or not np.isfinite(self.sigma) or self.sigma <= 0:
            raise ValueError(f"preprocessing sigma (the Gaussian smoothing width) must be a "
                             f"positive number of channels, got {self.sigma!r}.")
        self.sigma = float(self.sigma)
        if self.smoothing == "savgol":
            if self.window_length % 2 == 0 or self.window_length < 3:
                raise ValueError(f"preprocessing window_length must be an odd whole number "
                                 f">= 3, got {self.window_length}.")
            if not 0 <= self.polyorder < self.window_length:
                raise ValueError(f"preprocessing polyorder must be >= 0 and < window_length "
                                 f"({self.window_length}), got {self.polyorder}.")

    @property
    def active(self) -> bool:
        """True when at least one step is configured."""
        return self.background is not None or self.smoothing is not None

    def to_dict(self, *, arrays: dict | None = None, prefix: str = "") -> dict:
        return {
            "background": None if self.background is None else self.background.to_dict(
                arrays=arrays, prefix=f"{prefix}background/"),
            "smoothing": self.smoothing,
            "window_length": int(self.window_length),
            "polyorder": int(self.polyorder),
            "sigma": float(self.sigma),
        }

    @classmethod
    def from_dict(cls, d: dict | None, *, arrays: dict | None = None) -> Preprocessing:
        from .sources import source_from_dict

        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown preprocessing field(s) {sorted(unknown)}; known: "
                             f"{sorted(known)}.")
        if d.get("background") is not None:
            d["background"] = source_from_dict(d["background"], arrays=arrays)
        return cls(**d)


def preprocess(X: np.ndarray, *, background=None, background_name: str = "background",
               smoothing: str | None = None, window_length: int = 7, polyorder: int = 2,
               sigma: float = 1.0):
    """Apply background subtraction, then smoothing, to ``X`` (never in place).

    Parameters
    ----------
    X : ndarray (n_pixels, n_channels)
    background : array_like (n_channels,), optional
        Background spectrum to subtract (already resolved to the data's channels).
    background_name : str
        Its origin, for the report.
    smoothing, window_length, polyorder, sigma
        See :func:`smooth_spectra`; ``smoothing=None`` skips smoothing.

    Returns
    -------
    X : ndarray
        The processed data (``X`` itself when no step is configured).
    steps : list of dict
        One entry per step that ran, in order.
    """
    steps = []
    out = X
    if background is not None:
        out, info = subtract_background(out, background, name=background_name)
        steps.append(info)
    if smoothing is not None:
        out, info = smooth_spectra(out, method=smoothing, window_length=window_length,
                                   polyorder=polyorder, sigma=sigma)
        steps.append(info)
    return out, steps
