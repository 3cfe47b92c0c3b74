"""zarr and OME-Zarr stacks: the zarr branch of :func:`~napari_unmix.io.readers.open_stack`.

A ``.zarr`` folder (or any folder holding zarr metadata: ``zarr.json``, ``.zgroup``,
``.zarray``) is read with zarr and, when it is an OME-Zarr image, with ome-zarr-py:

OME-Zarr (a group with ``multiscales`` metadata)
    Level 0 of the first multiscale image, as a dask array read block by block
    (ome-zarr's :class:`~ome_zarr.reader.Reader`).  Axes come from the axes
    metadata: an axis of type ``"channel"`` (or named ``c`` / ``ch`` /
    ``channel``) is ``C``, one named ``lambda`` / ``wavelength`` / ``wavenumber``
    / ``e`` is ``E`` (the spectral axis, before ``C``), ``t``, ``z``, ``y``, ``x``
    are ``T``, ``Z``, ``Y``, ``X``.  Physical pixel sizes are the ``scale`` of
    level 0's coordinate transformations, times the ``scale`` of the multiscale
    image's own transformations where it has them, with the axes' ``unit``
    (``micrometer`` -> ``um`` ...; ``angstrom``, ``picometer`` and the other metric
    lengths converted exactly, a unit that is not used said in a note).  Spectral
    positions: napari-unmix's own attribute (:data:`~napari_unmix.io.stack.META_KEY`,
    written by :func:`~napari_unmix.io.ome_zarr_out.write_stack_ome_zarr`), else the omero
    channel labels when every one reads as a number (optionally followed by
    ``nm`` or ``cm^-1``).
a zarr array
    The array; axis names from ``dimension_names`` (zarr v3) or
    ``_ARRAY_DIMENSIONS`` (xarray's convention in zarr v2), read as above;
    spectral positions from napari-unmix's attribute.
a plain zarr group
    Its only array with two or more dimensions, else the one named like an
    ``.npz`` stack (``stack``, ``data`` ...).  A bioformats2raw folder (its images
    as the groups ``0``, ``1`` ...) is refused, naming the images to open.
OME-Zarr labels
    Refused: a label image (``img.ome.zarr/labels/cells``, ``image-label``
    metadata) holds integer ids, not spectra, and the ``labels`` group holds label
    images; the message names them and how to use one as seeds (``--labels``, or a
    Labels layer in the dock).  :func:`read_zarr_labels` reads a label image as one
    (level 0).

The data stay lazy (dask, the store's chunks) unless ``lazy=False`` asks for them
in memory: a zarr store is chunked already.  Each task reopens the store by path,
so the graph pickles small and runs on a ``dask.distributed`` cluster.  Needs
``zarr`` (and ``ome-zarr`` for OME-Zarr): the ``napari-unmix[distributed]`` extra.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .lazy import check_declared_size, format_size, want_lazy
from .pixel_sizes import length, unit_note
from .spectral_sidecar import normalise_unit, number_or_none
from .stack import META_KEY, axis_from_letters
from .zarr_folders import (
    ZARR_META,
    ZARR_SUFFIXES,
    is_zarr_folder,
    ome_labels_kind,
    zarr_attributes,
)

__all__ = ["ZARR_SUFFIXES", "import_ome_zarr", "is_zarr_folder", "labels_refusal",
           "ome_axis_letters", "read_zarr", "read_zarr_labels", "require_zarr"]

_STACK_KEYS = ("stack", "data", "cube", "image", "X", "0", "s0")
_LETTERS = {"t": "T", "time": "T", "c": "C", "ch": "C", "channel": "C", "z": "Z", "y": "Y",
            "x": "X", "e": "E", "lambda": "E", "wavelength": "E", "wavenumber": "E",
            "spectral": "E", "spectrum": "E"}
_LABEL = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(nm|cm\^?-1|cm⁻¹|1/cm)?\s*$")


def require_zarr(what: str = "zarr"):
    """Import and return ``zarr``, or raise an ImportError that names the extra."""
    try:
        import zarr
    except ImportError:
        raise ImportError(f"reading or writing {what} needs the zarr package: pip install "
                          "'napari-unmix[distributed]' (or pip install zarr ome-zarr).") from None
    return zarr


def import_ome_zarr():
    """ome-zarr's ``(io, reader, writer, scale)`` modules, or an ImportError naming the extra.

    ome-zarr warns of its own deprecated ``Scaler`` when imported (its writer builds
    one as a default argument); that warning is about ome-zarr, not about the caller.
    """
    import importlib
    import warnings

    require_zarr("OME-Zarr")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return tuple(importlib.import_module(f"ome_zarr.{m}")
                         for m in ("io", "reader", "writer", "scale"))
    except ImportError:
        raise ImportError("OME-Zarr needs ome-zarr: pip install 'napari-unmix[distributed]' "
                          "(or pip install ome-zarr).") from None


def ome_axis_letters(names, types=None) -> str | None:
    """tifffile-style letters of OME-Zarr / xarray axis names (None when not all known).

    Parameters
    ----------
    names : sequence of str
    types : sequence of str or None, optional
        OME axis types (``"channel"``, ``"space"``, ``"time"``).

    Returns
    -------
    str or None
        One letter per axis, all different; None when a name is unknown.
    """
    letters = []
    for i, name in enumerate(names):
        kind = (types[i] if types is not None else None) or ""
        letter = _LETTERS.get(str(name).strip().lower())
        if letter is None and kind == "channel":
            letter = "C"
        if letter is None:
            return None
        letters.append(letter)
    out = "".join(letters)
    return out if len(set(out)) == len(out) else None


def _own_meta(attrs) -> dict:
    meta = attrs.get(META_KEY) if hasattr(attrs, "get") else None
    return dict(meta) if isinstance(meta, dict) else {}


def _label_values(labels, n):
    """Spectral positions from channel labels that all read as numbers, or (None, None)."""
    if not labels or len(labels) != n:
        return None, None
    found = [_LABEL.match(str(lab)) for lab in labels]
    if not all(found):
        return None, None
    units = {normalise_unit(m.group(2)) for m in found if m.group(2)}
    if len(units) > 1:
        return None, None
    return (np.asarray([float(m.group(1)) for m in found]),
            units.pop() if units else None)


def _scale_of(transforms, ndim):
    """The ``scale`` of a list of coordinate transformations (one per axis), or None
    (none, given by ``path``, the wrong length, not numbers)."""
    scale = next((t.get("scale") for t in transforms or []
                  if isinstance(t, dict) and t.get("type") == "scale"), None)
    if not isinstance(scale, list) or len(scale) != ndim:
        return None
    return scale if all(isinstance(v, (int, float)) for v in scale) else None


def _multiscale_transforms(attrs) -> list:
    """The coordinate transformations of the first multiscale image as a whole (OME-Zarr
    0.4 and 0.5 allow them beside the levels' own, applied after them); ome-zarr's
    reader does not return them."""
    multiscales = attrs.get("multiscales") or (attrs.get("ome") or {}).get("multiscales")
    first = multiscales[0] if isinstance(multiscales, list) and multiscales else None
    transforms = first.get("coordinateTransformations") if isinstance(first, dict) else None
    return transforms if isinstance(transforms, list) else []


def _read_ome(path: Path, root, notes: list) -> dict:
    ome_io, ome_reader, _, _ = import_ome_zarr()
    Multiscales, Reader = ome_reader.Multiscales, ome_reader.Reader
    location = ome_io.parse_url(str(path), mode="r")
    if location is None:
        raise ValueError("ome-zarr cannot open it as an OME-Zarr image.")
    node = next((n for n in Reader(location)() if n.load(Multiscales) is not None), None)
    if node is None or not node.data:
        raise ValueError("it holds no OME-Zarr multiscale image.")
    data = node.data[0]
    axes_meta = node.metadata.get("axes") or []
    names = [a.get("name") if isinstance(a, dict) else a for a in axes_meta]
    types = [a.get("type") if isinstance(a, dict) else None for a in axes_meta]
    axes = ome_axis_letters(names, types) if len(names) == data.ndim else None
    if len(node.data) > 1:
        notes.append(f"{path.name}: level 0 of {len(node.data)} resolution levels read, "
                     f"shape {tuple(data.shape)}.")
    pixel_sizes = {}
    transforms = (node.metadata.get("coordinateTransformations") or [None])[0] or []
    scale = _scale_of(transforms, data.ndim)
    whole = _scale_of(_multiscale_transforms(root.attrs), data.ndim)
    if scale is not None and whole is not None:  # the image's own, after the level's
        scale = [float(a) * float(b) for a, b in zip(scale, whole, strict=True)]
    if axes is not None and scale is not None:
        for letter, size, a in zip(axes, scale, axes_meta, strict=True):
            unit = a.get("unit") if isinstance(a, dict) else None
            found = length(size, unit)
            if letter in "XYZ" and found is not None:
                pixel_sizes[letter] = found
            elif letter in "XYZ" and float(size) > 0:
                note = unit_note(unit, f"{path.name}: its axes' unit")
                if note is not None and note not in notes:
                    notes.append(note)
    own = _own_meta(root.attrs)
    values, unit, source = own.get("spectral_values"), own.get("spectral_unit"), None
    if values is not None:
        source, unit = META_KEY, normalise_unit(unit)
    elif axes is not None:
        letter = next((x for x in ("E", "C") if x in axes), None)
        if letter is not None:
            n = int(data.shape[axes.index(letter)])
            values, unit = _label_values(node.metadata.get("channel_names"), n)
            source = "omero channel labels" if values is not None else None
    return {"data": data, "axes": axes, "values": values, "unit": unit, "source": source,
            "pixel_sizes": pixel_sizes}


def _array_of(path: Path, group):
    arrays = dict(group.arrays())
    stacks = {k: a for k, a in arrays.items() if a.ndim >= 2}
    if len(stacks) == 1:
        return next(iter(stacks.items()))
    for key in _STACK_KEYS:
        if key in stacks:
            return key, stacks[key]
    listed = ", ".join(f"{k} {tuple(a.shape)}" for k, a in sorted(arrays.items())) or "none"
    raise ValueError(f"the group holds no single stack (arrays: {listed}); give the path of "
                     f"the array itself, e.g. {path / next(iter(sorted(stacks)), 'stack')}.")


def _refuse_image_collection(path: Path, group) -> None:
    """A bioformats2raw folder (what bioformats2raw makes of a Bio-Formats file) holds its
    images as the groups ``0``, ``1`` ...: name the one to open."""
    if "bioformats2raw.layout" not in group.attrs and \
            "bioformats2raw.layout" not in (group.attrs.get("ome") or {}):
        return
    images = sorted((k for k, _ in group.groups() if k.isdigit()), key=int)
    listed = ", ".join(images[:8]) + (" ..." if len(images) > 8 else "") or "none"
    raise ValueError(
        f"it is a bioformats2raw folder: it holds the images of a Bio-Formats file as the "
        f"group{'s' if len(images) != 1 else ''} {listed}, not one stack. Open one, e.g. "
        f"{path / (images[0] if images else '0')}.")


def _image_above(path: Path) -> Path | None:
    return path if "multiscales" in zarr_attributes(path) else None


def labels_refusal(path) -> str | None:
    """Why ``path`` is not a spectral stack when it is OME-Zarr labels (a label image or
    the ``labels`` group), with how to use a label image as seeds; None otherwise.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str or None
    """
    path = Path(path)
    kind = ome_labels_kind(path)
    if kind is None:
        return None
    what, names = kind
    use = ("napari opens OME-Zarr labels with napari-ome-zarr (a Labels layer over its "
           "image); napari-unmix uses a label image as seeds, one seeded component per "
           "label id: choose its Labels layer under 'Components from layer' in the "
           "unmixing dock, or run napari-unmix run {image} --mode seeded-nmf --labels {label} "
           "--out DIR.")
    if what == "image-label":
        image = _image_above(path.parent.parent)
        return (f"{path} is an OME-Zarr label image (integer label ids"
                f"{f' of the image {image}' if image else ''}), not a spectral stack. "
                + use.format(image=image or "STACK", label=path))
    image = _image_above(path.parent)
    listed = ", ".join(names) or "none"
    return (f"{path} is the labels group of an OME-Zarr image: it holds the label "
            f"image{'s' if len(names) != 1 else ''} {listed}, not a spectral stack. Open "
            f"the image{f' itself, {image}' if image else ''}; "
            + use.format(image=image or "STACK", label=path / (names[0] if names else "NAME")))


def read_zarr_labels(path):
    """Level 0 of an OME-Zarr label image (``image-label``) as an array of label ids.

    Parameters
    ----------
    path : str or Path
        The label image's folder, e.g. ``img.ome.zarr/labels/cells``.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        When ``path`` is not an OME-Zarr label image (the ``labels`` group: naming
        its label images).
    """
    zarr = require_zarr("OME-Zarr labels")
    path = Path(path)
    kind = ome_labels_kind(path)
    if kind is None or kind[0] != "image-label":
        names = kind[1] if kind else []
        listed = f" (the labels group of {', '.join(names) or 'none'})" if kind else ""
        example = path / names[0] if names else "img.ome.zarr/labels/cells"
        raise ValueError(f"{path} is not an OME-Zarr label image{listed}: give the folder "
                         f"of one label image, e.g. {example}.")
    multiscales = zarr_attributes(path).get("multiscales")
    try:
        level = multiscales[0]["datasets"][0]["path"]
    except (TypeError, KeyError, IndexError):
        raise ValueError(f"{path}: its multiscales metadata names no level 0.") from None
    return np.asarray(zarr.open_array(store=str(path / level), mode="r")[...])


def _dimension_names(arr):
    names = getattr(getattr(arr, "metadata", None), "dimension_names", None)
    if names and all(n is not None for n in names):
        return list(names)
    names = arr.attrs.get("_ARRAY_DIMENSIONS")
    return list(names) if isinstance(names, list) else None


def read_zarr(path, *, series=None, squeeze=True, lazy=None, threshold=None) -> dict:
    """Read a zarr array, zarr group or OME-Zarr image as a stack (see the module doc).

    Parameters
    ----------
    path : Path
        The ``.zarr`` folder.
    series, squeeze
        Not used (the TIFF options of :func:`~napari_unmix.io.readers.open_stack`).
    lazy : bool or None
        True or None: a dask array over the store's chunks; False: in memory.
    threshold : int or None
        Not used (a zarr store is read lazily whatever its size).

    Returns
    -------
    dict
        The keys of :func:`~napari_unmix.io.readers.register_stack_format`.

    Raises
    ------
    ImportError
        Without zarr (or ome-zarr for an OME-Zarr image), naming the extra.
    ValueError
        When the folder cannot be read as a zarr stack.
    """
    import dask.array as da

    zarr = require_zarr()
    path = Path(path)
    notes: list[str] = []
    refusal = labels_refusal(path)
    if refusal is not None:
        raise ValueError(refusal)
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as exc:  # noqa: BLE001 - zarr raises many types on foreign folders
        if path.is_dir() and not any((path / m).exists() for m in ZARR_META):
            raise ValueError(f"{path} is not a zarr store: it holds none of "
                             f"{', '.join(ZARR_META)}, which zarr and ome-zarr "
                             "write at the top of every array or group. Give the .zarr "
                             "folder itself, not a folder above or inside it.") from None
        raise ValueError(f"{path} could not be read as zarr: {type(exc).__name__}: "
                         f"{exc}") from None
    try:
        if isinstance(node, zarr.Group) and ("multiscales" in node.attrs or
                                             "multiscales" in (node.attrs.get("ome") or {})):
            r = _read_ome(path, node, notes)
            kind = "OME-Zarr"
        else:
            if isinstance(node, zarr.Group):
                _refuse_image_collection(path, node)
                key, arr = _array_of(path, node)
                notes.append(f"{path.name}: array {key!r} of the group read.")
                own = {**_own_meta(node.attrs), **_own_meta(arr.attrs)}
                component = key
            else:
                arr, own, component = node, _own_meta(node.attrs), None
            names = _dimension_names(arr)
            axes = ome_axis_letters(names) if names and len(names) == arr.ndim else None
            data = da.from_zarr(str(path), component=component)
            values = own.get("spectral_values")
            r = {"data": data, "axes": axes, "values": values,
                 "unit": normalise_unit(own.get("spectral_unit")),
                 "source": META_KEY if values is not None else None, "pixel_sizes": {}}
            kind = "zarr"
    except ValueError as exc:
        raise ValueError(f"{path} could not be read as {'' if 'OME' in str(exc) else 'a '}"
                         f"zarr stack: {exc}") from None
    data = r["data"]
    nbytes = int(np.prod(data.shape, dtype=object)) * data.dtype.itemsize
    is_lazy = True if lazy is None else want_lazy(lazy, nbytes, threshold)  # chunked already
    if is_lazy:
        notes.append(f"{path.name} opened lazily ({kind}, chunks "
                     f"{tuple(int(c[0]) for c in data.chunks)}, {format_size(nbytes)}).")
    else:
        try:
            check_declared_size(data.shape, data.dtype)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        data = np.asarray(data)
    axes = r["axes"]
    index, guessed = axis_from_letters(axes) if axes else (None, False)
    return {"data": data, "axes": axes, "index": index, "guessed": guessed,
            "values": None if r["values"] is None else
            [number_or_none(str(v)) for v in r["values"]],
            "unit": r["unit"], "values_source": r["source"], "notes": notes,
            "lazy": is_lazy, "series_index": None, "pixel_sizes": r["pixel_sizes"]}
