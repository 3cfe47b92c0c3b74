"""Open spectral stacks from files and folders: axes, spectral positions, lazy loading.

:func:`open_stack` is the reader behind the napari plugin (and
:func:`~napari_unmix.io.read_stack`).  It reads

* TIFF, OME-TIFF and ImageJ hyperstacks (any image series of the file),
* Zeiss LSM files (``.lsm``: lambda stacks; :mod:`~napari_unmix.io.lsm_stacks`),
* a folder of TIFF slices, one file per channel,
* ``.npy`` and ``.npz`` arrays,
* zarr arrays and groups and OME-Zarr images (``.zarr`` folders, or folders with
  zarr metadata; :mod:`~napari_unmix.io.zarr_stacks`),

and returns a :class:`~napari_unmix.io.StackData`: the array, the index of its
spectral axis, the spectral positions and their unit where they are known, and
``notes`` saying how the file was read.

Axes
----
TIFF axes come from the file's metadata, never from the array shape: tifffile
decodes ImageJ (``channels``/``slices``/``frames`` and ``order``; an ImageJ file
with ``order=zct`` holds ``C, Z`` planes and reads as ``CZYX``), OME-XML
(``DimensionOrder``, modulo axes such as lambda ``E``) and tifffile's own
"shaped" metadata; a Zeiss LSM file's scan type (``CYX``, ``ZCYX``, ``TCYX``,
``TZCYX`` ...).  Axes of length 1 are dropped (``squeeze=True``) unless
``squeeze=False`` is given.  A file with several image series is read from
series 0 unless ``series=`` says otherwise, and a note says which one was read.

Which axis is spectral
----------------------
In this order: the ``spectral_axis`` argument; an axis labelled ``E`` (lambda),
else ``C`` (channel) (an ``.npz``: its ``spectral_axis_index``; a folder: slices
tagged as channels); else a guess: the only axis that is not ``Y``/``X``, else
axis 0.  Spectral positions (a sidecar file, or values the file holds) are then
checked against that axis, and may pick it where nothing else did (see "Spectral
positions that disagree").  Guesses are flagged (``StackData.guessed`` and a note
naming the axis taken and why).

Spectral positions that disagree
--------------------------------
Spectral positions never re-orient a stack silently.  With ``n`` positions:

* the axis given (``spectral_axis``) or named by the metadata must have ``n``
  channels, else it is an error (naming the sidecar, the axis and its length, and
  the axis that would fit: pass ``spectral_axis`` to take that one);
* otherwise the candidates are the axes of length ``n`` that the metadata does not
  mark as spatial (``Y``/``X``).  The guessed (or default) axis is kept when it is
  one of them (still flagged as a guess when there are several); else the only
  candidate is taken: from a sidecar, flagged as a guess with a note that names the
  sidecar (a separate file may have been written for other data); from values
  stored in the file itself (``.npz`` arrays), as the spectral axis;
* a sidecar that fits no axis, only axes the metadata marks as spatial, or several
  axes none of which is the guessed one, is an error: it was put there on purpose,
  so it is not ignored.  Values stored in the file that fit no axis are dropped with
  a note.

Spectral positions (wavenumbers, wavelengths)
---------------------------------------------
In this order:

1. a *sidecar file* next to the data (it overrides metadata, with a note when
   both exist):

   * for a file ``name.ext``: ``name.spectral.csv`` or ``name.spectral.json``
     (for ``name.ome.tif`` also ``name.ome.spectral.*``); a zarr store
     ``name.zarr`` follows this rule (also ``name.zarr.spectral.*``), then looks
     inside itself as a folder does;
   * for a folder of slices: ``spectral_axis.csv`` or ``spectral_axis.json``
     inside the folder.

   CSV: one value per line (the first column is used), or one line of values,
   separated by ``,`` or white space (``2850.5 2851.0``); or by ``;``, tabs or white
   space, with ``,`` as the decimal mark (``2850,5;2851,0``); lines like
   ``2850,5`` (two columns, or a decimal comma?) are refused, naming the line;
   an optional header line names the unit, e.g. ``wavenumber (cm^-1)`` or just
   ``nm``; lines starting with ``#`` are ignored.  JSON: a list of numbers, or
   ``{"values": [...], "unit": "nm"}`` (``spectral_values`` / ``spectral_unit``
   are accepted as key names too).  A sidecar whose length disagrees with the
   stack is an error (see "Spectral positions that disagree").
2. napari-unmix's own TIFF metadata (:func:`~napari_unmix.io.write_stack_tiff`).
3. OME-XML: a lambda modulo axis with a ``Unit`` (``Start``/``Step`` or
   ``Label`` values), else ``EmissionWavelength`` of every channel.
4. ImageJ slice labels of the channels that all read as ``<number> <unit>``
   with a unit of ``nm`` or ``cm^-1`` (default ``czt`` order only).
5. Zeiss LSM: the centre of every channel's emission range (``ChannelWavelength``,
   metres), in nm; none when a channel has no range (a note says so).
6. ``.npz`` keys (see :mod:`napari_unmix.io.numpy_stacks`).

Folders of slices
-----------------
Every ``*.tif``/``*.tiff`` file in the folder (not in sub-folders, not hidden) is
one slice; files are ordered by natural sort (``ch2`` before ``ch10``).  All
slices must have the same shape.  When the names differ in more than one number
and each varying number follows a tag (``z``, ``t``, ``c``/``ch``/``channel``,
``lambda``) and the numbers form a complete grid, the slices are arranged on
those axes (e.g. ``..._z003_ch07.tif`` -> ``ZCYX``).  Otherwise the slices are
stacked in natural order along axis 0, which is taken as the spectral axis
(flagged as a guess unless the varying number is tagged as a channel).

Lazy loading
------------
A stack larger than :func:`lazy_threshold` bytes (default: 1 GiB or a quarter of
the RAM, whichever is smaller; environment variable
``NAPARI_UNMIX_LAZY_BYTES`` or the ``lazy_threshold`` argument override it) is
returned as a dask array that reads planes on demand: memory-mapped when the
TIFF or ``.npy`` data are stored contiguously and uncompressed, otherwise one
TIFF page per chunk; a zarr store is always read lazily, by its own chunks.  Every
task of such an array reopens the file by path (no memory map or open handle in the
graph), so the graph pickles small and runs on a ``dask.distributed`` cluster.
``.npz`` members are always read whole.

Corrupt files
-------------
Any failure to read gives one :class:`ValueError` naming the file and the
reason.  A TIFF that tifffile reports as corrupted (an error in its log, e.g.
truncated data or invalid page offsets) is refused instead of being read
partially, and so is an OME-TIFF or Micro-Manager series with planes that no
file holds (a file of a multi-file dataset missing, fewer planes than its
OME-XML declares), which tifffile would read as zeros; tifffile warnings are
kept in ``notes``.  The size a header declares (TIFF series, ``.npy``, ``.npz``
members) is checked before anything of that size is allocated: uncompressed data
must fit in the file (the files of a multi-file OME-TIFF, which are read
together; an ``.npz`` member: in its zip entry), and a stack read into memory
must fit in the memory available
(:func:`~napari_unmix.io.lazy.check_declared_size`).  A folder holding a
``result.json`` or ``result.npz`` that cannot be read as a result is refused
rather than read as slices.

Pixel sizes
-----------
The physical pixel size and its unit (OME ``PhysicalSize*``, ImageJ resolution,
unit and spacing, Zeiss LSM voxel sizes, a Leica ``.txt`` file in a slice folder; see
:mod:`~napari_unmix.io.pixel_sizes`) become ``StackData.scale`` / ``units``, one
per axis; the napari layer takes them.

Byte order
----------
Data stored in the other byte order (big-endian ``>f4`` on a little-endian
machine) are returned in the machine's byte order, with the same type (a lazy
stack is converted chunk by chunk).

Modules
-------
This module is the one dispatcher: it holds :func:`open_stack` and
:func:`read_stack`, tells the formats apart and applies sidecar files.  TIFF
and LSM files are read by :mod:`~napari_unmix.io.tiff_stacks` (the LSM metadata by
:mod:`~napari_unmix.io.lsm_stacks`), ``.npy``/``.npz`` by
:mod:`~napari_unmix.io.numpy_stacks`, folders of slices by
:mod:`~napari_unmix.io.slice_folder`, sidecar files by
:mod:`~napari_unmix.io.spectral_sidecar`; lazy arrays are made by
:mod:`~napari_unmix.io.lazy`, and the stack type and the shared axis rules are in
:mod:`~napari_unmix.io.stack`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .lazy import LAZY_ENV, lazy_threshold
from .numpy_stacks import read_npy, read_npz
from .pixel_sizes import axis_scale, leica_pixel_sizes, square_pixels
from .results import OUTPUT_NAMES, RESULT_JSON_FORMAT, is_result_bundle
from .slice_folder import natural_key, read_slice_folder, slice_files
from .spectral_sidecar import (
    FOLDER_SIDECAR_NAMES,
    find_sidecar,
    normalise_unit,
    read_spectral_sidecar,
)
from .stack import (
    LSM_SUFFIXES,
    TIFF_SUFFIXES,
    StackData,
    axis_for_positions,
    check_array,
    check_spectral_axis,
    native_byte_order,
    values_or_none,
)
from .tiff_stacks import read_tiff
from .zarr_stacks import ZARR_SUFFIXES, is_zarr_folder, read_zarr

__all__ = [
    "STACK_FORMATS",
    "register_stack_format",
    "FOLDER_SIDECAR_NAMES",
    "LAZY_ENV",
    "TIFF_SUFFIXES",
    "find_sidecar",
    "lazy_threshold",
    "natural_key",
    "normalise_unit",
    "open_stack",
    "read_slice_folder",
    "read_spectral_sidecar",
    "read_stack",
    "slice_files",
]


# -- sidecar files and axes ---------------------------------------------------------

def _spectral_positions(path, shape, axes, index, how, values, unit, source, notes):
    """Apply the sidecar (or the file's own positions) to the spectral axis; see the
    module docstring, "Spectral positions that disagree"."""
    side = find_sidecar(path)
    reason = None
    if side is not None:
        s_values, s_unit = read_spectral_sidecar(side)
        index, guessed, reason = axis_for_positions(
            f"spectral-axis file {side.name}", len(s_values), path, shape, axes, index, how)
        if values is not None:
            notes.append(f"spectral positions taken from {side.name}, not from the {source}.")
        return index, guessed, reason, s_values, s_unit, side.name
    guessed = how not in ("given", "metadata")
    if values is not None and guessed:
        try:
            index, guessed, reason = axis_for_positions(
                f"the spectral positions in {path.name}", int(np.size(values)), path, shape,
                axes, index, how, stored=True)
        except ValueError:  # they fit no axis: dropped, with a note (open_stack)
            pass
    return index, guessed, reason, values, unit, source


def _refuse_result_folder(path) -> None:
    """A folder with a result's files that is not a readable result: not a stack either."""
    held = [n for n in (OUTPUT_NAMES["json"], OUTPUT_NAMES["bundle"]) if (path / n).exists()]
    if not held:
        return
    json_path = path / OUTPUT_NAMES["json"]
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        why = f"it has no {OUTPUT_NAMES['json']}"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = f"its {OUTPUT_NAMES['json']} is damaged ({type(exc).__name__}: {exc})"
    else:
        ours = isinstance(doc, dict) and doc.get("format") == RESULT_JSON_FORMAT
        if not ours and OUTPUT_NAMES["bundle"] not in held:
            return  # another program's result.json beside the slices
        why = (f"its {OUTPUT_NAMES['bundle']} is missing" if ours else
               f"its {OUTPUT_NAMES['json']} is not a napari-unmix one")
    raise ValueError(
        f"{path} holds {' and '.join(held)} of a napari-unmix result, but {why}, so it cannot "
        "be read as a result, and a result folder is not a stack. Give the stack the result "
        "was made from, or run the analysis again to rewrite the result.")


def _describe_axis(index, axes, shape):
    letter = f"{axes[index]}, " if axes else ""
    return f"axis {index} ({letter}{shape[index]} channels) of shape {tuple(shape)}"


# -- public -------------------------------------------------------------------------

#: File suffix -> the function that reads a stack of that format (see
#: :func:`register_stack_format`).
STACK_FORMATS: dict = {}


def register_stack_format(suffixes, reader) -> None:
    """Read files with these suffixes with ``reader``.

    Parameters
    ----------
    suffixes : iterable of str
        Lower-case file suffixes, e.g. ``(".tif", ".tiff")``.
    reader : callable
        ``reader(path, *, series, squeeze, lazy, threshold) -> dict`` with the keys
        ``data`` (the array, numpy or dask), ``axes`` (letters or None), ``notes``
        (list of str), ``lazy`` (bool), ``index`` (the spectral axis or None),
        ``guessed`` (bool), ``values``, ``unit``, ``values_source`` (spectral
        positions the file holds, or None), ``series_index`` and optionally
        ``pixel_sizes`` (``{letter: (size, unit)}``); see
        :func:`~napari_unmix.io.tiff_stacks.read_tiff` for an example.  The
        sidecar, the spectral-axis rules and the checks are applied by
        :func:`open_stack` afterwards.
    """
    for suffix in suffixes:
        STACK_FORMATS[str(suffix).lower()] = reader


def _numpy_reader(read):
    def reader(path, *, series=None, squeeze=True, lazy=None, threshold=None):
        return read(path, lazy=lazy, threshold=threshold)

    reader.__doc__ = read.__doc__
    return reader


register_stack_format(TIFF_SUFFIXES, read_tiff)
register_stack_format(LSM_SUFFIXES, read_tiff)  # a TIFF with Zeiss's CZ_LSMINFO tag
register_stack_format((".npy",), _numpy_reader(read_npy))
register_stack_format((".npz",), _numpy_reader(read_npz))
register_stack_format(ZARR_SUFFIXES, read_zarr)  # folders (zarr stores), see open_stack


def open_stack(path, *, spectral_axis: int | None = None, series: int | None = None,
               squeeze: bool = True, lazy: bool | None = None,
               lazy_threshold: int | None = None) -> StackData:
    """Read a spectral stack from a file or a folder of slices.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff`` (plain, ImageJ or OME), Zeiss ``.lsm``, ``.npy`` or
        ``.npz`` file, a ``.zarr`` folder (zarr array or group, OME-Zarr image) or a folder of TIFF
        slices.
    spectral_axis : int, optional
        Index of the spectral axis (after squeezing); overrides metadata and
        guesses.
    series : int, optional
        TIFF image series to read (default 0; a note says which was read when the
        file has several; an LSM file's series 1 is its thumbnails).
    squeeze : bool, default True
        Drop axes of length 1 (TIFF).  False keeps every axis the metadata names.
    lazy : bool, optional
        True: return a dask array; False: read into memory; None (default): lazy
        when the stack is larger than ``lazy_threshold`` bytes.
    lazy_threshold : int, optional
        Size in bytes; defaults to :func:`lazy_threshold`.

    Returns
    -------
    StackData
        ``data`` (ndarray, or dask array when lazy), ``spectral_axis``,
        ``spectral_values``/``spectral_unit`` where known, ``axes``, ``guessed`` and
        ``notes`` (also naming the axis taken when it was guessed).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For an unknown file type, a corrupt or truncated file, a result bundle
        (not a stack), mismatched slices, a sidecar that does not fit, or an array
        that is not a stack.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    series_index = None
    zarr_folder = is_zarr_folder(path) and not is_result_bundle(path)
    if path.is_dir() and not zarr_folder:
        if is_result_bundle(path):
            raise ValueError(f"{path} is a napari-unmix result folder, not a stack; read it "
                             "with napari_unmix.io.read_result_bundle (or open it in napari).")
        _refuse_result_folder(path)
        stack = read_slice_folder(path, lazy=lazy, lazy_threshold=lazy_threshold)
        data, axes, notes = stack.data, stack.axes, stack.notes
        index, guessed = stack.spectral_axis, stack.guessed
        values = unit = source = None
        is_lazy = stack.lazy
        pixel_sizes = leica_pixel_sizes(path)
    else:
        if not path.is_file() and not zarr_folder:
            raise ValueError(f"{path} is not a regular file.")
        suffix = ZARR_SUFFIXES[0] if zarr_folder else path.suffix.lower()
        if suffix not in STACK_FORMATS:
            raise ValueError(f"{path}: unknown file type {suffix!r}; napari-unmix reads "
                             f"{', '.join(STACK_FORMATS)} files and folders of TIFF slices.")
        if is_result_bundle(path):
            raise ValueError(f"{path} is a napari-unmix result, not a stack; read it with "
                             "napari_unmix.io.read_result_bundle (or open it in napari).")
        r = STACK_FORMATS[suffix](path, series=series, squeeze=squeeze, lazy=lazy,
                                  threshold=lazy_threshold)
        data, axes, notes, is_lazy = r["data"], r["axes"], r["notes"], r["lazy"]
        index, guessed = r["index"], r["guessed"]
        values, unit, source = r["values"], r["unit"], r["values_source"]
        series_index = r["series_index"]
        pixel_sizes = r.get("pixel_sizes") or {}
        if not is_lazy:
            data = np.asarray(data)
    check_array(data, path)
    data = native_byte_order(data)
    if spectral_axis is not None:
        index, how = check_spectral_axis(spectral_axis, data.ndim, path), "given"
    else:
        how = None if index is None else ("guess" if guessed else "metadata")
        if index is not None:  # e.g. spectral_axis_index of an .npz
            index = check_spectral_axis(index, data.ndim, path)
    index, guessed, reason, values, unit, source = _spectral_positions(
        path, data.shape, axes, index, how, values, unit, source, notes)
    if index is None:
        index, guessed = 0, True
    index = check_spectral_axis(index, data.ndim, path)
    n = int(data.shape[index])
    checked = values_or_none(values, n)
    if values is not None and checked is None:
        notes.append(f"the file's spectral positions ({np.size(values)} values) do not fit "
                     f"the {n} channels of axis {index}; they were not used.")
        unit = None
    if guessed:
        why = f", {reason}" if reason else ""
        notes.append(f"spectral axis guessed as {_describe_axis(index, axes, data.shape)}{why}; "
                     "pass spectral_axis to choose another.")
    pixel_sizes, square = square_pixels(axes, pixel_sizes)
    if square:
        notes.append(square)
    scale, units = axis_scale(axes, data.ndim, pixel_sizes, spectral_axis=index)
    return StackData(data=data, spectral_axis=index, spectral_values=checked,
                     spectral_unit=unit if checked is not None else None, axes=axes,
                     guessed=guessed, path=path, notes=notes, lazy=is_lazy,
                     series=series_index, scale=scale, units=units)


def read_stack(path, *, spectral_axis: int | None = None) -> StackData:
    """Read a hyperspectral stack into memory and work out its spectral axis.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff``, ``.lsm``, ``.npy`` or ``.npz`` file, or a folder of
        TIFF slices (one file per channel).
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
    open_stack : the same with lazy loading, TIFF series choice and ``squeeze``.
    """
    return open_stack(path, spectral_axis=spectral_axis, lazy=False)
