"""Open spectral stacks from files and folders: axes, spectral positions, lazy loading.

:func:`open_stack` is the reader behind the napari plugin (and
:func:`~napari_unmix.io.read_stack`).  It reads

* TIFF, OME-TIFF and ImageJ hyperstacks (any image series of the file),
* a folder of TIFF slices, one file per channel,
* ``.npy`` and ``.npz`` arrays,

and returns a :class:`~napari_unmix.io.StackData`: the array, the index of its
spectral axis, the spectral positions and their unit where they are known, and
``notes`` saying how the file was read.

Axes
----
TIFF axes come from the file's metadata, never from the array shape: tifffile
decodes ImageJ (``channels``/``slices``/``frames`` and ``order``; an ImageJ file
with ``order=zct`` holds ``C, Z`` planes and reads as ``CZYX``), OME-XML
(``DimensionOrder``, modulo axes such as lambda ``E``) and tifffile's own
"shaped" metadata.  Axes of length 1 are dropped (``squeeze=True``) unless
``squeeze=False`` is given.  A file with several image series is read from
series 0 unless ``series=`` says otherwise, and a note says which one was read.

Which axis is spectral
----------------------
In this order: the ``spectral_axis`` argument; an axis labelled ``E`` (lambda),
else ``C`` (channel); the axis whose length matches the spectral positions of a
sidecar file (or of an ``.npz``); the only axis that is not ``Y``/``X``; else
axis 0.  The last two, and a length match that fits several axes (the first is
taken), are guesses and are flagged (``StackData.guessed`` and a note naming the
axis taken).

Spectral positions (wavenumbers, wavelengths)
---------------------------------------------
In this order:

1. a *sidecar file* next to the data (it overrides metadata, with a note when
   both exist):

   * for a file ``name.ext``: ``name.spectral.csv`` or ``name.spectral.json``
     (for ``name.ome.tif`` also ``name.ome.spectral.*``);
   * for a folder of slices: ``spectral_axis.csv`` or ``spectral_axis.json``
     inside the folder.

   CSV: one value per line (the first column is used), or one line of values;
   an optional header line names the unit, e.g. ``wavenumber (cm^-1)`` or just
   ``nm``; lines starting with ``#`` are ignored.  JSON: a list of numbers, or
   ``{"values": [...], "unit": "nm"}`` (``spectral_values`` / ``spectral_unit``
   are accepted as key names too).  A sidecar whose length does not fit the
   spectral axis is an error: it was put there on purpose, so it is not ignored.
2. napari-unmix's own TIFF metadata (:func:`~napari_unmix.io.write_stack_tiff`).
3. OME-XML: a lambda modulo axis with a ``Unit`` (``Start``/``Step`` or
   ``Label`` values), else ``EmissionWavelength`` of every channel.
4. ImageJ slice labels of the channels that all read as ``<number> <unit>``
   with a unit of ``nm`` or ``cm^-1`` (default ``czt`` order only).
5. ``.npz`` keys (see :mod:`napari_unmix.io.stack`).

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
TIFF page per chunk.  ``.npz`` members are always read whole.

Corrupt files
-------------
Any failure to read gives one :class:`ValueError` naming the file and the
reason.  A TIFF that tifffile reports as corrupted (an error in its log, e.g.
truncated data or invalid page offsets) is refused instead of being read
partially; tifffile warnings are kept in ``notes``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np

from .bundle import is_result_bundle
from .stack import (
    _SPATIAL_LETTERS,
    META_KEY,
    STACK_SUFFIXES,
    StackData,
    _axis_from_letters,
    _check_array,
    _check_spectral_axis,
    _read_npz,
    _tiff_meta,
    _values_or_none,
)

__all__ = [
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
    "slice_files",
]

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")

#: Environment variable that sets the lazy-loading threshold in bytes.
LAZY_ENV = "NAPARI_UNMIX_LAZY_BYTES"

#: Sidecar names inside a folder of slices.
FOLDER_SIDECAR_NAMES = ("spectral_axis.csv", "spectral_axis.json")

_GIB = 1 << 30


# -- small helpers ------------------------------------------------------------------

def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value (``ch2`` < ``ch10``)."""
    parts = re.split(r"(\d+)", str(name))
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p.lower()) for p in parts)


