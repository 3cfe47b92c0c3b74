"""The "Spectral unmixing" dock: settings, components, run / cancel, results.

The dock is glue.  It builds one
:class:`~napari_unmix.core.analysis.AnalysisConfig` from its settings
(:mod:`.settings_form`) and its component table (:mod:`.component_table`, ROIs
read by :mod:`.rois` through :mod:`.seed_inputs`), and runs
:func:`~napari_unmix.core.analysis.run_analysis` in a worker thread
(:func:`.workers.start_job`).  The same progress callback that drives the CLI's
progress bar drives the dock's.

While a run goes on the viewer stays responsive; the progress bar shows the stage,
iteration and error; Cancel stops the run at its next progress report, and a
cancelled run changes nothing.  A failed run is reported as a notification and the
dock is ready again.  A finished run replaces the previous maps of the same image
(:mod:`.layers`), shows the spectra in the spectra dock (:class:`.SpectraPlot`), the
fit summary and, per component, how its seeds were made.

z / t series
    An image with a spatial axis besides the Y-X plane, e.g. ``(Z, C, Y, X)`` or
    ``(T, C, Y, X)``, gets a "series" choice.  The *series axis* is the first such
    axis (the first non-spectral axis in front of the last two); it is hidden for
    ``(C, Y, X)`` stacks.

    * *joint fit (all planes as pixels)*: one :func:`run_analysis` on the whole
      stack, the planes' pixels pooled into one matrix (the default).
    * *per plane*: :func:`~napari_unmix.core.series.unmix_series` with
      ``strategy="per-slice"``: every plane is fitted on its own (any mode), and the
      components are put in the order of the reference plane's.
    * *shared basis from plane N*: the spectra are fitted on plane N (by default
      the plane the viewer shows; the reference plane follows the slider until it
      is edited), then every plane's maps by fixed-spectra NNLS, so that map values
      compare across planes.
    * *shared basis from all planes (pooled sample)*: the same, with the spectra
      fitted on a random pixel sample drawn evenly from all planes.

    A 5-D image, e.g. ``(T, Z, C, Y, X)``, is a series along its first axis (T)
    whose planes are volumes: each time point's whole z-stack is one "plane".

    Seeds belong to a plane.  A shared basis from plane N takes the ROIs and labels
    on plane N (an ROI with no pixel there is refused, naming the planes it is on).
    A per-plane run applies each ROI to every plane, so it needs ROIs that are the
    same on every plane (e.g. a 2-D Shapes layer over the stack); label seeds
    follow each plane's labels and must be present on every plane.  The pooled
    sample has no geometry: ROI and label seeds are refused before the run starts.
    Rows seeded from a previous result give their spectrum; their map is a seed
    only for a shared basis from plane N (its plane N), and the dock says so when
    it is left out.

    The maps are published like a joint fit's (one layer per component over all
    planes, placed on the image, :mod:`.layers`); ``self.result`` is then an
    :class:`~napari_unmix.core.result.UnmixResult` over the whole stack (``W`` the
    maps of all planes, ``H`` the shared basis, or for per-plane runs the mean of
    the planes' matched spectra, with every plane's spectra in
    ``arrays["plane_H"]``) and ``self.series_result`` the
    :class:`~napari_unmix.core.series.SeriesResult`.  The spectra dock shows the
    shared basis, or for per-plane runs the spectra of the plane the viewer shows,
    redrawn when the slider moves.  The fit summary gives the basis fit and the
    iterations, cap hits and errors of every plane.

The layout (``_build_layout``) is kept apart from the wiring (``_connect``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

import numpy as np
from qtpy.QtCore import QEvent, Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core.analysis import AnalysisConfig, run_analysis
from ..core.colors import default_colors
from ..core.components import FromComponent
from ..core.preprocess import Preprocessing
from ..core.series import unmix_series
from ..core.solvers import pick_nmf_solver, pick_nnls_solver
from .component_table import ComponentTable
from .layers import META_KEY, show_result
from .reader import RESULT_KEY
from .rois import ImageGrid, RoiError, label_ids, labels_image, shape_masks
from .seed_inputs import RowSettings, SeedContext, SourceChoice, build_components, seed_spectra
from .series_run import SeriesPlan, series_as_result, series_axis, series_seeds, series_summary
from .settings_form import SEEDED_MODES, SettingsForm
from .summary_text import fit_summary, seed_reports
from .workers import start_job

__all__ = ["UnmixWidget"]

log = logging.getLogger(__name__)

#: Most components "Components from layer" makes (a segmentation of every cell is not a
#: set of components).
MAX_ROWS_FROM_LAYER = 32

#: Warning categories shown to the user as notifications (others are logged).
_SHOWN_WARNINGS = (UserWarning, RuntimeWarning)


def _notify(kind: str, message: str) -> None:
    from napari.utils import notifications

    getattr(notifications, f"show_{kind}")(message)


@dataclass(eq=False)
class _Run:
    """Everything one run needs, gathered in the GUI thread before it starts."""

    image: str
    grid: ImageGrid
    config: AnalysisConfig
    colors: list
    func: object
    series: SeriesPlan | None = None
    notes: tuple = ()


class _Lifeline:
    """Holds the current job so that the dock's destruction can detach it.

    Connected to the widget's ``destroyed`` signal through a closure that does not
    reference the widget (which is being destroyed at that point).
    """

    def __init__(self):
        self.job = None

    def detach(self, *_):
        if self.job is not None:
            self.job.detach()


class _VerticalScroll(QScrollArea):
    """Scrolls its content vertically only, and is never narrower than the content.

    A plain scroll area may be squeezed below its content's width and then clips
    buttons and labels behind a horizontal scroll bar.
    """

    def __init__(self, content: QWidget, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(content)
        content.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 (Qt)
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # rows added or removed: the width may change
        return super().eventFilter(obj, event)

    def minimumSizeHint(self):  # noqa: N802 (Qt)
        hint = super().minimumSizeHint()
        content = self.widget()
        if content is not None:
            hint.setWidth(content.minimumSizeHint().width()
                          + self.verticalScrollBar().sizeHint().width()
                          + 2 * self.frameWidth())
        return hint


class UnmixWidget(QWidget):
    """The "Spectral unmixing" dock widget.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.job = None
        #: the last published result and the image it belongs to
        self.result = None
        self.result_image: str | None = None
        #: the SeriesResult behind ``result`` after a series run (None otherwise)
        self.series_result = None
        self._series_shown: tuple | None = None  # (image, series axis, plane) plotted
        self._plane_follows = True  # the reference plane follows the viewer's slider
        self._setting_plane = False
        self._result_colors_shown: list = []
        self.spectra_plot = None
        self._running: _Run | None = None
        self._lifeline = _Lifeline()
        self._build_layout()
        self._connect()
        self.reset_choices()
        self._on_image_changed()

    # -- layout ----------------------------------------------------------------------
    def _build_layout(self):
        self.form = SettingsForm(image_choices=self._image_names)
        self.table = ComponentTable()
        self.add_button = QPushButton("Add")
        self.rows_layer = QComboBox()
        self.rows_layer.setToolTip("A Labels layer (one component per label) or a Shapes "
                                   "layer (one component per shape)")
        self.rows_button = QPushButton("Components from layer")
        self.preview_button = QPushButton("Preview seeds")
        self.seeds_button = QPushButton("Use result as seeds")
        self.seeds_button.setEnabled(False)
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)

        comp_box = QGroupBox("Components")
        cl = QVBoxLayout(comp_box)
        from_row = QHBoxLayout()
        from_row.addWidget(self.add_button)
        from_row.addWidget(self.rows_layer, 1)
        from_row.addWidget(self.rows_button)
        cl.addLayout(from_row)
        cl.addWidget(self.table)
        seeds_row = QHBoxLayout()
        seeds_row.addWidget(self.preview_button)
        seeds_row.addWidget(self.seeds_button)
        cl.addLayout(seeds_row)
        self.components_box = comp_box

        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)

        body = QWidget()
        lay = QVBoxLayout(body)
        lay.addWidget(self.form.container.native)
        lay.addWidget(comp_box)
        lay.addLayout(run_row)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.summary)
        lay.addStretch(1)
        # the dock scrolls rather than making the window taller than the screen (the
        # settings, the component table and the spectra dock exceed a laptop's 900 px)
        scroll = _VerticalScroll(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(400)

    # -- wiring ----------------------------------------------------------------------
    def _connect(self):
        f = self.form
        f.image.changed.connect(self._on_image_changed)
        f.spectral_axis.changed.connect(self._update_axis_info)
        f.mode.changed.connect(self._on_mode_changed)
        f.series.changed.connect(self._on_series_changed)
        f.series_plane.changed.connect(self._on_plane_edited)
        # napari keeps a weak reference to the method: no leak when the dock goes away
        self.viewer.dims.events.current_step.connect(self._on_dims_step)
        self.add_button.clicked.connect(lambda: self.table.add_row())
        self.rows_button.clicked.connect(lambda: self.components_from_layer())
        self.preview_button.clicked.connect(lambda: self.preview_seeds(notify=True))
        self.seeds_button.clicked.connect(lambda: self.use_result_as_seeds())
        self.run_button.clicked.connect(lambda: self.run())
        self.cancel_button.clicked.connect(self.cancel)
        self.table.changed.connect(self._on_table_changed)
        self._preview_timer.timeout.connect(lambda: self.preview_seeds(notify=False))
        lifeline = self._lifeline
        self.destroyed.connect(lambda *_: lifeline.detach())
        self._on_mode_changed()

    # -- layer choices ---------------------------------------------------------------
    def _layers_of(self, kind):
        from napari.layers import Image, Labels, Shapes

        cls = {"image": Image, "labels": Labels, "shapes": Shapes}[kind]
        out = []
        for layer in self.viewer.layers:
            if not isinstance(layer, cls):
                continue
            meta = layer.metadata if isinstance(layer.metadata, dict) else {}
            if kind == "image" and (META_KEY in meta or RESULT_KEY in meta or layer.rgb
                                    or layer.ndim < 3):
                continue  # our own maps, RGB pictures and 2-D images are not stacks
            out.append(layer)
        return out

    def _image_names(self) -> list[str]:
        """Images that can be unmixed; those with spectral metadata first."""
        images = self._layers_of("image")
        tagged = [lyr.name for lyr in images
                  if isinstance(lyr.metadata, dict) and "spectral_axis_index" in lyr.metadata]
        return tagged + [lyr.name for lyr in images if lyr.name not in tagged]

    def reset_choices(self, *_):
        """Refresh the layer menus (napari calls this when layers change)."""
        self.form.image.reset_choices()
        shapes = [lyr.name for lyr in self._layers_of("shapes")]
        labels = [lyr.name for lyr in self._layers_of("labels")]
        self.table.set_layer_choices(shapes, labels)
        keep = self.rows_layer.currentText()
        self.rows_layer.clear()
        self.rows_layer.addItems(labels + shapes)
        if keep in labels + shapes:
            self.rows_layer.setCurrentText(keep)

    def _image_layer(self):
        name = self.form.image.value
        if not name or name not in self.viewer.layers:
            raise ValueError("Choose the image to unmix (a spectral stack with at least three "
                             "axes) in the 'image' menu.")
        return self.viewer.layers[name]

    def _grid(self) -> ImageGrid:
        return ImageGrid(self._image_layer(), int(self.form.spectral_axis.value))

    def _on_image_changed(self, *_):
        f = self.form
        name = f.image.value
        if not name or name not in self.viewer.layers:
            f.axis_info.value = "no spectral image in the viewer"
            return
        layer = self.viewer.layers[name]
        meta = layer.metadata if isinstance(layer.metadata, dict) else {}
        f.spectral_axis.max = max(int(layer.ndim) - 1, 0)
        axis = meta.get("spectral_axis_index")
        f.spectral_axis.value = int(axis) if isinstance(axis, (int, np.integer)) else 0
        self._update_axis_info()

    def _update_axis_info(self, *_):
        try:
            grid = self._grid()
        except (ValueError, RoiError) as exc:
            self.form.axis_info.value = str(exc)
            self.form.set_series(None)
            return
        self._update_series(grid)
        n = grid.n_channels
        values, unit = grid.spectral_values()
        if values is None:
            self.form.axis_info.value = (f"{n} channels; no spectral values in the layer "
                                         "metadata (channel numbers are used)")
        else:
            self.form.axis_info.value = (f"{n} channels, {values[0]:g} to {values[-1]:g} "
                                         f"{unit or ''}").strip()

    # -- series axis and reference plane -------------------------------------------------
    def _update_series(self, grid: ImageGrid) -> None:
        axis = series_axis(grid)
        if axis is None:
            self.form.set_series(None)
            return
        n = grid.shape[axis]
        plane = [grid.shape[i] for i in grid.spatial_dims if i != axis]
        text = (f"series along axis {axis}: {n} planes of "
                f"{' x '.join(map(str, plane))} pixels")
        if len(plane) > 2:
            text += " (each plane is a volume)"
        self.form.set_series(axis, n, text)
        self._plane_follows = True
        self._sync_plane()

    def _viewer_plane(self, layer, axis: int) -> int | None:
        """The plane of ``layer`` along data axis ``axis`` that the viewer shows."""
        try:
            coords = np.asarray(layer.world_to_data(self.viewer.dims.point), dtype=float)
            n = int((layer.data[0] if layer.multiscale else layer.data).shape[axis])
        except (AttributeError, IndexError, ValueError, np.linalg.LinAlgError):
            return None
        if axis >= coords.size or not np.isfinite(coords[axis]):
            return None
        return min(max(int(np.floor(coords[axis] + 0.5)), 0), n - 1)

    def _current_plane(self) -> int | None:
        try:
            grid = self._grid()
        except (ValueError, RoiError):
            return None
        axis = series_axis(grid)
        return None if axis is None else self._viewer_plane(grid.layer, axis)

    def _sync_plane(self) -> None:
        """Set the reference plane to the viewer's plane while it follows the slider."""
        if not self._plane_follows or self.form.series_choice() is None:
            return
        z = self._current_plane()
        if z is not None and z != self.form.series_plane.value:
            self._setting_plane = True
            try:
                self.form.series_plane.value = z
            finally:
                self._setting_plane = False

    def _on_series_changed(self, *_):
        self._sync_plane()

    def _on_plane_edited(self, *_):
        if not self._setting_plane:  # edited by the user: follow again once it matches
            self._plane_follows = self.form.series_plane.value == self._current_plane()

    def _on_dims_step(self, *_):
        try:
            self._sync_plane()
            self._show_series_spectra()
        except RuntimeError:  # the dock's Qt widgets are already deleted
            pass

    def _on_mode_changed(self, *_):
        mode = self.form.mode.value
        seeded = mode in SEEDED_MODES
        self.components_box.setTitle("Components" if seeded else
                                     "Components (used by seeded NNMF and fixed-H NNLS)")
        self.table.setEnabled(seeded)

    def _on_table_changed(self):
        self._preview_timer.start()

    # -- components --------------------------------------------------------------------
    def components_from_layer(self, name: str | None = None) -> int:
        """Replace the rows by one per label (Labels layer) or per shape (Shapes layer).

        Returns the number of rows made (0 after an error, which is notified).
        """
        from napari.layers import Labels

        name = name or self.rows_layer.currentText()
        try:
            if not name or name not in self.viewer.layers:
                raise ValueError("Choose a Labels or Shapes layer to make components from.")
            layer = self.viewer.layers[name]
            grid = self._grid()
            if isinstance(layer, Labels):
                ids = label_ids(labels_image(layer, grid))
                if len(ids) > MAX_ROWS_FROM_LAYER:
                    raise ValueError(
                        f"Labels layer {name!r} has {len(ids)} labels on the image; one "
                        f"component per label allows at most {MAX_ROWS_FROM_LAYER}. Paint one "
                        "label per kind of region (e.g. a few cells of each type) instead of "
                        "one per object.")
                colors = default_colors(len(ids))
                rows = [RowSettings(name=f"label {i}", color=colors[k],
                                    source=SourceChoice("labels", layer=name, label_id=i))
                        for k, i in enumerate(ids)]
            else:
                n = len(shape_masks(layer, grid))  # validates every shape
                if n > MAX_ROWS_FROM_LAYER:
                    raise ValueError(f"Shapes layer {name!r} has {n} shapes; one component per "
                                     f"shape allows at most {MAX_ROWS_FROM_LAYER}.")
                colors = default_colors(n)
                rows = [RowSettings(name=f"shape {i + 1}", color=colors[i],
                                    source=SourceChoice("shapes", layer=name, shape_index=i))
                        for i in range(n)]
        except (ValueError, RoiError) as exc:
            _notify("error", str(exc))
            return 0
        self.table.set_rows(rows)
        return len(rows)

    def use_result_as_seeds(self) -> bool:
        """Make one row per component of the last result, seeded by its spectrum and map."""
        res = self.result
        if res is None:
            _notify("info", "There is no result yet: run an analysis first.")
            return False
        if res.mode == "pca":
            _notify("warning", "PCA loadings and scores are signed and cannot seed NNMF or "
                    "NNLS; use an NNMF or NNLS result as seeds.")
            return False
        old = {c.get("name"): c for c in (res.params.get("config") or {}).get("components", [])}
        colors = self._result_colors(res)
        rows = []
        for name, color in zip(res.component_names, colors, strict=True):
            flags = old.get(name, {})
            rows.append(RowSettings(name=name, color=color,
                                    source=SourceChoice("previous", component=name),
                                    background=bool(flags.get("background", False)),
                                    use_subtracted=bool(flags.get("use_subtracted", True)),
                                    locked=bool(flags.get("locked", False))))
        self.table.set_previous_components(res.component_names)
        self.table.set_rows(rows)
        if self.form.mode.value not in SEEDED_MODES:
            self.form.mode.value = "seeded-nmf"
        return True

    @staticmethod
    def _result_colors(res):
        cfg = res.params.get("config") or {}
        colors = [c.get("color") for c in cfg.get("components", [])]
        if len(colors) != res.n_components or not all(colors):
            colors = default_colors(res.n_components)
        return colors

    # -- seed previews -------------------------------------------------------------------
    def _plot(self):
        from .spectra_plot import SpectraPlot

        if self.spectra_plot is None:
            self.spectra_plot = SpectraPlot(self.viewer)
        if self.spectra_plot.parent() is None:  # new, or closed by the user
            self.viewer.window.add_dock_widget(self.spectra_plot, name="Unmixing spectra",
                                               area="right")
        return self.spectra_plot

    def preview_seeds(self, *, notify: bool = True) -> list:
        """Show every row's seed spectrum (ROI means on the raw data) as dashed curves.

        Returns the curves shown.  With ``notify``, rows that cannot be previewed are
        reported; otherwise they are skipped silently (automatic previews).
        """
        from .spectra_plot import Curve

        if self.job is not None and not self.job.done:
            return []
        try:
            grid = self._grid()
        except (ValueError, RoiError) as exc:
            if notify:
                _notify("warning", str(exc))
            return []
        axis, unit = grid.spectral_values()
        ctx = SeedContext(self.viewer.layers, grid, self.result)
        spectra, problems = seed_spectra(self.table.settings(), ctx, read_lazy=notify)
        curves = [Curve(f"{row.name} (seed)", values, row.color, dashed=True)
                  for row, values in spectra]
        if curves or self.spectra_plot is not None:
            self._plot().show_previews(curves, spectral_axis=axis, unit=unit)
        if problems and notify:
            _notify("warning", "Some seeds cannot be previewed:\n" + "\n".join(problems))
        return curves

    # -- run -----------------------------------------------------------------------------
    def _preprocessing(self, rows) -> Preprocessing:
        f = self.form
        background = None
        if f.subtract_background.value:
            bg = [r.name for r in rows if r.background and r.source.kind != "none"]
            if not bg:
                raise ValueError("'subtract background' needs a component marked 'background' "
                                 "with a spectrum source (an ROI of background, a file ...).")
            background = FromComponent(bg[0])
        smoothing = None if f.smoothing.value == "none" else f.smoothing.value
        return Preprocessing(background=background, smoothing=smoothing)

    def _prepare(self) -> _Run:
        """Gather the run's inputs in the GUI thread (ROIs are read here)."""
        f = self.form
        grid = self._grid()
        layer = grid.layer
        axis, unit = grid.spectral_values()
        kw = f.config_kwargs()
        mode = kw["mode"]
        comps, labels, pre = [], None, Preprocessing()
        if mode in SEEDED_MODES:
            rows = self.table.settings()
            if not rows:
                raise ValueError(f"{f.mode.current_choice} needs components: add rows (e.g. "
                                 "'Components from layer' with a Labels layer) and give them "
                                 "seeds.")
            comps, labels = build_components(rows, SeedContext(self.viewer.layers, grid,
                                                               self.result))
            pre = self._preprocessing(rows)
            colors = [r.color for r in rows]
        else:
            colors = default_colors(int(kw["n_components"]))
        plan, notes = self._series_plan(grid), []
        if plan is not None:
            if mode == "pca" and plan.strategy == "shared-basis":
                raise ValueError("PCA loadings are signed, so they cannot be a shared "
                                 "(non-negative) basis: choose 'per plane' for PCA, or an NNMF "
                                 "or NNLS mode for a shared basis.")
            comps, labels, notes = series_seeds(comps, labels, grid, plan)
        config = AnalysisConfig(components=comps, preprocessing=pre, spectral_unit=unit, **kw)
        stack = layer.data[0] if layer.multiscale else layer.data
        if plan is None:
            func = partial(run_analysis, stack, config, spectral_axis=grid.spectral_axis_index,
                           spectral_values=axis, labels=labels)
        else:
            func = partial(unmix_series, stack, config, strategy=plan.strategy,
                           series_axis=plan.axis, spectral_axis=grid.spectral_axis_index,
                           reference=plan.reference, spectral_values=axis, labels=labels)
        return _Run(image=layer.name, grid=grid, config=config, colors=colors, func=func,
                    series=plan, notes=tuple(notes))

    def _series_plan(self, grid: ImageGrid) -> SeriesPlan | None:
        choice = self.form.series_choice()
        axis = series_axis(grid)
        if choice is None or axis is None:
            return None
        n = grid.shape[axis]
        plane = int(self.form.series_plane.value)
        if not 0 <= plane < n:
            raise ValueError(f"The reference plane {plane} is not a plane of image "
                             f"{grid.name!r} (0 to {n - 1} along axis {axis}).")
        return SeriesPlan(choice=choice, axis=axis, n_planes=n, plane=plane)

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
            request = self._prepare()
        except (ValueError, TypeError, RoiError, ImportError, OSError) as exc:
            _notify("error", f"Cannot start the analysis: {exc}")
            return None
        self._preview_timer.stop()  # a pending seed preview would cover the result
        self._running = request
        self.table.set_reports({})
        self._set_running(True)
        how = f" ({request.series.label})" if request.series is not None else ""
        self.status.setText(f"Running {self.form.mode.current_choice}{how} on "
                            f"{request.image!r} …")
        for note in request.notes:
            _notify("info", note)
        self.job = start_job(request.func, on_progress=self._on_progress,
                             on_done=partial(self._on_done, request))
        self._lifeline.job = self.job
        return self.job

    def cancel(self) -> None:
        """Ask the running analysis to stop; nothing it computed is published."""
        if not self.running:
            return
        self.job.cancel()
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("cancelling …")
        spec = None
        cfg = self._running.config if self._running else None
        if cfg is not None and cfg.mode != "pca":
            try:
                spec = (pick_nnls_solver(cfg.solver, cfg.backend) if cfg.mode == "nnls" else
                        pick_nmf_solver(cfg.solver, cfg.backend,
                                        seeded=cfg.mode == "seeded-nmf"))
            except (ValueError, ImportError):  # the run itself reports it
                spec = None
        if spec is not None and not spec.cancellable:
            self.status.setText(f"{spec.algorithm}/{spec.backend} cannot be interrupted: it "
                                "stops when its fit ends, and the result will be discarded.")
        else:
            self.status.setText("Cancelling …")

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.form.container.enabled = not running
        self.components_box.setEnabled(not running)
        if not running:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("idle")
        else:
            self.progress.setRange(0, 0)  # busy until the first report
            self.progress.setFormat("starting …")

    def _on_progress(self, info) -> None:
        if not self.running:
            return
        n_planes = int(getattr(info, "n_planes", 0) or 0)
        if n_planes:  # a series run: the bar covers the whole series
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(round(1000 * float(info.fraction))))
            if info.stage == "series":
                text = f"plane {info.iteration}/{n_planes} done"
            elif info.stage == "sample":
                text = f"sampling plane {info.iteration}/{n_planes}"
            else:
                where = ("shared basis" if info.plane is None else
                         f"plane {info.plane + 1}/{n_planes}")
                text = f"{where} · {info.stage}: {info.iteration} / {info.max_iter}"
            if info.error is not None:
                text += f" · error {info.error:.4g}"
            self.progress.setFormat(text)
            return
        total = max(int(info.max_iter), 1)
        self.progress.setRange(0, total)
        self.progress.setValue(min(int(info.iteration), total))
        text = f"{info.stage}: {info.iteration} / {info.max_iter}"
        if info.error is not None:
            text += f" · error {info.error:.4g}"
        self.progress.setFormat(text)

    def _on_done(self, request: _Run, outcome) -> None:
        cancelled = outcome.cancelled or (self.job is not None and self.job.cancel_requested)
        self._running = None
        self._lifeline.job = None
        self._set_running(False)
        for category, message in outcome.warnings:
            if issubclass(category, _SHOWN_WARNINGS) and not cancelled:
                _notify("warning", message)
            else:
                log.info("warning during the analysis: %s: %s", category.__name__, message)
        if cancelled:
            self.status.setText("Cancelled: no layers were changed.")
            _notify("info", "Spectral unmixing cancelled; nothing was changed.")
            return
        if outcome.error is not None:
            exc = outcome.error
            self.status.setText(f"Failed: {exc}")
            _notify("error", f"Spectral unmixing failed: {exc}")
            return
        self._publish(request, outcome.value)

    # -- results -------------------------------------------------------------------------
    def _publish(self, request: _Run, value) -> None:
        grid = request.grid
        image = request.image
        plan = request.series
        # a series run's maps (k, Z, *plane) are in the C order of the image's spatial
        # axes (the series axis is the first of them): published like a joint fit's
        result = value if plan is None else series_as_result(value, plan)
        image_layer = self.viewer.layers[image] if image in self.viewer.layers else None
        show_result(self.viewer, result, spatial_shape=grid.spatial_shape,
                    colors=request.colors, image_layer=image_layer,
                    spectral_axis_index=grid.spectral_axis_index, source_image=image)
        self.result, self.result_image = result, image
        self.series_result = None if plan is None else value
        self._series_shown = None
        self.seeds_button.setEnabled(result.mode != "pca")
        self.table.set_previous_components(result.component_names)
        self.table.set_reports(seed_reports(result))
        self.summary.setText(fit_summary(result) if plan is None else series_summary(value))
        where = "" if plan is None else f" ({plan.n_planes} planes, {plan.label})"
        self.status.setText(f"Done: {result.n_components} map layer(s) for {image!r}{where}.")
        self._result_colors_shown = list(request.colors)
        plot = self._plot()
        plot.previews = []  # the seeds gave way to the fitted spectra (one redraw below)
        if plan is None:
            plot.show_result(result, colors=request.colors)
        else:
            self._show_series_spectra(series_axis_index=plan.axis)

    def _show_series_spectra(self, *, series_axis_index: int | None = None) -> None:
        """Plot the series result's spectra: the shared basis, or the spectra of the
        plane the viewer shows (per-plane runs; redrawn when the slider moves)."""
        from .spectra_plot import Curve

        sr, plot = self.series_result, self.spectra_plot
        if sr is None or plot is None:
            return
        if series_axis_index is None:  # a slider move: only per-plane spectra change
            if sr.shared_basis or self._series_shown is None:
                return
            series_axis_index = self._series_shown[1]
        z = 0
        if not sr.shared_basis:
            image = self.result_image
            layer = self.viewer.layers[image] if image in self.viewer.layers else None
            found = None if layer is None else self._viewer_plane(layer, series_axis_index)
            z = found if found is not None else (self._series_shown or (0, 0, 0))[2]
        key = (self.result_image, series_axis_index, z)
        if key == self._series_shown:
            return
        self._series_shown = key
        colors = list(self._result_colors_shown)
        names = sr.component_names
        colors += ["#888888"] * (len(names) - len(colors))
        H = sr.plane_spectra(z)
        plot.curves = [Curve(name, np.asarray(h, float), color)
                       for name, h, color in zip(names, H, colors, strict=True)]
        plot.spectral_axis = sr.spectral_values
        plot.unit = sr.spectral_unit
        evr = None if sr.shared_basis else sr.planes[z].get("explained_variance_ratio")
        plot.scree = None if evr is None else np.asarray(evr, float)
        plot.n_kept = sr.n_components
        if sr.shared_basis:
            b = sr.summary.get("basis") or {}
            src = (f"plane {b.get('plane')}" if b.get("source") == "plane"
                   else "pooled sample of all planes")
            plot.title = f"Shared basis, fitted on {src}"
        else:
            base = {"pca": "PCA loadings", "nnls": "Fixed spectra (NNLS)"}.get(
                sr.mode, "Component spectra (H)")
            plot.title = f"{base} · plane {z} of 0-{sr.n_planes - 1} (follows the slider)"
        plot.draw()
