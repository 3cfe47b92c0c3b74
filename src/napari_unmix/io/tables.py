"""Tables and images of an analysis: spectra CSV, maps TIFF, composite PNG, stack TIFF.

Each format is written and read here together, so that what a writer puts in a
file is what its reader expects.  Every writer writes into a temporary file
beside the target and renames it onto the target only when the write succeeded
(:func:`napari_unmix.core._files.atomic_path`): an interrupted or failed write
never leaves a partial file, and an existing file survives a failed overwrite.

==========================  ===========================================================
function                    writes
==========================  ===========================================================
:func:`write_maps_tiff`     abundance maps: float32 ImageJ TIFF, one page per component,
                            the component names as page labels (read back with
                            :func:`read_maps_tiff`)
:func:`write_stack_tiff`    a spectral stack as an ImageJ hyperstack, with its axes and
                            spectral positions (read back with
                            :func:`~napari_unmix.io.read_stack`)
:func:`write_spectra_csv`   spectra: first column the spectral axis, one column each
                            (read back with :func:`read_spectra_csv`; the first
                            header is :func:`axis_header`, its unit
                            :func:`unit_from_header`)
:func:`write_composite_png` an RGB image (e.g. :func:`napari_unmix.core.colors.composite`)
==========================  ===========================================================

The result bundle, ``result.json`` and the result folder are in
:mod:`~napari_unmix.io.results`.
"""

from __future__ import annotations

import csv
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import tifffile

from ..core._files import atomic_path
from ..core.spectra import SpectraTable, read_spectra
from .stack import META_KEY

__all__ = ["axis_header", "read_maps_tiff", "read_spectra_csv", "unit_from_header",
           "write_composite_png", "write_maps_tiff", "write_spectra_csv", "write_stack_tiff"]

_IMAGEJ_ORDER = "TZCYXS"


def _names(names, k, what="component"):
    if names is None:
        return [f"C{i + 1}" for i in range(k)]
    names = [str(n) for n in names]
    if len(names) != k:
        raise ValueError(f"{len(names)} {what} name(s) given for {k} {what}(s); give one each.")
    return names


# -- TIFF ---------------------------------------------------------------------------

def _imagej_sizes(pixel_size, n_spatial):
    """``((y, x), unit, z spacing or None)`` for ImageJ, or None without usable sizes
    (ImageJ has one unit for all axes: sizes in other units are left out)."""
    if pixel_size is None or pixel_size[0] is None:
        return None
    scale, units = tuple(pixel_size[0]), tuple(pixel_size[1])
    if len(scale) != n_spatial or n_spatial < 2 or not units[-1] or units[-1] != units[-2]:
        return None
    sy, sx = float(scale[-2]), float(scale[-1])
    if not (sy > 0 and sx > 0):
        return None
    spacing = float(scale[-3]) if n_spatial >= 3 and units[-3] == units[-1] else None
    return (sy, sx), units[-1], spacing


def _imagej_hyperstack(data, axes: str) -> np.ndarray:
    """``data`` (axes in ImageJ's order, a subset of ``TZCYXS``) with every ImageJ axis,
    missing ones of length 1: given fewer axes, tifffile takes a trailing length-1 axis
    (``X`` of a (C, Y, 1) image) for samples and writes one page where the metadata
    counts C pages, a file no reader accepts."""
    shape = [data.shape[axes.index(a)] if a in axes else 1 for a in _IMAGEJ_ORDER]
    return np.ascontiguousarray(data).reshape(shape)