_UNIT_ALIASES = {
    "cm^-1": "cm^-1", "cm-1": "cm^-1", "1/cm": "cm^-1", "cm⁻¹": "cm^-1", "/cm": "cm^-1",
    "wavenumber": "cm^-1", "wavenumbers": "cm^-1",
    "nm": "nm", "nanometer": "nm", "nanometers": "nm", "nanometre": "nm", "nanometres": "nm",
    "wavelength": "nm",
    "um": "um", "µm": "um", "μm": "um", "micron": "um", "microns": "um",
}


def normalise_unit(unit) -> str | None:
    """Canonical spelling of a spectral unit (``"cm-1"`` -> ``"cm^-1"``); others unchanged."""
    if unit is None:
        return None
    text = str(unit).strip()
    if not text:
        return None
    return _UNIT_ALIASES.get(text.lower(), text)


def _total_ram() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def lazy_threshold() -> int:
    """Size in bytes above which stacks open lazily (as dask arrays).

    ``$NAPARI_UNMIX_LAZY_BYTES`` if set (e.g. ``2e9``), else 1 GiB or a quarter of
    the physical memory, whichever is smaller.
    """
    env = os.environ.get(LAZY_ENV)
    if env:
        try:
            value = float(env)
        except ValueError:
            raise ValueError(f"${LAZY_ENV}={env!r} is not a number of bytes; set it to e.g. "
                             "2e9 or unset it.") from None
        if not value >= 0:
            raise ValueError(f"${LAZY_ENV}={env!r} must be >= 0 bytes.")
        return int(value)
    ram = _total_ram()
    return min(_GIB, ram // 4) if ram else _GIB


def _want_lazy(lazy, nbytes, threshold) -> bool:
    if lazy is not None:
        return bool(lazy)
    threshold = lazy_threshold() if threshold is None else threshold
    return nbytes > threshold


def _plane_chunks(shape, axes=None) -> tuple:
    """One chunk per image plane: from axis ``Y`` on (when known), else the last two axes."""
    first = axes.index("Y") if axes and "Y" in axes and len(axes) == len(shape) else \
        max(0, len(shape) - 2)
    return tuple(1 for _ in shape[:first]) + tuple(shape[first:])


def _dask_name(path, *parts) -> str:
    """A dask key for a lazily read file, from its identity (so dask never hashes the data)."""
    from dask.base import tokenize

    st = Path(path).stat()
    return "napari-unmix-" + tokenize(str(Path(path).resolve()), st.st_mtime_ns, st.st_size,
                                      *parts)


class _Mapped:
    """Read-only array-like over a memory map: chunks come out as in-memory copies.

    ``dask.array.from_array`` copies objects that have a ``copy`` method (a memory
    map would be read whole); this wrapper has none.
    """

    def __init__(self, mm):
        self._mm = mm
        self.shape = tuple(mm.shape)
        self.dtype = mm.dtype
        self.ndim = mm.ndim

    def __getitem__(self, key):
        return np.array(self._mm[key])


def _from_memmap(mm, chunks, name):
    import dask.array as da

    return da.from_array(_Mapped(mm), chunks=chunks, asarray=True, name=name,
                         meta=np.empty((0,) * mm.ndim, dtype=mm.dtype))


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e8 else f"{nbytes / 1e6:.1f} MB"


# -- sidecar files ------------------------------------------------------------------

def find_sidecar(path) -> Path | None:
    """The spectral-axis sidecar file of a stack file or slice folder, if one exists."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / n for n in FOLDER_SIDECAR_NAMES]
    else:
        stems = [path.name[: -len(path.suffix)] if path.suffix else path.name]
        if stems[0].lower().endswith(".ome"):
            stems.append(stems[0][:-4])
        candidates = [path.with_name(f"{s}.spectral{ext}") for s in stems
                      for ext in (".csv", ".json")]
    found = [c for c in candidates if c.is_file()]
    return found[0] if found else None


def _number(tok: str):
    try:
        return float(tok)
    except ValueError:
        return None


def _unit_of_header(cell: str) -> str | None:
    cell = cell.strip().strip('"').strip()
    m = re.search(r"[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*$", cell)
    if m:
        return normalise_unit(m.group(1))
    unit = normalise_unit(cell)
    return unit if unit in ("cm^-1", "nm", "um") else None


def read_spectral_sidecar(path) -> tuple[np.ndarray, str | None]:
    """Read spectral positions (and their unit) from a sidecar CSV or JSON file.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.json`` file in the format described in this module's
        docstring.

    Returns
    -------
    values : ndarray of float64, shape (n_channels,)
    unit : str or None
        Normalised with :func:`normalise_unit`.

    Raises
    ------
    ValueError
        When the file is not in one of the accepted formats, holds a value that is
        not a finite number, or no values at all.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"spectral-axis file {path} could not be read: {exc}") from None
    unit = None
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"spectral-axis file {path} is not valid JSON: {exc}") from None
        if isinstance(doc, dict):
            raw = doc.get("values", doc.get("spectral_values"))
            unit = normalise_unit(doc.get("unit", doc.get("spectral_unit")))
        else:
            raw = doc
        if not isinstance(raw, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            raise ValueError(f"spectral-axis file {path} must hold a list of numbers or "
                             '{"values": [...], "unit": "..."}.')
        values = np.asarray(raw, dtype=np.float64)
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in re.split(r"[,;\t]", line)]
            rows.append((lineno, cells))
        if rows and _number(rows[0][1][0]) is None:
            unit = _unit_of_header(rows[0][1][0])
            rows = rows[1:]
        if len(rows) == 1 and len(rows[0][1]) > 1:
            cells = [(rows[0][0], c) for c in rows[0][1] if c]
        else:
            cells = [(lineno, r[0]) for lineno, r in rows]
        values = np.empty(len(cells))
        for i, (lineno, tok) in enumerate(cells):
            v = _number(tok)
            if v is None:
                raise ValueError(f"spectral-axis file {path}, line {lineno}: {tok!r} is not a "
                                 "number.")
            values[i] = v
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"spectral-axis file {path} holds no values.")
    if not np.isfinite(values).all():
        raise ValueError(f"spectral-axis file {path} holds non-finite values (NaN or Inf).")
    return values, unit


