"""Stack <-> matrix conversion.

A hyperspectral stack has one spectral axis and any number of spatial (or z / t)
axes.  The unmixing modes work on a matrix ``X`` of shape ``(n_pixels, n_channels)``
whose rows are pixel spectra.  :func:`stack_to_matrix` builds it (optionally keeping
only the pixels of a mask) and :func:`matrix_to_maps` turns per-pixel results back
into images.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_float_array

__all__ = ["finite_mask", "matrix_to_maps", "normalize_axis", "stack_to_matrix"]


def normalize_axis(axis: int, ndim: int, *, name: str = "spectral_axis") -> int:
    """Return ``axis`` as a non-negative index into ``ndim`` dimensions."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimensions.")
    return axis % ndim


def _check_stack(stack: np.ndarray) -> None:
    if stack.ndim < 2:
        raise ValueError(
            f"A spectral stack needs a spectral axis and at least one spatial axis; got an "
            f"array with shape {stack.shape}. A single spectrum is not an image: pass it "
            "as a (1, n_channels) matrix instead."
        )
    if stack.size == 0:
        raise ValueError(f"The stack is empty (shape {stack.shape}).")


def stack_to_matrix(stack, spectral_axis: int = 0, *, mask=None, dtype=None):
    """Reshape a spectral stack into a pixel-by-channel matrix.

    Parameters
    ----------
    stack : array_like
        Image stack with one spectral axis and one or more spatial axes, e.g.
        ``(C, Y, X)``, ``(Y, X, C)`` or ``(Z, C, Y, X)``.
    spectral_axis : int, default 0
        Position of the spectral axis (negative values count from the end).
    mask : array_like of bool, optional
        Boolean array with the spatial shape; only pixels where it is True become
        rows of ``X`` (in C order).  Use :func:`matrix_to_maps` with the same mask
        to put results back.
    dtype : float dtype, optional
        Force the output dtype.  By default float32 and float64 are kept, integers
        of up to 16 bits become float32 (exact, no overflow) and wider integers
        float64.

    Returns
    -------
    X : ndarray, shape (n_pixels, n_channels)
        Pixel spectra as rows, C-contiguous.  The input is never modified.
    spatial_shape : tuple of int
        Shape of the spatial axes, in their original order.

    Raises
    ------
    ValueError
        For a 1-D or empty stack, a bad axis, or a mask of the wrong shape or one
        that selects no pixel.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.zeros((64, 32, 48), dtype=np.uint16)   # (C, Y, X)
    >>> X, spatial_shape = stack_to_matrix(stack, spectral_axis=0)
    >>> X.shape, X.dtype, spatial_shape
    ((1536, 64), dtype('float32'), (32, 48))
    """
    stack = np.asarray(stack)
    _check_stack(stack)
    axis = normalize_axis(spectral_axis, stack.ndim)
    moved = np.moveaxis(stack, axis, -1)
    spatial_shape = tuple(moved.shape[:-1])
    n_channels = moved.shape[-1]
    X = as_float_array(moved.reshape(-1, n_channels), name="stack", dtype=dtype)
    if mask is not None:
        mask = _check_mask(mask, spatial_shape)
        X = X[mask.reshape(-1)]
    return np.ascontiguousarray(X), spatial_shape


def _check_mask(mask, spatial_shape) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"mask must be boolean, got dtype {mask.dtype}; use (labels > 0).")
    if mask.shape != tuple(spatial_shape):
        raise ValueError(
            f"mask has shape {mask.shape} but the stack's spatial shape is "
            f"{tuple(spatial_shape)}."
        )
    if not mask.any():
        raise ValueError("mask selects no pixel: every pixel is masked out.")
    return mask


def matrix_to_maps(W, spatial_shape, *, mask=None, fill_value=np.nan) -> np.ndarray:
    """Turn per-pixel values ``W (n_pixels, k)`` into ``k`` images.

    Parameters
    ----------
    W : array_like, shape (n_pixels, k)
        One column per component (abundances, scores ...).
    spatial_shape : tuple of int
        The spatial shape returned by :func:`stack_to_matrix`.
    mask : array_like of bool, optional
        The mask given to :func:`stack_to_matrix`; pixels outside it get
        ``fill_value``.
    fill_value : float, default NaN
        Value of masked-out pixels.

    Returns
    -------
    maps : ndarray, shape (k, *spatial_shape)
    """
    W = np.asarray(W)
    if W.ndim == 1:
        W = W[:, None]
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (n_pixels, k), got shape {W.shape}.")
    spatial_shape = tuple(int(s) for s in spatial_shape)
    n_total = int(np.prod(spatial_shape))
    k = W.shape[1]
    if mask is None:
        if W.shape[0] != n_total:
            raise ValueError(
                f"W has {W.shape[0]} rows but spatial shape {spatial_shape} has "
                f"{n_total} pixels; pass the mask used to build X."
            )
        return np.ascontiguousarray(W.T.reshape((k, *spatial_shape)))
    mask = _check_mask(mask, spatial_shape)
    if W.shape[0] != int(mask.sum()):
        raise ValueError(
            f"W has {W.shape[0]} rows but the mask selects {int(mask.sum())} pixels."
        )
    dtype = np.result_type(W.dtype, np.float32) if np.isnan(fill_value) else W.dtype
    maps = np.full((k, n_total), fill_value, dtype=dtype)
    maps[:, mask.reshape(-1)] = W.T
    return maps.reshape((k, *spatial_shape))


def finite_mask(stack, spectral_axis: int = 0) -> np.ndarray:
    """Boolean spatial mask of pixels whose whole spectrum is finite.

    Use it to exclude pixels with NaN or Inf explicitly:
    ``stack_to_matrix(stack, axis, mask=finite_mask(stack, axis))``.
    """
    stack = np.asarray(stack)
    _check_stack(stack)
    axis = normalize_axis(spectral_axis, stack.ndim)
    return np.isfinite(stack).all(axis=axis)