def write_maps_tiff(path, maps, names=None, *, pixel_size=None) -> Path:
    """Write component maps as a float32 ImageJ TIFF, one page per component.

    Parameters
    ----------
    path : str or Path
    maps : array_like, shape (k, Y, X), (k, Z, Y, X) or (k, T, Z, Y, X)
        One map per component.  A 3-D spatial shape is written as an ImageJ
        hyperstack with axes ``ZCYX`` (components as channels), a 4-D one as
        ``TZCYX``: Fiji shows the two outer axes as frames and slices.
    names : sequence of str, optional
        One name per component, stored as ImageJ slice labels (shown by Fiji) and
        in napari-unmix's metadata; defaults to ``C1``, ``C2`` ...
    pixel_size : tuple (scale, units), optional
        One size and length unit (``"um"`` ...) per spatial axis (``Y, X`` or ``Z, Y,
        X``, ``T, Z, Y, X``): written as the ImageJ resolution (pixels per unit),
        ``unit`` and, for ``Z`` in the unit of ``Y`` and ``X``, ``spacing``, which Fiji
        and :func:`~napari_unmix.io.open_stack` read.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    maps = np.asarray(maps)
    if maps.ndim not in (3, 4, 5):
        raise ValueError(f"maps must be (k, Y, X), (k, Z, Y, X) or (k, T, Z, Y, X), got "
                         f"shape {maps.shape}.")
    k = maps.shape[0]
    names = _names(names, k)
    data = np.moveaxis(maps.astype(np.float32, copy=False), 0, -3)  # ([T,] [Z,] k, Y, X)
    axes = "TZCYX"[5 - maps.ndim:]
    labels = names * int(np.prod(maps.shape[1:-2], dtype=np.int64))
    finite = data[np.isfinite(data)]
    meta = {"axes": _IMAGEJ_ORDER, "Labels": labels,
            "Properties": {META_KEY: json.dumps({"component_names": names,
                                                 "kind": "maps"})}}
    if finite.size:
        meta["min"], meta["max"] = float(finite.min()), float(finite.max())
    extra = {}
    sizes = _imagej_sizes(pixel_size, maps.ndim - 1)
    if sizes is not None:
        (sy, sx), unit, spacing = sizes
        extra["resolution"] = (1.0 / sx, 1.0 / sy)
        meta["unit"] = unit
        if spacing is not None:
            meta["spacing"] = spacing
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, _imagej_hyperstack(data, axes), imagej=True, metadata=meta,
                         **extra)
    return path


def read_maps_tiff(path):
    """Read maps written by :func:`write_maps_tiff`.

    Returns
    -------
    maps : ndarray, shape (k, Y, X), (k, Z, Y, X) or (k, T, Z, Y, X)
        An axis of length 1 in front of the components (a single frame or slice) is
        left out.
    names : list of str
    """
    path = Path(path)
    with tifffile.TiffFile(path) as tf:
        series = tf.series[0]
        full_axes = series.get_axes(False)
        data = series.asarray().reshape(series.get_shape(False))
        ij = tf.imagej_metadata or {}
        props = ij.get("Properties") or {}
    keep = tuple(i for i, a in enumerate(full_axes) if a in "TZCYX")
    drop = tuple(i for i, a in enumerate(full_axes) if a not in "TZCYX")
    data = data.squeeze(axis=drop) if drop else data
    axes = "".join(full_axes[i] for i in keep)
    for outer in "TZ":
        i = axes.find(outer)
        if i >= 0 and data.shape[i] == 1:
            data, axes = data.squeeze(axis=i), axes[:i] + axes[i + 1:]
    if "C" in axes:
        data = np.moveaxis(data, axes.index("C"), 0)
    names = None
    if META_KEY in props:
        names = json.loads(props[META_KEY]).get("component_names")
    if names is None:
        labels = ij.get("Labels")
        labels = [labels] if isinstance(labels, str) else labels
        names = list(labels[: data.shape[0]]) if labels else None
    return data, _names(names, data.shape[0])


def write_stack_tiff(path, stack, *, axes: str = "CYX", spectral_values=None,
                     spectral_unit: str | None = None) -> Path:
    """Write a spectral stack so that :func:`~napari_unmix.io.read_stack` finds its axes.

    Parameters
    ----------
    path : str or Path
    stack : array_like
        The stack, e.g. ``(C, Y, X)`` or ``(Z, C, Y, X)``.
    axes : str, default "CYX"
        One letter per axis (tifffile codes: ``C`` channel/spectral, ``Z``, ``T``,
        ``Y``, ``X``).  An ImageJ hyperstack is written when the letters follow
        ImageJ's order ``TZCYXS``, else a tifffile "shaped" TIFF.
    spectral_values : array_like, optional
        Position of every channel (length of the ``C`` axis).
    spectral_unit : str, optional
        Unit of ``spectral_values``.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    stack = np.asarray(stack)
    axes = axes.upper()
    if len(axes) != stack.ndim or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} does not give one distinct letter per axis of a "
                         f"stack with shape {stack.shape}.")
    own = {}
    if spectral_values is not None:
        if "C" not in axes:
            raise ValueError("spectral_values need a 'C' axis in axes.")
        values = np.asarray(spectral_values, dtype=np.float64).ravel()
        if values.size != stack.shape[axes.index("C")]:
            raise ValueError(f"{values.size} spectral values for {stack.shape[axes.index('C')]} "
                             "channels.")
        own = {"spectral_values": values.tolist(), "spectral_unit": spectral_unit}
    imagej_ok = (all(a in _IMAGEJ_ORDER for a in axes)
                 and [_IMAGEJ_ORDER.index(a) for a in axes] == sorted(
                     _IMAGEJ_ORDER.index(a) for a in axes)
                 and stack.dtype in (np.uint8, np.uint16, np.float32))
    with atomic_path(path) as tmp:
        if imagej_ok:
            meta = {"axes": _IMAGEJ_ORDER}
            if own:
                meta["Properties"] = {META_KEY: json.dumps(own)}
                if "C" in axes:
                    unit = f" {spectral_unit}" if spectral_unit else ""
                    labels = [f"{v:g}{unit}" for v in own["spectral_values"]]
                    other = int(np.prod([n for a, n in zip(axes, stack.shape, strict=True)
                                         if a in "TZ"]))
                    meta["Labels"] = labels * other
            tifffile.imwrite(tmp, _imagej_hyperstack(stack, axes), imagej=True, metadata=meta)
        else:
            tifffile.imwrite(tmp, stack, photometric="minisblack",
                             metadata={"axes": axes, META_KEY: own})
    return path


