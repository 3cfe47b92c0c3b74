"""The stack data type and the axis rules that every stack reader shares.

:class:`StackData` is what :func:`~napari_unmix.io.readers.open_stack` (and
:func:`~napari_unmix.io.read_stack`) return: the array, the index of its
spectral axis, the spectral positions and their unit where known, and notes on
how the file was read.  The helpers here are the rules common to the format
readers (:mod:`~napari_unmix.io.tiff_stacks`, :mod:`~napari_unmix.io.numpy_stacks`,
:mod:`~napari_unmix.io.slice_folder`) and the dispatcher
(:mod:`~napari_unmix.io.readers`): which axis letters mean "spectral", checks of
a spectral-axis index and of the array, spectral positions that fit, the unit a
key name implies.

This module is a leaf of :mod:`napari_unmix.io`: it imports none of its siblings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["META_KEY", "SPATIAL_LETTERS", "SPECTRAL_LETTERS", "STACK_SUFFIXES", "StackData",
           "TIFF_SUFFIXES", "axis_from_letters", "check_array", "check_spectral_axis",
           "unit_from_key", "values_or_none"]

#: File name suffixes read as TIFF.
TIFF_SUFFIXES = (".tif", ".tiff")

#: File name endings :func:`~napari_unmix.io.read_stack` understands.
STACK_SUFFIXES = (*TIFF_SUFFIXES, ".npy", ".npz")

#: Key of napari-unmix's own metadata in TIFF files.
META_KEY = "napari_unmix"

#: tifffile axis letters of a spectral axis, by precedence: lambda, then channel.
SPECTRAL_LETTERS = ("E", "C")
#: tifffile axis letters of the image plane.
SPATIAL_LETTERS = ("Y", "X")


@dataclass(eq=False)
class StackData:
    """A stack read from a file, with what is known about its spectral axis.

    Attributes
    ----------
    data : ndarray
        The array, in the file's dtype and axis order.
    spectral_axis : int
        Index of the spectral axis in ``data`` (what ``stack_to_matrix`` takes).
    spectral_values : ndarray or None
        Position of every channel (wavenumbers, wavelengths ...), if known.
    spectral_unit : str or None
        Unit of ``spectral_values``, e.g. ``"cm^-1"`` or ``"nm"``.
    axes : str or None
        One letter per axis of ``data`` (tifffile's codes) when the file says.
    guessed : bool
        True when the spectral axis was guessed, not given or read from metadata.
    path : Path
    notes : list of str
        Anything the user should know about how the file was read.
    lazy : bool
        True when ``data`` is a dask array that reads the file on demand.
    series : int or None
        TIFF: index of the image series that was read.
    """

    data: np.ndarray
    spectral_axis: int
    spectral_values: np.ndarray | None = None
    spectral_unit: str | None = None
    axes: str | None = None
    guessed: bool = False
    path: Path | None = None
    notes: list = field(default_factory=list)
    lazy: bool = False
    series: int | None = None

    @property
    def n_channels(self) -> int:
        """Length of the spectral axis."""
        return int(self.data.shape[self.spectral_axis])


def check_spectral_axis(spectral_axis, ndim, path) -> int:
    """Check a spectral-axis index against the number of dimensions.

    Parameters
    ----------
    spectral_axis : int
        The index; negative values count from the end.
    ndim : int
        Number of dimensions of the stack.
    path : str or Path
        The file, for the messages.

    Returns
    -------
    int
        The index in ``0 .. ndim - 1``.

    Raises
    ------
    TypeError
        When ``spectral_axis`` is not an int (a bool is not one).
    ValueError
        When it is out of range.
    """
    if isinstance(spectral_axis, bool) or not isinstance(spectral_axis, (int, np.integer)):
        raise TypeError(f"spectral_axis must be an int, got {spectral_axis!r}.")
    if not -ndim <= spectral_axis < ndim:
        raise ValueError(f"spectral_axis={spectral_axis} is out of range for {path}, whose "
                         f"stack has {ndim} dimension(s).")
    return int(spectral_axis) % ndim


def check_array(data, path) -> None:
    """Check that an array can be a spectral stack.

    Parameters
    ----------
    data : ndarray or dask array
    path : str or Path
        The file, for the messages.

    Raises
    ------
    ValueError
        When the data are not integers or floats, have fewer than 2 dimensions, or
        are empty.
    """
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{path} holds {data.dtype} data, not real numbers; a stack must be "
                         "integers or floats.")
    if data.ndim < 2:
        raise ValueError(
            f"{path} holds an array of shape {data.shape}; a spectral stack needs a spectral "
            "axis and at least one spatial axis (e.g. (C, Y, X)).")
    if data.size == 0:
        raise ValueError(f"{path} holds an empty array (shape {data.shape}).")


def unit_from_key(key: str) -> str | None:
    """The spectral unit a key name implies (``"wavenumber_cm1"`` -> ``"cm^-1"``).

    Parameters
    ----------
    key : str
        E.g. an array name in an ``.npz`` file.

    Returns
    -------
    str or None
        ``"cm^-1"``, ``"nm"``, or None when the name says neither.
    """
    k = key.lower()
    if "wavenumber" in k or "cm1" in k or "cm-1" in k or "cm^-1" in k:
        return "cm^-1"
    if "wavelength" in k or k.endswith("_nm") or "lambda" in k:
        return "nm"
    return None


def values_or_none(values, n):
    """Spectral positions that fit ``n`` channels, or None.

    Parameters
    ----------
    values : array_like or None
    n : int
        Number of channels.

    Returns
    -------
    ndarray of float64, shape (n,), or None
        None when ``values`` is None, has another length or holds a non-finite value.
    """
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.shape != (n,) or not np.isfinite(values).all():
        return None
    return values


def axis_from_letters(axes):
    """The spectral axis named by tifffile axis letters.

    Parameters
    ----------
    axes : str
        One letter per axis, e.g. ``"ZCYX"``.

    Returns
    -------
    index : int or None
        The axis labelled ``E`` (lambda), else ``C`` (channel), else the only axis
        that is neither ``Y`` nor ``X``; None when none of these applies.
    guessed : bool
        False for a labelled axis, True otherwise.
    """
    for letter in SPECTRAL_LETTERS:
        if letter in axes:
            return axes.index(letter), False
    others = [i for i, a in enumerate(axes) if a not in SPATIAL_LETTERS]
    if len(others) == 1 and len(axes) >= 2:
        return others[0], True
    return None, True
