"""The results side of the dock's session: publishing runs, the run history, what is shown.

:class:`ResultsMixin` is the part of :class:`~.session.UnmixSession` that holds the
published results (no Qt):

* :meth:`~ResultsMixin.publish` (or :meth:`~ResultsMixin.publish_steps`, one layer
  per step) puts a finished run's maps into the viewer, named
  and grouped by run (:mod:`.run_history`), replacing or keeping the earlier maps
  of the image (``keep``: :data:`~.run_history.KEEP_CHOICES`; layers the user
  renamed are never replaced), with an optional residual map
  (:mod:`.residual`);
* the run *shown* (:meth:`~ResultsMixin.show_run`) is the session's ``result``: its
  spectra are in the spectra dock, its summary in the dock, its maps seed the next
  run ("Use result as seeds"), the pixel inspector reads it; another run can be
  *compared* with it (:meth:`~ResultsMixin.compare_with`: both sets of spectra);
* a saved result opened from a file is a run too (:meth:`~ResultsMixin.add_opened`).

The mixin uses the session's ``viewer``, ``events``, ``rows`` and its helpers.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass

import numpy as np

from ..core.colors import default_colors
from .layers import component_styles, is_signed, run_steps, show_result_steps
from .run_history import RunHistory, RunRecord, layer_name
from .run_request import RunRequest
from .seed_context import layer_uid
from .seed_inputs import RowSettings, SourceChoice
from .series_run import series_spectra, series_summary
from .summary_text import fit_summary, mode_label

__all__ = ["Refusal", "ResultsMixin", "SpectraView"]

#: The sessions alive now, by owner token (the ``owner`` of the layers they made): a
#: session replaces no layer of another one (two docks on one viewer).
_SESSIONS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class Refusal(ValueError):
    """The session cannot do what was asked; ``kind`` is how to tell the user
    (``"info"``, ``"warning"`` or ``"error"``)."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, eq=False)
class SpectraView:
    """What the spectra dock shows: ``result``'s spectra in ``colors``; ``title``
    replaces the result's own title, ``suffix`` is appended to it; ``compare``: a
    ``(result, colors, label)`` whose spectra are drawn beside them (another run)."""

    result: object
    colors: list
    title: str | None = None
    suffix: str = ""
    compare: tuple | None = None


