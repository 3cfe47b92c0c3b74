"""Figure export from the dock: the shown run's composite as the canvas shows it.

:func:`canvas_composite` adds the run's visible map layers up on the plane the
viewer shows, each through its own colormap between its contrast limits (additive
blending, as napari draws them; a PCA score map in its diverging colormap), and
names each component with its colour for the legend.  :func:`export_figure` draws
that with :func:`napari_unmix.io.figures.composite_figure` (legend, scale bar from
the layers' scale and units, pixels as tall as the canvas draws them: an image with
non-square pixels keeps its proportions) and writes a PNG or SVG at the chosen resolution: the
same figure as the CLI's ``composite.png``.  The dock's button draws it on a worker
thread (:func:`export_figure_in_background`): at 300 dpi that takes a few hundred
milliseconds, which the GUI thread must not wait for.

:func:`add_export_row` adds the dock's "Export figure…" button and its resolution
box (a file dialog; tests call :func:`export_figure` with a path).
"""

from __future__ import annotations

import numpy as np

from ..io.figures import LegendEntry, write_composite_figure
from .seed_context import layer_uid

__all__ = ["add_export_row", "canvas_composite", "export_figure",
           "export_figure_in_background", "run_map_layers"]

#: The resolution the dock offers first (dots per inch).
DEFAULT_DPI = 300


def run_map_layers(viewer, record) -> list:
    """The component map layers of run ``record`` in the viewer (no residual layer),
    in layer order: the visible ones, or all when none is visible."""
    uids = set(record.layer_uids) - {record.residual_uid}
    layers = [lyr for lyr in viewer.layers if layer_uid(lyr) in uids]
    shown = [lyr for lyr in layers if lyr.visible]
    return shown or layers


def _map_axes(layer) -> list[int]:
    """The axes of map ``layer`` that are the image's spatial axes (Y, X last): all
    but the length-1 axis a dock's map keeps for the spectral axis of a stack whose
    spectral axis is not its first (``(Y, X, C)`` -> maps ``(Y, X, 1)``), known from the
    layer's ``spatial_shape`` metadata."""
    shape = tuple(layer.data[0].shape if getattr(layer, "multiscale", False)
                  else layer.data.shape)
    axes = list(range(len(shape)))
    meta = layer.metadata if isinstance(layer.metadata, dict) else {}
    spatial = meta.get("spatial_shape")
    if spatial is not None and len(shape) == len(spatial) + 1:
        spatial = tuple(int(n) for n in spatial)
        drop = next((i for i in axes if shape[i] == 1 and shape[:i] + shape[i + 1:] == spatial),
                    None)
        if drop is not None:
            axes.remove(drop)
    return axes


def _plane(layer, world_point) -> np.ndarray:
    """The Y-X plane of map ``layer`` at ``world_point`` (every other axis at the
    point's index, a spectral stand-in axis at its one index)."""
    data = layer.data[-1] if getattr(layer, "multiscale", False) else layer.data
    coords = np.asarray(layer.world_to_data(world_point), dtype=np.float64)
    if getattr(layer, "multiscale", False):  # the smallest level: a figure, not the data
        full = np.asarray(layer.data[0].shape, dtype=np.float64)
        coords = coords * np.asarray(data.shape) / full
    plane_axes = _map_axes(layer)[-2:]
    index = tuple(slice(None) if axis in plane_axes
                  else min(max(int(np.floor(c + 0.5)), 0), n - 1)
                  for axis, (c, n) in enumerate(zip(coords, data.shape, strict=True)))
    return np.asarray(data[index], dtype=np.float64)


