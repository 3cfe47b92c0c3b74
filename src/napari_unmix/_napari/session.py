"""The dock's state, without Qt: an evented model over a napari viewer (model).

:class:`UnmixSession` holds what the "Spectral unmixing" dock works on and decides
what follows from it; the dock (:mod:`.widget`) only shows it and passes the user's
edits on.  It works with a plain :class:`napari.components.ViewerModel`.

State
    * the chosen image and its spectral axis, as an :class:`~.rois.ImageGrid`
      (:meth:`~UnmixSession.grid`);
    * the component rows (:class:`~.seed_inputs.RowSettings`);
    * the last published result (a typed
      :class:`~napari_unmix.core.result.UnmixResult`), the image it belongs to, and
      after a z / t series run its :class:`~napari_unmix.core.series.SeriesResult`;
    * the series choice and the reference plane, hence the series plan
      (:meth:`~UnmixSession.plan`, a :class:`~.series_run.SeriesPlan`).

Plane following
    The reference plane follows the viewer's dims slider (the plane of the chosen
    image the viewer shows) until the user sets another one; once the user sets it
    back to the viewer's plane it follows again.  Choosing another image or spectral
    axis makes it follow again.  After a per-plane series run, the spectra shown are
    those of the plane the viewer shows, and change with the slider.

Events (:attr:`UnmixSession.events`, psygnal)
    ``grid(ImageGrid | None)``: the image or its spectral axis changed;
    ``plane(int)``: the reference plane moved (following the slider);
    ``rows(list)``: the session replaced the rows (from a layer, from a result);
    ``result(UnmixResult)``: a result was published (its map layers are in place);
    ``spectra(SpectraView)``: what the spectra dock should show now;
    ``notice(kind, message)``: something to tell the user (``"info"``, ``"warning"``);
    ``history(list)``: the runs of the history changed (:mod:`.run_history`).

Results
    Publishing, the run history, the run shown and the one compared with it are
    :class:`~.session_results.ResultsMixin`'s.

Seed layers
    Rows made from a Labels or Shapes layer hold it by identity
    (:mod:`.seed_context`): :meth:`~UnmixSession.row_problems` says which rows lost
    their layer; labels of a layer that lie off the image's grid are reported by id
    when rows are made from it; :meth:`~UnmixSession.new_seed_layer` makes a Labels
    layer over the image's Y-X grid (its dabs stay visible on every channel).
"""

from __future__ import annotations

import logging

import numpy as np
from psygnal import Signal, SignalGroup

from ..core.colors import default_colors
from ..core.sources import PreviousResult, RoiLabel, RoiMask
from .axes import axis_labels, is_default_label, plane_order
from .layers import META_KEY, RESULT_KEY
from .rois import (
    ImageGrid,
    RoiError,
    label_colors,
    label_ids,
    labels_image,
    labels_off_grid,
    negative_label_ids,
    shape_masks,
)
from .run_request import RunRequest, prepare_run
from .seed_context import layer_uid, missing_layer_text, missing_run_text
from .seed_inputs import RowSettings, SeedContext, SourceChoice, resolve_layers, seed_spectra
from .seed_layer import seed_layer_geometry
from .series_run import PLANE_CHOICES, SeriesPlan, series_axis
from .session_results import Refusal, ResultsMixin, SpectraView

__all__ = ["MAX_ROWS_FROM_LAYER", "Refusal", "SessionEvents", "SpectraView", "UnmixSession"]

log = logging.getLogger(__name__)

#: Most components "Components from layer" makes (a segmentation of every cell is not a
#: set of components).
MAX_ROWS_FROM_LAYER = 32
#: Source kinds of rows that read a Shapes / Labels layer.
_ROI_KINDS = (RoiMask.kind, RoiLabel.kind)


class SessionEvents(SignalGroup):
    grid = Signal(object)
    plane = Signal(int)
    rows = Signal(list)
    result = Signal(object)
    spectra = Signal(object)
    notice = Signal(str, str)
    history = Signal(list)


