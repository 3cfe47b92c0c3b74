"""The "Spectral unmixing" dock: settings, components, run / cancel, results.

The dock is layout and wiring.  Its state and decisions live in a Qt-free session
(:class:`.session.UnmixSession`: the chosen image, the component rows, the last
result, the series plan and the reference plane that follows the viewer's slider);
the dock builds the widgets, passes the user's edits to the session and shows the
session's events.  A run is prepared by the session (one
:class:`~napari_unmix.core.analysis.AnalysisConfig` from the settings,
:mod:`.settings_form`, and the component table, :mod:`.component_table`, ROIs read
by :mod:`.rois` through :mod:`.seed_inputs`, see :mod:`.run_request`) and runs
:func:`~napari_unmix.core.analysis.run_analysis` in a worker thread
(:func:`.workers.start_job`).  The same progress callback that drives the CLI's
progress bar drives the dock's.

While a run goes on the viewer stays responsive; the progress bar shows the stage,
iteration and error; Cancel stops the run at its next progress report, and a
cancelled run changes nothing.  A failed run is reported as a notification and the
dock is ready again.  A finished run replaces the previous maps of the same image
(:mod:`.layers`), shows the spectra in the spectra dock (:class:`.SpectraPlot`), the
fit summary and, per component, how its seeds were made.

Which settings are shown, whether the component table is used and which solvers
are offered come from the mode's entry in :data:`napari_unmix.core.modes.MODES`.

z / t series
    An image with a spatial axis besides the Y-X plane, e.g. ``(Z, C, Y, X)``, gets a
    "series" choice (:mod:`.series_panel`): a joint fit, per plane, or a shared basis
    from one plane or from a pooled sample; see :mod:`.series_run` for the
    strategies, how seeds belong to a plane and what is published.

The layout (:mod:`.dock_layout`) is kept apart from the wiring (``_connect``).
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QWidget,
)

from ..core.modes import MODES
from .diagnostics_panel import DiagnosticsPanel
from .dock_layout import Lifeline, build_layout, dock_of, share_height, watch_removal
from .help_texts import dock_words
from .inspector_hooks import InspectorHooks
from .preload import warm_imports_later
from .rois import RoiError
from .run_request import RunRequest, cancel_text, outcome_report, progress_view
from .seed_context import layer_uid
from .session import Refusal, UnmixSession
from .settings_form import refining_mode
from .spectra_plot import pixel_content
from .summary_text import seed_reports
from .workers import start_job

__all__ = ["UnmixWidget"]

log = logging.getLogger(__name__)

#: Errors a run refused before it starts raises (shown, the dock stays usable).
_REFUSED = (ValueError, TypeError, RoiError, ImportError, OSError)


def _notify(kind: str, message: str) -> None:
    """A napari notification, in the dock's words (:func:`.help_texts.dock_words`)."""
    from napari.utils import notifications

    getattr(notifications, f"show_{kind}")(dock_words(message))


def _components_title(seeded: bool) -> str:
    if seeded:
        return "Components"
    users = " and ".join(spec.label for spec in MODES.values() if spec.seeded)
    return f"Components (used by {users})" if users else "Components (not used by this mode)"


