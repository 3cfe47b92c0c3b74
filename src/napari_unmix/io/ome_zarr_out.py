"""OME-Zarr out: component maps and spectral stacks written with ome-zarr-py.

:func:`write_maps_ome_zarr` writes the maps of one analysis as an OME-Zarr image:
one channel per component (``c``) over the spatial axes (``z``, ``y``, ``x``),
chunked, with a resolution pyramid (ome-zarr's writer, local-mean downsampling of
``y`` / ``x``), the channels named after the components with their colours and
contrast windows in the ``omero`` metadata, and the physical pixel sizes as the
scale transformations with their units.  A dask array is streamed to the store
block by block: nothing of its size is held in memory (its blocks are computed
once; the pyramid levels are made from level 0 as it was written).

:func:`write_stack_ome_zarr` writes a spectral stack the same way (the spectral
axis as ``c``), with its spectral positions in napari-unmix's own attribute and
as the channel labels, so :func:`~napari_unmix.io.open_stack` reads it back with
its spectral axis, positions and pixel sizes.

Both write into a temporary folder and swap it in whole
(:func:`napari_unmix.core._files.atomic_folder`), unless ``atomic=False`` (the
caller's own temporary folder, e.g. an output set).  Needs ``zarr`` and
``ome-zarr`` (the ``napari-unmix[distributed]`` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core._files import atomic_folder
from .stack import META_KEY
from .zarr_stacks import import_ome_zarr, require_zarr

__all__ = ["OME_UNITS", "write_maps_ome_zarr", "write_stack_ome_zarr"]

#: Our length units -> the OME-Zarr (UDUNITS-2) names.
OME_UNITS = {"um": "micrometer", "nm": "nanometer", "mm": "millimeter", "cm": "centimeter",
             "m": "meter"}
_SPATIAL = ("z", "y", "x")


def _hex(color) -> str:
    from matplotlib.colors import to_hex

    try:
        return to_hex(color)[1:].upper()
    except (ValueError, TypeError):
        return "FFFFFF"


def _levels(shape, min_size: int = 256, most: int = 4) -> tuple:
    """Downsampling factors (2, 4 ...) while the smallest plane side stays >= ``min_size``."""
    side = min(shape[-2:])
    factors, f = [], 2
    while side // f >= min_size and len(factors) < most:
        factors.append(f)
        f *= 2
    return tuple(factors)


def _write(path, data, dims, *, scale, units, labels, colors, attrs, chunks, atomic,
           scale_factors):
    """Write ``data`` (axes ``dims``) as an OME-Zarr image at ``path``; see the module."""
    import dask.array as da

    _, _, ome_writer, ome_scale = import_ome_zarr()
    zarr = require_zarr("OME-Zarr")
    write_image, Methods = ome_writer.write_image, ome_scale.Methods

    path = Path(path)
    arr = data if isinstance(data, da.Array) else da.from_array(np.asarray(data))
    chunks = tuple(min(int(c), int(s)) for c, s in zip(chunks, arr.shape, strict=True))
    arr = arr.rechunk(chunks)
    factors = _levels(arr.shape) if scale_factors is None else tuple(scale_factors)
    axis_units = {d: OME_UNITS[u] for d, u in zip(dims, units or (), strict=False)
                  if u in OME_UNITS}
    sizes = {d: float(s) for d, s in zip(dims, scale or (), strict=False)}

    def write(target: Path):
        root = zarr.open_group(str(target), mode="w")
        level0 = arr
        if factors:  # level 0 first, then the pyramid from what was written
            da.to_zarr(arr, str(target / "_level0"), compute=True)
            level0 = da.from_zarr(str(target / "_level0"))
        write_image(level0, root, axes=list(dims), axes_units=axis_units or None,
                    scale=sizes or None, scale_factors=factors,
                    method=Methods.LOCAL_MEAN, storage_options={"chunks": chunks},
                    name=attrs.get("name", "image"))
        if factors:
            import shutil

            shutil.rmtree(target / "_level0")
        _add_omero(target, root, labels, colors)
        root.attrs[META_KEY] = attrs

    if atomic:
        with atomic_folder(path) as tmp:
            write(tmp)
    else:
        path.mkdir(parents=True, exist_ok=True)
        write(path)
    return path


def _add_omero(target, root, labels, colors) -> None:
    """The ``omero`` channel metadata: names, colours and contrast windows (the range of
    each channel in the smallest level, read back block by block)."""
    import dask
    import dask.array as da

    ome_io, ome_reader, _, _ = import_ome_zarr()
    node = next(n for n in ome_reader.Reader(ome_io.parse_url(str(target), mode="r"))()
                if n.load(ome_reader.Multiscales) is not None)
    small = node.data[-1]
    axes = tuple(range(1, small.ndim))
    lows, highs = dask.compute(da.nanmin(small, axis=axes), da.nanmax(small, axis=axes))
    channels = []
    for i, label in enumerate(labels):
        lo, hi = float(lows[i]), float(highs[i])
        lo, hi = (lo, hi) if np.isfinite(lo) and np.isfinite(hi) else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1.0
        channels.append({"label": str(label), "color": _hex(colors[i]), "active": True,
                         "window": {"min": lo, "max": hi, "start": lo, "end": hi}})
    omero = {"channels": channels, "rdefs": {"model": "color"}}
    attrs = dict(root.attrs)
    if "ome" in attrs:  # OME-Zarr 0.5 (zarr v3): everything under "ome"
        ome = dict(attrs["ome"])
        ome["omero"] = omero
        root.attrs["ome"] = ome
    else:
        root.attrs["omero"] = omero


def _spatial_dims(n: int) -> tuple:
    if n > 3:
        raise ValueError(f"OME-Zarr images have at most 3 spatial axes (z, y, x); these have "
                         f"{n}.")
    return _SPATIAL[3 - n:]


def write_maps_ome_zarr(path, maps, names, *, colors=None, pixel_size=None,
                        chunks=None, scale_factors=None, atomic=True, extra=None) -> Path:
    """Write component maps as an OME-Zarr image (see the module doc).

    Parameters
    ----------
    path : str or Path
        The ``.ome.zarr`` folder (replaced whole).
    maps : ndarray or dask array, shape (k, *spatial) with 1 to 3 spatial axes
        One map per component; a dask array is streamed to the store.
    names : sequence of str
        Component names (the channel labels).
    colors : sequence, optional
        One colour per component (matplotlib colours); the default palette otherwise.
    pixel_size : tuple (scale, units), optional
        One size and unit (``"um"`` ...) per spatial axis (e.g. ``StackData.scale``
        without the spectral axis); kept as the scale transformations.
    chunks : tuple of int, optional
        Chunks of level 0, default one component by 512 x 512 pixels (whole planes
        along ``z``: 1).
    scale_factors : tuple of int, optional
        Downsampling factors of the pyramid; default 2, 4 ... while the smaller plane
        side stays at least 256 pixels (none for small maps).
    atomic : bool, default True
        Write into a temporary folder and swap it in; False writes into ``path``
        directly (it is a caller's temporary folder).
    extra : dict, optional
        Added to napari-unmix's attribute of the image.

    Returns
    -------
    Path
    """
    from ..core.colors import default_colors

    k = int(maps.shape[0])
    names = [str(n) for n in names]
    if len(names) != k:
        raise ValueError(f"{len(names)} names for {k} maps.")
    colors = list(colors) if colors is not None else default_colors(k)
    dims = ("c", *_spatial_dims(maps.ndim - 1))
    chunks = chunks or (1, *(1 for _ in dims[1:-2]), 512, 512)[-len(dims):]
    scale = units = None
    if pixel_size is not None and pixel_size[0] is not None:
        scale = (1.0, *pixel_size[0])
        units = ("", *pixel_size[1])
    attrs = {"kind": "maps", "component_names": names, "name": "maps", **(extra or {})}
    return _write(path, maps, dims, scale=scale, units=units, labels=names, colors=colors,
                  attrs=attrs, chunks=chunks, atomic=atomic, scale_factors=scale_factors)


def write_stack_ome_zarr(path, data, *, spectral_axis=0, spectral_values=None,
                         spectral_unit=None, pixel_size=None, chunks=None,
                         scale_factors=(), atomic=True) -> Path:
    """Write a spectral stack as an OME-Zarr image that :func:`open_stack` reads back.

    Parameters
    ----------
    path : str or Path
        The ``.ome.zarr`` folder (replaced whole).
    data : ndarray or dask array
        The stack: a spectral axis and 1 to 3 spatial axes (in z, y, x order).
    spectral_axis : int, default 0
        Moved to the front (OME's ``c``).
    spectral_values : array_like, optional
        Position of every channel; stored in napari-unmix's attribute and as the
        channel labels (``"2850 cm^-1"``).
    spectral_unit : str, optional
    pixel_size : tuple (scale, units), optional
        One size and unit per spatial axis.
    chunks : tuple of int, optional
        Default: every channel by 512 x 512 pixels (1 along ``z``), blocks that span
        the spectral axis.
    scale_factors : tuple of int, default ()
        Pyramid levels (none by default: a stack is analysed at full resolution).
    atomic : bool, default True

    Returns
    -------
    Path

    Examples
    --------
    A TIFF series converted plane by plane (nothing of the series' size in memory):
    ``files`` are the planes' TIFFs, each ``(C, Y, X)``; they are stacked along a new
    axis 1, so that the channels stay on axis 0, the spectral axis:

    >>> import dask.array as da
    >>> from napari_unmix.io import open_stack
    >>> planes = [open_stack(f, lazy=True).data for f in files]   # read by path, lazily
    >>> cube = da.stack(planes, axis=1)                           # (C, Z, Y, X)
    >>> write_stack_ome_zarr("cube.ome.zarr", cube, spectral_axis=0).name
    'cube.ome.zarr'
    """
    import dask.array as da

    arr = data if isinstance(data, da.Array) else da.from_array(np.asarray(data))
    arr = da.moveaxis(arr, spectral_axis, 0)
    n = int(arr.shape[0])
    dims = ("c", *_spatial_dims(arr.ndim - 1))
    chunks = chunks or (n, *(1 for _ in dims[1:-2]), 512, 512)[-len(dims):]
    values = None if spectral_values is None else \
        [float(v) for v in np.asarray(spectral_values, dtype=np.float64).ravel()]
    if values is not None and len(values) != n:
        raise ValueError(f"{len(values)} spectral values for {n} channels.")
    unit = f" {spectral_unit}" if spectral_unit else ""
    labels = [f"{v:g}{unit}" for v in values] if values is not None else \
        [f"channel {i}" for i in range(n)]
    scale = units = None
    if pixel_size is not None and pixel_size[0] is not None:
        scale, units = (1.0, *pixel_size[0]), ("", *pixel_size[1])
    attrs = {"kind": "stack", "name": "stack", "spectral_values": values,
             "spectral_unit": spectral_unit}
    return _write(path, arr, dims, scale=scale, units=units, labels=labels,
                  colors=["FFFFFF"] * n, attrs=attrs, chunks=chunks, atomic=atomic,
                  scale_factors=scale_factors)


def _is_dask(a) -> bool:
    return hasattr(a, "dask") and hasattr(a, "chunks")


def write_result_maps_ome_zarr(folder, result, spatial_shape, *, colors=None,
                               pixel_size=None):
    """Write a result's maps as the OME-Zarr image ``folder`` (an output set's own folder).

    A dask ``W`` (a chunked run) is streamed to the store block by block; the result
    returned then holds ``W`` read back from level 0 (for ``result.npz``) instead of
    computing it again.

    Parameters
    ----------
    folder : Path
        The output set's temporary folder (written into directly).
    result : UnmixResult
    spatial_shape : tuple of int
    colors : sequence, optional
    pixel_size : tuple (scale, units), optional
        One size and unit per spatial axis; dropped for a line or > 3 spatial axes.

    Returns
    -------
    result : UnmixResult
        With an in-memory ``W``.
    composite_maps : ndarray, shape (k, [Z,] Y', X')
        The smallest pyramid level, for the composite image.
    """
    import dataclasses

    import dask.array as da

    k = result.n_components
    spatial = tuple(int(s) for s in spatial_shape)
    lazy = _is_dask(result.W)
    maps = (da.moveaxis(result.W, 1, 0).reshape((k, *spatial)) if lazy
            else result.maps(spatial))
    if maps.ndim == 2:  # a line: one row
        maps, pixel_size = maps[:, None, :], None
    elif maps.ndim > 4:  # fold the leading spatial axes into z
        maps, pixel_size = maps.reshape((k, -1, *maps.shape[-2:])), None
    write_maps_ome_zarr(folder, maps, result.component_names, colors=colors,
                        pixel_size=pixel_size, atomic=False)
    ome_io, ome_reader, _, _ = import_ome_zarr()
    node = next(n for n in ome_reader.Reader(ome_io.parse_url(str(folder), mode="r"))()
                if n.load(ome_reader.Multiscales) is not None)
    if lazy:
        w = np.asarray(node.data[0]).reshape(k, -1).T
        result = dataclasses.replace(result, W=np.ascontiguousarray(w))
    return result, np.asarray(node.data[-1])