# -- CSV ----------------------------------------------------------------------------

_QUANTITY = {"cm^-1": "wavenumber", "cm-1": "wavenumber", "1/cm": "wavenumber",
             "nm": "wavelength", "um": "wavelength", "µm": "wavelength"}


def axis_header(unit: str | None, known: bool = True) -> str:
    """Header of the spectral-axis column: ``"wavenumber (cm^-1)"``, ``"channel"`` ...

    Parameters
    ----------
    unit : str or None
        Unit of the spectral positions.
    known : bool, default True
        False when the column holds channel indices, not positions.

    Returns
    -------
    str
    """
    if not known:
        return "channel"
    if not unit:
        return "spectral axis"
    return f"{_QUANTITY.get(unit, 'spectral axis')} ({unit})"


def unit_from_header(header: str | None) -> str | None:
    """The unit in brackets at the end of an axis header, e.g. ``"cm^-1"``.

    Parameters
    ----------
    header : str or None
        E.g. ``"wavenumber (cm^-1)"``.

    Returns
    -------
    str or None
        The text in the last brackets, or None.
    """
    if not header:
        return None
    m = re.search(r"[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*$", header)
    return m.group(1) if m else None


def _format_number(v: float) -> str:
    return repr(float(v))  # shortest string that reads back to the same float