class ResultsMixin:
    """Published results, the run history and what is shown (see the module doc)."""

    def _init_results(self) -> None:
        self.history = RunHistory()
        self.keep = "replace"
        self.current: RunRecord | None = None
        self.compared: RunRecord | None = None
        self._shown_plane: int | None = None  # plane whose per-plane spectra are shown
        self._fitted = None  # (record, FittedSpectra) of the run the inspector last read
        self.owner = uuid.uuid4().hex  # marks the layers this session makes
        _SESSIONS[self.owner] = self

    # -- the shown run --------------------------------------------------------------
    @property
    def result(self):
        """The shown result (an UnmixResult; the whole series after a series run)."""
        return None if self.current is None else self.current.result

    @property
    def result_image(self) -> str | None:
        """The current name of the shown run's image (None without one)."""
        layer = self.record_image(self.current)
        if layer is not None:
            return layer.name
        return None if self.current is None else self.current.image

    def record_image(self, record):
        """The image layer ``record``'s run was computed from: by its identity, so that
        a renamed image is still found (records without one: by name); None when it is
        not in the viewer."""
        if record is None:
            return None
        if record.image_uid is not None:
            return next((lyr for lyr in self.viewer.layers
                         if layer_uid(lyr) == record.image_uid), None)
        return self._layer(record.image)

    @property
    def series_result(self):
        """The SeriesResult behind ``result`` after a series run (None otherwise)."""
        return None if self.current is None else self.current.series_result

    @property
    def result_colors(self) -> list:
        return [] if self.current is None else list(self.current.colors)

    @property
    def _series_axis(self):
        return None if self.current is None else self.current.series_axis

    @property
    def result_can_seed(self) -> bool:
        """Whether the shown result can seed the next run (non-negative modes)."""
        return self.result is not None and not is_signed(self.result.mode)

    def show_run(self, number) -> RunRecord:
        """Make run ``number`` of the history the one shown (its spectra, summary, seeds,
        inspector); Refusal when there is no such run."""
        record = self.history.find(number)
        if record is None:
            raise Refusal(f"There is no run {number} any more (its layers were deleted).")
        self._set_current(record)
        return record

    def compare_with(self, number) -> None:
        """Draw run ``number``'s spectra beside the shown run's (None: stop)."""
        self.compared = None if number is None else self.history.find(number)
        self.events.spectra.emit(self.spectra_view())

    def _set_current(self, record: RunRecord | None) -> None:
        self.current = record
        self._shown_plane = None
        if self.compared is record:
            self.compared = None
        if record is not None:
            self.events.result.emit(record.result)
        self.events.history.emit(list(self.history.runs))
        self.events.spectra.emit(self.spectra_view())

    def prune_runs(self) -> None:
        """Forget runs whose layers were all deleted (the shown one falls back to the
        last run left)."""
        gone = self.history.prune(layer_uid(lyr) for lyr in self.viewer.layers)
        if not gone:
            return
        if self.compared in gone:
            self.compared = None
        if self.current in gone:
            self._set_current(self.history.runs[-1] if self.history.runs else None)
        else:
            self.events.history.emit(list(self.history.runs))

    # -- publishing -----------------------------------------------------------------
    def other_owners(self) -> frozenset:
        """The owner tokens of the other sessions alive (other docks)."""
        return frozenset(_SESSIONS.keys()) - {self.owner}

    def _layers_to_replace(self, image, uid) -> list:
        """The map layers of earlier runs of ``image`` (the layer of identity ``uid``,
        whatever its name) a new run replaces: none when runs are kept; never those
        the user renamed, nor those another open dock made."""
        if self.keep == "keep":
            return []
        from .layers import META_KEY, result_layers

        others = self.other_owners()
        out = []
        for lyr in result_layers(self.viewer, source_image=image, source_uid=uid):
            meta = lyr.metadata.get(META_KEY) or {}
            given = meta.get("name")
            if (given is None or lyr.name == given) and meta.get("owner") not in others:
                out.append(lyr)
        return out

    def publish(self, request: RunRequest, value) -> str:
        """Publish a finished run's value (see the module documentation), in one go.
        Returns what the dock says about it."""
        return run_steps(self.publish_steps(request, value))

    def publish_steps(self, request: RunRequest, value):
        """:meth:`publish`, one layer per step: a generator that yields after each map
        layer (and the residual map) is in the viewer and returns what the dock says.
        The run becomes the shown one at the last step; the dock gives the event loop
        a pass between steps, so that no click waits for every layer at once.

        Raises :class:`Refusal` (before any layer is added) when the run's image layer
        was removed from the viewer while the run went on: its maps are discarded."""
        from .residual import ResidualMaps

        residual = None
        if isinstance(value, ResidualMaps):
            value, residual = value.value, value
        grid, image, plan = request.grid, request.image, request.series
        if layer_uid(grid.layer) not in {layer_uid(lyr) for lyr in self.viewer.layers}:
            raise Refusal(f"Image {grid.layer.name!r} was removed during the run, so its "
                          "results were discarded (no maps were added). Add the image again "
                          "and press Run.", "warning")
        # a series run's maps (k, Z, *plane) are in the C order of the image's spatial
        # axes (the series axis is the first of them): published like a joint fit's
        result = value if plan is None else value.as_result(reference=plan.reference_plane)
        colors = request.colors_for(result.n_components)
        number = self.history.new_number()
        uid = layer_uid(grid.layer)
        replace = self._layers_to_replace(image, uid)
        if self.keep != "keep":
            from .residual import remove_residuals

            remove_residuals(self.viewer, source_image=image, source_uid=uid,
                             spare_owners=self.other_owners())
        layers = yield from show_result_steps(
            self.viewer, result, spatial_shape=grid.spatial_shape, colors=colors,
            image_layer=self._layer(image), spectral_axis_index=grid.spectral_axis_index,
            source_image=image, replace=replace, run=number,
            names=[layer_name(number, c) for c in result.component_names], owner=self.owner,
            labels=request.labels if request.config.label_users() else None)
        self.history.release(layer_uid(lyr) for lyr in layers)  # reused layers
        record = RunRecord(number=number, result=result, image=image, image_uid=uid,
                           colors=colors,
                           series_result=None if plan is None else value,
                           series_axis=None if plan is None else plan.axis,
                           spectral_axis=grid.spectral_axis_index,
                           layer_uids=[layer_uid(lyr) for lyr in layers],
                           spatial_shape=tuple(grid.spatial_shape), labels=request.labels)
        if residual is not None and residual.relative is not None:
            from .residual import show_residual

            lyr = show_residual(self.viewer, residual.relative, grid=grid, number=number,
                                source_image=image, owner=self.owner)
            record.residual_uid = layer_uid(lyr)
            record.layer_uids.append(record.residual_uid)
            yield
        self.history.add(record)
        self.history.prune(layer_uid(lyr) for lyr in self.viewer.layers)
        self._set_current(record)
        where = "" if plan is None else f" ({plan.n_planes} planes, {plan.label})"
        return (f"Done: run {number}, {result.n_components} map layer(s) for {image!r}"
                f"{where}.")

    def add_opened(self, result, *, layers, source: str, image: str | None = None,
                   series_result=None, spectral_axis: int = 0,
                   series_axis: int | None = None, spatial_shape=None) -> RunRecord:
        """Record a result opened from a file (its map layers already in the viewer) as
        a run, and show it; ``series_result``: the z / t series it is the whole of
        (:meth:`SeriesResult.from_result <napari_unmix.core.series.SeriesResult.from_result>`),
        whose summary and per-plane spectra are shown; ``spectral_axis`` and
        ``series_axis``: those of ``image``; ``spatial_shape``: the maps' (default: the
        first layer's shape)."""
        colors = [c or d for c, d in zip(component_styles(result)[0],
                                         default_colors(result.n_components), strict=True)]
        record = RunRecord(number=self.history.new_number(), result=result, image=image,
                           colors=colors, source=source, series_result=series_result,
                           spectral_axis=int(spectral_axis), series_axis=series_axis,
                           layer_uids=[layer_uid(lyr) for lyr in layers],
                           spatial_shape=(tuple(spatial_shape) if spatial_shape is not None
                                          else tuple(np.shape(layers[0].data)) if layers
                                          else None))
        self.history.add(record)
        self._set_current(record)
        return record

    # -- what is shown --------------------------------------------------------------
    def summary_text(self) -> str:
        """The fit summary of the shown result ("" without one)."""
        if self.series_result is not None:
            text = series_summary(self.series_result)
        else:
            text = "" if self.result is None else fit_summary(self.result)
        if text and self.current is not None and len(self.history) > 1:
            text = f"run {self.current.number}: {text}"
        return text

    def _series_plane_shown(self) -> int:
        """The plane of the series result the viewer shows (the last one shown when the
        viewer shows none of it)."""
        layer = self.record_image(self.current)
        z = None if layer is None else self._plane_of(layer, self._series_axis)
        if z is None:
            z = self._shown_plane if self._shown_plane is not None else 0
        return z

    def spectra_view(self) -> SpectraView | None:
        """What the spectra dock shows for the shown result (None without one)."""
        if self.result is None:
            return None
        other = self.compared
        compare = None if other is None or other is self.current else (
            other.result, list(other.colors), f"run {other.number}")
        sr = self.series_result
        if sr is None:
            return SpectraView(self.result, self.result_colors, compare=compare)
        z = 0 if sr.shared_basis else self._series_plane_shown()
        self._shown_plane = z
        res, title, suffix = series_spectra(sr, z)
        return SpectraView(res, self.result_colors, title=title, suffix=suffix,
                           compare=compare)

    def _follow_series_spectra(self) -> None:
        sr = self.series_result
        if sr is None or sr.shared_basis:
            return
        if self._series_plane_shown() != self._shown_plane:
            self.events.spectra.emit(self.spectra_view())

    # -- the pixel inspector -------------------------------------------------------
    def inspect(self, world_point):
        """The :class:`~.inspector.PixelView` of the shown run at a world position of
        the viewer (on the plane it shows); None without a run, an image, or off it."""
        from .inspector import FittedSpectra, inspect_pixel

        record = self.current
        layer = self.record_image(record)
        if layer is None:
            return None
        coords = layer.world_to_data(np.asarray(world_point, dtype=np.float64))
        data = layer.data[0] if layer.multiscale else layer.data
        if self._fitted is None or self._fitted[0] is not record:
            # the processed data of a run, made once (per plane) for its clicks
            self._fitted = (record, FittedSpectra(record.result, labels=record.labels,
                                                  series=record.series_result is not None))
        return inspect_pixel(record.result, data, spectral_axis=record.spectral_axis,
                             data_coords=coords, signed=is_signed(record.result.mode),
                             series_result=record.series_result, fitted=self._fitted[1])

    # -- seeds from the shown result ------------------------------------------------
    def rows_from_result(self) -> int:
        """Replace the rows by one per component of the shown result, seeded by its
        spectrum and map (flags as in its config); returns how many.  Raises
        :class:`Refusal` when there is no result or it cannot seed."""
        res = self.result
        if res is None:
            raise Refusal("There is no result yet: run an analysis first.", "info")
        if is_signed(res.mode):
            raise Refusal(f"{mode_label(res.mode)} loadings and scores are signed and cannot "
                          "seed NNMF or NNLS; use an NNMF or NNLS result as seeds.", "warning")
        config = res.config
        old = {c.name: c for c in (config.components if config is not None else [])}
        colors = component_styles(res)[0]
        if not all(colors):
            colors = self.result_colors or default_colors(res.n_components)
        rows = []
        run = None if self.current is None else self.current.number
        for name, color in zip(res.component_names, colors, strict=True):
            spec = old.get(name)
            rows.append(RowSettings(
                name=name, color=color,
                source=SourceChoice("previous-result", component=name, run=run),
                background=spec.background if spec is not None else False,
                use_subtracted=spec.use_subtracted if spec is not None else True,
                locked=spec.locked if spec is not None else False))
        self._replace_rows(rows)
        return len(rows)
