"""Channel layers stacked into one spectral stack, and OME-Zarr maps as lazy layers.

napari-ome-zarr (and napari's ``channel_axis``) open an OME-Zarr spectral stack as
one 2-D image layer per channel, which the unmixing dock cannot use: it unmixes one
layer with a spectral axis.  :func:`stack_channel_layers` turns same-shaped 2-D image
layers back into one stack: a lazy ``dask.array.stack`` of the layers' data (level 0
of multiscale layers; nothing is copied), the spectral axis first, the spectral
positions read from the layer names when every one is a number (``"2850 cm^-1"``,
``"500 nm"``, ``"500"``), the layers' scale and units kept.  The dock's "Stack channel
layers" button (:func:`add_stack_button`) applies it to the selected image layers
(at least two), else to the largest group of same-shaped 2-D image layers.

:func:`lazy_map_layers` makes the layers of an OME-Zarr output set
(``napari-unmix run --out-format ome-zarr``) lazy: every component's map is the
multiscale list of its pyramid levels (dask arrays read on demand), placed with the
pixel sizes of the image's scale transformations.

Qt is imported only by :func:`add_stack_button`.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["add_stack_button", "lazy_map_layers", "stack_channel_layers",
           "stackable_layers"]

_NUMBER = re.compile(r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(nm|cm\^?-1|cm⁻¹|1/cm)?\s*$")


def _level0(layer):
    data = layer.data
    return data[0] if getattr(layer, "multiscale", False) else data


def _plane_key(layer):
    data = _level0(layer)
    return (tuple(int(s) for s in data.shape), str(data.dtype),
            tuple(float(s) for s in layer.scale))


def stackable_layers(layers) -> list:
    """The layers :func:`stack_channel_layers` would stack: the selected 2-D image layers
    when they are at least two and alike, else the largest group of alike ones.

    Parameters
    ----------
    layers : iterable of napari layers
        E.g. the selected layers, or all of the viewer's.

    Returns
    -------
    list
        Image layers, in their order; empty when no two 2-D image layers share a shape,
        dtype and scale.
    """
    groups: dict = {}
    for layer in layers:
        if getattr(layer, "_type_string", None) != "image" or getattr(layer, "rgb", False):
            continue
        if _level0(layer).ndim != 2:
            continue
        groups.setdefault(_plane_key(layer), []).append(layer)
    best = max(groups.values(), key=len, default=[])
    return best if len(best) >= 2 else []


def _values(names):
    found = [_NUMBER.search(str(n)) for n in names]
    if not all(found):
        return None, None
    from ..io.spectral_sidecar import normalise_unit

    units = {normalise_unit(m.group(2)) for m in found if m.group(2)}
    values = np.asarray([float(m.group(1)) for m in found])
    if len(units) > 1 or len(set(values.tolist())) != len(values):
        return None, None
    return values, (units.pop() if units else None)


def stack_channel_layers(layers, *, name=None) -> tuple:
    """One spectral-stack layer tuple ``(data, kwargs, "image")`` from 2-D channel layers.

    Parameters
    ----------
    layers : sequence of napari Image layers
        Same shape, dtype and scale; their order is the channel order.
    name : str, optional
        Default: the common start of the layer names, else ``"stacked channels"``.

    Returns
    -------
    tuple
        The data are ``dask.array.stack`` of the layers' (level-0) data, lazy; the
        metadata are those of a stack read by napari-unmix's reader (spectral axis
        0, spectral positions from the names where they all are numbers).

    Raises
    ------
    ValueError
        Fewer than two layers, or layers that differ in shape, dtype or scale.
    """
    import dask.array as da

    from .axes import axis_labels

    layers = list(layers)
    if len(layers) < 2:
        raise ValueError("select at least two 2-D image layers (one per channel) to stack.")
    keys = {_plane_key(layer) for layer in layers}
    if len(keys) != 1 or _level0(layers[0]).ndim != 2:
        raise ValueError("the layers to stack must be 2-D images of one shape, dtype and "
                         "scale; select the channel layers of one image.")
    planes = [da.asarray(_level0(layer)) for layer in layers]
    data = da.stack(planes)
    names = [layer.name for layer in layers]
    values, unit = _values(names)
    first = layers[0]
    scale = (1.0, *(float(s) for s in first.scale))
    units = ("", *(str(u) for u in first.units))
    if name is None:
        common = re.sub(r"[\s_:\-\[\]()]*$", "", _common_start(names))
        name = common or "stacked channels"
    source = getattr(getattr(first, "source", None), "path", None)
    meta = {"spectral_axis_index": 0, "spectral_values": values,
            "spectral_unit": unit if values is not None else None,
            "spectral_axis_guessed": False, "axes": "CYX",
            "source_path": None if source is None else str(source),
            "notes": [f"stacked from {len(layers)} channel layers ({names[0]} .. {names[-1]})."],
            "lazy": True, "series_index": None,
            "pixel_size": {"scale": scale, "units": units} if any(units) else None}
    kwargs = {"name": name, "metadata": meta, "colormap": "gray", "scale": scale,
              "axis_labels": axis_labels(3, 0, axes="CYX", unit=meta["spectral_unit"])}
    if any(units):
        kwargs["units"] = tuple(u or "pixel" for u in units)
    return (data, kwargs, "image")


def _common_start(names) -> str:
    first = min(names)
    last = max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def add_stacked(viewer):
    """Stack the selected (else the largest group of) channel layers; returns the new
    layer, with the channel layers hidden."""
    chosen = stackable_layers(viewer.layers.selection) or stackable_layers(viewer.layers)
    if not chosen:
        raise ValueError("no two 2-D image layers of one shape to stack: open the channels "
                         "of one image (e.g. an OME-Zarr opened by napari-ome-zarr) and "
                         "select them.")
    order = {id(layer): i for i, layer in enumerate(viewer.layers)}
    chosen = sorted(chosen, key=lambda layer: order[id(layer)])
    data, kwargs, _ = stack_channel_layers(chosen)
    layer = viewer.add_image(data, **kwargs)
    for old in chosen:
        old.visible = False
    return layer


def add_stack_button(dock, layout) -> None:
    """Add the "Stack channel layers" button to ``layout`` of the dock (which has
    ``viewer`` and ``status``); a refusal is shown on the dock's status line."""
    from qtpy.QtWidgets import QPushButton

    button = QPushButton("Stack channel layers")
    button.setToolTip("Make one spectral stack of 2-D channel layers (e.g. an OME-Zarr "
                      "opened as one layer per channel): the selected image layers, else "
                      "the largest group of same-shaped ones, lazily, in layer order; "
                      "spectral values are read from the layer names when they are numbers.")

    def clicked(*_):
        try:
            layer = add_stacked(dock.viewer)
        except ValueError as exc:
            dock.status.setText(f"Refused: {exc}")
            return
        dock.status.setText(f"Stacked {layer.data.shape[0]} channel layers into "
                            f"'{layer.name}'.")

    button.clicked.connect(clicked)
    dock.stack_channels_button = button
    layout.addWidget(button)


