"""npe2 writer hooks: component maps, spectra and whole results, all written atomically.

Each hook takes napari's layer tuples ``(data, attributes, layer_type)`` and
returns the written paths.  The result an image layer belongs to is found in its
``metadata`` (key :data:`~napari_unmix._napari.layers.RESULT_KEY`, as the reader
and the unmixing dock put it there), with ``component_index`` saying which
component the layer shows; the label image of a run seeded from label ids under
:data:`~napari_unmix._napari.layers.LABELS_KEY`.

=========================  ==========  ==================================================
hook                       extension   writes
=========================  ==========  ==================================================
:func:`write_maps`         .tif        the selected image layers as one float32 ImageJ
                                       TIFF, one page per layer, named after the
                                       components (or the layers)
:func:`write_spectra`      .csv        the spectra of the selected components, first
                                       column the spectral axis of their result; for a
                                       per-plane z / t series also each plane's own
                                       (``name_zNNN.csv``, as the result folder's
                                       ``spectra_zNNN.csv``); those of an earlier save
                                       that this one does not write are removed
:func:`write_bundle`       .npz        the whole result (maps layout, spectra, config,
                                       summary): opened again by the reader
:func:`write_result_folder` (none)     a result folder like the CLI's (maps.tif,
                                       spectra.csv, composite, config.json, result.json,
                                       result.npz; labels.tif for a run seeded from
                                       label ids), written whole
=========================  ==========  ==================================================

A result folder is written into a temporary folder beside the target and swapped
in as a whole (:func:`napari_unmix.io.write_analysis_outputs`): the target must be
new, empty or an earlier result folder, so no file of the user's is replaced.

They raise ``ValueError`` with what to do when the layers do not fit (no
result in their metadata, mixed shapes ...); napari shows the message.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .layers import LABELS_KEY, RESULT_KEY

__all__ = ["write_bundle", "write_maps", "write_result_folder", "write_spectra"]

logger = logging.getLogger(__name__)


def _result_of(meta: dict):
    """The UnmixResult in a layer's metadata (under RESULT_KEY, or any value that is one)."""
    from ..core.result import UnmixResult

    meta = meta or {}
    found = meta.get(RESULT_KEY)
    if isinstance(found, UnmixResult):
        return found
    return next((v for v in meta.values() if isinstance(v, UnmixResult)), None)


def _component_index(meta: dict, result) -> int | None:
    i = (meta or {}).get("component_index")
    if i is None or isinstance(i, bool):
        return None
    i = int(i)
    return i if 0 <= i < result.n_components else None


def _image_layers(layer_data, what: str) -> list:
    images = [(d, a or {}) for d, a, t in layer_data if t == "image"]
    if not images:
        raise ValueError(f"Select one or more image layers to save {what}.")
    return images


def _results(layer_data, what: str):
    """[(layer name, result, component index or None, metadata)], and a clear error if none."""
    refs = []
    for _, attrs in _image_layers(layer_data, what):
        meta = attrs.get("metadata") or {}
        result = _result_of(meta)
        if result is not None:
            refs.append((attrs.get("name", ""), result, _component_index(meta, result), meta))
    if not refs:
        raise ValueError(f"None of the selected layers holds a napari-unmix result, so there "
                         f"are no {what} to save. Select the map layers of a result (from the "
                         "unmixing dock or an opened result file).")
    return refs


def _one_result(refs, what: str):
    distinct = {id(r): r for _, r, _, _ in refs}
    if len(distinct) > 1:
        names = ", ".join(repr(n) for n, _, _, _ in refs)
        raise ValueError(f"The selected layers ({names}) come from {len(distinct)} different "
                         f"results; select the layers of one result to save {what}.")
    return refs[0][1]


def _layout(refs, result):
    """Spatial shape and mask of a result from its layers' metadata or data."""
    for _, _, _, meta in refs:
        if meta.get("spatial_shape") is not None:
            return tuple(int(s) for s in meta["spatial_shape"]), meta.get("mask")
    raise ValueError("The layers do not record the image shape of their result "
                     "(metadata 'spatial_shape'); cannot lay out the maps.")


