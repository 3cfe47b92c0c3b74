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

__all__ = ["LSM_SUFFIXES", "META_KEY", "SPATIAL_LETTERS", "SPECTRAL_LETTERS", "STACK_SUFFIXES",
           "StackData", "TIFF_SUFFIXES", "axis_from_letters", "axis_for_positions", "check_array",
           "check_spectral_axis", "native_byte_order", "unit_from_key", "values_or_none"]

#: File name suffixes read as TIFF.
TIFF_SUFFIXES = (".tif", ".tiff")

#: File name suffixes of Zeiss LSM files (TIFF files with Zeiss's metadata).
LSM_SUFFIXES = (".lsm",)

#: File name endings :func:`~napari_unmix.io.read_stack` understands.
STACK_SUFFIXES = (*TIFF_SUFFIXES, *LSM_SUFFIXES, ".npy", ".npz")

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
    scale, units : tuple or None
        The physical size of a step along every axis and its unit (``"um"`` ...;
        ``1.0`` and ``""`` for axes without one, e.g. the spectral axis), when the
        metadata give pixel sizes (see :mod:`napari_unmix.io.pixel_sizes`).
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
    scale: tuple | None = None
    units: tuple | None = None

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
        When the data are not integers or floats (true/false data is a mask, not
        intensities), have fewer than 2 dimensions, or are empty.
    """
    if data.dtype.kind == "b":
        raise ValueError(f"{path} holds true/false (boolean) data: a mask, not spectral "
                         "intensities. Open the stack itself; a mask of regions belongs in "
                         "a label image (the dock's Labels layer, or --labels).")
    if data.dtype.kind not in "iuf":
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


def native_byte_order(data):
    """``data`` in the machine's byte order (a big-endian stack becomes little-endian here).

    Parameters
    ----------
    data : ndarray or dask array

    Returns
    -------
    ndarray or dask array
        ``data`` itself when its byte order is already native (or does not matter),
        else a converted copy (lazily converted, chunk by chunk, for a dask array).
    """
    dtype = data.dtype
    if dtype.isnative or dtype.byteorder == "|":
        return data
    return data.astype(dtype.newbyteorder("="))


def _axis_words(indices, axes) -> str:
    """``"axis 2 (X)"``, ``"axes 1 and 2"`` ..."""
    words = [f"{i} ({axes[i]})" if axes else str(i) for i in indices]
    if len(words) == 1:
        return f"axis {words[0]}"
    return f"axes {', '.join(words[:-1])} and {words[-1]}"


def axis_for_positions(name, n, path, shape, axes, index, how, *, stored=False):
    """The spectral axis of a stack, given ``n`` spectral positions meant for it.

    The positions (a sidecar file, or values the file holds) never silently choose
    another axis than the one the argument or the metadata names:

    * ``how`` is ``"given"`` (the ``spectral_axis`` argument) or ``"metadata"`` (the
      file names its spectral axis): axis ``index`` must have ``n`` channels;
    * otherwise (``"guess"``: a rule guessed ``index``; ``None``: nothing did, the
      default is axis 0) the candidates are the axes of length ``n`` that the
      metadata does not mark as spatial (``Y``, ``X``).  The default axis when it is
      one of them (a guess unless it is the only one); else the only candidate,
      flagged as a guess with the reason.  No candidate, or several without the
      default among them, is a disagreement.

    Parameters
    ----------
    name : str
        What holds the positions, for the messages (``"spectral-axis file x.csv"``).
    n : int
        Number of positions.
    path : str or Path
        The stack, for the messages.
    shape : tuple of int
    axes : str or None
        One letter per axis, when the file says.
    index : int or None
        The axis the argument, the metadata or a guess names.
    how : {"given", "metadata", "guess", None}
    stored : bool, default False
        True for positions stored in the stack's own file (an ``.npz`` array, TIFF
        metadata): written with the stack, their only candidate axis is the spectral
        axis, not a guess.  A sidecar file (False) may have been written for other
        data, so an axis that only it picks is flagged as a guess.

    Returns
    -------
    index : int
    guessed : bool
    reason : str or None
        Why a guessed axis was taken (for the note), or None.

    Raises
    ------
    ValueError
        When the positions disagree with the stack: the message names ``name``, the
        axis lengths, and what to do.
    """
    shape = tuple(int(s) for s in shape)
    fits = [i for i, size in enumerate(shape) if size == n]
    spatial = [i for i in fits if axes and axes[i] in SPATIAL_LETTERS]
    candidates = [i for i in fits if i not in spatial]
    default = 0 if index is None else int(index)
    if how in ("given", "metadata") and shape[default] == n:
        return default, False, None
    if how not in ("given", "metadata"):
        if default in candidates:
            return default, len(candidates) > 1, (
                None if len(candidates) == 1 else
                f"the default, one of the axes that fit {name} "
                f"({_axis_words(candidates, axes)})")
        if len(candidates) == 1 and stored:
            return candidates[0], False, None
        if len(candidates) == 1:
            return candidates[0], True, (
                f"the only axis with one channel per value of {name} (nothing in the file "
                f"names the spectral axis; {_axis_words([default], axes)} has "
                f"{shape[default]} channels)")
    by = {"given": "as given", "metadata": "as the file's metadata says"}.get(
        how, "by default, as nothing in the file names it")
    axis = f"{_axis_words([default], axes)}, {shape[default]} channels, {by}"
    stack = f"{Path(path).name} (shape {shape})"
    if not fits and how not in ("given", "metadata"):
        raise ValueError(f"{name} has {n} values but no axis of {stack} has that length; give "
                         f"it one value per channel of the spectral axis ({axis}).")
    others = [i for i in candidates if i != default]
    if others:
        hint = f"; its length fits {_axis_words(others, axes)}"
        fix = (f", or pass spectral_axis={others[0]} if that is the spectral axis"
               if len(others) == 1 else ", or pass spectral_axis to say which axis is spectral")
    elif not fits:
        hint, fix = "; no axis has that length", ""
    else:
        hint = (f"; its length fits only {_axis_words(spatial, axes)}, which the file's "
                "metadata marks as spatial")
        fix = ""
    raise ValueError(
        f"{name} has {n} values but the spectral axis of {stack} is {axis}{hint}. Give it "
        f"one value per channel of {_axis_words([default], axes)}{fix}.")