# -- tifffile log capture -----------------------------------------------------------

class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if record.thread == self.thread:
            self.records.append(record)


@contextlib.contextmanager
def _tifffile_log():
    """Collect what tifffile logs (WARNING and up) in this thread."""
    log = logging.getLogger("tifffile")
    handler = _Capture()
    log.addHandler(handler)
    try:
        yield handler.records
    finally:
        log.removeHandler(handler)


def _messages(records, level) -> list[str]:
    # tifffile prefixes messages with the object's repr, e.g. "<tifffile.TiffPages @8> "
    return [re.sub(r"<tifffile\.\w+[^>]*>\s*", "", r.getMessage()).strip()
            for r in records if r.levelno >= level]


# -- TIFF ---------------------------------------------------------------------------

_LABEL_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(nm|cm\^?-1|cm⁻¹|1/cm)\s*$")


def _ome_values(tf, series_index, axes, letter, n):
    """Spectral positions of axis ``letter`` from OME-XML, or (None, None)."""
    import tifffile

    try:
        doc = tifffile.xml2dict(tf.ome_metadata)["OME"]
    except Exception:  # noqa: BLE001 - broken OME-XML: no values from it
        return None, None
    if letter == "E":
        ann = (doc.get("StructuredAnnotations") or {}).get("XMLAnnotation") or []
        for a in ann if isinstance(ann, list) else [ann]:
            modulo = ((a.get("Value") or {}).get("Modulo") or {}) if isinstance(a, dict) else {}
            for key, mod in modulo.items():
                if not key.startswith("ModuloAlong") or not isinstance(mod, dict):
                    continue
                if str(mod.get("Type", "")).lower() != "lambda" or not mod.get("Unit"):
                    continue
                labels = mod.get("Label")
                if labels is not None:
                    labels = labels if isinstance(labels, list) else [labels]
                    nums = [_number(str(v)) for v in labels]
                    if len(nums) == n and None not in nums:
                        return np.asarray(nums, dtype=np.float64), normalise_unit(mod["Unit"])
                start = _number(str(mod.get("Start", "")))
                step = _number(str(mod.get("Step", "1")))
                if start is not None and step is not None:
                    return start + step * np.arange(n), normalise_unit(mod["Unit"])
        return None, None
    images = doc.get("Image")
    images = images if isinstance(images, list) else [images]
    if series_index >= len(images) or not isinstance(images[series_index], dict):
        return None, None
    channels = (images[series_index].get("Pixels") or {}).get("Channel")
    channels = channels if isinstance(channels, list) else [channels]
    if len(channels) != n or not all(isinstance(c, dict) for c in channels):
        return None, None
    waves = [c.get("EmissionWavelength") for c in channels]
    if any(not isinstance(w, (int, float)) for w in waves):
        return None, None
    unit = normalise_unit(channels[0].get("EmissionWavelengthUnit") or "nm")
    return np.asarray(waves, dtype=np.float64), unit