def write_spectra_csv(path, H, spectral_axis=None, names=None, unit: str | None = None) -> Path:
    """Write spectra as CSV: first column the spectral axis, then one column each.

    Parameters
    ----------
    path : str or Path
    H : array_like, shape (k, n_channels)
        One spectrum per row.
    spectral_axis : array_like, shape (n_channels,), optional
        Channel positions.  Without it the first column is the channel index
        ``0 .. n_channels - 1`` with the header ``channel``.
    names : sequence of str, optional
        Column headers of the spectra (defaults to ``C1``, ``C2`` ...).  A header
        holding ``#`` is written quoted (unquoted, the reader takes ``#`` for a
        comment); a line break in a name is written as a space.
    unit : str, optional
        Unit of ``spectral_axis``, written into the first header, e.g.
        ``wavenumber (cm^-1)``.

    Returns
    -------
    Path
        The written file.

    Notes
    -----
    Values are written with full precision (``repr``), so reading the file back
    with :func:`read_spectra_csv` gives the same float64 numbers.
    """
    path = Path(path)
    H = np.asarray(H, dtype=np.float64)
    if H.ndim == 1:
        H = H[None, :]
    if H.ndim != 2:
        raise ValueError(f"H must be (k, n_channels), got shape {H.shape}.")
    k, m = H.shape
    names = _names(names, k)
    known = spectral_axis is not None
    axis = np.arange(m) if not known else np.asarray(spectral_axis, dtype=np.float64).ravel()
    if axis.shape != (m,):
        raise ValueError(f"spectral_axis has {axis.size} values but H has {m} channels.")
    _refuse_nonfinite(H, axis, names, path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            # a name's line breaks as spaces (one header line); names with '#', a
            # comment mark to the reader, quoted
            header = [" ".join(h.split()) if any(c in h for c in "\r\n") else h
                      for h in map(str, [axis_header(unit, known), *names])]
            quoting = csv.QUOTE_ALL if any("#" in h for h in header) else csv.QUOTE_MINIMAL
            csv.writer(fh, lineterminator="\n", quoting=quoting).writerow(header)
            w = csv.writer(fh, lineterminator="\n")
            for j in range(m):
                first = str(int(axis[j])) if not known else _format_number(axis[j])
                w.writerow([first, *(_format_number(v) for v in H[:, j])])
    return path


def _refuse_nonfinite(H, axis, names, path) -> None:
    """NaN or infinite values make a file that :func:`read_spectra_csv` refuses: say
    which spectra (or axis values) hold them, before anything is written."""
    bad = np.flatnonzero(~np.isfinite(H).all(axis=1))
    if bad.size:
        listed = ", ".join(repr(names[j]) for j in bad[:5]) + (" ..." if bad.size > 5 else "")
        raise ValueError(f"Not writing {path.name}: spectra {listed} hold NaN or infinite "
                         "values, which the file could not be read back with. Fix or "
                         "leave out those spectra.")
    bad = np.flatnonzero(~np.isfinite(axis))
    if bad.size:
        raise ValueError(f"Not writing {path.name}: the spectral axis holds NaN or infinite "
                         f"values (at channel(s) {', '.join(map(str, bad[:10]))}); give "
                         "every channel its spectral position.")


def read_spectra_csv(path) -> SpectraTable:
    """Read spectra written by :func:`write_spectra_csv` (or any spectra table).

    The one parser of the project, :func:`napari_unmix.core.spectra.read_spectra`:
    first column the axis, one column per spectrum, optional header.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    SpectraTable
        ``axis``, ``values`` (one spectrum per row), ``names`` and ``axis_name``.
    """
    return read_spectra(path)


# -- PNG ----------------------------------------------------------------------------

def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    body = tag + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def write_composite_png(path, rgb) -> Path:
    """Write an RGB image as an 8-bit PNG.

    Parameters
    ----------
    path : str or Path
    rgb : array_like, shape (Y, X, 3)
        Floats in [0, 1] (values outside are clipped; NaN becomes 0) or uint8.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"rgb must have shape (Y, X, 3), got {rgb.shape}.")
    if rgb.dtype == np.uint8:
        img = rgb
    elif rgb.dtype.kind == "f":
        img = np.round(np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0) * 255).astype(np.uint8)
    else:
        raise TypeError(f"rgb must be float in [0, 1] or uint8, got {rgb.dtype}.")
    h, w = img.shape[:2]
    raw = np.empty((h, 1 + 3 * w), dtype=np.uint8)
    raw[:, 0] = 0  # filter type "none" on every row
    raw[:, 1:] = img.reshape(h, 3 * w)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"\x89PNG\r\n\x1a\n")
            fh.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
            fh.write(_png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)))
            fh.write(_png_chunk(b"IEND", b""))
    return path
