"""Reading hyperspectral stacks: :func:`read_stack` and :class:`StackData`.

:func:`read_stack` reads a stack into memory; it is
:func:`napari_unmix.io.readers.open_stack` with ``lazy=False`` (whose docstring
gives the full rules: TIFF/OME/ImageJ axes from metadata, folders of slices,
sidecar files with spectral positions, lazy loading).  In short, the spectral
axis is, in this order:

1. ``spectral_axis=`` given by the caller;
2. TIFF: the axis labelled ``E`` (lambda) or else ``C`` (channel) in the image
   series' metadata (ImageJ hyperstack, OME or tifffile "shaped" metadata);
3. the one axis whose length matches the spectral positions of a sidecar file or
   of an ``.npz`` (a 1-D array under ``spectral_values`` / ``spectral_axis`` /
   ``wavenumber*`` / ``wavelength*``, unit from ``spectral_unit`` or the key name);
4. TIFF: the only axis that is neither ``Y`` nor ``X`` (a plain ImageJ stack);
5. the **first** axis, the project's ``(C, Y, X)`` convention.

Rules 3 (when several axes match), 4 and 5 are guesses, flagged in
``StackData.guessed`` and the notes: pass ``spectral_axis`` when the file is laid
out differently, e.g. ``(Y, X, C)``.

Singleton axes are squeezed (tifffile's default).  A TIFF file with several image
series is read from its first series; ``StackData.notes`` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["STACK_SUFFIXES", "StackData", "read_stack"]

#: File name endings :func:`read_stack` understands.
STACK_SUFFIXES = (".tif", ".tiff", ".npy", ".npz")

#: Key of napari-unmix's own metadata in TIFF files.
META_KEY = "napari_unmix"

_SPECTRAL_LETTERS = ("E", "C")
_SPATIAL_LETTERS = ("Y", "X")


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
        return int(self.data.shape[self.spectral_axis])


def _check_spectral_axis(spectral_axis, ndim, path):
    if isinstance(spectral_axis, bool) or not isinstance(spectral_axis, (int, np.integer)):
        raise TypeError(f"spectral_axis must be an int, got {spectral_axis!r}.")
    if not -ndim <= spectral_axis < ndim:
        raise ValueError(f"spectral_axis={spectral_axis} is out of range for {path}, whose "
                         f"stack has {ndim} dimension(s).")
    return int(spectral_axis) % ndim


def _check_array(data, path):
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{path} holds {data.dtype} data, not real numbers; a stack must be "
                         "integers or floats.")
    if data.ndim < 2:
        raise ValueError(
            f"{path} holds an array of shape {data.shape}; a spectral stack needs a spectral "
            "axis and at least one spatial axis (e.g. (C, Y, X)).")
    if data.size == 0:
        raise ValueError(f"{path} holds an empty array (shape {data.shape}).")


def _unit_from_key(key: str) -> str | None:
    k = key.lower()
    if "wavenumber" in k or "cm1" in k or "cm-1" in k or "cm^-1" in k:
        return "cm^-1"
    if "wavelength" in k or k.endswith("_nm") or "lambda" in k:
        return "nm"
    return None


def _values_or_none(values, n):
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.shape != (n,) or not np.isfinite(values).all():
        return None
    return values


# -- TIFF ---------------------------------------------------------------------------

def _tiff_meta(tf) -> dict:
    """napari-unmix's own metadata of a TIFF file, if any."""
    try:
        if tf.is_imagej:
            props = (tf.imagej_metadata or {}).get("Properties") or {}
            if META_KEY in props:
                return json.loads(props[META_KEY])
        if tf.is_shaped:
            meta = tf.shaped_metadata
            if meta and isinstance(meta[0], dict):
                return dict(meta[0].get(META_KEY) or {})
    except (ValueError, TypeError, KeyError):  # broken metadata: ignore it, say nothing
        return {}
    return {}


def _axis_from_letters(axes):
    """(index, guessed) from tifffile axis letters, or (None, True)."""
    for letter in _SPECTRAL_LETTERS:
        if letter in axes:
            return axes.index(letter), False
    others = [i for i, a in enumerate(axes) if a not in _SPATIAL_LETTERS]
    if len(others) == 1 and len(axes) >= 2:
        return others[0], True
    return None, True


# -- numpy --------------------------------------------------------------------------

_NPZ_DATA_KEYS = ("stack", "data", "cube", "image", "X")
_NPZ_AXIS_KEYS = ("spectral_values", "spectral_axis", "wavenumbers", "wavenumber",
                  "wavenumber_cm1", "wavelengths", "wavelength", "wavelength_nm")


def _read_npz(path):
    notes = []
    # an open file object: np.load leaks its own handle when the zip is damaged
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
        keys = list(z.files)
        data_key = next((k for k in _NPZ_DATA_KEYS if k in keys), None)
        if data_key is None:
            candidates = [k for k in keys if z[k].ndim >= 2]
            if len(candidates) != 1:
                raise ValueError(
                    f"{path} holds arrays {', '.join(keys) or '(none)'}; store the stack "
                    f"under the key 'stack' (or as the only array with 2 or more "
                    "dimensions) so that it can be found.")
            data_key = candidates[0]
        data = z[data_key]
        values = unit = axis_key = None
        for k in list(_NPZ_AXIS_KEYS) + [k for k in keys if _unit_from_key(k)]:
            if k in keys and k != data_key and z[k].ndim == 1 and z[k].dtype.kind in "iuf":
                values, axis_key = z[k].astype(np.float64), k
                break
        if "spectral_unit" in keys:
            unit = str(z["spectral_unit"][()])
        elif axis_key is not None:
            unit = _unit_from_key(axis_key)
        index = None
        if "spectral_axis_index" in keys:
            index = int(z["spectral_axis_index"][()])
    if data_key not in ("stack",):
        notes.append(f"stack read from the array {data_key!r} of {path.name}.")
    return data, values, unit, index, notes


# -- public -------------------------------------------------------------------------

def read_stack(path, *, spectral_axis: int | None = None) -> StackData:
    """Read a hyperspectral stack into memory and work out its spectral axis.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff``, ``.npy`` or ``.npz`` file, or a folder of TIFF slices
        (one file per channel).
    spectral_axis : int, optional
        Index of the spectral axis; overrides metadata and guesses.

    Returns
    -------
    StackData
        The array (always a NumPy array), its spectral-axis index, and spectral
        positions / unit where the file or a sidecar file gives them.  The module
        docstring lists the rules.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For an unknown suffix, an unreadable or corrupt file, non-numeric data or
        an array with fewer than 2 dimensions.

    See Also
    --------
    napari_unmix.io.readers.open_stack : the same with lazy loading, TIFF series
        choice and ``squeeze``.
    """
    from .readers import open_stack

    return open_stack(path, spectral_axis=spectral_axis, lazy=False)