def _map_of(data, attrs):
    """(map, name) of one layer: a result's component from ``W``, else the layer data."""
    meta = attrs.get("metadata") or {}
    result = _result_of(meta)
    i = _component_index(meta, result) if result is not None else None
    if i is not None and meta.get("spatial_shape") is not None:
        shape = tuple(int(s) for s in meta["spatial_shape"])
        try:  # exact values, on the analysed grid (a dock layer may carry extra axes)
            return result.maps(shape, mask=meta.get("mask"))[i], result.component_names[i]
        except ValueError:
            pass
    data = np.asarray(data)
    if data.ndim > 3:
        data = data.reshape([n for n in data.shape if n != 1] or [1])
    name = result.component_names[i] if i is not None else str(attrs.get("name", "map"))
    return data, name


def _spectral_axis_of(dshape, shape) -> int | None:
    """The length-1 axis a map layer of data shape ``dshape`` keeps where the stack has
    its spectral axis (maps of spatial ``shape``), or None."""
    return next((i for i in range(len(dshape)) if dshape[i] == 1
                 and dshape[:i] + dshape[i + 1:] == tuple(shape)), None)


def _stack_layout_of(layers, shape):
    """Where maps of spatial ``shape`` lie in the analysed stack
    (:class:`~napari_unmix.io.StackLayout`), from the layers when they all agree: the
    spectral axis is the length-1 axis a dock's map keeps for it, else the one the
    opened result recorded (metadata ``stack_layout``), else 0 for a dock's map made
    over an image (``source_uid``: the image's spectral axis was its first); scale,
    origin and axis names are the layers' own on the spatial axes.  None when the
    layers disagree or do not fit ``shape``."""
    from ..io import StackLayout
    from .axes import is_default_label
    from .layers import META_KEY

    found = set()
    for data, attrs in layers:
        dshape = tuple(getattr(data, "shape", ()))
        meta = attrs.get("metadata") or {}
        axes = list(range(len(dshape)))
        if len(dshape) == len(shape) + 1:
            s = _spectral_axis_of(dshape, shape)
            if s is None:
                return None
            axes.remove(s)
        elif len(dshape) == len(shape):
            known = meta.get("stack_layout")
            s = getattr(known, "spectral_axis", None)
            made = meta.get(META_KEY) if isinstance(meta.get(META_KEY), dict) else {}
            if s is None and made.get("source_uid") is not None:
                s = 0
        else:
            return None
        values = [attrs.get(key) for key in ("scale", "translate", "axis_labels")]
        if any(v is None or len(v) != len(dshape) for v in values):
            return None
        scale, translate, labels = values
        names = tuple(str(labels[i]) for i in axes)
        found.add((s, tuple(float(scale[i]) for i in axes),
                   tuple(float(translate[i]) for i in axes),
                   None if all(is_default_label(a) for a in names) else names))
    if len(found) != 1:
        return None
    s, scale, origin, names = found.pop()
    return StackLayout(spectral_axis=s, scale=scale, origin=origin, axis_names=names)


def _pixel_size_of(layers, shape):
    """``(scale, units)`` of the spatial axes of the maps (``shape``: Y, X or Z, Y, X),
    from the layers' ``scale`` and ``units`` when they all agree and the Y and X axes
    have a length unit (a Z or T axis without one keeps its scale, with unit ``""``: a
    stack calibrated in X and Y only keeps that); else None.  A length-1 axis that a
    map layer keeps over a channel-last stack is left out."""
    from ..io.pixel_sizes import length_unit

    found = set()
    for data, attrs in layers:
        dshape = tuple(getattr(data, "shape", ()))
        scale, units = attrs.get("scale"), attrs.get("units")
        if scale is None or units is None or len(scale) != len(dshape):
            return None
        axes = list(range(len(dshape)))
        if len(dshape) == len(shape) + 1:
            drop = _spectral_axis_of(dshape, shape)
            if drop is None:
                return None
            axes.remove(drop)
        elif len(dshape) != len(shape):
            return None
        lengths = tuple(length_unit(str(units[i])) for i in axes)
        if None in lengths[-2:]:
            return None
        found.add((tuple(float(scale[i]) for i in axes), tuple(u or "" for u in lengths)))
    return found.pop() if len(found) == 1 else None