def _imagej_label_values(tf, n):
    meta = tf.imagej_metadata or {}
    if str(meta.get("order", "czt")).lower() not in ("czt", "default"):
        return None, None
    labels = meta.get("Labels")
    labels = [labels] if isinstance(labels, str) else labels
    if not labels or len(labels) < n:
        return None, None
    found = [_LABEL_RE.match(str(lab)) for lab in labels[:n]]
    if not all(found) or len({normalise_unit(m.group(2)) for m in found}) != 1:
        return None, None
    return (np.asarray([float(m.group(1)) for m in found]),
            normalise_unit(found[0].group(2)))


class _TiffPages:
    """Array-like view of a TIFF series' pages, ``(n_pages, *page_shape)``, read on demand.

    The file stays open (one handle, so tifffile's page index is built once) until
    the view is garbage-collected or :meth:`close` is called; reads are serialised.
    """

    def __init__(self, path, series, n_pages, page_shape, dtype):
        self.path = str(path)
        self.series = series
        self.shape = (n_pages, *page_shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._lock = threading.Lock()
        self._tf = None

    def _page(self, p: int) -> np.ndarray:
        import tifffile

        if self._tf is None:
            self._tf = tifffile.TiffFile(self.path)
        return np.asarray(self._tf.asarray(series=self.series, key=p, maxworkers=1)).reshape(
            self.shape[1:])

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        pages = range(self.shape[0])[first] if isinstance(first, slice) else [int(first)]
        with self._lock:
            planes = [self._page(int(p)) for p in pages]
        out = np.stack(planes) if planes else np.empty((0, *self.shape[1:]), self.dtype)
        if not isinstance(first, slice):
            out = out[0]
        return out[rest] if rest else out

    def close(self):
        with self._lock:
            if self._tf is not None:
                self._tf.close()
                self._tf = None

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()


def _lazy_tiff(path, s, index, shape, axes, notes):
    import dask.array as da
    import tifffile

    try:
        mm = tifffile.memmap(str(path), series=index, mode="r")
        arr = mm.reshape(shape)
        notes.append(f"{path.name} opened lazily (memory-mapped, "
                     f"{_size(s.size * s.dtype.itemsize)}).")
    except (ValueError, OSError):
        page_shape = tuple(s.keyframe.shape)
        n_pages = int(s.size // max(1, int(np.prod(page_shape))))
        if n_pages * int(np.prod(page_shape)) != s.size:
            raise ValueError(f"{path}: series {index} cannot be split into pages for lazy "
                             "reading; pass lazy=False to read it whole.") from None
        pages = _TiffPages(path, index, n_pages, page_shape, s.dtype)
        stacked = da.from_array(pages, chunks=(1, *page_shape), asarray=True,
                                meta=np.empty((0,) * pages.ndim, dtype=s.dtype), lock=False,
                                name=_dask_name(path, "pages", index))
        notes.append(f"{path.name} opened lazily (one page per chunk, "
                     f"{_size(s.size * s.dtype.itemsize)}).")
        return stacked.reshape(shape)
    return _from_memmap(arr, _plane_chunks(shape, axes), _dask_name(path, "memmap", index, shape))


def _read_tiff(path, *, series, squeeze, lazy, threshold):
    """dict(data, axes, values, unit, notes, lazy, series_index, n_series)."""
    import tifffile

    notes: list[str] = []
    with _tifffile_log() as records:
        try:
            with tifffile.TiffFile(path) as tf:
                all_series = tf.series
                if not all_series:
                    raise ValueError(f"{path} contains no image data.")
                n_series = len(all_series)
                index = 0 if series is None else int(series)
                if not 0 <= index < n_series:
                    raise ValueError(f"series={series} is out of range: {path} has "
                                     f"{n_series} image series (0 .. {n_series - 1}).")
                s = all_series[index]
                if n_series > 1:
                    shapes = ", ".join(str(tuple(x.shape)) for x in all_series[:6])
                    more = ", ..." if n_series > 6 else ""
                    notes.append(f"{path.name} has {n_series} image series (shapes {shapes}"
                                 f"{more}); series {index} (shape {tuple(s.shape)}) was read"
                                 + ("; pass series= to read another." if series is None
                                    else "."))
                axes = s.get_axes(squeeze)
                shape = tuple(s.get_shape(squeeze))
                own = _tiff_meta(tf)
                values = own.get("spectral_values")
                unit = normalise_unit(own.get("spectral_unit"))
                source = META_KEY if values is not None else None
                errors = _messages(records, logging.ERROR)
                if errors:  # tifffile fell back to a partial view of a damaged file
                    raise ValueError("; ".join(errors))
                nbytes = int(s.size) * s.dtype.itemsize
                is_lazy = _want_lazy(lazy, nbytes, threshold)
                if is_lazy:
                    data = _lazy_tiff(path, s, index, shape, axes, notes)
                else:
                    data = np.asarray(s.asarray(maxworkers=1)).reshape(shape)
                errors = _messages(records, logging.ERROR)
                if errors:
                    raise ValueError("; ".join(errors))
                # spectral positions from foreign metadata, for the labelled axis
                if values is None and len(axes) == len(shape):
                    letter = next((a for a in ("E", "C") if a in axes), None)
                    if letter is not None:
                        n = shape[axes.index(letter)]
                        if tf.is_ome:
                            values, unit = _ome_values(tf, index, axes, letter, n)
                            source = "OME metadata" if values is not None else None
                        if values is None and tf.is_imagej and letter == "C":
                            values, unit = _imagej_label_values(tf, n)
                            source = "ImageJ slice labels" if values is not None else None
        except ValueError as exc:
            raise ValueError(f"{path} could not be read as a TIFF file: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - tifffile raises many types on bad files
            raise ValueError(f"{path} could not be read as a TIFF file: "
                             f"{type(exc).__name__}: {exc}") from None
    warned = _messages(records, logging.WARNING)
    notes.extend(f"tifffile: {m}" for m in warned if m not in notes)
    return {"data": data, "axes": axes if len(axes) == len(shape) else None,
            "values": values, "unit": unit, "values_source": source, "notes": notes,
            "lazy": is_lazy, "series_index": index, "n_series": n_series}


# -- numpy --------------------------------------------------------------------------

def _read_npy(path, *, lazy, threshold):
    notes = []
    try:
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - truncated / not an npy file / object arrays
        raise ValueError(f"{path} could not be read as a .npy file: "
                         f"{type(exc).__name__}: {exc}") from None
    if _want_lazy(lazy, mm.nbytes, threshold) and mm.ndim >= 2:
        notes.append(f"{path.name} opened lazily (memory-mapped, {_size(mm.nbytes)}).")
        return _from_memmap(mm, _plane_chunks(mm.shape), _dask_name(path, "npy")), notes, True
    return np.array(mm), notes, False


# -- folders ------------------------------------------------------------------------

def slice_files(folder) -> list[Path]:
    """The TIFF slices of a folder in natural order (hidden files left out)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".")
             and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


_TAGS = {"z": "Z", "slice": "Z", "t": "T", "tp": "T", "time": "T", "frame": "T",
         "c": "C", "ch": "C", "chan": "C", "channel": "C", "lambda": "C", "l": "C",
         "w": "C", "wl": "C", "band": "C", "em": "C", "ex": "C"}


def _name_grid(files):
    """Axes and index tuples from numbered file names, or None for one stacking axis.

    Returns ``(axes, positions, tagged)``: ``axes`` a string of the varying fields'
    letters (one letter = one axis; ``None`` when one number varies, ``"?"`` when
    several vary but do not form a tagged, complete grid), ``positions`` one index
    tuple per file and ``tagged`` whether the single axis carries a channel tag.
    """
    split = [re.split(r"(\d+)", p.stem) for p in files]
    if len({len(s) for s in split}) != 1:
        return None
    texts = {tuple(s[0::2]) for s in split}
    if len(texts) != 1:
        return None
    text = split[0][0::2]
    nums = np.array([[int(x) for x in s[1::2]] for s in split], dtype=np.int64)
    if nums.size == 0:
        return None
    varying = [j for j in range(nums.shape[1]) if len(set(nums[:, j])) > 1]
    if not varying:
        return None
    letters = []
    for j in varying:
        m = re.search(r"([A-Za-z]+)[_\-\s]*$", text[j])
        letters.append(_TAGS.get(m.group(1).lower()) if m else None)
    if len(varying) == 1:
        return None, None, letters[0] == "C"
    if None in letters or len(set(letters)) != len(letters):
        return "?", None, False
    order = sorted(range(len(varying)), key=lambda i: "TZC".index(letters[i]))
    axes = "".join(letters[i] for i in order)
    levels = [sorted(set(nums[:, varying[i]])) for i in order]
    if int(np.prod([len(v) for v in levels])) != len(files):
        return "?", None, False
    positions = [tuple(levels[a].index(nums[f, varying[i]]) for a, i in enumerate(order))
                 for f in range(len(files))]
    if len(set(positions)) != len(files):
        return "?", None, False
    return axes, positions, True


def read_slice_folder(folder, *, lazy: bool | None = None,
                      lazy_threshold: int | None = None) -> StackData:
    """Read a folder of TIFF slices (one file per channel) as one stack.

    Parameters
    ----------
    folder : str or Path
    lazy : bool, optional
        True: always return a dask array; False: never; None (default): when the
        stack is larger than ``lazy_threshold`` bytes.
    lazy_threshold : int, optional
        Defaults to :func:`lazy_threshold`.

    Returns
    -------
    StackData
        ``data`` has the slices on axis 0 (or on ``T``/``Z``/``C`` axes read from the
        file names, see the module docstring).  Spectral positions come from
        ``spectral_axis.csv`` / ``.json`` in the folder.

    Raises
    ------
    ValueError
        When the folder has no TIFF files, a slice cannot be read, or the slices
        differ in shape (the message names the first one that differs).
    """
    import tifffile

    folder = Path(folder)
    files = slice_files(folder)
    if not files:
        raise ValueError(f"{folder} holds no .tif/.tiff files; a folder is read as a stack of "
                         "TIFF slices, one file per channel.")
    shapes, dtypes, axes_list = [], [], []
    for f in files:
        with _tifffile_log() as records:
            try:
                with tifffile.TiffFile(f) as tf:
                    if not tf.series:
                        raise ValueError("no image data")
                    s = tf.series[0]
                    shapes.append(tuple(s.shape))
                    dtypes.append(s.dtype)
                    axes_list.append(s.axes)
                errors = _messages(records, logging.ERROR)
                if errors:
                    raise ValueError("; ".join(errors))
            except Exception as exc:  # noqa: BLE001
                raise ValueError(f"slice {f.name} of {folder} could not be read as a TIFF "
                                 f"file: {type(exc).__name__}: {exc}") from None
        if shapes[-1] != shapes[0]:
            raise ValueError(
                f"the slices in {folder} differ in shape: {files[0].name} is {shapes[0]} but "
                f"{f.name} is {shapes[-1]}. Every file must be one channel of the same size; "
                "move other images out of the folder.")
    dtype = np.result_type(*dtypes)
    notes = [f"{len(files)} TIFF slices of {folder.name} read in natural order "
             f"({files[0].name} ... {files[-1].name})."]
    if len(set(dtypes)) > 1:
        kinds = ", ".join(sorted({str(d) for d in dtypes}))
        notes.append(f"the slices have different dtypes ({kinds}); they were converted to "
                     f"{dtype}, which holds all their values.")
    slice_shape = shapes[0]
    slice_axes = axes_list[0] if len(axes_list[0]) == len(slice_shape) else None
    grid = _name_grid(files)
    nbytes = len(files) * int(np.prod(slice_shape)) * dtype.itemsize
    is_lazy = _want_lazy(lazy, nbytes, lazy_threshold)

    def load(f):
        return np.asarray(tifffile.imread(f, maxworkers=1)).reshape(slice_shape).astype(
            dtype, copy=False)

    if is_lazy:
        import dask
        import dask.array as da

        planes = [da.from_delayed(dask.delayed(load)(f), shape=slice_shape, dtype=dtype)
                  for f in files]
        flat = da.stack(planes)
        notes.append(f"{folder.name} opened lazily ({_size(nbytes)}).")
    else:
        flat = np.stack([load(f) for f in files])
    guessed = True
    if grid is not None and grid[0] == "?":
        notes.append("the file names differ in several numbers that do not form a complete "
                     "grid of tagged axes (z, t, c/ch); the slices were stacked along one axis "
                     "in natural order.")
    if grid is not None and grid[0] not in (None, "?"):
        grid_axes, positions, _ = grid
        sizes = tuple(max(p[a] for p in positions) + 1 for a in range(len(grid_axes)))
        order = np.ravel_multi_index(np.array(positions).T, sizes)
        flat = flat[np.argsort(order)]
        data = flat.reshape(*sizes, *slice_shape)
        stack_axes = grid_axes
        guessed = "C" not in grid_axes
        notes.append(f"file names give the axes {grid_axes} (shape {sizes}).")
    else:
        data = flat
        if grid is not None and grid[2]:
            stack_axes, guessed = "C", False
        else:
            stack_axes = "C"
    axes = stack_axes + slice_axes if slice_axes is not None else None
    if axes is not None and len(set(axes)) != len(axes):
        axes = None
    index = stack_axes.index("C") if "C" in stack_axes else 0
    return StackData(data=data, spectral_axis=index, axes=axes, guessed=guessed, path=folder,
                     notes=notes, lazy=is_lazy)


# -- public -------------------------------------------------------------------------

def _apply_sidecar(path, data_shape, index, guessed, values, unit, source, notes):
    side = find_sidecar(path)
    if side is None:
        return index, guessed, values, unit, source
    s_values, s_unit = read_spectral_sidecar(side)
    n = len(s_values)
    if index is None or guessed:
        matches = [i for i, size in enumerate(data_shape) if size == n]
        if not matches:
            raise ValueError(f"spectral-axis file {side.name} has {n} values but no axis of "
                             f"{path.name} (shape {tuple(data_shape)}) has that length; it must "
                             "have one value per channel.")
        if index is None or index not in matches:
            index = matches[0]
        guessed = len(matches) > 1
    elif data_shape[index] != n:
        raise ValueError(f"spectral-axis file {side.name} has {n} values but the spectral axis "
                         f"of {path.name} (axis {index}) has {data_shape[index]} channels; it "
                         "must have one value per channel.")
    if values is not None:
        notes.append(f"spectral positions taken from {side.name}, not from the {source}.")
    return index, guessed, s_values, s_unit, side.name


def _describe_axis(index, axes, shape):
    letter = f"{axes[index]}, " if axes else ""
    return f"axis {index} ({letter}{shape[index]} channels) of shape {tuple(shape)}"


def open_stack(path, *, spectral_axis: int | None = None, series: int | None = None,
               squeeze: bool = True, lazy: bool | None = None,
               lazy_threshold: int | None = None) -> StackData:
    """Read a spectral stack from a file or a folder of slices.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff`` (plain, ImageJ or OME), ``.npy`` or ``.npz`` file, or a
        folder of TIFF slices.
    spectral_axis : int, optional
        Index of the spectral axis (after squeezing); overrides metadata and
        guesses.
    series : int, optional
        TIFF image series to read (default 0; a note says which was read when the
        file has several).
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
    if path.is_dir():
        if is_result_bundle(path):
            raise ValueError(f"{path} is a napari-unmix result folder, not a stack; read it "
                             "with napari_unmix.io.read_result_bundle (or open it in napari).")
        stack = read_slice_folder(path, lazy=lazy, lazy_threshold=lazy_threshold)
        data, axes, notes = stack.data, stack.axes, stack.notes
        index, guessed = stack.spectral_axis, stack.guessed
        values = unit = source = None
        is_lazy = stack.lazy
    else:
        if not path.is_file():
            raise ValueError(f"{path} is not a regular file.")
        suffix = path.suffix.lower()
        axes = values = unit = source = index = None
        guessed = False
        is_lazy = False
        notes: list[str] = []
        if suffix in TIFF_SUFFIXES:
            t = _read_tiff(path, series=series, squeeze=squeeze, lazy=lazy,
                           threshold=lazy_threshold)
            data, axes, notes, is_lazy = t["data"], t["axes"], t["notes"], t["lazy"]
            values, unit, source = t["values"], t["unit"], t["values_source"]
            series_index = t["series_index"]
            if axes is not None:
                core = axes.replace("S", "") if axes.endswith("S") else axes
                if all(a in _SPATIAL_LETTERS for a in core) and (
                        axes[-1] != "S" or data.shape[-1] in (3, 4)):
                    raise ValueError(
                        f"{path} holds a single image (axes {axes}, shape {data.shape}), not "
                        "a spectral stack: it has no channel axis. Combine the channel images "
                        "into one multi-page TIFF (e.g. in Fiji: Images to Stack), or put the "
                        "single-channel files in one folder and open the folder.")
                index, guessed = _axis_from_letters(axes)
                if index is not None and not guessed and axes[index] == "E" and "C" in axes:
                    notes.append(f"axis {index} (lambda, E) taken as the spectral axis; the "
                                 f"file also has a channel axis C (axis {axes.index('C')}).")
        elif suffix == ".npy":
            data, notes, is_lazy = _read_npy(path, lazy=lazy, threshold=lazy_threshold)
        elif suffix == ".npz":
            if is_result_bundle(path):
                raise ValueError(f"{path} is a napari-unmix result, not a stack; read it with "
                                 "napari_unmix.io.read_result_bundle (or open it in napari).")
            try:
                data, values, unit, index, notes = _read_npz(path)
            except ValueError:
                raise
            except Exception as exc:  # noqa: BLE001 - zip / npy decoding errors
                raise ValueError(f"{path} could not be read as a .npz file: "
                                 f"{type(exc).__name__}: {exc}") from None
            source = ".npz arrays" if values is not None else None
            unit = normalise_unit(unit)
            if _want_lazy(lazy, data.nbytes, lazy_threshold):
                notes.append(f"{path.name} was read whole: arrays in .npz files cannot be "
                             "read lazily (save large stacks as TIFF or .npy).")
        else:
            raise ValueError(f"{path}: unknown file type {suffix!r}; napari-unmix reads "
                             f"{', '.join(STACK_SUFFIXES)} files and folders of TIFF slices.")
        if not is_lazy:
            data = np.asarray(data)
    _check_array(data, path)
    if spectral_axis is not None:
        index, guessed = _check_spectral_axis(spectral_axis, data.ndim, path), False
    index, guessed, values, unit, source = _apply_sidecar(
        path, data.shape, index, guessed if spectral_axis is None else False, values, unit,
        source, notes)
    if index is None and values is not None:
        matches = [i for i, n in enumerate(data.shape) if n == len(values)]
        if matches:
            index, guessed = matches[0], len(matches) > 1
    if index is None:
        index, guessed = 0, True
    index = _check_spectral_axis(index, data.ndim, path)
    n = int(data.shape[index])
    checked = _values_or_none(values, n)
    if values is not None and checked is None:
        notes.append(f"the file's spectral positions ({np.size(values)} values) do not fit "
                     f"the {n} channels of axis {index}; they were not used.")
        unit = None
    if guessed:
        notes.append(f"spectral axis guessed as {_describe_axis(index, axes, data.shape)}; "
                     "pass spectral_axis to choose another.")
    return StackData(data=data, spectral_axis=index, spectral_values=checked,
                     spectral_unit=unit if checked is not None else None, axes=axes,
                     guessed=guessed, path=path, notes=notes, lazy=is_lazy,
                     series=series_index)