def lazy_map_layers(path, layers) -> list:
    """The map layers of an OME-Zarr output set, lazy and multiscale (see the module doc).

    Parameters
    ----------
    path : Path
        The output set (an OME-Zarr image of the maps).
    layers : list of tuple
        The layer tuples made from its result (:func:`.reader.result_layer_data`), one
        per component, in order.

    Returns
    -------
    list of tuple
        The same layers with ``data`` the list of pyramid levels of their channel,
        ``multiscale=True`` and the physical ``scale`` / ``units`` of level 0.
    """
    from ..io.zarr_stacks import import_ome_zarr

    ome_io, ome_reader, _, _ = import_ome_zarr()
    node = next(n for n in ome_reader.Reader(ome_io.parse_url(str(path), mode="r"))()
                if n.load(ome_reader.Multiscales) is not None)
    levels = node.data
    axes = node.metadata.get("axes") or []
    transforms = (node.metadata.get("coordinateTransformations") or [None])[0] or []
    scale = next((t.get("scale") for t in transforms if t.get("type") == "scale"), None)
    from ..io.pixel_sizes import length_unit

    out = []
    for i, (_, kwargs, kind) in enumerate(layers):
        pyramid = [level[i] for level in levels]
        kwargs = dict(kwargs, multiscale=len(pyramid) > 1)
        if scale is not None and len(scale) == len(axes):
            kwargs["scale"] = tuple(float(s) for s in scale[1:])
            units = [length_unit(a.get("unit")) for a in axes[1:]]
            if all(units):
                kwargs["units"] = tuple(units)
        kwargs["metadata"] = dict(kwargs["metadata"], lazy=True)
        out.append((pyramid if len(pyramid) > 1 else pyramid[0], kwargs, kind))
    return out