def canvas_composite(layers, world_point) -> tuple[np.ndarray, list]:
    """The composite ``(Y, X, 3)`` in [0, 1] of map ``layers`` on the plane at
    ``world_point``, and their :class:`~napari_unmix.io.figures.LegendEntry` list."""
    if not layers:
        raise ValueError("there are no map layers to export: run an analysis first.")
    point = np.asarray(world_point, dtype=np.float64)
    rgb, legend = None, []
    for lyr in layers:
        plane = _plane(lyr, point)
        lo, hi = (float(v) for v in lyr.contrast_limits)
        level = np.clip((np.nan_to_num(plane) - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        colors = np.asarray(lyr.colormap.map(level.ravel()), dtype=np.float64)
        part = colors[:, :3].reshape(*level.shape, 3)
        if rgb is None:
            rgb = np.zeros_like(part)
        if part.shape != rgb.shape:
            raise ValueError(f"map layer {lyr.name!r} has another shape {part.shape[:2]} than "
                             f"the others {rgb.shape[:2]}; export one run at a time.")
        rgb += part
        meta = lyr.metadata if isinstance(lyr.metadata, dict) else {}
        color = meta.get("color") or "#ffffff"
        legend.append(LegendEntry(str(meta.get("component_name", lyr.name)), str(color)))
    return np.clip(rgb, 0.0, 1.0), legend


def _pixel_size(layer):
    """The X pixel size and unit of map ``layer`` (None, None without physical units)."""
    x = _map_axes(layer)[-1]
    unit = str(layer.units[x]) if getattr(layer, "units", None) is not None else ""
    if unit in ("", "pixel", "dimensionless"):
        return None, None
    return float(layer.scale[x]), unit


def _pixel_aspect(layer) -> float:
    """A pixel's height over its width in map ``layer`` (its Y scale over its X scale),
    as the canvas draws it; 1.0 for scales that are not positive."""
    y, x = _map_axes(layer)[-2:]
    sy, sx = (abs(float(layer.scale[a])) for a in (y, x))
    return sy / sx if sy > 0 and sx > 0 and np.isfinite(sy / sx) else 1.0


def _figure_parts(dock) -> dict:
    """What the figure shows, read from the viewer on the GUI thread (cheap): the
    composite, its legend, the pixel size and the title."""
    record = dock.session.current
    if record is None:
        raise ValueError("there is no run to export yet: run an analysis first.")
    layers = run_map_layers(dock.viewer, record)
    rgb, legend = canvas_composite(layers, dock.viewer.dims.point)
    size, unit = _pixel_size(layers[0])
    if size is not None and getattr(layers[0], "multiscale", False):
        size *= layers[0].data[0].shape[-1] / layers[0].data[-1].shape[-1]
    title = record.label.split(" · relative error")[0]
    return {"rgb": rgb, "legend": legend, "pixel_size": size, "unit": unit, "title": title,
            "pixel_aspect": _pixel_aspect(layers[0])}


def export_figure(dock, path, *, dpi: float = DEFAULT_DPI):
    """Write the shown run's composite figure (legend, scale bar) to ``path`` (.png or
    .svg) at ``dpi``; returns the path.

    Raises
    ------
    ValueError
        No run shown, its map layers deleted, or a suffix other than .png / .svg.
    """
    parts = _figure_parts(dock)
    return write_composite_figure(path, parts.pop("rgb"), parts.pop("legend"), dpi=dpi,
                                  **parts)


def export_figure_in_background(dock, path, *, dpi: float = DEFAULT_DPI, on_done):
    """:func:`export_figure` with the drawing on a worker thread (matplotlib's Agg
    canvas, no pyplot: safe off the GUI thread); the composite is read from the
    layers first, on the GUI thread.  ``on_done(Outcome)`` comes back on the GUI
    thread, its ``value`` the path written.  Errors in reading the layers are raised
    here, before anything starts."""
    from .workers import start_job

    parts = _figure_parts(dock)
    rgb, legend = parts.pop("rgb"), parts.pop("legend")

    def draw(callback=None):
        return write_composite_figure(path, rgb, legend, dpi=dpi, **parts)

    return start_job(draw, on_progress=lambda info: None, on_done=on_done)


def add_export_row(dock, layout) -> None:
    """Add "Export figure…" and its resolution box to ``layout`` of the dock (which has
    ``viewer``, ``session`` and ``status``); the outcome is said on the status line."""
    from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QSpinBox

    button = QPushButton("Export figure…")
    button.setToolTip("Save the shown run's composite (its visible maps, as the canvas shows "
                      "them on this plane) with a legend of the components' names and "
                      "colours and a scale bar in the image's units, as PNG or SVG (by the "
                      "file name's suffix). The CLI's composite.png is the same figure.")
    dpi = QSpinBox()
    dpi.setRange(50, 1200)
    dpi.setSingleStep(50)
    dpi.setValue(DEFAULT_DPI)
    dpi.setSuffix(" dpi")
    dpi.setToolTip("The resolution of an exported PNG: the figure is 6 inches wide, so "
                   "300 dpi gives 1800 pixels. Default 300.")

    def clicked(*_):
        path, _ = QFileDialog.getSaveFileName(dock, "Export figure", "composite.png",
                                              "PNG image (*.png);;SVG drawing (*.svg)")
        if not path:
            return
        def done(outcome):
            button.setEnabled(True)
            if outcome.error is not None:
                dock.status.setText(f"Refused: {outcome.error}")
            else:
                dock.status.setText(f"Exported the figure to {outcome.value}.")

        try:
            dock.export_job = export_figure_in_background(dock, path, dpi=dpi.value(),
                                                          on_done=done)
        except (ValueError, OSError) as exc:
            dock.status.setText(f"Refused: {exc}")
            return
        button.setEnabled(False)
        dock.status.setText(f"Exporting the figure to {path}…")

    button.clicked.connect(clicked)
    row = QHBoxLayout()
    row.addWidget(button, 1)
    row.addWidget(dpi)
    dock.export_button, dock.export_dpi = button, dpi
    layout.addLayout(row)
