"""Reading hyperspectral stacks from TIFF, ``.npy`` and ``.npz`` files.

Which axis is spectral
----------------------
1. ``spectral_axis=`` given by the caller always wins.
2. TIFF: the axes of the first image series (tifffile reads them from ImageJ
   hyperstack, OME or tifffile "shaped" metadata).  An axis labelled ``E``
   (lambda) or else ``C`` (channel) is the spectral axis.  Without either, if
   exactly one axis is neither ``Y`` nor ``X`` it is taken (e.g. a plain ImageJ
   stack, labelled ``Z`` or ``I``); this is a guess and is flagged as such.
3. ``.npz``: a 1-D array of spectral positions (see below) whose length matches
   exactly one axis of the stack marks that axis.
4. Otherwise the **first** axis is taken, the project's ``(C, Y, X)``
   convention, and flagged as a guess (``StackData.guessed``): pass
   ``spectral_axis`` when the file is laid out differently, e.g. ``(Y, X, C)``.

Spectral positions and unit are read from napari-unmix's own TIFF metadata
(written by :func:`napari_unmix.io.writers.write_stack_tiff`) and from ``.npz``
keys ``spectral_values`` / ``spectral_axis`` / ``wavenumber*`` / ``wavelength*``
(unit from ``spectral_unit``, or ``cm^-1`` / ``nm`` from the key name).

Singleton axes are squeezed (tifffile's default).  A TIFF file with several image
series is read from its first series; ``StackData.notes`` says so.
"""

from __future__ import annotations

import json
import zipfile
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
    """

    data: np.ndarray
    spectral_axis: int
    spectral_values: np.ndarray | None = None
    spectral_unit: str | None = None
    axes: str | None = None
    guessed: bool = False
    path: Path | None = None
    notes: list = field(default_factory=list)

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


def _read_tiff(path):
    import tifffile

    notes = []
    data = None
    try:
        with tifffile.TiffFile(path) as tf:
            if tf.series:
                if len(tf.series) > 1:
                    notes.append(f"{path.name} has {len(tf.series)} image series; series 0 "
                                 f"(shape {tuple(tf.series[0].shape)}) was read.")
                series = tf.series[0]
                axes = series.axes
                data = series.asarray()
                meta = _tiff_meta(tf)
    except Exception as exc:  # tifffile raises many types for corrupt or truncated files
        raise ValueError(f"{path} could not be read as a TIFF file: "
                         f"{type(exc).__name__}: {exc}") from None
    if data is None:
        raise ValueError(f"{path} contains no image data.")
    if len(axes) != data.ndim:
        axes = None
    return data, axes, meta, notes


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
    with np.load(path, allow_pickle=False) as z:
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
    """Read a hyperspectral stack and work out its spectral axis.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff``, ``.npy`` or ``.npz`` file.
    spectral_axis : int, optional
        Index of the spectral axis; overrides metadata and guesses.

    Returns
    -------
    StackData
        The array, its spectral-axis index, and spectral positions / unit where
        the file gives them.  The module docstring lists the rules.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For an unknown suffix, an unreadable or corrupt file, non-numeric data or
        an array with fewer than 2 dimensions.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a stack file "
                         f"({', '.join(STACK_SUFFIXES)}).")
    suffix = path.suffix.lower()
    axes = None
    values = unit = None
    index = None
    guessed = False
    notes: list[str] = []
    if suffix in (".tif", ".tiff"):
        data, axes, meta, notes = _read_tiff(path)
        values = meta.get("spectral_values")
        unit = meta.get("spectral_unit")
        if meta.get("spectral_axis_index") is not None and axes is None:
            index = int(meta["spectral_axis_index"])
        if axes is not None:
            if all(a in _SPATIAL_LETTERS for a in axes) or (axes[-1] == "S" and all(
                    a in _SPATIAL_LETTERS for a in axes[:-1])):
                raise ValueError(
                    f"{path} holds a single image (axes {axes}, shape {data.shape}), not a "
                    "spectral stack: it has no channel axis. Combine the channel images into "
                    "one multi-page TIFF (e.g. in Fiji: Images to Stack) and read that.")
            index, guessed = _axis_from_letters(axes)
    elif suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"{path} could not be read as a .npy file: "
                             f"{type(exc).__name__}: {exc}") from None
    elif suffix == ".npz":
        try:
            data, values, unit, index, notes = _read_npz(path)
        except ValueError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ValueError(f"{path} could not be read as a .npz file: "
                             f"{type(exc).__name__}: {exc}") from None
    else:
        raise ValueError(f"{path}: unknown file type {suffix!r}; napari-unmix reads "
                         f"{', '.join(STACK_SUFFIXES)} stacks.")
    data = np.asarray(data)
    _check_array(data, path)

    if spectral_axis is not None:
        index, guessed = _check_spectral_axis(spectral_axis, data.ndim, path), False
    elif index is None and values is not None:
        matches = [i for i, n in enumerate(data.shape) if n == len(values)]
        if matches:
            index, guessed = matches[0], len(matches) > 1
    if index is None:
        index, guessed = 0, True
    index = _check_spectral_axis(index, data.ndim, path)
    n = data.shape[index]
    checked = _values_or_none(values, n)
    if values is not None and checked is None:
        notes.append(f"the file's spectral positions ({np.size(values)} values) do not fit "
                     f"the {n} channels of axis {index}; they were not used.")
        unit = None
    if guessed:
        notes.append(f"spectral axis guessed as axis {index} (size {n}) of shape "
                     f"{data.shape}; pass spectral_axis to choose another.")
    return StackData(data=data, spectral_axis=index, spectral_values=checked,
                     spectral_unit=unit if checked is not None else None, axes=axes,
                     guessed=guessed, path=path, notes=notes)
