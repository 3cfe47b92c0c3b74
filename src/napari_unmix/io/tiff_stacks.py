"""TIFF, OME-TIFF, ImageJ and Zeiss LSM stacks: axes, spectral positions, corruption.

:func:`read_tiff` is the TIFF branch of :func:`napari_unmix.io.readers.open_stack`;
the rules it follows are documented there.  It reads one image series (eagerly,
or lazily: memory-mapped when the data are contiguous and uncompressed, else one
page per chunk), takes the axes from the metadata, refuses a single image and a
file that tifffile reports as damaged, and finds spectral positions in
napari-unmix's own metadata, OME-XML, ImageJ slice labels or Zeiss LSM metadata
(:mod:`~napari_unmix.io.lsm_stacks`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading

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
from .lsm_stacks import LSM_SOURCE, lsm_spectral_values
from .pixel_sizes import tiff_pixel_sizes
from .spectral_sidecar import normalise_unit, number_or_none
from .stack import LSM_SUFFIXES, META_KEY, SPATIAL_LETTERS, TIFF_SUFFIXES, axis_from_letters
from .tiff_log import log_messages, tifffile_log

__all__ = ["TIFF_SUFFIXES", "TiffPages", "check_series_size", "missing_planes", "read_tiff",
           "series_files"]


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


# -- TIFF ---------------------------------------------------------------------------

_LABEL_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(nm|cm\^?-1|cm⁻¹|1/cm)\s*$")


def _ome_values(tf, series_index, axes, letter, n, notes):
    """Spectral positions of axis ``letter`` from OME-XML, or (None, None).

    Channels' ``EmissionWavelength`` are the positions only when every channel has
    one, all in one unit; otherwise none are used and a note in ``notes`` says why
    (positions must cover every channel: a partial axis is no axis)."""
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
                    nums = [number_or_none(str(v)) for v in labels]
                    if len(nums) == n and None not in nums:
                        return np.asarray(nums, dtype=np.float64), normalise_unit(mod["Unit"])
                start = number_or_none(str(mod.get("Start", "")))
                step = number_or_none(str(mod.get("Step", "1")))
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
    given = sum(isinstance(w, (int, float)) for w in waves)
    sidecar = f"{str(tf.filename).rsplit('.', 1)[0]}.spectral.csv"
    if given < n:
        if given:
            notes.append(f"{tf.filename}: the OME metadata give an emission "
                         f"wavelength for {given} of the {n} channels only; none were used "
                         "as spectral values (they must cover every channel): enter them "
                         f"in the dock or a sidecar file ({sidecar}).")
        return None, None
    units = [str(c.get("EmissionWavelengthUnit") or "nm") for c in channels]
    if len(set(units)) > 1:
        notes.append(f"{tf.filename}: the OME metadata give the channels' emission "
                     f"wavelengths in different units ({', '.join(sorted(set(units)))}); "
                     "none were used as spectral values: enter them in the dock or a "
                     f"sidecar file ({sidecar}).")
        return None, None
    return np.asarray(waves, dtype=np.float64), normalise_unit(units[0])


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


def _reopen(series, p: int) -> None:
    """Open the file of plane ``p`` again when it is another file of a multi-file series
    (tifffile closes those once it has read their pages)."""
    if getattr(series, "kind", None) not in ("ome", "mmstack"):
        return
    page = series[p]
    handle = page.parent.filehandle if page is not None else None
    if handle is not None and handle.closed:
        handle.open()


class TiffPages:
    """Array-like view of a TIFF series' pages, ``(n_pages, *page_shape)``, read on demand.

    The file is opened by path in the process that reads (one handle, so tifffile's
    page index is built once) and stays open until the view is garbage-collected or
    :meth:`close` is called; reads are serialised.  Pickled (to a ``dask.distributed``
    worker) the view is its path, series, shape and dtype: no handle travels, and the
    worker opens the file itself.  Compressed pages are read this way too.
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

        with tifffile_log() as records:
            try:
                if self._tf is None:
                    self._tf = tifffile.TiffFile(self.path)
                _reopen(self._tf.series[self.series], p)
                page = np.asarray(self._tf.asarray(series=self.series, key=p, maxworkers=1))
                page = page.reshape(self.shape[1:])
                errors = log_messages(records, logging.ERROR)
                if errors:
                    raise ValueError("; ".join(errors))
            except Exception as exc:  # noqa: BLE001 - tifffile raises many types on bad files
                raise ValueError(f"{self.path}: page {p} could not be read: "
                                 f"{type(exc).__name__}: {exc}") from None
        return page

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        first, rest = key[0], key[1:]
        pages = range(self.shape[0])[first] if isinstance(first, slice) else [int(first)]
        with self._lock:
            planes = [self._page(int(p)) for p in pages]
        out = np.stack(planes) if planes else np.empty((0, *self.shape[1:]), self.dtype)
        if not isinstance(first, slice):
            return out[0][rest] if rest else out[0]
        return out[(slice(None), *rest)] if rest else out  # dask fuses slicing into reads

    def __getstate__(self):
        return {"path": self.path, "series": self.series, "shape": self.shape,
                "dtype": self.dtype}

    def __setstate__(self, state):
        self.path, self.series = state["path"], state["series"]
        self.shape, self.dtype = tuple(state["shape"]), np.dtype(state["dtype"])
        self.ndim = len(self.shape)
        self._lock = threading.Lock()
        self._tf = None

    def close(self):
        with self._lock:
            if self._tf is not None:
                self._tf.close()
                self._tf = None

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()


