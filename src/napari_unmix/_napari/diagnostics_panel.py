"""The dock's "Is my fit good?" section: suggest components, k curves, stability, errors.

A collapsible section of the unmixing dock (:class:`DiagnosticsPanel`, collapsed at
first).  Its actions run in the dock's worker (``UnmixWidget.start_task``: the
progress bar, Cancel and the disabled settings of a run; the viewer never waits)
the Qt-free jobs of :mod:`.diagnostics`, and show what they give:

Suggest components
    The unsupervised pipeline: the number of components (``components: auto``) and
    the candidate seed regions, added as an editable Labels layer "suggested seeds"
    with one component row per label; the k curves are plotted; then seeded NNMF
    runs from those rows as an ordinary run, with the residual map.  Edit the
    regions (paint, erase) and press Run to run again.
How many components?
    The k suggestion's curves in their own dock ("How many components?",
    :class:`KCurvesPlot`): scree, residual versus k, cross-validation, the suggested
    k marked.
Stability
    Random NNMF from several starts (``starts``) with the number of components of
    the shown run (else the settings'); a table of each component's spread (rad)
    and whether it is reproducible.
Add component from residual
    The residual of the shown run; its largest region of unexplained pixels gives
    a new row (spectrum seed, trust 0) besides one row per component of the run
    ("Use result as seeds"), in Seeded NNMF.
standard errors
    Fixed-H NNLS runs also get per-pixel standard errors of their abundances, as
    hidden layers ``run N · SE · component``.

Layout is in ``_build``, wiring in ``_connect``; the decisions are the jobs' and the
dock's session's.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.colors import default_colors
from ..core.modes import MODES
from . import diagnostics as diag
from .layers import is_signed
from .rois import ImageGrid

__all__ = ["TIPS", "DiagnosticsPanel", "KCurvesPlot"]

#: The tooltip of every control of the section.
TIPS = {
    "header": "Diagnostics of the fit: how many components the data hold, where to seed "
              "them, whether another start gives the same spectra, what the fit missed, "
              "how sure the abundances are.",
    "n_components": "How many components 'Suggest components' seeds. auto (default): "
                    "suggested from the data (scree, residual versus k, cross-validation; "
                    "at most 12).",
    "method": "How the seed regions are found. purest (default): pixels around the "
              "purest pixels of each material (N-FINDR on denoised data, outliers set "
              "aside); ward: spatially coherent regions (Ward clustering, as HS-MOSAIC's "
              "ROIs), for images without pure pixels.",
    "suggest": "Suggest the number of components and their seed regions, add them as an "
               "editable Labels layer 'suggested seeds' and one row per region, then run "
               "Seeded NNMF from them with the residual map. Edit the regions and press "
               "Run to run again.",
    "k": "Plot the curves behind the suggested number of components (scree against the "
         "noise edge, NNMF residual against the noise floor, cross-validated error) in "
         "the 'How many components?' dock, the suggestion marked.",
    "stability": "Run random NNMF from several starts with the shown run's number of "
                 "components (else the settings') and show how far each component moves "
                 "between starts (rad). Below 0.1: reproducible; above: spurious, or not "
                 "pinned down by the data (seed it).",
    "n_starts": "Random starts of 'Stability' (default 10; more is slower and surer).",
    "residual": "Compute what the shown run leaves unexplained and add a component row "
                "seeded with the residual spectrum of its largest region of unexplained "
                "pixels (trust 0), beside one row per component of the run; then press Run.",
    "errors": "Fixed-H NNLS runs also compute per-pixel standard errors of the abundances "
              "(analytic on the active set, noise estimated from the fit) and add them as "
              "hidden layers 'run N · SE · component'. Off by default.",
    "table": "Per component of the stability run: the mean and largest angle (rad) between "
             "the starts' spectra and their consensus, and the verdict.",
}


class KCurvesPlot(QWidget):
    """The k suggestion's curves (:func:`.diagnostics.draw_k_curves`), themed like
    napari; :meth:`display` shows a KSuggestion."""

    def __init__(self, napari_viewer=None, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.suggestion = None
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg  # (see SpectraPlot)
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(7.5, 2.6), dpi=100)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(200)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.canvas)
        if napari_viewer is not None:
            napari_viewer.events.theme.connect(lambda *_: self.draw())

    def _theme(self):
        fg, bg = "#d0d0d0", "#262930"
        if self.viewer is not None:
            try:
                from napari.utils.theme import get_theme

                theme = get_theme(self.viewer.theme)
                fg, bg = theme.text.as_hex(), theme.background.as_hex()
            except Exception:  # an unknown custom theme: keep the defaults
                pass
        return fg, bg

    def display(self, suggestion) -> None:
        self.suggestion = suggestion
        self.draw()

    def draw(self) -> None:
        if self.suggestion is None:
            return
        fg, bg = self._theme()
        self.axes = diag.draw_k_curves(self.figure, self.suggestion, fg=fg, bg=bg)
        self.canvas.draw_idle()


def _button(text: str, tip: str) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tip)
    return b


class DiagnosticsPanel(QWidget):
    """The "Is my fit good?" section of ``dock`` (an ``UnmixWidget``)."""

    def __init__(self, dock, parent=None):
        super().__init__(parent)
        self.dock = dock
        self.k_plot: KCurvesPlot | None = None
        self.stability_report = None
        self.suggestion = None
        self.residual_report = None
        self._se_done: set = set()
        self._build()
        self._connect()
        self.set_expanded(False)

    # -- layout -----------------------------------------------------------------------
    def _build(self) -> None:
        self.header = QToolButton()
        self.header.setText("Is my fit good?")
        self.header.setCheckable(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.header.setToolTip(TIPS["header"])
        self.body = QWidget()
        self.n_components = QSpinBox()
        self.n_components.setRange(0, 32)
        self.n_components.setSpecialValueText("auto")
        self.n_components.setToolTip(TIPS["n_components"])
        self.method = QComboBox()
        self.method.addItems(["purest", "ward"])
        self.method.setToolTip(TIPS["method"])
        self.suggest_button = _button("Suggest components", TIPS["suggest"])
        self.k_button = _button("How many components?", TIPS["k"])
        self.stability_button = _button("Stability", TIPS["stability"])
        self.n_starts = QSpinBox()
        self.n_starts.setRange(2, 50)
        self.n_starts.setValue(10)
        self.n_starts.setPrefix("starts: ")
        self.n_starts.setToolTip(TIPS["n_starts"])
        self.residual_button = _button("Add component from residual", TIPS["residual"])
        self.errors = QCheckBox("standard errors (fixed-H NNLS)")
        self.errors.setToolTip(TIPS["errors"])
        self.table = QTableWidget(0, len(diag.STABILITY_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(diag.STABILITY_COLUMNS))
        self.table.setToolTip(TIPS["table"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        corner = self.table.findChild(QAbstractButton)  # the table's select-all corner
        if corner is not None:
            corner.setToolTip("Select the whole table (to copy it).")
        self.table.setVisible(False)
        self.table_title = QLabel("")
        self.table_title.setWordWrap(True)
        self.table_title.setVisible(False)

        form = QFormLayout()
        form.addRow("components", self.n_components)
        form.addRow("seed regions", self.method)
        stab = QHBoxLayout()
        stab.addWidget(self.stability_button, 1)
        stab.addWidget(self.n_starts)
        top = QHBoxLayout()
        top.addWidget(self.suggest_button)
        top.addWidget(self.k_button)
        body = QVBoxLayout(self.body)
        body.setContentsMargins(8, 0, 0, 0)
        body.addLayout(form)
        body.addLayout(top)
        body.addLayout(stab)
        body.addWidget(self.residual_button)
        body.addWidget(self.errors)
        body.addWidget(self.table_title)
        body.addWidget(self.table)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        lay.addWidget(self.header)
        lay.addWidget(self.body)

    def _connect(self) -> None:
        self.header.toggled.connect(self.set_expanded)
        self.suggest_button.clicked.connect(lambda: self.suggest())
        self.k_button.clicked.connect(lambda: self.how_many())
        self.stability_button.clicked.connect(lambda: self.check_stability())
        self.residual_button.clicked.connect(lambda: self.add_from_residual())
        self.dock.session.events.result.connect(self._on_result)

    def set_expanded(self, on: bool) -> None:
        """Show or hide the section's controls."""
        if self.header.isChecked() != bool(on):
            self.header.setChecked(bool(on))
        self.header.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(bool(on))

    # -- helpers ----------------------------------------------------------------------
    def _grid(self) -> ImageGrid | None:
        try:
            return self.dock.session.grid()
        except ValueError as exc:
            self.dock.notify("error", str(exc))
            return None

    @staticmethod
    def _stack(grid: ImageGrid):
        layer = grid.layer
        return layer.data[0] if layer.multiscale else layer.data

    def _plot(self) -> KCurvesPlot:
        from .dock_layout import dock_of

        if self.k_plot is None:
            self.k_plot = KCurvesPlot(self.dock.viewer)
        if self.k_plot.parent() is None:  # new, or closed by the user
            self.dock.viewer.window.add_dock_widget(self.k_plot, name="How many components?",
                                                    area="bottom")
            dock_of(self.k_plot).setFloating(False)
        return self.k_plot

    # -- suggest components -----------------------------------------------------------
    def suggest(self):
        """Suggest components and seed regions in the worker, then add them and run
        seeded NNMF (module documentation).  Returns the job (None if refused)."""
        grid = self._grid()
        if grid is None:
            return None
        n = int(self.n_components.value()) or None
        func = partial(diag.suggestion_job, self._stack(grid),
                       spectral_axis=grid.spectral_axis_index, n_components=n,
                       method=self.method.currentText())
        return self.dock.start_task(func, status=f"Suggesting components for {grid.name!r} …",
                                    on_value=partial(self._on_suggested, grid))

    def _on_suggested(self, grid: ImageGrid, suggestion) -> str | None:
        self.suggestion = suggestion
        if suggestion.k is not None:
            self._plot().display(suggestion.k)
        name = "suggested seeds"
        if name in self.dock.viewer.layers:
            self.dock.viewer.layers.remove(name)
        layer = self.dock.session.new_seed_layer(name)
        # the layer's own shape: a channel-last image's has a length-1 spectral axis
        labels = np.asarray(suggestion.seeds.labels).reshape(layer.data.shape)
        layer.data = labels.astype(layer.data.dtype if suggestion.n_components < 255
                                   else "int32")
        self.dock.reset_choices()
        if self.dock.components_from_layer(layer.name) == 0:
            return "Refused: the suggested seed regions make no component."
        notes = [n for n in suggestion.seeds.notes if not n.startswith("geometry")]
        for note in notes + (suggestion.k.notes if suggestion.k else []):
            self.dock.notify("info", note)  # (the geometry chosen is the seeds' detail)
        self.dock.choose_refining_mode()
        self.dock.history.residual.setChecked(True)  # the pipeline's report
        self.dock.run()
        return None

    # -- how many components ----------------------------------------------------------
    def how_many(self):
        """Compute the k suggestion in the worker and plot its curves; returns the job."""
        grid = self._grid()
        if grid is None:
            return None
        func = partial(diag.k_job, self._stack(grid), spectral_axis=grid.spectral_axis_index)
        return self.dock.start_task(func, status=f"Counting the components of {grid.name!r} …",
                                    on_value=self._on_k)

    def _on_k(self, ks) -> str:
        self._plot().display(ks)
        return (f"k = {ks.k} suggested (scree {ks.k_scree}, residual {ks.k_residual}, "
                f"cross-validation {ks.k_cv}): the curves are in 'How many components?'.")

    # -- stability --------------------------------------------------------------------
    def stability_k(self) -> int:
        """The number of components Stability tries: the shown run's, else the settings'."""
        res = self.dock.session.result
        if res is not None and not is_signed(res.mode):
            return int(res.n_components)
        return int(self.dock.form.n_components.value)

    def check_stability(self):
        """Run the stability check in the worker and fill the table; returns the job."""
        grid = self._grid()
        if grid is None:
            return None
        k = self.stability_k()
        func = partial(diag.stability_job, self._stack(grid),
                       spectral_axis=grid.spectral_axis_index, n_components=k,
                       n_starts=int(self.n_starts.value()))
        return self.dock.start_task(func, status=f"Stability of {k} components over "
                                    f"{self.n_starts.value()} random starts …",
                                    on_value=partial(self._on_stability, grid.layer.name))

    def _on_stability(self, image: str, report) -> str:
        """Fill the table with ``report`` of image ``image`` (named in its title: the
        table stays while another image is chosen)."""
        self.stability_report = report
        rows = diag.stability_rows(report)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                if j == 3 and text != "reproducible":
                    item.setForeground(Qt.GlobalColor.yellow)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.table.setFixedHeight(self.table.horizontalHeader().height()
                                  + sum(self.table.rowHeight(i) for i in range(len(rows))) + 4)
        self.table.setVisible(True)
        self.table_title.setText(f"Stability of {image!r}: random NNMF, "
                                 f"{report.n_components} components, "
                                 f"{report.n_starts} starts; {report.n_reproducible} "
                                 f"reproducible (spread < {report.threshold:g} rad).")
        self.table_title.setVisible(True)
        self.set_expanded(True)
        return (f"Stability of {image!r}: {report.n_reproducible} of {report.n_components} "
                "components reproducible.")

    # -- add a component from the residual --------------------------------------------
    def add_from_residual(self):
        """Compute the shown run's residual in the worker, then add the rows (module
        documentation); returns the job (None if refused)."""
        session = self.dock.session
        res, record = session.result, session.current
        if res is None or record is None:
            self.dock.notify("info", "There is no run yet: run an analysis first.")
            return None
        if is_signed(res.mode) or session.series_result is not None:
            self.dock.notify("warning", "Add component from residual needs a run of NNMF or "
                             "NNLS on one image (not PCA, not a z / t series).")
            return None
        layer = session.record_image(record)
        if layer is None:
            self.dock.notify("error", f"The image {record.image!r} of the shown run is not in "
                             "the viewer any more.")
            return None
        stack = layer.data[0] if layer.multiscale else layer.data
        func = partial(diag.residual_job, res, stack, spectral_axis=record.spectral_axis)
        return self.dock.start_task(func, status=f"Residual of run {record.number} …",
                                    on_value=partial(self._on_residual, record.number))

    def _on_residual(self, number: int, report) -> str:
        self.residual_report = report
        session = self.dock.session
        session.rows_from_result()  # the run's components, as seeds
        taken = {r.name for r in session.rows}
        i = 1
        while f"residual {i}" in taken:
            i += 1
        used = {r.color.upper() for r in session.rows}
        palette = default_colors(len(used) + 1)  # one at least is not in use
        color = next((c for c in palette if c.upper() not in used), palette[0])
        row, path = diag.residual_row(report, name=f"residual {i}", color=color, run=number)
        self.dock.table.add_row(row)
        self.dock.choose_refining_mode()
        return (f"Added 'residual {i}': the residual of run {number}'s largest region of "
                f"unexplained pixels ({report.region_sizes[0]} px; spectrum in {path}). "
                "Press Run to fit it with the run's components.")

    # -- standard errors ----------------------------------------------------------------
    def prepared(self, request):
        """The dock's ``request`` with standard errors computed in its worker when asked
        and the run is fixed-H NNLS on one image."""
        if not self.errors.isChecked():
            return request
        spec = MODES.get(request.config.mode)
        if spec is None or not spec.fixed_spectra or request.series is not None:
            request.notes = (*request.notes, "Standard errors are computed for Fixed-H NNLS "
                             "runs of one image only; this run has none.")
            return request
        request.func = diag.with_errors(request.func, self._stack(request.grid),
                                        spectral_axis=request.grid.spectral_axis_index)
        return request

    def _on_result(self, result) -> None:
        session = self.dock.session
        record = session.current
        layer = session.record_image(record)
        if (layer is None or record.number in self._se_done
                or "W_se" not in (result.arrays or {})):
            return
        self._se_done.add(record.number)
        if session.keep != "keep":
            diag.remove_errors(self.dock.viewer, source_image=record.image,
                               source_uid=record.image_uid,
                               spare_owners=session.other_owners())
        grid = ImageGrid(layer, record.spectral_axis)
        layers = diag.show_errors(self.dock.viewer, result, grid=grid, number=record.number,
                                  source_image=record.image, owner=session.owner)
        from .seed_context import layer_uid

        record.layer_uids.extend(layer_uid(lyr) for lyr in layers)