def write_maps(path: str, layer_data: list) -> list[str]:
    """Write image layers as component maps: one float32 ImageJ TIFF, one page each.

    A layer of a result contributes its component's map (from ``W``, on the
    analysed image's grid), named after the component; another image layer its
    data, named after the layer.  All maps must have one 2-D (Y, X) or 3-D
    (Z, Y, X) shape.
    """
    from ..io import write_maps_tiff

    images = _image_layers(layer_data, "maps")
    if any(a.get("rgb") for _, a in images):
        raise ValueError("RGB layers are not maps; select grey-scale map layers.")
    pairs = [_map_of(d, a) for d, a in images]
    shapes = {tuple(m.shape) for m, _ in pairs}
    if len(shapes) != 1:
        raise ValueError(f"The selected image layers differ in shape ({sorted(shapes)}); maps "
                         "saved together must share one shape.")
    shape = shapes.pop()
    if len(shape) not in (2, 3):
        raise ValueError(f"Maps must be 2-D (Y, X) or 3-D (Z, Y, X); the selected layers have "
                         f"shape {shape}. Save a result with more axes as a .npz bundle.")
    maps = np.stack([np.asarray(m, dtype=np.float32) for m, _ in pairs])
    return [str(write_maps_tiff(path, maps, [n for _, n in pairs],
                                pixel_size=_pixel_size_of(images, shape)))]


def _plane_H(result):
    """Every plane's spectra of a per-plane z / t series result (``arrays["plane_H"]``,
    n_planes x k x channels), or None."""
    plane_H = (getattr(result, "arrays", None) or {}).get("plane_H")
    if plane_H is None or np.ndim(plane_H) != 3 or np.shape(plane_H)[1:] != \
            np.shape(result.H):
        return None
    return np.asarray(plane_H, dtype=np.float64)


def _plane_rows(picked) -> list | None:
    """Per plane, the rows of the picked ``(result, j)`` (None: no per-plane series
    among them); refuses a mix of per-plane series and other results, or series of
    different numbers of planes: no one file per plane fits them all."""
    planes = [_plane_H(r) for r, _ in picked]
    if all(h is None for h in planes):
        return None
    counts = {None if h is None else h.shape[0] for h in planes}
    if len(counts) > 1:
        raise ValueError("The selected components come from a per-plane z / t series and "
                         "from results with other planes (another series, or one image); "
                         "save their spectra separately.")
    n = counts.pop()
    return [np.stack([h[z, j] for h, (_, j) in zip(planes, picked, strict=True)])
            for z in range(n)]


def write_spectra(path: str, layer_data: list) -> list[str]:
    """Write the spectra (H rows) of the selected components as CSV.

    The first column is the result's spectral axis (wavenumber, wavelength, or the
    channel index when unknown).  A layer holding a result without a
    ``component_index`` contributes all of its components.

    The map layers of a per-plane z / t series (each plane fitted with its own
    spectra) write at ``path`` the mean of the planes' matched spectra, which no plane
    was fitted with, and beside it each plane's own as ``<name>_zNNN.csv`` (named
    like the result folder's ``spectra_zNNN.csv``); all paths are returned.

    Files beside ``path`` named ``<name>_zNNN.csv`` that this save did not write (the
    extra planes of an earlier save of more planes, or every plane's under a save of
    one set of spectra) are removed once everything is written, so that the files
    beside ``path`` belong to one result; the log and a napari notification name
    them.  A file of that name that is not a spectra table is left, and named too.
    """
    from ..io import write_spectra_csv

    refs = _results(layer_data, "spectra")
    rows, names, layers, axes, picked = [], [], [], [], []
    seen = set()
    for layer_name, result, i, _ in refs:
        for j in ([i] if i is not None else range(result.n_components)):
            if (id(result), j) in seen:
                continue
            seen.add((id(result), j))
            rows.append(np.asarray(result.H[j], dtype=np.float64))
            names.append(result.component_names[j])
            layers.append(layer_name)
            axes.append(result)
            picked.append(j)
    first = axes[0]
    for r in axes[1:]:
        same_axis = (r.n_channels == first.n_channels
                     and (r.spectral_values is None) == (first.spectral_values is None)
                     and (r.spectral_values is None
                          or np.array_equal(r.spectral_values, first.spectral_values))
                     and r.spectral_unit == first.spectral_unit)
        if not same_axis:
            raise ValueError("The selected components come from results with different "
                             "spectral axes; save their spectra separately.")
    if len(set(names)) != len(names):  # the same name in two results: add the layer name
        names = [f"{n} ({layer})" for n, layer in zip(names, layers, strict=True)]
    per_plane = _plane_rows([(r, j) for r, j in zip(axes, picked, strict=True)])
    written = [str(write_spectra_csv(path, np.stack(rows), first.spectral_values, names,
                                     first.spectral_unit))]
    target = Path(path)
    if per_plane is not None:
        width = max(3, len(str(len(per_plane) - 1)))
        written += [str(write_spectra_csv(
            target.with_name(f"{target.stem}_z{z:0{width}d}{target.suffix or '.csv'}"),
            plane, first.spectral_values, names, first.spectral_unit))
            for z, plane in enumerate(per_plane)]
    _remove_earlier_planes(target, written, 0 if per_plane is None else len(per_plane))
    return written


