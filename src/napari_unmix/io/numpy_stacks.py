"""``.npy`` and ``.npz`` stacks: the NumPy branch of :func:`~napari_unmix.io.readers.open_stack`.

``.npy``
    One array; opened lazily (memory-mapped) when larger than the lazy threshold.
``.npz``
    The stack is the array under one of :data:`NPZ_DATA_KEYS` (``stack`` first),
    else the only array with 2 or more dimensions.  Spectral positions come from
    a 1-D array under one of :data:`NPZ_AXIS_KEYS` or any key whose name implies a
    unit (``wavenumber*``, ``wavelength*`` ...); their unit from ``spectral_unit``
    or the key name; the spectral-axis index from ``spectral_axis_index``.
    Members of an ``.npz`` are always read whole.

Both readers return the same kind of dict as
:func:`~napari_unmix.io.tiff_stacks.read_tiff`; the dispatcher applies sidecar
files and the remaining axis rules.  Result bundles (also ``.npz``) are told
apart by the dispatcher before :func:`read_npz` is called.
"""

from __future__ import annotations

import zipfile

import numpy as np

from .lazy import (
    MappedFile,
    check_declared_size,
    dask_name,
    format_size,
    from_mapped_file,
    plane_chunks,
    want_lazy,
)
from .spectral_sidecar import normalise_unit
from .stack import unit_from_key

__all__ = ["NPZ_AXIS_KEYS", "NPZ_DATA_KEYS", "read_npy", "read_npz"]

#: Keys of the stack in an ``.npz``, by precedence.
NPZ_DATA_KEYS = ("stack", "data", "cube", "image", "X")
#: Keys of the spectral positions in an ``.npz``, by precedence.
NPZ_AXIS_KEYS = ("spectral_values", "spectral_axis", "wavenumbers", "wavenumber",
                 "wavenumber_cm1", "wavelengths", "wavelength", "wavelength_nm")


def read_npy(path, *, lazy, threshold) -> dict:
    """Read a ``.npy`` stack, memory-mapped and lazy when it is large.

    Parameters
    ----------
    path : Path
    lazy : bool or None
        True: a dask array; False: in memory; None: lazy above ``threshold``.
    threshold : int or None
        Size in bytes; None: :func:`~napari_unmix.io.lazy.lazy_threshold`.

    Returns
    -------
    dict
        ``data`` (ndarray, or dask array when lazy), ``axes``, ``index``,
        ``values``, ``unit``, ``values_source``, ``series_index`` (all None: a
        ``.npy`` says nothing about its axes), ``guessed`` (False), ``notes`` and
        ``lazy``.

    Raises
    ------
    ValueError
        When the file cannot be read as a ``.npy`` file.
    """
    notes: list[str] = []
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - truncated / not an npy file / object arrays
        raise ValueError(f"{path} could not be read as a .npy file: "
                         f"{type(exc).__name__}: {exc}") from None
    if want_lazy(lazy, mm.nbytes, threshold) and mm.ndim >= 2:
        notes.append(f"{path.name} opened lazily (memory-mapped, {format_size(mm.nbytes)}).")
        order = "F" if mm.flags.f_contiguous and not mm.flags.c_contiguous else "C"
        mapped = MappedFile(path, mm.offset, mm.shape, mm.dtype, order)
        data = from_mapped_file(mapped, plane_chunks(mm.shape), dask_name(path, "npy"))
        is_lazy = True
    else:
        try:  # the memory map already checked that the file holds the data
            check_declared_size(mm.shape, mm.dtype)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        data, is_lazy = np.array(mm), False
    return {"data": data, "axes": None, "index": None, "guessed": False, "values": None,
            "unit": None, "values_source": None, "notes": notes, "lazy": is_lazy,
            "series_index": None}


def _npy_header(fh):
    """(shape, dtype) from the header of an ``.npy`` stream, or None when unreadable."""
    try:
        version = np.lib.format.read_magic(fh)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read(fh)
    except Exception:  # noqa: BLE001 - np.load reports a broken member itself
        return None
    return shape, dtype


def _check_npz_members(path) -> None:
    """Refuse members whose ``.npy`` header declares more than the archive holds.

    A zip entry records its uncompressed size; a member's data cannot be larger (and
    np.load would allocate what the header declares before finding that out).
    """
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                header = _npy_header(fh)
            if header is None or header[1].hasobject:
                continue
            try:
                check_declared_size(*header, stored_bytes=info.file_size, in_memory=False)
            except ValueError as exc:
                raise ValueError(f"{path}: member {info.filename}: {exc}") from None


def _read_npz_arrays(path):
    notes = []
    _check_npz_members(path)
    # an open file object: np.load leaks its own handle when the zip is damaged
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
        keys = list(z.files)
        data_key = next((k for k in NPZ_DATA_KEYS if k in keys), None)
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
        for k in list(NPZ_AXIS_KEYS) + [k for k in keys if unit_from_key(k)]:
            if k in keys and k != data_key and z[k].ndim == 1 and z[k].dtype.kind in "iuf":
                values, axis_key = z[k].astype(np.float64), k
                break
        if "spectral_unit" in keys:
            unit = str(z["spectral_unit"][()])
        elif axis_key is not None:
            unit = unit_from_key(axis_key)
        index = None
        if "spectral_axis_index" in keys:
            index = int(z["spectral_axis_index"][()])
    if data_key not in ("stack",):
        notes.append(f"stack read from the array {data_key!r} of {path.name}.")
    return data, values, unit, index, notes


def read_npz(path, *, lazy, threshold) -> dict:
    """Read the stack of an ``.npz`` file and its spectral positions (always in memory).

    Parameters
    ----------
    path : Path
        An ``.npz`` that is not a result bundle.
    lazy : bool or None
        Only for the note: an ``.npz`` that would have been read lazily says that
        it was read whole.
    threshold : int or None
        Size in bytes; None: :func:`~napari_unmix.io.lazy.lazy_threshold`.

    Returns
    -------
    dict
        ``data`` (ndarray), ``index`` (from ``spectral_axis_index``, or None),
        ``values``/``unit`` (normalised) and ``values_source`` where the file gives
        spectral positions, ``axes`` and ``series_index`` (None), ``guessed``
        (False), ``notes`` and ``lazy`` (False).

    Raises
    ------
    ValueError
        When the file cannot be read as an ``.npz`` file, or no array in it can be
        told to be the stack.
    """
    try:
        data, values, unit, index, notes = _read_npz_arrays(path)
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path} could not be read as a .npz file: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - zip / npy decoding errors
        raise ValueError(f"{path} could not be read as a .npz file: "
                         f"{type(exc).__name__}: {exc}") from None
    source = ".npz arrays" if values is not None else None
    unit = normalise_unit(unit)
    if want_lazy(lazy, data.nbytes, threshold):
        notes.append(f"{path.name} was read whole: arrays in .npz files cannot be "
                     "read lazily (save large stacks as TIFF or .npy).")
    return {"data": data, "axes": None, "index": index, "guessed": False, "values": values,
            "unit": unit, "values_source": source, "notes": notes, "lazy": False,
            "series_index": None}
