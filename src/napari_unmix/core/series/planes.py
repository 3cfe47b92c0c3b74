"""Plane-by-plane access to a series stack of any array type."""

from __future__ import annotations

import numbers

import numpy as np

from ..data import normalize_axis, stack_to_matrix

__all__ = ["SeriesStack", "default_series_axis", "plane_labels"]


def _check_axis(value, ndim, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int (an axis of the stack), got {value!r}.")
    return normalize_axis(int(value), ndim, name=name)


def default_series_axis(ndim: int, spectral_axis: int) -> int | None:
    """The series (z / t) axis of a stack with ``ndim`` axes: its first axis that is
    neither the spectral axis nor one of the last two spatial axes (the Y-X plane),
    e.g. 0 for ``(Z, C, Y, X)``, 1 for ``(C, Z, Y, X)`` and 0 (T) for ``(T, Z, C, Y,
    X)``, whose planes are then volumes.  None for a single spectral image ``(C, Y,
    X)``, which has no such axis.

    Parameters
    ----------
    ndim : int
        Number of axes of the stack.
    spectral_axis : int
        Index of its spectral axis (negative counts from the end).

    Returns
    -------
    int or None
    """
    s = normalize_axis(int(spectral_axis), int(ndim), name="spectral_axis")
    spatial = [i for i in range(int(ndim)) if i != s]
    return spatial[0] if len(spatial) > 2 else None


class SeriesStack:
    """Plane-by-plane access to a series stack of any array type."""

    def __init__(self, stack, series_axis, spectral_axis):
        if not (hasattr(stack, "shape") and hasattr(stack, "ndim")
                and hasattr(stack, "__getitem__")):
            stack = np.asarray(stack)
        self.stack = stack
        shape = tuple(int(s) for s in stack.shape)
        ndim = len(shape)
        if ndim < 3:
            raise ValueError(
                f"A series stack needs a series axis (z or t), a spectral axis and at least "
                f"one spatial axis, e.g. (Z, C, Y, X); got shape {shape}. For a single "
                "spectral image use run_analysis.")
        self.series_axis = _check_axis(series_axis, ndim, "series_axis")
        self.spectral_axis = _check_axis(spectral_axis, ndim, "spectral_axis")
        if self.series_axis == self.spectral_axis:
            raise ValueError(
                f"series_axis and spectral_axis are both axis {self.series_axis} of the stack "
                f"{shape}; they must be different axes (e.g. series_axis=0, spectral_axis=1 "
                "for (Z, C, Y, X)).")
        self.shape = shape
        self.n_planes = shape[self.series_axis]
        if self.n_planes < 1 or 0 in shape:
            raise ValueError(f"The series stack is empty (shape {shape}).")
        # position of the spectral axis once the series axis is taken out
        self.plane_spectral_axis = self.spectral_axis - (self.spectral_axis > self.series_axis)
        plane = [s for i, s in enumerate(shape) if i != self.series_axis]
        self.n_channels = plane[self.plane_spectral_axis]
        self.plane_shape = tuple(s for i, s in enumerate(plane) if i != self.plane_spectral_axis)
        self.n_plane_pixels = int(np.prod(self.plane_shape))

    def plane(self, z) -> np.ndarray:
        """Plane ``z`` as a numpy array (dask / zarr planes are computed here)."""
        index = [slice(None)] * len(self.shape)
        index[self.series_axis] = int(z)
        block = self.stack[tuple(index)]
        if hasattr(block, "compute") and not isinstance(block, np.ndarray):
            block = block.compute()
        return np.asarray(block)

    def matrix(self, z):
        X, _ = stack_to_matrix(self.plane(z), self.plane_spectral_axis)
        return X


def plane_labels(labels, series: SeriesStack, z):
    """The label image of plane ``z``: one plane's labels (used for every plane) or
    the labels of the stack without its spectral axis."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape == series.plane_shape:
        return labels
    per_plane = tuple(s for i, s in enumerate(series.shape) if i != series.spectral_axis)
    if labels.shape == per_plane:
        index = [slice(None)] * labels.ndim
        index[series.series_axis - (series.series_axis > series.spectral_axis)] = z
        return labels[tuple(index)]
    raise ValueError(f"labels has shape {labels.shape}; it must be one plane's spatial shape "
                     f"{series.plane_shape} (used for every plane) or the stack's shape "
                     f"without the spectral axis {per_plane} (one label image per plane).")