def _remove_earlier_planes(target: Path, written, n_planes: int) -> None:
    """Remove the per-plane spectra of an earlier save to ``target`` that this save
    did not write (``<stem>_zNNN<suffix>`` beside it, spectra tables only), so that
    the files beside ``target`` are one result's; log and show what went, and the
    files of that name that are no spectra table (left as they are)."""
    import re

    from ..io import read_spectra_csv

    pattern = re.compile(re.escape(target.stem) + r"_z\d+" + re.escape(target.suffix or ".csv"))
    done = {Path(p).name for p in written}
    removed, left, stuck = [], [], []
    for entry in sorted(target.parent.iterdir()):
        if entry.name in done or not pattern.fullmatch(entry.name) or not entry.is_file():
            continue
        try:
            read_spectra_csv(entry)
        except (ValueError, OSError, UnicodeDecodeError):
            left.append(entry.name)
            continue
        try:
            entry.unlink()
        except OSError:
            stuck.append(entry.name)
        else:
            removed.append(entry.name)
    now = f"{n_planes} plane(s)" if n_planes else "no spectra per plane"
    parts = []
    if removed:
        parts.append(f"removed {', '.join(removed)}: per-plane spectra of an earlier save to "
                     f"{target.name} (this one has {now}).")
    if stuck:
        parts.append(f"Could not remove {', '.join(stuck)} (per-plane spectra of an earlier "
                     f"save to {target.name}); delete them by hand.")
    if left:
        parts.append(f"Left {', '.join(left)}: named like per-plane spectra of {target.name} "
                     "but not read as a spectra table; move them away to keep the set apart.")
    if parts:
        _say("napari-unmix: " + " ".join(parts))


def _say(message: str) -> None:
    logger.info(message)
    try:
        from napari.utils.notifications import show_info

        show_info(message)
    except Exception:  # noqa: BLE001 - no napari notification system: the log is enough
        pass


def write_bundle(path: str, layer_data: list) -> list[str]:
    """Write the result of the selected layers as one ``.npz`` bundle (read back as layers,
    with the layers' pixel sizes when they have physical units)."""
    from ..io import write_result_bundle

    refs = _results(layer_data, "a result")
    result = _one_result(refs, "a result")
    shape, mask = _layout(refs, result)
    images = _image_layers(layer_data, "a result")
    return [str(write_result_bundle(path, result, shape, mask=mask,
                                    pixel_size=_pixel_size_of(images, shape),
                                    stack_layout=_stack_layout_of(images, shape)))]


def write_result_folder(path: str, layer_data: list) -> list[str]:
    """Write the result of the selected layers as a result folder (the CLI's outputs).

    The folder is replaced whole; one holding other files than an earlier result's is
    refused (ValueError, shown by napari).  The label image of a run seeded from label
    ids (the layers' :data:`~napari_unmix._napari.layers.LABELS_KEY`) is kept as
    ``labels.tif``, so that ``napari-unmix run --config FOLDER`` needs no ``--labels``.
    """
    from ..io import write_analysis_outputs

    refs = _results(layer_data, "a result")
    result = _one_result(refs, "a result")
    shape, mask = _layout(refs, result)
    if mask is not None:
        raise ValueError("This result covers only the pixels of a mask; save it as a .npz "
                         "bundle instead (result folders hold whole images).")
    colors = [None] * result.n_components
    for _, _, i, meta in refs:
        if i is not None and meta.get("color"):
            colors[i] = meta["color"]
    if None in colors:
        colors = None
    images = _image_layers(layer_data, "a result")
    labels = next((meta[LABELS_KEY] for _, _, _, meta in refs
                   if meta.get(LABELS_KEY) is not None), None)
    files = write_analysis_outputs(Path(path), result, shape, colors=colors,
                                   pixel_size=_pixel_size_of(images, shape),
                                   stack_layout=_stack_layout_of(images, shape),
                                   labels=labels)
    written = []
    for v in files.values():
        written.extend(str(p) for p in (v if isinstance(v, list) else [v]))
    return written