class UnmixWidget(QWidget):
    """The "Spectral unmixing" dock widget.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        warm_imports_later()  # matplotlib for the spectra dock, off the GUI thread
        self.viewer = napari_viewer
        self.session = UnmixSession(napari_viewer)
        self.job = None
        self.spectra_plot = None
        self._running: RunRequest | None = None
        self._showing_grid = False
        self._mode_chosen = self._choosing_mode = False
        self._lifeline = Lifeline(self.session)
        self._build_layout()
        self._connect()
        self.reset_choices()
        self.session.set_image(self.form.image.value)

    # -- what the session holds ---------------------------------------------------------
    @property
    def result(self):
        """The last published result (an UnmixResult; the whole series after a series run)."""
        return self.session.result

    @property
    def result_image(self) -> str | None:
        return self.session.result_image

    @property
    def series_result(self):
        """The SeriesResult behind ``result`` after a series run (None otherwise)."""
        return self.session.series_result

    # -- layout ----------------------------------------------------------------------
    def _build_layout(self):
        build_layout(self)
        self.diagnostics = DiagnosticsPanel(self)  # "Is my fit good?", below the runs
        body = self.history.parentWidget().layout()
        body.insertWidget(body.indexOf(self.history) + 1, self.diagnostics)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(400)
        self._set_running(False)

    # -- wiring ----------------------------------------------------------------------
    def _connect(self):
        f, s, panel = self.form, self.session, self.series_panel
        # the user's edits -> the session
        f.image.changed.connect(lambda name: s.set_image(name))
        f.spectral_axis.changed.connect(self._on_axis_edited)
        f.mode.changed.connect(self._on_mode_changed)
        f.mode.changed.connect(self._on_mode_edited)
        panel.choice_changed.connect(s.set_series_choice)
        panel.plane_edited.connect(s.set_plane)
        self.table.changed.connect(self._on_table_changed)
        # the session -> the widgets
        s.events.grid.connect(self._on_grid)
        s.events.plane.connect(panel.show_plane)
        s.events.rows.connect(self.table.set_rows)
        s.events.result.connect(self._on_result)
        s.events.spectra.connect(self._on_spectra)
        s.events.notice.connect(_notify)
        s.events.history.connect(self._on_history)
        h = self.history
        h.show_requested.connect(self.show_run)
        h.compare_requested.connect(s.compare_with)
        h.keep_changed.connect(lambda value: setattr(s, "keep", value))
        # buttons
        self.add_button.clicked.connect(lambda: self.table.add_row())
        self.rows_button.clicked.connect(lambda: self.components_from_layer())
        self.new_layer_button.clicked.connect(lambda: self.new_seed_layer())
        self.preview_button.clicked.connect(lambda: self.preview_seeds(notify=True))
        self.seeds_button.clicked.connect(lambda: self.use_result_as_seeds())
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button.clicked.connect(self.cancel)
        self._preview_timer.timeout.connect(lambda: self.preview_seeds(notify=False))
        watch_removal(self, self._lifeline)  # the dock closed: its run is cancelled
        self._lifeline.hooks = InspectorHooks(self.viewer, self)
        self._on_mode_changed()

    def reset_choices(self, *_):
        """Refresh the layer and mode menus (napari calls this when layers change)."""
        self.form.image.reset_choices()
        self.form.reset_mode_choices()
        shapes = [(lyr.name, layer_uid(lyr)) for lyr in self.session.layers_of("shapes")]
        labels = [(lyr.name, layer_uid(lyr)) for lyr in self.session.layers_of("labels")]
        self.table.set_layer_choices(shapes, labels)
        names = [name for name, _ in labels + shapes]
        keep = self.rows_layer.currentText()
        self.rows_layer.clear()
        self.rows_layer.addItems(names)
        if keep in names:
            self.rows_layer.setCurrentText(keep)
        self._show_row_problems()

    def _show_row_problems(self) -> None:
        """Mark rows whose layer was deleted or replaced (they are never re-pointed)."""
        self.table.set_warnings(self.session.row_problems(self.table.settings()))

    # -- session events -> widgets -------------------------------------------------------
    def _on_grid(self, grid) -> None:
        f = self.form
        self._showing_grid = True  # a clamped spin box value is not the user's edit
        try:
            if grid is not None:
                f.spectral_axis.max = max(grid.ndim - 1, 0)
            f.spectral_axis.value = self.session.spectral_axis_index
        finally:
            self._showing_grid = False
        self._mode_chosen = self._choosing_mode = False
        f.axis_info.value = self.session.axis_text()
        self.series_panel.set_grid(grid)

    def _on_axis_edited(self, index) -> None:
        if not self._showing_grid:
            self.session.set_spectral_axis(index)

    def _on_history(self, runs) -> None:
        self.history.set_runs(runs, self.session.current, self.session.compared)
        self.seeds_button.setEnabled(self.session.result_can_seed)
        self.summary.setText(self.session.summary_text())

    def show_run(self, number: int) -> bool:
        """Show run ``number`` of the history (its spectra, summary; it seeds)."""
        try:
            self.session.show_run(number)
        except Refusal as exc:
            _notify(exc.kind, str(exc))
            return False
        return True

    def _on_result(self, result) -> None:
        self.seeds_button.setEnabled(self.session.result_can_seed)
        run = getattr(self.session.current, "number", None)
        self.table.set_previous_components(result.component_names, run)
        self.table.set_reports(seed_reports(result, layers=self.session.run_layers))
        self.summary.setText(self.session.summary_text())

    def _on_spectra(self, view) -> None:
        """Show a :class:`~.session.SpectraView` (on a slider move: only in a plot that
        is there; a new result also brings the spectra dock back)."""
        from .spectra_plot import PlotContent, with_compared

        if view is None or self.spectra_plot is None:
            return
        content = PlotContent.from_result(view.result, colors=view.colors)
        title = view.title if view.title is not None else f"{content.title}{view.suffix}"
        content = dataclasses.replace(content, title=title)
        if view.compare is not None:
            other, colors, label = view.compare
            content = with_compared(content, other, colors=colors, label=label)
        self.spectra_plot.display(content)

    def _on_mode_changed(self, *_):
        seeded = self.form.spec.seeded
        self.components_box.setTitle(_components_title(seeded))
        self.table.setEnabled(seeded)

    def _on_mode_edited(self, *_):
        if not self._choosing_mode:
            self._mode_chosen = True  # the user's choice: rows no longer switch it

    def _choose_mode(self, mode: str) -> None:
        self._choosing_mode = True
        try:
            self.form.mode.value = mode
        finally:
            self._choosing_mode = False

    def _on_table_changed(self):
        if self.table.rows and not self._mode_chosen and not self.form.spec.seeded:
            self._choose_mode(refining_mode())  # random NNMF until rows exist
        self.session.update_rows(self.table.settings())
        self._show_row_problems()
        self._preview_timer.start()

    # -- components --------------------------------------------------------------------
    def components_from_layer(self, name: str | None = None) -> int:
        """Replace the rows by one per label (Labels layer) or per shape (Shapes layer).

        Returns the number of rows made (0 after an error, which is notified).
        """
        try:
            return self.session.rows_from_layer(name or self.rows_layer.currentText())
        except (ValueError, RoiError) as exc:
            _notify("error", str(exc))
            return 0

    def new_seed_layer(self):
        """Add a Labels layer over the image's Y-X grid to paint seeds on (selected,
        in paint mode, and chosen in the "Components from layer" menu)."""
        try:
            layer = self.session.new_seed_layer()
        except (ValueError, RoiError) as exc:
            _notify("error", str(exc))
            return None
        self.viewer.layers.selection.active = layer
        layer.mode = "paint"
        self.reset_choices()
        self.rows_layer.setCurrentText(layer.name)
        return layer

    def use_result_as_seeds(self) -> bool:
        """Make one row per component of the last result, seeded by its spectrum and map."""
        try:
            self.session.rows_from_result()
        except Refusal as exc:
            _notify(exc.kind, str(exc))
            return False
        self.choose_refining_mode()
        return True

    def choose_refining_mode(self) -> None:
        """Switch to Seeded NNMF unless the mode is seeded already."""
        if not self.form.spec.seeded:
            self._choose_mode(refining_mode())

    def notify(self, kind: str, message: str) -> None:
        """A napari notification in the dock's words."""
        _notify(kind, message)

    # -- the pixel inspector -----------------------------------------------------------
    def inspect_at(self, world_position):
        """Show the pixel at ``world_position`` of the shown run in the spectra dock (its
        spectrum, the fit, the components' parts, the residual); returns the
        :class:`~.inspector.PixelView` (None: inspector off, no run, off the image)."""
        if not self.history.inspector.isChecked() or self.running:
            return None
        view = self.session.inspect(world_position)
        if view is None:
            return None
        self._plot().display(pixel_content(view, self.session.result, self.session.result_colors))
        return view

    # -- seed previews -------------------------------------------------------------------
    def _plot(self):
        from .spectra_plot import SpectraPlot

        if self.spectra_plot is None:
            self.spectra_plot = SpectraPlot(self.viewer)
        if self.spectra_plot.parent() is None:  # new, or closed by the user
            self.viewer.window.add_dock_widget(self.spectra_plot, name="Unmixing spectra",
                                               area="right")
            share_height(dock_of(self), dock_of(self.spectra_plot))
        return self.spectra_plot

    def preview_seeds(self, *, notify: bool = True) -> list:
        """Show every row's seed spectrum (ROI means on the raw data) as dashed curves.

        Returns the curves shown.  With ``notify``, rows that cannot be previewed are
        reported; otherwise they are skipped silently (automatic previews).
        """
        from .spectra_plot import Curve, PlotContent

        if self.running:
            return []
        self.session.update_rows(self.table.settings())  # as the rows read now
        try:
            spectra, problems, values, unit = self.session.seed_previews(read_lazy=notify)
        except (ValueError, RoiError) as exc:
            if notify:
                _notify("warning", str(exc))
            return []
        curves = [Curve(f"{row.name} (seed)", np.asarray(v, float), row.color, dashed=True)
                  for row, v in spectra]
        if curves or self.spectra_plot is not None:
            plot = self._plot()
            shown = plot.content if plot.content is not None else PlotContent()
            plot.display(dataclasses.replace(shown, previews=curves, spectral_values=values,
                                             unit=unit))
        if problems and notify:
            _notify("warning", "Some seeds cannot be previewed:\n" + "\n".join(problems))
        return curves

    # -- run -----------------------------------------------------------------------------
    def _prepare(self) -> RunRequest:
        """Gather the run's inputs in the GUI thread (ROIs are read here)."""
        subtract, smoothing = self.form.preprocessing_choice()
        self.session.update_rows(self.table.settings())  # as the rows read now
        return self.session.prepare(self.form.config_kwargs(), subtract_background=subtract,
                                    smoothing=smoothing,
                                    residual=self.history.residual.isChecked())

    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.done

    def run(self):
        """Start the analysis in a worker; returns the :class:`Job` (None if refused)."""
        if self.running:
            _notify("warning", "An analysis is already running: wait for it to finish or "
                    "press Cancel before starting another.")
            return None
        try:
            request = self.diagnostics.prepared(self._prepare())
        except _REFUSED as exc:
            _notify("error", f"Cannot start the analysis: {exc}")
            self._set_status(f"Refused: {exc}", failed=True)
            return None
        self._preview_timer.stop()  # a pending seed preview would cover the result
        self._running = request
        self.table.set_reports({})
        self._set_running(True)
        self.summary.setText("")  # the last run's numbers are not this run's
        self._set_status(request.running_text())
        for note in request.notes:
            _notify("info", note)
        self.job = start_job(request.func, on_progress=self._on_progress,
                             on_done=partial(self._on_done, request))
        self._lifeline.job = self.job
        return self.job

    def start_task(self, func, *, status: str, on_value):
        """Run ``func(callback=...)`` in the worker as a run is (progress, Cancel, the
        settings disabled); ``on_value(value)`` in the GUI thread unless it was cancelled
        or failed (said as a run's), returning the status line (None: leave it).  Returns
        the Job (None while another job runs)."""
        if self.running:
            _notify("warning", "An analysis is already running: wait for it to finish or "
                    "press Cancel before starting another.")
            return None

        def done(outcome):
            report = outcome_report(outcome, cancelled=self.job.cancel_requested)
            self._lifeline.job = None
            self._set_running(False)
            for kind, message in report.notices:
                _notify(kind, message)
            text = report.status
            if report.publish:
                try:
                    text = on_value(outcome.value)
                except _REFUSED as exc:
                    _notify("error", str(exc))
                    text = f"Refused: {exc}"
            if text is not None:
                self._set_status(text, failed=text.startswith(("Failed", "Refused")))

        self._set_running(True)
        self._set_status(status)
        self.job = start_job(func, on_progress=self._on_progress, on_done=done)
        self._lifeline.job = self.job
        return self.job

    def cancel(self) -> None:
        """Ask the running analysis to stop; nothing it computed is published."""
        if not self.running:
            return
        self.job.cancel()
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("cancelling …")
        self.status.setText(cancel_text(self._running.config if self._running else None))

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.form.container.enabled = not running
        self.series_panel.container.enabled = not running
        self.components_box.setEnabled(not running)
        self.diagnostics.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)  # busy until the first report
            self.progress.setFormat("starting …")
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("idle")

    def _on_progress(self, info) -> None:
        if not self.running:
            return
        maximum, value, text = progress_view(info)
        self.progress.setRange(0, maximum)
        self.progress.setValue(value)
        self.progress.setFormat(text)

    def _on_done(self, request: RunRequest, outcome):
        """Show a finished job's outcome: a generator, one map layer per step (the job
        is done, and the dock ready again, after the last; see :func:`.start_job`)."""
        report = outcome_report(outcome, cancelled=self.job is not None
                                and self.job.cancel_requested)
        self._running = None
        for line in report.logged:
            log.info("warning during the analysis: %s", line)
        for kind, message in report.notices:
            _notify(kind, message)
        if report.publish:
            self.cancel_button.setEnabled(False)  # the run is over; its maps are coming
            self.progress.setFormat("showing the maps …")
            self._plot()  # a result brings the spectra dock back (closed by the user)
            try:
                report.status = yield from self.session.publish_steps(request, outcome.value)
            except Refusal as exc:  # the image went away during the run: nothing is shown
                report.status = f"Failed: {exc}"
                _notify(exc.kind, str(exc))
            except Exception as exc:  # e.g. the image was removed while the maps came
                log.exception("showing the result failed")
                report.status = f"Failed to show the result: {exc}"
                _notify("error", report.status)
        elif report.status.startswith("Cancelled"):
            self.summary.setText(self.session.summary_text())  # nothing changed
        self._lifeline.job = None
        self._set_running(False)
        self._set_status(report.status, failed=report.status.startswith("Failed"))

    def _set_status(self, text: str, *, failed: bool = False) -> None:
        """The status line (a refusal or failure in the warning colour)."""
        self.status.setText(dock_words(text))
        self.status.setStyleSheet("color: #ff7b72;" if failed else "")
