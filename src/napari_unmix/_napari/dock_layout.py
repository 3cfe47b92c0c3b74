"""The widgets of the "Spectral unmixing" dock and their arrangement (no behaviour).

:func:`build_layout` makes the dock's widgets as attributes of the dock
(:class:`~.widget.UnmixWidget`, which wires them) and arranges them:

* a scrolling part (:class:`VerticalScroll`): the settings (:mod:`.settings_form`),
  the setup panel (:mod:`.setup_panel`: save / load the setup, open a result, type
  spectral values), the z / t series panel, the components (the table grows with its
  rows: no scroll area inside the scroll area), the runs (:mod:`.history_panel`),
  "Export figure…" (:mod:`.figure_export`), the fit summary;
* a footer that never scrolls: Run, Cancel, the progress bar and the status line,
  always in reach whatever the window size.

The spectra dock opens below the unmixing dock at a share of the column's height
(:func:`share_height`), and the settings are never squeezed below
:data:`MIN_SETTINGS_HEIGHT`.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt
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

from .channel_stack import add_stack_button
from .component_table import ComponentTable
from .figure_export import add_export_row
from .history_panel import HistoryPanel
from .series_panel import SeriesPanel
from .settings_form import SettingsForm
from .setup_panel import add_setup_panel

__all__ = ["MIN_SETTINGS_HEIGHT", "Lifeline", "VerticalScroll", "build_layout", "dock_of",
           "share_height", "watch_removal"]

#: The settings part of the dock is never squeezed below this (px): the spectra dock
#: below it takes what is left.
MIN_SETTINGS_HEIGHT = 300
#: The spectra dock opens with this share of the right-hand column's height (at most
#: ``_PLOT_MAX`` px, at least ``_PLOT_MIN`` px).
_PLOT_SHARE, _PLOT_MIN, _PLOT_MAX = 0.38, 220, 420


def dock_of(widget):
    from qtpy.QtWidgets import QDockWidget

    while widget is not None and not isinstance(widget, QDockWidget):
        widget = widget.parent()
    return widget


def share_height(mine, plot_dock) -> None:
    """Give the spectra dock a sensible height below the unmixing dock (Qt would split
    the column by the plot's size hint and squeeze the settings)."""
    window = mine.window() if mine is not None else None
    if mine is None or plot_dock is None or window is None:
        return
    total = mine.height() + plot_dock.height()
    plot = int(min(max(_PLOT_SHARE * total, _PLOT_MIN), _PLOT_MAX))
    window.resizeDocks([mine, plot_dock], [max(total - plot, 1), plot], Qt.Orientation.Vertical)


class Lifeline:
    """Holds the current job and the session so that the dock's destruction can
    detach them.

    Connected to the widget's ``destroyed`` signal through a closure that does not
    reference the widget (which is being destroyed at that point).
    """

    def __init__(self, session):
        self.job = None
        self.session = session
        self.hooks = None  # the pixel inspector's mouse hooks
        self.detached = False

    def detach(self, *_):
        """Cancel the job (nothing more of it reaches the GUI), remove the inspector's
        hooks and close the session; once (later calls do nothing)."""
        if self.detached:
            return
        self.detached = True
        if self.job is not None:
            self.job.detach()
        if self.hooks is not None:
            self.hooks.detach()
        self.session.close()


class _RemovalWatch(QObject):
    """Detaches the lifeline when its widget, once docked, loses its parent, and
    deletes the widget: napari's ``remove_dock_widget`` (the dock's close button)
    takes the widget out of its dock and deletes only the dock, so the widget's
    ``destroyed`` would not come while its job holds it (and its run would go on and
    publish, with no dock to report it).  Opening the dock again makes a new one."""

    def __init__(self, lifeline: Lifeline, parent: QWidget):
        super().__init__(parent)
        self._lifeline = lifeline
        self._docked = parent.parent() is not None

    def eventFilter(self, obj, event):  # noqa: N802 (Qt)
        if event.type() == QEvent.Type.ParentChange:
            if obj.parent() is not None:
                self._docked = True
            elif self._docked:
                self._lifeline.detach()
                obj.deleteLater()
        return False


def watch_removal(widget: QWidget, lifeline: Lifeline) -> None:
    """Detach ``lifeline`` (cancel the job, publish nothing, close the session) when
    ``widget`` is destroyed or taken out of the window (its dock closed)."""
    widget.installEventFilter(_RemovalWatch(lifeline, widget))
    widget.destroyed.connect(lambda *_: lifeline.detach())  # no reference to the widget


class VerticalScroll(QScrollArea):
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
        self._content_width = None
        content.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 (Qt)
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            # rows added or removed: tell the dock only when the width the content
            # needs changed.  Every geometry change here makes napari's main window
            # lay out all its docks and its canvas again (about 0.1 s), which rows
            # of the same width (the content scrolls) do not need.
            width = obj.minimumSizeHint().width()
            if width != self._content_width:
                self._content_width = width
                self.updateGeometry()
        return super().eventFilter(obj, event)

    def minimumSizeHint(self):  # noqa: N802 (Qt)
        hint = super().minimumSizeHint()
        content = self.widget()
        if content is not None:
            hint.setWidth(content.minimumSizeHint().width()
                          + self.verticalScrollBar().sizeHint().width()
                          + 2 * self.frameWidth())
        return hint


def _button(text: str, tooltip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tooltip)
    return button


def build_layout(w) -> None:
    """Make the dock's widgets as attributes of ``w`` and arrange them in ``w``."""
    w.form = SettingsForm(image_choices=w.session.image_names)
    w.series_panel = SeriesPanel()
    w.table = ComponentTable()
    w.add_button = _button("Add", "Add a component row (pick its seed source in the row). "
                           "Rows switch the mode to Seeded NNMF unless you chose one.")
    w.rows_layer = QComboBox()
    w.rows_layer.setToolTip("A Labels layer (one component per label) or a Shapes "
                            "layer (one component per shape)")
    w.rows_button = _button("Components from layer", "Replace the rows by one per label of "
                            "the chosen Labels layer (its colours) or one per shape of the "
                            "chosen Shapes layer; labels off the image are reported.")
    w.new_layer_button = _button("New seed layer", "Add an empty Labels layer over the "
                                 "image's Y-X grid and start painting: dabs stay visible on "
                                 "every channel. One label per kind of region.")
    w.preview_button = _button("Preview seeds", "Draw every row's seed spectrum (ROI means "
                               "of the raw data, models, files) in the spectra dock, apart "
                               "from the last result. Previews also update by themselves.")
    w.seeds_button = _button("Use result as seeds", "Make one row per component of the shown "
                             "run, seeded by its spectrum and map, and switch to Seeded NNMF "
                             "to refine it.")
    w.seeds_button.setEnabled(False)
    w.run_button = _button("Run", "Start the analysis with these settings and rows; the "
                           "viewer stays usable while it runs.")
    w.cancel_button = _button("Cancel", "Stop the running analysis at its next progress "
                              "report; nothing it computed is published.")
    w.cancel_button.setEnabled(False)
    w.progress = QProgressBar()
    w.progress.setToolTip("The stage, iteration and error of the running analysis.")
    w.progress.setTextVisible(True)
    w.status = QLabel("")
    w.status.setWordWrap(True)
    w.summary = QLabel("")
    w.summary.setWordWrap(True)

    comp_box = QGroupBox("Components")
    cl = QVBoxLayout(comp_box)
    from_row = QHBoxLayout()
    from_row.addWidget(w.add_button)
    from_row.addWidget(w.rows_layer, 1)
    from_row.addWidget(w.rows_button)
    cl.addLayout(from_row)
    cl.addWidget(w.new_layer_button)
    cl.addWidget(w.table)
    seeds_row = QHBoxLayout()
    seeds_row.addWidget(w.preview_button)
    seeds_row.addWidget(w.seeds_button)
    cl.addLayout(seeds_row)
    w.components_box = comp_box

    run_row = QHBoxLayout()
    run_row.addWidget(w.run_button)
    run_row.addWidget(w.cancel_button)

    body = QWidget()
    lay = QVBoxLayout(body)
    lay.addWidget(w.form.container.native)
    add_stack_button(w, lay)  # channel layers (napari-ome-zarr) -> one spectral stack
    add_setup_panel(w, lay)  # save / load the setup, open a result, type spectral values
    lay.addWidget(w.series_panel.container.native)
    lay.addWidget(comp_box)
    w.history = HistoryPanel()
    lay.addWidget(w.history)
    add_export_row(w, lay)  # "Export figure…": the shown run's composite, legend, scale bar
    lay.addWidget(w.summary)
    lay.addStretch(1)
    # the settings scroll (they exceed a laptop's 900 px with a few rows); Run,
    # Cancel, the progress bar and the status line sit below, always in reach
    scroll = VerticalScroll(body)
    scroll.setMinimumHeight(MIN_SETTINGS_HEIGHT)
    footer = QFrame()
    footer.setFrameShape(QFrame.Shape.NoFrame)
    foot = QVBoxLayout(footer)
    foot.setContentsMargins(6, 4, 6, 4)
    foot.addLayout(run_row)
    foot.addWidget(w.progress)
    foot.addWidget(w.status)
    w.footer = footer
    outer = QVBoxLayout(w)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.setSpacing(0)
    outer.addWidget(scroll, 1)
    outer.addWidget(footer, 0)