class UnmixSession(ResultsMixin):
    """The state of one unmixing dock over ``viewer`` (see the module documentation).

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    """

    def __init__(self, viewer):
        self.viewer = viewer
        self.events = SessionEvents()
        self.image: str | None = None
        self.spectral_axis_index = 0
        self.rows: list = []
        self._seed_runs: dict = {}  # number -> RunRecord: runs the rows hold
        self._init_results()
        self.series_choice = "joint"
        self.plane = 0
        self.plane_follows = True
        self._labels_set: dict = {}  # layer uid -> the axis labels the session gave it
        self.run_layers: dict = {}  # component -> the layer its region came from (last run)
        # napari keeps a weak reference to the method: the session is not kept alive
        viewer.dims.events.current_step.connect(self._on_dims_step)
        viewer.layers.events.removed.connect(self._on_layer_removed)

    def close(self) -> None:
        """Stop following the viewer and emitting events (the dock goes away)."""
        self.viewer.dims.events.current_step.disconnect(self._on_dims_step)
        self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        self.events.disconnect()

    def _on_layer_removed(self, *_):
        self.prune_runs()

    # -- layers --------------------------------------------------------------------
    def layers_of(self, kind: str) -> list:
        """The viewer's layers of ``kind`` (``"image"``, ``"labels"``, ``"shapes"``);
        images only if they can be unmixed (not our maps, RGB or 2-D images)."""
        from napari.layers import Image, Labels, Shapes

        cls = {"image": Image, "labels": Labels, "shapes": Shapes}[kind]
        out = []
        for layer in self.viewer.layers:
            if not isinstance(layer, cls):
                continue
            meta = layer.metadata if isinstance(layer.metadata, dict) else {}
            if kind == "image" and (META_KEY in meta or RESULT_KEY in meta or layer.rgb
                                    or layer.ndim < 3):
                continue
            out.append(layer)
        return out

    def image_names(self) -> list[str]:
        """Images that can be unmixed; those with spectral metadata first."""
        images = self.layers_of("image")
        tagged = [lyr.name for lyr in images
                  if isinstance(lyr.metadata, dict) and "spectral_axis_index" in lyr.metadata]
        return tagged + [lyr.name for lyr in images if lyr.name not in tagged]

    def _layer(self, name):
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    # -- the image -----------------------------------------------------------------
    def set_image(self, name: str | None) -> None:
        """Choose the image to unmix; its spectral axis comes from its metadata."""
        self.image = name or None
        layer = self._layer(self.image)
        meta = layer.metadata if layer is not None and isinstance(layer.metadata, dict) else {}
        axis = meta.get("spectral_axis_index")
        self.spectral_axis_index = int(axis) if isinstance(axis, (int, np.integer)) else 0
        self._grid_changed()

    def set_spectral_axis(self, index: int) -> None:
        if int(index) != self.spectral_axis_index:
            self.spectral_axis_index = int(index)
            self._grid_changed()

    def grid(self) -> ImageGrid:
        """The grid of the chosen image; raises ValueError / RoiError (what to do)."""
        layer = self._layer(self.image)
        if layer is None:
            raise ValueError("Choose the image to unmix (a spectral stack with at least three "
                             "axes) in the 'image' menu.")
        return ImageGrid(layer, self.spectral_axis_index)

    def grid_or_none(self) -> ImageGrid | None:
        try:
            return self.grid()
        except (ValueError, RoiError):
            return None

    def axis_text(self) -> str:
        """What the dock says about the chosen image's spectral axis (or the problem)."""
        if self._layer(self.image) is None:
            return "no spectral image in the viewer"
        try:
            grid = self.grid()
        except (ValueError, RoiError) as exc:
            return str(exc)
        n = grid.n_channels
        values, unit = grid.spectral_values()
        if values is None:
            return (f"{n} channels; no spectral values in the layer metadata (channel "
                    "numbers are used)")
        return f"{n} channels, {values[0]:g} to {values[-1]:g} {unit or ''}".strip()

    def show_spatial_plane(self) -> bool:
        """Make the viewer show the chosen image's Y-X plane (a channel-last stack would
        show X against the spectral axis), and label its axes from the data when they
        carry napari's placeholders (``-3`` ...).  Returns whether the dims order
        changed."""
        grid = self.grid_or_none()
        if grid is None:
            return False
        layer = grid.layer
        current = tuple(str(v) for v in layer.axis_labels)
        if all(is_default_label(v) for v in current) or current == self._labels_set.get(
                layer_uid(layer)):
            meta = layer.metadata if isinstance(layer.metadata, dict) else {}
            labels = axis_labels(grid.ndim, grid.spectral_axis_index,
                                 unit=grid.spectral_values()[1], axes=meta.get("axes"))
            if labels != current:
                layer.axis_labels = labels
            self._labels_set[layer_uid(layer)] = labels
        dims = self.viewer.dims
        if dims.ndisplay != 2 or dims.ndim < 2:
            return False
        order = plane_order(dims.order, dims.ndim, grid.ndim, grid.yx_dims)
        if tuple(dims.order) == order:
            return False
        dims.order = order
        return True

    def _grid_changed(self) -> None:
        self.show_spatial_plane()
        self.events.grid.emit(self.grid_or_none())
        self.plane_follows = True  # (after the views took the new grid)
        self._sync_plane()

    # -- series and the reference plane --------------------------------------------
    def set_series_choice(self, choice: str) -> None:
        """The series strategy (a value of ``SERIES_CHOICES``; ``"joint"``: none)."""
        self.series_choice = str(choice)
        self._sync_plane()

    def set_plane(self, plane: int) -> None:
        """The user set the reference plane: it follows the slider again only when it
        is the plane the viewer shows."""
        self.plane = int(plane)
        self.plane_follows = self.plane == self.viewer_plane()

    def strategy(self, grid: ImageGrid | None = None) -> str | None:
        """The series strategy that applies to the image, or None (a joint fit, or an
        image without a series axis)."""
        grid = grid if grid is not None else self.grid_or_none()
        if grid is None or series_axis(grid) is None or self.series_choice == "joint":
            return None
        return self.series_choice

    def plan(self, grid: ImageGrid | None = None) -> SeriesPlan | None:
        """The series plan of a run now (None: one fit of the whole stack)."""
        grid = grid if grid is not None else self.grid()
        choice = self.strategy(grid)
        if choice is None:
            return None
        axis = series_axis(grid)
        n = grid.shape[axis]
        if not 0 <= self.plane < n:
            raise ValueError(f"The reference plane {self.plane} is not a plane of image "
                             f"{grid.name!r} (0 to {n - 1} along axis {axis}).")
        return SeriesPlan(choice=choice, axis=axis, n_planes=n, plane=self.plane)

    def _plane_of(self, layer, axis: int) -> int | None:
        """The plane of ``layer`` along data axis ``axis`` that the viewer shows."""
        try:
            coords = np.asarray(layer.world_to_data(self.viewer.dims.point), dtype=float)
            n = int((layer.data[0] if layer.multiscale else layer.data).shape[axis])
        except (AttributeError, IndexError, ValueError, np.linalg.LinAlgError):
            return None
        if axis >= coords.size or not np.isfinite(coords[axis]):
            return None
        return min(max(int(np.floor(coords[axis] + 0.5)), 0), n - 1)

    def viewer_plane(self) -> int | None:
        """The plane of the chosen image that the viewer shows (None without a series)."""
        grid = self.grid_or_none()
        axis = None if grid is None else series_axis(grid)
        return None if axis is None else self._plane_of(grid.layer, axis)

    def _sync_plane(self) -> None:
        """Set the reference plane to the viewer's plane while it follows the slider and
        a strategy with a reference plane is chosen."""
        if not self.plane_follows or self.strategy() not in PLANE_CHOICES:
            return
        z = self.viewer_plane()
        if z is not None and z != self.plane:
            self.plane = z
            self.events.plane.emit(z)

    def _on_dims_step(self, *_):
        self._sync_plane()
        self._follow_series_spectra()

    # -- rows ----------------------------------------------------------------------
    def update_rows(self, rows) -> None:
        """The rows as the user edited them (no event: the table shows them)."""
        self.rows = list(rows)
        self._keep_seed_runs()

    def _replace_rows(self, rows) -> None:
        self.rows = list(rows)
        self._keep_seed_runs()
        self.events.rows.emit(list(rows))

    def _keep_seed_runs(self) -> None:
        """Hold the runs the rows take their seeds from (also once they leave the
        history), and only those."""
        held = {r.source.run for r in self.rows if r.source.kind == PreviousResult.kind}
        known = self.seed_runs()
        self._seed_runs = {n: known[n] for n in held if n in known}

    def seed_runs(self) -> dict:
        """``{number: RunRecord}``: the runs of the history and those the rows hold."""
        return {**self._seed_runs, **{r.number: r for r in self.history.runs}}

    def rows_from_layer(self, name: str | None) -> int:
        """Replace the rows by one per label (Labels layer) or per shape (Shapes layer);
        returns how many.  Raises ValueError / RoiError with what to do."""
        from napari.layers import Labels

        layer = self._layer(name)
        if layer is None:
            raise ValueError("Choose a Labels or Shapes layer to make components from.")
        grid = self.grid()
        uid = layer_uid(layer)
        if isinstance(layer, Labels):
            ids = label_ids(labels_image(layer, grid))
            off = labels_off_grid(layer, ids)
            if off:
                shown = ", ".join(map(str, off[:20])) + (" ..." if len(off) > 20 else "")
                self.events.notice.emit(
                    "warning", f"Labels layer {name!r}: label(s) {shown} lie outside image "
                    f"{grid.name!r} (no pixel of the image under them), so they make no "
                    "component. Paint them over the image, or check the layers' scale and "
                    "translate.")
            negative = negative_label_ids(layer)
            if negative:
                shown = ", ".join(map(str, negative[:20])) + (" ..." if len(negative) > 20
                                                              else "")
                self.events.notice.emit(
                    "warning", f"Labels layer {name!r} holds negative value(s) {shown}, which "
                    "are no label ids (ids start at 1; 0 is unlabelled), so they make no "
                    "component. Paint those regions with a positive label to seed them.")
            if len(ids) > MAX_ROWS_FROM_LAYER:
                raise ValueError(
                    f"Labels layer {name!r} has {len(ids)} labels on the image; one component "
                    f"per label allows at most {MAX_ROWS_FROM_LAYER}. Paint one label per kind "
                    "of region (e.g. a few cells of each type) instead of one per object.")
            colors = label_colors(layer, ids)  # the colours the labels are painted in
            rows = [RowSettings(name=f"label {i}", color=colors[k],
                                source=SourceChoice(RoiLabel.kind, layer=name, layer_uid=uid,
                                                    label_id=i))
                    for k, i in enumerate(ids)]
        else:
            n = len(shape_masks(layer, grid))  # validates every shape
            if n > MAX_ROWS_FROM_LAYER:
                raise ValueError(f"Shapes layer {name!r} has {n} shapes; one component per "
                                 f"shape allows at most {MAX_ROWS_FROM_LAYER}.")
            colors = default_colors(n)
            rows = [RowSettings(name=f"shape {i + 1}", color=colors[i],
                                source=SourceChoice(RoiMask.kind, layer=name, layer_uid=uid,
                                                    shape_index=i))
                    for i in range(n)]
        self._replace_rows(rows)
        return len(rows)

    def row_problems(self, rows=None) -> dict[int, str]:
        """``{row index: what is wrong}`` for rows whose Shapes / Labels layer was
        deleted or replaced, or whose run is not known (``rows``: as the table reads
        now; default the session's)."""
        rows = self.rows if rows is None else rows
        out = {}
        for i, r in enumerate(rows):
            if r.source.kind == PreviousResult.kind:
                text = missing_run_text(r.source.run, self.seed_runs())
                if text is not None:
                    out[i] = text[0].upper() + text[1:] + "."
            elif r.source.kind in _ROI_KINDS:
                text = missing_layer_text(r.source.layer, r.source.layer_uid,
                                          self.viewer.layers)
                if text is not None:
                    out[i] = text[0].upper() + text[1:] + ": choose another layer."
        return out

    def new_seed_layer(self, name: str = "seed labels"):
        """Add an empty Labels layer lying exactly over the chosen image's Y-X grid (its
        transform there; a length-1 spectral axis where the image has its spectral axis
        after Y, see :mod:`.seed_layer`): painted dabs stay visible on every channel and
        plane, seed the pixels under them, and a label means the same pixels on every
        plane.  Returns the layer."""
        shape, place = seed_layer_geometry(self.grid())
        return self.viewer.add_labels(np.zeros(shape, dtype=np.uint8), name=name,
                                      opacity=0.6, **place)

    # -- seeds and runs ------------------------------------------------------------
    def seed_context(self, grid) -> SeedContext:
        """What the rows are resolved against on ``grid``: the viewer's layers, the
        run shown and the run history."""
        return SeedContext(self.viewer.layers, grid, self.result, runs=self.seed_runs(),
                           shown_run=self.current)

    def seed_previews(self, *, read_lazy: bool = True):
        """Every row's seed spectrum on the raw data: ``(spectra, problems, values,
        unit)`` (see :func:`~.seed_inputs.seed_spectra`).  Raises ValueError /
        RoiError without an image."""
        grid = self.grid()
        values, unit = grid.spectral_values()
        spectra, problems = seed_spectra(self.rows, self.seed_context(grid),
                                         read_lazy=read_lazy)
        return spectra, problems, values, unit

    def prepare(self, kw: dict, *, subtract_background: bool = False,
                smoothing: str | None = None, residual: bool = False) -> RunRequest:
        """The :class:`~.run_request.RunRequest` of a run now, from the settings'
        config keywords (see :func:`~.run_request.prepare_run`); ``residual``: the
        worker also computes the residual map (:mod:`.residual`)."""
        grid = self.grid()
        rows = resolve_layers(self.rows, self.seed_context(grid))
        self.run_layers = {r.name: r.source.layer for r in rows
                           if r.source.kind in _ROI_KINDS and r.source.layer}
        request = prepare_run(grid, rows, kw, layers=self.viewer.layers,
                              previous=self.result, runs=self.seed_runs(),
                              shown_run=self.current, plan=self.plan(grid),
                              subtract_background=subtract_background, smoothing=smoothing)
        if residual:
            from .residual import with_residual

            layer = grid.layer
            request.func = with_residual(
                request.func, layer.data[0] if layer.multiscale else layer.data,
                spectral_axis=grid.spectral_axis_index, spatial_shape=grid.spatial_shape,
                reference=None if request.series is None else request.series.reference_plane)
        return request

