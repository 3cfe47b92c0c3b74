"""npe2 reader hook: spectral stacks and napari-unmix results as napari layers.

:func:`get_reader` claims spectral stacks and napari-unmix results and leaves
everything else to napari's own reader (the rule: :mod:`.reader_rule`):

* claimed: napari-unmix results (a bundle ``.npz`` or a result folder; an
  OME-Zarr output set opens as lazy multiscale maps with its pixel sizes), zarr
  and OME-Zarr stacks (``.zarr`` folders: one lazy layer with the spectral axis),
  folders of TIFF slices (a metadata file beside them, such as Leica's ``03.txt``, is
  fine), ``.npz`` stacks, TIFF files with spectral evidence (napari-unmix
  metadata, a spectral-axis sidecar file, a lambda axis, or a channel axis that
  OME, ImageJ or Zeiss LSM metadata name; ``.lsm`` lambda stacks too), ``.npy``
  files with a sidecar;
* declined: 2-D and RGB images, TIFF files without spectral evidence (plain
  multi-page stacks, z-stacks and time series without a channel axis), ``.npy``
  files without a sidecar.  napari's builtins open those, and the dock still
  unmixes any image with three or more axes.

The reading itself is :func:`napari_unmix.io.open_stack` /
:func:`~napari_unmix.io.read_result_bundle`.

Never raises into napari: :func:`get_reader` returns ``None`` for a path it does
not claim (wrong type, not a regular file, wrong magic bytes, not a spectral
stack), and the reader it returns gives ``None`` when reading fails, after
logging why (logger ``napari_unmix._napari.reader``) and showing a napari warning.

Layers
------
A stack becomes one image layer; its ``metadata`` holds

``spectral_axis_index``
    Position of the spectral axis in the layer data.
``spectral_values``, ``spectral_unit``
    Position of every channel and its unit (``"cm^-1"``, ``"nm"`` ...), when the
    file, its metadata or a sidecar file gives them; otherwise ``None`` (the dock
    then says that channel numbers are used, and offers to enter the values).
``pixel_size``
    ``{"scale": ..., "units": ...}`` per axis when the metadata give physical pixel
    sizes (OME, ImageJ, Zeiss LSM, a Leica ``.txt`` file); the layer's ``scale``
    and ``units`` are set from them, so napari's scale bar reads µm.
``spectral_axis_guessed``
    True when the spectral axis was guessed (the notification says which).
``axes``, ``source_path``, ``notes``, ``lazy``, ``series_index``
    How the file was read.

A result becomes one image layer per component, made like the unmixing dock's
maps (:mod:`napari_unmix._napari.layers`: the component's colour, additive
blending); each layer's ``metadata`` holds the whole result
(:data:`~napari_unmix._napari.layers.RESULT_KEY`, re-exported here),
``component_index``, ``component_name``, ``spatial_shape``, ``color``, ``mask``,
``stack_layout`` and ``source_path`` (see :func:`result_layer_data`); those of a
result folder that keeps the label image of a run seeded from label ids (``labels.tif``,
named with its checksum in its ``config.json``: :func:`kept_labels`) hold it too
(:data:`~napari_unmix._napari.layers.LABELS_KEY`), so that saving them as a result
folder again keeps it.  The writers (:mod:`napari_unmix._napari.writer`) read these
keys.  When the result records
where its maps lie in the analysed stack (:class:`~napari_unmix.io.StackLayout`:
a z / t series always does), the layers are placed on that stack as the dock
places its own maps (:func:`on_stack_axes`): the maps of a ``(Z, C, Y, X)`` stack
keep a length-1 axis for its channels, so one Z slider moves the image and them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..io.pixel_sizes import unit_text
from .axes import axis_labels
from .channel_stack import lazy_map_layers
from .help_texts import dock_words
from .layers import RESULT_KEY, component_styles, map_layer_kwargs
from .reader_rule import claim

__all__ = ["RESULT_KEY", "get_reader", "kept_labels", "on_stack_axes", "read_layers",
           "result_layer_data", "stack_layer_data"]

logger = logging.getLogger(__name__)

def _paths(path) -> list[Path]:
    if isinstance(path, (str, os.PathLike)):
        return [Path(path)]
    return [Path(p) for p in path]


def get_reader(path):
    """npe2 ``get_reader`` hook: :func:`read_layers` for paths it claims (spectral
    stacks and results, see :mod:`.reader_rule`), else None (napari's own reader)."""
    try:
        paths = _paths(path)
        verdicts = [claim(p) for p in paths]
        for p, (claimed, why) in zip(paths, verdicts, strict=True):
            if not claimed:
                logger.info("napari-unmix leaves %s to napari's reader: %s", p, why)
        if paths and all(claimed for claimed, _ in verdicts):
            return read_layers
    except Exception as exc:  # noqa: BLE001 - the hook must never raise into napari
        logger.info("napari-unmix does not read %r: %s", path, exc)
    return None


def _notify(message: str, *, warning: bool = False) -> None:
    (logger.warning if warning else logger.info)(message)
    try:
        from napari.utils.notifications import show_info, show_warning

        (show_warning if warning else show_info)(dock_words(message))
    except Exception:  # noqa: BLE001 - no napari notification system: the log is enough
        pass


def stack_layer_data(stack, name: str | None = None) -> tuple:
    """The image layer tuple of a :class:`~napari_unmix.io.StackData`."""
    values = stack.spectral_values
    meta = {
        "spectral_axis_index": int(stack.spectral_axis),
        "spectral_values": None if values is None else np.asarray(values, dtype=np.float64),
        "spectral_unit": stack.spectral_unit if values is not None else None,
        "spectral_axis_guessed": bool(stack.guessed),
        "axes": stack.axes,
        "source_path": None if stack.path is None else str(stack.path),
        "notes": list(stack.notes),
        "lazy": bool(stack.lazy),
        "series_index": stack.series,
        "pixel_size": None if stack.scale is None else {"scale": tuple(stack.scale),
                                                         "units": tuple(stack.units)},
    }
    kwargs = {"name": name or (stack.path.name if stack.path is not None else "stack"),
              "metadata": meta, "colormap": "gray",
              "axis_labels": axis_labels(stack.data.ndim, stack.spectral_axis, axes=stack.axes,
                                         unit=stack.spectral_unit if values is not None
                                         else None)}
    if stack.scale is not None:
        kwargs["scale"] = tuple(stack.scale)
        kwargs["units"] = tuple(u or "pixel" for u in stack.units)
    return (stack.data, kwargs, "image")


def _color(value, fallback: str) -> str:
    from matplotlib.colors import to_hex

    try:
        return to_hex(value if value is not None else fallback)
    except (ValueError, TypeError):
        return to_hex(fallback)


def kept_labels(bundle):
    """The label image a result folder keeps for a run seeded from label ids
    (``labels.tif``, named with its checksum in its ``config.json``), read and checked
    as ``napari-unmix run --config`` reads it (:func:`napari_unmix.io.read_setup_labels`);
    None when it keeps none.  A missing, unreadable or changed file gives None, and a
    warning saying that the maps open without it."""
    from ..core.config import AnalysisConfig
    from ..io import CONFIG_NAME, read_setup_labels

    path = None if bundle.path is None else Path(bundle.path) / CONFIG_NAME
    if path is None or not path.is_file():
        return None
    try:
        return read_setup_labels(AnalysisConfig.load(path), path)
    except (OSError, ValueError) as exc:
        _notify(f"napari-unmix: {bundle.path.name}: {exc}. Its maps open without the label "
                "image, so saving them as a result folder keeps no labels.tif ('napari-unmix "
                "run --config' of that folder then needs --labels).", warning=True)
        return None


def result_layer_data(bundle, name: str | None = None, *, labels=None) -> list[tuple]:
    """Image layer tuples, one per component map, of a :class:`~napari_unmix.io.ResultBundle`.

    The layers look like the ones the unmixing dock adds
    (:func:`napari_unmix._napari.layers.map_layer_kwargs`: black-to-colour maps with
    additive blending, a diverging colormap for PCA scores).  Colours come from
    the analysis config stored in the result (component ``color``), else from the
    default palette.  Layer names are ``"<file>: <component>"``.  ``labels``: the
    label image the result was made with (:func:`kept_labels`), kept in the metadata
    (:data:`~napari_unmix._napari.layers.LABELS_KEY`).
    """
    from ..core.colors import default_colors

    result = bundle.result
    k = result.n_components
    given, background = component_styles(result)
    colors = [_color(c, d) for c, d in zip(given, default_colors(k), strict=True)]
    stem = name or (bundle.path.name if bundle.path is not None else "result")
    shape = tuple(int(s) for s in bundle.spatial_shape)
    shown = result
    if bundle.mask is not None:  # only some pixels were analysed: maps are NaN elsewhere
        shown = result.on_every_pixel(bundle.mask)
    layers = []
    for i, comp in enumerate(result.component_names):
        data, kwargs = map_layer_kwargs(shown, i, color=colors[i], spatial_shape=shape,
                                        source_image=stem, background=background[i],
                                        labels=labels)
        kwargs["name"] = f"{stem}: {comp}"
        if bundle.pixel_size is not None:  # the stack's pixel sizes, kept by the output set
            kwargs["scale"] = bundle.pixel_size[0]
            kwargs["units"] = tuple(u or "pixel" for u in bundle.pixel_size[1])
        kwargs["metadata"].update({
            RESULT_KEY: result,
            "stack_layout": bundle.layout,
            "mask": bundle.mask,
            "source_path": None if bundle.path is None else str(bundle.path),
            "notes": list(bundle.notes),
        })
        layers.append((data, kwargs, "image"))
    return layers


def on_stack_axes(layers, bundle) -> tuple[list[tuple], str]:
    """The map layers of ``bundle`` (:func:`result_layer_data`) on the axes of the stack
    they were computed from, as the dock places its own maps
    (:func:`.layers.placement`), and a note ("" when none is due).

    With the bundle's :attr:`~napari_unmix.io.ResultBundle.layout`: the maps take its
    scale (or the pixel sizes), origin (``translate``) and axis names; and when the
    stack's spectral axis lay in front of its last two axes (``(Z, C, Y, X)``) they
    keep a length-1 axis there, stretched over the stack's channels, so that napari,
    which lines a layer's axes up with the others' last ones, puts their Z axis on
    the stack's Z axis (without it, it lay on the channel axis).  A spectral axis
    among the last two (``(Y, X, C)``) gets no such axis: the maps would show their X
    axis and that length-1 axis as their plane; the note says so.
    """
    layout = bundle.layout
    if layout is None:
        return layers, ""
    shape = tuple(int(n) for n in bundle.spatial_shape)
    n = len(shape)
    result = bundle.result
    s = layout.spectral_axis
    insert = s is not None and 0 < s < n - 1
    unit = result.spectral_unit if result.spectral_values is not None else None
    labels = list(axis_labels(n + 1, s or 0, unit=unit))
    names = list(layout.axis_names) if layout.axis_names is not None else \
        [a for i, a in enumerate(labels) if i != (s or 0)]
    out = []
    for data, kwargs, kind in layers:
        kwargs = dict(kwargs)
        scale = list(kwargs.get("scale") or layout.scale or [1.0] * n)
        units = list(kwargs.get("units") or ["pixel"] * n)
        translate = list(layout.origin or [0.0] * n)
        axes = list(names)
        if insert:
            m = result.n_channels
            index = (slice(None),) * s + (None,)
            data = [level[index] for level in data] if isinstance(data, list) else data[index]
            scale.insert(s, float(m))   # one pixel over channel coordinates -0.5 .. m - 0.5
            translate.insert(s, (m - 1) / 2.0)
            units.insert(s, "pixel")
            axes.insert(s, labels[s])
        kwargs.update(scale=tuple(scale), translate=tuple(translate), units=tuple(units),
                      axis_labels=tuple(axes))
        out.append((data, kwargs, kind))
    note = ""
    if s is not None and s >= n - 1 and n >= 2:
        note = (f"The stack's spectral axis was its axis {s}, among its last two: the maps "
                "are shown on its spatial axes alone. To lay them on the image, choose the "
                "image in the unmixing dock and open the result with 'Open result…'.")
    return out, note


def _layers_of(path: Path) -> list[tuple]:
    from ..io import is_result_bundle, open_stack, read_result_bundle
    from ..io.zarr_stacks import is_zarr_folder

    if is_result_bundle(path):
        bundle = read_result_bundle(path)
        layers = result_layer_data(bundle, labels=kept_labels(bundle))
        if is_zarr_folder(path):  # an OME-Zarr output set: its maps, lazy and multiscale
            layers = lazy_map_layers(path, layers)
        layers, note = on_stack_axes(layers, bundle)
        msg = (f"napari-unmix: {path.name}: {bundle.result.n_components} component map(s) "
               f"of a {bundle.result.mode} result, shape {tuple(bundle.spatial_shape)}.")
        _notify(" ".join([msg, *bundle.notes, note]).strip(), warning=bundle.guessed_shape)
        return layers
    stack = open_stack(path)
    axis = stack.spectral_axis
    letter = f" ({stack.axes[axis]})" if stack.axes else ""
    how = "guessed" if stack.guessed else "named by the file"
    if stack.spectral_values is not None:
        unit = f" {stack.spectral_unit}" if stack.spectral_unit else ""
        values = (f", {stack.spectral_values[0]:g} .. {stack.spectral_values[-1]:g}{unit}")
    else:
        values = (" (no spectral values in the file: channel numbers are used; enter them "
                  "under 'spectral values' in the unmixing dock)")
    size = ""
    if stack.scale is not None:
        parts = {f"{v:.4g} {unit_text(u)}" for v, u in zip(stack.scale, stack.units,
                                                            strict=True) if u}
        size = f", pixel size {' x '.join(sorted(parts))}"
    msg = (f"napari-unmix: {path.name}: spectral axis = axis {axis}{letter} ({how}) with "
           f"{stack.n_channels} channels{values}, data shape {tuple(stack.data.shape)}"
           f"{size}.")
    _notify(" ".join([msg, *stack.notes]), warning=stack.guessed)
    return [stack_layer_data(stack)]


def read_layers(path) -> list[tuple] | None:
    """Read stacks / results into napari layer tuples; None (with a logged reason) on failure."""
    try:
        paths = _paths(path)
    except Exception as exc:  # noqa: BLE001
        logger.warning("napari-unmix cannot read %r: %s", path, exc)
        return None
    layers: list[tuple] = []
    for p in paths:
        try:
            layers.extend(_layers_of(p))
        except Exception as exc:  # noqa: BLE001 - never raise into napari
            _notify(f"napari-unmix could not open {p}: {exc}", warning=True)
    return layers or None