def _lazy_tiff(path, tf, s, index, shape, axes, notes):
    """A dask array over series ``s``: mapped by path when its data are contiguous and
    uncompressed (:class:`~napari_unmix.io.lazy.MappedFile`), else one page per chunk
    (:class:`TiffPages`); neither holds an open file or a memory map."""
    import dask.array as da

    offset = s.dataoffset
    nbytes = format_size(s.size * s.dtype.itemsize)
    if offset is not None and s.dtype is not None and len(series_files(path, s)) == 1:
        mapped = MappedFile(path, offset, tuple(s.shape), np.dtype(tf.byteorder + s.dtype.char))
        notes.append(f"{path.name} opened lazily (memory-mapped, {nbytes}).")
        arr = from_mapped_file(mapped, plane_chunks(tuple(s.shape), None),
                               dask_name(path, "mapped", index))
        return arr.reshape(shape).rechunk(plane_chunks(shape, axes))
    page_shape = tuple(s.keyframe.shape)
    n_pages = int(s.size // max(1, int(np.prod(page_shape))))
    if n_pages * int(np.prod(page_shape)) != s.size:
        raise ValueError(f"{path}: series {index} cannot be split into pages for lazy "
                         "reading; pass lazy=False to read it whole.")
    pages = TiffPages(path, index, n_pages, page_shape, s.dtype)
    stacked = da.from_array(pages, chunks=(1, *page_shape), asarray=True,
                            meta=np.empty((0,) * pages.ndim, dtype=s.dtype), lock=False,
                            name=dask_name(path, "pages", index))
    notes.append(f"{path.name} opened lazily (one page per chunk, {nbytes}).")
    return stacked.reshape(shape)


def series_files(path, series) -> list:
    """The files that hold the planes of an image series, ``path`` first.

    An OME-TIFF or Micro-Manager series may span several files (a multi-file
    dataset: Micro-Manager splits at 4 GB, Bio-Formats writes one file per channel
    or time point with one OME-XML naming them all); tifffile opens the others
    beside ``path``.  Planes that no file holds (a file missing) are not counted
    here: :func:`missing_planes` counts them.

    Parameters
    ----------
    path : Path
    series : tifffile.TiffPageSeries

    Returns
    -------
    list of Path
    """
    from pathlib import Path

    files = [Path(path)]
    if getattr(series, "kind", None) not in ("ome", "mmstack"):
        return files  # one file; its pages need not be loaded to say so
    for page in series:
        if page is None:
            continue
        name = Path(page.parent.filehandle.path)
        if name not in files and name.resolve() != Path(path).resolve():
            files.append(name)
    return files


def missing_planes(series) -> int:
    """How many planes of an OME-TIFF or Micro-Manager series no file holds.

    tifffile reads such planes as zeros (with only a warning): a file of a
    multi-file dataset that is not beside the first one, or a file that holds
    fewer planes than its OME-XML declares.
    """
    if getattr(series, "kind", None) not in ("ome", "mmstack"):
        return 0
    return sum(page is None for page in series)


def _refuse_missing_planes(path, series, index, warned) -> None:
    """A series with planes in no file is not read as zeros: one error that says why."""
    n = missing_planes(series)
    if not n:
        return
    said = [m for m in warned if "missing" in m.lower() or "failed to read" in m.lower()]
    why = f" (tifffile: {'; '.join(said)})" if said else ""
    raise ValueError(
        f"{n} of the {len(series)} planes of image series {index} are in no file that could "
        f"be read{why}, and would be read as zeros. A multi-file OME-TIFF or Micro-Manager "
        "dataset needs all its files in the same folder, under the names its OME-XML gives "
        "them: copy the missing files beside it (or export the dataset again as one file).")


def check_series_size(path, series, *, in_memory) -> int:
    """Check the size an image series declares, before any of it is read.

    Uncompressed data must fit in the files that hold them (:func:`series_files`:
    all the files of a multi-file OME-TIFF); data read whole must fit in memory
    (:func:`~napari_unmix.io.lazy.check_declared_size`).  tifffile gives the shape
    and dtype of a series from its header without reading it.

    Parameters
    ----------
    path : Path
    series : tifffile.TiffPageSeries
    in_memory : bool
        The series is to be read whole.

    Returns
    -------
    int
        The declared size in bytes.

    Raises
    ------
    ValueError
        Without the file name (the caller adds it).
    """
    compression = int(getattr(series.keyframe, "compression", 1) or 1)
    stored = (sum(f.stat().st_size for f in series_files(path, series))
              if compression == 1 else None)  # 1: COMPRESSION.NONE
    return check_declared_size(series.shape, series.dtype, stored_bytes=stored,
                               in_memory=in_memory)


def _spectral_axis(path, axes, shape, notes):
    """(index, guessed) from the axes of a TIFF; refuses a single image."""
    if axes is None:
        return None, False
    core = axes.replace("S", "") if axes.endswith("S") else axes
    if all(a in SPATIAL_LETTERS for a in core) and (axes[-1] != "S" or shape[-1] in (3, 4)):
        raise ValueError(
            f"{path} holds a single image (axes {axes}, shape {shape}), not "
            "a spectral stack: it has no channel axis. Combine the channel images "
            "into one multi-page TIFF (e.g. in Fiji: Images to Stack), or put the "
            "single-channel files in one folder and open the folder.")
    index, guessed = axis_from_letters(axes)
    if index is not None and not guessed and axes[index] == "E" and "C" in axes:
        notes.append(f"axis {index} (lambda, E) taken as the spectral axis; the "
                     f"file also has a channel axis C (axis {axes.index('C')}).")
    return index, guessed


def read_tiff(path, *, series, squeeze, lazy, threshold) -> dict:
    """Read one image series of a TIFF file, with its axes and spectral positions.

    Parameters
    ----------
    path : Path
    series : int or None
        Image series to read; None: series 0 (with a note when there are several).
    squeeze : bool
        Drop axes of length 1.
    lazy : bool or None
        True: a dask array; False: in memory; None: lazy above ``threshold``.
    threshold : int or None
        Size in bytes; None: :func:`~napari_unmix.io.lazy.lazy_threshold`.

    Returns
    -------
    dict
        ``data`` (ndarray, or dask array when lazy), ``axes`` (one letter per axis,
        or None), ``index``/``guessed`` (the spectral axis the letters name, or
        None), ``values``/``unit``/``values_source`` (spectral positions from the
        metadata, or None), ``notes`` (tifffile warnings included), ``lazy``,
        ``series_index``, ``n_series`` and ``pixel_sizes`` (``{letter: (size,
        unit)}`` from OME / ImageJ / LSM metadata, :mod:`~napari_unmix.io.pixel_sizes`).

    Raises
    ------
    ValueError
        When the file cannot be read, tifffile reports it as damaged, ``series`` is
        out of range, or it holds a single image rather than a stack.
    """
    import tifffile

    notes: list[str] = []
    with tifffile_log() as records:
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
                if n_series > 1 and not (tf.is_lsm and n_series == 2 and index == 0):
                    # (an LSM file's second series is its thumbnails)
                    shapes = ", ".join(str(tuple(x.shape)) for x in all_series[:6])
                    more = ", ..." if n_series > 6 else ""
                    notes.append(f"{path.name} has {n_series} image series (shapes {shapes}"
                                 f"{more}); series {index} (shape {tuple(s.shape)}) was read"
                                 + ("; pass series=N to read another." if series is None
                                    else "."))
                axes = s.get_axes(squeeze)
                shape = tuple(s.get_shape(squeeze))
                own = _tiff_meta(tf)
                pixel_sizes = tiff_pixel_sizes(tf, index, notes=notes)
                values = own.get("spectral_values")
                unit = normalise_unit(own.get("spectral_unit"))
                source = META_KEY if values is not None else None
                errors = log_messages(records, logging.ERROR)
                if errors:  # tifffile fell back to a partial view of a damaged file
                    raise ValueError("; ".join(errors))
                _refuse_missing_planes(path, s, index,
                                       log_messages(records, logging.WARNING))
                nbytes = int(s.size) * s.dtype.itemsize
                is_lazy = want_lazy(lazy, nbytes, threshold)
                check_series_size(path, s, in_memory=not is_lazy)  # before any allocation
                if is_lazy:
                    data = _lazy_tiff(path, tf, s, index, shape, axes, notes)
                else:
                    data = np.asarray(s.asarray(maxworkers=1)).reshape(shape)
                errors = log_messages(records, logging.ERROR)
                if errors:
                    raise ValueError("; ".join(errors))
                # spectral positions from foreign metadata, for the labelled axis
                if values is None and len(axes) == len(shape):
                    letter = next((a for a in ("E", "C") if a in axes), None)
                    if letter is not None:
                        n = shape[axes.index(letter)]
                        if tf.is_ome:
                            values, unit = _ome_values(tf, index, axes, letter, n, notes)
                            source = "OME metadata" if values is not None else None
                        if values is None and tf.is_imagej and letter == "C":
                            values, unit = _imagej_label_values(tf, n)
                            source = "ImageJ slice labels" if values is not None else None
                        lsm = tf.is_lsm or path.suffix.lower() in LSM_SUFFIXES
                        if values is None and lsm and letter == "C":
                            values, unit = lsm_spectral_values(tf, n, notes)
                            source = LSM_SOURCE if values is not None else None
        except ValueError as exc:
            raise ValueError(f"{path} could not be read as a TIFF file: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - tifffile raises many types on bad files
            raise ValueError(f"{path} could not be read as a TIFF file: "
                             f"{type(exc).__name__}: {exc}") from None
    warned = log_messages(records, logging.WARNING)
    notes.extend(f"tifffile: {m}" for m in warned if m not in notes)
    axes = axes if len(axes) == len(shape) else None
    spectral, guessed = _spectral_axis(path, axes, data.shape, notes)
    return {"data": data, "axes": axes, "index": spectral, "guessed": guessed,
            "values": values, "unit": unit, "values_source": source, "notes": notes,
            "lazy": is_lazy, "series_index": index, "n_series": n_series,
            "pixel_sizes": pixel_sizes}
